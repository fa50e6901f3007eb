"""``FocalExplorer``: how ``gamma`` and ``alpha`` move the loss, and the gradient, away from easy pixels.

For a logit ``x``, target ``y`` and ``q = sigmoid(x)``, the probability given to the true class is
``q_t = q y + (1 - q)(1 - y)``. Binary cross-entropy is ``-log q_t``; the focal loss of Lin et al.
(2017), as :func:`bceweights.focal_bce_with_logits` computes it, multiplies it by ``(1 - q_t)**gamma``
and, optionally, by ``alpha_t = alpha y + (1 - alpha)(1 - y)``:

    l_focal = alpha_t (1 - q_t)**gamma (-log q_t)
    |d l_focal / d x| = alpha_t (1 - q_t)**gamma [ (1 - q_t) + gamma q_t (-log q_t) ]

(for BCE, ``gamma = 0`` and no ``alpha``, the gradient magnitude is ``1 - q_t``). A pixel the model
already gets right with ``q_t = 0.9`` keeps ``0.1**gamma`` of its BCE loss: 1 % at ``gamma = 2``.

On a segmentation most pixels are such easy background. The explorer's sample image (synthetic logits
that imitate a partly trained model on a 64x64 image with about 6 % foreground, :func:`focal_sample`) splits its
pixels into **easy** (``q_t >= 0.9``), **hard** (``q_t < 0.5``, misclassified) and the rest, and
shows which share of the total gradient magnitude each group carries under BCE and under the focal
loss. Under BCE the thousands of easy pixels carry about half of it; at ``gamma = 2`` almost none.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from scipy import ndimage, special

from bceweights.lessons.explore.base import Explorer
from bceweights.lessons.explore.display import format_number

#: q_t at or above this is an *easy* pixel; below HARD_BELOW a *hard* (misclassified) one.
EASY_FROM = 0.9
HARD_BELOW = 0.5
#: Top of the gradient panel: above the largest ``|dl/dx|`` for any gamma in [0, 5] (about 1.31).
GRADIENT_TOP = 1.4
#: Probabilities of the true class at which the curves are drawn.
CURVE_POINTS = 500
GROUPS = ("easy", "middle", "hard")
#: The gradient image's colour scale runs from this (relative to the largest pixel) to 1, log-spaced.
IMAGE_FLOOR = 1e-4
_GROUP_LABELS = {"easy": f"easy\nq_t ≥ {EASY_FROM}", "middle": "in between", "hard": f"hard\nq_t < {HARD_BELOW}"}


def focal_sample(size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic logits and targets ``(size, size)`` float64, made to look like a partly trained segmentation model's.

    Four discs (about 6 % of the pixels at ``size=64``) are the foreground. The logits follow the
    signed distance to the discs' edges, saturating at about ±4, plus Gaussian noise (std 1), plus three
    bright false-positive spots on the background: most background pixels are easy, the edges and
    the spots are hard.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    foreground = np.zeros((size, size), dtype=bool)
    for _ in range(4):
        cy, cx = rng.uniform(8, size - 8, 2)
        radius = rng.uniform(3.0, 6.0)
        foreground |= (rows - cy) ** 2 + (cols - cx) ** 2 < radius**2
    signed_distance = ndimage.distance_transform_edt(foreground) - ndimage.distance_transform_edt(~foreground)
    logits = 4.0 * np.tanh((signed_distance + 0.5) / 2.0) + rng.normal(0.0, 1.0, foreground.shape)
    for _ in range(3):
        cy, cx = rng.uniform(4, size - 4, 2)
        logits += 5.0 * np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * 2.0**2))
    return torch.from_numpy(logits), torch.from_numpy(foreground.astype(np.float64))


def focal_curves(
    margin: np.ndarray, gamma: float, alpha_t: np.ndarray | float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-element focal loss and gradient magnitude ``|d loss / d x|`` from the margin ``z_t``, any shape.

    The margin is the logit signed toward the true class, ``z_t = x`` for ``y = 1`` and ``-x`` for
    ``y = 0``, so ``q_t = sigmoid(z_t)``. Closed forms (NumPy: a few microseconds for an image,
    where PyTorch's thread pool can cost milliseconds on a busy machine; the tests check them
    against :func:`bceweights.focal_bce_with_logits` and autograd)::

        loss = alpha_t (1 - q_t)**gamma softplus(-z_t)                      # softplus(-z_t) = -log q_t
        |grad| = alpha_t (1 - q_t)**gamma [ (1 - q_t) + gamma q_t softplus(-z_t) ]
    """
    cross_entropy = np.logaddexp(0.0, -margin)
    prob_true = special.expit(margin)
    miss = special.expit(-margin)  # 1 - q_t without cancellation
    modulation = miss**gamma if gamma != 0 else np.ones_like(miss)
    loss = alpha_t * modulation * cross_entropy
    gradient = alpha_t * modulation * (miss + gamma * prob_true * cross_entropy)
    return loss, gradient


def gradient_shares(gradient_magnitude: np.ndarray, prob_true: np.ndarray) -> dict[str, float]:
    """Share of ``sum |gradient|`` carried by easy, middle and hard elements (by ``prob_true`` = q_t)."""
    total = float(gradient_magnitude.sum())
    easy = prob_true >= EASY_FROM
    hard = prob_true < HARD_BELOW
    groups = {"easy": easy, "middle": ~easy & ~hard, "hard": hard}
    if total == 0.0:
        return {name: 0.0 for name in groups}
    return {name: float(gradient_magnitude[mask].sum()) / total for name, mask in groups.items()}


def _alpha_t(target: np.ndarray, alpha: float | None) -> np.ndarray | float:
    return 1.0 if alpha is None else alpha * target + (1.0 - alpha) * (1.0 - target)


def easy_share(gamma: float, alpha: float | None = None, size: int = 64, seed: int = 0) -> float:
    """Share of the total gradient magnitude carried by easy pixels (q_t >= 0.9) of :func:`focal_sample`."""
    logits, target = (t.numpy() for t in focal_sample(size, seed))
    margin = logits * (2.0 * target - 1.0)
    _, gradient = focal_curves(margin, gamma, _alpha_t(target, alpha))
    return gradient_shares(gradient, special.expit(margin))["easy"]


class FocalExplorer(Explorer):
    """Focal loss against BCE: curves over the probability of the true class, and gradient shares.

    Controls: ``gamma`` (0..5), ``use_alpha`` (checkbox), ``alpha`` (0..1, used when ``use_alpha``).

    Readouts: ``loss_ratio_easy`` and ``grad_ratio_easy`` (focal / BCE at q_t = 0.9 for a positive),
    ``easy_share_bce``, ``easy_share_focal``, ``hard_share_bce``, ``hard_share_focal`` (share of the
    sample image's total gradient magnitude carried by easy / hard pixels), ``easy_pixels`` and
    ``hard_pixels`` (counts, fixed by the sample).

    Example::

        explorer = FocalExplorer()
        explorer.set(gamma=2.0)
        explorer.readouts["easy_share_focal"]   # about 0.01
    """

    title = "Focal loss vs BCE: per-pixel curves over q_t (left) and where the gradient of a sample image goes (right)"
    figsize = (10.4, 3.3)
    readout_labels = {
        "loss_ratio_easy": "focal / BCE loss at q_t = 0.9 (y = 1)",
        "grad_ratio_easy": "focal / BCE gradient at q_t = 0.9 (y = 1)",
        "easy_share_bce": "share of gradient on easy pixels, BCE",
        "easy_share_focal": "share of gradient on easy pixels, focal",
        "hard_share_bce": "share of gradient on hard pixels, BCE",
        "hard_share_focal": "share of gradient on hard pixels, focal",
        "easy_pixels": f"easy pixels (q_t ≥ {EASY_FROM})",
        "hard_pixels": f"hard pixels (q_t < {HARD_BELOW})",
    }

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "initial"}
        return {
            "gamma": widgets.FloatSlider(
                value=2.0, min=0.0, max=5.0, step=0.1, description="gamma γ", style=style
            ),
            "use_alpha": widgets.Checkbox(value=False, description="balance with alpha", indent=False),
            "alpha": widgets.FloatSlider(
                value=0.25, min=0.0, max=1.0, step=0.01, description="alpha α", style=style
            ),
        }

    def build_figure(self, figure: Figure) -> None:
        # Curves over q_t on a uniform grid; the margin z_t = logit(q_t) is the same for y = 1 and y = 0.
        self._q = np.linspace(0.5 / CURVE_POINTS, 1 - 0.5 / CURVE_POINTS, CURVE_POINTS)
        self._curve_margin = special.logit(self._q)
        self._curve_targets = np.array([[1.0], [0.0]])  # rows y = 1, y = 0
        self._easy_margin = np.array([special.logit(EASY_FROM)])
        self._easy_bce_loss, self._easy_bce_grad = (float(v[0]) for v in focal_curves(self._easy_margin, 0.0))
        self._bce_loss, self._bce_grad = focal_curves(self._curve_margin, 0.0)

        # Sample image: BCE shares once; focal shares on every update.
        logits, target = focal_sample()
        self._target = target.numpy()
        self._margin = logits.numpy() * (2.0 * self._target - 1.0)
        self._prob_true = special.expit(self._margin)
        _, bce_image_grad = focal_curves(self._margin, 0.0)
        self._bce_shares = gradient_shares(bce_image_grad, self._prob_true)
        self._counts = {
            "easy_pixels": int((self._prob_true >= EASY_FROM).sum()),
            "hard_pixels": int((self._prob_true < HARD_BELOW).sum()),
        }

        grid = figure.add_gridspec(
            1, 4, width_ratios=[1.0, 1.0, 0.8, 1.0], left=0.04, right=0.99, bottom=0.2, top=0.86, wspace=0.42
        )
        self._loss_axes = figure.add_subplot(grid[0])
        self._grad_axes = figure.add_subplot(grid[1])
        self._image_axes = figure.add_subplot(grid[2])
        self._bar_axes = figure.add_subplot(grid[3])
        q = self._q
        self._lines: dict[tuple[str, str], Any] = {}
        for panel, axes, reference in (
            ("loss", self._loss_axes, self._bce_loss),
            ("grad", self._grad_axes, self._bce_grad),
        ):
            axes.plot(q, reference, color="0.45", linewidth=1.2, linestyle="--", label="BCE")
            (self._lines[panel, "pos"],) = axes.plot(q, reference, color="tab:blue", linewidth=2.0, label="focal, y = 1")
            (self._lines[panel, "neg"],) = axes.plot(
                q, reference, color="tab:orange", linewidth=1.4, linestyle=(0, (4, 2)), label="focal, y = 0"
            )
            axes.axvspan(EASY_FROM, 1.0, color="tab:green", alpha=0.08, zorder=0)
            axes.axvspan(0.0, HARD_BELOW, color="tab:red", alpha=0.06, zorder=0)
            axes.set_xlim(0.0, 1.0)
            axes.set_xlabel("q_t, probability of the true class")
            axes.grid(alpha=0.25)
        self._loss_axes.set_ylim(0.0, 4.0)
        # Fixed: the largest gradient magnitude over gamma in [0, 5] is about 1.31 (at small q_t), so
        # the axes never change and every update is a blit.
        self._grad_axes.set_ylim(0.0, GRADIENT_TOP)
        self._loss_axes.set_title("per-pixel loss", fontsize=10)
        self._grad_axes.set_title("gradient magnitude |dl/dx|", fontsize=10)
        self._loss_axes.legend(loc="upper right", fontsize=8, framealpha=0.9)

        self._image = self._image_axes.imshow(
            np.full(self._target.shape, IMAGE_FLOOR), cmap="magma", norm=LogNorm(IMAGE_FLOOR, 1.0),
            interpolation="nearest",
        )
        figure.colorbar(self._image, ax=self._image_axes, fraction=0.046, pad=0.03, ticks=[1e-4, 1e-2, 1.0])
        self._image_axes.contour(self._target, levels=[0.5], colors="cyan", linewidths=0.6)
        self._image_axes.set_xticks([])
        self._image_axes.set_yticks([])
        self._image_axes.set_title("focal |gradient| per pixel\n(relative to the largest; log)", fontsize=9)

        positions = np.arange(len(GROUPS))
        width = 0.38
        self._bar_axes.bar(
            positions - width / 2, [self._bce_shares[g] for g in GROUPS], width, color="0.6", label="BCE"
        )
        self._focal_bars = self._bar_axes.bar(
            positions + width / 2, np.zeros(len(GROUPS)), width, color="tab:purple", label="focal"
        )
        self._bar_axes.set_xticks(positions, [_GROUP_LABELS[g] for g in GROUPS], fontsize=8)
        self._bar_axes.set_ylim(0.0, 1.0)
        self._bar_axes.set_title("share of total |gradient|", fontsize=10)
        self._bar_axes.legend(loc="upper left", fontsize=8)
        self._bar_axes.grid(axis="y", alpha=0.25)
        self.animate(*self._lines.values(), self._image, *self._focal_bars)

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        gamma = float(values["gamma"])
        alpha = float(values["alpha"]) if values["use_alpha"] else None

        loss, gradient = focal_curves(self._curve_margin, gamma, _alpha_t(self._curve_targets, alpha))
        loss, gradient = np.broadcast_arrays(loss, gradient, self._curve_targets)[:2]  # (2, CURVE_POINTS)
        for row, key in ((0, "pos"), (1, "neg")):
            self._lines["loss", key].set_ydata(loss[row])
            self._lines["grad", key].set_ydata(gradient[row])

        _, image_gradient = focal_curves(self._margin, gamma, _alpha_t(self._target, alpha))
        largest = float(image_gradient.max())
        relative = image_gradient / largest if largest > 0 else image_gradient
        self._image.set_data(np.maximum(relative, IMAGE_FLOOR))
        shares = gradient_shares(image_gradient, self._prob_true)
        for bar, group in zip(self._focal_bars, GROUPS):
            bar.set_height(shares[group])

        easy_loss, easy_grad = focal_curves(self._easy_margin, gamma, 1.0 if alpha is None else alpha)
        return {
            "loss_ratio_easy": float(easy_loss[0]) / self._easy_bce_loss,
            "grad_ratio_easy": float(easy_grad[0]) / self._easy_bce_grad,
            "easy_share_bce": self._bce_shares["easy"],
            "easy_share_focal": shares["easy"],
            "hard_share_bce": self._bce_shares["hard"],
            "hard_share_focal": shares["hard"],
            **self._counts,
        }

    def readout_notes(self, values: dict[str, Any], readouts: dict[str, float]) -> list[str]:
        notes = []
        if values["gamma"] == 0 and not values["use_alpha"]:
            notes.append("gamma = 0 without alpha: the focal loss is exactly BCE (the curves overlap).")
        if values["use_alpha"] and values["alpha"] in (0.0, 1.0):
            side = "positives" if values["alpha"] == 0.0 else "negatives"
            notes.append(f"alpha = {format_number(values['alpha'])}: every {side[:-1]} pixel gets weight 0; the {side} are not learned at all.")
        return notes

    def benchmark_changes(self) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = [{"gamma": g} for g in (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 2.0)]
        changes.append({"use_alpha": True})
        changes += [{"alpha": a} for a in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 0.25)]
        changes.append({"use_alpha": False})
        return changes
