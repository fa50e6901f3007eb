"""Lesson 07's experiment (rare_class) and its table (scoreboard): data, sampler, model, runs, scoring."""

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
    make_features,
    run_experiment,
    true_logit,
)
from bceweights.lessons.scoreboard import COLUMNS, ROWS, format_tables, mean_spread, score_experiment

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
    assert values.shape == (2, len(COLUMNS))
    index = {c: i for i, c in enumerate(COLUMNS)}
    # Shifting every logit keeps the ranking and the tuned operating point, changes the calibration.
    for column in ("auroc", "auprc", "tuned_precision", "tuned_recall"):
        np.testing.assert_allclose(values[:, index[column]], unshifted[:, index[column]])
    assert np.all(values[:, index["brier"]] < unshifted[:, index["brier"]])
    tuned = table[("overlapping", "plain BCE, tuned t")]
    np.testing.assert_allclose(tuned[:, index["t"]], tuned[:, index["tuned_t"]])
    text = format_tables(table, "overlapping")
    assert "mean ± sd over 2 seeds" in text and "pos_weight, logit - log p" in text and "±" in text
    with pytest.raises(KeyError, match="no rows"):
        format_tables(table, "separated")


def test_mean_spread_uses_the_sample_standard_deviation():
    mean, spread = mean_spread(np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]]))
    np.testing.assert_allclose(mean, [3.0, 2.0])
    np.testing.assert_allclose(spread, [2.0, 0.0])
    assert mean_spread(np.array([[4.0]]))[1].tolist() == [0.0]


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
