"""Lesson 08's table: every row scored on the test split, per seed, then mean ± spread over seeds.

A row is a trained method read one way (:data:`ROWS`): its logits as they are or shifted back by
``-log p`` (lesson 01's optimum shift undone), thresholded at 0.5 or at a threshold tuned on the
validation split for a precision target (:func:`~bceweights.lessons.calibration.threshold_for_precision`).
Columns: AUROC, AUPRC, Brier, calibration slope and intercept (joint fit), the intercept with the slope
fixed at 1, ECE over equal-width and over quantile bins; the threshold used with its test
precision, recall and number of predicted positives; and the tuned threshold with its test precision
and recall. The tuned threshold is the lowest whose validation precision meets the target with 95 %
confidence (its Wilson lower bound does): a threshold where the precision merely touches the target
moves from seed to seed, and under a perturbation of one rounding step, among many crossings. Where
no threshold meets it, :func:`~bceweights.lessons.calibration.threshold_for_precision` falls back to
the highest-precision point; the table says so in its last column (``target met on validation``,
e.g. ``4 of 5 (not seed 9)``), so that a fallback is not read as a threshold that met the target.

Each cell is a :class:`~bceweights.lessons.seeds.Spread` over the seeds: printed as
``mean ± sd (lowest–highest)`` to the digits the spread supports. A threshold that predicts nothing
positive has precision 0 here (scikit-learn's ``zero_division=0``) and recall 0; a precision from few
predicted positives deserves an interval (``wilson_interval(tp, predicted)``), not a mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bceweights.lessons.calibration import operating_point, probability_metrics, threshold_for_precision
from bceweights.lessons.rare_class import Experiment, Run
from bceweights.lessons.seeds import Spread, format_table

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
COLUMNS = (
    "auroc", "auprc", "brier", "slope", "intercept", "intercept_slope1", "ece", "ece_quantile",
    "t", "precision", "recall", "predicted", "tp",
    "tuned_t", "tuned_precision", "tuned_recall", "tuned_predicted", "tuned_reached",
)

#: The tuned threshold asks the Wilson lower bound of its validation precision, at this confidence,
#: to meet the target (:func:`~bceweights.lessons.calibration.threshold_for_precision`).
CONFIDENCE = 0.95

#: The printed tables: a title and the columns (with their printed names) of each.
TABLES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("ranking", (("auroc", "AUROC"), ("auprc", "AUPRC"), ("brier", "Brier"))),
    ("calibration", (("slope", "cal. slope"), ("intercept", "intercept (joint fit)"), ("intercept_slope1", "intercept, slope 1"),
                     ("ece", "ECE"), ("ece_quantile", "ECE, quantile bins"))),
    ("at the row's threshold t", (("t", "t"), ("precision", "precision"), ("recall", "recall"), ("predicted", "predicted +"))),
    ("at the threshold tuned on validation", (("tuned_t", "tuned t"), ("tuned_precision", "precision"), ("tuned_recall", "recall"))),
)


def row_logits(run: Run, row: Row) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation and test logits of ``run`` as ``row`` reads them."""
    shift = math.log(run.pos_weight) if row.shift_back else 0.0
    return run.val_logits - shift, run.test_logits - shift


def score_row(
    experiment: Experiment, row: Row, regime: str, seed: int, min_precision: float | None = None,
    cache: dict | None = None,
) -> dict[str, float]:
    """The columns of :data:`COLUMNS` for one row, regime and seed (on the test split).

    The tuned threshold is the lowest whose validation precision has a Wilson lower bound
    (:data:`CONFIDENCE`) at the regime's target :data:`MIN_PRECISION` (``tuned_reached`` is 1.0 when one
    does, 0.0 when none does and the highest-precision point stands in); ``predicted`` and ``tp`` count
    the test samples predicted positive at the row's threshold, and the true ones among them.
    ``cache`` (a dict, filled here) lets rows that read the same logits share the scores and the
    tuned threshold that do not depend on the row's threshold.
    """
    run = experiment.run(row.method, regime, seed)
    splits = experiment.splits[(regime, seed)]
    val_logits, test_logits = row_logits(run, row)
    val_p, test_p = torch.sigmoid(val_logits), torch.sigmoid(test_logits)
    target = MIN_PRECISION[regime] if min_precision is None else min_precision
    key = (row.method, row.shift_back, regime, seed, target)
    if cache is not None and key in cache:
        tuned, reached, scores = cache[key]
    else:
        choice = threshold_for_precision(val_p, splits["val"].y, target, confidence=CONFIDENCE)
        tuned, reached = choice.threshold, choice.reached
        scores = probability_metrics(test_logits, splits["test"].y)
        if cache is not None:
            cache[key] = (tuned, reached, scores)
    threshold = tuned if row.tuned else 0.5
    used = operating_point(test_p, splits["test"].y, threshold)
    at_tuned = operating_point(test_p, splits["test"].y, tuned)
    # Precision with scikit-learn's zero_division=0: a threshold that predicts nothing scores 0, not 1.
    precision = lambda point: point.tp / (point.tp + point.fp) if point.tp + point.fp else 0.0  # noqa: E731
    return {
        **{key: scores[key] for key in ("auroc", "auprc", "brier", "slope", "intercept", "intercept_slope1", "ece", "ece_quantile")},
        "t": threshold, "precision": precision(used), "recall": used.recall, "predicted": used.tp + used.fp, "tp": used.tp,
        "tuned_t": tuned, "tuned_precision": precision(at_tuned), "tuned_recall": at_tuned.recall,
        "tuned_predicted": at_tuned.tp + at_tuned.fp, "tuned_reached": float(reached),
    }


Table = dict[tuple[str, str], dict[str, Spread]]


def score_experiment(experiment: Experiment, min_precision: float | None = None) -> Table:
    """``{(regime, row label): {column: Spread over the seeds}}`` for every row of :data:`ROWS`."""
    regimes = list(dict.fromkeys(run.regime for run in experiment.runs))  # in the order they were run
    methods = {run.method for run in experiment.runs}
    seeds = experiment.seeds()
    table: Table = {}
    cache: dict = {}
    for regime in regimes:
        for row in ROWS:
            if row.method not in methods:
                continue
            per_seed = [score_row(experiment, row, regime, seed, min_precision, cache) for seed in seeds]
            table[(regime, row.label)] = {c: Spread(tuple(float(s[c]) for s in per_seed), tuple(seeds)) for c in COLUMNS}
    return table


def regime_rows(table: Table, regime: str) -> dict[str, dict[str, Spread]]:
    """``{row label: {column: Spread}}`` of one regime, in table order."""
    rows = {label: columns for (r, label), columns in table.items() if r == regime}
    if not rows:
        raise KeyError(f"no rows for regime {regime!r}; regimes: {sorted({r for r, _ in table})}")
    return rows


def format_tables(table: Table, regime: str) -> str:
    """The printed tables of one regime: ranking, calibration, the row's threshold, the tuned threshold.

    Every cell is ``mean ± sd (lowest–highest)`` over the seeds, to the digits its spread supports
    (:meth:`~bceweights.lessons.seeds.Spread.format`). The tuned-threshold table ends with the seeds on
    which the target was met on validation: on the others the threshold is a fallback (the
    highest-precision point), not a threshold that meets the target.
    """
    rows = regime_rows(table, regime)
    seeds = next(iter(rows.values()))["auroc"].n
    target = MIN_PRECISION.get(regime)
    blocks = []
    for title, columns in TABLES:
        named = {label: {name: cells[key] for key, name in columns} for label, cells in rows.items()}
        heading = f"{regime}, {title}: test split, mean ± sd (lowest–highest) over {seeds} seeds"
        if title.startswith("at the threshold tuned"):
            heading += f" (validation precision >= {target:g} at {CONFIDENCE:.0%} confidence)"
        text = format_table(named, [name for _, name in columns])
        if title.startswith("at the threshold tuned"):
            text = _with_column(text, "target met on validation", [met_on(cells["tuned_reached"]) for cells in rows.values()])
        blocks.append(heading + "\n" + text)
    return "\n\n".join(blocks)


def met_on(reached: Spread) -> str:
    """``"5 of 5"``, or ``"4 of 5 (not seed 9)"``: on how many seeds a 0/1 ``reached`` Spread is 1."""
    missed = [seed for seed, value in zip(reached.seeds, reached.values) if value < 0.5]
    text = f"{reached.n - len(missed)} of {reached.n}"
    if missed:
        text += f" (not seed{'s' if len(missed) > 1 else ''} {', '.join(str(seed) for seed in missed)})"
    return text


def _with_column(table: str, name: str, cells: list[str]) -> str:
    """``table`` (a header line, then one line per row) with one more column of text cells."""
    lines = table.split("\n")
    width = max(len(line) for line in lines)
    return "\n".join(line.ljust(width) + "  " + cell for line, cell in zip(lines, [name, *cells]))
