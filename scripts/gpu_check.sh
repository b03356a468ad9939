#!/usr/bin/env bash
# GPU check of gaaf-kernels on a CUDA machine without network access.
#
#   scripts/gpu_check.sh OUTDIR              on the GPU machine
#   scripts/gpu_check.sh --rehearse OUTDIR   the same steps on a CPU (Triton interpreter,
#                                            tiny sizes, shortened caps; see below)
#
# Results first, partial results always. The steps, in order of value:
#   env          driver, CUDA, Python, torch, triton, cupy, jax versions
#   install      the project without dependencies and without network (pip -e, else a
#                PYTHONPATH shim); missing test packages only from $GAAF_WHEELS
#   roofline     scripts/roofline.py: every default pair, float32 and bfloat16, forward and
#                backward, measured % of copy beside the predicted %; written row by row
#   gpu tests    pytest -m gpu tests
#   models       benchmarks/test_bench_models.py: MLP and BN-CNN training steps
#   bench 2^28   the op benchmarks at 2^28 elements (copy ceiling first)
#   verify D     gaaf verify --band off --shape default, one dtype per call (float32,
#                bfloat16, float16, float64), each printing its own table
#   verify band  gaaf verify --band on --shape default, float32 and bfloat16
#   bench small  the op benchmarks at 2^24, 128x512 and 128x64x32x32
#   cupy, jax    the CuPy tests and the JAX adapter's GPU tests (where installed)
#   report       scripts/bench_report.py over every benchmark JSON written
# Each step runs under `timeout --foreground` (pytest turns SIGTERM into an interrupt and
# writes the benchmarks it finished); its limit is the smaller of its cap and what is left
# of the budget. A step that would get less than a third of its cap (and less than 20 s)
# is skipped and reported as skipped. A failed step does not stop the others; the exit
# status is 1 when any step failed or timed out.
#
# Output (at most 8 files, as the GPU machine returns them): OUTDIR/roofline.md,
# OUTDIR/summary.md (every step's status and key figures, the roofline included),
# OUTDIR/console.log (everything printed) and OUTDIR/gpu_check.tar.gz (every log, JSON
# and table; rewritten after each step, so a run cut off keeps what it has).
#
# Environment: PYTHON (default python3), GAAF_WHEELS (a folder of wheels for pip
# --no-index --find-links; never the network), GAAF_GPU_CHECK_BUDGET (seconds for the
# whole run, default 450; 240 rehearsing), GAAF_GPU_CHECK_FORCE_TIMEOUT=STEP (that
# step gets a 3 s cap: how the rehearsal proves that a cut-off step keeps its partial
# file), GAAF_GPU_CHECK_QUICK=1 (rehearsal only: two activations, one dtype per step;
# what the test in `make test` runs), GAAF_GPU_CHECK_STEPS="gpu tests,cupy,..." (run only
# these steps, besides env and install; the others are reported as not selected: a second
# try that spends the device time left on what the first one missed).
#
# --rehearse: TRITON_INTERPRET=1, the roofline with roofline.py --rehearse (kernels under
# the interpreter on CPU tensors, cubins compiled for sm_90 without a GPU), the CPU
# benchmarks at their smallest size in place of the GPU ones, gaaf verify on the CPU,
# and every cap but the roofline's divided by 3. No figure of a rehearsal is a GPU
# measurement.

set -u -o pipefail

REHEARSE=0
if [[ ${1:-} == --rehearse ]]; then
    REHEARSE=1
    shift
fi
if [[ $# -ne 1 ]]; then
    echo "usage: $0 [--rehearse] OUTDIR" >&2
    exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1" || exit 2
OUT=$(cd "$1" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gaaf_gpu_check.XXXXXX") || exit 2
PY=${PYTHON:-python3}
if [[ $PY == */* ]]; then # a path: make it absolute (steps run from other folders)
    PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
fi
QUICK=${GAAF_GPU_CHECK_QUICK:-0}
FORCE_TIMEOUT=${GAAF_GPU_CHECK_FORCE_TIMEOUT:-}
STEPS=${GAAF_GPU_CHECK_STEPS:-}
if ((REHEARSE)); then
    BUDGET=${GAAF_GPU_CHECK_BUDGET:-240}
    export TRITON_INTERPRET=1
else
    BUDGET=${GAAF_GPU_CHECK_BUDGET:-450}
    unset TRITON_INTERPRET # real kernels on the GPU, never the interpreter
    [[ $QUICK == 1 ]] && { echo "GAAF_GPU_CHECK_QUICK is for --rehearse only" >&2; exit 2; }
fi
REPORT_RESERVE=20 # seconds kept for the report, the summary and the tarball
START=$SECONDS

cd "$ROOT" || exit 2
rm -f "$OUT/roofline.md" "$OUT/summary.md" "$OUT/gpu_check.tar.gz"
exec > >(tee "$OUT/console.log") 2>&1
export ROOT OUT WORK PY
trap 'kill $(jobs -p) 2>/dev/null' EXIT
export PYTHONUNBUFFERED=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export GAAF_NO_REEXEC=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false # JAX would take 75% of the GPU from torch

STEP_NAMES=()
STEP_STATUS=()
STEP_SECONDS=()
FAILED=0

log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*"; }

cap_of() { # the step's cap in this mode (rehearsing: a third, but the roofline whole)
    local name=$1 cap=$2
    ((REHEARSE)) && [[ $name != roofline ]] && cap=$(((cap + 2) / 3))
    [[ -n $FORCE_TIMEOUT && $name == "$FORCE_TIMEOUT" ]] && cap=3
    echo "$cap"
}

record() { # NAME RC SECONDS [NOTE]
    local name=$1 rc=$2 secs=$3 note=${4:-} status
    case $rc in
        0) status=ok ;;
        124 | 137) status="TIMEOUT (partial output kept)" ;;
        skip) status="SKIPPED${note:+ ($note)}" ;;
        *) status="FAIL (exit $rc)" ;;
    esac
    [[ $rc == 0 && -n $note ]] && status="ok ($note)"
    [[ $rc != 0 && $rc != skip ]] && FAILED=1
    STEP_NAMES+=("$name")
    STEP_STATUS+=("$status")
    STEP_SECONDS+=("$secs")
    log "$name: $status (${secs}s)"
    pack
}

pack() { # everything so far into the tarball (a cut-off run keeps it)
    tar -czf "$OUT/.gpu_check.tar.gz" -C "$WORK" . 2>/dev/null &&
        mv "$OUT/.gpu_check.tar.gz" "$OUT/gpu_check.tar.gz"
}

# run_step NAME CAP LOGFILE CMD...: CMD under timeout --foreground, output to LOGFILE.
run_step() {
    local name=$1 cap logfile=$3 t0 rc left
    cap=$(cap_of "$1" "$2")
    shift 3
    left=$((BUDGET - (SECONDS - START) - REPORT_RESERVE))
    if [[ -n $STEPS && $name != env && $name != install && ",$STEPS," != *",$name,"* ]]; then
        record "$name" skip 0 "not in GAAF_GPU_CHECK_STEPS"
        return
    fi
    local limit=$cap
    ((left < limit)) && limit=$left
    local useful=$((cap / 3))
    ((useful > 20)) && useful=20
    ((useful < 2)) && useful=2
    if ((limit < useful)); then
        record "$name" skip 0 "out of time: ${left}s left of the budget, cap ${cap}s"
        return
    fi
    log "$name (timeout ${limit}s): $*"
    t0=$SECONDS
    timeout --foreground --kill-after=10 "$limit" "$@" >"$logfile" 2>&1
    rc=$?
    tail -n 12 "$logfile"
    record "$name" "$rc" "$((SECONDS - t0))"
}

# --- env -----------------------------------------------------------------------------

env_report() {
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "repo: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git')"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
        --format=csv 2>&1 || echo "nvidia-smi: not available"
    "$PY" - <<'PYEOF'
import importlib, platform, sys
print("python", sys.version.split()[0], platform.platform())
for name in ("torch", "triton", "numpy", "cupy", "jax", "jax_triton", "pytest",
             "pytest_benchmark"):
    try:
        print(f"{name:18s}", getattr(importlib.import_module(name), "__version__", "?"))
    except Exception as exc:  # report and go on
        print(f"{name:18s} not importable ({type(exc).__name__})")
import torch
print("torch.version.cuda", torch.version.cuda, "cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device", p.name, f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs")
PYEOF
}
export -f env_report
run_step env 30 "$WORK/env.txt" bash -c env_report

# --- install -------------------------------------------------------------------------

import_check() {
    (cd /tmp && "$PY" -c 'import gaaf_kernels, gaaf_kernels.adapters.torch
print("gaaf_kernels from", gaaf_kernels.__file__)')
}

install_project() {
    # jax-triton (for the JAX adapter's Triton path), if a wheel was carried: no deps
    # (its pins may not match the machine's jax and triton; the JAX tests say if it works)
    if [[ -n ${GAAF_WHEELS:-} ]] && ls "$GAAF_WHEELS"/jax_triton-*.whl >/dev/null 2>&1; then
        "$PY" -m pip install --no-deps --no-index --find-links "$GAAF_WHEELS" jax-triton ||
            echo "jax-triton did not install (the JAX tests then check the XLA path)"
    fi
    if import_check 2>/dev/null; then
        echo "already installed"
        return 0
    fi
    local find_links=()
    [[ -n ${GAAF_WHEELS:-} ]] && find_links=(--find-links "$GAAF_WHEELS")
    if "$PY" -m pip install --no-deps --no-build-isolation --no-index "${find_links[@]}" \
        -e "$ROOT" && import_check; then
        echo "installed editable (pip -e, no deps, no build isolation, no index)"
        return 0
    fi
    echo "pip install -e failed; using a PYTHONPATH shim"
    local shim=$WORK/pythonpath f
    mkdir -p "$shim/gaaf_kernels"
    for f in "$ROOT"/gaaf_kernels/*; do ln -sfn "$f" "$shim/gaaf_kernels/$(basename "$f")"; done
    for f in reference adapters experiments; do ln -sfn "$ROOT/$f" "$shim/gaaf_kernels/$f"; done
    echo "$shim" >"$WORK/pythonpath.txt"
    PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}" PYTHONSAFEPATH=1 import_check
}
export -f import_check install_project
run_step install 90 "$WORK/install.log" bash -c install_project
if [[ -s $WORK/pythonpath.txt ]]; then
    export PYTHONPATH="$(cat "$WORK/pythonpath.txt")${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONSAFEPATH=1 # keep the checkout's bare gaaf_kernels/ off sys.path
fi

# --- roofline ------------------------------------------------------------------------

ROOFLINE=("$PY" "$ROOT/scripts/roofline.py" --out "$WORK")
if ((REHEARSE)); then
    ROOFLINE+=(--rehearse)
    [[ $QUICK == 1 ]] && ROOFLINE+=(--activations tanh,relu --dtypes float32)
fi
run_step roofline 100 "$WORK/roofline.log" "${ROOFLINE[@]}"
[[ -s $WORK/roofline.md ]] && cp "$WORK/roofline.md" "$OUT/roofline.md"

# --- GPU tests, benchmarks, verify ---------------------------------------------------

PYTEST=("$PY" -m pytest -q -p no:cacheprovider -ra)
BENCH=("${PYTEST[@]}" --benchmark-max-time=0.1 --benchmark-min-rounds=5
    "--benchmark-columns=median,iqr,rounds" --benchmark-sort=name)
if ((REHEARSE)); then
    GPU_TESTS=(tests/test_gpu.py tests/test_accuracy.py -k "tanh and float32 and value")
    BENCH_MARK=(-m "not gpu and not slow")
    MODEL_SIZES=(-k "cpu-mlp-eager and threads_default") # both thread counts overran 20 s
    BIG=(--bench-sizes 128x512 -k "tanh and fwd and (plain or gaaf_auto or copy)")
    SMALL=(--bench-sizes 128x512 -k "tanh and fwdbwd and (plain or gaaf_auto or copy)")
    VERIFY_ACT=(--activation tanh --shape gaussian)
else
    GPU_TESTS=(-m gpu tests)
    BENCH_MARK=(-m gpu)
    MODEL_SIZES=()
    BIG=(--bench-sizes "2^28")
    SMALL=(--bench-sizes "2^24,128x512,128x64x32x32")
    VERIFY_ACT=(--shape default) # every shape does not fit: ~0.4 s of compiling per case
fi
run_step "gpu tests" 70 "$WORK/gpu_tests.txt" "${PYTEST[@]}" "${GPU_TESTS[@]}"

JSONS=()
bench() { # NAME CAP JSON ARGS...
    local name=$1 cap=$2 json=$3
    shift 3
    run_step "$name" "$cap" "$WORK/$(basename "$json" .json).log" "${BENCH[@]}" "$@" \
        --benchmark-json "$json"
    [[ -s $json ]] && JSONS+=("$json")
}
bench models 60 "$WORK/bench_models.json" benchmarks/test_bench_models.py "${BENCH_MARK[@]}" \
    "${MODEL_SIZES[@]}"
bench "bench 2^28" 70 "$WORK/bench_big.json" benchmarks/test_bench_passes.py \
    "${BENCH_MARK[@]}" "${BIG[@]}"

VERIFY_DTYPES=(float32 bfloat16 float16 float64)
[[ $QUICK == 1 ]] && VERIFY_DTYPES=(float32)
for dtype in "${VERIFY_DTYPES[@]}"; do
    run_step "verify $dtype" 30 "$WORK/verify_$dtype.txt" "$PY" -m gaaf_kernels.cli verify \
        --dtypes "$dtype" --band off --no-compiled "${VERIFY_ACT[@]}"
done
run_step "verify band" 40 "$WORK/verify_band.txt" "$PY" -m gaaf_kernels.cli verify \
    --dtypes float32,bfloat16 --band on --no-compiled "${VERIFY_ACT[@]}"

bench "bench small" 50 "$WORK/bench_small.json" benchmarks/test_bench_passes.py \
    "${BENCH_MARK[@]}" "${SMALL[@]}"

if "$PY" -c "import cupy" 2>/dev/null; then
    run_step cupy 20 "$WORK/cupy_tests.txt" "${PYTEST[@]}" tests/test_cupy_gpu.py
else
    record cupy skip 0 "cupy not importable"
fi
if ls tests/test_jax*.py >/dev/null 2>&1 && "$PY" -c "import jax" 2>/dev/null; then
    # the GPU-marked ones (the jax-triton and XLA-on-CUDA paths); rehearsing, they skip
    run_step jax 30 "$WORK/jax_tests.txt" "${PYTEST[@]}" tests/test_jax*.py -m gpu
else
    record jax skip 0 "no JAX adapter tests or jax not importable"
fi

# --- report and summary ---------------------------------------------------------------

if ((${#JSONS[@]})); then
    run_step report 30 "$WORK/report.txt" "$PY" "$ROOT/scripts/bench_report.py" "${JSONS[@]}" \
        --out-dir "$WORK" --name bench --merge-json "$WORK/bench.json" --summary \
        --title "GAAF benchmarks$( ((REHEARSE)) && echo ' (REHEARSAL on a CPU)')"
else
    record report skip 0 "no benchmark JSON"
fi

{
    echo "# GAAF GPU check$( ((REHEARSE)) && echo ': REHEARSAL on a CPU, no GPU figure')"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $((SECONDS - START)) s of a ${BUDGET} s budget"
    echo
    echo '```'
    grep -E '^(device|python|torch|triton|cupy|jax) ' "$WORK/env.txt" 2>/dev/null
    echo '```'
    echo
    echo "| step | status | seconds |"
    echo "|---|---|---:|"
    for i in "${!STEP_NAMES[@]}"; do
        echo "| ${STEP_NAMES[$i]} | ${STEP_STATUS[$i]} | ${STEP_SECONDS[$i]} |"
    done
    echo
    for f in "$WORK"/verify_*.txt; do
        [[ -s $f ]] && echo "- $(basename "$f" .txt): $(grep -E 'passed, [0-9]+ failed' "$f" | tail -n 1)"
    done
    [[ -s $WORK/gpu_tests.txt ]] && echo "- gpu tests: $(tail -n 1 "$WORK/gpu_tests.txt")"
    echo
    if [[ -s $WORK/report.txt ]]; then
        echo '```'
        sed -n '2,40p' "$WORK/report.txt"
        echo '```'
        echo
    fi
    if [[ -s $WORK/roofline.md ]]; then
        sed 's/^# Roofline/## Roofline/' "$WORK/roofline.md"
    else
        echo "## Roofline: no rows (see roofline.log in gpu_check.tar.gz)"
    fi
    echo
    if ((FAILED)); then
        echo "RESULT: FAILED or TIMED OUT (logs in gpu_check.tar.gz)"
    else
        echo "RESULT: all steps passed or were skipped as reported"
    fi
} >"$OUT/summary.md"
cp "$OUT/summary.md" "$WORK/summary.md"
pack
rm -rf "$WORK"
log "done: $(cd "$OUT" && ls | tr '\n' ' ')"
exit "$FAILED"
