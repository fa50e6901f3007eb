"""The statistics over seeds (bceweights.lessons.seeds) and the perturbation switch (bceweights.lessons.perturb)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bceweights.lessons import perturb
from bceweights.lessons.model import TinyUNet
from bceweights.lessons.rare_class import TinyMLP
from bceweights.lessons.seeds import (
    Spread,
    bootstrap_interval,
    check_every_seed,
    check_pairs,
    format_table,
    over_seeds,
    wilson_interval,
)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def test_over_seeds_gathers_each_figure_in_seed_order():
    spreads = over_seeds(lambda s: {"a": s * 2.0, "b": -s}, range(3))
    assert list(spreads) == ["a", "b"]
    assert spreads["a"].values == (0.0, 2.0, 4.0) and spreads["a"].seeds == (0, 1, 2)
    assert spreads["a"].mean == 2.0 and spreads["a"].sd == 2.0
    assert (spreads["b"].low, spreads["b"].high) == (-2.0, 0.0)


def test_over_seeds_refuses_changing_names_and_no_seed():
    with pytest.raises(ValueError, match="returned figures"):
        over_seeds(lambda s: {"a": 1.0} if s == 0 else {"b": 1.0}, range(2))
    with pytest.raises(ValueError, match="at least one seed"):
        over_seeds(lambda s: {"a": 1.0}, [])


@given(st.lists(finite, min_size=2, max_size=12))
def test_spread_matches_numpy(values):
    spread = Spread(tuple(values), tuple(range(len(values))))
    assert spread.mean == pytest.approx(np.mean(values), abs=1e-9)
    assert spread.sd == pytest.approx(np.std(values, ddof=1), abs=1e-9)
    assert spread.low <= spread.mean + 1e-9 and spread.mean <= spread.high + 1e-9


@pytest.mark.parametrize(("values", "decimals", "text"), [
    ((0.15, 0.21, 0.27), 2, "0.21 ± 0.06 (0.15–0.27)"),
    ((0.101, 0.104, 0.107), 3, "0.104 ± 0.003 (0.101–0.107)"),
    ((12.0, 30.0, 48.0), 0, "30 ± 18 (12–48)"),
    ((0.5, 0.5), 4, "0.5000 ± 0.0000 (0.5000–0.5000)"),
    ((-5.2, -4.1, -3.3), 1, "-4.2 ± 1.0 (-5.2 to -3.3)"),
    ((-0.8, -0.4, -0.01), 1, "-0.4 ± 0.4 (-0.8 to 0.0)"),
])
def test_format_prints_the_digits_the_spread_supports(values, decimals, text):
    spread = Spread(values, tuple(range(len(values))))
    assert spread.decimals() == decimals
    assert spread.format() == text == str(spread)


def test_checks_hold_on_every_seed_or_name_the_seeds_that_fail():
    recall = Spread((0.8, 0.9, 0.75), (0, 1, 2))
    ok = check_every_seed("recall above 0.7", recall, above=0.7)
    assert ok.ok and str(ok) == "[ok] recall above 0.7: on 3 of 3 seeds"
    failed = check_every_seed("recall above 0.78", recall, above=0.78)
    assert not failed.ok and str(failed) == "[FAIL] recall above 0.78: on 2 of 3 seeds, 3 needed (not on seed 2)"
    assert check_every_seed("between", recall, above=0.7, below=0.85).passed == (True, False, True)
    with pytest.raises(ValueError, match="needs a bound"):
        check_every_seed("no bound", recall)


def test_at_least_prints_the_bound_not_the_count():
    recall = Spread((0.8, 0.0, 0.75, 0.9), (0, 1, 2, 3))
    most = check_every_seed("recall above 0.5", recall, above=0.5, at_least=3)
    assert most.ok and str(most) == "[ok] recall above 0.5: on at least 3 of 4 seeds"
    every = check_every_seed("recall above 0.5", recall, above=0.5, at_least=4)
    assert not every.ok and str(every) == "[FAIL] recall above 0.5: on 3 of 4 seeds, 4 needed (not on seed 1)"
    with pytest.raises(ValueError, match="must lie in"):
        check_every_seed("x", recall, above=0.5, at_least=5)


def test_check_pairs_compares_seed_by_seed_with_a_margin():
    a, b = Spread((0.5, 0.6), (0, 1)), Spread((0.1, 0.55), (0, 1))
    assert check_pairs("a above b", a, b).ok
    assert check_pairs("a above b by 0.1", a, b, margin=0.1).passed == (True, False)
    with pytest.raises(ValueError, match="seeds differ"):
        check_pairs("x", a, Spread((0.1, 0.2), (0, 2)))


def test_an_undefined_value_is_left_out_of_the_statistics_and_meets_no_bound():
    precision = Spread((0.5, math.nan, 0.7), (0, 1, 2))
    assert precision.defined == (0.5, 0.7) and precision.mean == pytest.approx(0.6)
    assert precision.format() == "0.6 ± 0.1 (0.5–0.7) on the 2 of 3 seeds where it is defined"
    assert check_every_seed("precision above 0.4", precision, above=0.4).passed == (True, False, True)
    assert Spread((math.nan,), (0,)).format() == "n/a (undefined on all 1 seeds)"


def test_minus_subtracts_seed_by_seed():
    a, b = Spread((0.5, 0.6), (0, 1)), Spread((0.1, 0.7), (0, 1))
    assert a.minus(b).values == pytest.approx((0.4, -0.1)) and a.minus(b).seeds == (0, 1)
    with pytest.raises(ValueError, match="seeds differ"):
        a.minus(Spread((0.1, 0.2), (0, 2)))


def test_wilson_interval_known_values():
    # Wilson (1927) / Newcombe (1998), 95 %: 0 of 10 -> (0, 0.2775); 15 of 148 -> (0.0623, 0.1608).
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(15, 148)
    assert (low, high) == (pytest.approx(0.0624, abs=1e-4), pytest.approx(0.1605, abs=1e-4))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


@given(st.integers(1, 500), st.data())
@settings(max_examples=60)
def test_wilson_interval_contains_the_proportion_and_narrows_with_n(n, data):
    k = data.draw(st.integers(0, n))
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    low4, high4 = wilson_interval(4 * k, 4 * n)
    assert high4 - low4 < high - low


def test_bootstrap_interval_brackets_the_mean_and_is_seeded():
    values = np.random.default_rng(0).normal(1.0, 1.0, 400)
    low, high = bootstrap_interval(lambda i: float(values[i].mean()), len(values), resamples=500, seed=3)
    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * 1.96 / math.sqrt(400), rel=0.25)
    assert (low, high) == bootstrap_interval(lambda i: float(values[i].mean()), len(values), resamples=500, seed=3)


def test_format_table_lines_up_rows():
    table = format_table({"plain": {"AP": Spread((0.1, 0.2), (0, 1))}, "neg/pos": {"AP": Spread((0.2, 0.2), (0, 1))}}, ["AP"])
    lines = table.splitlines()
    assert len(lines) == 3 and lines[1].startswith("plain  ") and "0.15 ± 0.07" in lines[1]


def _parameters(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("build", [lambda: TinyUNet(1, 3, seed=2, output_bias=-2.0), lambda: TinyMLP(seed=2, output_bias=-2.0)])
def test_perturbation_switch_moves_every_weight_by_about_1e_7(monkeypatch, build):
    monkeypatch.delenv(perturb.ENV_VAR, raising=False)
    off = _parameters(build())
    monkeypatch.setenv(perturb.ENV_VAR, "0")
    assert all(torch.equal(a, b) for a, b in zip(off, _parameters(build())))
    monkeypatch.setenv(perturb.ENV_VAR, "1")
    on = _parameters(build())
    monkeypatch.setenv(perturb.ENV_VAR, "2")
    other = _parameters(build())
    relative = max(float(((b.double() - a.double()) / a.double()).abs().max()) for a, b in zip(off, on))
    assert 0 < relative < 3e-7
    moved = sum(int((a != b).sum()) for a, b in zip(off, on)) / sum(a.numel() for a in off)
    assert moved > 0.3
    assert any(not torch.equal(a, b) for a, b in zip(on, other))


def test_perturbation_switch_refuses_a_non_integer(monkeypatch):
    monkeypatch.setenv(perturb.ENV_VAR, "yes")
    with pytest.raises(ValueError, match="not an integer seed"):
        TinyUNet()


def test_format_prints_a_negative_zero_as_zero():
    spread = Spread((-0.6, 0.0, 0.5), (0, 1, 2))
    assert spread.format(1) == "0.0 ± 0.6 (-0.6 to 0.5)"
    assert Spread((-0.04, 0.3), (0, 1)).format(1) == "0.1 ± 0.2 (0.0–0.3)"
