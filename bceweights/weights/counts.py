"""Counts and ``pos_weight`` from counts: ``pos_weight = num_neg / num_pos``, per channel or global.

Also the count helpers every weight builder shares: :func:`count_vector` (a number, list, array or
tensor of counts as a 1-D tensor), :func:`check_counts` and the accumulator dtype (float64, float32 on
Apple MPS). Imports: :mod:`bceweights.checks`, :mod:`bceweights.messages`, :mod:`bceweights.shapes`.
"""

from __future__ import annotations

import numbers
import reprlib
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

from bceweights.checks import negative_mask, nonfinite_mask
from bceweights.messages import LISTED_ITEMS, error_message, listing
from bceweights.shapes import shape_str

Counts = Union[float, int, Sequence[float], np.ndarray, torch.Tensor]
"""A number, or one number per channel/class (a list, a 1-D array or a 1-D tensor)."""


def shape_of(tensor: torch.Tensor | np.ndarray) -> str:
    """:func:`bceweights.shapes.shape_str` of a tensor's or an array's shape: ``(8, 3, 32, 32)``, ``(3,)``."""
    return shape_str(tensor.shape)


def indices(mask: torch.Tensor, limit: int = LISTED_ITEMS) -> str:
    """Where ``mask`` is True, for a message: ``[2, 5]``, or ``[0, 1, ..., 9] (first 10 of 2000000)``."""
    flat = torch.nonzero(mask.reshape(-1)).reshape(-1)
    return listing([int(i) for i in flat[:limit].tolist()], limit, total=flat.numel())


def values_at(values: torch.Tensor, mask: torch.Tensor, limit: int = LISTED_ITEMS) -> str:
    """The values where ``mask`` is True, for a message, as bounded as :func:`indices`."""
    selected = values[mask]
    return listing(selected[:limit].tolist(), limit, total=selected.numel())


def accumulator_dtype(device: torch.device) -> torch.dtype:
    """float64 keeps counts exact up to 2**53; Apple's MPS has no float64, so it counts in float32."""
    return torch.float32 if device.type == "mps" else torch.float64


def count_vector(name: str, value: Counts) -> tuple[torch.Tensor, bool]:
    """``value`` as a float64 1-D tensor, and whether it was a single number.

    Accepts a Python number, a sequence of numbers, a numpy array or a tensor with 0 or 1 dimensions.
    """
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        dtype = accumulator_dtype(tensor.device)
        tensor = tensor.to(dtype)
    elif isinstance(value, (numbers.Number, np.ndarray, np.number)) or isinstance(value, Sequence):
        try:
            tensor = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise TypeError(error_message(
                f"{name} is {reprlib.repr(value)}, which is not a number or a list of numbers",
                "expected a count (e.g. 300) or one count per channel (e.g. [300, 12, 40]).",
                "bw.pos_weight_from_counts(num_pos=100, num_neg=300)", lead="Write for example",
            )) from error
    else:
        raise TypeError(error_message(
            f"{name} is a {type(value).__name__}",
            "expected a number, a list of numbers, a numpy array or a tensor of counts.",
            f"{name}=torch.tensor([100., 12., 40.])", lead="Write for example",
        ))
    if tensor.dim() > 1:
        raise ValueError(error_message(
            f"{name} has shape {shape_of(tensor)}", "expected a number or one count per channel, shape (C,).",
            f"{name} = {name}.sum(dim=0)   # if dim 0 holds one row of counts per sample or batch",
            lead="Counts are totals over the dataset, not per sample. Write instead",
        ))
    return tensor.reshape(-1), tensor.dim() == 0


def check_counts(name: str, counts: torch.Tensor) -> None:
    """Raise ``ValueError`` if a count is NaN, infinite or negative."""
    nonfinite = nonfinite_mask(counts)
    if bool(nonfinite.any()):
        raise ValueError(error_message(
            f"{name} holds NaN or infinite value(s) at index {indices(nonfinite)}", "expected finite counts >= 0.",
            f"{name} = targets.sum(dim=(0, 2, 3))   # positives per channel of (N, C, H, W)", lead="Recount, e.g.",
        ))
    negative = negative_mask(counts)
    if bool(negative.any()):
        raise ValueError(error_message(
            f"{name} holds negative count(s) {values_at(counts, negative)} at index {indices(negative)}",
            "expected counts >= 0.", "num_neg = targets.numel() // targets.shape[1] - num_pos",
            lead=f"A count cannot be negative: if {name} was computed as a difference, "
            "e.g. num_neg = total - num_pos, check that total counts every element",
        ))


def ratio_or_raise(num_pos: torch.Tensor, num_neg: torch.Tensor, fix: str) -> torch.Tensor:
    """``num_neg / num_pos`` elementwise, refusing a channel that has only one class.

    A channel with no positives (``num_pos == 0``: the ratio is infinite) and a channel with no
    negatives (``num_neg == 0``: the ratio is 0, which would switch that channel's positives off) are
    treated alike: ``ValueError`` naming the channels (at most the first 10) and ``fix``, the line that
    gives such channels ``pos_weight = 1`` (no re-weighting) instead.
    """
    no_positives = num_pos == 0
    if bool(no_positives.any()):
        raise ValueError(error_message(
            f"channel(s) {indices(no_positives)} have no positives (num_pos == 0), so num_neg / num_pos is "
            "infinite", "expected at least one positive and one negative in every channel.", fix,
            lead="A channel with no positives cannot be re-weighted; drop it, count over more data, "
            "or give it pos_weight 1",
        ))
    no_negatives = num_neg == 0
    if bool(no_negatives.any()):
        raise ValueError(error_message(
            f"channel(s) {indices(no_negatives)} are all positive (num_neg == 0), so num_neg / num_pos is 0 "
            "and pos_weight 0 would give their positives no weight at all",
            "expected at least one positive and one negative in every channel.", fix,
            lead="A channel with no negatives has nothing to balance against; drop it, count over more data, "
            "or give it pos_weight 1",
        ))
    return num_neg / num_pos


def pos_weight_from_counts(
    num_pos: Counts, num_neg: Counts, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``pos_weight = num_neg / num_pos``: the weight that makes positives count as much as negatives.

    With it, the positive terms of the loss sum to ``num_pos * pos_weight = num_neg``, the same total
    as the negative terms.

    Args:
        num_pos: number of positive elements: a number, or one per channel ``(C,)``
            (list, numpy array or tensor). Soft (fractional) counts are fine.
        num_neg: number of negative elements, same form. A number is broadcast against a
            per-channel ``num_pos`` and vice versa.
        dtype: dtype of the result (``float32`` unless you train in another precision).

    Returns:
        ``(1,)`` for numbers (the shape a single-output ``(N, 1)`` model needs; a bare Python number
        is refused by ``torch.nn.BCEWithLogitsLoss``), ``(C,)`` for per-channel counts. Use a
        ``(C,)`` result with ``bw.bce_with_logits(..., pos_weight=pw, channel_dim=1)`` or
        ``pw.view(C, 1, 1)`` for ``(N, C, H, W)`` with plain PyTorch.

    Raises:
        ValueError: a count is negative, NaN or infinite; a channel has no positives or no negatives
            (named: ``num_neg / num_pos`` would be infinite or 0, and 0 would switch the channel's
            positives off; the message gives the line that sets such channels to 1 instead);
            per-channel lengths differ; a ratio (computed in float64) that ``dtype`` would hold as
            ``inf`` or 0 (e.g. ``num_neg / num_pos = 1e39`` in float32).

    Example:
        >>> pos_weight_from_counts(100, 300)
        tensor([3.])
        >>> pos_weight_from_counts([100, 10], [300, 990])
        tensor([ 3., 99.])
    """
    pos, pos_is_number = count_vector("num_pos", num_pos)
    neg, neg_is_number = count_vector("num_neg", num_neg)
    if pos.numel() != neg.numel() and not (pos_is_number or neg_is_number):
        raise ValueError(error_message(
            f"num_pos has {pos.numel()} channel(s) and num_neg has {neg.numel()}",
            "expected one count per channel in both, of the same length (or a single number for one of them).",
            "bw.pos_weight_from_counts(num_pos=[100, 10, 40], num_neg=[300, 990, 60])", lead="Write for example",
        ))
    check_counts("num_pos", pos)
    check_counts("num_neg", neg)
    if neg.device != pos.device:
        neg = neg.to(pos.device)
    pos, neg = torch.broadcast_tensors(pos, neg)
    fix = (
        "num_pos = torch.as_tensor(num_pos, dtype=torch.float64)\n"
        "num_neg = torch.as_tensor(num_neg, dtype=torch.float64)\n"
        "pos_weight = torch.where((num_pos > 0) & (num_neg > 0), num_neg / num_pos, 1.0).float()"
    )
    return fit_dtype(ratio_or_raise(pos, neg, fix), dtype)


def fit_dtype(ratio: torch.Tensor, dtype: torch.dtype, what: str = "num_neg / num_pos",
              where: str = "channel(s)") -> torch.Tensor:
    """``ratio`` (counted in float64) rounded to ``dtype``, refusing values that would not survive it.

    A ratio beyond ``dtype``'s largest number would become ``inf``; a positive ratio below its
    smallest subnormal would become 0, which switches the channel's positives off. Both raise
    ``ValueError`` naming the channels (``where``), the quantity (``what``) and the dtype.
    """
    result = ratio.to(dtype)
    if not result.is_floating_point():
        return result
    overflow = torch.isfinite(ratio) & ~torch.isfinite(result)
    underflow = (ratio > 0) & (result == 0)
    for bad, becomes in ((overflow, "inf"), (underflow, "0")):
        if bool(bad.any()):
            name = str(dtype).replace("torch.", "")
            smallest = float(torch.nextafter(torch.zeros((), dtype=dtype), torch.ones((), dtype=dtype)))
            raise ValueError(error_message(
                f"{what} at {where} {indices(bad)} is {values_at(ratio, bad)}, which {name} holds "
                f"as {becomes} (its positive numbers run from {smallest:.3g} to {torch.finfo(dtype).max:.3g})",
                "expected a weight the loss's dtype can hold.",
                "dtype=torch.float64   # if the counts are right (and train in float64); else recount",
            ))
    return result
