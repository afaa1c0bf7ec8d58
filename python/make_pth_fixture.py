"""Writes test/fixtures/resnet18-stem-layer1-unfolded.pth: torchvision's layout and torch.save
format (what `resnet18-f37072fd.pth` looks like, cut to the stem and layer1), built from the
repo's folded weights (data/pretrained/, see its README) so that tests need no internet.

Unfolding: the folded file holds W' = W·s and b' = β − μ·s with s = γ/√(σ²+ε). Any BatchNorm
(γ, β, μ, σ²) with W = W'/s and β = b' + μ·s recomputes the same function; this picks random
γ, μ, σ² (not the trivial γ=1, μ=0, σ²=1−ε), so a loader that ignored or misused a BatchNorm
tensor would not reproduce the folded network. A few keys of the rest of ResNet-18 are added
(layer2…, fc) as in the real file; loaders must ignore them.

    .venv/bin/python python/make_pth_fixture.py [--folded FILE]
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from reference import Backbone  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_FOLDED = ROOT / "data" / "pretrained" / "resnet18-imagenet1k-v1-bnfolded-stem-layer1.safetensors"
OUT = ROOT / "test" / "fixtures" / "resnet18-stem-layer1-unfolded.pth"
EPS = 1e-5
CONV_BN = {
    "conv1": "bn1",
    "layer1.0.conv1": "layer1.0.bn1",
    "layer1.0.conv2": "layer1.0.bn2",
    "layer1.1.conv1": "layer1.1.bn1",
    "layer1.1.conv2": "layer1.1.bn2",
}


def unfold(folded: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for conv, bn in CONV_BN.items():
        w, b = folded[f"{conv}.weight"].double(), folded[f"{conv}.bias"].double()
        c = w.shape[0]
        gamma = 0.5 + torch.rand(c, generator=g, dtype=torch.float64)
        mean = 0.3 * torch.randn(c, generator=g, dtype=torch.float64)
        var = 0.5 + torch.rand(c, generator=g, dtype=torch.float64)
        s = gamma / torch.sqrt(var + EPS)
        state[f"{conv}.weight"] = (w / s.view(-1, 1, 1, 1)).float()
        state[f"{bn}.weight"] = gamma.float()
        state[f"{bn}.bias"] = (b + mean * s).float()
        state[f"{bn}.running_mean"] = mean.float()
        state[f"{bn}.running_var"] = var.float()
    return state


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folded", default=str(DEFAULT_FOLDED))
    args = ap.parse_args()
    folded = load_file(args.folded)
    model = Backbone()  # torchvision's names: conv1, bn1, layer1.{0,1}.{conv,bn}{1,2}
    missing, unexpected = model.load_state_dict(unfold(folded), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.num_batches_tracked.fill_(1000)
    state = model.state_dict()  # an OrderedDict with _metadata, as torchvision's file has
    state["layer2.0.bn1.num_batches_tracked"] = torch.tensor(0)
    state["fc.bias"] = torch.zeros(1000)
    # Check: in eval mode this backbone computes the folded network.
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        h = torch.relu(torch.nn.functional.conv2d(x, folded["conv1.weight"], folded["conv1.bias"], 2, 3))
        h = torch.nn.functional.max_pool2d(h, 3, 2, 1)
        for i in (0, 1):
            p = f"layer1.{i}"
            y = torch.relu(torch.nn.functional.conv2d(h, folded[f"{p}.conv1.weight"], folded[f"{p}.conv1.bias"], 1, 1))
            y = torch.nn.functional.conv2d(y, folded[f"{p}.conv2.weight"], folded[f"{p}.conv2.bias"], 1, 1)
            h = torch.relu(y + h)
        err = (model(x) - h).abs().max().item()
    assert err < 1e-4, err
    tmp = OUT.with_suffix(".pth.tmp")
    torch.save(state, tmp)
    tmp.replace(OUT)
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size:,} bytes; unfolded eval vs folded max |diff| {err:.2e}")


if __name__ == "__main__":
    main()
