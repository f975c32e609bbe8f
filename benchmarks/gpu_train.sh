#!/usr/bin/env bash
# One call on a rented GPU (issue 10): fine-tune the shipped model on packed photos, inside a hard
# time box, sending the model back as it goes. The trainer exports the model at every checkpoint,
# and a copier puts each export into OUTDIR within 15 s, so a call cut short still returns the
# last one. Needs torch only (no PyAV: the training path does not import it).
#
#   benchmarks/gpu_train.sh OUTDIR
#
# OUTDIR gets model.safetensors + model.json (the latest export), train.log and machine.txt.
# The photos travel packed (benchmarks/pack_photos.py, 144 px WebP: 12,512 photos in 43 MiB) in one
# archive (thousands of 3.5 KB files would take 4 KB blocks each), unpacked on arrival:
#   python benchmarks/pack_photos.py ../shared/data/photos/train /tmp/pack/train --size 144 --format webp --quality 75
#   python benchmarks/pack_photos.py ../more-photos /tmp/pack/more --size 144 --format webp --quality 75
#   tar -C /tmp/pack -czf .pack/photos.tar.gz train more
# Knobs (environment): GPU_TRAIN_MINUTES (4.5), GPU_TRAIN_DATA (the archive's folders),
# GPU_TRAIN_DEVICE (cuda), GPU_TRAIN_BATCH (96), GPU_TRAIN_LR (1e-3), GPU_TRAIN_EVERY (300 steps).
# Rehearsal on a CPU: GPU_TRAIN_DEVICE=cpu GPU_TRAIN_MINUTES=0.3 GPU_TRAIN_DATA=/tmp/remaster-photos/train GPU_TRAIN_EVERY=5 ...
set -u
OUT=${1:?usage: benchmarks/gpu_train.sh OUTDIR}
cd "$(dirname "$0")/.." || exit 1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
MINUTES=${GPU_TRAIN_MINUTES:-4.5}
RUN=${TMPDIR:-/tmp}/remaster-gpu-train
rm -rf "$RUN" && mkdir -p "$RUN"
PHOTOS=${TMPDIR:-/tmp}/remaster-photos
rm -rf "$PHOTOS" && mkdir -p "$PHOTOS" && tar -C "$PHOTOS" -xzf .pack/photos.tar.gz || { echo "no .pack/photos.tar.gz" >"$OUT/train.log"; exit 1; }
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; nproc
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } >"$OUT/machine.txt" 2>&1

copy_model() {  # the latest export, whole files only (the trainer writes atomically)
    for f in model.safetensors model.json; do
        if [ -f "$RUN/$f" ] && [ "$RUN/$f" -nt "$OUT/$f" ]; then cp "$RUN/$f" "$OUT/.$f" && mv "$OUT/.$f" "$OUT/$f"; fi
    done
}
( while sleep 15; do copy_model; done ) &
copier=$!

# The time box: the trainer's own budget, then a hard limit 2.5 minutes later (cache, export).
limit=$(python3 -c "print(int(float('$MINUTES') * 60 + 150))")
timeout "$limit" python3 - "$RUN/model.safetensors" "$MINUTES" ${GPU_TRAIN_DATA:-$PHOTOS/train $PHOTOS/more} >"$OUT/train.log" 2>&1 <<PYEOF
import json, sys, time
from remaster.nets import NetConfig
from remaster.train import TrainConfig, train
out, minutes, data = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
config = TrainConfig(
    recipe="bins", net=NetConfig(hints=True), steps=1_000_000, minutes=minutes,
    batch_size=int("${GPU_TRAIN_BATCH:-96}"), crop=128, cache_size=144, lr=float("${GPU_TRAIN_LR:-1e-3}"),
    rebalance=0.8, checkpoint_every=int("${GPU_TRAIN_EVERY:-300}"), val_every=10**9, workers=16,
    device="${GPU_TRAIN_DEVICE:-cuda}", init="models/remaster-default.safetensors",
)
started = time.time()
print(json.dumps(train(config, data, out, progress=False), indent=2))
print(f"wall {time.time() - started:.0f} s")
PYEOF
echo "exit $?" >>"$OUT/train.log"
kill "$copier" 2>/dev/null
copy_model
ls -la "$OUT"
tail -n 20 "$OUT/train.log"
