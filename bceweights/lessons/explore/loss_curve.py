"""``LossCurveExplorer``: the per-element loss and its gradient as ``weight`` and ``pos_weight`` move.

For a logit ``x``, a target ``y`` in ``[0, 1]``, ``weight`` ``w`` and ``pos_weight`` ``p``:

    loss(x)    = w * [ p * y * softplus(-x) + (1 - y) * softplus(x) ]
               = -w * [ p * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)) ]
    dloss/dx   = w * [ (1 - y) * sigmoid(x) - p * y * (1 - sigmoid(x)) ]

``w`` multiplies both terms, ``p`` only the positive (``y``) term. Setting the gradient to zero gives
the loss-minimising logit and probability for a soft target ``y`` (independent of ``w`` when w > 0):

    x*  = log(p * y / (1 - y)) = logit(y) + log(p)
    p*  = sigmoid(x*) = p * y / (p * y + 1 - y)

For ``y = 1`` (``y = 0``) the loss decreases all the way to ``x -> +inf`` (``-inf``): the minimiser is
at infinity and the marker sits on the panel's edge.

The curves are computed with :func:`bceweights.bce_with_logits` (``reduction="none"``) and the
gradient with autograd, the optimum with :func:`bceweights.optimal_logit` and
:func:`bceweights.optimal_probability`, so the explorer shows exactly what the package computes.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bceweights.lessons.explore.base import Explorer
from bceweights.lessons.explore.controls import log_choices, one_thread, sticky_limit
from bceweights.lessons.explore.display import format_number
from bceweights.loss import bce_with_logits
from bceweights.weights import optimal_logit, optimal_probability

#: Logits at which the curves are evaluated, ``(801,)``; the probe slider spans the same range.
LOGIT_LIMIT = 20.0
GRID_POINTS = 801
#: The panels show at least this x-range; they widen to keep the probe logit in view.
VISIBLE_LIMIT = 10.0
#: The loss panel's height is chosen so the soft-target curve fits inside ``|x| <= this``.
LOSS_FIT_LIMIT = 5.0
_MANTISSAS = (1.0, 1.5, 2.0, 3.0, 5.0, 7.5)
_COLORS = {"y1": "tab:blue", "y0": "tab:orange", "y": "tab:green"}


def loss_and_gradient(
    logits: torch.Tensor, targets: torch.Tensor, weight: float, pos_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element loss and d loss / d logit for ``logits`` and ``targets`` of the same shape ``(*)``.

    The loss is :func:`bceweights.bce_with_logits` with ``reduction="none"``; the gradient comes from
    autograd (the loss is elementwise, so the gradient of its sum is the per-element derivative).
    """
    leaf = logits.detach().clone().requires_grad_(True)
    with one_thread():  # a few thousand elements: waking the thread pool would cost more than the work
        loss = bce_with_logits(leaf, targets, weight=weight, pos_weight=pos_weight, reduction="none")
        (gradient,) = torch.autograd.grad(loss.sum(), leaf)
    return loss.detach(), gradient


class LossCurveExplorer(Explorer):
    """Per-element weighted BCE and its gradient against the logit, for y = 1, y = 0 and a soft y.

    Controls: ``weight`` (0..5), ``pos_weight`` (log slider over round values 0.01..100), ``y`` (soft target, 0..1),
    ``logit`` (a probe, -20..20, where the readouts evaluate loss and gradient).

    Readouts: ``optimal_probability``, ``optimal_logit`` (inf at y = 0 or 1), ``positive_scale``
    (``w * p``), ``negative_scale`` (``w``), and at the probe logit ``loss_y1``, ``loss_y0``,
    ``loss_y``, ``grad_y1``, ``grad_y0``, ``grad_y``.

    Example::

        explorer = LossCurveExplorer(pos_weight=10)
        explorer.set(y=0.25, pos_weight=3)
        explorer.readouts["optimal_probability"]   # 0.5
    """

    title = "Weighted BCE on one element: loss (left) and gradient (right) against the logit"
    figsize = (9.6, 3.5)
    readout_labels = {
        "optimal_probability": "optimal probability p·y / (p·y + 1 − y)",
        "optimal_logit": "loss-minimising logit log(p·y / (1 − y))",
        "positive_scale": "positive term scaled by w·p",
        "negative_scale": "negative term scaled by w",
        "loss_y1": "loss at the probe logit, y = 1",
        "loss_y0": "loss at the probe logit, y = 0",
        "loss_y": "loss at the probe logit, soft y",
        "grad_y1": "gradient at the probe logit, y = 1",
        "grad_y0": "gradient at the probe logit, y = 0",
        "grad_y": "gradient at the probe logit, soft y",
    }

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "initial"}
        return {
            "weight": widgets.FloatSlider(
                value=1.0, min=0.0, max=5.0, step=0.05, description="weight w", style=style
            ),
            "pos_weight": widgets.SelectionSlider(
                options=log_choices(-2, 2), value=1.0, description="pos_weight p", style=style,
            ),
            "y": widgets.FloatSlider(
                value=0.3, min=0.0, max=1.0, step=0.01, description="soft target y", style=style
            ),
            "logit": widgets.FloatSlider(
                value=0.0, min=-LOGIT_LIMIT, max=LOGIT_LIMIT, step=0.1, description="probe logit x",
                style=style,
            ),
        }

    def build_figure(self, figure: Figure) -> None:
        self._grid = torch.linspace(-LOGIT_LIMIT, LOGIT_LIMIT, GRID_POINTS, dtype=torch.float64)
        grid = self._grid.numpy()
        self._fit_window = np.abs(grid) <= LOSS_FIT_LIMIT
        self._loss_axes, self._grad_axes = figure.subplots(1, 2)
        zeros = np.zeros_like(grid)
        self._lines: dict[str, Any] = {}
        for panel, axes in (("loss", self._loss_axes), ("grad", self._grad_axes)):
            for key, label in (("y1", "y = 1"), ("y0", "y = 0"), ("y", "soft y")):
                color = _COLORS[key]
                (self._lines[panel, "plain", key],) = axes.plot(
                    grid, zeros, color=color, alpha=0.35, linewidth=1.0, linestyle="--"
                )
                (self._lines[panel, "weighted", key],) = axes.plot(
                    grid, zeros, color=color, linewidth=2.4 if key == "y" else 1.8, label=label
                )
            self._lines[panel, "probe"] = axes.axvline(0.0, color="0.4", linewidth=0.8, linestyle=":")
            (self._lines[panel, "probe_points"],) = axes.plot(
                [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], linestyle="none", marker="o", markersize=4, color="0.2"
            )
            (self._lines[panel, "optimum"],) = axes.plot(
                [0.0], [0.0], linestyle="none", marker="*", markersize=13, color="crimson",
                markeredgecolor="white", label="minimiser, soft y",
            )
            axes.axhline(0.0, color="0.75", linewidth=0.8, zorder=0)
            axes.set_xlabel("logit x", labelpad=1)
            # Few ticks and no grid: tick labels are most of a frame's drawing time.
            axes.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))
            axes.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
        self._loss_axes.set_title("per-element loss")
        self._grad_axes.set_title("gradient d loss / d x")
        (plain_proxy,) = self._loss_axes.plot([], [], color="0.5", alpha=0.5, linestyle="--", linewidth=1.0)
        handles = [self._lines["loss", "weighted", k] for k in ("y1", "y0", "y")]
        handles += [plain_proxy, self._lines["loss", "optimum"]]
        labels = ["y = 1", "y = 0", "soft y", "plain (w = 1, p = 1)", "minimiser, soft y"]
        self._legend = figure.legend(
            handles, labels, loc="upper center", ncols=5, fontsize=8, frameon=False, handlelength=1.8
        )
        figure.subplots_adjust(left=0.065, right=0.99, bottom=0.14, top=0.82, wspace=0.2)
        self.animate(*(artist for key, artist in self._lines.items()))
        self._plain_cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._loss_top: float | None = None
        self._grad_low: float | None = None
        self._grad_high: float | None = None

    def _curves(self, y: float, weight: float, pos_weight: float, extra: list[float]) -> tuple[np.ndarray, np.ndarray]:
        """Loss and gradient, each ``(3, GRID_POINTS + len(extra))``, rows y = 1, y = 0, soft y."""
        points = torch.cat([self._grid, torch.tensor(extra, dtype=torch.float64)])
        logits = points.expand(3, -1)
        targets = torch.tensor([1.0, 0.0, y], dtype=torch.float64)[:, None].expand_as(logits)
        loss, gradient = loss_and_gradient(logits, targets, weight, pos_weight)
        return loss.numpy(), gradient.numpy()

    def _plain(self, y: float) -> tuple[np.ndarray, np.ndarray]:
        if y not in self._plain_cache:
            if len(self._plain_cache) > 256:
                self._plain_cache.clear()
            self._plain_cache[y] = self._curves(y, 1.0, 1.0, [])
        return self._plain_cache[y]

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        weight, pos_weight = float(values["weight"]), float(values["pos_weight"])
        y, probe = float(values["y"]), float(values["logit"])

        # Two x-ranges only (so dragging the probe rarely redraws the axes): the usual one, and the
        # full range once the probe leaves it.
        x_high = VISIBLE_LIMIT if abs(probe) <= VISIBLE_LIMIT - 0.5 else LOGIT_LIMIT + 0.5
        x_low = -x_high
        best_logit = float(optimal_logit(y, pos_weight))
        marker_x = min(max(best_logit, x_low), x_high)
        loss, gradient = self._curves(y, weight, pos_weight, [probe, marker_x])
        plain_loss, plain_gradient = self._plain(y)
        n = GRID_POINTS

        for row, key in enumerate(("y1", "y0", "y")):
            self._lines["loss", "weighted", key].set_ydata(loss[row, :n])
            self._lines["grad", "weighted", key].set_ydata(gradient[row, :n])
            self._lines["loss", "plain", key].set_ydata(plain_loss[row])
            self._lines["grad", "plain", key].set_ydata(plain_gradient[row])

        for panel, values_at in (("loss", loss), ("grad", gradient)):
            self._lines[panel, "probe"].set_xdata([probe, probe])
            self._lines[panel, "probe_points"].set_data([probe] * 3, values_at[:, n])
        # Beyond the panel (always for y = 0 or 1): an arrowhead on the edge, pointing outward.
        marker_style = ">" if best_logit > x_high else "<" if best_logit < x_low else "*"
        self._lines["loss", "optimum"].set_data([marker_x], [loss[2, n + 1]])
        self._lines["grad", "optimum"].set_data([marker_x], [gradient[2, n + 1]])
        for panel in ("loss", "grad"):
            self._lines[panel, "optimum"].set_marker(marker_style)

        self._loss_top = sticky_limit(
            self._loss_top,
            1.1 * max(loss[2, :n][self._fit_window].max(), plain_loss[2][self._fit_window].max()),
            mantissas=_MANTISSAS,
        )
        self._loss_axes.set_ylim(-0.04 * self._loss_top, self._loss_top)
        # The gradient is bounded: -w*p <= dloss/dx <= w, so the whole curve always fits.
        self._grad_low = sticky_limit(self._grad_low, 1.08 * weight * pos_weight, mantissas=_MANTISSAS)
        self._grad_high = sticky_limit(self._grad_high, 1.08 * weight, mantissas=_MANTISSAS)
        self._grad_axes.set_ylim(-self._grad_low, self._grad_high)
        for axes in (self._loss_axes, self._grad_axes):
            axes.set_xlim(x_low, x_high)

        return {
            "optimal_probability": float(optimal_probability(y, pos_weight)),
            "optimal_logit": best_logit,
            "positive_scale": weight * pos_weight,
            "negative_scale": weight,
            "loss_y1": float(loss[0, n]),
            "loss_y0": float(loss[1, n]),
            "loss_y": float(loss[2, n]),
            "grad_y1": float(gradient[0, n]),
            "grad_y0": float(gradient[1, n]),
            "grad_y": float(gradient[2, n]),
        }

    def readout_notes(self, values: dict[str, Any], readouts: dict[str, float]) -> list[str]:
        notes = []
        if values["weight"] == 0:
            notes.append(
                "weight = 0: every loss and gradient is 0, so every logit is optimal; the marker shows "
                "the optimum for any weight &gt; 0 (it does not depend on w)."
            )
        if values["y"] in (0.0, 1.0):
            side = "+∞" if values["y"] == 1.0 else "−∞"
            notes.append(
                f"y = {format_number(values['y'])}: the loss keeps falling as the logit moves toward {side}; "
                "the minimiser is at infinity, so the marker sits at the panel's edge."
            )
        return notes

    def benchmark_changes(self) -> list[dict[str, Any]]:
        """Drags across every control's full range, the extremes included, then back to the start."""
        changes: list[dict[str, Any]] = []
        changes += [{"pos_weight": value} for _, value in self.controls["pos_weight"].options] + [{"pos_weight": 1.0}]
        changes += [{"weight": float(w)} for w in np.linspace(0.0, 5.0, 21)] + [{"weight": 1.0}]
        changes += [{"y": float(y)} for y in np.linspace(0.0, 1.0, 21)] + [{"y": 0.3}]
        changes += [{"logit": float(x)} for x in np.linspace(-20.0, 20.0, 21)] + [{"logit": 0.0}]
        return changes
