"""Per-element weight maps: :func:`rebalance_map` (background ``1 / ratio``) and :func:`unet_weight_map`.

**rebalance_map** weights background elements by ``1 / ratio`` and foreground by 1, so both halves of
the loss count equally. **unet_weight_map** is the weight map for touching objects of

Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation"
(MICCAI 2015), eq. 2, weight every pixel ``x`` of an instance label image by

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 * sigma**2))

so that the thin background gaps separating touching cells, which are few pixels and easy to lose,
carry a large weight. Here:

* ``d1(x)``, ``d2(x)``: Euclidean distances from pixel ``x`` to the nearest pixel of the nearest and of
  the second-nearest object (distances between pixel centres, from
  :func:`scipy.ndimage.distance_transform_edt`; a background pixel next to a cell has ``d1 = 1``).
  SciPy is needed for these distances only: it is imported when they are computed, so
  ``import bceweights`` and the loss work without it; without SciPy, :func:`unet_weight_map` raises an
  ``ImportError`` that names the line to install it (``pip install scipy``, or the ``lessons`` extra).
* The border term ``w0 * exp(...)`` is added on **background pixels only** (label 0), as in the paper,
  where it weights "the separation border ... between touching cells" (its Fig. 3d shows weight in the
  gaps, not inside the cells). A pixel inside a cell gets ``w_c`` alone.
* With fewer than two objects in an image ``d2`` does not exist; we take ``d2 = +inf``, the limit in
  which the border term is ``0``. An image with one cell or none gets ``w_c`` alone.
* ``w_c(x)``: class balancing by frequency, computed per label image (each image of a batch on its
  own), the "balanced" rule of scikit-learn::

      w_c(x) = n / (2 * n_class(x))      n pixels in the image, n_class(x) of them in x's class

  so foreground and background carry the same total weight ``n / 2`` and ``w_c`` averages to 1 over
  the image. An image that is all background (or all foreground) gets ``w_c = 1``.
  ``class_balance=False`` sets ``w_c = 1`` everywhere.

The paper uses ``w0 = 10`` and ``sigma ≈ 5`` pixels. Pass the map as ``weight`` (per pixel):

    weight = bw.unet_weight_map(labels)                          # labels (N, H, W) -> (N, H, W)
    loss = bw.bce_with_logits(logits, (labels > 0).float().unsqueeze(1),
                              weight=weight.unsqueeze(1))        # logits (N, 1, H, W)

The distance transforms are the expensive part (one per object). :func:`unet_weight_map` computes
each object's transform only in the window around it where its border term can exceed
``border_tolerance * w0`` (default ``1e-16 * w0``): the map equals the exact one to within that bound,
and 512 x 512 with 200 touching cells takes about 0.2 s instead of 3 s (``python -m benchmarks.maps``).
:func:`nearest_two_distances` returns the distances so that code trying several ``w0`` and ``sigma``
computes them once (:func:`weight_map_from_distances` recombines).

Imports: :mod:`bceweights.checks`, :mod:`bceweights.messages`, :mod:`bceweights.weights.counts`,
:mod:`bceweights.weights.streaming`; SciPy lazily.
"""


from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import Tensor

from bceweights.checks import value_checks_enabled
from bceweights.messages import error_message
from bceweights.weights.counts import accumulator_dtype, shape_of
from bceweights.weights.streaming import check_binary_values

LabelImage = Tensor | np.ndarray

#: The paper's values.
PAPER_W0 = 10.0
PAPER_SIGMA = 5.0

#: :func:`unet_weight_map` leaves out border terms below this fraction of ``w0`` (1e-15 for ``w0 = 10``,
#: a few float64 roundings of a weight >= 0.5), so it computes each object's distances only near it.
DEFAULT_BORDER_TOLERANCE = 1e-16


def rebalance_map(
    target: torch.Tensor,
    ratio: float | torch.Tensor | None = None,
    *,
    check_values: bool | None = None,
) -> torch.Tensor:
    """Per-element weight map: background ``1 / ratio``, foreground ``1``.

    ``weight = target + (1 - target) / ratio``, so soft targets interpolate linearly. With
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
        average over the weights rather than the elements). Exact at the ends: foreground (target 1)
        is exactly ``1``, background (target 0) exactly ``1 / ratio`` rounded once to that dtype.

    Raises:
        ValueError: ``ratio`` <= 0, NaN or infinite; ``ratio`` so small that ``1 / ratio`` exceeds the
            map's dtype's largest number (``ratio < 2.9e-39`` in float32, ``1.5e-5`` in float16: the
            map would hold ``inf``, which the loss refuses); ``ratio=None`` with no foreground in
            ``target``; target values outside [0, 1].

    Example (Q9: the foreground is 1/95 of the voxels, so negatives/positives = 94):
        >>> target = torch.zeros(1, 1, 60, 40, 40); target.view(-1)[::95] = 1
        >>> weight = rebalance_map(target)     # ratio = 94 from the target: background 1/94
        >>> weight.shape, weight.unique()
        (torch.Size([1, 1, 60, 40, 40]), tensor([0.0106, 1.0000]))
    """
    if not isinstance(target, torch.Tensor):
        raise TypeError(error_message(
            f"target is a {type(target).__name__}", "expected a tensor of targets.",
            "bw.rebalance_map(torch.as_tensor(target), ratio)",
        ))
    if value_checks_enabled(check_values):
        check_binary_values(
            target, 0, "bw.rebalance_map(target > 0.5)   # if the targets are thresholded scores"
        )
    dtype = target.dtype if target.is_floating_point() else torch.float32
    values = target.detach().to(dtype)
    if ratio is None:
        positives = float(torch.sum(values, dtype=accumulator_dtype(values.device)))
        if positives == 0:
            raise ValueError(error_message(
                f"target of shape {shape_of(target)} has no foreground, so ratio=None (negatives / positives) "
                "is infinite", "expected at least one positive, or an explicit ratio.",
                "num_pos, num_total = bw.count_positives(loader, channel_dim=None)\n"
                "weight = bw.rebalance_map(target, ratio=float((num_total - num_pos) / num_pos))",
                lead="Give the ratio counted over the whole dataset",
            ))
        ratio_value = (target.numel() - positives) / positives
        if ratio_value == 0:
            raise ValueError(error_message(
                f"target of shape {shape_of(target)} is all foreground, so ratio=None (negatives / positives) "
                "is 0 and the background weight 1/ratio is infinite", "expected some background, or an explicit ratio.",
                "weight = bw.rebalance_map(target, ratio=<dataset ratio>)",
            ))
    else:
        if isinstance(ratio, torch.Tensor):
            if ratio.numel() != 1:
                raise ValueError(error_message(
                    f"ratio has shape {shape_of(ratio)}", "expected one number (negatives / positives).",
                    "weight = 1 / ratio.view(C, 1, 1) + (1 - 1 / ratio.view(C, 1, 1)) * target",
                    lead="For one ratio per channel of (N, C, ...), build the map per channel, e.g.",
                ))
            ratio_value = float(ratio)
        elif isinstance(ratio, numbers.Real) and not isinstance(ratio, bool):
            ratio_value = float(ratio)
        else:
            raise TypeError(error_message(
                f"ratio is a {type(ratio).__name__}", "expected a positive number (negatives / positives) or None.",
                "bw.rebalance_map(target, ratio=94.0)", lead="Write for example",
            ))
        if not (math.isfinite(ratio_value) and ratio_value > 0):
            raise ValueError(error_message(
                f"ratio is {ratio_value!r}",
                "expected a finite number > 0 (negatives / positives, e.g. 94 when the foreground is 1/95 of "
                "the elements).",
                "bw.rebalance_map(target)   # to compute negatives / positives from target",
            ))
    # background weight 1/ratio rounded once to the map's dtype
    inverse = 1.0 / ratio_value  # inf for ratio < 5.6e-309, where it overflows float64 itself
    largest = torch.finfo(dtype).max
    if not inverse <= largest:
        smallest = 1.0 / largest
        raise ValueError(error_message(
            f"ratio is {ratio_value!r}, so the background weight 1/ratio = {inverse:.4g} does not fit the map's "
            f"dtype {str(dtype).replace('torch.', '')} (largest {largest:.4g}) and would be inf",
            f"expected ratio >= {smallest:.4g} for a {str(dtype).replace('torch.', '')} map (negatives / positives).",
            [
                "bw.rebalance_map(target)   # to compute negatives / positives from target",
                "bw.rebalance_map(target.double(), ratio)   # a float64 map, if the ratio is right",
            ],
        ))
    background = torch.tensor(inverse, dtype=torch.float64).to(dtype=dtype, device=values.device)
    # target + (1 - target) / ratio: exactly 1 at target 1 and exactly `background` at target 0,
    # whatever the ratio (the form 1/ratio + (1 - 1/ratio) * target cancels when 1/ratio is large)
    weight = values + background * (1 - values)
    return torch.where(values == 1, torch.ones((), dtype=dtype, device=values.device), weight)


# --------------------------------------------------------------------------------------------------
# the U-Net weight map


def _kind(labels: object) -> str:
    """``a torch.Tensor of dtype torch.float32 and shape (4, 4)``, or the type's name."""
    if isinstance(labels, Tensor):
        return f"a torch.Tensor of dtype {labels.dtype} and shape {tuple(labels.shape)}"
    if isinstance(labels, np.ndarray):
        return f"a numpy array of dtype {labels.dtype} and shape {labels.shape}"
    return f"a {type(labels).__name__}"


def _as_label_array(labels: LabelImage, what: str = "labels") -> np.ndarray:
    """``labels`` as an integer numpy array ``(H, W)`` or ``(N, H, W)``, after checking dtype and rank."""
    if isinstance(labels, Tensor):
        array = labels.detach().cpu().numpy()
    elif isinstance(labels, np.ndarray):
        array = labels
    else:
        raise TypeError(error_message(
            f"{what} must be an integer torch.Tensor or numpy array of instance labels, got {_kind(labels)}.",
            fixes=f"{what}=torch.as_tensor({what})   # (H, W) or (N, H, W), 0 = background, 1..K = objects",
        ))
    if array.dtype == np.bool_:
        raise TypeError(error_message(
            f"{what} is a bool mask ({_kind(labels)}), but the border term needs to tell touching objects apart",
            "expected instance labels (0 = background, 1..K = one number per object).", join=": ",
            fixes=f"{what}, count = scipy.ndimage.label(mask)   # per image; or skimage.measure.label(mask)",
            lead="Write instead (objects that do not touch in the mask get their own number)",
            note="A mask whose objects touch cannot be split this way; it needs the instance annotation.",
        ))
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(error_message(
            f"{what} is {_kind(labels)}", "expected an integer dtype of instance labels (0 = background, 1..K = objects).",
            f"{what}={what}.long()   # torch;   or {what}.astype(np.int64) for numpy",
        ))
    if array.ndim not in (2, 3):
        shape = tuple(array.shape)
        fix, lead = "", None
        if array.ndim == 4 and shape[1] == 1:
            fix = f"{what}={what}.squeeze(1)   # (N, 1, H, W) -> (N, H, W)"
        elif array.ndim == 1:
            fix, lead = f"{what}={what}[None, :]   # (W,) -> (1, W)", "Write instead (a strip one pixel high)"
        elif array.ndim > 3:
            fix = f"{what}={what}.reshape(-1, {shape[-2]}, {shape[-1]})"
            lead = "Write instead, for stacks of 2-D images"
        raise ValueError(error_message(
            f"{what} is {_kind(labels)} ({array.ndim}-D)", "expected one label image (H, W) or a batch (N, H, W).",
            fix, lead=lead,
        ))
    if array.size and array.min() < 0:
        raise ValueError(error_message(
            f"{what} ({_kind(labels)}) holds negative values (min {int(array.min())})",
            "expected 0 for background and 1..K for objects.", "ignore = labels < 0;  labels = labels.clamp(min=0)",
            lead="Write instead, if negative values mark unannotated pixels, label them 0 here and pass them to "
            "the loss separately",
        ))
    return array


SCIPY_REQUIREMENT = "scipy>=1.10"


def _scipy_ndimage():  # noqa: ANN202 (a module)
    """``scipy.ndimage``, imported here: ``import bceweights`` and the loss do not need SciPy."""
    try:
        from scipy import ndimage
    except ImportError as error:
        raise ImportError(error_message(
            "unet_weight_map computes its distances with scipy.ndimage.distance_transform_edt, and scipy "
            "is not installed",
            "the loss itself needs only torch and numpy.", lead="Install it with one of",
            fixes=[f'pip install "{SCIPY_REQUIREMENT}"', 'pip install "bceweights[lessons]"   # the lessons\' stack'],
        )) from error
    return ndimage


def object_windows(
    labels: np.ndarray, margin: int | None
) -> tuple[np.ndarray, list[tuple[int, tuple[slice, ...]]]]:
    """``labels`` renumbered ``1..K`` (0 stays background), and ``(k, window)`` per object: its bounding
    box widened by ``margin`` pixels on every side (clipped to the image); ``margin=None``: the whole
    image."""
    ids, compact = np.unique(labels, return_inverse=True)
    compact = compact.reshape(labels.shape)
    if ids.size and ids[0] != 0:  # no background: ids[0] is an object, number it 1
        compact = compact + 1
    boxes = _scipy_ndimage().find_objects(compact)
    whole = tuple(slice(0, size) for size in labels.shape)
    windows = [
        (number, whole if margin is None else tuple(
            slice(max(axis.start - margin, 0), min(axis.stop + margin, size))
            for axis, size in zip(box, labels.shape)
        ))
        for number, box in enumerate(boxes, start=1) if box is not None
    ]
    return compact, windows


def nearest_two_distances(
    labels: np.ndarray, max_distance: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distances ``d1``, ``d2`` from every pixel to its nearest and second-nearest object, ``(H, W)`` each.

    ``labels`` is one integer label image ``(H, W)`` (0 = background; any number of dimensions
    works). For every object ``k``, ``scipy.ndimage.distance_transform_edt(labels != k)`` is the
    distance to object ``k``'s nearest pixel (0 on the object); ``d1`` and ``d2`` keep the smallest and
    second-smallest over ``k``. Where there are fewer than two objects the missing distances are ``inf``.
    Float64.

    ``max_distance``: ``None`` computes every distance everywhere (one transform of the whole image
    per object). A number computes object ``k``'s distances only in its bounding box widened by
    ``ceil(max_distance)`` pixels, which holds every pixel within ``max_distance`` of it, and takes
    ``inf`` outside. Then ``d1`` and ``d2`` are exact wherever they are ``<= max_distance`` (bit for
    bit equal to ``max_distance=None``), and elsewhere ``>=`` the exact values (possibly ``inf``).
    """
    ndimage = _scipy_ndimage()
    labels = np.asarray(labels)
    d1 = np.full(labels.shape, np.inf)
    d2 = np.full(labels.shape, np.inf)
    margin = None if max_distance is None else math.ceil(max_distance)
    compact, windows = object_windows(labels, margin)
    for number, window in windows:
        distance = ndimage.distance_transform_edt(compact[window] != number)
        nearest, second = d1[window], d2[window]  # views: updated in place
        np.minimum(second, np.maximum(nearest, distance), out=second)
        np.minimum(nearest, distance, out=nearest)
    return d1, d2


def border_reach(sigma: float, border_tolerance: float) -> float | None:
    """The ``d1 + d2`` beyond which ``w0 exp(-(d1 + d2)^2 / (2 sigma^2)) < border_tolerance * w0``:
    ``sigma * sqrt(2 ln(1 / border_tolerance))``; ``None`` (no limit) for ``border_tolerance = 0``."""
    if border_tolerance == 0:
        return None
    return sigma * math.sqrt(2.0 * math.log(1.0 / border_tolerance))


def class_balance_weights(labels: np.ndarray) -> np.ndarray:
    """``w_c`` for one label image ``(H, W)``: ``n / (2 n_class)`` per pixel, or 1 if a class is absent."""
    foreground = labels > 0
    n = foreground.size
    n_foreground = int(foreground.sum())
    n_background = n - n_foreground
    if n_foreground == 0 or n_background == 0:
        return np.ones(labels.shape)
    return np.where(foreground, n / (2.0 * n_foreground), n / (2.0 * n_background))


def weight_map_from_distances(
    distance_sum: np.ndarray,
    background: np.ndarray,
    class_weights: np.ndarray | float,
    w0: float,
    sigma: float,
) -> np.ndarray:
    """``w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` on background, ``w_c`` elsewhere; all ``(H, W)``.

    ``distance_sum`` is ``d1 + d2`` (``inf`` where there is no second object), ``background`` the
    bool mask ``labels == 0``. Cheap: the distances are computed once by :func:`nearest_two_distances`.
    """
    border = w0 * np.exp(-np.square(distance_sum) / (2.0 * sigma * sigma))
    return class_weights + np.where(background, border, 0.0)


def _check_parameters(w0: float, sigma: float, border_tolerance: float = 0.0) -> None:
    if not 0 <= border_tolerance < 1:
        raise ValueError(error_message(
            f"border_tolerance={border_tolerance} must be in [0, 1) (border terms below border_tolerance * w0 are "
            "left out; 0 computes the exact map).",
            fixes=f"border_tolerance={DEFAULT_BORDER_TOLERANCE}   # the default: below float64 rounding",
        ))
    if not np.isfinite(w0) or w0 < 0:
        raise ValueError(error_message(
            f"w0={w0} must be finite and >= 0 (the border weight; the paper uses 10; 0 leaves the class term only).",
            fixes="w0=10.0",
        ))
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(error_message(
            f"sigma={sigma} must be finite and > 0 (pixels; how fast the border weight decays with d1 + d2).",
            fixes="sigma=5.0   # the paper's value",
        ))


def unet_weight_map(
    labels: LabelImage,
    w0: float = PAPER_W0,
    sigma: float = PAPER_SIGMA,
    class_balance: bool = True,
    *,
    dtype: torch.dtype = torch.float32,
    border_tolerance: float = DEFAULT_BORDER_TOLERANCE,
) -> Tensor:
    """The U-Net weight map ``w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` (border term on background only).

    Args:
        labels: instance labels, an integer tensor or numpy array ``(H, W)`` or ``(N, H, W)``:
            0 = background, 1..K = objects (any distinct positive ids). Each image of a batch is
            handled on its own (its own objects and its own class frequencies).
        w0: border weight ``>= 0`` (paper: 10).
        sigma: border width in pixels ``> 0`` (paper: about 5).
        class_balance: add ``w_c = n / (2 n_class)`` (see the module docstring); ``False`` uses 1.
        dtype: floating dtype of the result.
        border_tolerance: border terms smaller than ``border_tolerance * w0`` are left out, so each
            object's distances are computed only near it (within ``border_reach(sigma,
            border_tolerance)`` pixels of its bounding box, 8.6 sigma for the default ``1e-16``)
            instead of over the whole image. Every pixel then differs from the exact map by less than
            ``border_tolerance * w0`` (1e-15 for the default and the paper's ``w0 = 10``: a few
            float64 roundings of a weight >= 0.5, far below float32's); ``0`` computes the exact map,
            one distance transform of the whole image per object (about 15x slower at 512 x 512
            with 200 cells).

    Returns:
        a float tensor shaped like ``labels``, on ``labels``' device when it is a tensor (the distance
        transforms run on the CPU with SciPy).

    Raises:
        TypeError: a bool mask (label it first: ``scipy.ndimage.label``), a float array, not an array.
        ValueError: not 2-D or 3-D; negative labels; ``w0 < 0`` or ``sigma <= 0``;
            ``border_tolerance`` outside ``[0, 1)``.
    """
    array = _as_label_array(labels)
    _check_parameters(float(w0), float(sigma), float(border_tolerance))
    reach = border_reach(float(sigma), float(border_tolerance))
    images = array[None] if array.ndim == 2 else array
    maps = np.empty(images.shape, dtype=np.float64)
    for index, image in enumerate(images):
        class_weights = class_balance_weights(image) if class_balance else np.ones(image.shape)
        if w0 == 0 or not (image == 0).any():  # no border term (it is on background only): no distances
            maps[index] = class_weights
            continue
        d1, d2 = nearest_two_distances(image, max_distance=reach)
        maps[index] = weight_map_from_distances(d1 + d2, image == 0, class_weights, float(w0), float(sigma))
    result = torch.from_numpy(maps.reshape(array.shape)).to(dtype)
    if isinstance(labels, Tensor):
        result = result.to(labels.device)
    return result


__all__ = [
    "PAPER_SIGMA",
    "PAPER_W0",
    "class_balance_weights",
    "nearest_two_distances",
    "rebalance_map",
    "unet_weight_map",
    "weight_map_from_distances",
]
