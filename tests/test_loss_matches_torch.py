"""Property tests: with only PyTorch's arguments, bceweights equals F.binary_cross_entropy_with_logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bceweights as bw

TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-10, atol=1e-12)}


@st.composite
def problems(draw):
    """An input shape (1-5-D, sizes 0-4), a dtype, and broadcastable weight / pos_weight shapes."""
    ndim = draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))

    def operand_shape():
        if not draw(st.booleans()):
            return None
        kept = tuple(s if draw(st.booleans()) else 1 for s in shape)  # broadcast along random dims
        # Leading dimensions may be dropped (PyTorch's trailing alignment) where no other reading
        # exists: inputs of one or two dimensions. On (N, C, ...) inputs an operand keeps its rank.
        drop = draw(st.integers(0, ndim)) if ndim <= 2 else 0
        return kept[drop:]

    return shape, dtype, operand_shape(), operand_shape()


def _layout(tensor: torch.Tensor, how: str) -> torch.Tensor:
    """The same values in a different memory layout: contiguous, transposed back, or an expanded view."""
    if how == "transposed" and tensor.ndim >= 2:
        return tensor.transpose(0, -1).contiguous().transpose(0, -1)
    if how == "strided":
        return torch.stack([tensor, torch.zeros_like(tensor)], dim=-1)[..., 0]
    return tensor


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(problems(), st.sampled_from(["mean", "sum", "none"]), st.sampled_from(["plain", "transposed", "strided"]),
       st.integers(0, 2**31 - 1))
def test_values_and_gradients_match_pytorch(problem, reduction, layout, seed):
    shape, dtype, weight_shape, pos_weight_shape = problem
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen, dtype=dtype) * 4)
    y = torch.rand(shape, generator=gen, dtype=dtype)
    weight = torch.rand(weight_shape, generator=gen, dtype=dtype) * 3 if weight_shape is not None else None
    pos_weight = torch.rand(pos_weight_shape, generator=gen, dtype=dtype) * 10 if pos_weight_shape is not None else None

    ours_x = _layout(x.detach(), layout).requires_grad_()
    theirs_x = x.detach().clone().requires_grad_()
    ours = bw.bce_with_logits(ours_x, _layout(y, layout), weight, pos_weight, reduction=reduction)
    theirs = F.binary_cross_entropy_with_logits(theirs_x, y, weight, pos_weight=pos_weight, reduction=reduction)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, equal_nan=True, **TOLERANCE[dtype])
    if x.numel():
        grad_out = torch.rand(theirs.shape, generator=gen, dtype=dtype)
        (ours * grad_out).sum().backward()
        (theirs * grad_out).sum().backward()
        torch.testing.assert_close(ours_x.grad, theirs_x.grad, **TOLERANCE[dtype])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(problems(), st.integers(0, 2**31 - 1))
def test_weighted_mean_is_sum_over_sum_of_weights(problem, seed):
    shape, dtype, weight_shape, pos_weight_shape = problem
    assume(weight_shape is not None and torch.Size(shape).numel() > 0)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    y = torch.rand(shape, generator=gen, dtype=dtype)
    weight = torch.rand(weight_shape, generator=gen, dtype=dtype) + 0.1
    per_element = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    expected = (per_element * weight).sum() / weight.expand(shape).sum()
    got = bw.bce_with_logits(x, y, weight, reduction="weighted_mean")
    torch.testing.assert_close(got, expected, **TOLERANCE[dtype])
    # invariant to rescaling the weights, unlike "mean"
    torch.testing.assert_close(bw.bce_with_logits(x, y, weight * 7, reduction="weighted_mean"), got, **TOLERANCE[dtype])
    torch.testing.assert_close(
        bw.bce_with_logits(x, y, weight * 7, reduction="mean"), 7 * bw.bce_with_logits(x, y, weight), **TOLERANCE[dtype]
    )


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0, 4, 4), (0, 3, 2, 2, 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_zero_size_inputs_behave_like_pytorch(shape, reduction):
    x = torch.zeros(shape, requires_grad=True)
    y = torch.zeros(shape)
    ours = bw.bce_with_logits(x, y, reduction=reduction)
    theirs = F.binary_cross_entropy_with_logits(x, y, reduction=reduction)
    torch.testing.assert_close(ours, theirs, equal_nan=True)


def test_expanded_input_and_target():
    base = torch.randn(2, 1, 5, 5)
    x = base.expand(2, 3, 5, 5).requires_grad_()
    y = (torch.rand(2, 1, 5, 5) > 0.5).float().expand(2, 3, 5, 5)
    ours = bw.bce_with_logits(x, y, pos_weight=[2.0, 3.0, 4.0], channel_dim=1)
    theirs = F.binary_cross_entropy_with_logits(x.detach().contiguous(), y.contiguous(),
                                                pos_weight=torch.tensor([2.0, 3.0, 4.0]).view(3, 1, 1))
    torch.testing.assert_close(ours, theirs)


def test_numbers_bools_and_integer_targets_are_accepted():
    torch.manual_seed(0)
    x = torch.randn(16, 1)
    labels = torch.rand(16, 1) > 0.7
    expected = F.binary_cross_entropy_with_logits(x, labels.float(), weight=torch.tensor(0.5),
                                                  pos_weight=torch.tensor([10.0]))
    for target in (labels, labels.long(), labels.to(torch.uint8)):
        torch.testing.assert_close(bw.bce_with_logits(x, target, 0.5, 10), expected)
    torch.testing.assert_close(bw.bce_with_logits(x, labels, pos_weight=[10.0]), bw.bce_with_logits(x, labels, pos_weight=10))


def test_half_precision_inputs_run_and_agree_with_float32():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)
    y = torch.rand(4, 3, 8, 8)
    for dtype in (torch.float16, torch.bfloat16):
        got = bw.bce_with_logits(x.to(dtype), y.to(dtype), pos_weight=[1.0, 5.0, 2.0], channel_dim=1)
        assert got.dtype == dtype and torch.isfinite(got)
        expected = bw.bce_with_logits(x, y, pos_weight=[1.0, 5.0, 2.0], channel_dim=1)
        torch.testing.assert_close(got.float(), expected, rtol=2e-2, atol=1e-2)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_formula_path_matches_pytorch_too(reduction):
    """With a target that needs a gradient the loss is computed by the formula, not PyTorch's kernel."""
    gen = torch.Generator().manual_seed(11)
    x = (torch.randn(4, 3, 6, 6, generator=gen, dtype=torch.float64) * 5).requires_grad_()
    y = torch.rand(4, 3, 6, 6, generator=gen, dtype=torch.float64)
    weight = torch.rand(4, 1, 6, 6, generator=gen, dtype=torch.float64)
    pos_weight = torch.tensor([0.5, 4.0, 20.0], dtype=torch.float64)
    ours = bw.bce_with_logits(x, y.clone().requires_grad_(), weight, pos_weight, reduction=reduction, channel_dim=1)
    theirs = F.binary_cross_entropy_with_logits(x, y, weight, pos_weight=pos_weight.view(3, 1, 1), reduction=reduction)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    (grad_ours,) = torch.autograd.grad(ours.sum(), x)
    (grad_theirs,) = torch.autograd.grad(theirs.sum(), x)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=1e-10, atol=1e-12)
