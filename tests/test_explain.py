"""bw.explain reports how operands line up, as text and HTML, without raising for bad ones.

Its verdict is the loss's: ``explain(...).ok`` is true exactly when ``bw.bce_with_logits`` accepts the
same operands. The property tests build operands by what they mean (one value per channel, per
sample, a mask without channels) and state the expected verdict, instead of asking ``line_up``.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bceweights as bw


def test_report_for_good_operands():
    pred = torch.zeros(8, 3, 64, 64)
    mask = torch.ones(8, 64, 64)
    report = bw.explain(pred, pred, weight=bw.expand_mask(mask, pred), pos_weight=[1.0, 30.0, 6.0], channel_dim=1)
    assert report.ok and report.problems() == {}
    text = str(report)
    lines = {line.split()[0]: line for line in text.splitlines() if line}
    assert "varies along C; broadcast over N, H, W (placed by channel_dim)" in lines["pos_weight"]
    assert "stride 0 along C (an expand view: no copy)" in lines["weight"]
    assert "128.0 KiB (shared)" in lines["weight"] and "384.0 KiB" in lines["weight"]


def test_report_for_refused_operands_carries_the_error_message():
    pred = torch.zeros(4, 3, 16, 16)
    report = bw.explain(pred, weight=torch.rand(4), pos_weight=torch.tensor([1.0, 30.0, 6.0]).repeat(4, 1))
    assert not report.ok
    assert set(report.problems()) == {"weight", "pos_weight"}
    text = str(report)
    assert "refused" in text and "pos_weight=pos_weight.view(4, 3, 1, 1)" in text
    for name, message in report.problems().items():
        with pytest.raises(bw.WeightShapeError) as raised:
            bw.bce_with_logits(pred, torch.zeros_like(pred), **{name: report_operand(name)})
        assert str(raised.value) == message


def report_operand(name):
    return torch.rand(4) if name == "weight" else torch.tensor([1.0, 30.0, 6.0]).repeat(4, 1)


def test_scalar_and_numbers():
    report = bw.explain(torch.zeros(10, 1), pos_weight=10)
    line = str(report).splitlines()[-1]
    assert line.startswith("pos_weight") and "broadcast over N" in line


def test_html_table():
    html = bw.explain(torch.zeros(2, 3, 4, 4), weight=torch.rand(2, 4, 4))._repr_html_()
    assert html.startswith('<table class="bce-explain">')
    assert "<th>C</th>" in html and "WeightShapeError" in html and "unsqueeze(1)" in html


# --------------------------------------------------------------------------------------------------
# the loss's own target rule


def loss_accepts(input, target=None, **operands) -> bool:
    target = torch.zeros_like(input) if target is None else target
    try:
        bw.bce_with_logits(input, target, **operands)
    except (TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("target_shape", [(1, 3, 4, 4), (2, 1, 4, 4), (), (2, 3, 4), (2, 3, 4, 4, 1)])
def test_a_target_that_broadcasts_is_refused_as_the_loss_refuses_it(target_shape):
    pred = torch.zeros(2, 3, 4, 4)
    target = torch.zeros(target_shape)
    report = bw.explain(pred, target)
    assert not report.ok and not loss_accepts(pred, target)
    with pytest.raises(ValueError) as raised:
        bw.bce_with_logits(pred, target)
    assert report.problems() == {"target": str(raised.value)}
    assert report.errors() == {"target": "ValueError"}
    assert "target: ValueError" in str(report) and "refused: target has shape" in str(report)


def test_the_target_of_the_input_shape_is_accepted():
    pred = torch.zeros(2, 3, 4, 4)
    assert bw.explain(pred, torch.ones(2, 3, 4, 4).bool()).ok


def test_operand_types_and_values_are_judged_as_the_loss_judges_them():
    pred = torch.zeros(2, 3)
    for operands in ({"weight": torch.ones(2, 3, dtype=torch.bool)}, {"ignore": torch.zeros(2, 3)},
                     {"pos_weight": torch.tensor([1.0, -1.0, 1.0])}):
        report = bw.explain(pred, **operands)
        assert not report.ok and not loss_accepts(pred, **operands), operands
    assert not bw.explain(pred, torch.full((2, 3), 255.0)).ok
    assert bw.explain(pred, torch.full((2, 3), 255.0), ignore=torch.ones(2, 3, dtype=torch.bool)).ok


@pytest.mark.parametrize("value", [[[0.0, 1.0]], None, "logits"])
def test_a_non_tensor_input_gives_a_clear_error(value):
    with pytest.raises(TypeError, match="explain needs the input tensor"):
        bw.explain(value, torch.zeros(2))


# --------------------------------------------------------------------------------------------------
# operands by meaning, on inputs (N, C, *spatial)


@st.composite
def nchw(draw):
    """An input shape ``(N, C, *spatial)`` with one to three spatial dimensions and all sizes distinct
    and >= 2, so that no reading coincides with another (``W == C`` and the like are the silent traps
    the line-up refuses on purpose; tests/test_prepared.py covers them)."""
    sizes = draw(st.lists(st.integers(2, 7), min_size=3, max_size=5, unique=True))
    return tuple(sizes)


def verdicts(shape, **operands) -> tuple[bool, bool]:
    input = torch.zeros(shape)
    return bw.explain(input, **operands).ok, loss_accepts(input, **operands)


@settings(max_examples=60, deadline=None)
@given(nchw(), st.sampled_from(["weight", "pos_weight"]))
def test_one_value_per_channel(shape, name):
    n, c, *spatial = shape
    values = torch.arange(1.0, c + 1)
    assert verdicts(shape, **{name: values}, channel_dim=1) == (True, True)
    assert verdicts(shape, **{name: values.view(c, *(1 for _ in spatial))}) == (True, True)
    assert verdicts(shape, **{name: values}) == (False, False)  # (C,) alone pairs with the last dim
    report = bw.explain(torch.zeros(shape), **{name: values}, channel_dim=1)
    assert report.operands[0].line_up.varies_along() == ("C",)


@settings(max_examples=60, deadline=None)
@given(nchw())
def test_one_value_per_sample(shape):
    n = shape[0]
    values = torch.arange(1.0, n + 1)
    assert verdicts(shape, weight=values.view(n, *(1 for _ in shape[1:]))) == (True, True)
    assert verdicts(shape, weight=values) == (False, False)
    per_sample_and_channel = torch.ones(n, shape[1])
    assert verdicts(shape, pos_weight=per_sample_and_channel) == (False, False)  # pos_weight.repeat(N, 1)


@settings(max_examples=60, deadline=None)
@given(nchw())
def test_a_mask_without_channels(shape):
    n, c, *spatial = shape
    mask = torch.ones(n, *spatial)
    assert verdicts(shape, weight=mask) == (False, False)
    assert verdicts(shape, weight=mask.unsqueeze(1)) == (True, True)
    assert verdicts(shape, weight=bw.expand_mask(mask, torch.zeros(shape))) == (True, True)
    assert verdicts(shape, ignore=mask.bool().unsqueeze(1)) == (True, True)
    assert verdicts(shape, ignore=mask.bool()) == (False, False)


@settings(max_examples=60, deadline=None)
@given(nchw(), st.data())
def test_a_target_with_a_size_one_dimension_where_the_input_has_more(shape, data):
    dim = data.draw(st.sampled_from([d for d, s in enumerate(shape) if s > 1]))
    target_shape = tuple(1 if d == dim else s for d, s in enumerate(shape))
    assert verdicts(shape, target=torch.zeros(target_shape)) == (False, False)
    assert verdicts(shape, target=torch.zeros(shape)) == (True, True)
