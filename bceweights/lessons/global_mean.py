"""Lesson 11's experiment: one global batch split over 2 ranks whose ignore masks are uneven.

Each rank holds ``(2, 1, 16, 16)`` logits of a two-parameter model, ``logits = images * scale + bias``
(float64), and an ignore mask: rank 0 keeps :data:`KEPT` ``[0]`` of its 512 pixels, rank 1 keeps
``KEPT[1]``. For ``reduction="weighted_mean"`` each pixel also has a weight, :data:`POSITIVE_WEIGHT` on
positives and 1 on negatives. :func:`rank_step` is what one rank of a DDP job computes, with a
per-rank mean and with ``process_group=``, for ``"mean"`` and ``"weighted_mean"``;
:func:`single_process_step` is the loss over the union of the shards in one process, the reference
both are compared with. Run the ranks with
:func:`bceweights.lessons.ranks.run_on_ranks`.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

import bceweights as bw

SHAPE = (2, 1, 16, 16)
"""Each rank's logits: 2 images of 16 x 16 pixels, 512 elements."""

KEPT: tuple[int, ...] = (64, 448)
"""Kept (not ignored) pixels on rank 0 and rank 1: 1/8 and 7/8 of each rank's 512."""

POSITIVE_WEIGHT = 3.0
"""The weight of a positive pixel in the ``"weighted_mean"`` runs (negatives weigh 1)."""

REDUCTION_KEY_PREFIXES: dict[str, str] = {"mean": "", "weighted_mean": "weighted_"}
"""Each reduction :func:`rank_step` and :func:`single_process_step` run, and the prefix of its keys."""


def shard(rank: int) -> dict[str, Tensor]:
    """Rank ``rank``'s images ``(2, 1, 16, 16)``, 0/1 targets, weights and ignore mask (True = ignored)."""
    g = torch.Generator().manual_seed(100 + rank)
    images = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    target = (images + 0.8 * torch.randn(SHAPE, generator=g, dtype=torch.float64) > 0.5).double()
    order = torch.randperm(images.numel(), generator=g)
    ignore = torch.ones(images.numel(), dtype=torch.bool)
    ignore[order[: KEPT[rank]]] = False
    weight = 1.0 + (POSITIVE_WEIGHT - 1.0) * target
    return {"images": images, "target": target, "weight": weight, "ignore": ignore.view(SHAPE)}


def _parameters() -> tuple[Tensor, Tensor]:
    scale = torch.tensor(1.2, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-0.4, dtype=torch.float64, requires_grad=True)
    return scale, bias


def _kept_weight(batch: dict[str, Tensor]) -> float:
    """The sum of the weights of the kept pixels: what ``"weighted_mean"`` divides by."""
    return float(batch["weight"][~batch["ignore"]].sum())


def _loss_and_gradient(
    batch: dict[str, Tensor], process_group=None, reduction: str = "mean"
) -> tuple[float, Tensor]:
    scale, bias = _parameters()
    logits = batch["images"] * scale + bias
    weight = batch["weight"] if reduction == "weighted_mean" else None
    loss = bw.bce_with_logits(
        logits, batch["target"], weight, ignore=batch["ignore"], reduction=reduction,
        process_group=process_group,
    )
    loss.backward()
    return float(loss.detach()), torch.stack([scale.grad, bias.grad])


def rank_step(rank: int, world_size: int) -> dict[str, object]:
    """One rank's step, per-rank mean and ``process_group=``; gradients averaged over ranks as DDP does.

    Returns the kept count and kept weight, and for each reduction of :data:`REDUCTION_KEY_PREFIXES` (keys prefixed
    ``""`` for ``"mean"``, ``"weighted_"`` for ``"weighted_mean"``) the loss this rank would log and the
    DDP-averaged gradient ``(d/dscale, d/dbias)``, per rank (``..._per_rank``) and with
    ``process_group=`` (``..._global``).
    """
    batch = shard(rank)
    result: dict[str, object] = {
        "rank": rank,
        "kept": int((~batch["ignore"]).sum()),
        "kept_weight": _kept_weight(batch),
    }
    for reduction, prefix in REDUCTION_KEY_PREFIXES.items():
        for name, group in (("per_rank", None), ("global", dist.group.WORLD)):
            loss, gradient = _loss_and_gradient(batch, group, reduction)
            dist.all_reduce(gradient)
            result[f"{prefix}loss_{name}"] = loss
            result[f"{prefix}gradient_{name}"] = gradient / world_size
    return result


def single_process_step(world_size: int = 2) -> dict[str, object]:
    """The loss and gradient of the union of every rank's shard, in one process (the reference).

    Keys as :func:`rank_step`'s without the ``_per_rank`` / ``_global`` suffix: ``loss``, ``gradient``,
    ``weighted_loss``, ``weighted_gradient``, ``kept`` and ``kept_weight``.
    """
    parts = [shard(rank) for rank in range(world_size)]
    batch = {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
    result: dict[str, object] = {"kept": int((~batch["ignore"]).sum()), "kept_weight": _kept_weight(batch)}
    for reduction, prefix in REDUCTION_KEY_PREFIXES.items():
        result[f"{prefix}loss"], result[f"{prefix}gradient"] = _loss_and_gradient(batch, None, reduction)
    return result


def rank_pos_weight(rank: int, world_size: int) -> dict[str, Tensor]:
    """``pos_weight = neg / pos`` of one rank's targets: from its shard alone, and over every shard.

    ``"local"`` counts only this rank's shard (what each rank gets without a group: the ranks
    disagree); ``"global"`` passes ``process_group=``, so every rank gets the union's value.
    """
    target = shard(rank)["target"]
    return {
        "local": bw.pos_weight_from_targets(target, channel_dim=1),
        "global": bw.pos_weight_from_targets(target, channel_dim=1, process_group=dist.group.WORLD),
    }


def rank_all_void_step(rank: int, world_size: int) -> dict[str, object]:
    """The safe pattern when a rank's batch is all void: every rank calls the loss anyway.

    Two steps with ``process_group=`` and ``reduction="mean"``: in the first, the last rank's batch is all
    void (every other rank keeps its shard's pixels); in the second, every rank's batch is all void. A rank that
    skipped the call would leave the others waiting in the denominator's all-reduce, so none does.
    Returns, per step (keys ``one_void_...`` and ``all_void_...``), this rank's loss and the gradient
    ``(d/dscale, d/dbias)`` averaged over the ranks as DDP does.
    """
    batch = shard(rank)
    result: dict[str, object] = {"rank": rank}
    for step, void_ranks in (("one_void", {world_size - 1}), ("all_void", set(range(world_size)))):
        step_batch = dict(batch)
        if rank in void_ranks:
            step_batch["ignore"] = torch.ones_like(batch["ignore"])
        loss, gradient = _loss_and_gradient(step_batch, dist.group.WORLD, "mean")
        dist.all_reduce(gradient)
        result[f"{step}_kept"] = int((~step_batch["ignore"]).sum())
        result[f"{step}_loss"] = loss
        result[f"{step}_gradient"] = gradient / world_size
    return result


def single_process_void_reference(world_size: int = 2) -> dict[str, object]:
    """One process's loss and gradient over the shards :func:`rank_all_void_step` keeps in its first step."""
    parts = [shard(rank) for rank in range(world_size - 1)]
    batch = {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
    loss, gradient = _loss_and_gradient(batch, None, "mean")
    return {"loss": loss, "gradient": gradient}


def rank_steps(rank: int, world_size: int) -> dict[str, dict[str, object]]:
    """:func:`rank_step` and :func:`rank_all_void_step` in one launch (each launch starts fresh processes).

    Returns ``{"step": rank_step(...), "void": rank_all_void_step(...)}`` for this rank.
    """
    return {"step": rank_step(rank, world_size), "void": rank_all_void_step(rank, world_size)}
