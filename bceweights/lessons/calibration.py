"""Ranking, calibration and operating points of a binary scorer, with scikit-learn's metrics.

For probabilities ``p̂`` and 0/1 targets ``y`` (any shape, flattened):

* ranking: AUROC (``sklearn.metrics.roc_auc_score``) and AUPRC, the average precision
  (``average_precision_score``); both depend only on the order of the scores;
* calibration: the Brier score ``mean((p̂ - y)²)`` (``brier_score_loss``); the reliability curve
  (``sklearn.calibration.calibration_curve``); the logistic recalibration fit
  ``P(y = 1) = sigmoid(a + b · logit(p̂))``, whose intercept ``a`` and slope ``b`` are 0 and 1 for a
  calibrated model (``b < 1``: too extreme, ``a < 0``: too high on the whole); the expected
  calibration error ``ECE = Σ_bins (n_b / n) |mean(p̂) - mean(y)|`` over equal-width bins (or over
  equally filled bins, ``strategy="quantile"``); the calibration intercept with the slope fixed at 1
  (calibration-in-the-large, :func:`calibration_intercept`); predicted against observed among the
  highest-scored samples (:func:`top_calibration`), where thresholds are chosen;
* operating points: precision and recall of ``p̂ >= t``, and the threshold that reaches a precision
  of at least ``X`` with the most recall (:func:`threshold_for_precision`), chosen on validation data,
  optionally asking the Wilson lower bound of that precision to reach ``X`` (a steadier choice).

scikit-learn has no recalibration fit and no ECE; those are written here (numpy, float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

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


def expected_calibration_error(probability, target, bins: int = 10, strategy: str = "uniform") -> float:
    """``Σ_b (n_b / n) |mean(p̂) - mean(y)|`` over ``bins`` bins (empty bins skipped).

    ``strategy="uniform"``: equal-width bins of [0, 1], those of ``calibration_curve(..., strategy="uniform")``:
    the ECE is the count-weighted mean distance of :func:`reliability_curve`'s points from the diagonal.
    With a rare class almost every sample falls in the first bin [0, 0.1], which then decides the ECE.
    ``strategy="quantile"``: equally filled bins (edges at the quantiles of ``p̂``), so the highest-scored
    tenth of the samples weighs as much as any other tenth.
    """
    p, y = _pair(probability, target)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    elif strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 100, bins + 1))
    else:
        raise ValueError(f'strategy={strategy!r}; expected "uniform" or "quantile".\nWrite instead, e.g.:\n'
                         '    expected_calibration_error(p, y, strategy="quantile")')
    # The bins of sklearn.calibration.calibration_curve (an edge value belongs to the bin below it).
    index = np.searchsorted(edges[1:-1], p)
    counts = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=p, minlength=bins)
    observed = np.bincount(index, weights=y, minlength=bins)
    filled = counts > 0
    return float(np.sum(np.abs(predicted[filled] - observed[filled])) / max(p.size, 1))


def calibration_intercept(logits, target, max_iterations: int = 100) -> float:
    """Calibration-in-the-large: ``a`` of the fit ``P(y = 1) = sigmoid(a + logit)``, the slope fixed at 1.

    ``a`` solves ``Σ sigmoid(a + z_i) = Σ y_i`` (the mean probability matches the positive share), by
    Newton's method in float64; 0 for a model whose probabilities are right on the whole. Adding ``a``
    to the logits is the one-parameter recalibration (an intercept refit). ``nan`` with one class only.
    """
    z, y = _pair(logits, target)
    if y.min(initial=1) == y.max(initial=0):
        return math.nan
    a, positives = 0.0, float(y.sum())
    for _ in range(max_iterations):
        p = 0.5 * (1.0 + np.tanh(0.5 * (z + a)))
        step = (positives - float(p.sum())) / max(float(np.sum(p * (1.0 - p))), 1e-300)
        a += float(np.clip(step, -5.0, 5.0))
        if abs(step) < 1e-12:
            break
    return a


def top_calibration(probability, target, share: float = 0.1) -> tuple[float, float, int]:
    """``(mean predicted, observed frequency, count)`` among the ``share`` highest-scored samples.

    The samples with ``p̂`` at or above the ``1 - share`` quantile: the region where a threshold is
    chosen. A calibrated model has the two close; the ECE over equal-width bins, decided by the many
    low scores, can hide a gap here.
    """
    p, y = _pair(probability, target)
    top = p >= np.quantile(p, 1.0 - share)
    return float(p[top].mean()), float(y[top].mean()), int(top.sum())


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

    Returns ``{"auroc", "auprc", "brier", "ece", "ece_quantile", "intercept", "slope", "intercept_slope1",
    "mean_probability", "positive_share"}``: ``intercept`` and ``slope`` from the joint fit,
    ``intercept_slope1`` the calibration-in-the-large (slope fixed at 1), ``ece_quantile`` over ten
    equally filled bins.
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
        "ece_quantile": expected_calibration_error(p, y, strategy="quantile"),
        "intercept": intercept,
        "slope": slope,
        "intercept_slope1": calibration_intercept(z, y),
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
    """Confusion counts of ``scores >= threshold`` (the cells of ``sklearn.metrics.confusion_matrix``, counted with numpy)."""
    s, y = _pair(scores, target)
    predicted, positive = s >= threshold, y == 1
    tp = int(np.count_nonzero(predicted & positive))
    fp = int(np.count_nonzero(predicted)) - tp
    fn = int(np.count_nonzero(positive)) - tp
    return OperatingPoint(float(threshold), tp, fp, fn, int(s.size) - tp - fp - fn)


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold :func:`threshold_for_precision` chose, with its precision and recall on the data it was chosen on.

    ``reached`` is False when no threshold reaches the precision asked for; the threshold is then the
    one with the highest precision (and, among those, the most recall). ``predicted`` is the number
    of samples at or above the threshold; ``lower`` the Wilson lower bound of the precision from
    those predictions (at the ``confidence`` asked for; ``nan`` when none was).
    """

    threshold: float
    precision: float
    recall: float
    reached: bool
    predicted: int = 0
    lower: float = math.nan


def wilson_lower_bound(successes, n, confidence: float = 0.95) -> np.ndarray:
    """Lower end of the Wilson score interval of ``successes / n``, element by element (numpy).

    ``(p + z²/2n - z sqrt(p(1 - p)/n + z²/4n²)) / (1 + z²/n)``, ``z`` the normal quantile of
    ``0.5 + confidence / 2``: the same bound as :func:`bceweights.lessons.seeds.wilson_interval`, for
    a whole precision-recall curve at once. 0 where ``successes`` or ``n`` is 0.
    """
    k, n = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    safe_n = np.maximum(n, 1.0)
    p = k / safe_n
    centre = p + z * z / (2 * safe_n)
    half = z * np.sqrt(np.maximum(p * (1 - p), 0.0) / safe_n + z * z / (4 * safe_n * safe_n))
    return np.where((k > 0) & (n > 0), np.maximum(0.0, (centre - half) / (1 + z * z / safe_n)), 0.0)


def crossings(values, level: float) -> int:
    """How many times ``values`` (a curve, in order) passes from ``>= level`` to ``< level`` or back."""
    above = np.asarray(values, dtype=np.float64) >= level
    return int(np.count_nonzero(above[1:] != above[:-1]))


def threshold_for_precision(scores, target, min_precision: float, *, confidence: float | None = None) -> ThresholdChoice:
    """The lowest threshold ``t`` whose precision on these data meets ``min_precision``: the most recall at that precision.

    ``confidence=None``: the precision of ``scores >= t`` itself must be ``>= min_precision``. Near the
    target the precision of a noisy curve goes up and down across it many times, and the lowest
    crossing is a matter of a few samples. ``confidence=0.95``: the *Wilson lower bound* of that
    precision (``TP`` successes out of ``TP + FP`` predictions, :func:`wilson_lower_bound`) must meet
    it, so a threshold is taken only when its predictions are numerous enough to show the target:
    a steadier choice, and a test precision that falls below the target only rarely.

    Choose it on validation data, then report precision and recall at ``t`` on a test split that played
    no part in the choice (:func:`operating_point`). Built on ``sklearn.metrics.precision_recall_curve``.
    """
    if not 0.0 <= min_precision <= 1.0:
        raise ValueError(
            f"min_precision={min_precision!r} is not a precision; expected a number in [0, 1].\n"
            "Write instead, e.g.:\n    threshold_for_precision(val_scores, val_target, 0.8)"
        )
    if confidence is not None and not 0.0 < confidence < 1.0:
        raise ValueError(
            f"confidence={confidence!r} is not a coverage; expected a number in (0, 1), or None.\n"
            "Write instead, e.g.:\n    threshold_for_precision(val_scores, val_target, 0.8, confidence=0.95)"
        )
    curve = precision_recall_curve(scores, target)
    if curve.thresholds.size == 0:
        return ThresholdChoice(math.inf, 1.0, 0.0, False)
    tp = np.rint(curve.recall * curve.positives)
    predicted = np.where(tp > 0, np.rint(tp / np.maximum(curve.precision, 1e-300)), 0.0)
    if confidence is None:
        lower = np.full(curve.precision.shape, math.nan)
        meets = curve.precision >= min_precision
    else:
        lower = wilson_lower_bound(tp, predicted, confidence)
        meets = lower >= min_precision
    if meets.any():
        # recall grows as the threshold falls (index grows); the last index meeting the bound has the most recall.
        k = int(np.flatnonzero(meets)[-1])
        reached = True
    else:
        k = int(np.flatnonzero(curve.precision == curve.precision.max())[-1])
        reached = False
    return ThresholdChoice(
        float(curve.thresholds[k]), float(curve.precision[k]), float(curve.recall[k]), reached, int(predicted[k]), float(lower[k]),
    )
