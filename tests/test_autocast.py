"""Under ``torch.autocast`` the loss is what PyTorch's is: computed in float32, returned in float32.

Autocast runs ``F.binary_cross_entropy_with_logits`` in float32 (a float16/bfloat16 input is cast up;
targets and weights are never rounded to the low-precision dtype). bceweights does the same on every
backend, so values match PyTorch's within float32 rounding, the result is float32 on every call
(``"auto"`` included, from the third call of a large shape on), and the input's gradient comes back in
the input's dtype, equal to PyTorch's up to one rounding of that dtype.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import bceweights as bw
from bceweights import backend as backend_module

SHAPE = (4, 3, 64, 128)  # 98,304 elements: "auto" fuses it from the third call
assert torch.Size(SHAPE).numel() >= backend_module.AUTO_MIN_NUMEL
CALLS = {"torch": 1, "fused": 1, "auto": backend_module.AUTO_AFTER_CALLS + 1}


def operands(dtype=torch.bfloat16):
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(SHAPE, generator=generator) * 4).to(dtype).requires_grad_()
    y = torch.rand(SHAPE, generator=generator)  # soft float32 targets: bfloat16 would round them
    pos_weight = torch.tensor([1.3, 2.7, 0.41]).view(3, 1, 1)
    weight = torch.rand(SHAPE[0], 1, *SHAPE[2:], generator=generator) + 0.1
    return x, y, pos_weight, weight


@pytest.mark.parametrize("backend", ["torch", "fused", "auto"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_values_dtypes_and_gradients_match_pytorch(backend, dtype):
    x, y, pos_weight, weight = operands(dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = F.binary_cross_entropy_with_logits(x, y, weight, pos_weight=pos_weight)
        results = [bw.bce_with_logits(x, y, weight, pos_weight, backend=backend) for _ in range(CALLS[backend])]
    (expected_grad,) = torch.autograd.grad(expected, x)
    assert expected.dtype == torch.float32 and expected_grad.dtype == dtype
    for out in results:  # every "auto" call, eager ones and fused ones
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=0)
        (grad,) = torch.autograd.grad(out, x)
        assert grad.dtype == dtype
        # both are float32 gradients rounded once to `dtype`: at most one unit in the last place apart
        torch.testing.assert_close(grad.float(), expected_grad.float(), rtol=torch.finfo(dtype).eps, atol=1e-9)


@pytest.mark.parametrize("backend", ["torch", "fused"])
def test_autocast_focal_and_reductions_are_the_float32_loss(backend):
    x, y, pos_weight, weight = operands()
    x32 = x.detach().float().requires_grad_()
    for reduction in ("none", "weighted_mean"):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = bw.focal_bce_with_logits(x, y, 2.0, 0.25, weight, pos_weight, reduction=reduction, backend=backend)
        expected = bw.focal_bce_with_logits(x32, y, 2.0, 0.25, weight, pos_weight, reduction=reduction, backend="torch")
        assert out.dtype == torch.float32 and out.shape == expected.shape
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-7)
    (grad,) = torch.autograd.grad(out, x)
    (expected_grad,) = torch.autograd.grad(expected, x32)
    torch.testing.assert_close(grad.float(), expected_grad.to(torch.bfloat16).float(), rtol=2 ** -7, atol=1e-9)


def test_autocast_leaves_float64_and_float32_inputs_alone():
    x, y, pos_weight, _ = operands()
    for dtype in (torch.float32, torch.float64):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = bw.bce_with_logits(x.detach().to(dtype), y.to(dtype), pos_weight=pos_weight, backend="torch")
            expected = F.binary_cross_entropy_with_logits(x.detach().to(dtype), y.to(dtype), pos_weight=pos_weight.to(dtype))
            # PyTorch's loss has the target's dtype: a float64 input with bfloat16 targets gives float32
            # under autocast (the targets become float32), as it does here
            mixed = bw.bce_with_logits(x.detach().to(dtype), y, pos_weight=pos_weight, backend="torch")
            expected_mixed = F.binary_cross_entropy_with_logits(x.detach().to(dtype), y, pos_weight=pos_weight)
        assert out.dtype == expected.dtype == dtype
        torch.testing.assert_close(out, expected)
        assert mixed.dtype == expected_mixed.dtype == torch.float32
        torch.testing.assert_close(mixed, expected_mixed, rtol=1e-5, atol=1e-6)


def test_outside_autocast_the_loss_has_the_targets_dtype_as_pytorch():
    x, y, _, _ = operands()
    assert bw.bce_with_logits(x, y.bfloat16()).dtype == torch.bfloat16
    assert bw.bce_with_logits(x, y > 0.5).dtype == torch.bfloat16  # bool targets: the input's dtype
    # float32 targets: PyTorch returns float32, and so does bceweights (the targets are not rounded)
    ours, theirs = bw.bce_with_logits(x, y), F.binary_cross_entropy_with_logits(x, y)
    assert ours.dtype == theirs.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, rtol=2e-3, atol=1e-5)
