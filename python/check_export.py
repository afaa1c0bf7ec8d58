"""Shows that a state exported by the project loads into the PyTorch reference module and gives
the same logits as the TypeScript model.

    npm run predict -- --weights STATE.safetensors --limit 200 --out /tmp/pred.json
    .venv/bin/python python/check_export.py --weights STATE.safetensors --predictions /tmp/pred.json

Loads the state with strict key checking (num_batches_tracked included), reads the first N
official test images from data/cifar-10-batches-bin/test_batch.bin, normalises them as the
file's metadata says, and compares PyTorch's evaluation-mode logits with the JSON's.
Exit status 0 when every logit agrees within --atol (default 1e-4).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from reference import DynamicFilterNet  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
NORMS = {"half": ([0.5] * 3, [0.5] * 3), "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])}


def test_images(n: int, cifar_dir: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(cifar_dir / "test_batch.bin", dtype=np.uint8, count=n * 3073).reshape(n, 3073)
    return raw[:, 1:].reshape(n, 3, 32, 32), raw[:, 0].astype(np.int64)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--predictions", required=True, help="JSON written by npm run predict")
    ap.add_argument("--cifar-dir", default=str(ROOT / "data" / "cifar-10-batches-bin"))
    ap.add_argument("--atol", type=float, default=1e-4)
    args = ap.parse_args()

    with safe_open(args.weights, "pt") as f:
        meta = f.metadata() or {}
    variant, norm = meta.get("variant"), meta.get("norm")
    if variant not in ("dynamic", "static") or norm not in NORMS:
        print(f"{args.weights}: metadata must record variant and norm; got {meta}", file=sys.stderr)
        return 2
    state = {k: v for k, v in load_file(args.weights).items() if not k.startswith("adam.")}
    model = DynamicFilterNet(variant)
    model.load_state_dict(state, strict=True)  # every key and shape, as PyTorch checks them
    model.eval()

    pred = json.loads(pathlib.Path(args.predictions).read_text())
    n = len(pred["logits"])
    images, labels = test_images(n, pathlib.Path(args.cifar_dir))
    if labels.tolist() != pred["labels"]:
        print("the predictions' labels are not those of the first test images", file=sys.stderr)
        return 1
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMS[norm])
    x = (torch.from_numpy(images).float() / 255 - mean) / std
    with torch.no_grad():
        logits = model(x)
    ts = torch.tensor(pred["logits"], dtype=torch.float32)
    diff = (logits - ts).abs().max().item()
    agree = (logits.argmax(1) == ts.argmax(1)).float().mean().item()
    acc = (logits.argmax(1) == torch.from_numpy(labels)).float().mean().item()
    print(
        f"{variant} state, '{norm}' normalisation, {n} test images: max |PyTorch − TypeScript| = {diff:.2e} "
        f"(atol {args.atol:g}); argmax agreement {agree:.2%}; PyTorch accuracy {acc:.2%}"
    )
    return 0 if diff <= args.atol else 1


if __name__ == "__main__":
    sys.exit(main())
