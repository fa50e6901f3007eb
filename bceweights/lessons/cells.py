"""Synthetic instance labels for lesson 07: round cells that touch (the U-Net weight map's use case).

Imports: numpy only. The weight map itself is :func:`bceweights.unet_weight_map`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["touching_cells"]


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
