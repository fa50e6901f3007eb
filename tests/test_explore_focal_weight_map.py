"""FocalExplorer and WeightMapExplorer: closed forms against the package, readouts, extremes, exercises."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import special

import bceweights as bw
from bceweights.lessons.exercises import check_lesson07_focal, check_lesson07_weight_map
from bceweights.lessons.exercises.lesson07 import lesson07_focal_answer, lesson07_weight_map_answer
from bceweights.lessons.explore import explorer_classes
from bceweights.lessons.explore.focal import (
    EASY_FROM,
    FocalExplorer,
    easy_share,
    focal_curves,
    focal_sample,
    gradient_shares,
)
from bceweights.lessons.explore.weight_map import (
    WeightMapExplorer,
    cell_scene,
    scene_weights,
    separating_share,
)
from bceweights.weights.maps import unet_weight_map


def autograd_focal(logits: torch.Tensor, target: torch.Tensor, gamma: float, alpha: float | None):
    leaf = logits.clone().requires_grad_(True)
    loss = bw.focal_bce_with_logits(leaf, target, gamma=gamma, alpha=alpha, reduction="none")
    (gradient,) = torch.autograd.grad(loss.sum(), leaf)
    return loss.detach().numpy(), gradient.numpy()


def test_both_explorers_are_discovered():
    classes = explorer_classes()
    assert FocalExplorer in classes and WeightMapExplorer in classes


# --------------------------------------------------------------------------------------------------
# Focal: the closed forms are the package's loss and autograd's gradient


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [None, 0.0, 0.25, 1.0])
def test_focal_closed_forms_equal_package_and_autograd(gamma, alpha):
    logits, target = focal_sample(size=24, seed=3)
    loss, gradient = autograd_focal(logits, target, gamma, alpha)
    y = target.numpy()
    margin = logits.numpy() * (2 * y - 1)
    alpha_t = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    closed_loss, closed_grad = focal_curves(margin, gamma, alpha_t)
    np.testing.assert_allclose(closed_loss, loss, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(closed_grad, np.abs(gradient), rtol=1e-9, atol=1e-14)


def test_focal_curves_are_finite_at_extreme_margins():
    margin = np.array([-40.0, -20.0, 0.0, 20.0, 40.0])
    for gamma in (0.0, 0.3, 5.0):
        loss, gradient = focal_curves(margin, gamma)
        assert np.isfinite(loss).all() and np.isfinite(gradient).all()


def test_gradient_shares_partition_the_total():
    gradient = np.array([1.0, 2.0, 3.0, 4.0])
    prob_true = np.array([0.95, 0.9, 0.7, 0.2])
    shares = gradient_shares(gradient, prob_true)
    assert shares == pytest.approx({"easy": 0.3, "middle": 0.3, "hard": 0.4})
    assert gradient_shares(np.zeros(4), prob_true) == {"easy": 0.0, "middle": 0.0, "hard": 0.0}


def test_gamma_zero_without_alpha_is_bce():
    explorer = FocalExplorer(gamma=0.0)
    assert explorer.readouts["loss_ratio_easy"] == pytest.approx(1.0)
    assert explorer.readouts["grad_ratio_easy"] == pytest.approx(1.0)
    assert explorer.readouts["easy_share_focal"] == pytest.approx(explorer.readouts["easy_share_bce"])
    assert explorer.readouts["hard_share_focal"] == pytest.approx(explorer.readouts["hard_share_bce"])
    for key in ("pos", "neg"):
        np.testing.assert_allclose(explorer._lines["loss", key].get_ydata(), explorer._bce_loss)


@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.5])
def test_easy_ratios_at_q_point_nine(gamma):
    explorer = FocalExplorer(gamma=gamma)
    q = EASY_FROM
    assert explorer.readouts["loss_ratio_easy"] == pytest.approx((1 - q) ** gamma, rel=1e-9)
    bce_gradient = 1 - q
    focal_gradient = (1 - q) ** gamma * ((1 - q) + gamma * q * -math.log(q))
    assert explorer.readouts["grad_ratio_easy"] == pytest.approx(focal_gradient / bce_gradient, rel=1e-9)
    explorer.set(use_alpha=True, alpha=0.25)
    assert explorer.readouts["loss_ratio_easy"] == pytest.approx(0.25 * (1 - q) ** gamma, rel=1e-9)


def test_alpha_scales_positive_and_negative_curves_apart():
    explorer = FocalExplorer(gamma=2.0)
    plain_pos = np.asarray(explorer._lines["loss", "pos"].get_ydata()).copy()
    explorer.set(use_alpha=True, alpha=0.25)
    np.testing.assert_allclose(explorer._lines["loss", "pos"].get_ydata(), 0.25 * plain_pos)
    np.testing.assert_allclose(explorer._lines["loss", "neg"].get_ydata(), 0.75 * plain_pos)
    explorer.set(alpha=0.9)  # alpha is used only while use_alpha is ticked
    explorer.set(use_alpha=False)
    np.testing.assert_allclose(explorer._lines["loss", "neg"].get_ydata(), plain_pos)


def test_easy_share_falls_and_hard_share_rises_with_gamma():
    explorer = FocalExplorer()
    easy, hard = [], []
    for gamma in (0.0, 0.5, 1.0, 2.0, 3.0, 5.0):
        explorer.set(gamma=gamma)
        easy.append(explorer.readouts["easy_share_focal"])
        hard.append(explorer.readouts["hard_share_focal"])
    assert all(a > b for a, b in zip(easy, easy[1:])) and all(a < b for a, b in zip(hard, hard[1:]))
    # The lesson's claim: under BCE the easy pixels carry a large share, at gamma = 2 almost none.
    assert easy[0] > 0.3 and explorer.readouts["easy_pixels"] > 0.8 * 64 * 64
    assert easy_share(2.0) < 0.02


def test_sample_image_shares_match_autograd_of_the_package():
    explorer = FocalExplorer()
    explorer.set(gamma=2.0, use_alpha=True, alpha=0.25)
    logits, target = focal_sample()
    _, gradient = autograd_focal(logits, target, 2.0, 0.25)
    prob = torch.sigmoid(logits)
    prob_true = (prob * target + (1 - prob) * (1 - target)).numpy()
    shares = gradient_shares(np.abs(gradient), prob_true)
    assert explorer.readouts["easy_share_focal"] == pytest.approx(shares["easy"], rel=1e-9)
    assert explorer.readouts["hard_share_focal"] == pytest.approx(shares["hard"], rel=1e-9)


@pytest.mark.parametrize("change", [dict(gamma=5.0), dict(use_alpha=True, alpha=0.0), dict(use_alpha=True, alpha=1.0)])
def test_focal_extremes_plot_finite_values(change):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explorer = FocalExplorer()
        explorer.set(**change)
        explorer.render()
    for label, values in explorer.plotted_arrays():
        assert np.isfinite(values).all(), label
    assert all(math.isfinite(v) for v in explorer.readouts.values())


# --------------------------------------------------------------------------------------------------
# Weight map: the cached recombination is unet_weight_map, the gradient is autograd's


@pytest.mark.parametrize(("w0", "sigma", "class_balance"), [(10.0, 5.0, True), (3.0, 1.0, False), (20.0, 15.0, True)])
def test_scene_weights_equal_unet_weight_map(w0, sigma, class_balance):
    scene = cell_scene(2)
    expected = unet_weight_map(scene.labels, w0=w0, sigma=sigma, class_balance=class_balance, dtype=torch.float64)
    np.testing.assert_allclose(scene_weights(scene, w0, sigma, class_balance), expected.numpy(), rtol=1e-12)


def test_scene_error_is_the_gradient_of_the_package_loss():
    scene = cell_scene(0)
    weights = scene_weights(scene, 10.0, 5.0, True)
    logits = torch.from_numpy(scene.logits).requires_grad_(True)
    loss = bw.bce_with_logits(logits, torch.from_numpy(scene.target), weight=torch.from_numpy(weights), reduction="sum")
    (gradient,) = torch.autograd.grad(loss, logits)
    np.testing.assert_allclose(weights * scene.error, gradient.abs().numpy(), rtol=1e-10, atol=1e-15)
    # The blurry model merges touching cells: most separating pixels are predicted foreground.
    separating = scene.regions["separating"]
    assert (special.expit(scene.logits[separating]) > 0.5).mean() > 0.5


def test_regions_partition_the_image_and_separating_pixels_are_few():
    scene = cell_scene(0)
    total = sum(mask.astype(int) for mask in scene.regions.values())
    assert (total == 1).all()
    assert 0.01 < scene.regions["separating"].mean() < 0.06


def test_without_border_or_class_term_the_map_changes_nothing():
    explorer = WeightMapExplorer()
    explorer.set(w0=0.0, class_balance=False)
    assert explorer.readouts["separating_share_weighted"] == pytest.approx(explorer.readouts["separating_share_plain"])
    assert explorer.readouts["max_weight"] == explorer.readouts["mean_weight"] == 1.0


def test_separating_share_grows_with_w0():
    explorer = WeightMapExplorer()
    shares = []
    for w0 in (0.0, 2.5, 5.0, 10.0, 20.0):
        explorer.set(w0=w0)
        shares.append(explorer.readouts["separating_share_weighted"])
    assert all(a < b for a, b in zip(shares, shares[1:]))
    assert shares[-2] > 2 * explorer.readouts["separating_share_plain"]
    assert explorer.readouts["max_weight"] <= 20.0 + 1.5


def test_large_sigma_spreads_the_weight_into_open_background():
    explorer = WeightMapExplorer(w0=10.0, sigma=5.0)
    narrow = dict(explorer.readouts)
    explorer.set(sigma=15.0)
    assert explorer.readouts["separating_share_weighted"] < narrow["separating_share_weighted"]
    assert explorer.readouts["mean_weight"] > narrow["mean_weight"]


def test_gradient_scale_is_the_ratio_of_autograd_gradients_of_the_package_loss():
    explorer = WeightMapExplorer(w0=10.0, sigma=15.0, class_balance=True, cells=0)
    scene = cell_scene(0)
    weights = scene_weights(scene, 10.0, 15.0, True)
    totals = []
    for weight in (torch.from_numpy(weights), None):
        logits = torch.from_numpy(scene.logits).requires_grad_(True)
        loss = bw.bce_with_logits(logits, torch.from_numpy(scene.target), weight=weight)  # reduction "mean"
        (gradient,) = torch.autograd.grad(loss, logits)
        totals.append(float(gradient.abs().sum()))
    assert explorer.readouts["gradient_scale"] == pytest.approx(totals[0] / totals[1], rel=1e-10)
    # Not the mean weight: the blurry model's errors are not the same at every pixel.
    assert abs(explorer.readouts["gradient_scale"] - explorer.readouts["mean_weight"]) > 0.5
    explorer.set(w0=0.0, class_balance=False)
    assert explorer.readouts["gradient_scale"] == pytest.approx(1.0)


def test_label_images_are_computed_once_per_seed():
    explorer = WeightMapExplorer()
    first = explorer.scene(0)
    explorer.set(cells=3)
    explorer.set(cells=0)
    explorer.set(w0=4.0, sigma=2.0)
    assert explorer.scene(0) is first and set(explorer._scenes) == {0, 3}


@pytest.mark.parametrize("change", [dict(w0=0.0, sigma=1.0), dict(w0=20.0, sigma=15.0), dict(cells=7, class_balance=False)])
def test_weight_map_extremes_plot_finite_values(change):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explorer = WeightMapExplorer()
        explorer.set(**change)
        explorer.render()
    for label, values in explorer.plotted_arrays():
        assert np.isfinite(values).all(), label
    assert all(math.isfinite(v) for v in explorer.readouts.values())


# --------------------------------------------------------------------------------------------------
# Exercises


def test_focal_exercise_answer_is_the_smallest_gamma_on_the_grid():
    answer = lesson07_focal_answer()
    assert easy_share(answer) <= 0.05 < easy_share(round(answer - 0.1, 1))


@pytest.mark.parametrize(
    ("offset", "correct", "phrase"),
    [(0.0, True, "Correct"), (-0.5, False, "try a larger gamma"), (1.0, False, "smallest one")],
)
def test_check_focal_exercise_verdicts(offset, correct, phrase, capsys):
    assert check_lesson07_focal(lesson07_focal_answer() + offset) is correct
    assert phrase in capsys.readouterr().out


@pytest.mark.parametrize(("answer", "phrase"), [(None, "No answer yet"), ("2", "Expected a number"), (9.0, "outside")])
def test_check_focal_exercise_rejects_non_answers(answer, phrase, capsys):
    assert check_lesson07_focal(answer) is False
    assert phrase in capsys.readouterr().out


def test_weight_map_exercise_answer_is_the_smallest_w0_on_the_grid():
    answer = lesson07_weight_map_answer()
    assert separating_share(answer) >= 0.6 > separating_share(answer - 0.5)


@pytest.mark.parametrize(
    ("offset", "correct", "phrase"),
    [(0.0, True, "Correct"), (-2.0, False, "try a larger w0"), (5.0, False, "smaller w0 does too")],
)
def test_check_weight_map_exercise_verdicts(offset, correct, phrase, capsys):
    assert check_lesson07_weight_map(lesson07_weight_map_answer() + offset) is correct
    assert phrase in capsys.readouterr().out


def test_focal_gradient_panel_holds_every_gamma_so_updates_are_blits():
    explorer = FocalExplorer()
    explorer.render()
    before = explorer.full_draw_count
    for gamma in np.arange(0.0, 5.01, 0.25):
        explorer.set(gamma=float(gamma))
        explorer.render()
        assert max(np.max(explorer._lines["grad", key].get_ydata()) for key in ("pos", "neg")) < explorer._grad_axes.get_ylim()[1]
    assert explorer.full_draw_count == before
