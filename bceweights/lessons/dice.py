"""Soft Dice loss on logits, and BCE + Dice, for the lessons' comparison of imbalance remedies.

With ``q = sigmoid(x)`` and targets ``y`` in [0, 1], summed over the dimensions ``dims``:

    dice = (2 Σ q y + smooth) / (Σ q + Σ y + smooth)          loss = 1 - dice

The Dice coefficient is the F1 score with soft predictions: it counts only the positives (true
positives against predicted and actual positives), so a mostly-negative image does not drown the
few positive pixels, which is why it is used for rare classes. ``smooth`` (1 by default, as in most
segmentation code) keeps the ratio defined on an image without positives and damps its gradient
there. The loss is not a sum of per-element terms: the gradient of one element depends on every
other element summed with it, and the optimum is not a calibrated probability (lesson 08).

``dims=None`` sums over every dimension: one Dice for the whole batch (``reduction`` then has a
single value to reduce). ``dims=(2, 3)`` on ``(N, C, H, W)`` gives one Dice per image and channel,
``(N, C)``, reduced by ``reduction`` (``"mean"``, ``"sum"`` or ``"none"``).

Imports: torch and the core's error-message builder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

import bceweights as bw
from bceweights.messages import error_message

DICE_REDUCTIONS = ("mean", "sum", "none")


def _check(input: Tensor, target: Tensor, smooth: float, reduction: str) -> None:
    if input.shape != target.shape:
        raise ValueError(error_message(
            f"input has shape {tuple(input.shape)} but target has shape {tuple(target.shape)}",
            "the Dice loss pairs them element by element.",
            "soft_dice_with_logits(logits, target.view_as(logits))",
        ))
    if reduction not in DICE_REDUCTIONS:
        raise ValueError(error_message(
            f"reduction={reduction!r}", f"expected one of {', '.join(DICE_REDUCTIONS)}.",
            "soft_dice_with_logits(logits, target, reduction='mean')",
        ))
    if not smooth >= 0:
        raise ValueError(error_message(
            f"smooth={smooth!r}", "expected smooth >= 0 (0: the plain ratio, undefined without positives).",
            "soft_dice_with_logits(logits, target, smooth=1.0)",
        ))


def soft_dice_with_logits(
    input: Tensor,
    target: Tensor,
    *,
    smooth: float = 1.0,
    dims: int | Sequence[int] | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``1 - (2 Σ q y + smooth) / (Σ q + Σ y + smooth)`` with ``q = sigmoid(input)``, summed over ``dims``.

    Args:
        input: logits, any shape, e.g. ``(N, C, H, W)`` or ``(N,)``.
        target: same shape, values in [0, 1].
        smooth: added to numerator and denominator (``>= 0``).
        dims: dimensions summed into one Dice; ``None``: all of them (one value for the batch).
        reduction: ``"mean"`` / ``"sum"`` over the Dice values left, or ``"none"`` (their shape).

    Example::

        loss = soft_dice_with_logits(logits, masks, dims=(2, 3))   # per image and channel, then mean
    """
    smooth = float(smooth)
    _check(input, target, smooth, reduction)
    probability = torch.sigmoid(input)
    target = target.to(probability.dtype)
    if dims is None:
        dims = tuple(range(input.ndim))
    intersection = (probability * target).sum(dim=dims)
    total = probability.sum(dim=dims) + target.sum(dim=dims)
    loss = 1.0 - (2.0 * intersection + smooth) / (total + smooth)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def bce_dice_with_logits(
    input: Tensor,
    target: Tensor,
    *,
    dice_weight: float = 1.0,
    smooth: float = 1.0,
    dims: int | Sequence[int] | None = None,
    **bce_options,
) -> Tensor:
    """``bw.bce_with_logits(input, target, **bce_options) + dice_weight * soft_dice_with_logits(...)``.

    The common "BCE + Dice" of segmentation code: the mean BCE (any of its options, e.g.
    ``pos_weight=``) plus the Dice loss of :func:`soft_dice_with_logits` (mean over its values).
    Returns a scalar.
    """
    bce = bw.bce_with_logits(input, target, **bce_options)
    if bce.ndim:
        raise ValueError(error_message(
            f"bce_options give a BCE of shape {tuple(bce.shape)}", "BCE + Dice adds two scalars.",
            "bce_dice_with_logits(logits, target, reduction='mean')",
        ))
    return bce + float(dice_weight) * soft_dice_with_logits(input, target, smooth=smooth, dims=dims)


class SoftDiceWithLogits(nn.Module):
    """Module form of :func:`soft_dice_with_logits`: ``SoftDiceWithLogits(dims=(2, 3))(logits, masks)``."""

    def __init__(self, *, smooth: float = 1.0, dims: int | Sequence[int] | None = None, reduction: str = "mean") -> None:
        super().__init__()
        self.smooth, self.dims, self.reduction = float(smooth), dims, reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return soft_dice_with_logits(input, target, smooth=self.smooth, dims=self.dims, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"smooth={self.smooth:g}, dims={self.dims}, reduction={self.reduction!r}"


class BCEDiceWithLogits(nn.Module):
    """Module form of :func:`bce_dice_with_logits`: ``BCEDiceWithLogits(dice_weight=1.0)(logits, masks)``."""

    def __init__(
        self, *, dice_weight: float = 1.0, smooth: float = 1.0, dims: int | Sequence[int] | None = None, **bce_options
    ) -> None:
        super().__init__()
        self.dice_weight, self.smooth, self.dims, self.bce_options = float(dice_weight), float(smooth), dims, bce_options

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return bce_dice_with_logits(
            input, target, dice_weight=self.dice_weight, smooth=self.smooth, dims=self.dims, **self.bce_options
        )

    def extra_repr(self) -> str:
        return f"dice_weight={self.dice_weight:g}, smooth={self.smooth:g}, dims={self.dims}"
