"""Generates the golden fixtures the vitest tests compare the TypeScript model with.

    .venv/bin/python python/make_golden.py        # writes test/fixtures/golden-{dynamic,static}.safetensors

For each variant: weights and a batch of 4 inputs from deterministic recipes (stored in the
metadata, rebuilt bit for bit by test/golden-recipe.ts, so the fixtures stay small), then
  1. evaluation mode: features, response maps and logits;
  2. training mode (batch statistics): logits, the cross-entropy loss on fixed labels, its
     gradients wrt several parameters (backbone conv/BN, embeddings, generator, dc, score),
     and the running statistics after that one training step (momentum 0.1, unbiased variance).
Tensors use PyTorch layouts (NCHW / OIHW). Needs torch (CI does not: it reads the committed files).
"""
from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from reference import DynamicFilterNet, load_recipe, recipe_for, recipe_json, recipe_tensor  # noqa: E402

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "test" / "fixtures"
BATCH = 4
INPUT_RECIPE = [1, 0.0, 2.0]  # uniform in [-2, 2): the range of normalised pixels
LABELS = [3, 0, 7, 9]
GRADS = {
    "dynamic": ["embed.weight", "gen.0.bias", "gen.2.weight", "gen.2.bias"],
    "static": ["dc.weight"],
}
COMMON_GRADS = [
    "backbone.conv1.weight",
    "backbone.bn1.weight",
    "backbone.bn1.bias",
    "backbone.layer1.0.bn1.bias",
    "backbone.layer1.1.bn2.weight",
    "score.0.weight",
    "score.0.bias",
    "score.2.weight",
    # not score.2.bias: it shifts all ten logits equally, so its cross-entropy gradient is 0.
]


def make(variant: str) -> pathlib.Path:
    torch.manual_seed(0)
    model = DynamicFilterNet(variant)
    recipe = recipe_for(model)
    load_recipe(model, recipe)
    x = torch.from_numpy(recipe_tensor([BATCH, 3, 32, 32], *INPUT_RECIPE))
    labels = torch.tensor(LABELS, dtype=torch.int64)
    out: dict[str, torch.Tensor] = {"labels": labels}

    model.eval()
    with torch.no_grad():
        features = model.backbone(x)
        out["eval.features"] = features
        out["eval.maps"] = model.response_maps(features)
        out["eval.logits"] = model(x)
        out["class_filters"] = model.class_filters()
        loop = model.forward_loop(x)
        assert torch.allclose(loop, out["eval.logits"], atol=1e-6), "batched forward != loop of ten"

    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out["train.logits"] = logits.detach()
    out["train.loss"] = loss.detach().reshape([])
    params = dict(model.named_parameters())
    for name in COMMON_GRADS + GRADS[variant]:
        grad = params[name].grad
        assert grad is not None and grad.abs().sum() > 0, f"no gradient reaches {name}"
        out[f"grad.{name}"] = grad.detach().clone()
    for name, t in model.state_dict().items():
        if "running_" in name or name.endswith("num_batches_tracked"):
            out[f"after_train.{name}"] = t.clone()

    meta = {
        "variant": variant,
        "recipe": recipe_json(recipe),
        "input_recipe": json.dumps(INPUT_RECIPE),
        "input_shape": json.dumps([BATCH, 3, 32, 32]),
        "loss": "cross_entropy(train.logits, labels), mean over the batch",
        "order": "eval pass first (recipe running stats), then one train-mode forward + backward",
        "torch": torch.__version__,
    }
    file = FIXTURES / f"golden-{variant}.safetensors"
    tmp = file.with_suffix(".safetensors.tmp")
    save_file({k: v.contiguous() for k, v in out.items()}, str(tmp), metadata=meta)
    tmp.replace(file)
    return file


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    total = 0
    for v in ("dynamic", "static"):
        f = make(v)
        total += f.stat().st_size
        print(f"{f.relative_to(FIXTURES.parent.parent)}: {f.stat().st_size:,} bytes")
    print(f"total {total:,} bytes")
