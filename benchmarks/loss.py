"""Forward+backward of the fused weighted BCE against PyTorch's own, on the same inputs, in one run.

    python -m benchmarks.loss            # CPU (and CUDA too when a GPU is present)
    python -m benchmarks.loss --repeats 50 --device cpu

Cases: ``(8, 3, 256, 256)`` logits with an ``(8, 1, 256, 256)`` mask weight and a per-channel
pos_weight (the usual segmentation call), and a 3-D volume ``(2, 3, 32, 128, 128)`` with an
``(2, 1, 32, 128, 128)`` mask. For each: the median time of repeated forward+backward calls of

* ``torch``: ``F.binary_cross_entropy_with_logits(x, y, weight=mask, pos_weight=pw.view(C, 1, 1))``,
* ``bw eager``: bceweights' eager formula (``backend="torch"``),
* ``fused``: the fused path (``backend="fused"``); its first call (the compile) is timed separately,

with value checks off in bceweights' calls (PyTorch makes none). Peak memory is the growth of the
process's resident set during one forward+backward: the kernel's high-water mark ``VmHWM`` is reset
through ``/proc/self/clear_refs`` before the call and read after it, with glibc told to serve every
allocation above 128 KiB by ``mmap`` (so a freed tensor leaves the resident set at once). It counts
every byte the call touches, PyTorch's allocator and inductor's buffers alike; ``tracemalloc`` cannot
see tensor memory. On CUDA, peak memory is ``torch.cuda.max_memory_allocated`` above the baseline.

The last line is the headline: ``loss: fused/torch speedup X.XXx (fwd+bwd, 8x3x256x256 fp32, cpu)``.
"""

from __future__ import annotations

import argparse
import ctypes
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import bceweights as bw
from bceweights.backend import compute_loss
from bceweights.prepared import prepare

POS_WEIGHT = (6.0, 30.0, 1.0)


@dataclass(frozen=True)
class Case:
    """One benchmark input: logits shape ``(N, C, *spatial)``; the mask is ``(N, 1, *spatial)``."""

    name: str
    shape: tuple[int, ...]

    @property
    def label(self) -> str:
        return "x".join(map(str, self.shape))


CASES = (Case("2-D segmentation", (8, 3, 256, 256)), Case("3-D volume", (2, 3, 32, 128, 128)))


def make_inputs(case: Case, device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Logits ``(N, C, *S)`` fp32, 0/1 targets, a ``(N, 1, *S)`` mask weight, a ``(C,)`` pos_weight."""
    generator = torch.Generator().manual_seed(seed)
    n, c, *spatial = case.shape
    logits = torch.randn(case.shape, generator=generator) * 2
    target = (torch.rand(case.shape, generator=generator) < 0.2).float()
    mask = torch.rand((n, 1, *spatial), generator=generator)
    return {
        "logits": logits.to(device).requires_grad_(),
        "target": target.to(device),
        "mask": mask.to(device),
        "pos_weight": torch.tensor(POS_WEIGHT[:c], device=device),
    }


def _public_api_has_backend() -> bool:
    return "backend" in inspect.signature(bw.bce_with_logits).parameters


def make_calls(inputs: dict[str, torch.Tensor]) -> dict[str, Callable[[], torch.Tensor]]:
    """The three forward calls, each returning a scalar loss (mean over elements)."""
    x, y, mask, pw = inputs["logits"], inputs["target"], inputs["mask"], inputs["pos_weight"]
    per_channel = pw.view(-1, *([1] * (x.ndim - 2)))

    def torch_native() -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(x, y, weight=mask, pos_weight=per_channel)

    def bw_call(backend: str) -> Callable[[], torch.Tensor]:
        if _public_api_has_backend():
            return lambda: bw.bce_with_logits(
                x, y, mask, pw, channel_dim=1, check_values=False, backend=backend
            )
        return lambda: compute_loss(prepare(x, y, mask, pw, channel_dim=1, check_values=False), "mean",
                                  backend=backend)

    return {"torch": torch_native, "bw eager": bw_call("torch"), "fused": bw_call("fused")}


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def forward_backward(call: Callable[[], torch.Tensor], x: torch.Tensor, device: str) -> float:
    """Seconds for one ``call().backward()``, the gradient reset first."""
    x.grad = None
    _synchronize(device)
    start = time.perf_counter()
    call().backward()
    _synchronize(device)
    return time.perf_counter() - start


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def cpu_rss_measurable() -> bool:
    """True on Linux where the resident-set high-water mark can be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        _status_bytes("VmHWM:")
        return True
    except OSError:
        return False


def peak_memory(call: Callable[[], torch.Tensor], x: torch.Tensor, device: str) -> float | None:
    """Extra memory (bytes) at the peak of one forward+backward; None where it cannot be measured."""
    x.grad = None
    if device == "cuda":
        torch.cuda.synchronize()
        baseline = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        call().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - baseline
    if not cpu_rss_measurable():
        return None
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    baseline = _status_bytes("VmRSS:")
    call().backward()
    return _status_bytes("VmHWM:") - baseline


def pin_malloc_mmap_threshold() -> bool:  # M_MMAP_THRESHOLD is mallopt parameter -3
    """Make glibc serve allocations over 128 KiB by mmap, so freed tensors leave the resident set."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024))
    except (OSError, AttributeError):
        return False


@dataclass
class Result:
    median_s: dict[str, float]
    peak_bytes: dict[str, float | None]
    first_call_s: float


def run_case(case: Case, device: str, repeats: int) -> Result:
    """Time and measure every call of :func:`make_calls` on ``case``."""
    inputs = make_inputs(case, device)
    calls = make_calls(inputs)
    x = inputs["logits"]
    first_call = forward_backward(calls["fused"], x, device)  # compiles on its first call
    for call in calls.values():  # warm-up
        for _ in range(3):
            forward_backward(call, x, device)
    # Interleaved: every repeat times each path once, so a burst of load from other processes
    # slows all paths alike instead of one path's whole series.
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            times[name].append(forward_backward(call, x, device))
    medians = {name: statistics.median(series) for name, series in times.items()}
    return Result(medians, {}, first_call)


def measure_memory(case: Case, device: str) -> dict[str, float | None]:
    """Peak extra memory of one forward+backward per path (after a warm-up call of each)."""
    inputs = make_inputs(case, device)
    calls = make_calls(inputs)
    x = inputs["logits"]
    for call in calls.values():
        forward_backward(call, x, device)
    return {name: peak_memory(call, x, device) for name, call in calls.items()}


def check_agreement(case: Case, device: str) -> float:
    """Largest relative difference between the fused and PyTorch loss and input gradient."""
    inputs = make_inputs(case, device, seed=1)
    calls = make_calls(inputs)
    x = inputs["logits"]
    worst = 0.0
    grads, losses = {}, {}
    for name in ("torch", "fused"):
        x.grad = None
        loss = calls[name]()
        loss.backward()
        losses[name], grads[name] = loss.detach(), x.grad.clone()
    worst = max(worst, float((losses["fused"] - losses["torch"]).abs() / losses["torch"].abs()))
    worst = max(worst, float((grads["fused"] - grads["torch"]).abs().max() / grads["torch"].abs().max()))
    return worst


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:7.1f} MiB"


def report(case: Case, device: str, result: Result) -> float:
    """Print one case's table; returns the fused/torch speedup."""
    numel = 1
    for size in case.shape:
        numel *= size
    print(f"\n{case.name}: {case.label} fp32 logits, (N, 1, ...) mask weight, per-channel pos_weight, {device}")
    print(f"  fused first call (compile + run): {result.first_call_s:.2f} s")
    torch_s = result.median_s["torch"]
    for name, seconds in result.median_s.items():
        print(
            f"  {name:9s} fwd+bwd median {seconds * 1e3:8.2f} ms   x{torch_s / seconds:5.2f} vs torch   "
            f"peak extra memory {_mib(result.peak_bytes.get(name))}"
        )
    # the least any fwd+bwd can move: read x, y and the mask (shared by the C channels), write the
    # gradient once (the fused path's backward hands the forward's gradient over)
    channels = case.shape[1]
    bytes_moved = numel * 4 * (2 + 1 / channels + 1)
    print(f"  fused effective bandwidth {bytes_moved / result.median_s['fused'] / 1e9:.1f} GB/s "
          f"({bytes_moved / 2**20:.0f} MiB: read x, y, mask; write the gradient)")
    return torch_s / result.median_s["fused"]


def memory_in_child_process(devices: list[str], threads: int) -> dict[str, dict[str, float | None]]:
    """Peak memory per device, case and path, measured by ``--memory-child`` in a fresh process.

    A fresh process, because glibc's mmap threshold must be pinned before the first large allocation:
    pinned later, freed heap chunks are reused and the resident set does not show the peak. (Timing
    runs unpinned: every large allocation faulting in fresh pages would slow them.)
    """
    command = [sys.executable, "-m", "benchmarks.loss", "--memory-child", "--threads", str(threads),
               "--device", devices[0] if len(devices) == 1 else "all"]
    child = subprocess.run(command, capture_output=True, text=True, timeout=600)
    lines = [line for line in child.stdout.splitlines() if line.startswith("MEMORY=")]
    if child.returncode != 0 or not lines:
        print(f"(memory not measured: the child process failed)\n{child.stderr[-2000:]}")
        return {}
    return json.loads(lines[-1].removeprefix("MEMORY="))


def memory_child(devices: list[str]) -> None:
    """Entry point of the memory child: pin the threshold first, then measure every case."""
    pinned = pin_malloc_mmap_threshold()
    results = {}
    for device in devices:
        if device == "cpu" and not pinned:
            continue
        for case in CASES:
            results[f"{device} {case.label}"] = measure_memory(case, device)
    print("MEMORY=" + json.dumps(results))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40, help="timed forward+backward calls per path")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads before measuring (default: PyTorch's choice)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.device != "all":
        devices = [args.device]
    if args.memory_child:
        memory_child(devices)
        return
    load_before = os.getloadavg()
    api = "bw.bce_with_logits(..., backend=...)" if _public_api_has_backend() else "compute_loss(prepare(...))"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; calls via {api}")
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    runs = [(device, case, run_case(case, device, args.repeats)) for device in devices for case in CASES]
    memory = memory_in_child_process(devices, torch.get_num_threads())
    headline = None
    for device, case, result in runs:
        result.peak_bytes = memory.get(f"{device} {case.label}", {})
        speedup = report(case, device, result)
        print(f"  fused vs torch: largest relative difference {check_agreement(case, device):.1e}")
        if case is CASES[0] and device == "cpu":
            headline = speedup
    load_after = os.getloadavg()
    print(f"\nload average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if headline is not None:
        print(f"loss: fused/torch speedup {headline:.2f}x (fwd+bwd, {CASES[0].label} fp32, cpu)")


if __name__ == "__main__":
    main()
