"""``ThresholdExplorer``: trade precision for recall with ``pos_weight`` or with the decision threshold.

A model trained with ``pos_weight = p`` ends up (near its optimum) with logits shifted by ``log p``
against the same model trained without it (``bw.optimal_logit(q, p) = logit(q) + log p``). So the
explorer takes the logits ``x`` of *one* trained model, unweighted, and shows what the model
"retrained with ``p``" would predict at a decision threshold ``t``:

    predict positive  ⇔  sigmoid(x + log p) >= t  ⇔  x >= logit(t) - log p

Only the difference ``logit(t) - log p`` (the cut on the original logits) matters: moving the
threshold by the logit shift ``log p`` gives the operating point of training with ``p``. The
precision-recall curve itself never moves (a shift of every logit keeps their order); only the
operating point slides along it.

Panels: the distributions of the shifted logits of the negative and positive pixels with the
decision boundary ``logit(t)``; the gradient of the weighted loss per pixel against the logit; the
precision-recall curve with the operating point (and, when given, the points measured on models
actually retrained with some ``pos_weight``, at ``t = 0.5``).

The gradient of ``l = -[p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]`` is
``dl/dx = -p (1 - sigmoid(x))`` on a positive and ``sigmoid(x)`` on a negative: ``pos_weight`` multiplies
every positive's push by ``p``; the threshold does not enter the loss at all. Summed over the pixels,
the positives' share of the total push ``sum |dl/dx|`` tells where training goes next: about 1/2 means
the pushes up and down balance (the bias is at rest). At the unweighted model's logits that share is
about 1/2 for ``p = 1`` and ``p / (1 + p)`` for any ``p`` (training moves on); at the logits shifted
by ``log p`` it is back near 1/2 (for a calibrated model, exactly: ``p (1 - sigmoid(x + log p)) q =
sigmoid(x + log p) (1 - q)`` when ``q = sigmoid(x)``), which is why the shift is where training with
``p`` ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import special

from bceweights.lessons.explore.base import Explorer
from bceweights.lessons.explore.display import format_number
from bceweights.lessons.metrics import PRCurve, precision_recall_curve
from bceweights.messages import error_message

HISTOGRAM_BINS = 60
#: The gradient panel's log scale: ``|dl/dx|`` from this to above the largest pos_weight (100).
GRADIENT_RANGE = (1e-3, 300.0)
GRADIENT_POINTS = 200
_NEG_COLOR, _POS_COLOR = "tab:orange", "tab:blue"


def logit(probability: float) -> float:
    """``log(t / (1 - t))`` for ``0 < t < 1``."""
    return math.log(probability / (1.0 - probability))


def positive_gradient_share(logits: np.ndarray, target: np.ndarray, pos_weight: float) -> float:
    """Share of ``sum |dl/dx|`` of BCE with ``pos_weight`` carried by the positives, at these logits.

    ``p sum_pos (1 - sigmoid(x)) / (p sum_pos (1 - sigmoid(x)) + sum_neg sigmoid(x))``; 0 without pixels.
    """
    positive = target > 0.5
    push_up = float(pos_weight) * float(special.expit(-logits[positive]).sum())
    push_down = float(special.expit(logits[~positive]).sum())
    total = push_up + push_down
    return push_up / total if total > 0 else 0.0


def matching_threshold(pos_weight: float) -> float:
    """The threshold on an unweighted model's probability that matches ``pos_weight`` at ``t = 0.5``.

    ``sigmoid(x + log p) >= 0.5 ⇔ x >= -log p ⇔ sigmoid(x) >= 1 / (1 + p)``.
    """
    return 1.0 / (1.0 + float(pos_weight))


class ThresholdExplorer(Explorer):
    """Precision and recall of one trained model as ``pos_weight`` (a logit shift) and the threshold move.

    Args:
        logits: the model's logits on held-out data, any shape (flattened).
        target: 0/1 targets of the same shape.
        retrained: optional ``{p: (precision, recall)}`` measured on models trained with
            ``pos_weight=p`` at threshold 0.5, drawn as squares for comparison.
        **initial: initial control values (``pos_weight``, ``threshold``).

    Controls: ``pos_weight`` (log slider 0.01..100), ``threshold`` (0.01..0.99).

    Readouts: ``precision``, ``recall``, ``f1``, ``cut_logit`` (``logit(t) - log p``, the cut on the
    unweighted logits), ``unweighted_threshold`` (``sigmoid(cut_logit)``: the threshold the unweighted
    model needs for the same operating point), ``predicted_fraction`` (share of pixels predicted
    positive), ``average_precision`` (of the curve; it does not depend on the controls),
    ``grad_share_pos_start`` (the positives' share of the total gradient ``sum |dl/dx|`` of BCE with
    ``pos_weight`` at the unweighted logits: the first step of training with ``p``) and
    ``grad_share_pos_shifted`` (the same at the logits shifted by ``log p``: about 1/2, the pushes
    balance). Neither depends on the threshold.

    Example::

        explorer = ThresholdExplorer(logits, target)
        explorer.set(pos_weight=9, threshold=0.5)
        explorer.readouts["unweighted_threshold"]    # 0.1
    """

    title = "Operating point of one model: shift its logits by log(pos_weight), then threshold"
    figsize = (10.4, 3.5)
    readout_labels = {
        "precision": "precision",
        "recall": "recall",
        "f1": "F1",
        "cut_logit": "cut on the unweighted logits, logit(t) − log p",
        "unweighted_threshold": "same point on the unweighted model: threshold sigmoid(cut)",
        "predicted_fraction": "share of pixels predicted positive",
        "average_precision": "average precision (whole curve)",
        "grad_share_pos_start": "positives' share of the gradient Σ|∂ℓ/∂x|, unweighted logits",
        "grad_share_pos_shifted": "positives' share of the gradient, logits shifted by log p",
    }

    def __init__(
        self,
        logits: torch.Tensor | np.ndarray,
        target: torch.Tensor | np.ndarray,
        *,
        retrained: Mapping[float, tuple[float, float]] | None = None,
        **initial: Any,
    ) -> None:
        as_numpy = lambda t: np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64).ravel()  # noqa: E731
        self._logits = as_numpy(logits)
        self._target = as_numpy(target) > 0.5
        if self._logits.shape != self._target.shape:
            raise ValueError(error_message(
                f"logits has {self._logits.size} elements but target has {self._target.size}",
                "they pair up element by element.", "ThresholdExplorer(predict(model, val.images), val.masks)",
            ))
        if not np.all(np.isfinite(self._logits)):
            raise ValueError("logits contain NaN or infinity; pass the finite logits of a trained model.")
        self._curve: PRCurve = precision_recall_curve(self._logits, self._target)
        # Sorted logits: the share predicted positive at any cut by binary search.
        self._sorted_logits = np.sort(self._logits)
        self._retrained = dict(retrained or {})
        super().__init__(**initial)

    @classmethod
    def example(cls) -> ThresholdExplorer:
        """Logits of a calibrated model on 20 000 pixels with 5 % positives (no training needed)."""
        g = torch.Generator().manual_seed(0)
        target = (torch.rand(20_000, generator=g) < 0.05).float()
        logits = 2.0 * (2 * target - 1) + 1.6 * torch.randn(20_000, generator=g) - 2.5
        return cls(logits, target, retrained={3.0: (0.5, 0.8), 10.0: (0.3, 0.9)})

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "initial"}
        return {
            "pos_weight": widgets.FloatLogSlider(
                value=1.0, base=10, min=-2, max=2, step=0.01, description="pos_weight p (logit shift log p)",
                readout_format=".3g", style=style, layout=widgets.Layout(width="420px"),
            ),
            "threshold": widgets.FloatSlider(
                value=0.5, min=0.01, max=0.99, step=0.01, description="threshold t", style=style,
                layout=widgets.Layout(width="340px"),
            ),
        }

    def build_figure(self, figure: Figure) -> None:
        self._hist_axes = figure.add_axes((0.07, 0.14, 0.30, 0.76))
        self._grad_axes = figure.add_axes((0.43, 0.14, 0.25, 0.76))
        self._pr_axes = figure.add_axes((0.74, 0.14, 0.25, 0.76))

        # Histograms of the unshifted logits on fixed bins; a shift moves their x only.
        low, high = float(self._logits.min()), float(self._logits.max())
        if high - low < 1e-6:
            low, high = low - 1.0, high + 1.0
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
        self._edges = edges
        self._hist_y: dict[str, np.ndarray] = {}
        self._hist_lines: dict[str, Any] = {}
        for key, mask, color, label in (
            ("neg", ~self._target, _NEG_COLOR, "negative pixels"),
            ("pos", self._target, _POS_COLOR, "positive pixels"),
        ):
            counts, _ = np.histogram(self._logits[mask], bins=edges)
            share = counts / max(int(mask.sum()), 1)  # each class sums to 1: both visible at 1 % positives
            y = np.r_[share, share[-1]]
            self._hist_y[key] = y
            (self._hist_lines[key],) = self._hist_axes.step(edges, y, where="post", color=color, label=label)
        shift_max = math.log(100.0)
        self._hist_axes.set_xlim(low - shift_max - 0.5, high + shift_max + 0.5)
        top = max(float(y.max()) for y in self._hist_y.values())
        self._hist_axes.set_ylim(0.0, 1.12 * top if top > 0 else 1.0)
        self._boundary = self._hist_axes.axvline(0.0, color="crimson", linewidth=1.5, label="boundary logit(t)")
        self._hist_axes.set_xlabel("shifted logit x + log p", labelpad=1)
        self._hist_axes.set_ylabel("share of the class", labelpad=1)
        self._hist_axes.set_title("logits of each class; right of the line = positive", fontsize=9)
        self._hist_axes.legend(loc="upper right", fontsize=7, framealpha=0.9)

        # Per-pixel gradient of the weighted loss on fixed log axes: only the positives' curve moves (x p).
        self._grad_x = np.linspace(*self._hist_axes.get_xlim(), GRADIENT_POINTS)
        self._grad_axes.set_yscale("log")
        self._grad_axes.plot(
            self._grad_x, special.expit(self._grad_x), color=_NEG_COLOR, label="negative: σ(x)"
        )
        (self._grad_pos_line,) = self._grad_axes.plot(
            self._grad_x, special.expit(-self._grad_x), color=_POS_COLOR, label="positive: p (1 − σ(x))"
        )
        self._grad_axes.set_xlim(*self._hist_axes.get_xlim())
        self._grad_axes.set_ylim(*GRADIENT_RANGE)
        self._grad_axes.set_xlabel("logit x", labelpad=1)
        self._grad_axes.set_title("per-pixel gradient |∂ℓ/∂x| with pos_weight p", fontsize=9)
        self._grad_axes.legend(loc="lower left", fontsize=7, frameon=False)
        self._grad_axes.tick_params(axis="y", labelsize=8)
        self._share_text = self._grad_axes.text(
            0.98, 0.97, "", transform=self._grad_axes.transAxes, ha="right", va="top", fontsize=7, linespacing=1.3
        )

        self._pr_axes.plot(self._curve.recall, self._curve.precision, color="0.3", linewidth=1.5, label="PR curve")
        for p, (precision, recall) in sorted(self._retrained.items()):
            self._pr_axes.plot(
                [recall], [precision], linestyle="none", marker="s", markersize=7, markerfacecolor="none",
                markeredgecolor="tab:purple",
            )
            self._pr_axes.annotate(
                f"retrained p={format_number(p)}", (recall, precision), textcoords="offset points",
                xytext=(-6, -11), ha="right", fontsize=7, color="tab:purple",
            )
        (self._point,) = self._pr_axes.plot(
            [0.0], [1.0], linestyle="none", marker="o", markersize=9, color="crimson", label="operating point"
        )
        self._pr_axes.set_xlim(-0.02, 1.02)
        self._pr_axes.set_ylim(-0.02, 1.05)
        self._pr_axes.set_xlabel("recall", labelpad=1)
        self._pr_axes.set_ylabel("precision", labelpad=1)
        self._pr_axes.set_title("PR curve (fixed), operating point", fontsize=9)
        self._pr_axes.legend(loc="lower left", fontsize=7, frameon=False)
        self.animate(
            self._hist_lines["neg"], self._hist_lines["pos"], self._boundary, self._point, self._grad_pos_line,
            self._share_text,
        )

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        pos_weight, threshold = float(values["pos_weight"]), float(values["threshold"])
        shift = math.log(pos_weight)
        boundary = logit(threshold)
        cut = boundary - shift
        for key in ("neg", "pos"):
            self._hist_lines[key].set_data(self._edges + shift, self._hist_y[key])
        self._boundary.set_xdata([boundary, boundary])
        precision, recall = self._curve.at(cut)
        self._point.set_data([recall], [precision])
        n_below = int(np.searchsorted(self._sorted_logits, cut, side="left"))
        predicted_fraction = 1.0 - n_below / max(self._sorted_logits.size, 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        self._grad_pos_line.set_ydata(pos_weight * special.expit(-self._grad_x))
        share_start = positive_gradient_share(self._logits, self._target, pos_weight)
        share_shifted = positive_gradient_share(self._logits + shift, self._target, pos_weight)
        self._share_text.set_text(
            f"positives' share of Σ|∂ℓ/∂x|:\nunweighted logits {format_number(share_start)}\n"
            f"shifted by log p {format_number(share_shifted)}"
        )
        return {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "cut_logit": cut,
            "unweighted_threshold": 1.0 / (1.0 + math.exp(-cut)),
            "predicted_fraction": predicted_fraction,
            "average_precision": self._curve.average_precision(),
            "grad_share_pos_start": share_start,
            "grad_share_pos_shifted": share_shifted,
        }

    def readout_notes(self, values: dict[str, Any], readouts: Mapping[str, float]) -> list[str]:
        if readouts["predicted_fraction"] == 0.0:
            return ["Nothing is predicted positive: recall is 0 and precision is shown as 1 by convention."]
        return []

    def benchmark_changes(self) -> list[dict[str, Any]]:
        """Drags both sliders end to end, then back to the start."""
        changes: list[dict[str, Any]] = [{"pos_weight": float(p)} for p in np.logspace(-2, 2, 25)]
        changes.append({"pos_weight": 1.0})
        changes += [{"threshold": float(t)} for t in np.linspace(0.01, 0.99, 25)]
        changes.append({"threshold": 0.5})
        return changes
