"""The lab's network in PyTorch (CPU), timed the same way as `npm run bench` times ours.

    .venv/bin/python python/bench_torch.py [--batch-sizes 64,128,256] [--variants dynamic,static]
                                           [--steps 10] [--warmup 3] [--threads N] [--profile]

For each variant (head) and batch size: one training step (forward in train mode, cross-entropy,
backward, torch.optim.Adam update) and one inference pass (eval mode, no grad), each timed over
`--steps` steps after `--warmup` untimed ones; images/s is batch / median step time. Random
normalised inputs and labels (speed does not depend on the pixel values). Prints one JSON object
on stdout: {"torch": version, "threads": n, "results": [{variant, batch, mode, median_ms,
images_per_s, cpu_median_ms, times_ms, cpu_ms}, ...]} (cpu: this process's CPU time per step).

--profile instead prints torch.profiler's table of a training step's operators (self CPU time
per step, which is wall time for the main thread) per variant and batch size: the counterpart of
`npm run bench -- --profile`.

The network is python/reference.py's DynamicFilterNet, the module the golden tests check
lib/model/model.ts against.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import DynamicFilterNet  # noqa: E402


def build_net(variant: str) -> nn.Module:
    """The model engineer's PyTorch reference module (same network and state names as lib/model/model.ts)."""
    return DynamicFilterNet(variant)


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


class Workloads:
    """One net, Adam and random batch per (variant, batch size), built on first use."""

    def __init__(self):
        self.cache: dict[tuple[str, int], dict] = {}

    def get(self, variant: str, batch: int) -> dict:
        key = (variant, batch)
        if key not in self.cache:
            torch.manual_seed(0)
            net = build_net(variant)
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            x = torch.randn(batch, 3, 32, 32)
            y = torch.randint(0, 10, (batch,))

            def train_step():
                net.train()
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x), y).backward()
                opt.step()

            def infer():
                net.eval()
                with torch.inference_mode():
                    net(x)

            self.cache[key] = {"train": train_step, "infer": infer}
        return self.cache[key]

    def run(self, variant: str, batch: int, mode: str, steps: int, warmup: int) -> tuple[list[float], list[float]]:
        if mode not in ("train", "infer"):
            raise ValueError(f"mode must be train or infer, got {mode!r}")
        return timed(self.get(variant, batch)[mode], steps, warmup)


def row(variant: str, batch: int, mode: str, times: tuple[list[float], list[float]]) -> dict:
    wall, cpu = times
    med = statistics.median(wall)
    return {"variant": variant, "batch": batch, "mode": mode, "median_ms": med,
            "images_per_s": batch / (med / 1000), "cpu_median_ms": statistics.median(cpu),
            "times_ms": wall, "cpu_ms": cpu}


def serve(work: Workloads) -> None:
    """Line protocol for scripts/bench.ts, which interleaves our steps with these so that both
    see the same machine load: each stdin line {"variant", "batch", "mode", "steps", "warmup"}
    gets one stdout line {"times_ms": [...], "cpu_ms": [...]} (or {"error": "..."})."""
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            wall, cpu = work.run(r["variant"], int(r["batch"]), r["mode"], int(r["steps"]), int(r.get("warmup", 0)))
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
        for b in (int(s) for s in a.batch_sizes.split(",")):
            for mode in ("train", "infer"):
                results.append(row(variant, b, mode, work.run(variant, b, mode, a.steps, a.warmup)))
    json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
