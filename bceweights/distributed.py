"""Means and counts over every process of a ``torch.distributed`` group: the ``process_group=`` keyword.

Under ``DistributedDataParallel`` each rank computes its loss on its own shard and DDP *averages* the
gradients over the ``W`` ranks. A plain ``"mean"`` divides each rank's sum by that rank's own count, so
a rank whose batch has many ignored pixels (or little weight) gives each of its kept pixels more say
than a rank with many: the averaged gradient is not the gradient of the mean over the global batch.

With ``process_group=group`` the losses divide by the **global** denominator instead::

    loss_r = local_sum_r * W / D,        D = sum over ranks of local_denominator_r   (all-reduced)

where the denominator is the number of kept elements (``"mean"``) or the kept weight
(``"weighted_mean"``), and carries no gradient. DDP's average ``(1/W) sum_r grad(loss_r)`` is then
exactly ``grad(sum_r local_sum_r) / D``: the gradient of the single-process loss over the union of the
shards. The value a rank logs, ``loss_r``, is *not* the global mean; the mean of ``loss_r`` over the
ranks is (``dist.all_reduce(loss.detach()) / W``). ``"sum"`` and ``"none"`` are unchanged.

The weight builders' ``process_group=`` sums their counts over the group, so every rank returns what
one process returns on the union of the shards (e.g. each rank reading its ``DistributedSampler``
part of the dataset).

Every rank of the group must make the same calls in the same order (each is one ``all_reduce``):
a rank that raises (a bad shape, a value check) leaves the others waiting in theirs.

Imports: :mod:`bceweights.prepared`, :mod:`bceweights.eager` (the local denominator),
:mod:`bceweights.backend` (the local loss) and :mod:`bceweights.collectives` (the all-reduce, which
the weight builders use directly); only :mod:`bceweights.loss` imports this module.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from bceweights.backend import compute_loss
from bceweights.collectives import all_reduce_sum, world_size
from bceweights.eager import reduction_denominator
from bceweights.prepared import Prepared

__all__ = ["GLOBAL_REDUCTIONS", "global_loss"]

GLOBAL_REDUCTIONS: tuple[str, ...] = ("mean", "weighted_mean")
"""The reductions whose denominator ``process_group=`` makes global; ``"sum"``/``"none"`` need none."""


def global_loss(
    prepared: Prepared,
    reduction: str,
    process_group: Any,
    *,
    gamma: float = 0.0,
    alpha: float | None = None,
    backend: str = "auto",
) -> Tensor:
    """The loss of one rank whose mean's denominator is all-reduced over ``process_group``.

    ``"mean"`` / ``"weighted_mean"``: ``local_sum * W / D`` with ``D`` the global denominator (see the
    module docstring); computed as ``local_mean * (d * W / D)`` with ``d`` this rank's denominator, so
    the local mean keeps the backend's float32 accumulation. When ``D`` is 0 (every element ignored
    on every rank, or no weight anywhere) the loss is 0 with zero gradients. ``"sum"`` and ``"none"``:
    the local result, as without a group.

    Returns:
        a scalar in the input's dtype (``(*)`` for ``"none"``).
    """
    if reduction not in GLOBAL_REDUCTIONS:  # compute_loss checks the name
        return compute_loss(prepared, reduction, gamma=gamma, alpha=alpha, backend=backend)
    local_denominator = reduction_denominator(prepared, reduction).detach()
    global_denominator = all_reduce_sum(local_denominator, process_group)
    local_mean = compute_loss(prepared, reduction, gamma=gamma, alpha=alpha, backend=backend)
    # An empty or fully ignored shard adds nothing (its local mean may be NaN); no device sync here.
    local_mean = torch.where(local_denominator > 0, local_mean, torch.zeros_like(local_mean))
    safe_denominator = torch.where(global_denominator > 0, global_denominator, torch.ones_like(global_denominator))
    scale = local_denominator * world_size(process_group) / safe_denominator
    return (local_mean.to(scale.dtype) * scale).to(local_mean.dtype)
