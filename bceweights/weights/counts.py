"""Weight builders: turn counts, targets or a dataset into ``pos_weight``, class weights and weight maps.

Every builder gives a float tensor shaped for the place it goes:

==============================================  ===========================  =====================================
builder                                         result shape                 use it as
==============================================  ===========================  =====================================
``pos_weight_from_counts(num_pos, num_neg)``    ``(1,)`` or ``(C,)``         ``pos_weight`` (with ``channel_dim=1``)
``pos_weight_from_targets(targets)``            ``(C,)``; ``(1,)`` global    ``pos_weight`` (with ``channel_dim=1``)
``count_positives(targets)``                    two ``(C,)`` tensors         the counts behind the two above
``balanced_weights(counts)``                    ``(K,)``                     per-class ``weight``
``median_frequency_weights(targets, ...)``      ``(K,)``                     per-class ``weight``
``rebalance_map(target, ratio)``                ``target.shape``             per-element ``weight``
``optimal_probability(q, pos_weight)``          like ``q``                   what a trained model will predict
``optimal_logit(q, pos_weight)``                like ``q``                   the logit it will output
==============================================  ===========================  =====================================

``targets`` may be one tensor or any iterable of batches (a list, a ``DataLoader``); batches are
counted one at a time and never concatenated, so a dataset larger than memory is fine.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar, Union

import numpy as np
import torch

from bceweights.checks import value_checks_enabled

__all__ = [
    "balanced_weights",
    "count_positives",
    "median_frequency_weights",
    "optimal_logit",
    "optimal_probability",
    "pos_weight_from_counts",
    "pos_weight_from_targets",
    "rebalance_map",
]

Counts = Union[float, int, Sequence[float], np.ndarray, torch.Tensor]
"""A number, or one number per channel/class (a list, a 1-D array or a 1-D tensor)."""

Targets = Union[torch.Tensor, np.ndarray, Iterable[Any]]
"""One target tensor, or an iterable of batches: tensors or ``(inputs, targets)`` tuples."""

ArrayLike = TypeVar("ArrayLike", float, np.ndarray, torch.Tensor)


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------


def _shape(tensor: torch.Tensor | np.ndarray) -> str:
    """``(8, 3, 32, 32)`` with a trailing comma for one dimension, as Python prints tuples."""
    return str(tuple(tensor.shape))


def _indices(mask: torch.Tensor) -> list[int]:
    return [int(i) for i in torch.nonzero(mask.reshape(-1)).reshape(-1).tolist()]


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    """float64 keeps counts exact up to 2**53; Apple's MPS has no float64, so it counts in float32."""
    return torch.float32 if device.type == "mps" else torch.float64


def _count_vector(name: str, value: Counts) -> tuple[torch.Tensor, bool]:
    """``value`` as a float64 1-D tensor, and whether it was a single number.

    Accepts a Python number, a sequence of numbers, a numpy array or a tensor with 0 or 1 dimensions.
    """
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        dtype = _accumulator_dtype(tensor.device)
        tensor = tensor.to(dtype)
    elif isinstance(value, (numbers.Number, np.ndarray, np.number)) or isinstance(value, Sequence):
        try:
            tensor = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{name} is {value!r}, which is not a number or a list of numbers; expected a count "
                f"(e.g. 300) or one count per channel (e.g. [300, 12, 40]).\n"
                f"Write for example:\n    bw.pos_weight_from_counts(num_pos=100, num_neg=300)"
            ) from error
    else:
        raise TypeError(
            f"{name} is a {type(value).__name__}; expected a number, a list of numbers, a numpy array "
            f"or a tensor of counts.\nWrite for example:\n    {name}=torch.tensor([100., 12., 40.])"
        )
    if tensor.dim() > 1:
        raise ValueError(
            f"{name} has shape {_shape(tensor)}; expected a number or one count per channel, shape (C,).\n"
            f"Counts are totals over the dataset, not per sample. Write instead:\n"
            f"    {name} = {name}.sum(dim=0)   # if dim 0 holds one row of counts per sample or batch"
        )
    return tensor.reshape(-1), tensor.dim() == 0


def _check_counts(name: str, counts: torch.Tensor) -> None:
    """Raise ``ValueError`` if a count is NaN, infinite or negative."""
    finite = torch.isfinite(counts)
    if not bool(finite.all()):
        raise ValueError(
            f"{name} holds NaN or infinite value(s) at index {_indices(~finite)}; expected finite counts >= 0.\n"
            f"Recount, e.g.:\n    {name} = targets.sum(dim=(0, 2, 3))   # positives per channel of (N, C, H, W)"
        )
    negative = counts < 0
    if bool(negative.any()):
        raise ValueError(
            f"{name} holds negative count(s) {counts[negative].tolist()} at index {_indices(negative)}; "
            f"expected counts >= 0.\nA count cannot be negative: if {name} was computed as a difference, "
            f"e.g. num_neg = total - num_pos, check that total counts every element:\n"
            f"    num_neg = targets.numel() // targets.shape[1] - num_pos"
        )


def _ratio_or_raise(num_pos: torch.Tensor, num_neg: torch.Tensor, fix: str) -> torch.Tensor:
    """``num_neg / num_pos`` elementwise; ``ValueError`` naming the channels with no positives."""
    no_positives = num_pos == 0
    if bool(no_positives.any()):
        channels = _indices(no_positives)
        raise ValueError(
            f"channel(s) {channels} have no positives (num_pos == 0), so num_neg / num_pos is infinite; "
            f"expected at least one positive in every channel.\nA channel with no positives cannot be "
            f"re-weighted; drop it, count over more data, or give it pos_weight 1:\n{fix}"
        )
    return num_neg / num_pos


# --------------------------------------------------------------------------------------------------
# pos_weight from counts
# --------------------------------------------------------------------------------------------------


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
        ValueError: a count is negative, NaN or infinite; a channel has no positives (named);
            per-channel lengths differ.

    Example:
        >>> pos_weight_from_counts(100, 300)
        tensor([3.])
        >>> pos_weight_from_counts([100, 10], [300, 990])
        tensor([ 3., 99.])
    """
    pos, pos_is_number = _count_vector("num_pos", num_pos)
    neg, neg_is_number = _count_vector("num_neg", num_neg)
    if pos.numel() != neg.numel() and not (pos_is_number or neg_is_number):
        raise ValueError(
            f"num_pos has {pos.numel()} channel(s) and num_neg has {neg.numel()}; expected one count per "
            f"channel in both, of the same length (or a single number for one of them).\n"
            f"Write for example:\n    bw.pos_weight_from_counts(num_pos=[100, 10, 40], num_neg=[300, 990, 60])"
        )
    _check_counts("num_pos", pos)
    _check_counts("num_neg", neg)
    if neg.device != pos.device:
        neg = neg.to(pos.device)
    pos, neg = torch.broadcast_tensors(pos, neg)
    fix = "    pos_weight = torch.where(num_pos > 0, num_neg / num_pos, torch.ones_like(num_pos))"
    return _ratio_or_raise(pos, neg, fix).to(dtype)


# --------------------------------------------------------------------------------------------------
# streaming over target batches
# --------------------------------------------------------------------------------------------------


def _batches(targets: Targets, progress: bool, description: str) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(index, target_batch)`` from one tensor or an iterable of batches, optionally with tqdm.

    A batch that is a tuple or list is taken as ``(inputs, targets)`` (or ``(inputs, ..., targets)``):
    its last element is the target. A dict is refused with the line to write instead.
    """
    if isinstance(targets, (torch.Tensor, np.ndarray)):
        iterable: Iterable[Any] = [targets]
    elif isinstance(targets, Iterable) and not isinstance(targets, (str, bytes)):
        iterable = targets
    else:
        raise TypeError(
            f"targets is a {type(targets).__name__}; expected a tensor (N, C, ...) or an iterable of "
            f"batches (a list of tensors, a DataLoader yielding (inputs, targets)).\n"
            f"Write for example:\n    bw.count_positives(torch.as_tensor(targets))"
        )
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError as error:  # pragma: no cover - tqdm is a dependency of the package
            raise ImportError(
                "progress=True needs tqdm, which is not installed.\nInstall it:\n    pip install tqdm"
            ) from error
        try:
            total: int | None = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
        iterable = tqdm(iterable, desc=description, total=total)
    for index, batch in enumerate(iterable):
        if isinstance(batch, (tuple, list)):
            if len(batch) == 0:
                raise ValueError(
                    f"batch {index} is an empty {type(batch).__name__}; expected a target tensor or a pair "
                    f"(inputs, targets).\nPass only the targets, e.g.:\n    (y for x, y in loader)"
                )
            batch = batch[-1]
            if not isinstance(batch, (torch.Tensor, np.ndarray)):
                raise TypeError(
                    f"batch {index} is a tuple or list whose last element is a {type(batch).__name__}; "
                    f"a tuple or list batch is read as (inputs, targets) and its last element must be the "
                    f"target tensor.\nIf targets is a nested list of target values, make it a tensor first:\n"
                    f"    torch.tensor(targets)"
                )
        if isinstance(batch, dict):
            raise TypeError(
                f"batch {index} is a dict with keys {sorted(map(str, batch))}; expected a target tensor or "
                f"(inputs, targets).\nPass the targets only, naming your key, e.g.:\n"
                f"    (batch['mask'] for batch in loader)"
            )
        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(batch)
        if not isinstance(batch, torch.Tensor):
            raise TypeError(
                f"batch {index} is a {type(batch).__name__}; expected a target tensor or (inputs, targets).\n"
                f"Pass tensors, e.g.:\n    [torch.as_tensor(t) for t in targets]"
            )
        yield index, batch.detach()


def _resolve_channel_dim(
    batch: torch.Tensor, index: int, channel_dim: int, minimum_dims: int, fix: str
) -> int:
    """``channel_dim`` as a non-negative index into ``batch``'s dimensions, or a ``ValueError`` with ``fix``."""
    ndim = batch.dim()
    needed = max(minimum_dims, channel_dim + 1 if channel_dim >= 0 else -channel_dim)
    if ndim < needed:
        raise ValueError(
            f"target batch {index} has shape {_shape(batch)} ({ndim} dimension(s)); channel_dim={channel_dim} "
            f"needs at least {needed} dimensions, e.g. (N, C, H, W) with channels at dim {channel_dim}.\n"
            f"Write instead one of:\n{fix}"
        )
    return channel_dim % ndim


def _check_binary_values(batch: torch.Tensor, index: int, extra_fix: str) -> None:
    """Raise ``ValueError`` if a target value is NaN or outside ``[0, 1]`` (bool batches skip the check)."""
    if batch.dtype == torch.bool or batch.numel() == 0:
        return
    outside = ~((batch >= 0) & (batch <= 1))
    if not bool(outside.any()):
        return
    values = batch[outside]
    example = values[0].item()
    largest = batch.max().item()
    fixes = []
    if largest == 255:
        fixes.append("    targets = targets > 127          # if 0/255 is an image mask")
    fixes.append(extra_fix)
    raise ValueError(
        f"target batch {index} of shape {_shape(batch)} holds {values.numel()} value(s) outside [0, 1] "
        f"(for example {example!r}); expected 0/1 labels or probabilities.\nWrite instead one of:\n"
        + "\n".join(fixes)
        + "\n(or check_values=False to skip this check, at your own risk)"
    )


# --------------------------------------------------------------------------------------------------
# counting positives and pos_weight from targets
# --------------------------------------------------------------------------------------------------


class _StreamedSums:
    """Running sums of two per-channel tensors over batches, which are never concatenated.

    ``add`` checks that every batch has as many channels as the first; ``totals`` refuses a stream
    that yielded nothing. ``channel_hint`` ends the first message, ``empty_example`` the second.
    """

    def __init__(self, channel_dim: int | None, channel_hint: str, empty_example: str | None = None) -> None:
        self.channel_dim = channel_dim
        self.channel_hint = channel_hint
        self.empty_example = empty_example
        self.first: torch.Tensor | None = None
        self.second: torch.Tensor | None = None
        self.first_shape: tuple[int, ...] = ()

    def add(self, index: int, batch_shape: tuple[int, ...], first: torch.Tensor, second: torch.Tensor) -> None:
        if self.first is None or self.second is None:
            self.first, self.second, self.first_shape = first, second, tuple(batch_shape)
            return
        if first.shape != self.first.shape:
            raise ValueError(
                f"target batch {index} has shape {tuple(batch_shape)} with {first.numel()} channel(s) at "
                f"dim {self.channel_dim}, but batch 0 had shape {self.first_shape} with {self.first.numel()}; "
                f"expected the same number of channels in every batch.\n{self.channel_hint}"
            )
        self.first = self.first + first.to(self.first.device)
        self.second = self.second + second.to(self.second.device)

    def totals(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.first is None or self.second is None:
            message = "targets yielded no batches; expected a tensor or at least one batch.\n"
            if self.empty_example is None:
                message += "Check the DataLoader (an exhausted iterator or an empty dataset yields nothing)."
            else:
                message += (
                    "Check the DataLoader (an exhausted iterator or an empty dataset yields nothing), e.g.:\n"
                    + self.empty_example
                )
            raise ValueError(message)
        return self.first, self.second


def count_positives(
    targets: Targets,
    channel_dim: int | None = 1,
    *,
    progress: bool = False,
    check_values: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Number of positives and number of elements per channel, streamed over batches.

    ``num_pos[c] = sum of target values in channel c`` (so a soft target 0.3 counts 0.3 of a
    positive), ``num_total[c] = number of target elements in channel c``; the negatives are
    ``num_total - num_pos``.

    Args:
        targets: one tensor ``(N, C, *spatial)``, or an iterable of such batches (a list, a
            ``DataLoader``). A batch that is a tuple or list, as a ``DataLoader`` over
            ``(inputs, targets)`` yields, is read as ``(inputs, ..., targets)``: its **last** element
            is the target. bool, integer (0/1) and float (in [0, 1]) targets are accepted. Batches
            are counted one by one and never concatenated; ``C`` must be the same in every batch.
        channel_dim: the dimension that holds the channels (negative counts from the end, e.g.
            ``-1`` for channels-last ``(N, H, W, C)``). ``None`` counts every element together and
            returns shape ``(1,)``, the ``pos_weight`` shape for a single-output model ``(N,)`` or
            ``(N, 1)``. Mind a mask ``(N, H, W)`` without a channel dimension: ``channel_dim=1``
            would take ``H`` for the channels; pass ``channel_dim=None`` or ``targets.unsqueeze(1)``.
        progress: show a ``tqdm`` progress bar ("counting positives") while iterating.
        check_values: check that targets lie in [0, 1] (one device sync per batch); ``None``
            follows ``bw.set_value_checks`` (on by default).

    Returns:
        ``(num_pos, num_total)``, both float64 of shape ``(C,)`` (``(1,)`` for ``channel_dim=None``),
        on the device of the first batch (float32 on Apple MPS, which has no float64).

    Raises:
        ValueError: no batches; a batch with too few dimensions for ``channel_dim``; a channel count
            that changes between batches; target values outside [0, 1].
        TypeError: a batch that is not a tensor or ``(inputs, targets)``.

    Example:
        >>> y = torch.tensor([[1., 0.], [0., 0.], [1., 1.]])   # (N=3, C=2)
        >>> count_positives(y)
        (tensor([2., 1.], dtype=torch.float64), tensor([3., 3.], dtype=torch.float64))
    """
    checking = value_checks_enabled(check_values)
    sums = _StreamedSums(
        channel_dim,
        "If the targets have no channel dimension, the changing size is not a channel; write instead:\n"
        "    bw.count_positives(targets, channel_dim=None)",
        "    bw.count_positives(torch.cat([y for _, y in loader]))   # small datasets only",
    )
    dims_fix = (
        "    bw.count_positives(targets, channel_dim=None)   # one global count, for a single-output model\n"
        "    bw.count_positives(targets.unsqueeze(1))        # if the targets lack their channel dimension"
    )
    for index, batch in _batches(targets, progress, "counting positives"):
        if checking:
            _check_binary_values(
                batch,
                index,
                "    bw.median_frequency_weights(labels, num_classes=K)   # if the values are class indices",
            )
        accumulator = _accumulator_dtype(batch.device)
        if channel_dim is None:
            positives = torch.sum(batch, dtype=accumulator).reshape(1)
            total = torch.full((1,), float(batch.numel()), dtype=accumulator, device=batch.device)
        else:
            dim = _resolve_channel_dim(batch, index, channel_dim, 2, dims_fix)
            channels = batch.shape[dim]
            reduce_dims = [d for d in range(batch.dim()) if d != dim]
            positives = torch.sum(batch, dim=reduce_dims, dtype=accumulator)
            per_channel = batch.numel() // channels if channels else 0
            total = torch.full((channels,), float(per_channel), dtype=accumulator, device=batch.device)
        sums.add(index, tuple(batch.shape), positives, total)
    return sums.totals()


def pos_weight_from_targets(
    targets: Targets,
    channel_dim: int | None = 1,
    *,
    progress: bool = False,
    check_values: bool | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``pos_weight[c] = negatives[c] / positives[c]``, counted over a tensor or a dataset of batches.

    Built on :func:`count_positives` (same ``targets``, ``channel_dim``, ``progress`` and
    ``check_values``; see it for the accepted forms): ``pos_weight = (num_total - num_pos) / num_pos``.
    With 100 positives and 300 negatives in a channel, its ``pos_weight`` is 3.0.

    Returns:
        float tensor ``(C,)``; ``(1,)`` for ``channel_dim=None``. Pass a ``(C,)`` result as
        ``bw.bce_with_logits(..., pos_weight=pw, channel_dim=1)``, or ``pw.view(C, 1, 1)`` to
        PyTorch for ``(N, C, H, W)``.

    Raises:
        ValueError: a channel has no positives (named), besides the errors of :func:`count_positives`.

    Example:
        >>> y = torch.cat([torch.ones(100), torch.zeros(300)]).reshape(400, 1)
        >>> pos_weight_from_targets(y)
        tensor([3.])
    """
    num_pos, num_total = count_positives(
        targets, channel_dim, progress=progress, check_values=check_values
    )
    fix = (
        "    num_pos, num_total = bw.count_positives(targets)\n"
        "    pos_weight = torch.where(num_pos > 0, (num_total - num_pos) / num_pos, torch.ones_like(num_pos))"
    )
    return _ratio_or_raise(num_pos, num_total - num_pos, fix).to(dtype)


# --------------------------------------------------------------------------------------------------
# per-class weights
# --------------------------------------------------------------------------------------------------


def balanced_weights(counts: Counts, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """scikit-learn's ``class_weight="balanced"``: ``n_samples / (n_classes * counts)``.

    ``n_samples = counts.sum()`` and ``n_classes = len(counts)``. Each class's weights then sum to
    ``n_samples / n_classes``: every class weighs as much as an average class, and the weights over
    all samples sum to ``n_samples``, so the loss keeps its scale.

    Args:
        counts: number of samples of each class, shape ``(K,)``. From labels:
            ``torch.bincount(labels.flatten(), minlength=K)``.
        dtype: dtype of the result.

    Returns:
        float tensor ``(K,)``.

    Raises:
        ValueError: a count is zero (the class is named), negative, NaN, or there are no counts.

    Worked example: counts ``[10, 30, 60]`` give ``n_samples = 100``, ``n_classes = 3``, and weights
    ``100 / (3 * 10) = 3.333``, ``100 / (3 * 30) = 1.111``, ``100 / (3 * 60) = 0.5556``; the classes'
    totals ``10 * 3.333 = 30 * 1.111 = 60 * 0.5556 = 33.33`` are equal.

        >>> balanced_weights([10, 30, 60])
        tensor([3.3333, 1.1111, 0.5556])

    For binary BCE with counts ``[num_neg, num_pos]`` the ratio of the two weights is
    ``num_neg / num_pos``, the :func:`pos_weight_from_counts` value.
    """
    values, _ = _count_vector("counts", counts)
    if values.numel() == 0:
        raise ValueError(
            "counts is empty; expected one count per class, shape (K,).\n"
            "Write for example:\n    bw.balanced_weights(torch.bincount(labels.flatten(), minlength=K))"
        )
    _check_counts("counts", values)
    zero = values == 0
    if bool(zero.any()):
        raise ValueError(
            f"class(es) {_indices(zero)} have count 0, so n_samples / (n_classes * count) is infinite; "
            f"expected every class to occur at least once.\nDrop the absent classes (and relabel), count on "
            f"more data, or give them weight 0 yourself:\n"
            f"    weights = torch.zeros(K); weights[counts > 0] = bw.balanced_weights(counts[counts > 0])"
        )
    n_samples = values.sum()
    n_classes = values.numel()
    return (n_samples / (n_classes * values)).to(dtype)


def _median(values: torch.Tensor) -> torch.Tensor:
    """The true median: the middle value, or the mean of the two middle values for an even count."""
    ordered = torch.sort(values).values
    middle = ordered.numel() // 2
    if ordered.numel() % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def median_frequency_weights(
    targets: Targets,
    *,
    num_classes: int | None = None,
    channel_dim: int = 1,
    ignore_index: int | None = None,
    progress: bool = False,
    check_values: bool | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Median-frequency balancing (Eigen & Fergus, 2015): ``weight[c] = median(freq) / freq[c]``.

    ``freq[c] = (pixels of class c) / (total pixels of the images in which c appears)``: an image
    where class ``c`` is absent adds nothing to its denominator, so a class that is rare because it
    appears in few images is not penalised twice. The median is the true median (the mean of the
    two middle values for an even number of classes). The class with the median frequency gets 1,
    rarer classes more, commoner classes less.

    Two forms of ``targets`` (one tensor or an iterable of batches, as in :func:`count_positives`;
    tuple/list batches are ``(inputs, ..., targets)`` and the last element is used; an "image" is one
    index along dim 0):

    * label maps ``(N, *spatial)`` of integer class indices, with ``num_classes=K`` given: each pixel
      belongs to one class. Values outside ``0..K-1`` are an error, except ``ignore_index``: those
      pixels count nowhere (neither as a class nor in an image's total). If ``ignore_index`` is
      itself one of the classes, that class gets weight 0 and stays out of the median. Labels are
      always range-checked (an out-of-range label would be counted in the wrong bin).
    * multi-label masks ``(N, C, *spatial)`` (bool, or float/int in [0, 1]), channels along
      ``channel_dim``, with ``num_classes=None``: a pixel may belong to several classes, soft
      values count fractionally, and a class appears in an image when any of its values is > 0.

    Args:
        targets: the label maps or masks, as above.
        num_classes: ``K`` for label maps; ``None`` for masks.
        channel_dim: the channel dimension of masks (not 0, which holds the images).
        ignore_index: label-map value to leave out (e.g. 255 for void pixels).
        progress: show a ``tqdm`` progress bar while iterating.
        check_values: check that mask values lie in [0, 1]; ``None`` follows ``bw.set_value_checks``.
        dtype: dtype of the result.

    Returns:
        float tensor ``(K,)`` (``(C,)`` for masks).

    Raises:
        ValueError: a class never appears (the classes are named); labels out of range; mask values
            outside [0, 1]; float label maps; too few dimensions; a channel count that changes.

    Example (3 images of 4 pixels, 2 classes): image 0 is ``[0, 0, 0, 1]``, image 1 ``[0, 0, 0, 0]``,
    image 2 ``[1, 1, 0, 0]``. Class 0 has 9 pixels in 3 images of 4 pixels: freq 9/12 = 0.75. Class 1
    has 3 pixels and appears only in images 0 and 2: freq 3/8 = 0.375. Median (of two) = 0.5625,
    weights ``0.5625 / 0.75 = 0.75`` and ``0.5625 / 0.375 = 1.5``.

        >>> labels = torch.tensor([[0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0]])
        >>> median_frequency_weights(labels, num_classes=2)
        tensor([0.7500, 1.5000])
    """
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
            raise ValueError(
                f"num_classes is {num_classes!r}; expected a positive integer K (labels take values 0..K-1).\n"
                f"Write for example:\n    bw.median_frequency_weights(labels, num_classes=21)"
            )
        class_pixels, present_pixels = _label_map_frequencies(
            targets, int(num_classes), ignore_index, progress
        )
    else:
        if ignore_index is not None:
            raise ValueError(
                f"ignore_index={ignore_index} was given without num_classes; ignore_index applies to label "
                f"maps of class indices, which need num_classes.\nWrite instead one of:\n"
                f"    bw.median_frequency_weights(labels, num_classes=K, ignore_index={ignore_index})\n"
                f"    bw.median_frequency_weights(masks)   # multi-label masks (N, C, H, W): no ignore_index"
            )
        class_pixels, present_pixels = _mask_frequencies(
            targets, channel_dim, progress, value_checks_enabled(check_values)
        )

    counted = torch.ones_like(class_pixels, dtype=torch.bool)
    if ignore_index is not None and num_classes is not None and 0 <= ignore_index < num_classes:
        counted[ignore_index] = False
    absent = (present_pixels == 0) & counted
    if bool(absent.any()):
        classes = _indices(absent)
        raise ValueError(
            f"class(es) {classes} never appear in the targets counted, so their frequency is 0/0 and "
            f"median / frequency has no value; expected every class to appear in at least one image.\n"
            f"Count over more of the dataset, or drop those classes and give them a weight yourself:\n"
            f"    weights = torch.zeros(K); weights[present] = <weights computed without the absent classes>"
        )
    frequency = class_pixels[counted] / present_pixels[counted]
    weights = torch.zeros_like(class_pixels)
    weights[counted] = _median(frequency) / frequency
    return weights.to(dtype)


def _label_map_frequencies(
    targets: Targets, num_classes: int, ignore_index: int | None, progress: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class: pixels of the class, and total pixels of the images where it appears, shape ``(K,)``."""
    sums = _StreamedSums(None, "")  # always num_classes channels: the count cannot change
    for index, labels in _batches(targets, progress, "counting class frequencies"):
        if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
            raise ValueError(
                f"target batch {index} has dtype {labels.dtype}; with num_classes={num_classes}, targets are "
                f"label maps (N, *spatial) of integer class indices.\nWrite instead one of:\n"
                f"    bw.median_frequency_weights(labels.long(), num_classes={num_classes})\n"
                f"    bw.median_frequency_weights(masks)   # for multi-label 0/1 masks (N, C, H, W)"
            )
        if labels.dim() == 0:
            raise ValueError(
                f"target batch {index} is a single number (shape ()); expected label maps (N, *spatial) with "
                f"one image per index along dim 0.\nWrite instead:\n"
                f"    bw.median_frequency_weights(labels.reshape(1, -1), num_classes={num_classes})"
            )
        accumulator = _accumulator_dtype(labels.device)
        images = labels.shape[0]
        flat = labels.reshape(images, -1).long()
        valid = torch.ones_like(flat, dtype=torch.bool)
        if ignore_index is not None:
            valid = flat != ignore_index
        out_of_range = valid & ((flat < 0) | (flat >= num_classes))
        if bool(out_of_range.any()):
            bad = sorted({int(v) for v in torch.unique(flat[out_of_range]).tolist()})
            shown = bad[:5] + (["..."] if len(bad) > 5 else [])
            raise ValueError(
                f"target batch {index} holds label(s) {shown} outside 0..{num_classes - 1} "
                f"(num_classes={num_classes}); expected class indices in that range.\nWrite instead one of:\n"
                f"    bw.median_frequency_weights(labels, num_classes={num_classes}, ignore_index={bad[0]})"
                f"   # if {bad[0]} marks void pixels\n"
                f"    bw.median_frequency_weights(labels, num_classes={max(bad[-1] + 1, num_classes)})"
                f"   # if there are more classes"
            )
        # one bincount for the whole batch: image i's labels are shifted into bins i*K .. i*K + K-1
        offsets = torch.arange(images, device=flat.device).unsqueeze(1) * num_classes
        binned = (flat.clamp(0, num_classes - 1) + offsets)[valid]
        per_image = torch.bincount(binned, minlength=images * num_classes).reshape(images, num_classes)
        per_image = per_image.to(accumulator)
        image_pixels = valid.sum(dim=1, dtype=accumulator)  # (images,)
        batch_class_pixels = per_image.sum(dim=0)
        batch_present_pixels = ((per_image > 0).to(accumulator) * image_pixels.unsqueeze(1)).sum(dim=0)
        sums.add(index, tuple(labels.shape), batch_class_pixels, batch_present_pixels)
    return sums.totals()


def _mask_frequencies(
    targets: Targets, channel_dim: int, progress: bool, checking: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel: (soft) pixels of the class, and total pixels of the images where it appears, ``(C,)``."""
    sums = _StreamedSums(
        channel_dim,
        "If these are label maps without a channel dimension, write instead:\n"
        "    bw.median_frequency_weights(labels, num_classes=K)",
    )
    dims_fix = (
        "    bw.median_frequency_weights(labels, num_classes=K)   # if the targets are label maps (N, H, W)\n"
        "    bw.median_frequency_weights(masks.unsqueeze(1))      # if a single mask lacks its channel dimension"
    )
    for index, masks in _batches(targets, progress, "counting class frequencies"):
        dim = _resolve_channel_dim(masks, index, channel_dim, 2, dims_fix)
        if dim == 0:
            raise ValueError(
                f"channel_dim={channel_dim} points at dim 0 of target batch {index} of shape {_shape(masks)}; "
                f"dim 0 holds the images, so the channels must be elsewhere.\nWrite instead, for (N, C, H, W):\n"
                f"    bw.median_frequency_weights(masks, channel_dim=1)"
            )
        if checking:
            _check_binary_values(
                masks,
                index,
                "    bw.median_frequency_weights(labels, num_classes=K)   # if the values are class indices",
            )
        accumulator = _accumulator_dtype(masks.device)
        images, channels = masks.shape[0], masks.shape[dim]
        spatial_dims = [d for d in range(masks.dim()) if d not in (0, dim)]
        if spatial_dims:
            per_image = torch.sum(masks, dim=spatial_dims, dtype=accumulator)  # (images, channels)
        else:
            per_image = masks.to(accumulator)
        pixels_per_image = masks.numel() // (images * channels) if images * channels else 0
        batch_class_pixels = per_image.sum(dim=0)
        batch_present_pixels = (per_image > 0).sum(dim=0, dtype=accumulator) * pixels_per_image
        sums.add(index, tuple(masks.shape), batch_class_pixels, batch_present_pixels)
    return sums.totals()


# --------------------------------------------------------------------------------------------------
# per-element weight map
# --------------------------------------------------------------------------------------------------


def rebalance_map(
    target: torch.Tensor,
    ratio: float | torch.Tensor | None = None,
    *,
    check_values: bool | None = None,
) -> torch.Tensor:
    """Per-element weight map: background ``1 / ratio``, foreground ``1``.

    ``weight = 1/ratio + (1 - 1/ratio) * target``, so soft targets interpolate linearly. With
    ``ratio = negatives / positives`` the background's total weight ``negatives / ratio`` equals the
    foreground's ``positives``: both halves of the loss count equally, and the loss keeps the scale of
    the foreground terms (unlike ``pos_weight``, which scales the foreground up).

    Args:
        target: targets of any shape, e.g. ``(N, 1, D, H, W)``, bool or values in [0, 1].
        ratio: a positive number (a Python number or a one-element tensor). ``None`` computes
            ``negatives / positives`` from ``target`` itself.
        check_values: check that ``target`` lies in [0, 1]; ``None`` follows ``bw.set_value_checks``.

    Returns:
        float tensor shaped like ``target`` (``target``'s float dtype, float32 for bool/integer
        targets), on its device. Pass it as ``weight=`` (with ``reduction="weighted_mean"`` to
        average over the weights rather than the elements).

    Raises:
        ValueError: ``ratio`` <= 0, NaN or infinite; ``ratio=None`` with no foreground in ``target``;
            target values outside [0, 1].

    Example (Q9: the foreground is 1/95 of the voxels, so negatives/positives = 94):
        >>> target = torch.zeros(1, 1, 60, 40, 40); target.view(-1)[::95] = 1
        >>> weight = rebalance_map(target)     # ratio = 94 from the target: background 1/94
        >>> weight.shape, weight.unique()
        (torch.Size([1, 1, 60, 40, 40]), tensor([0.0106, 1.0000]))
    """
    if not isinstance(target, torch.Tensor):
        raise TypeError(
            f"target is a {type(target).__name__}; expected a tensor of targets.\n"
            f"Write instead:\n    bw.rebalance_map(torch.as_tensor(target), ratio)"
        )
    if value_checks_enabled(check_values):
        _check_binary_values(
            target, 0, "    bw.rebalance_map(target > 0.5)   # if the targets are thresholded scores"
        )
    dtype = target.dtype if target.is_floating_point() else torch.float32
    values = target.detach().to(dtype)
    if ratio is None:
        positives = float(torch.sum(values, dtype=_accumulator_dtype(values.device)))
        if positives == 0:
            raise ValueError(
                f"target of shape {_shape(target)} has no foreground, so ratio=None (negatives / positives) "
                f"is infinite; expected at least one positive, or an explicit ratio.\nGive the ratio counted "
                f"over the whole dataset:\n"
                f"    num_pos, num_total = bw.count_positives(loader, channel_dim=None)\n"
                f"    weight = bw.rebalance_map(target, ratio=float((num_total - num_pos) / num_pos))"
            )
        ratio_value = (target.numel() - positives) / positives
        if ratio_value == 0:
            raise ValueError(
                f"target of shape {_shape(target)} is all foreground, so ratio=None (negatives / positives) "
                f"is 0 and the background weight 1/ratio is infinite; expected some background, or an "
                f"explicit ratio.\nWrite instead:\n    weight = bw.rebalance_map(target, ratio=<dataset ratio>)"
            )
    else:
        if isinstance(ratio, torch.Tensor):
            if ratio.numel() != 1:
                raise ValueError(
                    f"ratio has shape {_shape(ratio)}; expected one number (negatives / positives).\n"
                    f"For one ratio per channel of (N, C, ...), build the map per channel, e.g.:\n"
                    f"    weight = 1 / ratio.view(C, 1, 1) + (1 - 1 / ratio.view(C, 1, 1)) * target"
                )
            ratio_value = float(ratio)
        elif isinstance(ratio, numbers.Real) and not isinstance(ratio, bool):
            ratio_value = float(ratio)
        else:
            raise TypeError(
                f"ratio is a {type(ratio).__name__}; expected a positive number (negatives / positives) or None.\n"
                f"Write for example:\n    bw.rebalance_map(target, ratio=94.0)"
            )
        if not (math.isfinite(ratio_value) and ratio_value > 0):
            raise ValueError(
                f"ratio is {ratio_value!r}; expected a finite number > 0 (negatives / positives, e.g. 94 when "
                f"the foreground is 1/95 of the elements).\nWrite instead:\n"
                f"    bw.rebalance_map(target)   # to compute negatives / positives from target"
            )
    background = 1.0 / ratio_value
    return background + (1.0 - background) * values


# --------------------------------------------------------------------------------------------------
# where pos_weight moves the optimum
# --------------------------------------------------------------------------------------------------


def _check_probability_operands(q: Any, pos_weight: Any) -> None:
    """``ValueError`` if ``q`` is outside [0, 1] or ``pos_weight`` negative (NaN included)."""
    q_values = np.asarray(q.detach().cpu() if isinstance(q, torch.Tensor) else q, dtype=np.float64)
    p_values = np.asarray(
        pos_weight.detach().cpu() if isinstance(pos_weight, torch.Tensor) else pos_weight, dtype=np.float64
    )
    if not bool(np.all((q_values >= 0) & (q_values <= 1))):
        bad = float(q_values[~((q_values >= 0) & (q_values <= 1))].reshape(-1)[0])
        raise ValueError(
            f"q holds {bad!r}; expected frequencies in [0, 1] (the share of positives among similar inputs).\n"
            f"Write instead, for a count of positives out of n:\n    q = num_pos / n"
        )
    if not bool(np.all(p_values >= 0)):
        bad = float(p_values[~(p_values >= 0)].reshape(-1)[0])
        raise ValueError(
            f"pos_weight holds {bad!r}; expected pos_weight >= 0.\n"
            f"Write instead, from counts:\n    pos_weight = bw.pos_weight_from_counts(num_pos, num_neg)"
        )


def _operand_kind(q: Any, pos_weight: Any) -> str:
    if isinstance(q, torch.Tensor) or isinstance(pos_weight, torch.Tensor):
        return "tensor"
    if isinstance(q, (np.ndarray, np.generic)) or isinstance(pos_weight, (np.ndarray, np.generic)):
        return "numpy"
    for name, value in (("q", q), ("pos_weight", pos_weight)):
        if not isinstance(value, numbers.Real):
            raise TypeError(
                f"{name} is a {type(value).__name__}; expected a number, a numpy array or a tensor.\n"
                f"Write for example:\n    bw.optimal_probability(np.asarray({name}), pos_weight)"
            )
    return "float"


def _as_tensors(q: Any, pos_weight: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Both operands as float tensors on the same device, in the floating dtype of the tensor one."""
    reference = q if isinstance(q, torch.Tensor) else pos_weight
    dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
    q_tensor = torch.as_tensor(q, dtype=dtype, device=reference.device)
    p_tensor = torch.as_tensor(pos_weight, dtype=dtype, device=reference.device)
    return q_tensor, p_tensor


def optimal_probability(q: ArrayLike, pos_weight: ArrayLike | float) -> ArrayLike:
    """The probability a calibrated model trained with ``pos_weight = p`` predicts: ``p*q / (p*q + 1 - q)``.

    Where a fraction ``q`` of similar inputs is positive, the expected loss of a logit ``z`` is
    ``q * p * softplus(-z) + (1 - q) * softplus(z)``; setting its derivative to zero gives
    ``sigmoid(z) = p*q / (p*q + 1 - q)``. So ``p > 1`` pushes predictions up (the model is no
    longer calibrated: read its outputs through :func:`optimal_probability`'s inverse, or move the
    threshold), ``p = 1`` returns ``q``.

    Args:
        q: the true positive frequency, in [0, 1]: a float, numpy array or tensor.
        pos_weight: ``p >= 0``, same kinds; broadcast against ``q``.

    Returns:
        The same kind as the inputs (a tensor if either is a tensor, else a numpy array if either
        is numpy, else a float), broadcast shape. Defined everywhere on the domain: ``q = 0`` gives
        0, ``q = 1`` gives 1 for ``p > 0``, ``p = 0`` gives 0 (positives carry no weight), including
        at ``q = 1``, where every prediction has zero loss and 0 is the limit from ``q < 1``.

    Raises:
        ValueError: ``q`` outside [0, 1] or ``pos_weight`` negative or NaN.

    Example:
        >>> optimal_probability(0.1, 9.0)   # 0.9 / (0.9 + 0.9)
        0.5
    """
    kind = _operand_kind(q, pos_weight)
    _check_probability_operands(q, pos_weight)
    if kind == "tensor":
        q_tensor, p_tensor = _as_tensors(q, pos_weight)
        weighted = p_tensor * q_tensor
        denominator = weighted + (1 - q_tensor)
        safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
        return torch.where(denominator > 0, weighted / safe, torch.zeros_like(weighted))  # type: ignore[return-value]
    if kind == "numpy":
        q_array = np.asarray(q, dtype=np.float64)
        p_array = np.asarray(pos_weight, dtype=np.float64)
        weighted = p_array * q_array
        denominator = weighted + (1 - q_array)
        safe = np.where(denominator > 0, denominator, 1.0)
        return np.where(denominator > 0, weighted / safe, 0.0)  # type: ignore[return-value]
    weighted_value = float(pos_weight) * float(q)
    denominator_value = weighted_value + (1 - float(q))
    return weighted_value / denominator_value if denominator_value > 0 else 0.0  # type: ignore[return-value]


def optimal_logit(q: ArrayLike, pos_weight: ArrayLike | float) -> ArrayLike:
    """The logit a model trained with ``pos_weight = p`` outputs where the positive frequency is ``q``.

    ``logit(q) + log(p)``: ``pos_weight`` shifts the optimal logit by ``log p`` everywhere (so a
    threshold of 0.5 on the weighted model is a threshold of ``1 / (1 + p)`` on calibrated
    probabilities). Equal to ``logit(optimal_probability(q, p))``.

    Args:
        q: the true positive frequency, in [0, 1]: a float, numpy array or tensor.
        pos_weight: ``p >= 0``, same kinds; broadcast against ``q``.

    Returns:
        The same kind as the inputs (as in :func:`optimal_probability`). Infinite values are
        returned, without warnings, where the optimum is at infinity: ``-inf`` at ``q = 0`` or
        ``p = 0`` (including ``q = 1, p = 0``, matching :func:`optimal_probability`'s 0), ``+inf`` at
        ``q = 1`` with ``p > 0``.

    Raises:
        ValueError: ``q`` outside [0, 1] or ``pos_weight`` negative or NaN.

    Example:
        >>> round(optimal_logit(0.5, math.e), 6)   # logit(0.5) = 0, log(e) = 1
        1.0
    """
    kind = _operand_kind(q, pos_weight)
    _check_probability_operands(q, pos_weight)
    if kind == "tensor":
        q_tensor, p_tensor = _as_tensors(q, pos_weight)
        logit = torch.log(q_tensor) - torch.log1p(-q_tensor) + torch.log(p_tensor)
        minus_infinity = torch.full_like(logit, -math.inf)
        return torch.where((q_tensor == 0) | (p_tensor == 0), minus_infinity, logit)  # type: ignore[return-value]
    if kind == "numpy":
        q_array = np.asarray(q, dtype=np.float64)
        p_array = np.asarray(pos_weight, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            logit = np.log(q_array) - np.log1p(-q_array) + np.log(p_array)
        return np.where((q_array == 0) | (p_array == 0), -np.inf, logit)  # type: ignore[return-value]
    q_value, p_value = float(q), float(pos_weight)
    if q_value == 0 or p_value == 0:
        return -math.inf  # type: ignore[return-value]
    if q_value == 1:
        return math.inf  # type: ignore[return-value]
    return math.log(q_value) - math.log1p(-q_value) + math.log(p_value)  # type: ignore[return-value]
