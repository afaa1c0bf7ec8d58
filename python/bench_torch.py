"""The lab's network in PyTorch (CPU), timed the same way as `npm run bench` times ours.

    .venv/bin/python python/bench_torch.py [--batch-sizes 64,128,256] [--variants dynamic,static]
                                           [--settings fp32,bf16-cl] [--steps 10] [--warmup 3]
                                           [--threads N] [--profile] [--e2e]

For each variant (head), setting and batch size: one training step (forward in train mode,
cross-entropy, backward, torch.optim.Adam update) and one inference pass (eval mode, no grad), each
timed over `--steps` steps after `--warmup` untimed ones; images/s is batch / median step time.
Random normalised inputs and labels (speed does not depend on the pixel values). Prints one JSON
object on stdout: {"torch": version, "threads": n, "results": [{variant, setting, batch, mode,
median_ms, images_per_s, cpu_median_ms, times_ms, cpu_ms}, ...]} (cpu: this process's CPU time per step).

Settings (SETTINGS): fp32; bf16 = torch.autocast('cpu', dtype=torch.bfloat16) around the forward and
the loss (fp32 weights and Adam, as autocast does); bf16-cl = the same with the net and the inputs in
channels_last memory format: PyTorch's usual fastest CPU setting.

--e2e runs the end-to-end loop instead (run_e2e): the lab's recipe on the first images of the real
CIFAR-10 files, data preparation, steps and test evaluation included, as scripts/bench.ts --e2e does.

--profile instead prints torch.profiler's table of a training step's operators (self CPU time
per step, which is wall time for the main thread) per variant and batch size: the counterpart of
`npm run bench -- --profile`.

The network is python/reference.py's DynamicFilterNet, the module the golden tests check
lib/model/model.ts against.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import DynamicFilterNet  # noqa: E402


SETTINGS = ("fp32", "bf16", "bf16-cl")


def build_net(variant: str, setting: str = "fp32") -> nn.Module:
    """The model engineer's PyTorch reference module (same network and state names as lib/model/model.ts)."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {', '.join(SETTINGS)}, got {setting!r}")
    net = DynamicFilterNet(variant)
    return net.to(memory_format=torch.channels_last) if setting == "bf16-cl" else net


def autocast(setting: str):
    """bf16 autocast for the bf16 settings (forward and loss only; backward and Adam stay outside)."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if setting != "fp32" else contextlib.nullcontext()


def as_input(x: torch.Tensor, setting: str) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if setting == "bf16-cl" else x


def timed(fn, steps: int, warmup: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU milliseconds of each of `steps` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def train_step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, setting: str) -> torch.Tensor:
    """One optimisation step; returns the loss (not read back, so nothing waits)."""
    opt.zero_grad(set_to_none=True)
    with autocast(setting):
        loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss.detach()


class Workloads:
    """One net, Adam and random batch per (variant, setting, batch size), built on first use."""

    def __init__(self):
        self.cache: dict[tuple[str, str, int], dict] = {}

    def get(self, variant: str, batch: int, setting: str = "fp32") -> dict:
        key = (variant, setting, batch)
        if key not in self.cache:
            torch.manual_seed(0)
            net = build_net(variant, setting)
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            x = as_input(torch.randn(batch, 3, 32, 32), setting)
            y = torch.randint(0, 10, (batch,))

            def train():
                net.train()
                train_step(net, opt, x, y, setting)

            def infer():
                net.eval()
                with torch.inference_mode(), autocast(setting):
                    net(x)

            self.cache[key] = {"train": train, "infer": infer}
        return self.cache[key]

    def run(self, variant: str, batch: int, mode: str, steps: int, warmup: int, setting: str = "fp32") -> tuple[list[float], list[float]]:
        if mode not in ("train", "infer"):
            raise ValueError(f"mode must be train or infer, got {mode!r}")
        return timed(self.get(variant, batch, setting)[mode], steps, warmup)


def row(variant: str, setting: str, batch: int, mode: str, times: tuple[list[float], list[float]]) -> dict:
    wall, cpu = times
    med = statistics.median(wall)
    return {"variant": variant, "setting": setting, "batch": batch, "mode": mode, "median_ms": med,
            "images_per_s": batch / (med / 1000), "cpu_median_ms": statistics.median(cpu),
            "times_ms": wall, "cpu_ms": cpu}


# ---- the end-to-end loop ------------------------------------------------------------------------

CIFAR_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "cifar-10-batches-bin")
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]


def load_cifar(files: list[str], limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` records of the official binary files: uint8 images [n, 3, 32, 32], int64 labels [n]."""
    images, labels, n = [], [], 0
    for name in files:
        records = np.fromfile(os.path.join(CIFAR_DIR, name), dtype=np.uint8).reshape(-1, 3073)[: limit - n]
        labels.append(records[:, 0].astype(np.int64))
        images.append(records[:, 1:].reshape(-1, 3, 32, 32))
        n += len(records)
        if n >= limit:
            break
    return np.concatenate(images), np.concatenate(labels)


def run_e2e(variant: str, setting: str, batch: int, train_images: int, test_images: int, epochs: int,
            log_every: int = 10, eval_batch: int = 500) -> list[dict]:
    """The lab's recipe as a plain PyTorch loop (Adam 1e-3, norm 'half', no augmentation, shuffled
    each epoch, the last batch kept), on the first images of the files. Per epoch: the training
    pass (uint8 batch -> normalised float, step; the loss summed on the device and read every
    `log_every` steps, as lib/train does) and the test evaluation, each timed."""
    train_x, train_y = load_cifar(TRAIN_FILES, train_images)
    test_x, test_y = load_cifar(["test_batch.bin"], test_images)
    train_x, train_y, test_x, test_y = map(torch.from_numpy, (train_x, train_y, test_x, test_y))
    torch.manual_seed(0)
    net = build_net(variant, setting)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def normalise(u8: torch.Tensor) -> torch.Tensor:  # norm 'half': (v / 255 - 0.5) / 0.5
        return as_input(u8.float().div_(127.5).sub_(1.0), setting)

    out = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        net.train()
        order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(epoch))
        total, seen = torch.zeros(()), 0
        for k, start in enumerate(range(0, len(order), batch)):
            idx = order[start:start + batch]
            total += train_step(net, opt, normalise(train_x[idx]), train_y[idx], setting) * len(idx)
            seen += len(idx)
            if (k + 1) % log_every == 0:
                total.item()
        train_loss = total.item() / seen
        t1 = time.perf_counter()
        net.eval()
        correct = 0
        with torch.inference_mode(), autocast(setting):
            for start in range(0, len(test_x), eval_batch):
                logits = net(normalise(test_x[start:start + eval_batch]))
                correct += int((logits.argmax(1) == test_y[start:start + eval_batch]).sum())
        t2 = time.perf_counter()
        out.append({"epoch": epoch, "train_seconds": t1 - t0, "train_images_per_s": seen / (t1 - t0),
                    "eval_seconds": t2 - t1, "test_accuracy": correct / len(test_x), "train_loss": train_loss})
    return out


def serve(work: Workloads) -> None:
    """Line protocol for scripts/bench.ts, which interleaves our steps with these so that both
    see the same machine load: each stdin line {"variant", "batch", "mode", "steps", "warmup", "setting"}
    gets one stdout line {"times_ms": [...], "cpu_ms": [...]}; a line {"e2e": {"variant", "setting",
    "batch", "train_images", "test_images", "epochs"}} gets {"epochs": [run_e2e's epochs]}; an error
    gets {"error": "..."}."""
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            if "e2e" in r:
                e = r["e2e"]
                epochs = run_e2e(e["variant"], e["setting"], int(e["batch"]), int(e["train_images"]),
                                 int(e["test_images"]), int(e["epochs"]))
                print(json.dumps({"epochs": epochs}), flush=True)
                continue
            wall, cpu = work.run(r["variant"], int(r["batch"]), r["mode"], int(r["steps"]), int(r.get("warmup", 0)),
                                 r.get("setting", "fp32"))
            print(json.dumps({"times_ms": wall, "cpu_ms": cpu}), flush=True)
        except Exception as e:  # report and keep serving; the caller decides
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


def profile(work: Workloads, a: argparse.Namespace) -> None:
    """torch.profiler's operator table of `--steps` training steps, per variant and batch size."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for variant in a.variants.split(","):
        for b in (int(s) for s in a.batch_sizes.split(",")):
            step = work.get(variant, b)["train"]
            for _ in range(a.warmup):
                step()
            t0 = time.perf_counter()
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(a.steps):
                    step()
            ms = (time.perf_counter() - t0) * 1000 / a.steps
            print(f"\n{variant} head, batch {b}, training step: {ms:.1f} ms (profiled, {a.steps} steps; totals below are for all of them)")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-sizes", default="64,128,256")
    p.add_argument("--variants", default="dynamic,static")
    p.add_argument("--settings", default="fp32,bf16-cl", help=f"any of {','.join(SETTINGS)}")
    p.add_argument("--e2e", action="store_true", help="the end-to-end loop (run_e2e) instead: 5,000 train / 1,000 test images, 2 epochs")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    # TensorFlow's intra-op pool defaults to the cores this process may use; match it.
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--serve", action="store_true", help="line protocol for scripts/bench.ts (see serve())")
    p.add_argument("--profile", action="store_true", help="print the training step's operator profile instead")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    work = Workloads()
    if a.serve:
        serve(work)
        return
    if a.profile:
        profile(work, a)
        return
    results = []
    for variant in a.variants.split(","):
        for setting in a.settings.split(","):
            for b in (int(s) for s in a.batch_sizes.split(",")):
                if a.e2e:
                    results.append({"variant": variant, "setting": setting, "batch": b, "epochs": run_e2e(variant, setting, b, 5000, 1000, 2)})
                    continue
                for mode in ("train", "infer"):
                    results.append(row(variant, setting, b, mode, work.run(variant, b, mode, a.steps, a.warmup, setting)))
    json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
