#!/usr/bin/env bash
# One call on a GPU machine (issue 11, part 5): the CUDA tests, then `remaster bench` at 1080p and
# 4K with DIS and RAFT-small, NVDEC against CPU decoding, and with --workers where this build has
# it. Results stream into OUTDIR as each step ends (a run cut short still leaves what it did):
#   OUTDIR/log.txt         everything, in order (commands, stderr, tables)
#   OUTDIR/tests.txt       pytest's output for the CUDA tests
#   OUTDIR/results.jsonl   one `remaster bench --json` result per line, with the step's name
#   OUTDIR/tables.txt      the readable tables, one per step
#
#   benchmarks/device.sh OUTDIR [RAFT_SMALL_WEIGHTS]
#
# The machine has torch but no PyAV and no network: a PyAV wheel travels in .whl/ (carried; see
# README.md ("Measuring throughput") for the download command) and is installed into /tmp first. The RAFT-small
# weights (../shared does not travel) come as the second argument, or $REMASTER_RAFT_WEIGHTS, or
# .weights/raft_small_C_T.safetensors (carried), or ../shared/data/weights/ when it is there.
#
# Sized to finish well inside 10 minutes on an H100/H200: DEVICE_SH_BUDGET (seconds, default 420)
# skips the steps that would start after it, and no step runs past the budget + 120 s. Rehearsal on a CPU, tiny sizes, same steps:
#   DEVICE_SH_REHEARSAL=1 benchmarks/device.sh /tmp/rehearsal
# Other knobs: DEVICE_SH_HD="1920x1080:400", DEVICE_SH_UHD="3840x2160:120", DEVICE_SH_WORKERS=4,
# DEVICE_SH_DEVICE=cuda, PYTHON=python3, DEVICE_SH_TESTS=0 (skip the CUDA tests), DEVICE_SH_STEPS
# (a bash regular expression: only the steps whose names match, e.g. '^1080p' for the 1080p ones).
set -u
OUT=${1:?usage: benchmarks/device.sh OUTDIR [RAFT_SMALL_WEIGHTS]}
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/log.txt
: >"$LOG"
PY=${PYTHON:-python3}
BUDGET=${DEVICE_SH_BUDGET:-420}   # no step starts after this many seconds
HARD=$(( BUDGET + 120 ))           # and none runs past this one (a step's own limit shrinks to fit)
WORKERS=${DEVICE_SH_WORKERS:-4}
DEVICE=${DEVICE_SH_DEVICE:-cuda}
HD=${DEVICE_SH_HD:-1920x1080:400}
UHD=${DEVICE_SH_UHD:-3840x2160:120}
if [ -n "${DEVICE_SH_REHEARSAL:-}" ]; then
    HD=${DEVICE_SH_HD:-128x72:12}
    UHD=${DEVICE_SH_UHD:-256x144:8}
    DEVICE=${DEVICE_SH_DEVICE:-cpu}
fi
INPUTS=${TMPDIR:-/tmp}/remaster-device-inputs   # the made films: reused by every step, never sent back
mkdir -p "$INPUTS"

say() { echo "[$(date -u +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$LOG"; }

# --- setup: PyAV, the package, the weights -----------------------------------------------------
if ! "$PY" -c "import av" 2>/dev/null; then
    if ls "$ROOT"/.whl/*.whl >/dev/null 2>&1; then
        say "installing the carried wheels: $(ls "$ROOT"/.whl | tr '\n' ' ')"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/remaster-site \
            "$ROOT"/.whl/*.whl >>"$LOG" 2>&1 || { say "wheel install failed"; exit 1; }
        export PYTHONPATH=/tmp/remaster-site${PYTHONPATH:+:$PYTHONPATH}
    else
        say "no PyAV here and no wheel in .whl/: see README.md ("Measuring throughput")"; exit 1
    fi
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
WEIGHTS=${2:-${REMASTER_RAFT_WEIGHTS:-}}
for candidate in "$ROOT/.weights/raft_small_C_T.safetensors" "$ROOT/../shared/data/weights/raft_small_C_T.safetensors"; do
    [ -z "$WEIGHTS" ] && [ -f "$candidate" ] && WEIGHTS=$candidate
done
[ -n "$WEIGHTS" ] && [ ! -f "$WEIGHTS" ] && { say "RAFT-small weights $WEIGHTS: no such file"; exit 1; }
say "machine"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
    nproc
    "$PY" - <<'EOF'
import sys, torch, av, remaster
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available() and torch.cuda.get_device_name(0))
print("av", av.__version__, "hwdevices", av.codec.hwaccel.hwdevices_available(), "remaster", remaster.__file__)
EOF
} >>"$LOG" 2>&1
HAS_WORKERS=$("$PY" -c "import inspect, remaster.run.pipeline as p; print(int('workers' in inspect.signature(p.colorize_video).parameters))" 2>>"$LOG")
say "weights: ${WEIGHTS:-none (RAFT steps skipped)}; --workers in this build: ${HAS_WORKERS:-0}; budget ${BUDGET}s"

# --- the CUDA tests -----------------------------------------------------------------------------
if [ "${DEVICE_SH_TESTS:-1}" != 0 ]; then
say "tests: the GPU path, then every cuda-marked test"
timeout 150 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu_path.py >"$OUT/tests.txt" 2>&1
echo "exit $?" >>"$OUT/tests.txt"
timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests >>"$OUT/tests.txt" 2>&1
echo "exit $?" >>"$OUT/tests.txt"
tail -n 3 "$OUT/tests.txt" | tee -a "$LOG"
fi

# --- the benches --------------------------------------------------------------------------------
# step NAME SIZE:FRAMES [bench options...]: one `remaster bench` call, its JSON line and its table.
step() {
    local name=$1 spec=$2
    shift 2
    [ -n "${DEVICE_SH_STEPS:-}" ] && ! [[ $name =~ $DEVICE_SH_STEPS ]] && return
    if [ "$SECONDS" -ge "$BUDGET" ]; then
        say "$name: skipped (past the ${BUDGET}s budget)"
        return
    fi
    local size=${spec%%:*} frames=${spec##*:}
    say "$name: remaster bench --sizes $size --frames $frames --device $DEVICE $*"
    local left=$(( HARD - SECONDS ))
    [ "$left" -gt 200 ] && left=200
    timeout "$left" "$PY" -m remaster.cli.main bench --sizes "$size" --frames "$frames" --device "$DEVICE" --inputs "$INPUTS" --json "$@" \
        >"$OUT/.step.json" 2>>"$LOG"
    local code=$?
    if [ "$code" = 0 ]; then
        "$PY" - "$name" "$OUT/.step.json" "$OUT/results.jsonl" "$OUT/tables.txt" >>"$LOG" 2>&1 <<'EOF'
import json, sys
from remaster.measure.bench import format_table
name, path, jsonl, tables = sys.argv[1:]
result = json.load(open(path))
result["step"] = name
open(jsonl, "a").write(json.dumps(result) + "\n")
open(tables, "a").write(f"== {name}\n{format_table(result)}\n\n")
print(format_table(result))
EOF
    else
        say "$name: failed or timed out (exit $code)"
    fi
    rm -f "$OUT/.step.json"
}

RAFT=()
[ -n "$WEIGHTS" ] && RAFT=(--flow raft-small --flow-weights "$WEIGHTS")
hd_frames=${HD##*:}
uhd_frames=${UHD##*:}
seg_hd=$(( (hd_frames + WORKERS - 1) / WORKERS ))
seg_uhd=$(( (uhd_frames + WORKERS - 1) / WORKERS ))

step "1080p dis" "$HD" --flow dis
[ -n "$WEIGHTS" ] && step "1080p raft-small" "$HD" "${RAFT[@]}"
[ -n "$WEIGHTS" ] && step "4K raft-small" "$UHD" "${RAFT[@]}"
[ "${HAS_WORKERS:-0}" = 1 ] && step "1080p dis --workers $WORKERS" "$HD" --flow dis --workers "$WORKERS" --segment-frames "$seg_hd"
step "1080p dis nvdec" "$HD" --flow dis --decoder nvdec
step "4K dis" "$UHD" --flow dis
[ "${HAS_WORKERS:-0}" = 1 ] && [ -n "$WEIGHTS" ] && step "1080p raft-small --workers $WORKERS" "$HD" "${RAFT[@]}" --workers "$WORKERS" --segment-frames "$seg_hd"
[ "${HAS_WORKERS:-0}" = 1 ] && step "4K dis --workers $WORKERS" "$UHD" --flow dis --workers "$WORKERS" --segment-frames "$seg_uhd"
[ "${HAS_WORKERS:-0}" = 1 ] && [ -n "$WEIGHTS" ] && step "4K raft-small --workers $WORKERS" "$UHD" "${RAFT[@]}" --workers "$WORKERS" --segment-frames "$seg_uhd"
[ "${HAS_WORKERS:-0}" = 1 ] || say "--workers steps left out: this build has no --workers"
say "done in ${SECONDS}s"
