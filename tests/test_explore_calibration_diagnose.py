"""CalibrationExplorer, the recall-is-0 checklist (diagnose) and lesson 08's exercise checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from bceweights.lessons.calibration import operating_point, probability_metrics
from bceweights.lessons.diagnose import CHECK_NAMES, output_bias, recall_zero_checklist
from bceweights.lessons.exercises import (
    check_lesson08_checklist,
    check_lesson08_shift,
    check_lesson08_threshold,
    show_lesson08_solution,
)
from bceweights.lessons.exercises.lesson08 import (
    LESSON08_MIN_PRECISION,
    lesson08_expected_precision_reached,
    lesson08_shift_answer,
    lesson08_threshold_answer,
    lesson08_threshold_data,
)
from bceweights.lessons.explore import explorer_classes
from bceweights.lessons.explore.calibration import CalibrationExplorer
from bceweights.lessons.model import TinyUNet
from bceweights.lessons.rare_class import TinyMLP


def _scorers(n: int = 6000, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(-3.5, 1.5, n)
    target = rng.random(n) < 1 / (1 + np.exp(-logits))  # calibrated by construction
    return {"calibrated": logits, "shifted": logits + 3.0, "sharp": 3 * logits}, target


# --------------------------------------------------------------------------------------------------
# CalibrationExplorer


def test_calibration_explorer_is_discovered():
    assert "CalibrationExplorer" in {cls.__name__ for cls in explorer_classes()}


@pytest.mark.parametrize("method", ["calibrated", "shifted", "sharp"])
@pytest.mark.parametrize("threshold", [0.01, 0.2, 0.5, 0.99])
def test_readouts_are_the_counts_and_metrics_of_the_chosen_method(method, threshold):
    logits, target = _scorers()
    explorer = CalibrationExplorer(logits, target)
    explorer.set(method=method, threshold=threshold)
    p = 1 / (1 + np.exp(-logits[method]))
    point = operating_point(p, target, threshold)
    r = explorer.readouts
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (point.tp, point.fp, point.fn, point.tn)
    assert r["precision"] == pytest.approx(point.precision) and r["recall"] == pytest.approx(point.recall)
    metrics = probability_metrics(logits[method], target)
    for key in ("auroc", "auprc", "brier", "ece", "slope", "intercept"):
        assert r[key] == pytest.approx(metrics[key])
    assert list(explorer._point.get_xdata()) == pytest.approx([point.recall])
    assert list(explorer._threshold_line.get_xdata()) == [threshold, threshold]


def test_shifting_logits_keeps_the_ranking_readouts_and_changes_calibration():
    logits, target = _scorers()
    explorer = CalibrationExplorer(logits, target)
    explorer.set(method="calibrated")
    calibrated = dict(explorer.readouts)
    explorer.set(method="shifted")
    shifted = dict(explorer.readouts)
    assert shifted["auroc"] == pytest.approx(calibrated["auroc"]) and shifted["auprc"] == pytest.approx(calibrated["auprc"])
    assert shifted["brier"] > 2 * calibrated["brier"]
    assert calibrated["slope"] == pytest.approx(1.0, abs=0.15) and shifted["intercept"] == pytest.approx(-3.0, abs=0.4)


def test_moving_the_threshold_or_the_method_only_blits():
    logits, target = _scorers()
    explorer = CalibrationExplorer(logits, target)
    explorer.render()
    full = explorer.full_draw_count
    for change in ({"threshold": 0.3}, {"method": "sharp"}, {"threshold": 0.9}):
        explorer.set(**change)
        explorer.render()
    assert explorer.full_draw_count == full
    x, y = explorer._pr_line.get_data()
    assert np.all(np.diff(x) >= 0) and x[0] == 0.0 and x[-1] == 1.0
    assert all(np.all(np.isfinite(values)) for _, values in explorer.plotted_arrays())


def test_nothing_predicted_gives_a_note_and_finite_readouts():
    logits, target = _scorers()
    explorer = CalibrationExplorer({"low": logits["calibrated"] - 20}, target)
    explorer.set(threshold=0.99)
    assert explorer.readouts["tp"] + explorer.readouts["fp"] == 0
    assert "Nothing is predicted positive" in " ".join(explorer.readout_notes(explorer.values, explorer.readouts))


def test_calibration_explorer_refuses_bad_input():
    logits, target = _scorers()
    with pytest.raises(ValueError, match="empty"):
        CalibrationExplorer({}, target)
    with pytest.raises(ValueError, match="same samples"):
        CalibrationExplorer({"a": logits["calibrated"][:10]}, target)
    with pytest.raises(ValueError, match="NaN"):
        CalibrationExplorer({"a": np.full(target.shape, np.nan)}, target)


# --------------------------------------------------------------------------------------------------
# The checklist


def _overlap_case(n: int = 8000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated logits that never reach 0.5 but rank well (the overlapping case)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-4.5, 1.2, n)
    y = rng.random(n) < 1 / (1 + np.exp(-z))
    return z, y


def test_overlap_fails_posterior_and_threshold_checks_only(capsys):
    z, y = _overlap_case()
    q = y.mean()
    model = TinyMLP(output_bias=math.log(q / (1 - q)))
    report = recall_zero_checklist(z, y, model=model, losses=[0.2, 0.1, 0.08])
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    assert report.failures == ["posterior below 0.5", "evaluation threshold"]
    assert "informative" in report.checks[1].detail
    assert 0 < report.numbers["suggested_threshold"] < 0.5
    printed = capsys.readouterr().out
    assert printed.count("\n") == 4 and "[FAIL] evaluation threshold" in printed


def test_collapsed_model_fails_bias_ranking_and_learning_rate():
    y = np.r_[np.ones(20), np.zeros(980)] > 0.5
    z = np.full(1000, -3.4)
    report = recall_zero_checklist(z, y, model=TinyMLP(output_bias=0.0), losses=[5.0, 0.2, 0.1], verbose=False)
    assert report.failures == ["bias init", "posterior below 0.5", "learning rate and warmup"]
    # recall is 0 and no threshold helps: check 4 warns (the cause is elsewhere), it does not pass
    assert report.warnings == ["evaluation threshold"] and report.checks[3].status == "warn"
    assert "would not help" in report.checks[3].detail
    assert "collapsed" in report.checks[2].detail and "near chance" in report.checks[1].detail


def test_default_bias_on_a_model_that_learned_is_a_warning_not_a_failure():
    z, y = _overlap_case()  # ranks well: AP far above the positive share
    q = float(y.mean())
    floor = -(q * math.log(q) + (1 - q) * math.log(1 - q))
    learned = recall_zero_checklist(z, y, model=TinyMLP(output_bias=0.0), losses=[0.7, 0.9 * floor], verbose=False)
    assert learned.checks[0].status == "warn" and "learned" in learned.checks[0].detail
    assert "bias init" not in learned.failures and learned.warnings == ["bias init"]
    # the same bias on a model whose loss never beat the base rate still fails
    stuck = recall_zero_checklist(z, y, model=TinyMLP(output_bias=0.0), losses=[0.7, 1.01 * floor], verbose=False)
    assert stuck.checks[0].status == "fail"
    # and without losses nothing says it learned: it fails
    assert recall_zero_checklist(z, y, model=TinyMLP(output_bias=0.0), verbose=False).checks[0].status == "fail"
    assert not hasattr(learned, "first_failure")


def test_learned_means_at_least_2_percent_below_the_base_rate_and_the_messages_say_so():
    z, y = _overlap_case()
    q = float(y.mean())
    floor = -(q * math.log(q) + (1 - q) * math.log(1 - q))
    # 1 % below H(q) is not "learned": check 1 fails and check 3 names the 2 % it asks for
    near = recall_zero_checklist(z, y, model=TinyMLP(output_bias=0.0), losses=[0.7, 0.99 * floor], verbose=False)
    assert near.checks[0].status == "fail"
    assert near.checks[2].status == "fail" and "never went 2 % below" in near.checks[2].detail
    # 3 % below: learned, so the default bias only warns, and the warning states the same rule
    below = recall_zero_checklist(z, y, model=TinyMLP(output_bias=0.0), losses=[0.7, 0.97 * floor], verbose=False)
    assert below.checks[0].status == "warn" and "at least 2 % below" in below.checks[0].detail
    assert below.checks[2].status == "ok"


def test_collapse_message_states_the_relative_spread_rule():
    y = np.r_[np.ones(20), np.zeros(980)] > 0.5
    # spread 0.004 around -5: below 0.001 x 5 = 0.005, so collapsed, though above 0.001
    z = -5.0 + 0.004 * np.where(np.arange(1000) % 2 == 0, 1.0, -1.0)
    detail = recall_zero_checklist(z, y, verbose=False).checks[2].detail
    assert "collapsed" in detail and "0.001 × max(1, |mean logit|)" in detail
    # the same spread around -1: 0.004 is above 0.001 x max(1, 1), so not collapsed
    z_near_zero = z + 4.0
    assert "collapsed" not in recall_zero_checklist(z_near_zero, y, verbose=False).checks[2].detail


def test_exploded_logits_fail_the_learning_rate_check_even_when_the_loss_went_down():
    y = np.r_[np.ones(20), np.zeros(980)] > 0.5
    z = np.linspace(-2.0e4, 50.0, 1000)  # a ranking of sorts, but logits in the tens of thousands
    check = recall_zero_checklist(z, y, losses=[0.5, 0.05], verbose=False).checks[2]
    assert check.status == "fail" and "blew them up" in check.detail and "2e+04" in check.detail
    # the same ranking at a trained model's scale passes
    assert recall_zero_checklist(z / 400.0, y, losses=[0.5, 0.05], verbose=False).checks[2].status == "ok"


def test_probabilities_passed_as_logits_fail_the_threshold_check_and_skip_checks_2_and_3():
    z, y = _overlap_case()
    report = recall_zero_checklist(1 / (1 + np.exp(-z)), y, losses=[0.2, 0.1], verbose=False)
    assert report.checks[0].status == "skip"
    assert report.failures == ["evaluation threshold"] and "probabilities" in report.checks[3].detail
    # every probability "reaches 0.5" after a second sigmoid and their spread is tiny: checks 2 and 3 would
    # read the wrong scale, so they say so instead of reporting [ok]
    for check in report.checks[1:3]:
        assert check.status == "skip" and "probabilities, not logits" in check.detail and "torch.logit" in check.detail
    # the same values as logits: the probabilities test does not fire and checks 2 and 3 run
    on_logits = recall_zero_checklist(z, y, losses=[0.2, 0.1], verbose=False)
    assert [c.status for c in on_logits.checks[1:]] == ["fail", "ok", "fail"]


def test_outputs_that_reach_the_threshold_pass_check_2_only_when_a_positive_does():
    z, y = _overlap_case()
    assert (1 / (1 + np.exp(-z)) < 0.5).all()
    negative = int(np.flatnonzero(~y)[0])
    one_negative = z.copy()
    one_negative[negative] = 3.0  # one negative output reaches 0.5: recall is still 0
    report = recall_zero_checklist(one_negative, y, verbose=False)
    check_2 = report.checks[1]
    assert check_2.status == "warn" and f"only 1 of {y.size} outputs reach 0.5, none of them positive" in check_2.detail
    assert "posterior below 0.5" in report.warnings and "informative" in check_2.detail
    assert report.numbers["outputs_reaching_threshold"] == 1 and report.numbers["positives_reaching_threshold"] == 0
    assert report.checks[3].status == "fail"  # recall 0 at 0.5, and a lower threshold helps
    positive = int(np.flatnonzero(y)[0])
    one_positive = z.copy()
    one_positive[positive] = 3.0
    check_2 = recall_zero_checklist(one_positive, y, verbose=False).checks[1]
    assert check_2.status == "ok" and f"1 of {int(y.sum())} positives among them" in check_2.detail
    # a collapsed model with one stray output at the threshold: the warning points at checks 1 and 3
    y_flat = np.r_[np.ones(20), np.zeros(980)] > 0.5
    z_flat = np.full(1000, -3.4)
    z_flat[-1] = 0.0
    flat = recall_zero_checklist(z_flat, y_flat, verbose=False).checks[1]
    assert flat.status == "warn" and "near chance" in flat.detail


def test_bias_and_base_rate_loss_use_the_training_share_when_given():
    z, y = _overlap_case()
    q_val = float(y.mean())
    q_train = q_val / 4  # a training split with a quarter of the validation share of positives
    entropy = lambda q: -(q * math.log(q) + (1 - q) * math.log(1 - q))  # noqa: E731
    losses = [entropy(q_train), 0.99 * entropy(q_train)]  # below the validation base rate only
    by_val = recall_zero_checklist(z, y, losses=losses, verbose=False)
    by_train = recall_zero_checklist(z, y, losses=losses, train_share=q_train, verbose=False)
    assert by_val.numbers["prior_entropy"] == pytest.approx(entropy(q_val))
    assert by_train.numbers["prior_entropy"] == pytest.approx(entropy(q_train))
    assert by_train.numbers["prior_logit"] == pytest.approx(math.log(q_train / (1 - q_train)))
    assert by_train.numbers["positive_share"] == pytest.approx(q_val)  # checks 2 and 4 stay on the targets
    assert "never went 2 % below" not in by_val.checks[2].detail
    assert "never went 2 % below" in by_train.checks[2].detail
    built = TinyMLP(output_bias=math.log(q_train / (1 - q_train)))  # started at the training prior
    assert recall_zero_checklist(z, y, model=built, verbose=False).checks[0].status == "fail"  # log 4 > 1 away
    check_1 = recall_zero_checklist(z, y, model=built, train_share=q_train, verbose=False).checks[0]
    assert check_1.status == "ok" and "on the training data" in check_1.detail
    with pytest.raises(ValueError, match="train_share=float"):
        recall_zero_checklist(z, y, train_share=1.0, verbose=False)


def test_rising_or_non_finite_losses_fail_the_learning_rate_check():
    z, y = _overlap_case()
    assert "rose" in recall_zero_checklist(z, y, losses=[0.1, 0.3], verbose=False).checks[2].detail
    assert "NaN" in recall_zero_checklist(z, y, losses=[0.1, float("nan")], verbose=False).checks[2].detail
    z_bad = z.copy()
    z_bad[0] = np.inf
    assert "NaN or infinite" in recall_zero_checklist(z_bad, y, verbose=False).checks[2].detail


def test_a_healthy_model_passes_and_one_class_is_skipped():
    rng = np.random.default_rng(1)
    y = rng.random(4000) < 0.3
    z = np.where(y, 2.0, -2.0) + rng.standard_normal(4000)
    report = recall_zero_checklist(torch.tensor(z), torch.tensor(y), model=TinyMLP(output_bias=-0.85), losses=[0.6, 0.3], verbose=False)
    assert report.failures == [] and report.warnings == []
    assert all(c.status == "skip" for c in recall_zero_checklist(z, np.zeros(4000), verbose=False).checks)
    with pytest.raises(ValueError, match="pair up"):
        recall_zero_checklist(z[:10], y, verbose=False)


def test_output_bias_reads_the_last_single_output_layer():
    assert output_bias(TinyMLP(output_bias=-2.5)) == pytest.approx(-2.5)
    assert output_bias(TinyUNet(1, 1, output_bias=-1.5)) == pytest.approx(-1.5)
    assert output_bias(TinyUNet(1, 3)) is None
    assert output_bias(nn.Sequential(nn.ReLU())) is None


# --------------------------------------------------------------------------------------------------
# Lesson 08's exercises


@pytest.mark.parametrize(
    "answer, correct, phrase",
    [
        (None, False, "No answer yet"),
        ("0.06", False, "Expected a number"),
        (1.5, False, "not a probability"),
        (1 / (1 + math.exp(-1.2)), False, "own probability"),
        (1 / (1 + math.exp(-1.2 - math.log(49))), False, "wrong way"),
        (0.3, False, "Not yet"),
        (lesson08_shift_answer(), True, "Correct"),
        (torch.tensor(0.0635), True, "Correct"),
    ],
)
def test_check_lesson08_shift(answer, correct, phrase, capsys):
    assert check_lesson08_shift(answer) is correct
    assert phrase in capsys.readouterr().out


def test_check_lesson08_threshold_accepts_any_threshold_with_the_same_validation_cut(capsys):
    right = lesson08_threshold_answer()
    data = lesson08_threshold_data()
    scores = np.sort(data["val_scores"].numpy())
    below = scores[np.searchsorted(scores, right) - 1]
    assert check_lesson08_threshold(right) is True
    assert check_lesson08_threshold((right + below) / 2) is True
    assert check_lesson08_threshold(below / 2) is False
    assert check_lesson08_threshold(0.999) is False
    out = capsys.readouterr().out
    assert out.count("Correct") == 2 and "Not yet" in out
    # The right answer's message says why the test precision falls short: few predictions behind it, and a
    # precision to expect (the mean true posterior above the threshold) below the target.
    assert "Wilson lower bound" in out and "reached=True" in out and "the mean score above it" in out
    assert check_lesson08_threshold(None) is False


def test_lesson08_threshold_answer_is_the_lowest_validation_threshold_at_the_target_and_the_target_is_reachable():
    data = lesson08_threshold_data()
    scores, target = data["val_scores"].numpy(), data["val_target"].numpy() > 0.5
    order = np.argsort(-scores, kind="stable")
    precision = np.cumsum(target[order]) / np.arange(1, len(scores) + 1)
    # the most recall at precision >= LESSON08_MIN_PRECISION: the deepest cut (ties share a cut) that meets it
    cuts = [k for k in range(len(scores)) if k == len(scores) - 1 or scores[order[k]] != scores[order[k + 1]]]
    deepest = max(k for k in cuts if precision[k] >= LESSON08_MIN_PRECISION)
    assert lesson08_threshold_answer() == pytest.approx(float(scores[order[deepest]]))
    # the scores are the true posterior: the target is reachable in expectation (it is below the largest
    # posterior), but not at the answer's threshold, whose validation precision was luck
    assert float(scores.max()) > LESSON08_MIN_PRECISION
    expected_at_answer = float(scores[scores >= lesson08_threshold_answer()].mean())
    assert expected_at_answer < LESSON08_MIN_PRECISION
    reached_from, count = lesson08_expected_precision_reached(LESSON08_MIN_PRECISION)
    assert reached_from > lesson08_threshold_answer() and count == int((scores >= reached_from).sum())
    assert float(scores[scores >= reached_from].mean()) >= LESSON08_MIN_PRECISION


@pytest.mark.parametrize(
    "answer, correct, phrase",
    [
        (None, False, "No answer yet"),
        ("learning rate", False, "Expected one of"),
        ("bias init", False, "passes"),
        (2, False, "Not yet"),
        ("Evaluation threshold", True, "Correct"),
        (4, True, "Correct"),
    ],
)
def test_check_lesson08_checklist(answer, correct, phrase, capsys):
    assert check_lesson08_checklist(answer) is correct
    assert phrase in capsys.readouterr().out


def test_solutions_print_only_on_request(capsys):
    for name in ("shift", "threshold", "checklist"):
        show_lesson08_solution(name)
    out = capsys.readouterr().out
    assert "math.log(49)" in out and "threshold_for_precision" in out and "recall_zero_checklist" in out
    show_lesson08_solution("other")
    assert "Choose one of" in capsys.readouterr().out
