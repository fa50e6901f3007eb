"""Per-class weights: :func:`balanced_weights` (scikit-learn's "balanced") and
:func:`median_frequency_weights` (Eigen & Fergus, 2015), streamed over batches like the counts.

Imports: :mod:`bceweights.weights.counts`, :mod:`bceweights.weights.streaming`, :mod:`bceweights.checks`,
:mod:`bceweights.messages`, :mod:`bceweights.collectives` (``process_group=``).
"""

from __future__ import annotations

import numbers
from typing import Any

import torch

from bceweights.checks import value_checks_enabled
from bceweights.collectives import all_reduce_sum
from bceweights.messages import error_message, write_instead
from bceweights.weights.counts import Counts, accumulator_dtype, check_counts, count_vector, fit_dtype, indices, shape_of
from bceweights.weights.streaming import (
    StreamedSums,
    Targets,
    batches,
    check_binary_values,
    resolve_channel_dim,
)


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
    values, _ = count_vector("counts", counts)
    if values.numel() == 0:
        raise ValueError(error_message(
            "counts is empty", "expected one count per class, shape (K,).",
            "bw.balanced_weights(torch.bincount(labels.flatten(), minlength=K))", lead="Write for example",
        ))
    check_counts("counts", values)
    zero = values == 0
    if bool(zero.any()):
        raise ValueError(error_message(
            f"class(es) {indices(zero)} have count 0, so n_samples / (n_classes * count) is infinite",
            "expected every class to occur at least once.",
            "weights = torch.zeros(K); weights[counts > 0] = bw.balanced_weights(counts[counts > 0])",
            lead="Drop the absent classes (and relabel), count on more data, or give them weight 0 yourself",
        ))
    n_samples = values.sum()
    n_classes = values.numel()
    return fit_dtype(n_samples / (n_classes * values), dtype, "n_samples / (n_classes * count)", "class(es)")


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
    process_group: Any = None,
) -> torch.Tensor:
    """Median-frequency balancing (Eigen & Fergus, 2015): ``weight[c] = median(freq) / freq[c]``.

    ``freq[c] = (pixels of class c) / (total pixels of the images in which c appears)``: an image
    where class ``c`` is absent adds nothing to its denominator, so a class that is rare because it
    appears in few images is not penalised twice. The median is the true median (the mean of the
    two middle values for an even number of classes). A class whose frequency equals the median gets
    exactly 1, rarer classes more, commoner classes less. With an odd number of classes that is the
    middle class; with an even number the median lies between the two middle frequencies, so no class
    need get 1 (the two middle classes get ``w_a < 1 < w_b`` with ``1/w_a + 1/w_b = 2``).

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
        process_group: a ``torch.distributed`` group whose ranks each hold a shard of the dataset:
            the per-class pixel counts are summed over the group before the frequencies and the
            median are taken, so every rank returns the weights of the union of the shards.

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
            raise ValueError(error_message(
                f"num_classes is {num_classes!r}", "expected a positive integer K (labels take values 0..K-1).",
                "bw.median_frequency_weights(labels, num_classes=21)", lead="Write for example",
            ))
        class_pixels, present_pixels = _label_map_frequencies(
            targets, int(num_classes), ignore_index, progress
        )
    else:
        if ignore_index is not None:
            raise ValueError(error_message(
                f"ignore_index={ignore_index} was given without num_classes",
                "ignore_index applies to label maps of class indices, which need num_classes.",
                [
                    f"bw.median_frequency_weights(labels, num_classes=K, ignore_index={ignore_index})",
                    "bw.median_frequency_weights(masks)   # multi-label masks (N, C, H, W): no ignore_index",
                ],
            ))
        class_pixels, present_pixels = _mask_frequencies(
            targets, channel_dim, progress, value_checks_enabled(check_values)
        )

    if process_group is not None:
        both = all_reduce_sum(torch.stack([class_pixels, present_pixels]), process_group)
        class_pixels, present_pixels = both[0], both[1]
    counted = torch.ones_like(class_pixels, dtype=torch.bool)
    if ignore_index is not None and num_classes is not None and 0 <= ignore_index < num_classes:
        counted[ignore_index] = False
    absent = (present_pixels == 0) & counted
    if bool(absent.any()):
        classes = indices(absent)
        raise ValueError(error_message(
            f"class(es) {classes} never appear in the targets counted, so their frequency is 0/0 and "
            "median / frequency has no value", "expected every class to appear in at least one image.",
            "weights = torch.zeros(K); weights[present] = <weights computed without the absent classes>",
            lead="Count over more of the dataset, or drop those classes and give them a weight yourself",
        ))
    frequency = class_pixels[counted] / present_pixels[counted]
    weights = torch.zeros_like(class_pixels)
    weights[counted] = _median(frequency) / frequency
    return fit_dtype(weights, dtype, "median frequency / frequency", "class(es)")


def _label_map_frequencies(
    targets: Targets, num_classes: int, ignore_index: int | None, progress: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class: pixels of the class, and total pixels of the images where it appears, shape ``(K,)``."""
    sums = StreamedSums(None, "")  # always num_classes channels: the count cannot change
    for index, labels in batches(targets, progress, "counting class frequencies"):
        if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
            raise ValueError(error_message(
                f"target batch {index} has dtype {labels.dtype}",
                f"with num_classes={num_classes}, targets are label maps (N, *spatial) of integer class indices.",
                [
                    f"bw.median_frequency_weights(labels.long(), num_classes={num_classes})",
                    "bw.median_frequency_weights(masks)   # for multi-label 0/1 masks (N, C, H, W)",
                ],
            ))
        if labels.dim() == 0:
            raise ValueError(error_message(
                f"target batch {index} is a single number (shape ())",
                "expected label maps (N, *spatial) with one image per index along dim 0.",
                f"bw.median_frequency_weights(labels.reshape(1, -1), num_classes={num_classes})",
            ))
        accumulator = accumulator_dtype(labels.device)
        images = labels.shape[0]
        flat = labels.reshape(images, -1).long()
        valid = torch.ones_like(flat, dtype=torch.bool)
        if ignore_index is not None:
            valid = flat != ignore_index
        out_of_range = valid & ((flat < 0) | (flat >= num_classes))
        if bool(out_of_range.any()):
            bad = sorted({int(v) for v in torch.unique(flat[out_of_range]).tolist()})
            shown = bad[:5] + (["..."] if len(bad) > 5 else [])
            raise ValueError(error_message(
                f"target batch {index} holds label(s) {shown} outside 0..{num_classes - 1} "
                f"(num_classes={num_classes})", "expected class indices in that range.",
                [
                    f"bw.median_frequency_weights(labels, num_classes={num_classes}, ignore_index={bad[0]})"
                    f"   # if {bad[0]} marks void pixels",
                    f"bw.median_frequency_weights(labels, num_classes={max(bad[-1] + 1, num_classes)})"
                    "   # if there are more classes",
                ],
            ))
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
    sums = StreamedSums(
        channel_dim,
        write_instead("bw.median_frequency_weights(labels, num_classes=K)",
                      "If these are label maps without a channel dimension, write instead"),
    )
    dims_fix = [
        "bw.median_frequency_weights(labels, num_classes=K)   # if the targets are label maps (N, H, W)",
        "bw.median_frequency_weights(masks.unsqueeze(1))      # if a single mask lacks its channel dimension",
    ]
    for index, masks in batches(targets, progress, "counting class frequencies"):
        dim = resolve_channel_dim(masks, index, channel_dim, 2, dims_fix)
        if dim == 0:
            raise ValueError(error_message(
                f"channel_dim={channel_dim} points at dim 0 of target batch {index} of shape {shape_of(masks)}",
                "dim 0 holds the images, so the channels must be elsewhere.",
                "bw.median_frequency_weights(masks, channel_dim=1)", lead="Write instead, for (N, C, H, W)",
            ))
        if checking:
            check_binary_values(
                masks,
                index,
                "bw.median_frequency_weights(labels, num_classes=K)   # if the values are class indices",
            )
        accumulator = accumulator_dtype(masks.device)
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
