#!/usr/bin/env bash
# The GPU checks, in one script: a GPU machine is often lent for minutes, so everything it should run is
# prepared here and run in one go, each stage under its own time limit, with one log.
#
#   bash benchmarks/gpu.sh OUT STAGE...
#
# Stages, in the order given:
#   setup       MNIST and Fashion-MNIST (whichever are there) from DATA_XZ (the IDX files compressed with xz, in
#               torchvision's layout; default .gpudata) into /tmp/genvae-data; the Python packages that run the chapters (or the whole
#               book) from wheels in WHEELS (default .whl: a machine with torch but no Jupyter and no network),
#               installed into /tmp/genvae-site in the background
#   jobs        six one-epoch DCGANs trained by 1, 2, 3 and 6 processes sharing the GPU (benchmarks/run.py's jobs
#               section), each into an empty cache of its own
#   reproduce   every model of the MNIST book, trained cold into GENVAE_CACHE (benchmarks/run.py's reproduce
#               section: seconds per unit and in all)
#   cuda-tests  tests/test_cuda.py and the CUDA leg of the model suite
#   chapters    the chapters executed on the GPU from that cache (genvae chapters): their time, and the executed
#               notebooks in OUT (executed.tar.gz.*), for a Sphinx build elsewhere
#   book        the same, then the Sphinx build (needs the book's Sphinx packages among the wheels)
#   sections    the benchmark sections of a GPU other than reproduce and jobs (resume, headlines, peak, loop, stack,
#               precision; SECTIONS_ONLY chooses some), on that cache
#
# DEADLINE (seconds from the start), where set, shortens the last stages' limits so that the whole run ends
# within it and its results are packed.
# OUT receives log.txt (everything printed), stages.tsv (each stage's exit status and seconds) and
# results.tar.gz (benchmarks/results/*-cuda.json and the executed chapters' timings).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 GENVAE_DATA=/tmp/genvae-data GENVAE_CACHE=${GENVAE_CACHE:-/tmp/genvae-cache}
export GENVAE_WIDGETS=0 PYTHONPATH="$PWD:/tmp/genvae-site${PYTHONPATH:+:$PYTHONPATH}"
unset MPLBACKEND
PY=${PY:-python3}


ms() { echo $(( $(date +%s%N) / 1000000 )); }

START=$(ms)
stage() {  # stage NAME LIMIT_S COMMAND...: run under a time limit (and within DEADLINE s of the start), log, time
    local name=$1 limit=$2
    shift 2
    if [ -n "${DEADLINE:-}" ]; then
        local left=$(( DEADLINE - ($(ms) - START) / 1000 - 15 ))
        [ "$left" -lt "$limit" ] && limit=$left
        [ "$limit" -le 0 ] && { echo "=== $name skipped: no time left" | tee -a "$LOG"; return; }
    fi
    echo "=== $name (limit $limit s) $(date -u +%H:%M:%S)" | tee -a "$LOG"
    local t0=$(ms)
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]} t=$(( $(ms) - t0 ))
    printf '%s\t%s\t%d.%03d\n' "$name" "$rc" $((t / 1000)) $((t % 1000)) | tee -a "$OUT/stages.tsv"
}

if [ "${1:-}" = _setup ]; then
    $PY - "${DATA_XZ:-.gpudata}" "$GENVAE_DATA" <<'PYEOF' || exit 1
import lzma, shutil, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for f in sorted(src.glob("*/raw/*.xz")):
    out = dst / f.relative_to(src).with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(f) as a, open(out, "wb") as b:
        shutil.copyfileobj(a, b)
    print("data:", out)
PYEOF
    nvidia-smi -L
    $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
    if ls "${WHEELS:-.whl}"/*.whl > /dev/null 2>&1; then  # in the background, away from the log's pipe
        ( $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/genvae-site \
            "${WHEELS:-.whl}"/*.whl > /tmp/genvae-pip.log 2>&1; echo $? > /tmp/genvae-pip.rc ) > /dev/null 2>&1 &
    fi
    exit 0
fi

if [ "${1:-}" = _chapters ] || [ "${1:-}" = _book ]; then
    for _ in $(seq 120); do [ -f /tmp/genvae-pip.rc ] && break; sleep 1; done
    tail -5 /tmp/genvae-pip.log 2>/dev/null
    [ "$(cat /tmp/genvae-pip.rc 2>/dev/null)" = 0 ] || { echo "the packages did not install"; exit 1; }
    t0=$(ms)
    if [ "$1" = _chapters ]; then
        $PY -m genvae chapters --out _build/executed --jobs "${BOOK_JOBS:-8}" ${BOOK_CHAPTERS:-}
        rc=$?
        echo "chapters on the GPU: $(( ($(ms) - t0) / 1000 )) s"
        tar czf - -C _build executed | split -b 15M - "$2/executed.tar.gz."
        exit $rc
    fi
    $PY -m genvae chapters --out _build/executed --build-output . --jobs "${BOOK_JOBS:-8}" ${BOOK_CHAPTERS:-} || exit 1
    t1=$(ms)
    echo "chapters on the GPU: $(( (t1 - t0) / 1000 )) s"
    $PY -c "from jupyter_book.cli.main import main; main()" build . -W --keep-going || exit 1
    echo "book on the GPU: chapters $(( (t1 - t0) / 1000 )) s, Sphinx $(( ($(ms) - t1) / 1000 )) s"
    exit 0
fi

OUT=${1:?usage: gpu.sh OUT STAGE...}
shift
mkdir -p "$OUT"
LOG="$OUT/log.txt"
for s in "$@"; do
    case $s in
        setup) stage setup 60 bash "$0" _setup ;;
        jobs) stage jobs "${JOBS_LIMIT:-180}" $PY benchmarks/run.py --device cuda --only jobs ;;
        reproduce) stage reproduce "${REPRODUCE_LIMIT:-240}" $PY benchmarks/run.py --device cuda --cache "$GENVAE_CACHE" --only reproduce ;;
        cuda-tests) stage cuda-tests "${TESTS_LIMIT:-150}" $PY -m pytest -q -p no:cacheprovider -n 4 \
                        tests/test_cuda.py tests/test_models.py tests/test_model_family.py -k cuda ;;
        chapters) stage chapters "${BOOK_LIMIT:-300}" bash "$0" _chapters "$OUT" ;;
        book) stage book "${BOOK_LIMIT:-300}" bash "$0" _book ;;
        sections) stage sections "${SECTIONS_LIMIT:-240}" $PY benchmarks/run.py --device cuda --cache "$GENVAE_CACHE" \
                      --only ${SECTIONS_ONLY:-resume headlines peak loop stack precision} ;;
        *) echo "unknown stage $s" | tee -a "$LOG" ;;
    esac
done
tar czf "$OUT/results.tar.gz" benchmarks/results/*-cuda.json "$GENVAE_CACHE/chapter-seconds.json" 2>/dev/null
cat "$OUT/stages.tsv"
