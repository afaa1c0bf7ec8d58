"""PyTorch reference of the lab's network, with exactly the state names of lib/model/model.ts.

    backbone.conv1.weight, backbone.bn1.*, backbone.layer1.{0,1}.{conv1,bn1,conv2,bn2}.*
    embed.weight, gen.0.*, gen.2.*            (dynamic head)
    dc.weight                                 (static head)
    score.0.*, score.2.*

Used by make_golden.py (fixtures for the vitest golden tests) and check_export.py (a state
written by the project loads here and gives the same logits). Also: `recipe_tensor`, the
deterministic pseudo-random tensors both languages rebuild bit for bit (test/golden-recipe.ts),
so that the committed fixtures need not store the weights.
"""
from __future__ import annotations

import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 10
EMBED_DIM = 128
CHANNELS = 64


class BasicBlock(nn.Module):
    """torchvision's BasicBlock, 64 channels, stride 1, identity shortcut."""

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class Backbone(nn.Module):
    """torchvision ResNet-18 up to and including layer1: [b, 3, 32, 32] -> [b, 64, 8, 8]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(), BasicBlock())

    def forward(self, x):
        return self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))


class DynamicFilterNet(nn.Module):
    """variant 'dynamic': generated, L2-normalised class filters; 'static': ten learned filters."""

    def __init__(self, variant: str = "dynamic"):
        super().__init__()
        if variant not in ("dynamic", "static"):
            raise ValueError(f"variant must be dynamic or static, got {variant!r}")
        self.variant = variant
        self.backbone = Backbone()
        if variant == "dynamic":
            self.embed = nn.Embedding(NUM_CLASSES, EMBED_DIM)
            self.gen = nn.Sequential(nn.Linear(EMBED_DIM, 256), nn.ReLU(), nn.Linear(256, CHANNELS), nn.Tanh())
        else:
            self.dc = nn.Conv2d(CHANNELS, NUM_CLASSES, 1, bias=False)
        self.score = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def class_filters(self) -> torch.Tensor:
        """[10, 64]: the 1x1 filter of each class."""
        if self.variant == "dynamic":
            return F.normalize(self.gen(self.embed.weight), p=2, dim=1)
        return self.dc.weight.view(NUM_CLASSES, CHANNELS)

    def response_maps(self, features: torch.Tensor) -> torch.Tensor:
        """[b, 10, 8, 8] = 1x1 convolution of the features with every class filter, / sqrt(64)."""
        filters = self.class_filters().view(NUM_CLASSES, CHANNELS, 1, 1)
        return F.conv2d(features, filters) / math.sqrt(CHANNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.response_maps(self.backbone(x))  # [b, 10, 8, 8]
        return self.score(maps.flatten(2)).squeeze(-1)  # [b, 10]

    def forward_loop(self, x: torch.Tensor) -> torch.Tensor:
        """The lab's formulation: one class at a time (for checking the batched forward)."""
        f = self.backbone(x)
        filters = self.class_filters()
        scores = []
        for c in range(NUM_CLASSES):
            m = F.conv2d(f, filters[c].view(1, CHANNELS, 1, 1)) / math.sqrt(CHANNELS)  # [b, 1, 8, 8]
            scores.append(self.score(m.flatten(1)))  # [b, 1]
        return torch.cat(scores, dim=1)


# ---- deterministic tensors shared with TypeScript (test/golden-recipe.ts) --------------------

def mulberry32(seed: int, n: int) -> np.ndarray:
    """The first n outputs of mulberry32(seed) in [0, 1), as lib/runtime/random.ts computes them."""
    M = np.uint64(0xFFFFFFFF)
    state = (np.uint64(seed & 0xFFFFFFFF) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x6D2B79F5)) & M
    t = state.astype(np.uint64)

    def imul(a, b):
        return (a * b) & M

    t = imul(t ^ (t >> np.uint64(15)), t | np.uint64(1))
    t = (t ^ ((t + imul(t ^ (t >> np.uint64(7)), t | np.uint64(61))) & M)) & M
    out = (t ^ (t >> np.uint64(14))) & M
    return out.astype(np.float64) / 4294967296.0


def recipe_tensor(shape: list[int], seed: int, offset: float, scale: float) -> np.ndarray:
    """float32(offset + scale * (2u - 1)), u from mulberry32(seed): computed in float64 and then
    rounded once, so TypeScript rebuilds the same bits."""
    n = int(np.prod(shape)) if shape else 1
    u = mulberry32(seed, n)
    return (offset + scale * (2.0 * u - 1.0)).astype(np.float32).reshape(shape)


def recipe_for(model: DynamicFilterNet) -> dict[str, list[float]]:
    """A recipe [seed, offset, scale] for every floating tensor of the model's state."""
    recipe: dict[str, list[float]] = {}
    fan_ins: dict[str, int] = {}  # module -> fan_in of its weight (state_dict lists it before the bias)
    for i, (name, t) in enumerate(model.state_dict().items()):
        if name.endswith("num_batches_tracked"):
            continue
        seed = 1000 + i
        if ".bn" in name or name.startswith("backbone.bn"):
            leaf = name.rsplit(".", 1)[1]
            recipe[name] = {
                "weight": [seed, 1.0, 0.5],  # gamma in [0.5, 1.5)
                "bias": [seed, 0.0, 0.2],
                "running_mean": [seed, 0.0, 0.2],
                "running_var": [seed, 1.0, 0.5],
            }[leaf]
        elif t.dim() == 4 and name.startswith("backbone."):
            fan_out = t.shape[0] * t.shape[2] * t.shape[3]
            recipe[name] = [seed, 0.0, math.sqrt(3) * math.sqrt(2 / fan_out)]  # kaiming std, uniform
        elif name == "embed.weight":
            recipe[name] = [seed, 0.0, 1.5]
        else:
            module = name.rsplit(".", 1)[0]
            if t.dim() > 1:
                fan_ins[module] = int(np.prod(t.shape[1:]))
            recipe[name] = [seed, 0.0, 1 / math.sqrt(fan_ins[module])]  # PyTorch's default bound
    return recipe


def load_recipe(model: DynamicFilterNet, recipe: dict[str, list[float]]) -> None:
    state = model.state_dict()
    for name, (seed, offset, scale) in recipe.items():
        state[name].copy_(torch.from_numpy(recipe_tensor(list(state[name].shape), int(seed), offset, scale)))


def recipe_json(recipe: dict[str, list[float]]) -> str:
    return json.dumps(recipe, sort_keys=True)
