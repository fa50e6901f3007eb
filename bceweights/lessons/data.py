"""Synthetic segmentation data for the lessons: made on the fly, seeded, no downloads.

Three generators, each returning a :class:`Segmentation` (images and targets as tensors):

* :func:`make_shapes`: a binary problem, ``images (N, 1, H, W)`` and ``masks (N, 1, H, W)``; every
  image holds discs and squares covering, on average, ``fraction`` of its pixels.
* :func:`make_plates`: the four-colour, multi-label problem of the lessons. ``masks (N, 3, H, W)``
  has channels red, green, blue: a large blue plate, a red code printed *on* the plate (so those
  pixels are red and blue at once, which a colour image shows as magenta) and a small green disc
  beside it. Each channel's pixel fraction is a parameter. :func:`rgb_to_labels` turns the masks
  into single-label class maps ``(N, H, W)`` (black, green, blue, magenta).
* :func:`make_volume`: a 3-D binary problem, ``images`` and ``masks`` of shape ``(1, 1, D, H, W)``
  with ellipsoid blobs covering ``fraction`` of the voxels (the ``(1, 1, 60, 40, 40)``, 1/95 case).

Shapes are rasterised at pixel centres from continuous, uniformly placed outlines, so the expected
pixel count of a shape equals its area: over many images the positive fraction matches the
parameter (up to the sampling noise of a few hundred shapes). Every random draw comes from one
``torch.Generator`` seeded from ``seed``; the global RNG is never touched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

#: Channel names of :func:`make_plates` masks, in channel order.
RGB_CHANNELS: tuple[str, str, str] = ("red", "green", "blue")
#: Single-label classes of the plates problem and their colour as (red, green, blue) membership.
PLATE_CLASSES: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "green": (0, 1, 0),
    "blue": (0, 0, 1),
    "magenta": (1, 0, 1),
}
# Relative spread of each shape's area around its mean (uniform in [1 - j, 1 + j]).
AREA_JITTER = 0.3


@dataclass(frozen=True)
class Segmentation:
    """Images and their targets.

    Attributes:
        images: ``(N, C_in, *spatial)`` float32 inputs.
        masks: ``(N, C, *spatial)`` float32 targets in {0, 1} (multi-label: any number of channels
            may be 1 at a pixel).
        names: the ``C`` channel names.
    """

    images: Tensor
    masks: Tensor
    names: tuple[str, ...]

    def __len__(self) -> int:
        return self.images.shape[0]

    def fractions(self) -> Tensor:
        """Positive fraction of each channel, ``(C,)``: ``masks.mean`` over every dimension but 1."""
        dims = [d for d in range(self.masks.ndim) if d != 1]
        return self.masks.mean(dim=dims)

    def dataset(self) -> TensorDataset:
        """``(image, mask)`` pairs for a ``DataLoader``."""
        return TensorDataset(self.images, self.masks)

    def split(self, n_first: int) -> tuple[Segmentation, Segmentation]:
        """The first ``n_first`` samples and the rest (e.g. train and validation)."""
        if not 0 < n_first < len(self):
            raise ValueError(
                f"split({n_first}) needs 0 < n_first < {len(self)} (the number of samples).\n"
                f"Write instead, e.g.:\n    train, val = data.split({len(self) * 3 // 4})"
            )
        first = Segmentation(self.images[:n_first], self.masks[:n_first], self.names)
        rest = Segmentation(self.images[n_first:], self.masks[n_first:], self.names)
        return first, rest


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _uniform(n: int, low: Tensor | float, high: Tensor | float, generator: torch.Generator) -> Tensor:
    """``n`` draws, each uniform in ``[low, high]`` (bounds broadcast to ``(n,)``)."""
    return low + (high - low) * torch.rand(n, generator=generator)


def _normal(shape: tuple[int, ...] | torch.Size, generator: torch.Generator) -> Tensor:
    """Standard normal noise of ``shape`` (float32), the same bits on every CPU.

    ``torch.randn`` in float32 transforms its uniform draws with the CPU's vectorised ``log``/``cos``
    (AVX2, AVX-512 and scalar code round differently), so the images, and everything trained on
    them, would depend on the machine. In float64 it uses the same scalar path everywhere; rounding
    that to float32 removes any last-bit difference of the C library.
    """
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(torch.float32)


def _pixel_grid(size: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates ``(1, H, 1)`` and ``(1, 1, W)`` for broadcasting against ``(N, 1, 1)``."""
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    return centres.view(1, size, 1), centres.view(1, 1, size)


def _discs(cy: Tensor, cx: Tensor, radius: Tensor, size: int) -> Tensor:
    """Boolean ``(N, H, W)``: pixel centres inside the disc of each image."""
    yy, xx = _pixel_grid(size)
    v = lambda t: t.view(-1, 1, 1)  # noqa: E731
    return (yy - v(cy)) ** 2 + (xx - v(cx)) ** 2 < v(radius) ** 2


def _boxes(cy: Tensor, cx: Tensor, half_h: Tensor, half_w: Tensor, size: int) -> Tensor:
    """Boolean ``(N, H, W)``: pixel centres inside the axis-aligned box of each image."""
    yy, xx = _pixel_grid(size)
    v = lambda t: t.view(-1, 1, 1)  # noqa: E731
    return ((yy - v(cy)).abs() < v(half_h)) & ((xx - v(cx)).abs() < v(half_w))


def _check_fraction(name: str, fraction: float, high: float) -> None:
    if not 0.0 < fraction <= high:
        raise ValueError(
            f"{name}={fraction} is outside (0, {high}]: it is the share of pixels covered by the shapes.\n"
            f"Write instead, e.g.:\n    {name}=0.05"
        )


def make_shapes(
    n: int,
    size: int = 32,
    fraction: float = 0.05,
    *,
    objects: int = 1,
    contrast: float = 1.0,
    noise: float = 0.5,
    seed: int = 0,
) -> Segmentation:
    """A binary segmentation problem: bright discs and squares on a noisy background.

    The image is split into a grid of ``ceil(sqrt(objects))**2`` cells; ``objects`` of them, chosen at
    random, each hold one shape (a disc or a square, at random) placed uniformly inside its cell.
    Each shape's area is ``fraction * size**2 / objects`` times a factor uniform in [0.7, 1.3].

    Image: ``contrast`` inside the shapes, 0 outside, plus Gaussian noise of standard deviation
    ``noise``. Shapes: ``images (n, 1, size, size)``, ``masks (n, 1, size, size)``.

    Args:
        n: number of images.
        size: height and width in pixels.
        fraction: mean share of positive pixels, down to about 0.005 (one shape of a few pixels).
        objects: shapes per image (non-overlapping).
        contrast: shape brightness above the background.
        noise: standard deviation of the additive pixel noise.
        seed: seeds the ``torch.Generator`` every draw comes from.
    """
    _check_fraction("fraction", fraction, 0.5)
    grid = math.ceil(math.sqrt(objects))
    cell = size / grid
    mean_area = fraction * size * size / objects
    max_area = mean_area * (1 + AREA_JITTER)
    if max_area > (0.8 * cell) ** 2:
        raise ValueError(
            f"fraction={fraction} with objects={objects} on {size}x{size} images needs shapes of up to "
            f"{max_area:.0f} pixels, which do not fit in the {cell:.0f}x{cell:.0f} cell each shape gets.\n"
            f"Write instead a smaller fraction or fewer objects, e.g.:\n    make_shapes({n}, {size}, fraction={fraction}, objects=1)"
        )
    g = _generator(seed)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    cells = torch.stack([torch.randperm(grid * grid, generator=g)[:objects] for _ in range(n)])  # (n, objects)
    for k in range(objects):
        area = mean_area * _uniform(n, 1 - AREA_JITTER, 1 + AREA_JITTER, g)
        is_disc = torch.rand(n, generator=g) < 0.5
        extent = torch.where(is_disc, torch.sqrt(area / math.pi), torch.sqrt(area) / 2)  # radius or half side
        row, col = cells[:, k] // grid, cells[:, k] % grid
        cy = _uniform(n, row * cell + extent, (row + 1) * cell - extent, g)
        cx = _uniform(n, col * cell + extent, (col + 1) * cell - extent, g)
        shape = torch.where(
            is_disc.view(-1, 1, 1), _discs(cy, cx, extent, size), _boxes(cy, cx, extent, extent, size)
        )
        masks |= shape
    masks_f = masks.float().unsqueeze(1)
    images = contrast * masks_f + noise * _normal(masks_f.shape, g)
    return Segmentation(images, masks_f, ("foreground",))


def make_plates(
    n: int,
    size: int = 32,
    fractions: Sequence[float] = (0.06, 0.01, 0.25),
    *,
    noise: float = 0.35,
    green_contrast: float = 0.8,
    seed: int = 0,
) -> Segmentation:
    """The four-colour, multi-label problem: a blue plate, a red code on it, a small green disc.

    ``fractions = (red, green, blue)`` are the mean shares of pixels where each channel is 1. The
    plate (blue) is a rectangle in the left or right half of the image; the code (red) is a square
    inside the plate, so every red pixel is also blue (magenta); the green disc lies in the other half.
    Hence ``red <= 0.8 * blue``, ``blue <= 0.4`` and ``green <= 0.15``.

    The single-channel image shows the plate at brightness 0.5, the code brighter on it (a 2-pixel
    checkerboard of 0.75 and 1.25), the green disc at ``-green_contrast`` (darker than the background), plus
    Gaussian noise of standard deviation ``noise``.

    Shapes: ``images (n, 1, size, size)``, ``masks (n, 3, size, size)`` with channels red, green, blue.
    :func:`rgb_to_labels` gives the single-label view ``(n, size, size)``.
    """
    red, green, blue = (float(f) for f in fractions)
    _check_fraction("fractions[2] (blue)", blue, 0.4)
    _check_fraction("fractions[1] (green)", green, 0.15)
    _check_fraction("fractions[0] (red)", red, 0.8 * blue)
    g = _generator(seed)
    area = float(size * size)
    half = size / 2

    # Plate: a rectangle with aspect ratio in [0.7, 1.4], fitted in its half (width <= 0.9 * half).
    plate_area = blue * area * _uniform(n, 1 - AREA_JITTER / 2, 1 + AREA_JITTER / 2, g)
    aspect = _uniform(n, 0.7, 1.4, g)  # height / width
    width = torch.sqrt(plate_area / aspect).clamp(max=0.9 * half)
    height = (plate_area / width).clamp(max=0.9 * size)
    plate_left = torch.rand(n, generator=g) < 0.5
    offset = torch.where(plate_left, torch.zeros(n), torch.full((n,), half))
    plate_cy = _uniform(n, height / 2, size - height / 2, g)
    plate_cx = offset + _uniform(n, width / 2, half - width / 2, g)
    plate = _boxes(plate_cy, plate_cx, height / 2, width / 2, size)

    # Code: a square on the plate, with the same mean share of the plate in every image.
    code_side = torch.sqrt(plate_area * (red / blue)).clamp(max=torch.minimum(width, height))
    code_cy = _uniform(n, plate_cy - (height - code_side) / 2, plate_cy + (height - code_side) / 2, g)
    code_cx = _uniform(n, plate_cx - (width - code_side) / 2, plate_cx + (width - code_side) / 2, g)
    code = _boxes(code_cy, code_cx, code_side / 2, code_side / 2, size)

    # Green disc in the other half.
    radius = torch.sqrt(green * area * _uniform(n, 1 - AREA_JITTER, 1 + AREA_JITTER, g) / math.pi)
    other = half - offset
    disc_cy = _uniform(n, radius, size - radius, g)
    disc_cx = other + _uniform(n, radius, half - radius, g)
    disc = _discs(disc_cy, disc_cx, radius, size)

    masks = torch.stack([code, disc, plate], dim=1).float()
    yy, xx = _pixel_grid(size)
    checker = ((yy.long() // 2 + xx.long() // 2) % 2).float()  # (1, H, W)
    image = 0.5 * plate.float() + code.float() * (0.5 + 0.25 * (2 * checker - 1)) - green_contrast * disc.float()
    image = image.unsqueeze(1) + noise * _normal((n, 1, size, size), g)
    return Segmentation(image, masks, RGB_CHANNELS)


def rgb_to_labels(masks: Tensor, classes: dict[str, tuple[int, int, int]] | None = None) -> Tensor:
    """Single-label class indices ``(N, H, W)`` (int64) from multi-label RGB masks ``(N, 3, H, W)``.

    Class ``k`` is the k-th entry of ``classes`` (default :data:`PLATE_CLASSES`: black, green, blue,
    magenta), matched by its exact (red, green, blue) membership.

    Raises:
        ValueError: a pixel's colour is not one of the classes.
    """
    classes = PLATE_CLASSES if classes is None else classes
    if masks.ndim != 4 or masks.shape[1] != 3:
        raise ValueError(
            f"rgb_to_labels expects masks of shape (N, 3, H, W) (channels red, green, blue), got "
            f"{tuple(masks.shape)}.\nWrite instead, e.g.:\n    rgb_to_labels(data.masks)"
        )
    bits = masks.round().long()
    code = bits[:, 0] * 4 + bits[:, 1] * 2 + bits[:, 2]  # (N, H, W), one number per colour
    labels = torch.full_like(code, -1)
    for index, (r, g, b) in enumerate(classes.values()):
        labels[code == r * 4 + g * 2 + b] = index
    if (labels < 0).any():
        missing = sorted({int(c) for c in code[labels < 0].unique()})
        colours = [(c >> 2 & 1, c >> 1 & 1, c & 1) for c in missing]
        raise ValueError(
            f"rgb_to_labels: pixels with (red, green, blue) = {colours} match none of the classes "
            f"{list(classes)}.\nWrite instead a classes dict that names every colour, e.g.:\n"
            f"    rgb_to_labels(masks, {{**PLATE_CLASSES, 'red': (1, 0, 0)}})"
        )
    return labels


def labels_to_rgb(labels: Tensor, classes: dict[str, tuple[int, int, int]] | None = None) -> Tensor:
    """Multi-label RGB masks ``(N, 3, H, W)`` (float32) from class indices ``(N, H, W)``: the inverse of :func:`rgb_to_labels`."""
    classes = PLATE_CLASSES if classes is None else classes
    palette = torch.tensor(list(classes.values()), dtype=torch.float32)  # (K, 3)
    return palette[labels].movedim(-1, 1)


def make_volume(
    shape: Sequence[int] = (60, 40, 40),
    fraction: float = 1 / 95,
    *,
    blobs: int = 3,
    contrast: float = 1.0,
    noise: float = 0.5,
    seed: int = 0,
) -> Segmentation:
    """One 3-D volume with ``blobs`` ellipsoids covering about ``fraction`` of the voxels.

    The depth is cut into ``blobs`` slabs, one blob in each (so they never overlap); each blob's
    volume is ``fraction * D * H * W / blobs`` times a factor uniform in [0.7, 1.3], with semi-axes in
    ratios drawn from [0.8, 1.25]. Shapes: ``images (1, 1, D, H, W)``, ``masks (1, 1, D, H, W)``.
    """
    _check_fraction("fraction", fraction, 0.3)
    depth, height, width = (int(s) for s in shape)
    g = _generator(seed)
    zz = torch.arange(depth, dtype=torch.float32).view(-1, 1, 1) + 0.5
    yy = torch.arange(height, dtype=torch.float32).view(1, -1, 1) + 0.5
    xx = torch.arange(width, dtype=torch.float32).view(1, 1, -1) + 0.5
    slab = depth / blobs
    mask = torch.zeros(depth, height, width, dtype=torch.bool)
    for k in range(blobs):
        volume = fraction * depth * height * width / blobs * float(_uniform(1, 1 - AREA_JITTER, 1 + AREA_JITTER, g))
        ratios = _uniform(3, 0.8, 1.25, g)
        scale = (volume / (4 / 3 * math.pi * float(ratios.prod()))) ** (1 / 3)
        a, b, c = (float(r) * scale for r in ratios)  # semi-axes along z, y, x
        if 2 * a > slab or 2 * b > height or 2 * c > width:
            raise ValueError(
                f"fraction={fraction} with blobs={blobs} needs ellipsoids of semi-axes about "
                f"({a:.1f}, {b:.1f}, {c:.1f}) voxels, too large for slabs of {slab:.0f}x{height}x{width}.\n"
                f"Write instead more blobs or a smaller fraction, e.g.:\n    make_volume({tuple(shape)}, {fraction}, blobs={blobs + 2})"
            )
        cz = float(_uniform(1, k * slab + a, (k + 1) * slab - a, g))
        cy = float(_uniform(1, b, height - b, g))
        cx = float(_uniform(1, c, width - c, g))
        mask |= ((zz - cz) / a) ** 2 + ((yy - cy) / b) ** 2 + ((xx - cx) / c) ** 2 < 1
    mask_f = mask.float().view(1, 1, depth, height, width)
    images = contrast * mask_f + noise * _normal(mask_f.shape, g)
    return Segmentation(images, mask_f, ("foreground",))
