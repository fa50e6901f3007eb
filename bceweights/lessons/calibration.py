"""Ranking, calibration and operating points of a binary scorer, with scikit-learn's metrics.

For probabilities ``p̂`` and 0/1 targets ``y`` (any shape, flattened):

* ranking: AUROC (``sklearn.metrics.roc_auc_score``) and AUPRC, the average precision
  (``average_precision_score``); both depend only on the order of the scores;
* calibration: the Brier score ``mean((p̂ - y)²)`` (``brier_score_loss``); the reliability curve
  (``sklearn.calibration.calibration_curve``); the logistic recalibration fit
  ``P(y = 1) = sigmoid(a + b · logit(p̂))``, whose intercept ``a`` and slope ``b`` are 0 and 1 for a
  calibrated model (``b < 1``: too extreme, ``a < 0``: too high on the whole); the expected
  calibration error ``ECE = Σ_bins (n_b / n) |mean(p̂) - mean(y)|`` over equal-width bins;
* operating points: precision and recall of ``p̂ >= t``, and the threshold that reaches a precision
  of at least ``X`` with the most recall (:func:`threshold_for_precision`), chosen on validation data.

scikit-learn has no recalibration fit and no ECE; those two are written here (numpy, float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as sk_metrics
from sklearn.calibration import calibration_curve

from bceweights.lessons.metrics import as_flat_numpy, precision_recall_curve


def _pair(scores, target) -> tuple[np.ndarray, np.ndarray]:
    scores_np, target_np = as_flat_numpy(scores), as_flat_numpy(target)
    if scores_np.shape != target_np.shape:
        raise ValueError(
            f"scores has {scores_np.size} elements but target has {target_np.size}; they pair up element by element.\n"
            "Write instead, e.g.:\n    probability_metrics(torch.sigmoid(logits), target)"
        )
    return scores_np, (target_np > 0.5).astype(np.int64)


def logistic_calibration(logits, target, max_iterations: int = 100) -> tuple[float, float]:
    """``(intercept a, slope b)`` of the maximum-likelihood fit ``P(y = 1) = sigmoid(a + b · logit)``.

    ``logits`` are the model's logits, ``logit(p̂)`` (the regressor, used as they are: no clipping of
    probabilities near 0 or 1). Newton's method with step halving, in float64; ``(nan, nan)`` when the
    fit has no finite optimum (one class only, or classes separated perfectly by the logits).
    """
    z, y = _pair(logits, target)
    if y.min(initial=1) == y.max(initial=0):
        return math.nan, math.nan
    design = np.stack([np.ones_like(z), z], axis=1)
    w = np.zeros(2)

    def log_likelihood(w: np.ndarray) -> float:
        eta = design @ w
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    current = log_likelihood(w)
    for _ in range(max_iterations):
        eta = design @ w
        p = 0.5 * (1.0 + np.tanh(0.5 * eta))  # sigmoid without overflow
        gradient = design.T @ (y - p)
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            return math.nan, math.nan
        scale = 1.0
        while scale > 1e-8:
            candidate = w + scale * step
            value = log_likelihood(candidate)
            if value >= current - 1e-12:
                break
            scale *= 0.5
        w, previous, current = candidate, current, value
        if abs(current - previous) <= 1e-12 * max(1.0, abs(current)) and np.max(np.abs(scale * step)) < 1e-9:
            break
    if not np.all(np.isfinite(w)) or abs(w[1]) > 1e6:
        return math.nan, math.nan
    return float(w[0]), float(w[1])


def expected_calibration_error(probability, target, bins: int = 10) -> float:
    """``Σ_b (n_b / n) |mean(p̂) - mean(y)|`` over ``bins`` equal-width bins of [0, 1] (empty bins skipped).

    The bins are those of ``calibration_curve(..., strategy="uniform")``: the ECE is the count-weighted
    mean distance of :func:`reliability_curve`'s points from the diagonal.
    """
    p, y = _pair(probability, target)
    # The bins of sklearn.calibration.calibration_curve (an edge value belongs to the bin below it).
    index = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], p)
    counts = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=p, minlength=bins)
    observed = np.bincount(index, weights=y, minlength=bins)
    filled = counts > 0
    return float(np.sum(np.abs(predicted[filled] - observed[filled])) / max(p.size, 1))


def reliability_curve(probability, target, bins: int = 10, strategy: str = "uniform") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean predicted, observed frequency, count)`` per non-empty bin: ``sklearn.calibration.calibration_curve``.

    ``strategy="uniform"``: equal-width bins of [0, 1]; ``"quantile"``: equally filled bins. The counts
    (samples per bin, same order) say how much each point can be trusted.
    """
    p, y = _pair(probability, target)
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy=strategy)
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 100, bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], p)
    counts = np.bincount(index, minlength=len(edges) - 1)
    return predicted, observed, counts[counts > 0]


def probability_metrics(logits, target) -> dict[str, float]:
    """AUROC, AUPRC, Brier score, ECE and the recalibration fit of ``p̂ = sigmoid(logits)``.

    Returns ``{"auroc", "auprc", "brier", "ece", "intercept", "slope", "mean_probability", "positive_share"}``.
    """
    z, y = _pair(logits, target)
    p = 0.5 * (1.0 + np.tanh(0.5 * z))
    intercept, slope = logistic_calibration(z, y)
    both = 0 < y.sum() < y.size
    return {
        "auroc": float(sk_metrics.roc_auc_score(y, z)) if both else math.nan,
        "auprc": float(sk_metrics.average_precision_score(y, z)) if both else math.nan,
        "brier": float(sk_metrics.brier_score_loss(y, p)),
        "ece": expected_calibration_error(p, y),
        "intercept": intercept,
        "slope": slope,
        "mean_probability": float(p.mean()),
        "positive_share": float(y.mean()),
    }


@dataclass(frozen=True)
class OperatingPoint:
    """Counts and rates of predicting positive when ``score >= threshold``."""

    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """``TP / (TP + FP)``; 1.0 when nothing is predicted positive (the PR curve's left end)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """``TP / (TP + FN)``; 0.0 without positives."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


def operating_point(scores, target, threshold: float) -> OperatingPoint:
    """Confusion counts of ``scores >= threshold`` (``sklearn.metrics.confusion_matrix``)."""
    s, y = _pair(scores, target)
    tn, fp, fn, tp = sk_metrics.confusion_matrix(y, (s >= threshold).astype(np.int64), labels=[0, 1]).ravel()
    return OperatingPoint(float(threshold), int(tp), int(fp), int(fn), int(tn))


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold :func:`threshold_for_precision` chose, with its precision and recall on the data it was chosen on.

    ``reached`` is False when no threshold reaches the precision asked for; the threshold is then the
    one with the highest precision (and, among those, the most recall).
    """

    threshold: float
    precision: float
    recall: float
    reached: bool


def threshold_for_precision(scores, target, min_precision: float) -> ThresholdChoice:
    """The lowest threshold ``t`` with ``precision(scores >= t) >= min_precision``: the most recall at that precision.

    Choose it on validation data, then report precision and recall at ``t`` on a test split that played
    no part in the choice (:func:`operating_point`): the validation precision is ``>= min_precision`` by
    construction, the test precision is the honest number and may fall below it.
    Built on ``sklearn.metrics.precision_recall_curve``.
    """
    if not 0.0 <= min_precision <= 1.0:
        raise ValueError(
            f"min_precision={min_precision!r} is not a precision; expected a number in [0, 1].\n"
            "Write instead, e.g.:\n    threshold_for_precision(val_scores, val_target, 0.8)"
        )
    curve = precision_recall_curve(scores, target)
    if curve.thresholds.size == 0:
        return ThresholdChoice(math.inf, 1.0, 0.0, False)
    meets = curve.precision >= min_precision
    if meets.any():
        # recall grows as the threshold falls (index grows); the last index meeting the bound has the most recall.
        k = int(np.flatnonzero(meets)[-1])
        return ThresholdChoice(float(curve.thresholds[k]), float(curve.precision[k]), float(curve.recall[k]), True)
    best = np.flatnonzero(curve.precision == curve.precision.max())
    k = int(best[-1])
    return ThresholdChoice(float(curve.thresholds[k]), float(curve.precision[k]), float(curve.recall[k]), False)
