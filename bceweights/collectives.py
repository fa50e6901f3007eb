"""The collective operations behind ``process_group=``: checks, world size and a detached all-reduce sum.

The losses' global mean (:mod:`bceweights.distributed`) and the weight builders' global counts
(:mod:`bceweights.weights`) both sum over the ranks of a ``torch.distributed`` group with
:func:`all_reduce_sum`. Every rank of the group must make the same calls in the same order.

Imports: :mod:`bceweights.messages` and torch only (``torch.distributed`` when a group is used).
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist
from torch import Tensor

from bceweights.messages import error_message

__all__ = ["all_reduce_sum", "check_process_group", "world_size"]


def check_process_group(process_group: Any) -> None:
    """Raise unless ``torch.distributed`` is initialised and ``process_group`` is a group of it."""
    if not dist.is_available():
        raise RuntimeError(error_message(
            "process_group was given, but this PyTorch build has no torch.distributed",
            "expected a PyTorch with distributed support, or process_group=None for a local mean.",
            "bw.bce_with_logits(logits, target, process_group=None)",
        ))
    if not dist.is_initialized():
        raise RuntimeError(error_message(
            "process_group was given, but torch.distributed is not initialised in this process",
            "expected dist.init_process_group(...) before the first loss call (torchrun does not call it for you).",
            [
                'dist.init_process_group("gloo")   # or "nccl" on GPUs; torchrun sets the rendezvous variables',
                "bw.bce_with_logits(logits, target, process_group=dist.group.WORLD)",
            ],
        ))
    if not isinstance(process_group, dist.ProcessGroup):
        raise TypeError(error_message(
            f"process_group is a {type(process_group).__name__}",
            "expected a torch.distributed ProcessGroup (dist.group.WORLD, or one from dist.new_group).",
            "bw.bce_with_logits(logits, target, process_group=dist.group.WORLD)",
        ))


def world_size(process_group: Any) -> int:
    """Number of ranks in ``process_group``."""
    return dist.get_world_size(process_group)


def all_reduce_sum(tensor: Tensor, process_group: Any) -> Tensor:
    """The sum of ``tensor`` over the ranks of ``process_group``: a new tensor, detached, same shape.

    ``tensor`` must have the same shape and dtype on every rank (one ``all_reduce``). The input is
    not modified.
    """
    check_process_group(process_group)
    total = tensor.detach().clone().contiguous()
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=process_group)
    return total
