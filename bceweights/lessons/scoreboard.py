"""Lesson 07's table: every row scored on the test split, per seed, then mean ± spread over seeds.

A row is a trained method read one way (:data:`ROWS`): its logits as they are or shifted back by
``-log p`` (lesson 01's optimum shift undone), thresholded at 0.5 or at a threshold tuned on the
validation split for a precision target (:func:`~bceweights.lessons.calibration.threshold_for_precision`).
Columns: AUROC, AUPRC, Brier, calibration slope and intercept, ECE; the threshold used with its test
precision and recall; and the tuned threshold with its test precision and recall.

Spread is the standard deviation over seeds (``ddof=1``), printed after ``±``. A threshold that predicts
nothing positive has precision 0 here (scikit-learn's ``zero_division=0``) and recall 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from bceweights.lessons.calibration import operating_point, probability_metrics, threshold_for_precision
from bceweights.lessons.rare_class import Experiment, Run

#: The precision each regime's tuned threshold must reach on validation: a target every trained
#: model reaches there on every seed (with overlapping classes, the trained models' validation
#: precision tops out near 0.2; the true posterior reaches 0.25).
MIN_PRECISION: dict[str, float] = {"separated": 0.9, "overlapping": 0.15}


@dataclass(frozen=True)
class Row:
    """A table row: which method's model, whether its logits are shifted back by ``-log p``, and its threshold rule."""

    label: str
    method: str
    shift_back: bool = False
    tuned: bool = False


#: The table's rows, in the order printed.
ROWS: tuple[Row, ...] = (
    Row("plain BCE, t = 0.5", "plain BCE"),
    Row("plain BCE, tuned t", "plain BCE", tuned=True),
    Row("pos_weight = neg/pos", "pos_weight = neg/pos"),
    Row("pos_weight, logit - log p", "pos_weight = neg/pos", shift_back=True),
    Row("oversampling (balanced)", "oversampling"),
    Row("focal γ=2, α=0.25", "focal γ=2 α=0.25"),
    Row("focal γ=2, α=0.75", "focal γ=2 α=0.75"),
    Row("Dice", "Dice"),
    Row("BCE + Dice", "BCE + Dice"),
)

#: The numbers of one row, in the order printed.
COLUMNS = ("auroc", "auprc", "brier", "slope", "intercept", "ece", "t", "precision", "recall", "tuned_t", "tuned_precision", "tuned_recall")


def row_logits(run: Run, row: Row) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation and test logits of ``run`` as ``row`` reads them."""
    shift = math.log(run.pos_weight) if row.shift_back else 0.0
    return run.val_logits - shift, run.test_logits - shift


def score_row(experiment: Experiment, row: Row, regime: str, seed: int, min_precision: float | None = None) -> dict[str, float]:
    """The columns of :data:`COLUMNS` for one row, regime and seed (on the test split)."""
    run = experiment.run(row.method, regime, seed)
    splits = experiment.splits[(regime, seed)]
    val_logits, test_logits = row_logits(run, row)
    val_p, test_p = torch.sigmoid(val_logits), torch.sigmoid(test_logits)
    target = MIN_PRECISION[regime] if min_precision is None else min_precision
    tuned = threshold_for_precision(val_p, splits["val"].y, target).threshold
    threshold = tuned if row.tuned else 0.5
    used = operating_point(test_p, splits["test"].y, threshold)
    at_tuned = operating_point(test_p, splits["test"].y, tuned)
    scores = probability_metrics(test_logits, splits["test"].y)
    # Precision with scikit-learn's zero_division=0: a threshold that predicts nothing scores 0, not 1.
    precision = lambda point: point.tp / (point.tp + point.fp) if point.tp + point.fp else 0.0  # noqa: E731
    return {
        **{key: scores[key] for key in ("auroc", "auprc", "brier", "slope", "intercept", "ece")},
        "t": threshold, "precision": precision(used), "recall": used.recall,
        "tuned_t": tuned, "tuned_precision": precision(at_tuned), "tuned_recall": at_tuned.recall,
    }


def score_experiment(experiment: Experiment, min_precision: float | None = None) -> dict[tuple[str, str], np.ndarray]:
    """``{(regime, row label): (seeds, len(COLUMNS)) array}`` for every row of :data:`ROWS`."""
    regimes = list(dict.fromkeys(run.regime for run in experiment.runs))  # in the order they were run
    methods = {run.method for run in experiment.runs}
    table: dict[tuple[str, str], np.ndarray] = {}
    for regime in regimes:
        for row in ROWS:
            if row.method not in methods:
                continue
            per_seed = [score_row(experiment, row, regime, seed, min_precision) for seed in experiment.seeds()]
            table[(regime, row.label)] = np.array([[s[c] for c in COLUMNS] for s in per_seed], dtype=np.float64)
    return table


def mean_spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (``ddof=1``; 0 for one seed) over the first axis."""
    mean = values.mean(axis=0)
    spread = values.std(axis=0, ddof=1) if values.shape[0] > 1 else np.zeros_like(mean)
    return mean, spread


def _cell(mean: float, spread: float, digits: int) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f}±{spread:.{digits}f}"


def format_tables(table: dict[tuple[str, str], np.ndarray], regime: str) -> str:
    """The two printed tables of one regime: ranking and calibration, then operating points."""
    rows = [(label, values) for (r, label), values in table.items() if r == regime]
    if not rows:
        raise KeyError(f"no rows for regime {regime!r}; regimes: {sorted({r for r, _ in table})}")
    seeds = rows[0][1].shape[0]
    width = max(len(label) for label, _ in rows)
    index = {c: i for i, c in enumerate(COLUMNS)}
    lines = [f"{regime}: ranking and calibration on the test split, mean ± sd over {seeds} seeds"]
    header = ("AUROC", "AUPRC", "Brier", "cal. slope", "cal. interc.", "ECE")
    lines.append(f"{'':<{width}}  " + "  ".join(f"{h:>13}" for h in header))
    for label, values in rows:
        mean, spread = mean_spread(values)
        cells = [
            _cell(mean[index["auroc"]], spread[index["auroc"]], 3), _cell(mean[index["auprc"]], spread[index["auprc"]], 3),
            _cell(mean[index["brier"]], spread[index["brier"]], 4), _cell(mean[index["slope"]], spread[index["slope"]], 2),
            _cell(mean[index["intercept"]], spread[index["intercept"]], 2), _cell(mean[index["ece"]], spread[index["ece"]], 3),
        ]
        lines.append(f"{label:<{width}}  " + "  ".join(f"{c:>13}" for c in cells))
    target = MIN_PRECISION.get(regime)
    lines.append("")
    lines.append(
        f"{regime}: precision and recall on the test split at the row's threshold t, and at the threshold "
        f"tuned on validation for precision >= {target:g}"
    )
    header = ("t", "precision", "recall", "tuned t", "precision", "recall")
    lines.append(f"{'':<{width}}  " + "  ".join(f"{h:>13}" for h in header))
    for label, values in rows:
        mean, spread = mean_spread(values)
        cells = [_cell(mean[index[c]], spread[index[c]], 3) for c in ("t", "precision", "recall", "tuned_t", "tuned_precision", "tuned_recall")]
        lines.append(f"{label:<{width}}  " + "  ".join(f"{c:>13}" for c in cells))
    return "\n".join(lines)
