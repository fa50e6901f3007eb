"""The soft Dice losses and the calibration / operating-point metrics, against formulas and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, confusion_matrix, roc_auc_score

import bceweights as bw
from bceweights.lessons.calibration import (
    calibration_intercept,
    expected_calibration_error,
    logistic_calibration,
    operating_point,
    probability_metrics,
    reliability_curve,
    threshold_for_precision,
    top_calibration,
)
from bceweights.lessons.dice import BCEDiceWithLogits, SoftDiceWithLogits, bce_dice_with_logits, soft_dice_with_logits

# --------------------------------------------------------------------------------------------------
# Dice


def _logits_and_masks(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 2, 5, 4, generator=g, dtype=torch.float64) * 2
    masks = (torch.rand(3, 2, 5, 4, generator=g, dtype=torch.float64) < 0.2).double()
    return logits, masks


def test_soft_dice_over_everything_is_one_minus_the_smoothed_ratio():
    logits, masks = _logits_and_masks()
    q = torch.sigmoid(logits)
    expected = 1 - (2 * (q * masks).sum() + 1) / (q.sum() + masks.sum() + 1)
    torch.testing.assert_close(soft_dice_with_logits(logits, masks), expected)
    torch.testing.assert_close(SoftDiceWithLogits()(logits, masks), expected)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_soft_dice_per_image_and_channel(reduction):
    logits, masks = _logits_and_masks(1)
    q = torch.sigmoid(logits)
    per = 1 - (2 * (q * masks).sum((2, 3)) + 0.5) / (q.sum((2, 3)) + masks.sum((2, 3)) + 0.5)
    expected = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    got = soft_dice_with_logits(logits, masks, smooth=0.5, dims=(2, 3), reduction=reduction)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)


def test_perfect_prediction_has_dice_loss_near_zero_and_an_empty_image_is_defined():
    masks = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    masks[0, 0, :2] = 1
    logits = (masks * 2 - 1) * 40
    assert float(soft_dice_with_logits(logits, masks, dims=(1, 2, 3), reduction="none")[0]) < 1e-12
    empty = soft_dice_with_logits(-40 * torch.ones(1, 1, 4, 4, dtype=torch.float64), torch.zeros(1, 1, 4, 4, dtype=torch.float64))
    assert float(empty) == pytest.approx(0.0, abs=1e-12)


def test_bce_dice_is_the_sum_and_its_gradient_flows():
    logits, masks = _logits_and_masks(2)
    logits.requires_grad_(True)
    total = bce_dice_with_logits(logits, masks, dice_weight=0.5, pos_weight=3.0)
    expected = bw.bce_with_logits(logits, masks, pos_weight=3.0) + 0.5 * soft_dice_with_logits(logits, masks)
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(BCEDiceWithLogits(dice_weight=0.5, pos_weight=3.0)(logits, masks), expected)
    (gradient,) = torch.autograd.grad(total, logits)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0


def test_dice_refuses_bad_arguments_with_a_fix():
    logits, masks = _logits_and_masks()
    with pytest.raises(ValueError, match="pairs them element by element"):
        soft_dice_with_logits(logits, masks[:, :1])
    with pytest.raises(ValueError, match="reduction"):
        soft_dice_with_logits(logits, masks, reduction="batchmean")
    with pytest.raises(ValueError, match="smooth"):
        soft_dice_with_logits(logits, masks, smooth=-1.0)
    with pytest.raises(ValueError, match="adds two scalars"):
        bce_dice_with_logits(logits, masks, reduction="none")


# --------------------------------------------------------------------------------------------------
# Calibration and operating points


def _scores(n: int = 3000, seed: int = 0, slope: float = 1.0, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model whose true posterior is sigmoid(z); the scorer reports slope * z + shift."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-2.0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return slope * z + shift, y


@pytest.mark.parametrize("slope, shift", [(1.0, 0.0), (0.5, 1.0), (2.0, -3.0)])
def test_logistic_calibration_recovers_the_distortion_and_matches_scikit_learn(slope, shift):
    scores, y = _scores(20_000, 1, slope, shift)
    intercept, fitted_slope = logistic_calibration(scores, y)
    # y ~ sigmoid(z) and scores = slope z + shift, so y ~ sigmoid((scores - shift) / slope).
    assert fitted_slope == pytest.approx(1 / slope, rel=0.08)
    assert intercept == pytest.approx(-shift / slope, abs=0.15)
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(scores[:, None], y.astype(int))
    assert fitted_slope == pytest.approx(float(reference.coef_[0, 0]), rel=1e-5)
    assert intercept == pytest.approx(float(reference.intercept_[0]), rel=1e-5, abs=1e-6)


def test_logistic_calibration_has_no_answer_for_one_class_or_separated_classes():
    assert all(math.isnan(v) for v in logistic_calibration(np.arange(5.0), np.zeros(5)))
    assert all(math.isnan(v) for v in logistic_calibration(np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0, 0, 1, 1])))


def test_ece_is_the_count_weighted_distance_of_the_reliability_points():
    scores, y = _scores(5000, 2, 1.7, 0.5)
    p = 1 / (1 + np.exp(-scores))
    predicted, observed, counts = reliability_curve(p, y, bins=10)
    sk_observed, sk_predicted = calibration_curve(y, p, n_bins=10)
    np.testing.assert_allclose(predicted, sk_predicted)
    np.testing.assert_allclose(observed, sk_observed)
    assert counts.sum() == p.size
    assert expected_calibration_error(p, y, bins=10) == pytest.approx(float(np.sum(counts * np.abs(predicted - observed)) / p.size))
    _, _, quantile_counts = reliability_curve(p, y, bins=5, strategy="quantile")
    assert quantile_counts.sum() == p.size


def test_probability_metrics_are_scikit_learns():
    scores, y = _scores(4000, 3, 1.3, -0.4)
    metrics = probability_metrics(torch.tensor(scores), torch.tensor(y))
    p = 1 / (1 + np.exp(-scores))
    assert metrics["auroc"] == pytest.approx(roc_auc_score(y, scores))
    assert metrics["auprc"] == pytest.approx(average_precision_score(y, scores))
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, p))
    assert metrics["positive_share"] == pytest.approx(y.mean())


def test_operating_point_counts_are_the_confusion_matrix():
    scores, y = _scores(1000, 4)
    point = operating_point(scores, y, -1.0)
    tn, fp, fn, tp = confusion_matrix(y.astype(int), (scores >= -1.0).astype(int)).ravel()
    assert (point.tp, point.fp, point.fn, point.tn) == (tp, fp, fn, tn)
    assert point.precision == pytest.approx(tp / (tp + fp)) and point.recall == pytest.approx(tp / (tp + fn))
    nothing = operating_point(scores, y, 1e9)
    assert nothing.tp + nothing.fp == 0 and nothing.precision == 1.0 and nothing.recall == 0.0


@pytest.mark.parametrize("target", [0.2, 0.4, 0.6, 0.8])
def test_threshold_for_precision_is_the_lowest_threshold_meeting_the_target(target):
    scores, y = _scores(2000, 5)
    choice = threshold_for_precision(scores, y, target)
    assert choice.reached
    point = operating_point(scores, y, choice.threshold)
    assert point.precision >= target
    assert (choice.precision, choice.recall) == pytest.approx((point.precision, point.recall))
    # Brute force over every distinct score: no threshold with precision >= target has more recall.
    best = max(
        (operating_point(scores, y, t).recall for t in np.unique(scores)[::7] if operating_point(scores, y, t).precision >= target),
        default=0.0,
    )
    assert choice.recall >= best


def test_threshold_for_precision_reports_an_unreachable_target_and_refuses_nonsense():
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    y = np.array([0, 1, 0, 1])
    choice = threshold_for_precision(scores, y, 0.9)
    assert not choice.reached and choice.precision == pytest.approx(0.5)
    with pytest.raises(ValueError, match="not a precision"):
        threshold_for_precision(scores, y, 1.5)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (45, 300), (1, 1), (0, 0)])
def test_wilson_lower_bound_is_the_lower_end_of_seeds_wilson_interval(k, n):
    from bceweights.lessons.calibration import wilson_lower_bound
    from bceweights.lessons.seeds import wilson_interval

    assert float(wilson_lower_bound(k, n)) == pytest.approx(wilson_interval(k, n)[0], abs=1e-12)
    assert float(wilson_lower_bound(k, n, 0.8)) == pytest.approx(wilson_interval(k, n, 0.8)[0], abs=1e-12)


def test_crossings_counts_the_passages_across_a_level():
    from bceweights.lessons.calibration import crossings

    assert crossings([0.1, 0.2, 0.1, 0.3, 0.3, 0.05], 0.15) == 4
    assert crossings([0.5, 0.6], 0.15) == 0 and crossings([], 0.5) == 0
    assert crossings([0.15, 0.1], 0.15) == 1  # at the level counts as above it


@pytest.mark.parametrize("target", [0.2, 0.4, 0.6])
def test_threshold_for_precision_with_confidence_is_the_lowest_threshold_whose_wilson_bound_meets_the_target(target):
    from bceweights.lessons.calibration import wilson_lower_bound

    scores, y = _scores(2000, 6)
    choice = threshold_for_precision(scores, y, target, confidence=0.95)
    plain = threshold_for_precision(scores, y, target)
    assert choice.reached
    point = operating_point(scores, y, choice.threshold)
    assert choice.predicted == point.tp + point.fp
    assert choice.lower == pytest.approx(float(wilson_lower_bound(point.tp, point.tp + point.fp)))
    assert choice.lower >= target and point.precision >= target
    # Asking for confidence can only raise the threshold (fewer, surer predictions).
    assert choice.threshold >= plain.threshold and choice.recall <= plain.recall
    # Brute force: no lower threshold's Wilson bound meets the target.
    lower_ones = np.unique(scores[scores < choice.threshold])[::5]
    for t in lower_ones:
        below = operating_point(scores, y, t)
        assert float(wilson_lower_bound(below.tp, below.tp + below.fp)) < target


def test_threshold_for_precision_refuses_a_confidence_outside_zero_one():
    scores, y = _scores(100, 7)
    with pytest.raises(ValueError, match="not a coverage"):
        threshold_for_precision(scores, y, 0.3, confidence=1.5)


def _calibrated_but_wrong_at_the_top(n: int = 40000, seed: int = 0):
    """Logits whose probabilities are right below 0.2 and twice too high in the top 2 %."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-4.0, 1.0, n)
    true = z.copy()
    top = z >= np.quantile(z, 0.98)
    true[top] = np.log((0.5 / (1 + np.exp(-z[top]))) / (1 - 0.5 / (1 + np.exp(-z[top]))))  # exactly p/2
    y = rng.random(n) < 1 / (1 + np.exp(-true))
    return z, y, top


def test_calibration_intercept_solves_mean_probability_equals_share_and_matches_sklearn_offset_free_fit():
    rng = np.random.default_rng(1)
    z = rng.normal(-3.0, 1.2, 20000)
    y = rng.random(20000) < 1 / (1 + np.exp(-z))
    for shift in (0.0, 2.0, -1.5):
        a = calibration_intercept(z + shift, y)
        assert np.mean(1 / (1 + np.exp(-(z + shift + a)))) == pytest.approx(np.mean(y), rel=1e-9)
        # slope fixed at 1: a shift of the logits comes back as minus that shift (up to the draw's noise)
        assert a == pytest.approx(calibration_intercept(z, y) - shift, abs=1e-6)
    assert abs(calibration_intercept(z, y)) < 0.1  # calibrated by construction
    assert math.isnan(calibration_intercept(z, np.zeros_like(y)))
    metrics = probability_metrics(z + 2.0, y)
    assert metrics["intercept_slope1"] == pytest.approx(calibration_intercept(z + 2.0, y))
    # the joint fit's intercept differs from the slope-1 intercept when the slope is not 1
    sharp = probability_metrics(3 * z, y)
    assert abs(sharp["intercept"] - sharp["intercept_slope1"]) > 0.5


def test_quantile_ece_uses_equally_filled_bins_and_top_calibration_sees_what_the_ece_hides():
    z, y, top = _calibrated_but_wrong_at_the_top()
    p = 1 / (1 + np.exp(-z))
    # equally filled bins: recompute by hand
    edges = np.percentile(p, np.linspace(0, 100, 11))
    index = np.searchsorted(edges[1:-1], p)
    by_hand = sum(abs(p[index == b].sum() - y[index == b].sum()) for b in range(10)) / p.size
    assert expected_calibration_error(p, y, strategy="quantile") == pytest.approx(by_hand)
    assert probability_metrics(z, y)["ece_quantile"] == pytest.approx(by_hand)
    # both ECEs are small (the top 2 % weigh little), the top's gap is large
    assert expected_calibration_error(p, y) < 0.01
    predicted, observed, count = top_calibration(p, y, share=0.02)
    assert count == int(top.sum())
    assert predicted == pytest.approx(p[top].mean())
    assert predicted > 1.6 * observed
    predicted_all, observed_all, _ = top_calibration(p, y, share=0.5)
    assert abs(predicted_all - observed_all) < 0.01
    with pytest.raises(ValueError, match="quantile"):
        expected_calibration_error(p, y, strategy="kmeans")
