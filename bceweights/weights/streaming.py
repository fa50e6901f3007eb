"""Streamed counting over a tensor or a dataset of batches: :func:`count_positives` and
:func:`pos_weight_from_targets`.

``targets`` may be one tensor or any iterable of batches (a list, a ``DataLoader``); batches are counted
one at a time (:func:`batches`, :class:`StreamedSums`) and never concatenated, so a dataset larger than
memory is fine. :func:`check_binary_values` is the targets' value check every builder here uses.
Imports: :mod:`bceweights.weights.counts`, :mod:`bceweights.checks`, :mod:`bceweights.messages`,
:mod:`bceweights.collectives` (``process_group=``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Union

import numpy as np
import torch

from bceweights.checks import outside_unit_interval, value_checks_enabled
from bceweights.collectives import all_reduce_sum
from bceweights.messages import error_message, listing, write_instead
from bceweights.weights.counts import accumulator_dtype, fit_dtype, ratio_or_raise, shape_of

Targets = Union[torch.Tensor, np.ndarray, Iterable[Any]]
"""One target tensor, or an iterable of batches: tensors or ``(inputs, targets)`` tuples."""


def batches(targets: Targets, progress: bool, description: str) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(index, target_batch)`` from one tensor or an iterable of batches, optionally with tqdm.

    A batch that is a tuple or list is taken as ``(inputs, targets)`` (or ``(inputs, ..., targets)``):
    its last element is the target. A dict is refused with the line to write instead.
    """
    if isinstance(targets, (torch.Tensor, np.ndarray)):
        iterable: Iterable[Any] = [targets]
    elif isinstance(targets, Iterable) and not isinstance(targets, (str, bytes)):
        iterable = targets
    else:
        raise TypeError(error_message(
            f"targets is a {type(targets).__name__}",
            "expected a tensor (N, C, ...) or an iterable of batches (a list of tensors, a DataLoader "
            "yielding (inputs, targets)).",
            "bw.count_positives(torch.as_tensor(targets))", lead="Write for example",
        ))
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError as error:  # tqdm is in the lessons extra, not a core dependency
            raise ImportError(error_message(
                "progress=True needs tqdm, which is not installed.", join="",
                fixes=["pip install tqdm", 'pip install "bceweights[lessons]"   # the lessons\' stack'],
                lead="Install it with one of",
            )) from error
        try:
            total: int | None = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
        iterable = tqdm(iterable, desc=description, total=total)
    for index, batch in enumerate(iterable):
        if isinstance(batch, (tuple, list)):
            if len(batch) == 0:
                raise ValueError(error_message(
                    f"batch {index} is an empty {type(batch).__name__}",
                    "expected a target tensor or a pair (inputs, targets).",
                    "(y for x, y in loader)", lead="Pass only the targets, e.g.",
                ))
            batch = batch[-1]
            if not isinstance(batch, (torch.Tensor, np.ndarray)):
                raise TypeError(error_message(
                    f"batch {index} is a tuple or list whose last element is a {type(batch).__name__}",
                    "a tuple or list batch is read as (inputs, targets) and its last element must be the "
                    "target tensor.",
                    "torch.tensor(targets)",
                    lead="If targets is a nested list of target values, make it a tensor first",
                ))
        if isinstance(batch, dict):
            raise TypeError(error_message(
                f"batch {index} is a dict with keys {listing(sorted(map(str, batch)))}",
                "expected a target tensor or (inputs, targets).",
                "(batch['mask'] for batch in loader)", lead="Pass the targets only, naming your key, e.g.",
            ))
        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(batch)
        if not isinstance(batch, torch.Tensor):
            raise TypeError(error_message(
                f"batch {index} is a {type(batch).__name__}", "expected a target tensor or (inputs, targets).",
                "[torch.as_tensor(t) for t in targets]", lead="Pass tensors, e.g.",
            ))
        yield index, batch.detach()


def resolve_channel_dim(
    batch: torch.Tensor, index: int, channel_dim: int, minimum_dims: int, fixes: list[str]
) -> int:
    """``channel_dim`` as a non-negative index into ``batch``'s dimensions, or a ``ValueError`` with ``fixes``."""
    ndim = batch.dim()
    needed = max(minimum_dims, channel_dim + 1 if channel_dim >= 0 else -channel_dim)
    if ndim < needed:
        raise ValueError(error_message(
            f"target batch {index} has shape {shape_of(batch)} ({ndim} dimension(s))",
            f"channel_dim={channel_dim} needs at least {needed} dimensions, e.g. (N, C, H, W) with channels "
            f"at dim {channel_dim}.",
            fixes, lead="Write instead one of",
        ))
    return channel_dim % ndim


def check_binary_values(batch: torch.Tensor, index: int, extra_fix: str) -> None:
    """Raise ``ValueError`` if a target value is NaN or outside ``[0, 1]`` (bool batches skip the check)."""
    if batch.dtype == torch.bool or batch.numel() == 0:
        return
    outside = outside_unit_interval(batch)
    if not bool(outside.any()):
        return
    values = batch[outside]
    example = values[0].item()
    largest = batch.max().item()
    fixes = []
    if largest == 255:
        fixes.append("targets = targets > 127          # if 0/255 is an image mask")
    fixes.append(extra_fix)
    raise ValueError(error_message(
        f"target batch {index} of shape {shape_of(batch)} holds {values.numel()} value(s) outside [0, 1] "
        f"(for example {example!r})", "expected 0/1 labels or probabilities.",
        fixes, lead="Write instead one of", note="(or check_values=False to skip this check, at your own risk)",
    ))


# --------------------------------------------------------------------------------------------------
# counting positives and pos_weight from targets
# --------------------------------------------------------------------------------------------------


class StreamedSums:
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
            raise ValueError(error_message(
                f"target batch {index} has shape {tuple(batch_shape)} with {first.numel()} channel(s) at "
                f"dim {self.channel_dim}, but batch 0 had shape {self.first_shape} with {self.first.numel()}",
                "expected the same number of channels in every batch.", note=self.channel_hint,
            ))
        self.first = self.first + first.to(self.first.device)
        self.second = self.second + second.to(self.second.device)

    def totals(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.first is None or self.second is None:
            check = "Check the DataLoader (an exhausted iterator or an empty dataset yields nothing)"
            raise ValueError(error_message(
                "targets yielded no batches", "expected a tensor or at least one batch.",
                self.empty_example or (), lead=check + ", e.g.", why="" if self.empty_example else check + ".",
            ))
        return self.first, self.second


def count_positives(
    targets: Targets,
    channel_dim: int | None = 1,
    *,
    progress: bool = False,
    check_values: bool | None = None,
    process_group: Any = None,
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
        process_group: a ``torch.distributed`` group whose ranks each hold a shard of the dataset
            (e.g. a ``DistributedSampler``'s): the counts are summed over the group, so every rank
            returns the counts of the union of the shards (:mod:`bceweights.distributed`). Every rank
            must call it, with the same ``channel_dim`` and number of channels.

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
    sums = StreamedSums(
        channel_dim,
        write_instead("bw.count_positives(targets, channel_dim=None)",
                      "If the targets have no channel dimension, the changing size is not a channel; write instead"),
        "bw.count_positives(torch.cat([y for _, y in loader]))   # small datasets only",
    )
    dims_fix = [
        "bw.count_positives(targets, channel_dim=None)   # one global count, for a single-output model",
        "bw.count_positives(targets.unsqueeze(1))        # if the targets lack their channel dimension",
    ]
    for index, batch in batches(targets, progress, "counting positives"):
        if checking:
            check_binary_values(
                batch,
                index,
                "bw.median_frequency_weights(labels, num_classes=K)   # if the values are class indices",
            )
        accumulator = accumulator_dtype(batch.device)
        if channel_dim is None:
            positives = torch.sum(batch, dtype=accumulator).reshape(1)
            total = torch.full((1,), float(batch.numel()), dtype=accumulator, device=batch.device)
        else:
            dim = resolve_channel_dim(batch, index, channel_dim, 2, dims_fix)
            channels = batch.shape[dim]
            reduce_dims = [d for d in range(batch.dim()) if d != dim]
            positives = torch.sum(batch, dim=reduce_dims, dtype=accumulator)
            per_channel = batch.numel() // channels if channels else 0
            total = torch.full((channels,), float(per_channel), dtype=accumulator, device=batch.device)
        sums.add(index, tuple(batch.shape), positives, total)
    num_pos, num_total = sums.totals()
    if process_group is not None:
        both = all_reduce_sum(torch.stack([num_pos, num_total]), process_group)
        num_pos, num_total = both[0], both[1]
    return num_pos, num_total


def pos_weight_from_targets(
    targets: Targets,
    channel_dim: int | None = 1,
    *,
    progress: bool = False,
    check_values: bool | None = None,
    dtype: torch.dtype = torch.float32,
    process_group: Any = None,
) -> torch.Tensor:
    """``pos_weight[c] = negatives[c] / positives[c]``, counted over a tensor or a dataset of batches.

    Built on :func:`count_positives` (same ``targets``, ``channel_dim``, ``progress``, ``check_values``
    and ``process_group``: with a group, every rank returns the ``pos_weight`` of the whole dataset; see it for the accepted forms): ``pos_weight = (num_total - num_pos) / num_pos``.
    With 100 positives and 300 negatives in a channel, its ``pos_weight`` is 3.0.

    Returns:
        float tensor ``(C,)``; ``(1,)`` for ``channel_dim=None``. Pass a ``(C,)`` result as
        ``bw.bce_with_logits(..., pos_weight=pw, channel_dim=1)``, or ``pw.view(C, 1, 1)`` to
        PyTorch for ``(N, C, H, W)``.

    Raises:
        ValueError: a channel has no positives or no negatives (named; see
            :func:`~bceweights.weights.counts.pos_weight_from_counts`), besides the errors of
            :func:`count_positives`.

    Example:
        >>> y = torch.cat([torch.ones(100), torch.zeros(300)]).reshape(400, 1)
        >>> pos_weight_from_targets(y)
        tensor([3.])
    """
    num_pos, num_total = count_positives(
        targets, channel_dim, progress=progress, check_values=check_values, process_group=process_group
    )
    fix = (
        "num_pos, num_total = bw.count_positives(targets)\n"
        "num_neg = num_total - num_pos\n"
        "pos_weight = torch.where((num_pos > 0) & (num_neg > 0), num_neg / num_pos, 1.0).float()"
    )
    return fit_dtype(ratio_or_raise(num_pos, num_total - num_pos, fix), dtype)
