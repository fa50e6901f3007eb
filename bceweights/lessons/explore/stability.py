"""``StabilityExplorer``: ``sigmoid`` + ``BCELoss`` against the logits form, over logit magnitude and dtype.

Three ways to compute binary cross-entropy of a logit ``x`` against a 0/1 target ``y``:

* the logits form, ``F.binary_cross_entropy_with_logits(x, y)`` (``nn.BCEWithLogitsLoss``, and
  :func:`bceweights.bce_with_logits`): ``(1 - y) x + softplus(-x)``, computed without ever forming
  ``sigmoid(x)``, so it is accurate for every ``x`` and every dtype; its gradient is ``sigmoid(x) - y``;
* ``F.binary_cross_entropy(torch.sigmoid(x), y)`` (``nn.BCELoss`` after a sigmoid): ``sigmoid(x)`` rounds
  to exactly 1 once ``x`` passes a few units (about 17 in float32, 8 in float16), ``log(1 - 1)`` is
  ``-inf``, and PyTorch clamps every log at ``-100``: the loss of a confidently wrong element jumps to
  100 and its gradient becomes 0 (float32) or NaN (float16: the backward's ``1e-12`` guard underflows).
  At the other end the loss stays right, but the backward divides by ``max(p (1 - p), 1e-12)``, so below
  ``x = log(1e-12)``, about -27.6, a target-1 element's gradient shrinks like ``-exp(x) * 1e12``;
* by hand, ``-(y log(sigmoid(x)) + (1 - y) log(1 - sigmoid(x)))``: no clamp, so ``inf`` for a
  confidently wrong element and ``0 * -inf = NaN`` for a confidently *right* one.

Non-finite values are not drawn as lines: they appear as markers along the top edge of each panel.
"""

from __future__ import annotations

import functools
import html
import math
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bceweights.lessons.explore.base import Explorer
from bceweights.lessons.explore.controls import one_thread, sticky_limit
from bceweights.lessons.explore.display import format_number

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
#: The three computations, in drawing order, with their legend labels.
FORMS: dict[str, str] = {
    "logits": "BCEWithLogitsLoss (logits form)",
    "sigmoid_bce": "sigmoid, then BCELoss",
    "by_hand": "by hand: −(y log σ + (1−y) log(1−σ))",
}
#: Shorter legend labels (the figure is narrow).
_LEGEND = {"logits": "logits form", "sigmoid_bce": "sigmoid + BCELoss", "by_hand": "by hand"}
_STYLES = {
    "logits": {"color": "tab:blue", "linewidth": 2.2},
    "sigmoid_bce": {"color": "tab:orange", "linewidth": 1.8, "linestyle": "--"},
    "by_hand": {"color": "tab:green", "linewidth": 1.6, "linestyle": ":"},
}
LOGIT_LIMIT = 100.0
#: The x-range shown while the probe stays inside it (where float16 and float32 saturate).
NEAR_LIMIT = 20.0
GRID_POINTS = 801
#: PyTorch's BCELoss clamps each log at this value, so one element's loss is at most 100.
LOG_CLAMP = -100.0
#: At most this many non-finite markers per curve (every k-th point beyond).
MAX_MARKERS = 24
#: Non-finite markers of each form sit in their own row below the top edge (0 = the edge).
MARKER_ROWS = {"by_hand": 0, "sigmoid_bce": 1, "logits": 2}
GRAD_TOP = 1.5
#: A gradient further than this from the exact ``sigmoid(x) - y`` counts as wrong.
WRONG_GRADIENT_TOLERANCE = 0.01
PROBE_LABELS = {"exact": "exact (float64)", **FORMS}


def loss_and_gradient(
    form: str, logits: torch.Tensor, target: float, dtype: torch.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Per-element loss and d loss / d logit of one of :data:`FORMS`, computed in ``dtype``.

    Args:
        form: ``"logits"``, ``"sigmoid_bce"`` or ``"by_hand"``.
        logits: ``(P,)`` logits (any floating dtype; cast to ``dtype`` first, as a model in that
            precision would produce them).
        target: ``y``, 0 or 1 (any value in ``[0, 1]`` works).
        dtype: the precision of the whole computation.

    Returns:
        ``(loss, gradient)``, each ``(P,)`` float64 NumPy arrays; they may hold ``inf`` or ``NaN``, which
        is the point.
    """
    x = logits.detach().to(dtype).requires_grad_(True)
    y = torch.full_like(x, target)
    with one_thread():
        if form == "logits":
            loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        elif form == "sigmoid_bce":
            loss = F.binary_cross_entropy(torch.sigmoid(x), y, reduction="none")
        elif form == "by_hand":
            probability = torch.sigmoid(x)
            loss = -(y * torch.log(probability) + (1 - y) * torch.log(1 - probability))
        else:
            raise ValueError(f"form={form!r} is not one of {', '.join(map(repr, FORMS))}.")
        (gradient,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach().double().numpy(), gradient.double().numpy()


def wrong_share(gradient: np.ndarray, exact: np.ndarray, tolerance: float = WRONG_GRADIENT_TOLERANCE) -> float:
    """Share of the points where ``gradient`` is NaN, infinite, or off the exact one by more than ``tolerance``."""
    wrong = ~np.isfinite(gradient) | (np.abs(np.nan_to_num(gradient) - exact) > tolerance)
    return float(wrong.mean())


def exact_loss(x: float, target: float) -> float:
    """The exact loss, in float64 closed form: ``(1 - y) x + log(1 + exp(-x))``."""
    return (1.0 - target) * x + (max(-x, 0.0) + math.log1p(math.exp(-abs(x))))


def exact_gradient(x: float, target: float) -> float:
    """The exact gradient ``sigmoid(x) - y`` in float64."""
    sigmoid = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
    return sigmoid - target


@functools.lru_cache(maxsize=None)
def saturation_logit(dtype_name: str) -> float:
    """Smallest logit (to 0.01) at which ``torch.sigmoid`` in this dtype returns exactly 1.0.

    Beyond it ``1 - sigmoid(x)`` is 0 and ``log(1 - sigmoid(x))`` is ``-inf``: float16 about 8.3,
    bfloat16 about 6.24, float32 about 16.6, float64 about 36.7.
    """
    grid = torch.arange(0.0, 60.0, 0.01, dtype=torch.float64)
    with one_thread():
        saturated = torch.sigmoid(grid.to(DTYPES[dtype_name])) == 1
    return float(grid[saturated][0]) if bool(saturated.any()) else math.inf


class StabilityExplorer(Explorer):
    """Loss and gradient against the logit for the logits form, sigmoid + BCELoss and the formula by hand.

    Controls: ``logit`` (the probe, -100..100), ``dtype`` (``"float64"``, ``"float32"``,
    ``"bfloat16"``, ``"float16"``), ``target`` (0.0 or 1.0).

    Readouts (finite numbers): ``sigmoid`` and ``one_minus_sigmoid`` at the probe in the chosen dtype
    (the latter 0 once saturated), ``saturation_logit`` for the dtype, ``loss_exact`` and ``grad_exact`` at
    the probe, and ``wrong_gradients_<form>``: the share of the plotted logits where that form's gradient
    is NaN, infinite or off the exact one by more than :data:`WRONG_GRADIENT_TOLERANCE`.

    ``probe`` maps ``"exact"`` and each form to ``(loss, gradient)`` at the probe: these may be ``inf`` or
    ``nan`` (that is the lesson), so they are kept out of ``readouts``; ``print_probe()`` prints them and
    the widget shows them in a table under the readouts.

    Example::

        explorer = StabilityExplorer(dtype="float32", target=0.0)
        explorer.set(logit=20)
        explorer.probe["sigmoid_bce"]     # (100.0, 0.0): clamped loss, vanished gradient
    """

    title = "Binary cross-entropy at large logits: the logits form against sigmoid + BCELoss"
    figsize = (9.6, 3.5)
    readout_labels = {
        "sigmoid": "sigmoid(x) in this dtype",
        "one_minus_sigmoid": "1 − sigmoid(x) in this dtype",
        "saturation_logit": "sigmoid rounds to exactly 1 from x =",
        "loss_exact": "loss at the probe, exact",
        "grad_exact": "gradient at the probe, exact σ(x) − y",
        "wrong_gradients_logits": "share of plotted logits with a wrong gradient: logits form",
        "wrong_gradients_sigmoid_bce": "… sigmoid + BCELoss",
        "wrong_gradients_by_hand": "… by hand",
    }

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "initial"}
        return {
            "logit": widgets.FloatSlider(
                value=12.0, min=-LOGIT_LIMIT, max=LOGIT_LIMIT, step=0.5, description="probe logit x", style=style,
                layout=widgets.Layout(width="30em"),
            ),
            "dtype": widgets.Dropdown(
                options=list(DTYPES), value="float32", description="dtype", style=style,
                layout=widgets.Layout(width="12em"),
            ),
            "target": widgets.ToggleButtons(
                options=[("y = 0", 0.0), ("y = 1", 1.0)], value=0.0, description="target",
                style={"button_width": "4.5em", "description_width": "initial"},
            ),
        }

    def build_figure(self, figure: Figure) -> None:
        self._loss_axes, self._grad_axes = figure.subplots(1, 2)
        empty: list[float] = []
        self._exact: dict[str, Any] = {}
        self._lines: dict[tuple[str, str], Any] = {}
        self._bad: dict[tuple[str, str], Any] = {}
        self._probe_points: dict[str, Any] = {}
        self._probe_lines: dict[str, Any] = {}
        for panel, axes in (("loss", self._loss_axes), ("grad", self._grad_axes)):
            (self._exact[panel],) = axes.plot(empty, empty, color="0.6", linewidth=5.0, alpha=0.35, zorder=1)
            for form in FORMS:
                (self._lines[panel, form],) = axes.plot(empty, empty, zorder=2, **_STYLES[form])
                (self._bad[panel, form],) = axes.plot(
                    empty, empty, linestyle="none", marker="X", markersize=6, zorder=4,
                    color=_STYLES[form]["color"], clip_on=False,
                )
            self._probe_lines[panel] = axes.axvline(0.0, color="0.4", linewidth=0.8, linestyle=":")
            (self._probe_points[panel],) = axes.plot(
                empty, empty, linestyle="none", marker="o", markersize=4, color="0.15", zorder=5
            )
            axes.set_xlabel("logit x", labelpad=1)
            axes.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))
            axes.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
        self._loss_axes.axhline(-LOG_CLAMP, color="tab:red", linewidth=0.8, linestyle=(0, (1, 3)), zorder=0)
        self._loss_axes.set_title("per-element loss", fontsize=10)
        self._grad_axes.set_title("gradient d loss / d x", fontsize=10)
        self._grad_axes.set_ylim(-1.15, GRAD_TOP)
        self._grad_axes.axhline(0.0, color="0.75", linewidth=0.8, zorder=0)
        (exact_proxy,) = self._loss_axes.plot([], [], color="0.6", linewidth=5.0, alpha=0.35)
        (bad_proxy,) = self._loss_axes.plot([], [], linestyle="none", marker="X", color="0.3")
        handles = [exact_proxy, *(self._lines["loss", form] for form in FORMS), bad_proxy]
        labels = ["exact (float64)", *_LEGEND.values(), "inf or NaN (markers at the top)"]
        figure.legend(handles, labels, loc="upper center", ncols=5, fontsize=8, frameon=False, handlelength=2.2)
        figure.subplots_adjust(left=0.065, right=0.99, bottom=0.14, top=0.8, wspace=0.2)
        self.animate(
            *self._exact.values(), *self._lines.values(), *self._bad.values(), *self._probe_points.values(),
            *self._probe_lines.values(),
        )
        self._loss_top: float | None = None

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        probe, target = float(values["logit"]), float(values["target"])
        dtype = DTYPES[values["dtype"]]
        limit = NEAR_LIMIT + 1.0 if abs(probe) <= NEAR_LIMIT else LOGIT_LIMIT + 5.0
        grid = torch.cat([torch.linspace(-limit, limit, GRID_POINTS, dtype=torch.float64),
                          torch.tensor([probe], dtype=torch.float64)])
        x_plot = grid[:-1].numpy()
        # The exact curve, in float64 on the grid: softplus form, so it never overflows.
        exact_loss_curve, exact_grad_curve = loss_and_gradient("logits", grid, target, torch.float64)
        results = {form: loss_and_gradient(form, grid, target, dtype) for form in FORMS}

        shown = [exact_loss_curve[:-1]] + [np.where(np.isfinite(r[0][:-1]), r[0][:-1], 0.0) for r in results.values()]
        self._loss_top = sticky_limit(self._loss_top, 1.1 * max(float(np.max(a)) for a in shown), floor=1.0,
                                      mantissas=(1.0, 1.2, 1.5, 2.0, 3.0, 5.0))
        self._loss_axes.set_ylim(-0.04 * self._loss_top, self._loss_top)
        for axes in (self._loss_axes, self._grad_axes):
            axes.set_xlim(-limit, limit)

        self._exact["loss"].set_data(x_plot, exact_loss_curve[:-1])
        self._exact["grad"].set_data(x_plot, exact_grad_curve[:-1])
        for form, (loss, gradient) in results.items():
            row = MARKER_ROWS.get(form, 0.0)
            edges = {"loss": (0.985 - 0.055 * row) * self._loss_top, "grad": GRAD_TOP - 0.06 - 0.12 * row}
            for panel, curve in (("loss", loss[:-1]), ("grad", gradient[:-1])):
                finite = np.isfinite(curve)
                self._lines[panel, form].set_data(x_plot[finite], curve[finite])
                bad_x = x_plot[~finite]
                step = max(1, math.ceil(bad_x.size / MAX_MARKERS))
                bad_x = bad_x[::step]
                self._bad[panel, form].set_data(bad_x, np.full(bad_x.shape, edges[panel]))

        at_probe = {form: (float(loss[-1]), float(gradient[-1])) for form, (loss, gradient) in results.items()}
        for panel, index in (("loss", 0), ("grad", 1)):
            self._probe_lines[panel].set_xdata([probe, probe])
            ys = [at_probe[form][index] for form in FORMS]
            ys = [y for y in ys if math.isfinite(y)]
            self._probe_points[panel].set_data([probe] * len(ys), ys)

        with one_thread():
            sigmoid = torch.sigmoid(torch.tensor(probe, dtype=dtype))
        self.probe = {"exact": (exact_loss(probe, target), exact_gradient(probe, target)), **at_probe}
        exact_curve = exact_grad_curve[:-1]
        readouts = {
            "sigmoid": float(sigmoid),
            "one_minus_sigmoid": float(1 - sigmoid),
            "saturation_logit": saturation_logit(values["dtype"]),
            "loss_exact": self.probe["exact"][0],
            "grad_exact": self.probe["exact"][1],
        }
        for form, (_, gradient) in results.items():
            readouts[f"wrong_gradients_{form}"] = wrong_share(gradient[:-1], exact_curve)
        return readouts

    def print_probe(self) -> None:
        """Print loss and gradient at the probe for each form (4 significant digits; ``inf``, ``nan`` as such)."""
        for form, (loss, gradient) in self.probe.items():
            print(f"{form:<12} loss = {format_number(loss):<9} gradient = {format_number(gradient)}")

    def readout_notes(self, values: dict[str, Any], readouts: dict[str, float]) -> list[str]:
        rows = "".join(
            f"<tr><td style='padding:0 1em 0 0'>{html.escape(PROBE_LABELS[form])}</td>"
            f"<td style='text-align:right;font-family:monospace;padding:0 1em' data-probe-loss='{form}'>"
            f"{html.escape(format_number(loss))}</td>"
            f"<td style='text-align:right;font-family:monospace' data-probe-gradient='{form}'>"
            f"{html.escape(format_number(gradient))}</td></tr>"
            for form, (loss, gradient) in self.probe.items()
        )
        notes = [
            "<table style='border-collapse:collapse'><tr><th style='text-align:left'>at the probe logit</th>"
            f"<th>loss</th><th>gradient</th></tr>{rows}</table>"
        ]
        exact = self.probe["exact"][1]
        bce = self.probe["sigmoid_bce"][1]
        if math.isnan(bce):
            notes.append("sigmoid + BCELoss: the gradient is <b>NaN</b>; one such element poisons every weight.")
        elif abs(exact) > 0.5 and abs(bce) < 1e-3 * abs(exact):
            notes.append(
                "sigmoid + BCELoss: the gradient has <b>vanished</b> although the model is confidently wrong "
                "(the exact gradient is near its largest)."
            )
        if self.probe["sigmoid_bce"][0] == -LOG_CLAMP and self.probe["exact"][0] != -LOG_CLAMP:
            notes.append("sigmoid + BCELoss: the loss sits on the clamp at 100 (log clamped at −100).")
        return notes

    def benchmark_changes(self) -> list[dict[str, Any]]:
        """Drag the probe across the near range and out to ±100, for every dtype and both targets."""
        changes: list[dict[str, Any]] = []
        for name in ("float32", "float16", "bfloat16", "float64"):
            changes.append({"dtype": name})
            changes += [{"logit": float(x)} for x in np.linspace(-19.0, 19.0, 9)]
        changes += [{"target": 1.0}] + [{"logit": float(x)} for x in (-100.0, -50.0, 0.0, 50.0, 100.0, 12.0)]
        changes += [{"target": 0.0}, {"dtype": "float32"}]
        return changes
