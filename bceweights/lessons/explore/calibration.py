"""``CalibrationExplorer``: pick a training method and a threshold; see ranking, calibration and counts together.

For each method the explorer holds the test logits of one trained model (lesson 08 trains them)
and shows, for the chosen method and probability threshold ``t`` (predict positive ⇔ ``p̂ >= t``):

* the precision-recall curve (scikit-learn's) with the operating point at ``t``: the curve is the
  model's ranking, ``t`` only picks a point on it;
* the reliability diagram (``sklearn.calibration.calibration_curve``, equal-width bins): observed
  frequency against mean predicted probability per bin; a calibrated model lies on the diagonal.
  The vertical line is ``t``: the bins right of it are predicted positive;
* the confusion counts ``TP, FP / FN, TN`` at ``t``.

Readouts: ``precision``, ``recall``, ``tp``, ``fp``, ``fn``, ``tn`` at ``t`` (exact counts by binary search
in the sorted probabilities of each class), and the method's ``auroc``, ``auprc``, ``brier``, ``ece``,
``slope`` and ``intercept`` (:func:`bceweights.lessons.calibration.probability_metrics`), which do not
depend on ``t``. All curves are computed once, when the explorer is built; an update is two binary
searches and a blit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from bceweights.lessons.calibration import probability_metrics, reliability_curve
from bceweights.lessons.explore.base import Explorer
from bceweights.lessons.metrics import as_flat_numpy, precision_recall_curve
from bceweights.messages import error_message

RELIABILITY_BINS = 10
_METRIC_KEYS = ("auroc", "auprc", "brier", "ece", "slope", "intercept")


class _MethodCurves:
    """What the explorer shows for one method, computed once."""

    def __init__(self, logits: np.ndarray, target: np.ndarray) -> None:
        probability = 0.5 * (1.0 + np.tanh(0.5 * logits))
        curve = precision_recall_curve(probability, target)
        # The curve from recall 0 (precision 1, scikit-learn's closing point) to recall 1, drawn through
        # the first and last point of each recall level: the same picture from ~2 points per positive
        # instead of one per distinct score.
        recall, precision = np.r_[0.0, curve.recall], np.r_[1.0, curve.precision]
        change = np.flatnonzero(np.diff(recall))
        keep = np.unique(np.r_[0, change, change + 1, recall.size - 1])
        self.pr_recall, self.pr_precision = recall[keep], precision[keep]
        predicted, observed, _ = reliability_curve(probability, target, bins=RELIABILITY_BINS)
        self.reliability = (predicted, observed)
        self.positive_scores = np.sort(probability[target])
        self.negative_scores = np.sort(probability[~target])
        metrics = probability_metrics(logits, target)
        self.metrics = {key: metrics[key] for key in _METRIC_KEYS}

    def counts(self, threshold: float) -> tuple[int, int, int, int]:
        """``(tp, fp, fn, tn)`` of ``p̂ >= threshold``."""
        pos, neg = self.positive_scores, self.negative_scores
        fn = int(np.searchsorted(pos, threshold, side="left"))
        tn = int(np.searchsorted(neg, threshold, side="left"))
        return pos.size - fn, neg.size - tn, fn, tn


class CalibrationExplorer(Explorer):
    """Operating point, reliability diagram and confusion counts of several trained methods.

    Args:
        logits: ``{method name: logits}``, each any shape (flattened), all on the same test samples.
        target: 0/1 targets of those samples (the shape of each logits array).
        **initial: initial control values (``method``, ``threshold``).

    Controls: ``method`` (dropdown of the names), ``threshold`` (0.01..0.99, steps of 0.01).

    Example::

        explorer = CalibrationExplorer({"plain BCE": plain_logits, "pos_weight": weighted_logits}, test_y)
        explorer.set(method="pos_weight", threshold=0.9)
        explorer.readouts["precision"]
    """

    title = "One model per method: move the threshold along its PR curve, and read its calibration"
    figsize = (10.4, 3.5)
    readout_labels = {
        "precision": "precision at t",
        "recall": "recall at t",
        "tp": "true positives",
        "fp": "false positives",
        "fn": "false negatives",
        "tn": "true negatives",
        "auroc": "AUROC (ranking; no t)",
        "auprc": "AUPRC = average precision (ranking; no t)",
        "brier": "Brier score (calibration)",
        "ece": "ECE, 10 bins (calibration)",
        "slope": "calibration slope (1 = calibrated)",
        "intercept": "calibration intercept (0 = calibrated)",
    }

    def __init__(self, logits: Mapping[str, Any], target: Any, **initial: Any) -> None:
        if not logits:
            raise ValueError(error_message(
                "logits is empty", "expected {method name: logits} with at least one method.",
                "CalibrationExplorer({'plain BCE': test_logits}, test_target)",
            ))
        self._target = as_flat_numpy(target) > 0.5
        self._curves: dict[str, _MethodCurves] = {}
        for name, values in logits.items():
            flat = as_flat_numpy(values)
            if flat.shape != self._target.shape:
                raise ValueError(error_message(
                    f"logits[{name!r}] has {flat.size} elements but target has {self._target.size}",
                    "every method is scored on the same samples.",
                    "CalibrationExplorer({name: model(test_x) for name, model in models.items()}, test_y)",
                ))
            if not np.all(np.isfinite(flat)):
                raise ValueError(f"logits[{name!r}] contain NaN or infinity; pass the finite logits of a trained model.")
            self._curves[str(name)] = _MethodCurves(flat, self._target)
        super().__init__(**initial)

    @classmethod
    def example(cls) -> CalibrationExplorer:
        """Three scorers of 20 000 samples with 2 % positives (no training): calibrated, shifted, over-confident."""
        rng = np.random.default_rng(0)
        target = rng.random(20_000) < 0.02
        calibrated = np.where(target, 1.0, -1.0) * 1.4 + rng.standard_normal(20_000) - 4.0
        return cls(
            {"calibrated": calibrated, "shifted by log 49": calibrated + np.log(49.0), "over-confident": 3.0 * calibrated + 8.0},
            target,
        )

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "initial"}
        names = list(self._curves)
        return {
            "method": widgets.Dropdown(options=names, value=names[0], description="method", style=style),
            "threshold": widgets.FloatSlider(
                value=0.5, min=0.01, max=0.99, step=0.01, description="threshold t", style=style,
                layout=widgets.Layout(width="340px"),
            ),
        }

    def build_figure(self, figure: Figure) -> None:
        self._pr_axes = figure.add_axes((0.05, 0.14, 0.27, 0.74))
        self._rel_axes = figure.add_axes((0.39, 0.14, 0.27, 0.74))
        self._count_axes = figure.add_axes((0.73, 0.14, 0.25, 0.74))

        ax = self._pr_axes
        (self._pr_line,) = ax.plot([0.0, 1.0], [1.0, 0.0], color="0.3", linewidth=1.5, label="PR curve")
        (self._point,) = ax.plot([0.0], [1.0], linestyle="none", marker="o", markersize=9, color="crimson", label="at t")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("recall", labelpad=1)
        ax.set_ylabel("precision", labelpad=1)
        ax.set_title("precision-recall curve (ranking)", fontsize=9)
        ax.legend(loc="upper right", fontsize=7, frameon=False)

        ax = self._rel_axes
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
        (self._rel_line,) = ax.plot([0.0], [0.0], marker="o", markersize=4, color="tab:blue", linewidth=1.2, label="method")
        self._threshold_line = ax.axvline(0.5, color="crimson", linewidth=1.2, label="threshold t")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("mean predicted probability (bin)", labelpad=1)
        ax.set_ylabel("observed frequency", labelpad=1)
        ax.set_title("reliability diagram (10 bins)", fontsize=9)
        ax.legend(loc="upper left", fontsize=7, frameon=False)

        ax = self._count_axes
        ax.set_xlim(0, 2)
        ax.set_ylim(0, 2)
        ax.set_xticks([0.5, 1.5], ["predicted +", "predicted −"], fontsize=8)
        ax.set_yticks([1.5, 0.5], ["actual +", "actual −"], fontsize=8)
        ax.tick_params(length=0)
        ax.axhline(1.0, color="0.7", linewidth=1)
        ax.axvline(1.0, color="0.7", linewidth=1)
        ax.set_title("confusion counts at t", fontsize=9)
        self._count_texts = {
            key: ax.text(x, y, "", ha="center", va="center", fontsize=11, color=color)
            for key, x, y, color in (
                ("tp", 0.5, 1.5, "tab:green"), ("fn", 1.5, 1.5, "crimson"),
                ("fp", 0.5, 0.5, "crimson"), ("tn", 1.5, 0.5, "0.3"),
            )
        }
        self.animate(self._pr_line, self._point, self._rel_line, self._threshold_line, *self._count_texts.values())

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        curves = self._curves[values["method"]]
        threshold = float(values["threshold"])
        self._pr_line.set_data(curves.pr_recall, curves.pr_precision)
        self._rel_line.set_data(*curves.reliability)
        self._threshold_line.set_xdata([threshold, threshold])
        tp, fp, fn, tn = curves.counts(threshold)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        self._point.set_data([recall], [precision])
        for key, count, label in (("tp", tp, "TP"), ("fp", fp, "FP"), ("fn", fn, "FN"), ("tn", tn, "TN")):
            self._count_texts[key].set_text(f"{label}\n{count}")
        return {"precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn, "tn": tn, **curves.metrics}

    def readout_notes(self, values: dict[str, Any], readouts: Mapping[str, float]) -> list[str]:
        if readouts["tp"] + readouts["fp"] == 0:
            return ["Nothing is predicted positive at this threshold: recall is 0 and precision is shown as 1 by convention."]
        return []

    def benchmark_changes(self) -> list[dict[str, Any]]:
        """Drags the threshold end to end for each method."""
        changes: list[dict[str, Any]] = []
        for name in self._curves:
            changes.append({"method": name})
            changes += [{"threshold": float(t)} for t in np.linspace(0.01, 0.99, 12)]
        changes.append({"method": next(iter(self._curves)), "threshold": 0.5})
        return changes

