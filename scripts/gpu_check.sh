#!/usr/bin/env bash
# GPU check of gaaf-kernels on a CUDA machine without network access.
#
#   scripts/gpu_check.sh OUTDIR
#
# Steps (each under `timeout`; a failed step does not stop the others; the exit status
# is non-zero when any step failed):
#   env       nvidia-smi, driver, CUDA, Python, torch, triton, cupy versions -> env.txt
#   install   the project without dependencies and without network:
#             pip install --no-deps --no-build-isolation --no-index -e . (falls back to
#             a PYTHONPATH shim); missing test packages only from $GAAF_WHEELS
#   tests     pytest -m gpu tests                      -> gpu_tests.txt
#   verify    gaaf verify (kernels vs the reference)   -> verify.txt
#             (tests and verify run side by side: both mostly compile Triton kernels)
#   roofline  scripts/roofline.py: fused kernels at 2^28 elements, float32 and bfloat16,
#             measured % of the copy bandwidth beside the static model's prediction
#                                                      -> roofline.md, roofline.json
#   bench     pytest benchmarks -m gpu, one run per size group, then merged
#                                                      -> bench.json
#   models    benchmarks/test_bench_models.py -m gpu: MLP and BN-CNN training steps,
#             plain / GAAF / naive formula, eager and torch.compile (one run per model;
#             ~90 s together, mostly Inductor compiling), merged into bench.json
#   report    scripts/bench_report.py                  -> bench_cuda.md, bench_cuda.png
#   summary   the short table printed last             -> summary.txt
# Logs of the single runs go to OUTDIR/work/.
#
# Time: everything together stays within GAAF_GPU_CHECK_BUDGET seconds (default 450,
# under 8 minutes); each step's timeout is the smaller of its own cap and what is left.
# Environment: PYTHON (default python3), GAAF_WHEELS (a folder of wheels for pip
# --no-index --find-links; never the network), GAAF_GPU_CHECK_BUDGET,
# GAAF_GPU_CHECK_DRY_RUN=1 (print the commands, run only `report` on OUTDIR/bench.json:
# for trying the script on a machine without a GPU).

set -u -o pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1/work" || exit 2
OUT=$(cd "$1" && pwd)
WORK=$OUT/work
PY=${PYTHON:-python3}
if [[ $PY == */* ]]; then # a path: make it absolute (steps run from other folders)
    PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
fi
BUDGET=${GAAF_GPU_CHECK_BUDGET:-450}
DRY=${GAAF_GPU_CHECK_DRY_RUN:-0}
REPORT_RESERVE=25 # seconds kept for the report and the summary
START=$SECONDS

cd "$ROOT" || exit 2
export ROOT OUT WORK PY
trap 'kill $(jobs -p) 2>/dev/null' EXIT # background steps end with this script
unset TRITON_INTERPRET # real kernels on the GPU, never the interpreter
export PYTHONUNBUFFERED=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export GAAF_NO_REEXEC=1

STEP_NAMES=()
STEP_STATUS=()
STEP_SECONDS=()
FAILED=0

log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*"; }

# Seconds a step may take: its cap, or what is left of the budget (less the reserve).
limit_for() {
    local cap=$1 reserve=${2:-$REPORT_RESERVE}
    local left=$((BUDGET - (SECONDS - START) - reserve))
    ((left < cap)) && cap=$left
    echo "$cap"
}

record() { # NAME RC SECONDS [NOTE]
    local name=$1 rc=$2 secs=$3 note=${4:-} status
    case $rc in
        0) status=ok ;;
        124 | 137) status="TIMEOUT" ;;
        skip) status="SKIPPED${note:+ ($note)}" ;;
        *) status="FAIL (exit $rc)" ;;
    esac
    [[ $rc == 0 && -n $note ]] && status="ok ($note)"
    [[ $rc != 0 ]] && FAILED=1
    STEP_NAMES+=("$name")
    STEP_STATUS+=("$status")
    STEP_SECONDS+=("$secs")
    log "$name: $status (${secs}s)"
}

# run_step NAME CAP LOGFILE CMD...: run CMD under timeout, output to LOGFILE and stdout.
# step_begin NAME CAP LABEL CMD...: sets STEP_LIMIT; returns 1 (step recorded as skipped
# or as a dry run) when the command must not run.
step_begin() {
    local name=$1 cap=$2 label=$3
    shift 3
    STEP_LIMIT=$(limit_for "$cap")
    if ((STEP_LIMIT < 5)); then
        record "$name" skip 0 "out of time"
        return 1
    fi
    log "$name ($label${STEP_LIMIT}s): $*"
    if [[ $DRY == 1 ]]; then
        record "$name" 0 0 "dry run"
        return 1
    fi
}

run_step() {
    local name=$1 cap=$2 logfile=$3
    shift 3
    local t0 rc
    step_begin "$name" "$cap" "timeout " "$@" || return
    t0=$SECONDS
    timeout --kill-after=10 "$STEP_LIMIT" "$@" 2>&1 | tee "$logfile"
    rc=${PIPESTATUS[0]}
    record "$name" "$rc" "$((SECONDS - t0))"
}

# start_bg NAME CAP LOGFILE CMD...: like run_step, in the background; finish_bg NAME waits.
declare -A BG_PID BG_T0
start_bg() {
    local name=$1 cap=$2 logfile=$3
    shift 3
    step_begin "$name" "$cap" "background, timeout " "$@" || return
    BG_T0[$name]=$SECONDS
    timeout --kill-after=10 "$STEP_LIMIT" "$@" >"$logfile" 2>&1 &
    BG_PID[$name]=$!
}
finish_bg() {
    local name=$1 rc
    [[ -n ${BG_PID[$name]:-} ]] || return 0
    wait "${BG_PID[$name]}"
    rc=$?
    local secs=$((SECONDS - ${BG_T0[$name]}))
    if [[ $name == tests && $rc == 5 ]]; then # pytest: nothing collected
        record "$name" 0 "$secs" "no GPU tests collected"
        return
    fi
    record "$name" "$rc" "$secs"
}

# --- env ---------------------------------------------------------------------------

# shellcheck disable=SC2329 # run through bash -c (exported), under timeout
env_report() {
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: $(uname -n) ($(uname -srm))"
    echo "repo: $ROOT ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git')"\
         "$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo '+ local changes'))"
    echo
    echo "== nvidia-smi"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
        --format=csv 2>&1 || echo "nvidia-smi failed"
    nvidia-smi 2>&1 | head -n 20
    echo
    echo "== nvcc"
    nvcc --version 2>&1 | tail -n 2 || true
    echo
    echo "== python packages"
    "$PY" - <<'EOF'
import importlib
import platform
import sys

print("python", sys.version.split()[0], platform.platform())
for name in ("torch", "triton", "cupy", "numpy", "pytest", "pytest_benchmark", "ml_dtypes",
             "matplotlib", "setuptools"):
    try:
        module = importlib.import_module(name)
        print(f"{name:18s}", getattr(module, "__version__", "?"))
    except Exception as exc:  # report and go on: this file is for reading
        print(f"{name:18s} not importable ({type(exc).__name__}: {exc})")
try:
    import torch

    print("torch.version.cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
    print("cuda available", torch.cuda.is_available())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print("device", p.name, f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs",
              round(p.total_memory / 2**30, 1), "GiB")
except Exception as exc:
    print("torch/cuda query failed:", exc)
EOF
}

if [[ $DRY == 1 ]]; then
    log "env: dry run"
    record env 0 0 "dry run"
else
    t0=$SECONDS
    export -f env_report
    timeout 60 bash -c env_report >"$OUT/env.txt" 2>&1
    rc=$?
    cat "$OUT/env.txt"
    record env "$rc" "$((SECONDS - t0))"
fi

# --- install -----------------------------------------------------------------------

# shellcheck disable=SC2329
import_check() {
    # From another folder, so that the checkout's own gaaf_kernels/ cannot shadow the install.
    (cd /tmp && "$PY" -c 'import gaaf_kernels, gaaf_kernels.reference, gaaf_kernels.adapters.torch
import gaaf_kernels.kernels.launch
print("gaaf_kernels from", gaaf_kernels.__file__)')
}

# shellcheck disable=SC2329
install_project() {
    local find_links=()
    [[ -n ${GAAF_WHEELS:-} ]] && find_links=(--find-links "$GAAF_WHEELS")
    if "$PY" -m pip install --no-deps --no-build-isolation --no-index "${find_links[@]}" \
        -e "$ROOT" && import_check; then
        echo "installed editable (pip -e, no deps, no build isolation, no index)"
    else
        # No pip install possible: a folder that maps reference/, adapters/ and experiments/
        # under gaaf_kernels as pyproject.toml's package-dir does, on PYTHONPATH.
        echo "pip install -e failed; using a PYTHONPATH shim"
        local shim=$WORK/pythonpath
        rm -rf "$shim"
        mkdir -p "$shim/gaaf_kernels"
        local f
        for f in "$ROOT"/gaaf_kernels/*; do
            ln -s "$f" "$shim/gaaf_kernels/$(basename "$f")"
        done
        for f in reference adapters experiments; do
            ln -sfn "$ROOT/$f" "$shim/gaaf_kernels/$f"
        done
        echo "$shim" >"$WORK/pythonpath.txt"
        PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}" PYTHONSAFEPATH=1 import_check || return 1
    fi
    local module package missing=()
    for module in pytest:pytest pytest_benchmark:pytest-benchmark ml_dtypes:ml_dtypes \
        matplotlib:matplotlib; do
        package=${module#*:}
        module=${module%%:*}
        "$PY" -c "import $module" 2>/dev/null || missing+=("$package")
    done
    if ((${#missing[@]})); then
        if [[ -z ${GAAF_WHEELS:-} ]]; then
            echo "missing: ${missing[*]} (set GAAF_WHEELS to a folder of wheels to install them)"
            return 1
        fi
        "$PY" -m pip install --no-index --find-links "$GAAF_WHEELS" "${missing[@]}" || return 1
    fi
}

export -f import_check install_project
run_step install 120 "$WORK/install.log" bash -c install_project
if [[ -s $WORK/pythonpath.txt && $DRY != 1 ]]; then
    shim=$(cat "$WORK/pythonpath.txt")
    export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONSAFEPATH=1 # keep the checkout's bare gaaf_kernels/ off sys.path
fi

# --- tests and verify, side by side ------------------------------------------------

start_bg tests 200 "$OUT/gpu_tests.txt" "$PY" -m pytest -m gpu tests -q -ra -p no:cacheprovider
start_bg verify 200 "$OUT/verify.txt" "$PY" -m gaaf_kernels.cli verify
finish_bg tests
finish_bg verify
for f in gpu_tests.txt verify.txt; do
    [[ -s $OUT/$f ]] && { echo "== $f (last lines)"; tail -n 15 "$OUT/$f"; }
done

# --- roofline: measured against predicted share of the copy bandwidth ----------------

run_step roofline 120 "$WORK/roofline.log" "$PY" "$ROOT/scripts/roofline.py" --out "$OUT"

# --- benchmarks: one pytest run per size group (a timeout loses one group only) --------

BENCH_OPTS=(-m gpu -q -p no:cacheprovider --benchmark-max-time=0.1 --benchmark-min-rounds=5
    "--benchmark-columns=median,iqr,rounds" --benchmark-sort=name)
bench_jsons=()
for group in "2^28:150" "2^24:70" "128x512,128x64x32x32:120"; do
    sizes=${group%:*}
    cap=${group##*:}
    label=$(echo "$sizes" | tr -c 'A-Za-z0-9\n' '_' | tr -s '_')
    json=$WORK/bench_$label.json
    rm -f "$json"
    run_step "bench $sizes" "$cap" "$WORK/bench_$label.log" \
        "$PY" -m pytest benchmarks "${BENCH_OPTS[@]}" --bench-sizes "$sizes" \
        --benchmark-json "$json"
    [[ -s $json ]] && bench_jsons+=("$json")
done

# --- model training steps: eager and compiled, one pytest run per model ------------------

for group in "mlp:40" "cnn:50"; do
    model=${group%:*}
    json=$WORK/bench_models_$model.json
    rm -f "$json"
    run_step "models $model" "${group##*:}" "$WORK/bench_models_$model.log" \
        "$PY" -m pytest benchmarks/test_bench_models.py "${BENCH_OPTS[@]}" -k "cuda-$model-" \
        --benchmark-json "$json"
    [[ -s $json ]] && bench_jsons+=("$json")
done

# --- report and summary ------------------------------------------------------------

if [[ $DRY == 1 && -s $OUT/bench.json ]]; then
    bench_jsons=("$OUT/bench.json")
fi
if ((${#bench_jsons[@]})); then
    t0=$SECONDS
    limit=$(limit_for 60 0)
    ((limit < 15)) && limit=15
    timeout "$limit" "$PY" "$ROOT/scripts/bench_report.py" "${bench_jsons[@]}" --out-dir "$OUT" \
        --name bench_cuda --merge-json "$OUT/bench.json" --summary \
        --title "GAAF benchmarks on the GPU" >"$WORK/report.txt" 2>&1
    rc=$?
    record report "$rc" "$((SECONDS - t0))"
else
    record report skip 0 "no benchmark JSON"
fi

{
    echo "GAAF GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), output in $OUT"
    grep -m1 -E '^device ' "$OUT/env.txt" 2>/dev/null
    echo
    [[ -s $WORK/report.txt ]] && sed -n '2,$p' "$WORK/report.txt" && echo
    printf '%-36s %-30s %6s\n' step status seconds
    printf '%-36s %-30s %6s\n' "----" "------" "-------"
    for i in "${!STEP_NAMES[@]}"; do
        printf '%-36s %-30s %6s\n' "${STEP_NAMES[$i]}" "${STEP_STATUS[$i]}" "${STEP_SECONDS[$i]}"
    done
    echo
    if ((FAILED)); then
        echo "RESULT: FAILED (see the logs in $OUT and $WORK)"
    else
        echo "RESULT: all steps passed in $((SECONDS - START))s"
    fi
} >"$OUT/summary.txt"
echo
cat "$OUT/summary.txt"
exit "$FAILED"
