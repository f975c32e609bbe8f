"""Average the weights of two trained models of one architecture (a "model soup", Wortsman et al.
2022): `(1 - alpha) * A + alpha * B`, parameter by parameter, written as a new model.

    python models/mix_models.py A.safetensors B.safetensors --alpha 0.75 --out models/remaster-hints.safetensors

How the shipped remaster-hints model was made (models/train-default.sh, stage C): A is the
default model v2, B the same network fine-tuned for 5 minutes on an H200 (benchmarks/gpu_train.sh).
B follows hints closely but spreads a clicked color too far; A barely follows them. Their 1:3
mix keeps most of B's response and A's restraint (models/MODEL_CARD.md has the measurements).
The two must share widths, blocks and color bins, which a fine-tuned copy does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from remaster.net.colorizer import InferenceConfig, net_from_weights, read_weights, save_weights


def mix(
    a: Path, b: Path, alpha: float, out: Path, *, working_short_side: int, temperature: float, doubt: float
) -> dict:
    tensors_a, meta_a = read_weights(a)
    tensors_b, meta_b = read_weights(b)
    net = net_from_weights(tensors_a, meta_a, a).float()
    other = net_from_weights(tensors_b, meta_b, b).float()
    if net.config != other.config:
        raise SystemExit(f"{a} and {b} are different networks ({net.config} against {other.config})")
    theirs = other.state_dict()
    with torch.no_grad():
        for name, mine in net.state_dict().items():
            if mine.is_floating_point():  # integer buffers (BN's batch counts) stay A's
                mine.copy_((1 - alpha) * mine + alpha * theirs[name])
    extra = {
        "mixed": {"a": a.name, "b": b.name, "alpha": alpha},
        "training": {"a": json.loads(meta_a.get("training", "{}")), "b": json.loads(meta_b.get("training", "{}"))},
    }
    inference = InferenceConfig(working_short_side=working_short_side, temperature=temperature, doubt=doubt)
    return save_weights(net, out, inference=inference, extra=extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--alpha", type=float, default=0.75, help="B's share (0 = A, 1 = B)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--working-short-side", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.38)
    parser.add_argument("--doubt", type=float, default=0.0)
    args = parser.parse_args()
    card = mix(
        args.a,
        args.b,
        args.alpha,
        args.out,
        working_short_side=args.working_short_side,
        temperature=args.temperature,
        doubt=args.doubt,
    )
    print(f"wrote {args.out} (sha256 {card['sha256']})")


if __name__ == "__main__":
    main()
