"""Run a function on several real ``torch.distributed`` processes from a notebook, and collect results.

    from bceweights.lessons.ranks import run_on_ranks
    results = run_on_ranks(my_module.my_function, 42, world_size=2)   # [rank 0's result, rank 1's]

Each rank is a fresh Python process (``spawn``) joined in a ``gloo`` process group on 127.0.0.1,
with one CPU thread; it calls ``function(rank, world_size, *args)`` and sends back what it returns
(anything ``torch.save`` can store). ``function`` must live in an importable module, not in a
notebook cell, since the new processes import it by name. Used by lesson 11 (DDP) and its tests.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["free_loopback_port", "run_on_ranks"]


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_main(rank: int, world_size: int, port: int, out_dir: str, function: Callable, args: tuple) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        result = function(rank, world_size, *args)
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_on_ranks(function: Callable[..., Any], *args: Any, world_size: int = 2) -> list[Any]:
    """``[function(rank, world_size, *args) for each rank]``, each rank in its own process.

    Raises:
        ValueError: ``world_size`` below 1.
        torch.multiprocessing.ProcessRaisedException: a rank raised (its traceback is included).
    """
    if world_size < 1:
        raise ValueError(f"world_size is {world_size}; expected at least 1 process.")
    with tempfile.TemporaryDirectory(prefix="bceweights-ranks-") as out_dir:
        mp.start_processes(
            _rank_main,
            args=(world_size, free_loopback_port(), out_dir, function, args),
            nprocs=world_size,
            start_method="spawn",
            join=True,
        )
        return [torch.load(Path(out_dir) / f"rank{rank}.pt", weights_only=False) for rank in range(world_size)]
