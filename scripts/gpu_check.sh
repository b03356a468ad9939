#!/usr/bin/env bash
# GPU check of gaaf-kernels on a CUDA machine without network access, and its CPU rehearsal.
#
#   scripts/gpu_check.sh OUTDIR                      on the GPU machine
#   scripts/gpu_check.sh --rehearse OUTDIR           the same steps on a CPU (< 10 min)
#   scripts/gpu_check.sh --rehearse --quick OUTDIR   a short rehearsal (the test suite's)
#
# Results first, partial results always. The steps, in order of value (each under
# `timeout --foreground`; a failed step does not stop the others):
#   env        nvidia-smi, driver, CUDA, Python, torch, triton, cupy, jax versions
#   install    pip install --no-deps --no-build-isolation --no-index -e . (or a
#              PYTHONPATH shim); missing test packages only from $GAAF_WHEELS
#   roofline   scripts/roofline.py: every default pair, float32 and bfloat16, forward and
#              backward, at 2^28 elements: measured % of the copy beside the prediction for
#              the cubin that ran; roofline.md is written row by row (a kernel's error is
#              one FAIL row)
#   tests      pytest -m gpu tests (CuPy and JAX apart, below)
#   models     benchmarks/test_bench_models.py on CUDA: mlp, then cnn (one run each)
#   bench      the op benchmarks at 2^28 elements (copy ceiling first)
#   verify     gaaf verify --band off, one dtype per call (float32, bfloat16; each call
#              prints its own table), then --band on for float32
#   bench      the op benchmarks at 2^24, then at 128x512 and 128x64x32x32
#   cupy       tests/test_cupy_gpu.py
#   jax        tests/test_jax*.py, when such a file exists and jax imports
#   report     scripts/bench_report.py over every benchmark JSON
#
# Time: everything, the report included, fits GAAF_GPU_CHECK_BUDGET seconds (default 450);
# the caps below add up to the budget less REPORT_RESERVE. A step runs for the smaller of
# its cap and what is left; a step that cannot get its useful minimum is SKIPPED (out of
# time), not failed. Worst case: the budget + 5 s (the kill after a timeout) + the report's
# own 20 s cap, well under the 600 s of one command on the GPU machine.
# Partial results: a timed-out pytest run ends as on Ctrl-C (benchmarks/conftest.py turns
# SIGTERM into KeyboardInterrupt; `--foreground` keeps the signal from Inductor's compile
# workers), so pytest-benchmark still writes the JSON of every benchmark that finished.
#
# Output (at most 8 files come back from the GPU machine; this writes 4, refreshed after
# every step, so a run killed from outside still leaves them):
#   OUTDIR/roofline.md        the key table, with card, versions, date, copy GB/s
#   OUTDIR/summary.md         every step's status, seconds and key figures; the roofline;
#                             the benchmark summary; verify's counts
#   OUTDIR/gpu_check.tar.gz   everything else: logs, env, roofline.json, bench JSON, the
#                             benchmark report (bench_cuda.md, .png), verify tables
#   OUTDIR/console.log        what this script printed
#
# Rehearsal (--rehearse): every step on a CPU machine. Triton under the interpreter at
# tiny sizes; the roofline through the same code with a stand-in for torch.cuda and cubins
# compiled for sm_90; the GPU tests collected and skipped; benchmark groups and model
# steps on CPU at their smallest size (several calls per round, the GPU path's timing
# code); verify for tanh only; shortened caps. One benchmark group is forced to time out
# and must leave its partial JSON (the copy ceiling at least). --quick (the test suite's
# form) cuts the budget to end with that group, so every later step is skipped for want
# of time; the rehearsal then checks its own output.
#
# Environment: PYTHON (default python3), GAAF_WHEELS (a folder of wheels for pip
# --no-index --find-links; never the network), GAAF_GPU_CHECK_BUDGET.

set -u -o pipefail

usage() {
    echo "usage: $0 [--rehearse [--quick]] OUTDIR" >&2
    exit 2
}

MODE=gpu
QUICK=0
OUTARG=
while (($#)); do
    case $1 in
        --rehearse) MODE=rehearse ;;
        --quick) QUICK=1 ;;
        -h | --help) usage ;;
        -*) usage ;;
        *) [[ -z $OUTARG ]] || usage; OUTARG=$1 ;;
    esac
    shift
done
[[ -n $OUTARG ]] || usage
((QUICK == 0)) || [[ $MODE == rehearse ]] || usage

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$OUTARG" || exit 2
OUT=$(cd "$OUTARG" && pwd)
rm -f "$OUT/roofline.md" "$OUT/summary.md" "$OUT/gpu_check.tar.gz" "$OUT/console.log"
# Work files live outside OUTDIR (only 8 files come back from it); they travel in the tarball.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gaaf-gpu-check.XXXXXX") || exit 2
PY=${PYTHON:-python3}
if [[ $PY == */* ]]; then # a path: make it absolute (steps run from other folders)
    PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
fi
REPORT_RESERVE=20 # seconds kept for the report and the summary
if [[ $MODE == gpu ]]; then
    BUDGET=${GAAF_GPU_CHECK_BUDGET:-450}
elif ((QUICK)); then
    BUDGET=${GAAF_GPU_CHECK_BUDGET:-400} # cut short before the forced timeout
else
    BUDGET=${GAAF_GPU_CHECK_BUDGET:-540}
fi
START=$SECONDS

exec > >(tee -a "$OUT/console.log") 2>&1
cd "$ROOT" || exit 2
export ROOT OUT WORK PY
cleanup() {
    kill $(jobs -p) 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
export PYTHONUNBUFFERED=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export GAAF_NO_REEXEC=1
if [[ $MODE == gpu ]]; then
    unset TRITON_INTERPRET # real kernels on the GPU, never the interpreter
else
    export TRITON_INTERPRET=1 # set before any kernel is imported
    export GAAF_BENCH_LAUNCHES=2 # the benchmarks' batched timing path, as on CUDA
fi

STEP_NAMES=()
STEP_STATUS=()
STEP_SECONDS=()
STEP_CAPS=()
STEP_NOTES=()
FAILED=0

log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*"; }

# Seconds a step may take: its cap, or what is left of the budget (less the reserve).
limit_for() {
    local cap=$1 reserve=${2:-$REPORT_RESERVE}
    local left=$((BUDGET - (SECONDS - START) - reserve))
    ((left < cap)) && cap=$left
    echo "$cap"
}

record() { # NAME RC SECONDS CAP [NOTE]
    local name=$1 rc=$2 secs=$3 cap=$4 note=${5:-} status
    case $rc in
        0) status=ok ;;
        124 | 137) status=TIMEOUT ;;
        skip) status=SKIPPED ;;
        *) status="FAIL (exit $rc)" ;;
    esac
    [[ $rc != 0 && $rc != skip ]] && FAILED=1
    STEP_NAMES+=("$name")
    STEP_STATUS+=("$status")
    STEP_SECONDS+=("$secs")
    STEP_CAPS+=("$cap")
    STEP_NOTES+=("$note")
    log "$name: $status${note:+ ($note)} (${secs}s)"
}

# The last summary line of a pytest log ("3 passed, 2 skipped in 4.1s"), or empty.
pytest_line() {
    grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|deselected|error)' "$1" 2>/dev/null |
        tail -n 1 | sed -E 's/=+//g; s/^ +| +$//g'
}

# run_step NAME CAP MIN LOGFILE CMD...: CMD under timeout, output to LOGFILE (its tail to
# the console). Skipped when fewer than MIN seconds are left. Sets STEP_RC.
run_step() {
    local name=$1 cap=$2 min=$3 logfile=$4
    shift 4
    local limit t0 rc note=
    limit=$(limit_for "$cap")
    STEP_RC=skip
    if ((limit < min)); then
        record "$name" skip 0 "$cap" "out of time: ${limit}s left, needs ${min}s"
        snapshot
        return
    fi
    log "$name (timeout ${limit}s of its ${cap}s cap): $*"
    t0=$SECONDS
    timeout --foreground --kill-after=5 "$limit" "$@" >"$logfile" 2>&1
    rc=$?
    tail -n 25 "$logfile"
    case $logfile in
        *.log | *.txt) note=$(pytest_line "$logfile") ;;
    esac
    STEP_RC=$rc
    if [[ $rc == 5 ]] && grep -q "no tests ran" "$logfile"; then # pytest: nothing collected
        rc=skip note="nothing collected${note:+: $note}"
    elif [[ $rc == 0 && -n $note && ! $note =~ passed ]]; then # all skipped
        local reason
        reason=$(grep -m1 -oE 'SKIPPED \[[0-9]+\] [^:]+:[0-9]+: .*' "$logfile" | sed -E 's/^[^:]+:[0-9]+: //')
        rc=skip note="$note${reason:+; $reason}"
    fi
    record "$name" "$rc" "$((SECONDS - t0))" "$cap" "$note"
    snapshot
}

# --- the output files: summary.md and the tarball, refreshed after every step ----------

write_summary() {
    local final=${1:-0} i
    {
        echo "# GAAF GPU check"
        echo
        if [[ $MODE == rehearse ]]; then
            echo "**REHEARSAL on a CPU (Triton interpreter, tiny sizes, stand-in for torch.cuda):"
            echo "nothing here is a GPU figure.**"
            echo
        fi
        echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); budget ${BUDGET}s, elapsed $((SECONDS - START))s"
        [[ -s $WORK/env.txt ]] && grep -E '^(device|python|torch |triton |torch.version.cuda|cupy |jax |driver)' "$WORK/env.txt" | sed 's/^/- /'
        echo "- repo: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git')$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' + local changes')"
        if ((final)); then
            if ((FAILED)); then
                echo "- RESULT: FAILED (a step failed or timed out; the logs are in gpu_check.tar.gz)"
            else
                echo "- RESULT: all steps that ran passed ($((SECONDS - START))s)"
            fi
        else
            echo "- RESULT: incomplete (written after each step; the run did not reach its end)"
        fi
        echo
        echo "## Steps"
        echo
        echo "| step | status | seconds | cap | key figures / reason |"
        echo "|---|---|---|---|---|"
        for i in "${!STEP_NAMES[@]}"; do
            echo "| ${STEP_NAMES[$i]} | ${STEP_STATUS[$i]} | ${STEP_SECONDS[$i]} | ${STEP_CAPS[$i]} | ${STEP_NOTES[$i]//|//} |"
        done
        echo
        echo "## Roofline (roofline.md)"
        echo
        if [[ -s $OUT/roofline.md ]]; then
            sed -n '2,$p' "$OUT/roofline.md"
        else
            echo "(not written)"
        fi
        if [[ -s $WORK/report.txt ]]; then
            echo
            echo "## Benchmarks (full tables and plot: bench_*.md, .png in the tarball)"
            echo
            echo '```'
            cat "$WORK/report.txt"
            echo '```'
        fi
        local f
        for f in "$WORK"/verify_*.txt; do
            [[ -s $f ]] || continue
            echo
            echo "## $(basename "$f" .txt) (last lines; the table is in the tarball)"
            echo
            echo '```'
            grep -vE '^\[verify' "$f" | tail -n 6
            echo '```'
        done
    } >"$OUT/summary.md.tmp" && mv "$OUT/summary.md.tmp" "$OUT/summary.md"
}

snapshot() {
    write_summary "${1:-0}"
    tar -czf "$OUT/gpu_check.tar.gz.tmp" -C "$WORK" --exclude=./pythonpath . 2>/dev/null &&
        mv "$OUT/gpu_check.tar.gz.tmp" "$OUT/gpu_check.tar.gz"
}

# --- env ---------------------------------------------------------------------------

# shellcheck disable=SC2329 # run through bash -c (exported), under timeout
env_report() {
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: $(uname -n) ($(uname -srm))"
    echo "driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 || echo none)"
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
for name in ("torch", "triton", "cupy", "jax", "numpy", "pytest", "pytest_benchmark",
             "ml_dtypes", "matplotlib", "setuptools"):
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

log "gaaf gpu_check ($MODE$( ((QUICK)) && echo ', quick')), budget ${BUDGET}s, output $OUT"
export -f env_report
run_step env 15 5 "$WORK/env.txt" bash -c env_report

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
    if [[ $MODE == rehearse ]]; then # never touch the rehearsing environment
        import_check && echo "rehearsal: import check only (no pip install)"
        return
    fi
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

export MODE
export -f import_check install_project
run_step install 25 10 "$WORK/install.log" bash -c install_project
if [[ -s $WORK/pythonpath.txt ]]; then
    shim=$(cat "$WORK/pythonpath.txt")
    export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONSAFEPATH=1 # keep the checkout's bare gaaf_kernels/ off sys.path
fi

# --- roofline: measured against predicted share of the copy bandwidth, row by row -------

ROOFLINE=("$PY" "$ROOT/scripts/roofline.py" --out "$OUT" --json "$WORK/roofline.json")
if [[ $MODE == rehearse ]]; then
    ROOFLINE+=(--stand-in --elements 4096 --launches 2 --reps 1)
    ((QUICK)) && ROOFLINE+=(--activations tanh,relu --dtypes float32,bfloat16)
fi
run_step roofline 90 30 "$WORK/roofline.log" "${ROOFLINE[@]}"
STEP_NOTES[-1]=$(tail -n 1 "$OUT/roofline.md" 2>/dev/null | grep -E 'kernels measured' || echo "${STEP_NOTES[-1]}")

# --- GPU tests (CuPy and JAX run last, on their own) --------------------------------------

PYTEST=("$PY" -m pytest -q -rs -p no:cacheprovider)
GPU_TESTS=(tests --ignore=tests/test_cupy_gpu.py)
for f in tests/test_jax*.py; do [[ -e $f ]] && GPU_TESTS+=("--ignore=$f"); done
((QUICK)) && GPU_TESTS=(tests/test_gpu.py)
run_step tests 60 25 "$WORK/gpu_tests.log" "${PYTEST[@]}" -m gpu "${GPU_TESTS[@]}"

# --- benchmarks: one pytest run per group (a timeout loses the rest of one group only) ----

BENCH_OPTS=(-q -p no:cacheprovider --benchmark-max-time=0.1 --benchmark-min-rounds=5
    "--benchmark-columns=median,iqr,rounds" --benchmark-sort=name)
if [[ $MODE == rehearse ]]; then
    BENCH_OPTS=(-q -p no:cacheprovider --benchmark-max-time=0.02 --benchmark-min-rounds=2
        "--benchmark-columns=median,iqr,rounds" --benchmark-sort=name)
fi
bench_jsons=()

# bench_step NAME CAP MIN SELECTION...: one benchmark run with its own JSON.
bench_step() {
    local name=$1 cap=$2 min=$3
    shift 3
    local label json
    label=$(echo "$name" | tr -c 'A-Za-z0-9\n' '_' | tr -s '_')
    json=$WORK/$label.json
    rm -f "$json"
    run_step "$name" "$cap" "$min" "$WORK/$label.log" "${PYTEST[@]}" benchmarks "${BENCH_OPTS[@]}" \
        --benchmark-json "$json" "$@"
    if [[ -s $json ]]; then
        bench_jsons+=("$json")
        local count
        count=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["benchmarks"]))' "$json" 2>/dev/null)
        STEP_NOTES[-1]="${STEP_NOTES[-1]:+${STEP_NOTES[-1]}; }$count benchmark(s) in its JSON"
    elif [[ ${STEP_STATUS[-1]} != SKIPPED* ]]; then
        STEP_NOTES[-1]="${STEP_NOTES[-1]:+${STEP_NOTES[-1]}; }no benchmark JSON"
    fi
    snapshot
}

# Model training steps (eager and compiled; mostly Inductor compiling on a GPU).
if [[ $MODE == gpu ]]; then
    bench_step "models mlp" 25 15 -k "cuda-mlp-"
    bench_step "models cnn" 30 15 -k "cuda-cnn-"
else
    bench_step "models mlp" 60 15 -k "cpu-mlp-eager and threads_default"
    ((QUICK)) || bench_step "models cnn" 40 15 -k "cpu-cnn-eager and threads_default"
fi

# The op benchmarks at 2^28 elements. Rehearsal: the CPU cases at 128x512, forced to time
# out: at least 10^5 rounds per case (the copy ceiling, first, takes seconds; the group
# would take minutes) under a 45 s cap; in --quick the budget is cut to end with this step,
# so that every later step is skipped for want of time.
if [[ $MODE == gpu ]]; then
    bench_step "bench 2^28" 55 25 --bench-sizes 2^28
else
    forced_cap=45
    if ((QUICK)); then # the budget ends with this step: every later one is out of time
        BUDGET=$((SECONDS - START + forced_cap + REPORT_RESERVE))
        log "quick rehearsal: the budget is cut to ${BUDGET}s, to end with the next step"
    fi
    bench_step "bench 2^28" "$forced_cap" 10 --bench-sizes 128x512 -k cpu \
        --benchmark-min-rounds=100000
    FORCED_JSON=$WORK/bench_2_28.json
fi

# --- verify: one dtype per call, band off, then the band -------------------------------

VERIFY=("$PY" -m gaaf_kernels.cli verify)
[[ $MODE == rehearse ]] && VERIFY+=(--activation tanh --shape gaussian)
verify_step() { # NAME CAP MIN ARGS...
    local name=$1 cap=$2 min=$3
    shift 3
    run_step "$name" "$cap" "$min" "$WORK/$(echo "$name" | tr ' ' '_').txt" "${VERIFY[@]}" "$@"
    local counts
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$WORK/$(echo "$name" | tr ' ' '_').txt" 2>/dev/null | tail -n 1)
    [[ -n $counts ]] && STEP_NOTES[-1]=$counts
}
verify_step "verify float32" 30 15 --dtypes float32 --band off
verify_step "verify bfloat16" 20 10 --dtypes bfloat16 --band off
verify_step "verify band float32" 20 10 --dtypes float32 --band on

# --- smaller sizes ---------------------------------------------------------------------

if [[ $MODE == gpu ]]; then
    bench_step "bench 2^24" 20 10 --bench-sizes 2^24
    bench_step "bench small" 20 10 --bench-sizes 128x512,128x64x32x32
else
    bench_step "bench small" 40 10 --bench-sizes 128x512 -k "cpu and (copy or plain or eager)"
fi

# --- CuPy and JAX ----------------------------------------------------------------------

run_step cupy 15 8 "$WORK/cupy.log" "${PYTEST[@]}" tests/test_cupy_gpu.py
jax_files=()
for f in tests/test_jax*.py; do [[ -e $f ]] && jax_files+=("$f"); done
if ((${#jax_files[@]} == 0)); then
    record jax skip 0 15 "no tests/test_jax*.py in this checkout"
    snapshot
elif ! "$PY" -c 'import jax' >/dev/null 2>&1; then
    record jax skip 0 15 "jax does not import"
    snapshot
else
    run_step jax 15 8 "$WORK/jax.log" "${PYTEST[@]}" "${jax_files[@]}"
fi

# --- report and summary ----------------------------------------------------------------

if ((${#bench_jsons[@]})); then
    t0=$SECONDS
    name=bench_cuda
    [[ $MODE == rehearse ]] && name=bench_rehearsal
    timeout 20 "$PY" "$ROOT/scripts/bench_report.py" "${bench_jsons[@]}" --out-dir "$WORK" \
        --name "$name" --merge-json "$WORK/bench.json" --summary \
        --title "GAAF benchmarks ($MODE)" >"$WORK/report.txt" 2>&1
    record report $? "$((SECONDS - t0))" 20
else
    record report skip 0 20 "no benchmark JSON"
fi

# The rehearsal checks its own output: the files, the roofline, the forced timeout.
if [[ $MODE == rehearse ]]; then
    problems=()
    [[ $(grep -cE '\| (forward|backward) \| [0-9]' "$OUT/roofline.md" 2>/dev/null) -gt 0 ]] ||
        problems+=("roofline.md has no measured row")
    grep -q 'kernels measured, 0 failed' "$OUT/roofline.md" 2>/dev/null ||
        problems+=("roofline.md is incomplete or has FAIL rows")
    for i in "${!STEP_NAMES[@]}"; do
        if [[ ${STEP_NAMES[$i]} == "bench 2^28" && ${STEP_STATUS[$i]} != TIMEOUT ]]; then
            problems+=("the forced step did not time out (${STEP_STATUS[$i]})")
        fi
    done
    "$PY" - "$FORCED_JSON" <<'EOF' || problems+=("the timed-out step left no partial JSON with the copy ceiling")
import json, sys
names = [b["name"] for b in json.load(open(sys.argv[1]))["benchmarks"]]
sys.exit(0 if names and names[0].startswith("test_copy") else 1)
EOF
    if ((${#problems[@]})); then
        for p in "${problems[@]}"; do log "REHEARSAL PROBLEM: $p"; done
        record "rehearsal self-check" 1 0 0 "$(IFS=';'; echo "${problems[*]}")"
    else
        # the forced timeout was expected: it does not fail a rehearsal
        FAILED=0
        for i in "${!STEP_STATUS[@]}"; do
            [[ ${STEP_STATUS[$i]} == FAIL* ]] && FAILED=1
            [[ ${STEP_STATUS[$i]} == TIMEOUT && ${STEP_NAMES[$i]} != "bench 2^28" ]] && FAILED=1
        done
        record "rehearsal self-check" 0 0 0 "roofline complete; forced timeout left its partial JSON"
    fi
fi

snapshot 1
echo
cat "$OUT/summary.md"
log "output files: $(cd "$OUT" && ls | tr '\n' ' ')"
exit "$FAILED"
