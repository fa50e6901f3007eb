"""Lesson 08's experiment (rare_class) and its table (scoreboard): data, sampler, model, runs, scoring."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.metrics import roc_auc_score

from bceweights.lessons.rare_class import (
    METHODS,
    REGIMES,
    Features,
    TinyMLP,
    TrainingSetup,
    batch_indices,
    fit,
    fit_together,
    largest_likelihood_ratio,
    logits_of,
    make_features,
    run_experiment,
    share_where_half_is_reached,
    true_logit,
)
from bceweights.lessons.scoreboard import COLUMNS, ROWS, format_tables, regime_rows, score_experiment
from bceweights.lessons.seeds import Spread

REPO_ROOT = Path(__file__).resolve().parent.parent
SMALL = TrainingSetup(n_train=2000, n_val=2000, n_test=3000, epochs=3, batch_size=250, lr=2e-2)


def test_features_are_seeded_and_have_the_share_asked_for():
    a, b = make_features(50_000, REGIMES["overlapping"], 3), make_features(50_000, REGIMES["overlapping"], 3)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert a.x.dtype == torch.float64 and a.x.shape == (50_000, 2)
    assert float(a.y.mean()) == pytest.approx(0.02, abs=0.002)
    assert not torch.equal(a.x, make_features(50_000, REGIMES["overlapping"], 4).x)


@pytest.mark.parametrize("name", list(REGIMES))
def test_the_posterior_is_bayes_rule_on_the_two_gaussians(name):
    regime = REGIMES[name]
    x = torch.tensor([[0.0, 0.0], [1.5, 0.3], [3.0, -1.0], [-2.0, 2.0]], dtype=torch.float64)
    negative = multivariate_normal(mean=[0, 0], cov=np.eye(2)).pdf(x.numpy())
    positive = multivariate_normal(mean=[regime.separation, 0], cov=regime.spread**2 * np.eye(2)).pdf(x.numpy())
    share = regime.positive_share
    expected = share * positive / (share * positive + (1 - share) * negative)
    np.testing.assert_allclose(torch.sigmoid(true_logit(x, regime)).numpy(), expected, rtol=1e-10)


def test_overlap_keeps_the_true_posterior_below_one_half_and_separation_does_not():
    overlapping = make_features(20_000, REGIMES["overlapping"], 0)
    separated = make_features(20_000, REGIMES["separated"], 0)
    assert float(overlapping.posterior.max()) < 0.5 < float(separated.posterior.max())


def test_the_weighted_sampler_balances_the_classes_and_the_plain_one_visits_each_sample_once():
    train = make_features(4000, REGIMES["overlapping"], 1)
    balanced = torch.cat(batch_indices(train, 500, True, 0))
    assert balanced.numel() == len(train)
    assert float(train.y[balanced].mean()) == pytest.approx(0.5, abs=0.05)
    plain = torch.cat(batch_indices(train, 500, False, 0))
    assert torch.equal(plain.sort().values, torch.arange(len(train)))
    assert all(len(b) == 500 for b in batch_indices(train, 500, False, 0))


@pytest.mark.parametrize("balanced", [False, True])
def test_batch_indices_are_the_samplers_own_draws(balanced):
    from torch.utils.data import RandomSampler, WeightedRandomSampler

    train = make_features(3000, REGIMES["overlapping"], 2)
    generator = torch.Generator().manual_seed(11)
    if balanced:
        positives = float(train.y.sum())
        weights = torch.where(train.y > 0.5, 0.5 / positives, 0.5 / (len(train) - positives))
        sampler = WeightedRandomSampler(weights, num_samples=len(train), replacement=True, generator=generator)
    else:
        sampler = RandomSampler(range(len(train)), generator=generator)
    assert torch.equal(torch.cat(batch_indices(train, 400, balanced, 11)), torch.tensor(list(sampler)))


@pytest.mark.parametrize("method", ["plain BCE", "oversampling", "Dice"])
def test_fit_together_takes_the_steps_each_model_takes_alone(method):
    setup = TrainingSetup(n_train=1500, epochs=3, batch_size=250)
    seeds = (0, 3)
    trains = [make_features(setup.n_train, REGIMES["overlapping"], 10 + s) for s in seeds]
    test = make_features(2000, REGIMES["overlapping"], 99)
    spec = METHODS[method]
    alone, together = [TinyMLP(output_bias=-2.0, seed=s) for s in seeds], [TinyMLP(output_bias=-2.0, seed=s) for s in seeds]
    alone_losses = [fit(m, t, spec.loss(40.0), setup, balanced=spec.balanced, seed=s) for m, t, s in zip(alone, trains, seeds)]
    together_losses = fit_together(together, trains, [spec.loss(40.0)] * 2, setup, seeds=seeds, balanced=spec.balanced)
    for a, b, la, lb in zip(alone, together, alone_losses, together_losses):
        # The same arithmetic up to the order of float64 sums: agreement far below any printed digit.
        torch.testing.assert_close(logits_of(a, test), logits_of(b, test), rtol=1e-7, atol=1e-7)
        assert la == pytest.approx(lb, rel=1e-9)
    # The two seeds' models differ: each kept its own weights.
    assert not torch.allclose(logits_of(together[0], test), logits_of(together[1], test))


def test_fit_together_refuses_mismatched_inputs():
    setup = TrainingSetup(n_train=500, epochs=1, batch_size=250)
    train = make_features(500, REGIMES["overlapping"], 0)
    loss = METHODS["plain BCE"].loss(1.0)
    with pytest.raises(ValueError, match="one training split, loss and seed per model"):
        fit_together([TinyMLP(seed=0)], [train, train], [loss], setup, seeds=(0,))
    with pytest.raises(ValueError, match="differ in size"):
        fit_together([TinyMLP(seed=0), TinyMLP(seed=1)], [train, make_features(600, REGIMES["overlapping"], 1)], [loss, loss], setup, seeds=(0, 1))


def test_tiny_mlp_is_seeded_float64_and_takes_an_output_bias():
    a, b = TinyMLP(seed=3), TinyMLP(seed=3, output_bias=-3.9)
    assert all(torch.equal(p, q) for p, q in zip(a.body.parameters(), b.body.parameters()))
    assert float(b.head.bias.detach()) == pytest.approx(-3.9)
    with torch.no_grad():
        assert a(torch.zeros(7, 2)).shape == (7,) and a(torch.zeros(7, 2)).dtype == torch.float64


@pytest.fixture(scope="module")
def small_experiment():
    return run_experiment(methods=("plain BCE", "pos_weight = neg/pos", "oversampling"), regimes=("overlapping",), seeds=(0, 1), setup=SMALL)


def test_run_experiment_keeps_validation_and_test_logits_of_every_run(small_experiment):
    assert len(small_experiment.runs) == 6 and small_experiment.seeds() == [0, 1]
    run = small_experiment.run("pos_weight = neg/pos", "overlapping", 1)
    assert run.test_logits.shape == (SMALL.n_test,) and run.val_logits.shape == (SMALL.n_val,)
    assert len(run.losses) == SMALL.epochs and all(math.isfinite(v) for v in run.losses)
    train = small_experiment.splits[("overlapping", 1)]["train"]
    assert run.pos_weight == pytest.approx(float((1 - train.y).sum() / train.y.sum()))
    with pytest.raises(KeyError, match="no run"):
        small_experiment.run("Dice", "overlapping", 0)


def test_weighting_shifts_the_logits_up_by_about_log_p_and_keeps_the_ranking(small_experiment):
    plain = small_experiment.run("plain BCE", "overlapping", 0)
    weighted = small_experiment.run("pos_weight = neg/pos", "overlapping", 0)
    shift = float((weighted.test_logits - plain.test_logits).mean())
    assert shift == pytest.approx(math.log(weighted.pos_weight), abs=1.5)
    test = small_experiment.splits[("overlapping", 0)]["test"]
    assert roc_auc_score(test.y, weighted.test_logits) == pytest.approx(roc_auc_score(test.y, plain.test_logits), abs=0.03)


def test_scoreboard_rows_and_table(small_experiment):
    table = score_experiment(small_experiment)
    labels = [label for (_, label) in table]
    assert labels == [row.label for row in ROWS if row.method in METHODS and row.method in {"plain BCE", "pos_weight = neg/pos", "oversampling"}]
    values = table[("overlapping", "pos_weight, logit - log p")]
    unshifted = table[("overlapping", "pos_weight = neg/pos")]
    assert list(values) == list(COLUMNS)
    assert all(isinstance(spread, Spread) and spread.seeds == (0, 1) for spread in values.values())
    # Shifting every logit keeps the ranking and the tuned operating point, changes the calibration.
    for column in ("auroc", "auprc", "tuned_precision", "tuned_recall", "tuned_predicted"):
        np.testing.assert_allclose(values[column].values, unshifted[column].values)
    assert all(a < b for a, b in zip(values["brier"].values, unshifted["brier"].values))
    tuned = table[("overlapping", "plain BCE, tuned t")]
    np.testing.assert_allclose(tuned["t"].values, tuned["tuned_t"].values)
    # The counts behind each precision: predicted positives and the true ones among them.
    for spread_tp, spread_predicted, spread_precision in zip(values["tp"].values, values["predicted"].values, values["precision"].values):
        assert 0 <= spread_tp <= spread_predicted
        assert spread_precision == pytest.approx(spread_tp / spread_predicted if spread_predicted else 0.0)
    assert regime_rows(table, "overlapping")["plain BCE, t = 0.5"] is table[("overlapping", "plain BCE, t = 0.5")]
    text = format_tables(table, "overlapping")
    assert "mean ± sd (lowest–highest) over 2 seeds" in text and "pos_weight, logit - log p" in text
    assert "at 95% confidence" in text and "predicted +" in text
    # Each cell is the Spread's own format, to the digits its spread supports.
    assert values["brier"].format() in text
    with pytest.raises(KeyError, match="no rows"):
        format_tables(table, "separated")


def test_the_tuned_threshold_meets_the_target_with_confidence_on_validation(small_experiment):
    from bceweights.lessons.calibration import operating_point, threshold_for_precision, wilson_lower_bound
    from bceweights.lessons.scoreboard import CONFIDENCE

    target = 0.1
    table = score_experiment(small_experiment, min_precision=target)
    for i, seed in enumerate(small_experiment.seeds()):
        run = small_experiment.run("plain BCE", "overlapping", seed)
        val = small_experiment.splits[("overlapping", seed)]["val"]
        t = table[("overlapping", "plain BCE, tuned t")]["t"].values[i]
        choice = threshold_for_precision(torch.sigmoid(run.val_logits), val.y, target, confidence=CONFIDENCE)
        assert choice.reached and t == choice.threshold
        point = operating_point(torch.sigmoid(run.val_logits), val.y, t)
        assert float(wilson_lower_bound(point.tp, point.tp + point.fp, CONFIDENCE)) >= target
    assert table[("overlapping", "plain BCE, tuned t")]["tuned_reached"].values == (1.0, 1.0)


def test_the_tuned_table_flags_the_seeds_where_the_target_was_not_met(small_experiment):
    """An unreachable target: threshold_for_precision falls back, and the table says so instead of passing it off."""
    from bceweights.lessons.scoreboard import met_on

    table = score_experiment(small_experiment, min_precision=1.0)  # no trained model is that precise on 1000 samples
    assert all(cells["tuned_reached"].values == (0.0, 0.0) for cells in table.values())
    text = format_tables(table, "overlapping").split("\n\n")[-1]
    _, header, *lines = text.split("\n")  # the heading, the column names, the rows
    assert header.endswith("target met on validation")
    assert all(line.endswith("0 of 2 (not seeds 0, 1)") for line in lines)
    reachable = format_tables(score_experiment(small_experiment, min_precision=0.1), "overlapping").split("\n\n")[-1]
    assert all(line.endswith("2 of 2") for line in reachable.split("\n")[2:])
    assert met_on(Spread((1.0, 0.0, 1.0), (7, 8, 9))) == "2 of 3 (not seed 8)"


SCRIPT = r"""
import json
from bceweights.lessons.rare_class import TrainingSetup, run_experiment
setup = TrainingSetup(n_train=1500, n_val=1000, n_test=1000, epochs=2, batch_size=250)
e = run_experiment(methods=("plain BCE", "oversampling", "focal γ=2 α=0.25", "BCE + Dice"), regimes=("separated",), seeds=(0,), setup=setup)
print(json.dumps({"losses": [v for r in e.runs for v in r.losses], "logit_sum": [float(r.test_logits.sum()) for r in e.runs]}))
"""


def test_the_experiment_reproduces_with_the_cpu_capped():
    from tests.test_portability import capped_cpu_env

    results = []
    for extra in ({}, capped_cpu_env()):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", **extra}
        for name in capped_cpu_env():
            if name not in extra:
                env.pop(name, None)
        done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    native, capped = results
    assert native["losses"] == pytest.approx(capped["losses"], rel=1e-10)
    assert native["logit_sum"] == pytest.approx(capped["logit_sum"], rel=1e-9)


def test_features_dataclass_len():
    assert len(Features(torch.zeros(3, 2), torch.zeros(3), torch.zeros(3))) == 3


def test_largest_likelihood_ratio_is_the_peak_of_the_posterior_odds_over_the_prior_odds():
    """The closed form against a grid: max_x logit P(y=1|x) - logit(π), and 0.5 reached exactly from 1/(1+LR)."""
    import dataclasses

    regime = REGIMES["overlapping"]
    grid = torch.stack(torch.meshgrid(torch.linspace(0, 5, 2001, dtype=torch.float64),
                                      torch.linspace(-1, 1, 81, dtype=torch.float64), indexing="xy"), -1).reshape(-1, 2)
    share = regime.positive_share
    on_grid = float((true_logit(grid, regime) - math.log(share / (1 - share))).max())
    assert math.log(largest_likelihood_ratio(regime)) == pytest.approx(on_grid, abs=1e-5)
    assert largest_likelihood_ratio(regime) == pytest.approx(16.11, abs=0.01)
    threshold = share_where_half_is_reached(regime)
    for factor, reaches in ((0.99, False), (1.01, True)):
        shifted = dataclasses.replace(regime, positive_share=threshold * factor)
        assert bool((true_logit(grid, shifted) >= 0).any()) is reaches
    with pytest.raises(ValueError, match="spread"):
        largest_likelihood_ratio(dataclasses.replace(regime, spread=1.2))
