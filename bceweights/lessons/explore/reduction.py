"""``ReductionExplorer``: what ``mean``, ``sum`` and ``weighted_mean`` divide by, and what that does to the step.

One image of ``side x side`` pixels; a disk of ``k = round(f * n)`` foreground pixels (``n = side**2``)
with weight ``w_fg``, the rest background with weight ``w_bg``. The model is fixed and mediocre: logit
:data:`FOREGROUND_LOGIT` on every foreground pixel, :data:`BACKGROUND_LOGIT` on every background pixel, so
each pixel's loss ``l`` and gradient ``g = sigmoid(x) - y`` take one of two values and every number has a
closed form. With ``S = k w_fg l_fg + (n - k) w_bg l_bg`` (the weighted sum) and
``W = k w_fg + (n - k) w_bg`` (the sum of the weights):

    reduction="sum"            loss S          gradient size  G = k w_fg |g_fg| + (n - k) w_bg |g_bg|
    reduction="mean"           loss S / n      gradient size  G / n          (PyTorch: n, not W)
    reduction="weighted_mean"  loss S / W      gradient size  G / W

"Gradient size" is ``sum_i |dL/dx_i|``, the total push on the logits: the step a shared parameter (a bias)
takes is a sum of these per-pixel pushes, so it scales the way this number scales. Divided by the same
number for the unweighted mean it is the *effective learning-rate factor* of the chosen weights and
reduction. Doubling every weight doubles it under ``mean`` and ``sum`` and leaves it under
``weighted_mean``; doubling the pixels doubles it under ``sum`` only.

The explorer computes every number with :func:`bceweights.bce_with_logits` and autograd.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from bceweights.lessons.explore.base import Explorer
from bceweights.lessons.explore.controls import log_choices, one_thread
from bceweights.lessons.explore.display import format_number
from bceweights.loss import bce_with_logits

#: The fixed model: logits on foreground and background pixels (predicted probabilities 0.27, 0.12).
FOREGROUND_LOGIT = -1.0
#: The fixed model's logit on background pixels (see :data:`FOREGROUND_LOGIT`).
BACKGROUND_LOGIT = -2.0
REDUCTIONS = ("mean", "sum", "weighted_mean")
WEIGHT_RANGE = (0.01, 100.0)
_COLORS = {"mean": "tab:blue", "sum": "tab:red", "weighted_mean": "tab:green"}
_NORM = LogNorm(*WEIGHT_RANGE)
_CMAP = colormaps["magma"]
#: Tick labels as plain numbers (0.01, 100, 1e+04): mathtext labels cost much more to draw.
_PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


@functools.lru_cache(maxsize=8)
def _pixels_by_distance(side: int) -> torch.Tensor:
    """Raster indices of a ``side x side`` image, nearest the centre first (ties in raster order)."""
    centre = (side - 1) / 2
    rows, cols = torch.meshgrid(torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64),
                                indexing="ij")
    distance = ((rows - centre) ** 2 + (cols - centre) ** 2).flatten()
    return torch.argsort(distance, stable=True)


def disk_target(side: int, foreground: float) -> torch.Tensor:
    """A ``(side, side)`` 0/1 float64 target whose ``round(foreground * side**2)`` ones are the pixels
    nearest the centre (a disk, ties broken in raster order)."""
    n = side * side
    k = int(round(foreground * n))
    target = torch.zeros(n, dtype=torch.float64)
    target[_pixels_by_distance(side)[:k]] = 1.0
    return target.view(side, side)


def weight_map_rgba(inside: np.ndarray, weight_fg: float, weight_bg: float) -> np.ndarray:
    """The weight map as an ``(H, W, 4)`` uint8 RGBA image: each pixel coloured by its weight on the
    explorer's log colour scale, and the foreground's outline (``inside`` pixels with a 4-neighbour
    outside, the border counting as outside) in white, so the foreground shows even when both weights
    are equal."""
    colours = _CMAP(_NORM(np.array([weight_bg, weight_fg])), bytes=True)
    rgba = np.where(inside[..., None], colours[1], colours[0]).astype(np.uint8)
    padded = np.pad(inside, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    rgba[inside & ~interior] = 255
    return rgba


def reduction_numbers(
    target: torch.Tensor, weight_fg: float, weight_bg: float
) -> dict[str, float]:
    """Loss and gradient size ``sum |dL/dx|`` under each reduction, through the package and autograd.

    Args:
        target: ``(H, W)`` 0/1 target; logits are :data:`FOREGROUND_LOGIT` where it is 1, else
            :data:`BACKGROUND_LOGIT`. Computed as a ``(1, 1, H, W)`` batch.
        weight_fg, weight_bg: the weight of foreground and background pixels.

    Returns:
        ``loss_<r>`` and ``grad_<r>`` for ``r`` in ``mean``, ``sum``, ``weighted_mean`` and
        ``unweighted`` (``mean`` without weights), plus ``weight_sum`` (``W``).
    """
    y = target.reshape(1, 1, *target.shape).to(torch.float64)
    logits = torch.where(y > 0.5, FOREGROUND_LOGIT, BACKGROUND_LOGIT).to(torch.float64)
    weight = weight_fg * y + weight_bg * (1 - y)
    out: dict[str, float] = {}
    with one_thread():
        for name, kwargs in (
            *((r, {"weight": weight, "reduction": r}) for r in REDUCTIONS),
            ("unweighted", {"reduction": "mean"}),
        ):
            x = logits.clone().requires_grad_(True)
            loss = bce_with_logits(x, y, **kwargs)
            (gradient,) = torch.autograd.grad(loss, x)
            out[f"loss_{name}"] = float(loss.detach())
            out[f"grad_{name}"] = float(gradient.abs().sum())
        out["weight_sum"] = float(weight.sum())
    return out


def closed_form_numbers(pixels: int, foreground_pixels: int, weight_fg: float, weight_bg: float) -> dict[str, float]:
    """The same numbers as :func:`reduction_numbers`, from the closed forms in the module docstring."""
    n, k = pixels, foreground_pixels
    loss_fg = math.log1p(math.exp(-FOREGROUND_LOGIT))  # softplus(-x): the loss of y = 1
    loss_bg = math.log1p(math.exp(BACKGROUND_LOGIT))  # softplus(x): the loss of y = 0
    grad_fg = 1.0 - 1.0 / (1.0 + math.exp(-FOREGROUND_LOGIT))  # |sigmoid(x) - 1|
    grad_bg = 1.0 / (1.0 + math.exp(-BACKGROUND_LOGIT))  # sigmoid(x)
    weighted_loss = k * weight_fg * loss_fg + (n - k) * weight_bg * loss_bg
    weighted_grad = k * weight_fg * grad_fg + (n - k) * weight_bg * grad_bg
    weight_sum = k * weight_fg + (n - k) * weight_bg
    return {
        "loss_mean": weighted_loss / n,
        "loss_sum": weighted_loss,
        "loss_weighted_mean": weighted_loss / weight_sum,
        "loss_unweighted": (k * loss_fg + (n - k) * loss_bg) / n,
        "grad_mean": weighted_grad / n,
        "grad_sum": weighted_grad,
        "grad_weighted_mean": weighted_grad / weight_sum,
        "grad_unweighted": (k * grad_fg + (n - k) * grad_bg) / n,
        "weight_sum": weight_sum,
    }


# --------------------------------------------------------------------------------------------------
# The explorer.


#: Fixed log range of both bar panels: every loss and gradient size the controls can produce fits
#: (the smallest, a mean with weight 0.01 on background, is about 1.2e-3; the largest, a sum over
#: 256 x 256 foreground pixels with weight 100, about 8.6e6), so a drag never rescales the axes (no
#: full redraw) and a bar that grows 10 times is seen to grow.
BAR_RANGE = (1e-4, 1e8)


class ReductionExplorer(Explorer):
    """Losses and gradient sizes of ``mean``, ``sum`` and ``weighted_mean`` as weights and the image change.

    Controls: ``foreground`` (fraction of pixels, 0..1), ``weight_fg`` and ``weight_bg`` (log sliders
    0.01..100), ``side`` (image side in pixels, 8..256).

    Readouts: ``pixels``, ``foreground_pixels``, ``weight_sum``; ``loss_<r>`` and ``grad_<r>`` (gradient
    size ``sum |dL/dx|``) for ``r`` in ``mean``, ``sum``, ``weighted_mean``, ``unweighted`` (plain
    mean); ``lr_factor_<r>`` = ``grad_<r> / grad_unweighted``, the effective learning-rate factor.

    Example::

        explorer = ReductionExplorer(foreground=0.02)
        explorer.set(weight_fg=50.0)
        explorer.readouts["lr_factor_mean"]
    """

    title = "What each reduction divides by: loss and gradient size"
    figsize = (9.6, 3.3)
    readout_labels = {
        "pixels": "pixels n",
        "foreground_pixels": "foreground pixels k",
        "weight_sum": "sum of weights W",
        "loss_mean": "loss, mean (÷ n)",
        "loss_sum": "loss, sum",
        "loss_weighted_mean": "loss, weighted_mean (÷ W)",
        "loss_unweighted": "loss, unweighted mean",
        "grad_mean": "gradient size Σ|∂L/∂x|, mean",
        "grad_sum": "gradient size, sum",
        "grad_weighted_mean": "gradient size, weighted_mean",
        "grad_unweighted": "gradient size, unweighted mean",
        "lr_factor_mean": "learning-rate factor, mean",
        "lr_factor_sum": "learning-rate factor, sum",
        "lr_factor_weighted_mean": "learning-rate factor, weighted_mean",
    }

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "initial"}
        return {
            "foreground": widgets.FloatSlider(
                value=0.05, min=0.0, max=1.0, step=0.01, description="foreground fraction f", style=style
            ),
            # Round log-spaced values (0.01 ... 100): a FloatLogSlider would snap code-set values.
            "weight_fg": widgets.SelectionSlider(
                options=log_choices(-2, 2), value=1.0, description="weight_fg", style=style,
            ),
            "weight_bg": widgets.SelectionSlider(
                options=log_choices(-2, 2), value=1.0, description="weight_bg", style=style,
            ),
            "side": widgets.IntSlider(value=64, min=8, max=256, step=8, description="image side", style=style),
        }

    def build_figure(self, figure: Figure) -> None:
        map_axes = figure.add_axes((0.01, 0.06, 0.22, 0.76))
        # One RGBA image, coloured here (two colours and an outline): cheaper to redraw than a
        # colour-mapped image with an overlay.
        self._weight_image = map_axes.imshow(
            np.zeros((64, 64, 4), dtype=np.uint8), interpolation="nearest", extent=(0.0, 1.0, 1.0, 0.0)
        )
        map_axes.set_xticks([])
        map_axes.set_yticks([])
        map_axes.set_title("weight per pixel\n(white outline: foreground)", fontsize=9)
        bar_axes = figure.add_axes((0.235, 0.06, 0.01, 0.76))
        colorbar = figure.colorbar(ScalarMappable(norm=_NORM, cmap=_CMAP), cax=bar_axes)
        colorbar.minorticks_off()
        colorbar.ax.yaxis.set_major_formatter(_PLAIN)
        bar_axes.tick_params(labelsize=8)

        self._loss_axes = figure.add_axes((0.34, 0.12, 0.29, 0.7))
        self._grad_axes = figure.add_axes((0.70, 0.12, 0.29, 0.7))
        self._bars: dict[tuple[str, str], Any] = {}
        self._labels: dict[tuple[str, str], Any] = {}
        self._reference: dict[str, Any] = {}
        positions = np.arange(len(REDUCTIONS))
        for panel, axes in (("loss", self._loss_axes), ("grad", self._grad_axes)):
            axes.set_yscale("log")
            bars = axes.bar(positions, np.ones(len(REDUCTIONS)), width=0.6,
                            color=[_COLORS[r] for r in REDUCTIONS], alpha=0.8)
            for reduction, bar, x in zip(REDUCTIONS, bars, positions):
                self._bars[panel, reduction] = bar
                self._labels[panel, reduction] = axes.text(x, 1.0, "", ha="center", va="bottom", fontsize=8)
            self._reference[panel] = axes.axhline(1.0, color="0.2", linestyle="--", linewidth=1.0)
            axes.set_xticks(positions, ["mean", "sum", "weighted\nmean"], fontsize=9)
            axes.set_xlim(-0.6, len(REDUCTIONS) - 0.4)
            # Decades only, labelled as plain numbers: minor ticks and mathtext labels would make every
            # full redraw several times slower.
            axes.set_ylim(*BAR_RANGE)
            axes.yaxis.set_major_locator(LogLocator(base=10.0, numticks=7))
            axes.yaxis.set_major_formatter(_PLAIN)
            axes.yaxis.set_minor_locator(NullLocator())
            axes.tick_params(axis="y", labelsize=8)
        self._loss_axes.set_title("loss (dashed: unweighted mean)", fontsize=10)
        self._grad_axes.set_title("gradient size Σ|∂L/∂x| (× unweighted)", fontsize=10)
        self.animate(self._weight_image, *self._bars.values(), *self._labels.values(), *self._reference.values())

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        side, foreground = int(values["side"]), float(values["foreground"])
        weight_fg, weight_bg = float(values["weight_fg"]), float(values["weight_bg"])
        target = disk_target(side, foreground)
        numbers_ = reduction_numbers(target, weight_fg, weight_bg)
        self._weight_image.set_data(weight_map_rgba(target.numpy() > 0.5, weight_fg, weight_bg))

        for panel in ("loss", "grad"):
            heights = [numbers_[f"{panel}_{r}"] for r in REDUCTIONS]
            reference = numbers_[f"{panel}_unweighted"]
            for reduction, height in zip(REDUCTIONS, heights):
                self._bars[panel, reduction].set_height(height)
                label = self._labels[panel, reduction]
                label.set_y(height * 1.15)
                text = format_number(height)
                if panel == "grad":
                    text = f"×{format_number(height / reference)}"
                label.set_text(text)
            self._reference[panel].set_ydata([reference, reference])

        readouts: dict[str, float] = {
            "pixels": side * side,
            "foreground_pixels": int(target.sum()),
            **numbers_,
        }
        for reduction in REDUCTIONS:
            readouts[f"lr_factor_{reduction}"] = numbers_[f"grad_{reduction}"] / numbers_["grad_unweighted"]
        return readouts

    @classmethod
    def example(cls) -> ReductionExplorer:
        return cls()

    def benchmark_changes(self) -> list[dict[str, Any]]:
        """Drags of every slider over its range, the large image included."""
        changes: list[dict[str, Any]] = []
        changes += [{"foreground": float(f)} for f in np.linspace(0.0, 1.0, 11)] + [{"foreground": 0.05}]
        weights = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
        changes += [{"weight_fg": w} for w in weights] + [{"weight_fg": 1.0}]
        changes += [{"weight_bg": w} for w in weights] + [{"weight_bg": 1.0}]
        changes += [{"side": s} for s in (8, 32, 128, 256, 64)]
        return changes
