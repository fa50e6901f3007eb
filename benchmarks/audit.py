"""The cost of ``bw.audit()`` on a lesson-sized training loop: audited / unaudited time, in one run.

    python -m benchmarks.audit                 # CPU, 1 thread, as the lessons train
    python -m benchmarks.audit --repeats 30 --threads 2

The loop is the lessons' own (``lessons.model.TinyUNet``, width 8, float64, Adam): a batch of 16
images of 32x32 from ``lessons.data.make_shapes``, the loss ``nn.BCEWithLogitsLoss(pos_weight=
torch.tensor([4.]))`` plus ``F.binary_cross_entropy_with_logits`` with an ``(N, 1, H, W)`` mask weight
(two audited calls per step), forward, backward and ``optimizer.step()``. Every repeat times a block
of steps without and with the audit, alternating which goes first, so that load from other processes
hits both alike; the ratio is of the medians. The last line is the headline:
``audit: audited/unaudited 1.0Xx (TinyUNet training step, ...)``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import bceweights as bw
from bceweights.lessons import data
from bceweights.lessons.model import TinyUNet


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` says."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def make_step(batch: int = 16, size: int = 32):
    """One training step of the lessons' model and its inputs; returns ``step()``."""
    shapes = data.make_shapes(batch, size, seed=0)
    images, masks = shapes.images.double(), shapes.masks.double()
    valid = torch.ones(batch, 1, size, size, dtype=torch.float64)
    valid[:, :, :2] = 0  # a border left out
    model = TinyUNet(1, 1, width=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([4.0], dtype=torch.float64))

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        logits = model(images)
        loss = criterion(logits, masks) + F.binary_cross_entropy_with_logits(logits, masks, weight=valid)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def time_block(step, steps: int, audited: bool) -> float:
    """Seconds per step over ``steps`` steps, under ``bw.audit()`` or not."""
    context = bw.audit() if audited else contextlib.nullcontext()
    with context as report:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = (time.perf_counter() - start) / steps
    if audited:
        assert report.clean, str(report)
    return seconds


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed blocks of each kind")
    parser.add_argument("--steps", type=int, default=10, help="training steps per block")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the lessons train on 1)")
    options = parser.parse_args(argv)
    torch.set_num_threads(options.threads)
    step = make_step()
    for audited in (False, True, False, True):  # warm-up
        time_block(step, 3, audited)
    times: dict[bool, list[float]] = {False: [], True: []}
    load_before = os.getloadavg()
    for repeat in range(options.repeats):
        order = (False, True) if repeat % 2 == 0 else (True, False)
        for audited in order:
            times[audited].append(time_block(step, options.steps, audited))
    load_after = os.getloadavg()
    plain, audited = statistics.median(times[False]), statistics.median(times[True])
    ratio = audited / plain
    print(f"torch {torch.__version__}, {options.threads} thread(s), CPU: {cpu_name()} ({os.cpu_count()} CPUs)")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"TinyUNet(width=8) float64, batch 16x1x32x32, Adam; {options.repeats} blocks of {options.steps} steps each way")
    print(f"  unaudited: median {plain * 1e3:.2f} ms per step")
    print(f"  audited:   median {audited * 1e3:.2f} ms per step")
    print(f"audit: audited/unaudited {ratio:.3f}x (TinyUNet training step, 2 BCE calls per step, cpu)")
    return ratio


if __name__ == "__main__":
    main()
