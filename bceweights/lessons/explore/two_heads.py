"""``TwoHeadsExplorer``: one pixel of lesson 06's plates, read by a multi-label head (sigmoid + BCE over the
R, G, B channels) and by a single-label head (softmax + cross-entropy over the classes black, green,
blue, magenta), with the gradient each loss sends to each logit.

The two heads are the two models of lesson 06, section 1, at one pixel:

* Multi-label head: three logits ``x = (x_R, x_G, x_B)``, ``p_c = sigmoid(x_c)``, loss
  ``BCE = mean_c [ softplus(x_c) - m_c x_c ]`` for the target colour's channel membership ``m``
  (:data:`bceweights.lessons.data.PLATE_CLASSES`: magenta is ``m = (1, 0, 1)``). Each channel is its own
  yes/no question: magenta is "red: yes, blue: yes". Gradient ``dBCE/dx_c = (p_c - m_c) / 3`` (the 3
  is the mean over the channels): each channel's push depends on that channel only.
* Single-label head: four class logits ``z = (z_black, z_green, z_blue, z_magenta)``, ``z_black`` pinned
  at 0 (softmax only sees differences, so this loses nothing), ``q = softmax(z)``, loss
  ``CE = -log q_target``. Gradient ``dCE/dz_k = q_k - t_k`` (``t`` one-hot): the four pushes sum to 0,
  so raising the target class lowers the others. Magenta is a class of its own.

Both heads can approach a loss of 0 for each of the four colours; what differs is what the outputs
mean (channels that co-occur, or one class among four) and how the gradient is shared.
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

from bceweights.lessons.data import PLATE_CLASSES
from bceweights.lessons.explore.base import Explorer
from bceweights.lessons.explore.display import format_number
from bceweights.loss import bce_with_logits
from bceweights.messages import error_message

LOGIT_LIMIT = 10.0
CHANNELS = ("red", "green", "blue")
#: The single-label classes, in the order of lesson 06's 4-class model.
CLASSES = tuple(PLATE_CLASSES)
#: Channel membership (red, green, blue) of each target colour (the plate classes).
TARGET_COLOURS: dict[str, tuple[float, float, float]] = {
    name: tuple(float(v) for v in membership) for name, membership in PLATE_CLASSES.items()
}
#: Sliders of the single-label head: one per class but black, whose logit is pinned at 0.
CLASS_CONTROLS = tuple(f"z_{name}" for name in CLASSES[1:])
_INITIAL = {"red": 2.0, "green": -3.0, "blue": 2.0, "z_green": -3.0, "z_blue": 0.0, "z_magenta": 2.0}
_CHANNEL_COLOURS = {"red": "tab:red", "green": "tab:green", "blue": "tab:blue"}
_CLASS_COLOURS = {"black": "0.2", "green": "tab:green", "blue": "tab:blue", "magenta": "m"}


def single_label_target(colour: str) -> tuple[float, ...]:
    """The softmax head's one-hot target over :data:`CLASSES` (black, green, blue, magenta)."""
    return tuple(1.0 if name == colour else 0.0 for name in CLASSES)


def heads(logits: torch.Tensor, class_logits: torch.Tensor, colour: str) -> dict[str, torch.Tensor]:
    """Both heads against a target colour, in PyTorch (the explorer's plain-Python numbers are tested on it).

    Args:
        logits: multi-label channel logits ``(..., 3)`` (R, G, B).
        class_logits: single-label class logits ``(..., 4)`` (black, green, blue, magenta).
        colour: one of :data:`CLASSES`.

    Returns ``sigmoid`` ``(..., 3)``, ``softmax`` ``(..., 4)``, ``bce`` and ``ce`` ``(...)`` (BCE averaged
    over the 3 channels with :func:`bceweights.bce_with_logits`; ``F.cross_entropy``), and the gradients
    ``grad_bce`` ``(..., 3)`` and ``grad_ce`` ``(..., 4)`` of their sums, from autograd.
    """
    x = logits.detach().clone().requires_grad_(True)
    z = class_logits.detach().clone().requires_grad_(True)
    membership = torch.tensor(TARGET_COLOURS[colour], dtype=x.dtype).expand_as(x)
    bce = bce_with_logits(x, membership, reduction="none").mean(dim=-1)
    index = torch.full(z.shape[:-1], CLASSES.index(colour), dtype=torch.long)
    ce = F.cross_entropy(z.reshape(-1, len(CLASSES)), index.reshape(-1), reduction="none").view(bce.shape)
    grad_bce, grad_ce = torch.autograd.grad((bce.sum(), ce.sum()), (x, z))
    return {
        "sigmoid": torch.sigmoid(x.detach()), "softmax": z.detach().softmax(dim=-1), "bce": bce.detach(),
        "ce": ce.detach(), "grad_bce": grad_bce, "grad_ce": grad_ce,
    }


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
    """One pixel: multi-label sigmoid + BCE over R, G, B against single-label softmax + CE over the plate classes.

    Controls: ``red``, ``green``, ``blue`` (the multi-label head's channel logits, -10..10);
    ``z_green``, ``z_blue``, ``z_magenta`` (the single-label head's class logits, -10..10; ``z_black``
    is 0); ``target`` (black, green, blue, magenta).

    Readouts: ``p_red``, ``p_green``, ``p_blue`` (sigmoids); ``p_target`` (the multi-label head's
    probability of exactly the target colour, a product over the channels: for magenta
    ``p_red (1 - p_green) p_blue``); ``bce`` (mean over the channels); ``grad_bce_<channel>``
    (``dBCE/dx_c = (p_c - m_c) / 3``); ``q_black``, ``q_green``, ``q_blue``, ``q_magenta`` (softmax,
    ``q_target`` of the target class); ``ce``; ``grad_ce_<class>`` (``dCE/dz_k = q_k - t_k``; they
    sum to 0).

    Example::

        explorer = TwoHeadsExplorer()
        explorer.set(red=5.0, green=-5.0, blue=5.0, target="magenta")
        explorer.readouts["grad_bce_red"]      # about -0.002: red is already "yes"
    """

    title = "One pixel: channels R, G, B on their own (sigmoid + BCE) or one class of four (softmax + CE)"
    figsize = (9.6, 3.3)
    readout_labels = {
        "p_red": "multi-label p(R)",
        "p_green": "multi-label p(G)",
        "p_blue": "multi-label p(B)",
        "p_target": "multi-label p(exactly the target colour)",
        "bce": "BCE, mean over 3 channels",
        "grad_bce_red": "∂BCE/∂x_R",
        "grad_bce_green": "∂BCE/∂x_G",
        "grad_bce_blue": "∂BCE/∂x_B",
        "q_black": "single-label q(black)",
        "q_green": "single-label q(green)",
        "q_blue": "single-label q(blue)",
        "q_magenta": "single-label q(magenta)",
        "q_target": "single-label q(target class)",
        "ce": "cross-entropy",
        "grad_ce_black": "∂CE/∂z_black",
        "grad_ce_green": "∂CE/∂z_green",
        "grad_ce_blue": "∂CE/∂z_blue",
        "grad_ce_magenta": "∂CE/∂z_magenta",
    }

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "initial"}
        labels = {"red": "x_R", "green": "x_G", "blue": "x_B", "z_green": "z_green", "z_blue": "z_blue",
                  "z_magenta": "z_magenta"}
        sliders = {
            name: widgets.FloatSlider(
                value=value, min=-LOGIT_LIMIT, max=LOGIT_LIMIT, step=0.1, description=labels[name], style=style,
                layout=widgets.Layout(width="290px"),
            )
            for name, value in _INITIAL.items()
        }
        target = widgets.Dropdown(
            options=[("black (no channel)", "black"), ("green", "green"), ("blue", "blue"),
                     ("magenta (R + B)", "magenta")],
            value="magenta", description="target", style=style,
        )
        return {**sliders, "target": target}

    def build_figure(self, figure: Figure) -> None:
        self._ml_axes = figure.add_axes((0.055, 0.12, 0.27, 0.72))
        self._sl_axes = figure.add_axes((0.385, 0.12, 0.30, 0.72))
        self._grad_axes = figure.add_axes((0.745, 0.12, 0.245, 0.72))
        self._bars: dict[str, list[Any]] = {}
        self._targets: dict[str, Any] = {}
        self._loss_text: dict[str, Any] = {}
        for key, axes, names, colours, title in (
            ("ml", self._ml_axes, CHANNELS, _CHANNEL_COLOURS, "multi-label: sigmoid per channel"),
            ("sl", self._sl_axes, CLASSES, _CLASS_COLOURS, "single-label: softmax over 4 classes"),
        ):
            positions = np.arange(len(names), dtype=float)
            container = axes.bar(positions, np.zeros(len(names)), width=0.6, color=[colours[n] for n in names])
            self._bars[key] = list(container.patches)
            (self._targets[key],) = axes.plot(
                positions, np.zeros(len(names)), linestyle="none", marker="_", markersize=22, markeredgewidth=2.5,
                color="black", label="target",
            )
            self._loss_text[key] = axes.text(0.03, 0.96, "", transform=axes.transAxes, va="top", fontsize=9)
            axes.set_xticks(positions, [n if key == "sl" else n[0].upper() for n in names], fontsize=8)
            axes.set_xlim(-0.5, len(names) - 0.5)
            axes.set_ylim(0.0, 1.25)
            axes.set_yticks([0.0, 0.5, 1.0])
            axes.set_title(title, fontsize=9)
            axes.legend(loc="upper right", fontsize=7, frameon=False)
        self._ml_axes.set_ylabel("probability", labelpad=1)

        # Gradient of each loss with respect to each logit: fixed axes (|dBCE/dx| <= 1/3, |dCE/dz| <= 1).
        positions = np.r_[np.arange(3), np.arange(4) + 3.6]
        colours = [_CHANNEL_COLOURS[n] for n in CHANNELS] + [_CLASS_COLOURS[n] for n in CLASSES]
        self._grad_bars = list(self._grad_axes.bar(positions, np.zeros(7), width=0.6, color=colours).patches)
        self._grad_axes.axhline(0.0, color="0.3", linewidth=0.8)
        self._grad_axes.axvline(2.8, color="0.7", linewidth=0.8)
        self._grad_axes.set_xticks(positions, ["R", "G", "B", "bk", "g", "b", "m"], fontsize=8)
        self._grad_axes.set_xlim(-0.6, 7.2)
        self._grad_axes.set_ylim(-1.05, 1.05)
        self._grad_axes.set_yticks([-1.0, -0.5, 0.0, 0.5, 1.0])
        self._grad_axes.tick_params(axis="y", labelsize=8)
        self._grad_axes.text(1.0, -0.97, "∂BCE/∂x", ha="center", fontsize=8)
        self._grad_axes.text(5.1, -0.97, "∂CE/∂z", ha="center", fontsize=8)
        self._grad_axes.set_title("gradient per logit (< 0: pushed up)", fontsize=9)
        self.animate(*self._bars["ml"], *self._bars["sl"], *self._targets.values(), *self._loss_text.values(),
                     *self._grad_bars)

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        # Seven numbers: plain math is faster than torch here; the tests check it against heads().
        logits = [float(values[name]) for name in CHANNELS]
        class_logits = [0.0, *(float(values[name]) for name in CLASS_CONTROLS)]
        colour = str(values["target"])
        membership = TARGET_COLOURS[colour]
        one_hot = single_label_target(colour)
        p = [_sigmoid(x) for x in logits]
        bce = sum(_softplus(x) - m * x for x, m in zip(logits, membership)) / len(logits)
        grad_bce = [(pc - m) / len(logits) for pc, m in zip(p, membership)]
        top = max(class_logits)
        log_total = top + math.log(sum(math.exp(z - top) for z in class_logits))
        q = [math.exp(z - log_total) for z in class_logits]
        target_index = CLASSES.index(colour)
        ce = log_total - class_logits[target_index]
        grad_ce = [qk - tk for qk, tk in zip(q, one_hot)]
        p_target = math.prod(pc if m else 1.0 - pc for pc, m in zip(p, membership))

        for bar, height in zip(self._bars["ml"], p):
            bar.set_height(height)
        for bar, height in zip(self._bars["sl"], q):
            bar.set_height(height)
        for bar, height in zip(self._grad_bars, grad_bce + grad_ce):
            bar.set_height(height)
        self._targets["ml"].set_ydata(membership)
        self._targets["sl"].set_ydata(one_hot)
        self._loss_text["ml"].set_text(f"BCE = {format_number(bce)}")
        self._loss_text["sl"].set_text(f"CE = {format_number(ce)}")
        readouts: dict[str, float] = {f"p_{name}": pc for name, pc in zip(CHANNELS, p)}
        readouts["p_target"] = p_target
        readouts["bce"] = bce
        readouts.update({f"grad_bce_{name}": g for name, g in zip(CHANNELS, grad_bce)})
        readouts.update({f"q_{name}": qk for name, qk in zip(CLASSES, q)})
        readouts["q_target"] = q[target_index]
        readouts["ce"] = ce
        readouts.update({f"grad_ce_{name}": g for name, g in zip(CLASSES, grad_ce)})
        return readouts

    def readout_notes(self, values: dict[str, Any], readouts: Mapping[str, float]) -> list[str]:
        if values["target"] == "magenta":
            return [
                "Magenta: the multi-label head says yes to R and to B (two channels at once); the "
                "single-label head needs its own class for it."
            ]
        return []

    def benchmark_changes(self) -> list[dict[str, Any]]:
        """Drags each logit end to end and cycles the target colours, then back to the start."""
        changes: list[dict[str, Any]] = []
        for name, initial in _INITIAL.items():
            changes += [{name: float(x)} for x in np.linspace(-LOGIT_LIMIT, LOGIT_LIMIT, 11)]
            changes.append({name: initial})
        changes += [{"target": colour} for colour in CLASSES] + [{"target": "magenta"}]
        return changes
