"""Recipe sweep for the dynamic net in PyTorch, on a GPU when there is one: the same network
(reference.py, plus the architecture options of lib/model/architecture), the same data pipeline
(RandomCrop(32, pad 4) + flip on bytes, per-channel normalisation), Adam (torch's L2 weight
decay), the per-step cosine schedule and label smoothing of lib/train — to choose the
beyond-the-lab recipe (lib/experiments' best-dynamic) before spending hours of 2-core CPU time on
it. Its random streams (init, order, augmentation) are PyTorch's, not lib/runtime/random's: expect
seed-to-seed differences, not identical numbers. Results of the sweep that chose the recipe:
recipe_sweep_results.jsonl (run on the folded weights, then the only ones: `"weights": "folded"`
reproduces them).

    python python/recipe_sweep.py prepare                 # CIFAR-10 bins (data/ or .gz) → /tmp/cifar.npz
    python python/recipe_sweep.py '{"name": "best40", "norm": "imagenet", "augment": true,
        "schedule": "cosine", "ls": 0.1, "lr": 0.002, "wd": 5e-5, "epochs": 40}' [DEADLINE]

Config keys: name, norm (half|imagenet), augment, schedule (constant|cosine), ls, lr, wd, epochs,
batch (64), seed (0), freeze (none|all|keep-bn), upsample (1), adapter, filter_norm,
response_scale, weights (torchvision|folded|FILE: the backbone file, as lib's `weights` setting;
default torchvision, data/pretrained/'s unfolded IMAGENET1K_V1 file). DEADLINE (Unix seconds)
stops after the epoch that passes it. Prints one JSON line per epoch and a final `RESULT {...}`
line."""
import gzip, json, math, os, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import DynamicFilterNet  # noqa: E402

# Where the CIFAR-10 binaries are (plain, or gzipped).
DATA_DIRS = [os.environ.get("DCF_DATA", "data/cifar-10-batches-bin"), ".cache/gpu/p1", ".cache/gpu/p2", ".cache/gpu/p3"]
# The pretrained backbone files in the repo, by the names of lib/config.ts's PRETRAINED_FILES.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAINED = {
    "torchvision": os.path.join(ROOT, "data", "pretrained", "resnet18-imagenet1k-v1-stem-layer1.safetensors"),
    "folded": os.path.join(ROOT, "data", "pretrained", "resnet18-imagenet1k-v1-bnfolded-stem-layer1.safetensors"),
}
NORMS = {"half": ([0.5] * 3, [0.5] * 3), "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])}


def prepare(out="/tmp/cifar.npz"):
    def load(name):
        for d in DATA_DIRS:
            for f, read in ((f"{d}/{name}.bin", lambda f: open(f, "rb").read()), (f"{d}/{name}.bin.gz", lambda f: gzip.open(f).read())):
                if os.path.exists(f):
                    raw = np.frombuffer(read(f), np.uint8).reshape(-1, 3073)
                    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)
        raise FileNotFoundError(f"{name}.bin(.gz) in none of {DATA_DIRS}")
    parts = [load(f"data_batch_{i}") for i in range(1, 6)]
    xt, yt = load("test_batch")
    np.savez(out, x=np.concatenate([p[0] for p in parts]), y=np.concatenate([p[1] for p in parts]), xt=xt, yt=yt)


class Net(DynamicFilterNet):
    def __init__(self, variant, filter_norm=True, response_scale=True, upsample=1, adapter=False):
        super().__init__(variant)
        self.filter_norm, self.response_scale, self.upsample = filter_norm, response_scale, upsample
        self.adapter = None
        if adapter:
            self.adapter = nn.Sequential(nn.Conv2d(64, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64))
            nn.init.zeros_(self.adapter[1].weight)

    def class_filters(self):
        if self.variant == "dynamic":
            g = self.gen(self.embed.weight)
            return F.normalize(g, p=2, dim=1) if self.filter_norm else g
        return self.dc.weight.view(10, 64)

    def forward(self, x):
        u = self.upsample
        if u > 1:
            x = F.interpolate(x, scale_factor=u, mode="bilinear", align_corners=False)
        f = self.backbone(x)
        if self.adapter is not None:
            f = F.relu(f + self.adapter(f))
        if u > 1:
            f = F.avg_pool2d(f, u)
        maps = F.conv2d(f, self.class_filters().view(10, 64, 1, 1))
        if self.response_scale:
            maps = maps / 8
        return self.score(maps.flatten(2)).squeeze(-1)


def load_pretrained(net, weights="torchvision"):
    """torchvision's unfolded form loads as it is; the folded one by data/pretrained/README.md's rule."""
    from safetensors.torch import load_file
    w = load_file(PRETRAINED.get(weights, weights))
    b = net.backbone
    if "bn1.weight" in w:
        missing, unexpected = b.load_state_dict(w, strict=False)
        assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
        return
    pairs = [("conv1", b.conv1, b.bn1)] + [
        (f"layer1.{i}.conv{j}", getattr(b.layer1[i], f"conv{j}"), getattr(b.layer1[i], f"bn{j}")) for i in (0, 1) for j in (1, 2)
    ]
    with torch.no_grad():
        for name, conv, bn in pairs:
            conv.weight.copy_(w[f"{name}.weight"])
            bn.weight.fill_(1.0)
            bn.bias.copy_(w[f"{name}.bias"])
            bn.running_mean.zero_()
            bn.running_var.fill_(1 - 1e-5)


def run(cfg, deadline):
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.get("seed", 0))
    dev = os.environ.get("DEV", "cuda" if torch.cuda.is_available() else "cpu")
    lim = int(os.environ.get("LIMIT", "0")) or None
    d = np.load("/tmp/cifar.npz")
    x, y = torch.from_numpy(d["x"][:lim]).to(dev), torch.from_numpy(d["y"][:lim]).to(dev)
    xt, yt = torch.from_numpy(d["xt"][:lim]).to(dev), torch.from_numpy(d["yt"][:lim]).to(dev)
    mean, std = (torch.tensor(v, device=dev).view(1, 3, 1, 1) for v in NORMS[cfg["norm"]])
    norm = lambda u8: (u8.float() / 255 - mean) / std  # noqa: E731
    net = Net("dynamic", cfg.get("filter_norm", True), cfg.get("response_scale", True), cfg.get("upsample", 1), cfg.get("adapter", False)).to(dev)
    load_pretrained(net, cfg.get("weights", "torchvision"))
    freeze = cfg.get("freeze", "none")
    for n, p in net.backbone.named_parameters():
        is_bn = ".bn" in n or n.startswith("bn")
        p.requires_grad_(freeze == "none" or (freeze == "keep-bn" and is_bn))
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg["lr"], weight_decay=cfg.get("wd", 0.0))
    bs, epochs = cfg.get("batch", 64), cfg["epochs"]
    steps_per_epoch = math.ceil(len(x) / bs)
    total = epochs * steps_per_epoch
    g = torch.Generator(device=dev).manual_seed(cfg.get("seed", 0))
    ar = torch.arange(32, device=dev)
    step, best, hist, t0 = 0, 0.0, [], time.time()
    for epoch in range(1, epochs + 1):
        net.train()
        if freeze == "all":
            net.backbone.eval()
        order = torch.randperm(len(x), device=dev, generator=g)
        tl, tc = 0.0, 0
        for i in range(steps_per_epoch):
            idx = order[i * bs:(i + 1) * bs]
            xb, yb = x[idx], y[idx]
            if cfg.get("augment"):
                B = len(idx)
                pad = F.pad(xb, (4, 4, 4, 4))
                dy = torch.randint(0, 9, (B,), device=dev, generator=g)
                dx = torch.randint(0, 9, (B,), device=dev, generator=g)
                flip = torch.rand(B, device=dev, generator=g) < 0.5
                rows = dy[:, None] + ar
                cols = torch.where(flip[:, None], dx[:, None] + 31 - ar, dx[:, None] + ar)
                xb = pad[torch.arange(B, device=dev)[:, None, None, None], torch.arange(3, device=dev)[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
            lr = cfg["lr"] if cfg.get("schedule") != "cosine" else cfg["lr"] * (1 + math.cos(math.pi * step / total)) / 2
            for gr in opt.param_groups:
                gr["lr"] = lr
            out = net(norm(xb))
            loss = F.cross_entropy(out, yb, label_smoothing=cfg.get("ls", 0.0))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            tl += loss.detach() * len(idx)
            tc += (out.argmax(1) == yb).sum()
        net.eval()
        with torch.no_grad():
            correct = sum((net(norm(xt[j:j + 1000])).argmax(1) == yt[j:j + 1000]).sum().item() for j in range(0, len(xt), 1000))
        acc = correct / len(xt)
        best = max(best, acc)
        trl = float(tl) / len(x)
        hist.append(round(acc, 4))
        print(json.dumps({"name": cfg["name"], "epoch": epoch, "train_loss": round(trl, 4), "train_acc": round(float(tc) / len(x), 4), "test_acc": acc, "s": round(time.time() - t0, 1)}), flush=True)
        if not math.isfinite(trl) or time.time() > deadline:
            break
    return {"name": cfg["name"], "epochs_done": len(hist), "of": epochs, "best": best, "final": hist[-1], "hist": hist, "seconds": round(time.time() - t0, 1)}


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare()
    else:
        cfg = json.loads(sys.argv[1])
        deadline = float(sys.argv[2])
        print("RESULT " + json.dumps(run(cfg, deadline)), flush=True)
