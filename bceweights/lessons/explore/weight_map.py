"""``WeightMapExplorer``: the U-Net boundary weight map on touching cells, and where it sends the gradient.

The label image comes from :func:`bceweights.lessons.cells.touching_cells`: round cells that touch,
separated by background lines about one pixel wide. The weight map is
:func:`bceweights.unet_weight_map`'s (paper: Ronneberger et al. 2015)::

    w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))**2 / (2 sigma**2))     (border term on background only)

The "model" is a blurry prediction, the typical failure on touching objects: its logits are
``8 (G * mask - 1/2)`` with ``G`` a Gaussian blur (std 1.5 px) of the foreground mask, so the thin
gaps between touching cells come out as foreground and the cells merge. For weighted BCE the gradient
with respect to each logit is ``w (sigmoid(x) - y)``; the explorer shows its magnitude per pixel and
the share of its total carried by the **separating pixels** (background pixels with
``d1 + d2 <= 4``: one or two pixels from a cell on each side), by the other background pixels and by
the cells, without and with the map. ``gradient_scale`` is ``sum w |g| / sum |g|`` with
``g = sigmoid(x) - y``: the factor by which the map scales the total gradient magnitude on the logits
(with ``reduction="mean"`` or ``"sum"`` alike). It is the mean weight only where every ``|g|`` is the
same; plain SGD's step size roughly follows it, while Adam divides a constant factor away.

The distance transforms depend only on the label image; they are computed once per ``cells`` seed
and cached, so moving ``w0``, ``sigma`` or ``class_balance`` only recombines arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.colors import ListedColormap, LogNorm, PowerNorm
from matplotlib.figure import Figure
from scipy import ndimage, special

from bceweights.lessons.cells import touching_cells
from bceweights.lessons.explore.base import Explorer
from bceweights.weights.maps import class_balance_weights, nearest_two_distances, weight_map_from_distances

#: Height and width of the label images.
SCENE_SIZE = 96
#: Background pixels with d1 + d2 at most this many pixels are *separating* pixels.
SEPARATION_DISTANCE = 4.0
#: Blur (pixels) and steepness of the blurry model's logits.
MODEL_BLUR = 1.5
MODEL_SCALE = 8.0
_CELL_COLOURS = ("#8fb4e3", "#e8b4d8", "#b9d7a8", "#f2c48d", "#c7b8e6", "#a8d8d8")
#: The gradient image's colour scale, relative to the largest pixel, log-spaced.
IMAGE_FLOOR = 1e-3
REGIONS = ("separating", "background", "cells")
_REGION_LABELS = {"separating": "separating\npixels", "background": "other\nbackground", "cells": "cells"}
#: Top of the weight map's colour scale: above w0's largest value (20) plus the class term (about 1.4).
MAP_MAX = 22.0


@dataclass(frozen=True)
class CellScene:
    """Everything about one label image that does not depend on ``w0``, ``sigma`` or class balance.

    Arrays are ``(H, W)``: ``labels`` int64, ``distance_sum`` = d1 + d2 (inf without a second cell),
    ``class_weights`` = w_c, ``logits`` of the blurry model, ``target`` = labels > 0 as float,
    ``error`` = ``|sigmoid(logits) - target|`` (the unweighted gradient magnitude), and bool masks of the
    three regions.
    """

    labels: np.ndarray
    distance_sum: np.ndarray
    class_weights: np.ndarray
    logits: np.ndarray
    target: np.ndarray
    error: np.ndarray
    regions: dict[str, np.ndarray]

    @property
    def background(self) -> np.ndarray:
        return self.labels == 0


def neighbour_colouring(labels: np.ndarray, n_colours: int) -> np.ndarray:
    """A colour index per cell, ``(K,)`` for labels 1..K, such that cells within 3 px differ (greedy)."""
    n_cells = int(labels.max())
    colours = np.zeros(n_cells, dtype=np.int64)
    for cell in range(1, n_cells + 1):
        near = ndimage.binary_dilation(labels == cell, iterations=3)
        taken = {int(colours[other - 1]) for other in np.unique(labels[near]) if 0 < other < cell}
        colours[cell - 1] = next((c for c in range(n_colours) if c not in taken), 0)
    return colours


def blurry_logits(labels: np.ndarray) -> np.ndarray:
    """Logits ``(H, W)`` of a model that blurs the foreground: ``8 (gaussian(mask, 1.5) - 0.5)``."""
    blurred = ndimage.gaussian_filter((labels > 0).astype(np.float64), MODEL_BLUR)
    return MODEL_SCALE * (blurred - 0.5)


def cell_scene(seed: int = 0, size: int = SCENE_SIZE) -> CellScene:
    """The label image of :func:`touching_cells` with this seed, its distances and the model's error."""
    labels = touching_cells(size, size, seed=seed)
    d1, d2 = nearest_two_distances(labels)
    distance_sum = d1 + d2
    target = (labels > 0).astype(np.float64)
    logits = blurry_logits(labels)
    separating = (labels == 0) & (distance_sum <= SEPARATION_DISTANCE)
    regions = {"separating": separating, "background": (labels == 0) & ~separating, "cells": labels > 0}
    return CellScene(
        labels=labels,
        distance_sum=distance_sum,
        class_weights=class_balance_weights(labels),
        logits=logits,
        target=target,
        error=np.abs(special.expit(logits) - target),
        regions=regions,
    )


def scene_weights(scene: CellScene, w0: float, sigma: float, class_balance: bool) -> np.ndarray:
    """The U-Net map of ``scene`` from its cached distances (equal to ``unet_weight_map(scene.labels, ...)``)."""
    class_weights = scene.class_weights if class_balance else 1.0
    return weight_map_from_distances(scene.distance_sum, scene.background, class_weights, w0, sigma)


def region_shares(gradient_magnitude: np.ndarray, regions: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of ``sum |gradient|`` in each region (the regions partition the image)."""
    total = float(gradient_magnitude.sum())
    if total == 0.0:
        return {name: 0.0 for name in regions}
    return {name: float(gradient_magnitude[mask].sum()) / total for name, mask in regions.items()}


def separating_share(w0: float, sigma: float = 5.0, class_balance: bool = True, seed: int = 0) -> float:
    """Share of the weighted BCE gradient carried by the separating pixels of scene ``seed``."""
    scene = cell_scene(seed)
    weighted = scene_weights(scene, w0, sigma, class_balance) * scene.error
    return region_shares(weighted, scene.regions)["separating"]


class WeightMapExplorer(Explorer):
    """The U-Net weight map on touching cells and the share of the gradient it sends to the gaps.

    Controls: ``w0`` (0..20), ``sigma`` (1..15 px), ``class_balance`` (checkbox), ``cells`` (seed of
    the label image, 0..7).

    Readouts: ``separating_share_plain`` and ``separating_share_weighted`` (share of the total
    gradient magnitude on separating pixels without and with the map), ``cells_share_weighted``,
    ``separating_pixels`` (their share of all pixels), ``separating_mean_weight``, ``max_weight``,
    ``mean_weight``, ``gradient_scale`` (``sum w |g| / sum |g|``: how much the map scales the total
    gradient magnitude of this model; equal to ``mean_weight`` only where every ``|g|`` is the same).

    Example::

        explorer = WeightMapExplorer()
        explorer.set(w0=10, sigma=5)
        explorer.readouts["separating_share_weighted"]
    """

    title = "U-Net weight map on touching cells: the map, the weighted gradient, and where it goes"
    figsize = (10.4, 3.3)
    readout_labels = {
        "separating_share_plain": "share of gradient on separating pixels, unweighted",
        "separating_share_weighted": "share of gradient on separating pixels, with the map",
        "cells_share_weighted": "share of gradient on the cells, with the map",
        "separating_pixels": "separating pixels, share of all pixels",
        "separating_mean_weight": "mean weight of a separating pixel",
        "max_weight": "largest weight",
        "mean_weight": "mean weight",
        "gradient_scale": "total |gradient|, with the map / without",
    }

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "initial"}
        return {
            "w0": widgets.FloatSlider(value=10.0, min=0.0, max=20.0, step=0.5, description="w0", style=style),
            "sigma": widgets.FloatSlider(
                value=5.0, min=1.0, max=15.0, step=0.5, description="sigma σ (px)", style=style
            ),
            "class_balance": widgets.Checkbox(value=True, description="class balance w_c", indent=False),
            "cells": widgets.IntSlider(value=0, min=0, max=7, description="cells (seed)", style=style),
        }

    def build_figure(self, figure: Figure) -> None:
        self._scenes: dict[int, CellScene] = {}
        self._scene_seed: int | None = None
        shape = (SCENE_SIZE, SCENE_SIZE)
        grid = figure.add_gridspec(
            1, 4, width_ratios=[1.0, 1.0, 1.0, 1.05], left=0.01, right=0.99, bottom=0.2, top=0.86, wspace=0.5
        )
        self._label_axes = figure.add_subplot(grid[0])
        self._map_axes = figure.add_subplot(grid[1])
        self._grad_axes = figure.add_subplot(grid[2])
        self._bar_axes = figure.add_subplot(grid[3])

        zeros = np.zeros(shape)
        # Labels: cells in pastel colours, separating pixels in red, other background white.
        palette = ListedColormap(["white", "crimson", *_CELL_COLOURS])
        self._label_image = self._label_axes.imshow(zeros, cmap=palette, vmin=-0.5, vmax=len(_CELL_COLOURS) + 1.5, interpolation="nearest")
        self._label_axes.set_title("cells; separating pixels red", fontsize=9)
        # One fixed colour scale for every slider position, so a learner sees the gaps brighten as w0
        # grows (square-root scale: the class-balance term near 1 stays visible next to w0 = 20).
        self._map_image = self._map_axes.imshow(
            zeros, cmap="viridis", norm=PowerNorm(0.5, vmin=0.0, vmax=MAP_MAX), interpolation="nearest"
        )
        figure.colorbar(self._map_image, ax=self._map_axes, fraction=0.046, pad=0.03, ticks=[0, 1, 2, 5, 10, 20])
        self._map_axes.set_title("weight map w(x)", fontsize=9)
        self._grad_image = self._grad_axes.imshow(
            np.full(shape, IMAGE_FLOOR), cmap="magma", norm=LogNorm(IMAGE_FLOOR, 1.0), interpolation="nearest"
        )
        figure.colorbar(self._grad_image, ax=self._grad_axes, fraction=0.046, pad=0.03, ticks=[1e-3, 1e-2, 1e-1, 1.0])
        self._grad_axes.set_title("|w (q − y)| of a blurry model\n(relative to the largest; log)", fontsize=9)
        for axes in (self._label_axes, self._map_axes, self._grad_axes):
            axes.set_xticks([])
            axes.set_yticks([])

        positions = np.arange(len(REGIONS))
        width = 0.38
        self._plain_bars = self._bar_axes.bar(positions - width / 2, np.zeros(len(REGIONS)), width, color="0.6", label="unweighted")
        self._weighted_bars = self._bar_axes.bar(
            positions + width / 2, np.zeros(len(REGIONS)), width, color="tab:green", label="with the map"
        )
        self._bar_axes.set_xticks(positions, [_REGION_LABELS[r] for r in REGIONS], fontsize=8)
        self._bar_axes.set_ylim(0.0, 1.0)
        self._bar_axes.set_title("share of total |gradient|", fontsize=10)
        self._bar_axes.legend(loc="upper left", fontsize=8)
        self._bar_axes.grid(axis="y", alpha=0.25)
        self.animate(self._label_image, self._map_image, self._grad_image, *self._plain_bars, *self._weighted_bars)

    def scene(self, seed: int) -> CellScene:
        """The cached :class:`CellScene` of ``seed`` (computed on first use: one EDT per cell)."""
        if seed not in self._scenes:
            self._scenes[seed] = cell_scene(seed)
        return self._scenes[seed]

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        seed = int(values["cells"])
        scene = self.scene(seed)
        if seed != self._scene_seed:
            colours = np.concatenate([[0], 2 + neighbour_colouring(scene.labels, len(_CELL_COLOURS))])
            shown = np.where(scene.labels > 0, colours[scene.labels], np.where(scene.regions["separating"], 1, 0))
            self._label_image.set_data(shown)
            self._plain_shares = region_shares(scene.error, scene.regions)
            for bar, region in zip(self._plain_bars, REGIONS):
                bar.set_height(self._plain_shares[region])
            self._scene_seed = seed

        weights = scene_weights(scene, float(values["w0"]), float(values["sigma"]), bool(values["class_balance"]))
        self._map_image.set_data(weights)

        weighted = weights * scene.error
        largest = float(weighted.max())
        self._grad_image.set_data(np.maximum(weighted / largest if largest > 0 else weighted, IMAGE_FLOOR))
        shares = region_shares(weighted, scene.regions)
        for bar, region in zip(self._weighted_bars, REGIONS):
            bar.set_height(shares[region])

        separating = scene.regions["separating"]
        error_total = float(scene.error.sum())
        return {
            "separating_share_plain": self._plain_shares["separating"],
            "separating_share_weighted": shares["separating"],
            "cells_share_weighted": shares["cells"],
            "separating_pixels": float(separating.mean()),
            "separating_mean_weight": float(weights[separating].mean()) if separating.any() else 0.0,
            "max_weight": float(weights.max()),
            "mean_weight": float(weights.mean()),
            "gradient_scale": float(weighted.sum()) / error_total if error_total > 0 else 0.0,
        }

    def readout_notes(self, values: dict[str, Any], readouts: dict[str, float]) -> list[str]:
        notes = []
        if values["w0"] == 0:
            notes.append("w0 = 0: no border term; the map is the class-balance term alone (or 1 everywhere).")
        if values["sigma"] >= 10 and values["w0"] > 0:
            notes.append(
                "Large sigma: the border term reaches far into open background, so those pixels take "
                "gradient away from the gaps."
            )
        return notes

    def benchmark_changes(self) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = [{"w0": w} for w in (0.0, 2.5, 5.0, 10.0, 15.0, 20.0, 10.0)]
        changes += [{"sigma": s} for s in (1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 5.0)]
        changes += [{"class_balance": False}, {"class_balance": True}]
        changes += [{"cells": 1}, {"cells": 0}]  # a new label image (EDT) once, then the cached one
        return changes
