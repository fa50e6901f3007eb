"""Boundary weight maps for touching objects: the weight map of the U-Net paper.

Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation"
(MICCAI 2015), eq. 2, weight every pixel ``x`` of an instance label image by

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 * sigma**2))

so that the thin background gaps separating touching cells, which are few pixels and easy to lose,
carry a large weight. Here:

* ``d1(x)``, ``d2(x)``: Euclidean distances from pixel ``x`` to the nearest pixel of the nearest and of
  the second-nearest object (distances between pixel centres, from
  :func:`scipy.ndimage.distance_transform_edt`; a background pixel next to a cell has ``d1 = 1``).
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

The distance transforms are the expensive part (one per object); :func:`nearest_two_distances`
returns them so that code trying several ``w0`` and ``sigma`` computes them once
(:func:`weight_map_from_distances` recombines).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

LabelImage = Tensor | np.ndarray

#: The paper's values.
PAPER_W0 = 10.0
PAPER_SIGMA = 5.0


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
        raise TypeError(
            f"{what} must be an integer torch.Tensor or numpy array of instance labels, got {_kind(labels)}.\n"
            f"Write instead:\n    {what}=torch.as_tensor({what})   # (H, W) or (N, H, W), 0 = background, 1..K = objects"
        )
    if array.dtype == np.bool_:
        raise TypeError(
            f"{what} is a bool mask ({_kind(labels)}), but the border term needs to tell touching "
            "objects apart: expected instance labels (0 = background, 1..K = one number per object).\n"
            "Write instead (objects that do not touch in the mask get their own number):\n"
            f"    {what}, count = scipy.ndimage.label(mask)   # per image; or skimage.measure.label(mask)\n"
            "A mask whose objects touch cannot be split this way; it needs the instance annotation."
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"{what} is {_kind(labels)}; expected an integer dtype of instance labels "
            "(0 = background, 1..K = objects).\n"
            f"Write instead:\n    {what}={what}.long()   # torch;   or {what}.astype(np.int64) for numpy"
        )
    if array.ndim not in (2, 3):
        shape = tuple(array.shape)
        message = (
            f"{what} is {_kind(labels)} ({array.ndim}-D); expected one label image (H, W) or a batch (N, H, W)."
        )
        if array.ndim == 4 and shape[1] == 1:
            message += f"\nWrite instead:\n    {what}={what}.squeeze(1)   # (N, 1, H, W) -> (N, H, W)"
        elif array.ndim == 1:
            message += f"\nWrite instead (a strip one pixel high):\n    {what}={what}[None, :]   # (W,) -> (1, W)"
        elif array.ndim > 3:
            message += (
                f"\nWrite instead, for stacks of 2-D images:\n    {what}={what}.reshape(-1, {shape[-2]}, {shape[-1]})"
            )
        raise ValueError(message)
    if array.size and array.min() < 0:
        raise ValueError(
            f"{what} ({_kind(labels)}) holds negative values (min {int(array.min())}); expected 0 for background and 1..K for objects.\n"
            "Write instead, if negative values mark unannotated pixels, label them 0 here and pass them to the "
            "loss separately:\n    ignore = labels < 0;  labels = labels.clamp(min=0)"
        )
    return array


def nearest_two_distances(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances ``d1``, ``d2`` from every pixel to its nearest and second-nearest object, ``(H, W)`` each.

    ``labels`` is one integer label image ``(H, W)`` (0 = background). For every object ``k``,
    ``scipy.ndimage.distance_transform_edt(labels != k)`` is the distance to object ``k``'s nearest
    pixel (0 on the object); ``d1`` and ``d2`` keep the smallest and second-smallest over ``k``.
    Where there are fewer than two objects the missing distances are ``inf``. Float64.
    """
    from scipy import ndimage  # here, not at module level: `import bceweights` need not load scipy

    d1 = np.full(labels.shape, np.inf)
    d2 = np.full(labels.shape, np.inf)
    for object_id in np.unique(labels):
        if object_id == 0:
            continue
        distance = ndimage.distance_transform_edt(labels != object_id)
        d2 = np.minimum(d2, np.maximum(d1, distance))
        d1 = np.minimum(d1, distance)
    return d1, d2


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


def _check_parameters(w0: float, sigma: float) -> None:
    if not np.isfinite(w0) or w0 < 0:
        raise ValueError(
            f"w0={w0} must be finite and >= 0 (the border weight; the paper uses 10; 0 leaves the class term only).\n"
            "Write instead:\n    w0=10.0"
        )
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(
            f"sigma={sigma} must be finite and > 0 (pixels; how fast the border weight decays with d1 + d2).\n"
            "Write instead:\n    sigma=5.0   # the paper's value"
        )


def unet_weight_map(
    labels: LabelImage,
    w0: float = PAPER_W0,
    sigma: float = PAPER_SIGMA,
    class_balance: bool = True,
    *,
    dtype: torch.dtype = torch.float32,
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

    Returns:
        a float tensor shaped like ``labels``, on ``labels``' device when it is a tensor (the distance
        transforms run on the CPU with SciPy).

    Raises:
        TypeError: a bool mask (label it first: ``scipy.ndimage.label``), a float array, not an array.
        ValueError: not 2-D or 3-D; negative labels; ``w0 < 0`` or ``sigma <= 0``.
    """
    array = _as_label_array(labels)
    _check_parameters(float(w0), float(sigma))
    images = array[None] if array.ndim == 2 else array
    maps = np.empty(images.shape, dtype=np.float64)
    for index, image in enumerate(images):
        d1, d2 = nearest_two_distances(image)
        class_weights = class_balance_weights(image) if class_balance else 1.0
        maps[index] = weight_map_from_distances(d1 + d2, image == 0, class_weights, float(w0), float(sigma))
    result = torch.from_numpy(maps.reshape(array.shape)).to(dtype)
    if isinstance(labels, Tensor):
        result = result.to(labels.device)
    return result


def touching_cells(
    height: int = 96,
    width: int = 96,
    n_cells: int = 9,
    radius: tuple[float, float] = (13.0, 19.0),
    gap: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """A synthetic instance label image ``(height, width)`` int64 of round cells that touch.

    Cell centres are drawn at random (seeded) with a minimum spacing; every pixel belongs to the
    nearest centre (a Voronoi partition) if it lies within that cell's radius. Where two cells meet,
    the pixels within ``gap / 2`` of the bisector between their centres become background, leaving a
    background line about ``gap`` pixels wide between touching cells: the pixels the U-Net border
    term is for. Labels are 1..K, consecutive (K = n_cells unless no room was left for more), 0 for
    background.
    """
    if height < 8 or width < 8 or n_cells < 1:
        raise ValueError(f"touching_cells needs height, width >= 8 and n_cells >= 1, got {height}, {width}, {n_cells}.")
    rng = np.random.default_rng(seed)
    low, high = radius
    spacing = 1.4 * low
    margin = 0.5 * low
    centres: list[tuple[float, float]] = []
    for _ in range(200 * n_cells):
        if len(centres) == n_cells:
            break
        candidate = (rng.uniform(margin, height - margin), rng.uniform(margin, width - margin))
        if all(np.hypot(candidate[0] - r, candidate[1] - c) >= spacing for r, c in centres):
            centres.append(candidate)
    centre_array = np.asarray(centres)  # (K, 2)
    radii = rng.uniform(low, high, size=len(centres))
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.stack([rows, cols], axis=-1)  # (H, W, 2)
    offsets = pixels[:, :, None, :] - centre_array[None, None]  # (H, W, K, 2)
    distances = np.hypot(offsets[..., 0], offsets[..., 1])  # (H, W, K)
    order = np.argsort(distances, axis=-1)
    nearest, second = order[..., 0], order[..., 1] if len(centres) > 1 else order[..., 0]
    d_nearest = np.take_along_axis(distances, nearest[..., None], -1)[..., 0]
    labels = np.where(d_nearest <= radii[nearest], nearest + 1, 0)
    if len(centres) > 1:
        # Distance from the pixel to the bisector of its two nearest centres: (d2^2 - d1^2) / (2 |c1 - c2|).
        d_second = np.take_along_axis(distances, second[..., None], -1)[..., 0]
        separation = np.linalg.norm(centre_array[nearest] - centre_array[second], axis=-1)
        to_bisector = (d_second**2 - d_nearest**2) / (2.0 * separation)
        labels = np.where(to_bisector < gap / 2.0, 0, labels)
    present = np.unique(labels[labels > 0])
    relabel = np.zeros(len(centres) + 1, dtype=np.int64)
    relabel[present] = np.arange(1, len(present) + 1)
    return relabel[labels]


__all__ = [
    "PAPER_SIGMA",
    "PAPER_W0",
    "class_balance_weights",
    "nearest_two_distances",
    "touching_cells",
    "unet_weight_map",
    "weight_map_from_distances",
]
