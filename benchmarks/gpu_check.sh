#!/usr/bin/env bash
# The GPU check in one command, run from the repository root of a fresh copy on the GPU machine:
#
#     bash benchmarks/gpu_check.sh
#
# It installs anyssl (no index, no dependencies: torch, torchvision, typer, rich, scikit-learn
# are already there), prints nvidia-smi and torch's versions, runs the CUDA tests
# (tests/test_cuda.py, `-m cuda`), then benchmarks/gpu_bench.py with their summary line, which
# writes ONE JSON (benchmarks/results/gpu_check-cuda.json) and prints ONE table. With $OUT set
# (the GPU tool collects files from it) the JSON and the logs are copied there, whatever happens.
#
# Budget on one H200, 6 minutes in all (TOTAL below is 345 s, the rest is margin):
#   install ~20 s | nvidia-smi + versions ~5 s | cuda tests ~60 s (killed at 150 s)
#   | benchmark ~2-3.5 min (killed at what is left of TOTAL, at most 240 s; it writes its JSON
#     after every section, so a cut-short run keeps what it measured). Its sections, in order:
#     views; steps of SimCLR, MoCo v2 x 2, Barlow Twins (ResNet-50, batch 256) and DINO
#     (ViT-S/16, 2 x 224 + 8 x 96 px views, batch 128), one section each; end to end last, the
#     longest and the first to go when time runs out.
# Exit status: 1 when the tests failed (or none passed), else the benchmark's (non-zero when a
# section failed or the timeout stopped it).
#
# For a dry run elsewhere: GPU_CHECK_SKIP_INSTALL=1, GPU_CHECK_BENCH_ARGS="--quick --device cpu",
# GPU_CHECK_JSON=<path> (default benchmarks/results/gpu_check-cuda.json), PYTHON=<interpreter>.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
TOTAL=345
JSON="${GPU_CHECK_JSON:-benchmarks/results/gpu_check-cuda.json}"
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
summary="not run"

collect() {  # on every exit: the JSON and the logs to $OUT
    if [[ -n "${OUT:-}" ]]; then
        mkdir -p "$OUT"
        cp -f "$JSON" "$OUT/" 2>/dev/null || true
        cp -f "$LOGS"/*.log "$OUT/" 2>/dev/null || true
    fi
    echo "== logs in $LOGS${OUT:+, copied to $OUT}; ${SECONDS} s in all"
}
trap collect EXIT

echo "== install (t=${SECONDS} s)"
if [[ -z "${GPU_CHECK_SKIP_INSTALL:-}" ]]; then
    "$PY" -m pip install --no-deps --no-build-isolation --no-index -e . -q 2>&1 \
        | tee "$LOGS/install.log"
fi

echo "== machine (t=${SECONDS} s)"
{
    nvidia-smi || echo "nvidia-smi: not available"
    "$PY" -c 'import sys, torch, torchvision
cuda = torch.cuda.is_available()
print("python", sys.version.split()[0], "| torch", torch.__version__, "| torchvision",
      torchvision.__version__, "| CUDA", torch.version.cuda, "| cuDNN",
      torch.backends.cudnn.version(), "| GPU", torch.cuda.get_device_name(0) if cuda else "none")' \
        || echo "torch: cannot be imported"
} 2>&1 | tee "$LOGS/machine.log"

echo "== cuda tests (t=${SECONDS} s)"
export CUBLAS_WORKSPACE_CONFIG=:4096:8  # deterministic cuBLAS for the exact-resume test
set +e
timeout -k 10 150 "$PY" -m pytest -q -rs -m cuda tests/test_cuda.py 2>&1 | tee "$LOGS/tests.log"
tests_rc=${PIPESTATUS[0]}
set -e
summary="$(grep -E '[0-9]+ (passed|failed|skipped|errors?)|no tests ran' "$LOGS/tests.log" \
    | tail -n 1 | tr -d '=' | sed -E 's/^ +| +$//g' || true)"
if [[ $tests_rc -eq 124 || $tests_rc -eq 137 ]]; then
    summary="killed at 150 s: ${summary:-no summary}"
fi
tests_ok=0
if [[ $tests_rc -eq 0 && "$summary" == *passed* ]]; then
    tests_ok=1
fi

left=$((TOTAL - SECONDS))
limit=$((left < 240 ? left : 240))
limit=$((limit < 30 ? 30 : limit))
echo "== benchmark, at most ${limit} s (t=${SECONDS} s)"
set +e
# shellcheck disable=SC2086  # GPU_CHECK_BENCH_ARGS is a list of flags
timeout -k 15 "$limit" "$PY" benchmarks/gpu_bench.py --out "$JSON" --tests "$summary" \
    ${GPU_CHECK_BENCH_ARGS:-} 2>&1 | tee "$LOGS/bench.log"
bench_rc=${PIPESTATUS[0]}
set -e

echo "== cuda tests: ${summary:-no summary} (exit $tests_rc); benchmark exit $bench_rc"
if [[ $tests_ok -ne 1 ]]; then
    exit 1
fi
exit "$bench_rc"
