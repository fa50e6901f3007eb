"""Every mistake from the learners' questions gets an error that names the operand, the shapes and the fix."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import bceweights as bw


def _call(shape, **kwargs):
    x = torch.randn(shape)
    return bw.bce_with_logits(x, torch.rand(shape), **kwargs)


def test_per_channel_vector_on_images_is_refused_and_names_the_fix():
    with pytest.raises(bw.WeightShapeError) as info:
        _call((8, 3, 32, 32), pos_weight=torch.tensor([1.0, 30.0, 6.0]))
    message = str(info.value)
    assert "pos_weight has shape (3,)" in message and "(8, 3, 32, 32)" in message
    assert "pos_weight=pos_weight.view(3, 1, 1)" in message and "channel_dim=1" in message


def test_silent_trap_width_equals_channels_is_refused():
    shape = (8, 3, 32, 3)  # W == C: PyTorch would silently weight columns
    pos_weight = torch.tensor([1.0, 30.0, 6.0])
    F.binary_cross_entropy_with_logits(torch.randn(shape), torch.rand(shape), pos_weight=pos_weight)  # runs!
    with pytest.raises(bw.WeightShapeError, match="WOULD run, pairing pos_weight with W=3"):
        _call(shape, pos_weight=pos_weight)
    with pytest.raises(bw.WeightShapeError, match=r"weight=weight.view\(3, 1, 1\)"):
        _call(shape, weight=pos_weight)
    x, y = torch.randn(shape), torch.rand(shape)
    torch.testing.assert_close(
        bw.bce_with_logits(x, y, pos_weight=pos_weight, channel_dim=1),
        F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight.view(3, 1, 1)),
    )


def test_repeated_pos_weight_of_shape_batch_by_channels_is_refused():
    pos_weight = torch.tensor([1.0, 30.0, 6.0]).repeat(4, 1)
    with pytest.raises(bw.WeightShapeError) as info:
        _call((4, 3, 16, 16), pos_weight=pos_weight)
    message = str(info.value)
    assert "(4, 3)" in message and ".repeat(N, 1)" in message
    assert "pos_weight=pos_weight.view(4, 3, 1, 1)" in message


@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (4, 3, 8, 4)], ids=["N!=W", "N==W"])
def test_per_sample_weight_is_refused_even_when_it_would_broadcast(shape):
    with pytest.raises(bw.WeightShapeError) as info:
        _call(shape, weight=torch.rand(4))
    assert "one value per sample (N,)" in str(info.value)
    assert "weight=weight.view(4, 1, 1, 1)" in str(info.value)


def test_mask_without_channel_dimension_is_refused_with_unsqueeze():
    with pytest.raises(bw.WeightShapeError, match=r"weight=weight.unsqueeze\(1\)"):
        _call((2, 3, 8, 8), weight=torch.rand(2, 8, 8))
    # N == C would broadcast silently in PyTorch; still refused
    with pytest.raises(bw.WeightShapeError, match="mask without its channel"):
        _call((3, 3, 8, 8), weight=torch.rand(3, 8, 8))
    # a single-image mask (1, H, W) means the same thing either way: accepted
    _call((1, 3, 8, 8), weight=torch.rand(1, 8, 8))


def test_operand_that_does_not_broadcast_names_the_clash():
    with pytest.raises(bw.WeightShapeError) as info:
        _call((2, 3, 4, 4), weight=torch.rand(5, 7))
    message = str(info.value)
    assert "weight size 5 vs H=4" in message and "weight size 7 vs W=4" in message
    with pytest.raises(bw.WeightShapeError, match="more dimensions"):
        _call((4, 4), weight=torch.rand(1, 4, 4))
    with pytest.raises(bw.WeightShapeError, match="pos_weight size 4 vs C=3"):
        _call((2, 3), pos_weight=torch.rand(4))


def test_per_sample_vector_on_two_dimensional_input_suggests_a_view():
    with pytest.raises(bw.WeightShapeError, match=r"weight=weight.view\(5, 1\)"):
        _call((5, 3), weight=torch.rand(5))


def test_channel_dim_with_wrong_length():
    with pytest.raises(bw.WeightShapeError, match="needs one value per entry of dimension C=3"):
        _call((2, 3, 4, 4), pos_weight=[1.0, 2.0], channel_dim=1)
    with pytest.raises(bw.WeightShapeError, match="out of range"):
        _call((2, 3), pos_weight=[1.0, 2.0, 3.0], channel_dim=2)


def test_target_shape_mismatch_names_both_shapes():
    x = torch.randn(8, 1, 4, 4)
    with pytest.raises(ValueError) as info:
        bw.bce_with_logits(x, torch.rand(8, 4, 4))
    assert "(8, 4, 4)" in str(info.value) and "(8, 1, 4, 4)" in str(info.value)
    assert "target=target.unsqueeze(1)" in str(info.value)
    with pytest.raises(ValueError, match=r"target=target.unsqueeze\(1\)   # \(6,\) -> \(6, 1\)"):
        bw.bce_with_logits(torch.randn(6, 1), torch.rand(6))
    with pytest.raises(ValueError, match=r"target=target.view_as\(input\)"):
        bw.bce_with_logits(torch.randn(2, 6), torch.rand(3, 4))
    with pytest.raises(ValueError, match="one_hot"):
        bw.bce_with_logits(torch.randn(2, 4, 3, 3), torch.randint(0, 4, (2, 3, 3)))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["weight", "pos_weight"])
def test_bad_weight_values(name, bad):
    values = torch.tensor([1.0, bad, 2.0])
    with pytest.raises(ValueError, match=name):
        _call((4, 3), **{name: values})
    _call((4, 3), **{name: values}, check_values=False)  # switched off: no check


@pytest.mark.parametrize("bad", [-0.5, 1.5, 255.0, float("nan")])
def test_targets_outside_unit_interval(bad):
    x = torch.randn(2, 3)
    y = torch.full((2, 3), 0.5)
    y[1, 2] = bad
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        bw.bce_with_logits(x, y)
    bw.bce_with_logits(x, y, check_values=False)
    with bw.value_checks(False):
        bw.bce_with_logits(x, y)
    previous = bw.set_value_checks(False)
    try:
        bw.bce_with_logits(x, y)
    finally:
        bw.set_value_checks(previous)
    with pytest.raises(ValueError):
        bw.bce_with_logits(x, y)


def test_integer_targets_other_than_zero_one_are_refused():
    with pytest.raises(ValueError, match="class indices"):
        bw.bce_with_logits(torch.randn(4, 1), torch.tensor([[0], [1], [2], [1]]))


def test_wrong_types():
    with pytest.raises(TypeError, match=r"ignore=\(labels == 255\)"):
        _call((2, 3), ignore=torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"input=input.float\(\)"):
        bw.bce_with_logits(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(TypeError, match="weight"):
        _call((2, 3), weight="heavy")
    with pytest.raises(ValueError, match="reduction='avg'"):
        _call((2, 3), reduction="avg")


def test_ignore_follows_the_same_shape_rules():
    with pytest.raises(bw.WeightShapeError, match=r"ignore=ignore.unsqueeze\(1\)"):
        _call((2, 3, 8, 8), ignore=torch.rand(2, 8, 8) > 0.5)


def test_module_constructor_checks_reduction():
    with pytest.raises(ValueError, match="reduction"):
        bw.BCEWithLogits(reduction="avg")
