"""``TwoHeadsExplorer``: one pixel's three logits read as multi-label (sigmoid + BCE) and as single-label
(softmax + cross-entropy).

The pixel has logits ``x = (x_red, x_green, x_blue)``.

* Multi-label head: each channel is its own yes/no question, ``p_c = sigmoid(x_c)``, loss
  ``BCE = mean_c [ softplus(x_c) - m_c x_c ]`` for the target's channel membership ``m`` (magenta is
  ``m = (1, 0, 1)``). The channels never compete: every ``p_c`` can be near 1 at once.
* Single-label head: the classes none, red, green, blue share one softmax over the logits
  ``(0, x_red, x_green, x_blue)`` (the "none" logit is pinned at 0; softmax only sees differences), so
  ``q`` sums to 1 and raising one class lowers the others. Loss ``CE = -sum_k t_k log q_k``. Magenta
  is not one of its classes: the best it can do is split, ``t = (0, 1/2, 0, 1/2)``, and its loss
  cannot go below the entropy of that target, ``log 2 = 0.6931``.

With a single channel the two heads agree exactly: ``softmax(0, x)_1 = sigmoid(x)``; in the explorer,
push green and blue to -10 and compare ``p_red`` with ``q_red``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from bceweights.lessons.explore.base import Explorer
from bceweights.lessons.explore.display import format_number
from bceweights.loss import bce_with_logits
from bceweights.messages import error_message

LOGIT_LIMIT = 10.0
CHANNELS = ("red", "green", "blue")
CLASSES = ("none", "red", "green", "blue")
#: Channel membership (red, green, blue) of each target colour.
TARGET_COLOURS: dict[str, tuple[float, float, float]] = {
    "black": (0.0, 0.0, 0.0),
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
}
_BAR_COLOURS = {"none": "0.25", "red": "tab:red", "green": "tab:green", "blue": "tab:blue"}


def single_label_target(colour: str) -> tuple[float, float, float, float]:
    """The softmax head's target over (none, red, green, blue): the membership spread evenly, none if empty."""
    membership = TARGET_COLOURS[colour]
    total = sum(membership)
    if total == 0:
        return (1.0, 0.0, 0.0, 0.0)
    return (0.0, *(m / total for m in membership))


def heads(logits: torch.Tensor, colour: str) -> dict[str, torch.Tensor]:
    """Both heads on logits ``(..., 3)`` against a target colour.

    Returns ``sigmoid`` ``(..., 3)``, ``softmax`` ``(..., 4)`` (none, red, green, blue), ``bce`` and
    ``ce`` ``(...)``: BCE averaged over the 3 channels (:func:`bceweights.bce_with_logits`) and
    cross-entropy with the soft target of :func:`single_label_target` (``F.cross_entropy``).
    """
    membership = torch.tensor(TARGET_COLOURS[colour], dtype=logits.dtype).expand_as(logits)
    bce = bce_with_logits(logits, membership, reduction="none").mean(dim=-1)
    class_logits = torch.cat([torch.zeros_like(logits[..., :1]), logits], dim=-1)
    target = torch.tensor(single_label_target(colour), dtype=logits.dtype).expand_as(class_logits)
    ce = F.cross_entropy(class_logits.reshape(-1, 4), target.reshape(-1, 4), reduction="none").view(bce.shape)
    return {"sigmoid": torch.sigmoid(logits), "softmax": class_logits.softmax(dim=-1), "bce": bce, "ce": ce}


def class_weights_as_bce(class_weights: tuple[float, float]) -> dict[str, float]:
    """Two-logit cross-entropy class weights ``(w_neg, w_pos)`` as BCE arguments on one logit.

    Per element, ``w_y * CE(y; (0, x)) = w_neg * [ (w_pos / w_neg) y softplus(-x) + (1 - y) softplus(x) ]``:
    ``weight = w_neg`` and ``pos_weight = w_pos / w_neg``. (``reduction="mean"`` still differs: CE
    divides by the sum of the targets' weights, BCE by the number of elements.)
    """
    w_neg, w_pos = (float(w) for w in class_weights)
    if w_neg <= 0:
        raise ValueError(error_message(
            f"class_weights[0] (negatives) = {w_neg} must be > 0 for the pos_weight form.",
            fixes="weight = w_neg + (w_pos - w_neg) * target", lead="Write instead a per-element weight map",
        ))
    return {"weight": w_neg, "pos_weight": w_pos / w_neg}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _softplus(x: float) -> float:
    """``log(1 + e^x)`` without overflow."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


class TwoHeadsExplorer(Explorer):
    """One pixel, three logits: multi-label sigmoid + BCE against single-label softmax + cross-entropy.

    Controls: ``red``, ``green``, ``blue`` (logits, -10..10) and ``target`` (black, red, green, blue,
    magenta).

    Readouts: ``p_red``, ``p_green``, ``p_blue`` (sigmoids), ``q_none``, ``q_red``, ``q_green``,
    ``q_blue`` (softmax), ``bce`` (mean over the channels), ``ce``, ``ce_floor`` (the lowest CE any
    logits can reach for this target: 0, or log 2 for magenta), ``p_red_and_blue`` (multi-label
    probability that the pixel is red and blue, ``p_red * p_blue``; the single-label head has no such
    outcome).
    """

    title = "One pixel, three logits: each channel on its own (sigmoid + BCE) or one class among four (softmax + CE)"
    figsize = (9.6, 3.4)
    readout_labels = {
        "p_red": "multi-label p(red)",
        "p_green": "multi-label p(green)",
        "p_blue": "multi-label p(blue)",
        "p_red_and_blue": "multi-label p(red and blue) = magenta",
        "bce": "BCE, mean over 3 channels",
        "q_none": "single-label q(none)",
        "q_red": "single-label q(red)",
        "q_green": "single-label q(green)",
        "q_blue": "single-label q(blue)",
        "ce": "cross-entropy",
        "ce_floor": "lowest cross-entropy reachable for this target",
    }

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "initial"}
        sliders = {
            name: widgets.FloatSlider(
                value=value, min=-LOGIT_LIMIT, max=LOGIT_LIMIT, step=0.1, description=f"{name} logit", style=style,
                layout=widgets.Layout(width="300px"),
            )
            for name, value in zip(CHANNELS, (2.0, -3.0, 2.0))
        }
        target = widgets.Dropdown(
            options=[
                ("black (no channel)", "black"),
                ("red", "red"),
                ("green", "green"),
                ("blue", "blue"),
                ("magenta (red + blue)", "magenta"),
            ],
            value="magenta",
            description="target",
            style=style,
        )
        return {**sliders, "target": target}

    def build_figure(self, figure: Figure) -> None:
        self._ml_axes = figure.add_axes((0.06, 0.13, 0.40, 0.74))
        self._sl_axes = figure.add_axes((0.57, 0.13, 0.41, 0.74))
        self._bars: dict[str, list[Rectangle]] = {}
        self._targets: dict[str, Any] = {}
        self._swatches: dict[str, Rectangle] = {}
        self._loss_text: dict[str, Any] = {}
        # Static: changes only with the target (then a full draw), so it is not redrawn on every drag.
        self._floor_text: dict[str, Any] = {}
        self._shown_target: str | None = None
        for key, axes, names, title in (
            ("ml", self._ml_axes, CHANNELS, "multi-label: sigmoid per channel + BCE"),
            ("sl", self._sl_axes, CLASSES, "single-label: softmax over 4 classes + CE"),
        ):
            positions = np.arange(len(names), dtype=float)
            container = axes.bar(positions, np.zeros(len(names)), width=0.6, color=[_BAR_COLOURS[n] for n in names])
            self._bars[key] = list(container.patches)
            (self._targets[key],) = axes.plot(
                positions, np.zeros(len(names)), linestyle="none", marker="_", markersize=26, markeredgewidth=2.5,
                color="black", label="target",
            )
            swatch_x = len(names) - 0.3
            self._swatches[key] = Rectangle((swatch_x, 0.35), 0.9, 0.3, facecolor="black", edgecolor="0.5")
            axes.add_patch(self._swatches[key])
            axes.text(swatch_x + 0.45, 0.7, "pixel colour", ha="center", fontsize=7)
            self._loss_text[key] = axes.text(0.02, 0.97, "", transform=axes.transAxes, va="top", fontsize=9)
            self._floor_text[key] = axes.text(0.02, 0.88, "", transform=axes.transAxes, va="top", fontsize=7, color="0.35")
            axes.set_xticks(positions, names)
            axes.set_xlim(-0.5, len(names) + 0.75)
            axes.set_ylim(0.0, 1.18)
            axes.set_yticks([0.0, 0.5, 1.0])
            axes.set_title(title, fontsize=9)
            axes.legend(loc="upper right", fontsize=7, frameon=False)
        self._ml_axes.set_ylabel("probability", labelpad=1)
        self.animate(
            *self._bars["ml"], *self._bars["sl"], *self._targets.values(), *self._swatches.values(),
            *self._loss_text.values(),
        )

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        # Three numbers: plain math is faster than torch here; the tests check it against heads().
        logits = [float(values[name]) for name in CHANNELS]
        colour = str(values["target"])
        membership = TARGET_COLOURS[colour]
        single_target = single_label_target(colour)
        p = [_sigmoid(x) for x in logits]
        bce = sum(_softplus(x) - m * x for x, m in zip(logits, membership)) / len(logits)
        class_logits = [0.0, *logits]
        top = max(class_logits)
        log_total = top + math.log(sum(math.exp(z - top) for z in class_logits))
        q = [math.exp(z - log_total) for z in class_logits]
        ce = -sum(t * (z - log_total) for t, z in zip(single_target, class_logits))
        ce_floor = max(0.0, -sum(t * math.log(t) for t in single_target if t > 0))  # no "-0" for one-hot
        if colour != self._shown_target:
            self._floor_text["ml"].set_text("lowest possible BCE: 0")
            self._floor_text["sl"].set_text(f"lowest possible CE: {format_number(ce_floor)}")
            self._shown_target = colour
            self.static_version += 1

        for bar, height in zip(self._bars["ml"], p):
            bar.set_height(height)
        for bar, height in zip(self._bars["sl"], q):
            bar.set_height(height)
        self._targets["ml"].set_ydata(TARGET_COLOURS[colour])
        self._targets["sl"].set_ydata(single_target)
        self._swatches["ml"].set_facecolor(tuple(p))
        self._swatches["sl"].set_facecolor((q[1], q[2], q[3]))  # "none" adds black
        self._loss_text["ml"].set_text(f"BCE = {format_number(bce)}")
        self._loss_text["sl"].set_text(f"CE = {format_number(ce)}")
        return {
            "p_red": p[0],
            "p_green": p[1],
            "p_blue": p[2],
            "p_red_and_blue": p[0] * p[2],
            "bce": bce,
            "q_none": q[0],
            "q_red": q[1],
            "q_green": q[2],
            "q_blue": q[3],
            "ce": ce,
            "ce_floor": ce_floor,
        }

    def readout_notes(self, values: dict[str, Any], readouts: Mapping[str, float]) -> list[str]:
        if values["target"] == "magenta":
            return [
                "Magenta is two labels at once. The multi-label head can say yes to both (BCE → 0); the "
                "softmax head must share one unit of probability between red and blue, so its loss stays "
                "at or above log 2."
            ]
        return []

    def benchmark_changes(self) -> list[dict[str, Any]]:
        """Drags each logit end to end and cycles the target colours, then back to the start."""
        changes: list[dict[str, Any]] = []
        for name, initial in zip(CHANNELS, (2.0, -3.0, 2.0)):
            changes += [{name: float(x)} for x in np.linspace(-LOGIT_LIMIT, LOGIT_LIMIT, 11)]
            changes.append({name: initial})
        changes += [{"target": colour} for colour in TARGET_COLOURS] + [{"target": "magenta"}]
        return changes
