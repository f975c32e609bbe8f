#!/usr/bin/env bash
# How the shipped default model was trained: the candidate recipes side by side on one GPU,
# each with the same time budget, on the packed training photos (benchmarks/pack_photos.py).
# The better one by `remaster eval images ../shared/data/photos/val` becomes
# models/remaster-default.safetensors (see models/MODEL_CARD.md).
#
#   python benchmarks/pack_photos.py ../shared/data/photos/train .pack/train --size 256
#   python benchmarks/pack_photos.py ../shared/data/photos/val .pack/val --long-side 256
#   MINUTES=4.5 bash models/train-default.sh .pack/train .pack/val runs
set -euo pipefail
data=${1:-.pack/train}
val=${2:-.pack/val}
out=${3:-runs}
minutes=${MINUTES:-4.5}
mkdir -p "$out"
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
# A few steps first, so a broken environment costs seconds, not the whole budget.
python3 -m remaster.cli train "$data" --out "$out/smoke.safetensors" --steps 5 --device cuda --json > "$out/smoke.log" 2>&1 \
  || { cat "$out/smoke.log"; exit 1; }
common=(--steps 1000000 --minutes "$minutes" --checkpoint-every 5000 --val-every 4000 --device cuda --workers 5 --json)
python3 -m remaster.cli train "$data" --val "$val" --out "$out/bins.safetensors" --recipe bins --batch-size 64 "${common[@]}" > "$out/bins.log" 2>&1 &
python3 -m remaster.cli train "$data" --val "$val" --out "$out/ab.safetensors" --recipe ab --batch-size 64 "${common[@]}" > "$out/ab.log" 2>&1 &
python3 -m remaster.cli train "$data" --val "$val" --out "$out/bins224.safetensors" --recipe bins --crop 224 --batch-size 48 "${common[@]}" > "$out/bins224.log" 2>&1 &
wait
