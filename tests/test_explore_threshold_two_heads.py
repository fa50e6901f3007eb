"""ThresholdExplorer and TwoHeadsExplorer: readouts against independent computations, and the exercise checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bceweights as bw
from bceweights.lessons.exercises import check_lesson05_1
from bceweights.lessons.explore import explorer_classes
from bceweights.lessons.explore.threshold import ThresholdExplorer, matching_threshold
from bceweights.lessons.explore.two_heads import (
    TARGET_COLOURS,
    TwoHeadsExplorer,
    class_weights_as_bce,
    heads,
    single_label_target,
)
from bceweights.lessons.data import PLATE_CLASSES
from bceweights.lessons.metrics import channel_metrics


def test_both_explorers_are_discovered_by_the_benchmark():
    names = {cls.__name__ for cls in explorer_classes()}
    assert {"ThresholdExplorer", "TwoHeadsExplorer"} <= names


# --------------------------------------------------------------------------------------------------
# ThresholdExplorer


def _logits_and_target(n: int = 4000, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = (torch.rand(n, generator=g) < 0.1).float()
    logits = 1.5 * (2 * target - 1) + torch.randn(n, generator=g) - 2.0
    return logits, target


@pytest.mark.parametrize("pos_weight, threshold", [(1.0, 0.5), (4.0, 0.5), (0.1, 0.3), (100.0, 0.99), (0.01, 0.01)])
def test_threshold_readouts_equal_metrics_at_the_shifted_cut(pos_weight, threshold):
    logits, target = _logits_and_target()
    explorer = ThresholdExplorer(logits, target)
    explorer.set(pos_weight=pos_weight, threshold=threshold)
    predicted = torch.sigmoid(logits.double() + math.log(pos_weight)) >= threshold
    expected = channel_metrics(predicted.view(1, 1, -1), target.view(1, 1, -1), zero_division=1.0)
    assert explorer.readouts["precision"] == pytest.approx(float(expected.precision[0]))
    assert explorer.readouts["recall"] == pytest.approx(float(expected.recall[0]))
    assert explorer.readouts["predicted_fraction"] == pytest.approx(float(predicted.double().mean()))
    cut = math.log(threshold / (1 - threshold)) - math.log(pos_weight)
    assert explorer.readouts["cut_logit"] == pytest.approx(cut)
    assert explorer.readouts["unweighted_threshold"] == pytest.approx(1 / (1 + math.exp(-cut)))


@pytest.mark.parametrize("pos_weight", [2.0, 9.0, 30.0])
def test_shifting_by_log_p_equals_threshold_one_over_one_plus_p(pos_weight):
    logits, target = _logits_and_target()
    explorer = ThresholdExplorer(logits, target)
    explorer.set(pos_weight=pos_weight, threshold=0.5)
    shifted = dict(explorer.readouts)
    explorer.set(pos_weight=1.0, threshold=round(matching_threshold(pos_weight), 2))
    # The slider's 0.01 step rounds 1/(1+p); compare the cut, and the point where the rounding is exact.
    assert shifted["unweighted_threshold"] == pytest.approx(matching_threshold(pos_weight))
    if pos_weight == 9.0:
        assert explorer.readouts["precision"] == pytest.approx(shifted["precision"])
        assert explorer.readouts["recall"] == pytest.approx(shifted["recall"])


def test_threshold_histograms_move_by_log_p_and_plot_retrained_points():
    logits, target = _logits_and_target()
    explorer = ThresholdExplorer(logits, target, retrained={4.0: (0.5, 0.9)})
    before = np.asarray(explorer._hist_lines["pos"].get_xdata(), dtype=float)
    explorer.set(pos_weight=10.0)
    after = np.asarray(explorer._hist_lines["pos"].get_xdata(), dtype=float)
    np.testing.assert_allclose(after - before, math.log(10.0))
    markers = [line for line in explorer._pr_axes.lines if line.get_marker() == "s"]
    assert len(markers) == 1 and list(markers[0].get_xdata()) == [0.9] and list(markers[0].get_ydata()) == [0.5]


def test_threshold_explorer_refuses_unpaired_or_non_finite_logits():
    with pytest.raises(ValueError, match="pair up"):
        ThresholdExplorer(torch.zeros(5), torch.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        ThresholdExplorer(torch.tensor([0.0, float("nan")]), torch.tensor([0.0, 1.0]))


def test_threshold_explorer_without_positives_stays_finite():
    explorer = ThresholdExplorer(torch.linspace(-3, 3, 50), torch.zeros(50))
    for threshold in (0.01, 0.99):
        explorer.set(threshold=threshold, pos_weight=100.0)
        explorer.render()
        assert all(np.isfinite(v) for v in explorer.readouts.values())


@pytest.mark.parametrize(
    "answer, correct, phrase",
    [
        (None, False, "No answer yet"),
        ("0.1", False, "Expected a number"),
        (1.5, False, "not a usable threshold"),
        (0.9, False, "wrong way"),
        (1 / 9, False, "1/p"),
        (0.3, False, "Not yet"),
        (0.1, True, "Correct"),
        (torch.tensor(0.1), True, "Correct"),
    ],
)
def test_check_lesson05_1_verdicts(answer, correct, phrase, capsys):
    assert check_lesson05_1(answer) is correct
    assert phrase in capsys.readouterr().out


@pytest.mark.parametrize("pos_weight", [0.1, 1.0, 9.0, 100.0])
def test_gradient_shares_equal_autograd_and_ignore_the_threshold(pos_weight):
    logits, target = _logits_and_target()
    explorer = ThresholdExplorer(logits, target)
    explorer.set(pos_weight=pos_weight, threshold=0.3)
    for key, shift in (("grad_share_pos_start", 0.0), ("grad_share_pos_shifted", math.log(pos_weight))):
        x = (logits.double() + shift).requires_grad_(True)
        loss = bw.bce_with_logits(x, target.double(), pos_weight=pos_weight, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, x)
        push = gradient.abs()
        expected = float(push[target > 0.5].sum() / push.sum())
        assert explorer.readouts[key] == pytest.approx(expected, rel=1e-9)
    before = dict(explorer.readouts)
    explorer.set(threshold=0.8)
    assert explorer.readouts["grad_share_pos_start"] == before["grad_share_pos_start"]
    heights = explorer._grad_pos_line.get_ydata()
    assert heights == pytest.approx(pos_weight / (1 + np.exp(explorer._grad_x)))


def test_shifted_calibrated_model_has_balanced_pushes():
    g = torch.Generator().manual_seed(3)
    logits = 3 * torch.randn(200_000, generator=g, dtype=torch.float64) - 2
    target = (torch.rand(200_000, generator=g, dtype=torch.float64) < torch.sigmoid(logits)).double()
    explorer = ThresholdExplorer(logits, target)
    explorer.set(pos_weight=9.0)
    assert explorer.readouts["grad_share_pos_start"] == pytest.approx(0.9, abs=0.01)
    assert explorer.readouts["grad_share_pos_shifted"] == pytest.approx(0.5, abs=0.01)


# --------------------------------------------------------------------------------------------------
# TwoHeadsExplorer


@pytest.mark.parametrize("colour", list(TARGET_COLOURS))
@pytest.mark.parametrize(
    "logits, class_logits",
    [((2.0, -3.0, 2.0), (-3.0, 0.0, 2.0)), ((-10.0, 10.0, 0.0), (10.0, -10.0, 0.0)), ((10.0,) * 3, (10.0,) * 3),
     ((-10.0,) * 3, (-10.0,) * 3)],
)
def test_two_heads_readouts_equal_torch(colour, logits, class_logits):
    explorer = TwoHeadsExplorer()
    explorer.set(red=logits[0], green=logits[1], blue=logits[2], z_green=class_logits[0], z_blue=class_logits[1],
                 z_magenta=class_logits[2], target=colour)
    x = torch.tensor(logits, dtype=torch.float64)
    z = torch.tensor((0.0, *class_logits), dtype=torch.float64)
    membership = torch.tensor(TARGET_COLOURS[colour], dtype=torch.float64)
    index = list(PLATE_CLASSES).index(colour)
    r = explorer.readouts
    assert r["bce"] == pytest.approx(float(F.binary_cross_entropy_with_logits(x, membership)), rel=1e-9, abs=1e-12)
    assert r["ce"] == pytest.approx(float(F.cross_entropy(z[None], torch.tensor([index]))), rel=1e-9, abs=1e-12)
    assert [r["p_red"], r["p_green"], r["p_blue"]] == pytest.approx(torch.sigmoid(x).tolist())
    assert [r[f"q_{name}"] for name in PLATE_CLASSES] == pytest.approx(z.softmax(0).tolist())
    assert r["q_target"] == r[f"q_{colour}"]
    via_heads = heads(x, z, colour)
    assert float(via_heads["bce"]) == pytest.approx(r["bce"], rel=1e-9, abs=1e-12)
    assert float(via_heads["ce"]) == pytest.approx(r["ce"], rel=1e-9, abs=1e-12)
    # Gradients: the readouts against autograd through bceweights and F.cross_entropy.
    assert [r[f"grad_bce_{c}"] for c in ("red", "green", "blue")] == pytest.approx(via_heads["grad_bce"].tolist(), abs=1e-12)
    assert [r[f"grad_ce_{name}"] for name in PLATE_CLASSES] == pytest.approx(via_heads["grad_ce"].tolist(), abs=1e-12)
    assert sum(r[f"grad_ce_{name}"] for name in PLATE_CLASSES) == pytest.approx(0.0, abs=1e-12)
    p = torch.sigmoid(x)
    expected_p_target = float(torch.where(membership > 0.5, p, 1 - p).prod())
    assert r["p_target"] == pytest.approx(expected_p_target)


def test_the_explorer_uses_lesson_05s_class_set():
    explorer = TwoHeadsExplorer()
    assert [value for _, value in explorer.controls["target"].options] == list(PLATE_CLASSES)
    assert TARGET_COLOURS == {name: tuple(float(v) for v in m) for name, m in PLATE_CLASSES.items()}
    assert single_label_target("magenta") == (0.0, 0.0, 0.0, 1.0)


def test_both_heads_can_learn_magenta():
    explorer = TwoHeadsExplorer()
    explorer.set(red=10.0, green=-10.0, blue=10.0, z_green=-10.0, z_blue=0.0, z_magenta=10.0, target="magenta")
    assert explorer.readouts["bce"] < 1e-4 and explorer.readouts["ce"] < 1e-3
    assert explorer.readouts["p_target"] > 0.999 and explorer.readouts["q_magenta"] > 0.999


def test_bce_gradient_of_a_channel_depends_on_that_channel_only():
    explorer = TwoHeadsExplorer()
    explorer.set(red=1.0, green=-2.0, blue=0.5, target="magenta")
    before = explorer.readouts["grad_bce_red"]
    explorer.set(green=7.0, blue=-4.0, z_magenta=-5.0)
    assert explorer.readouts["grad_bce_red"] == pytest.approx(before)
    assert before == pytest.approx((1 / (1 + math.exp(-1.0)) - 1.0) / 3)


def test_bars_follow_the_readouts_and_no_update_redraws_the_axes():
    explorer = TwoHeadsExplorer()
    explorer.render()
    full = explorer.full_draw_count
    explorer.set(red=3.0, green=-1.0, blue=0.5, z_blue=2.0, target="blue")
    explorer.render()
    explorer.set(target="black")
    explorer.render()
    assert explorer.full_draw_count == full
    heights = [bar.get_height() for bar in explorer._bars["ml"]]
    assert heights == pytest.approx([explorer.readouts[k] for k in ("p_red", "p_green", "p_blue")])
    heights = [bar.get_height() for bar in explorer._bars["sl"]]
    assert heights == pytest.approx([explorer.readouts[f"q_{name}"] for name in PLATE_CLASSES])
    gradients = [bar.get_height() for bar in explorer._grad_bars]
    names = [f"grad_bce_{c}" for c in ("red", "green", "blue")] + [f"grad_ce_{n}" for n in PLATE_CLASSES]
    assert gradients == pytest.approx([explorer.readouts[k] for k in names])
    assert list(explorer._targets["sl"].get_ydata()) == [1.0, 0.0, 0.0, 0.0]


def test_class_weights_as_bce_matches_weighted_cross_entropy_per_element():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, generator=g, dtype=torch.float64) * 3
    y = (torch.rand(200, generator=g) < 0.4).double()
    class_weights = (0.5, 4.0)
    options = class_weights_as_bce(class_weights)
    assert options == {"weight": 0.5, "pos_weight": 8.0}
    bce = bw.bce_with_logits(x, y, reduction="none", **options)
    ce = F.cross_entropy(
        torch.stack([torch.zeros_like(x), x], 1), y.long(), weight=torch.tensor(class_weights, dtype=torch.float64),
        reduction="none",
    )
    torch.testing.assert_close(bce, ce)
    with pytest.raises(ValueError, match="weight map"):
        class_weights_as_bce((0.0, 1.0))


