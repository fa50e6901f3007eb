"""Drop-in parity on dtypes and on gradients that flow through every operand.

* **Result dtype.** ``F.binary_cross_entropy_with_logits`` returns the *target's* dtype (a bfloat16
  input with float32 targets gives float32; ``weight`` and ``pos_weight`` never change it), and the
  input's gradient in the input's dtype. bceweights used to round the targets to the input's dtype and
  return that. Every combination of {bfloat16, float16, float32, float64} for input, target, weight and
  pos_weight is compared here: dtype exactly, values to the tolerance of the narrower dtype.
* **Gradients when target or pos_weight require grad.** The eager formula then runs in differentiable
  operations; differentiating ``(1 - y) x - log sigmoid(x)`` gave ``1 - sigmoid(-x)``, which is 0 in
  float32 at ``x = -30`` (PyTorch: 9.36e-14) and 58 % high in bfloat16 at ``x = -6``. Every operand's
  gradient is checked against a float64 reference here, at extreme logits, and double backward.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import bceweights as bw

DTYPES = (torch.bfloat16, torch.float16, torch.float32, torch.float64)
TOLERANCE = {torch.bfloat16: 2e-2, torch.float16: 4e-3, torch.float32: 2e-5, torch.float64: 1e-10}


def _operands(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, generator=generator, dtype=torch.float64) * 3
    y = torch.rand(4, 3, generator=generator, dtype=torch.float64)
    w = torch.rand(4, 3, generator=generator, dtype=torch.float64) + 0.1
    p = torch.rand(3, generator=generator, dtype=torch.float64) * 4 + 0.2
    return x, y, w, p


def _compare_with_pytorch(dx, dy, dw, dp, reduction, backend):
    x, y, w, p = _operands()
    weight = None if dw is None else w.to(dw)
    pos_weight = None if dp is None else p.to(dp)
    theirs_x = x.to(dx).requires_grad_()
    ours_x = x.to(dx).requires_grad_()
    theirs = F.binary_cross_entropy_with_logits(theirs_x, y.to(dy), weight, pos_weight=pos_weight, reduction=reduction)
    ours = bw.bce_with_logits(ours_x, y.to(dy), weight, pos_weight, reduction=reduction, backend=backend)
    assert ours.dtype == theirs.dtype, (dx, dy, dw, dp)
    tolerance = max(TOLERANCE[dx], TOLERANCE[dy])
    torch.testing.assert_close(ours.double(), theirs.double(), rtol=tolerance, atol=tolerance)
    theirs.sum().backward()
    ours.sum().backward()
    assert ours_x.grad.dtype == theirs_x.grad.dtype == dx
    torch.testing.assert_close(ours_x.grad.double(), theirs_x.grad.double(), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dx, dy", list(itertools.product(DTYPES, DTYPES)),
                         ids=lambda d: str(d).replace("torch.", ""))
def test_every_dtype_combination_matches_pytorch_on_the_eager_path(dx, dy):
    for dw, dp in itertools.product((None, *DTYPES), (None, *DTYPES)):
        for reduction in ("mean", "sum", "none"):
            _compare_with_pytorch(dx, dy, dw, dp, reduction, "torch")


@pytest.mark.parametrize("dx, dy", [(torch.bfloat16, torch.float32), (torch.float32, torch.bfloat16),
                                    (torch.float16, torch.float64), (torch.float64, torch.float32)],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_mixed_dtypes_on_the_fused_path_match_pytorch(dx, dy):
    _compare_with_pytorch(dx, dy, torch.float32, torch.float64, "mean", "fused")


def test_a_bfloat16_model_with_float32_labels_gets_pytorchs_float32_loss():
    """The common case: a bfloat16 model without autocast, float32 labels. The targets are not rounded
    to bfloat16, and the loss is float32 as PyTorch's (near miss: bfloat16 labels give bfloat16)."""
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(64, 3, generator=generator).bfloat16()
    y = torch.rand(64, 3, generator=generator)
    theirs = F.binary_cross_entropy_with_logits(x, y)
    ours = bw.bce_with_logits(x, y)
    rounded_targets = bw.bce_with_logits(x, y.bfloat16())
    assert ours.dtype == torch.float32 and rounded_targets.dtype == torch.bfloat16
    exact = F.binary_cross_entropy_with_logits(x.double(), y.double())
    # closer to the exact loss than a loss with the targets rounded to bfloat16 can be
    assert abs(ours.double() - exact) < 1e-3 * exact
    torch.testing.assert_close(ours, theirs, rtol=3e-3, atol=1e-5)


def test_bool_and_integer_targets_give_the_inputs_dtype():
    """PyTorch refuses bool and integer targets; bceweights converts them to the input's dtype."""
    x = torch.randn(5, 3).bfloat16()
    labels = torch.rand(5, 3) > 0.5
    for target in (labels, labels.long(), labels.to(torch.uint8)):
        assert bw.bce_with_logits(x, target).dtype == torch.bfloat16
        assert bw.bce_with_logits(x.double(), target, pos_weight=torch.tensor([1.0, 2.0, 3.0])).dtype == torch.float64


def test_under_autocast_low_precision_targets_count_as_float32():
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.rand(5, 3).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        theirs = F.binary_cross_entropy_with_logits(x, y)
        ours = bw.bce_with_logits(x, y)
    assert ours.dtype == theirs.dtype == torch.float32
    torch.testing.assert_close(ours, theirs)


# --------------------------------------------------------------------------------------------------
# gradients through every operand, against a float64 reference


def _gradients(x, y, w, p, dtype, reduction="sum", **options):
    """Loss and gradients for input, target, weight and pos_weight, computed in ``dtype``."""
    leaves = [t.detach().to(dtype).requires_grad_() for t in (x, y, w, p)]
    loss = bw.bce_with_logits(leaves[0], leaves[1], leaves[2], leaves[3], reduction=reduction, **options)
    grads = torch.autograd.grad(loss.sum(), leaves)
    return loss, grads


def test_the_issues_confident_negatives_keep_their_small_gradient():
    """logits [-30, -6], targets 0 requiring grad: PyTorch's input gradient is [9.36e-14, 0.0024726]."""
    for dtype, expected in ((torch.float32, [9.3576e-14, 0.0024726]), (torch.bfloat16, [9.3576e-14, 0.0024726])):
        x = torch.tensor([-30.0, -6.0], dtype=dtype, requires_grad=True)
        y = torch.zeros(2, dtype=dtype, requires_grad=True)
        (grad,) = torch.autograd.grad(bw.bce_with_logits(x, y, reduction="sum"), x)
        plain = x.detach().clone().requires_grad_()
        (theirs,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(plain, y.detach(), reduction="sum"), plain)
        tolerance = 1e-5 if dtype == torch.float32 else 8e-3
        torch.testing.assert_close(grad.double(), torch.tensor(expected, dtype=torch.float64), rtol=tolerance, atol=0)
        torch.testing.assert_close(grad, theirs, rtol=tolerance, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("scale", [1.0, 12.0, 40.0])
def test_every_operands_gradient_matches_a_float64_reference(dtype, scale):
    generator = torch.Generator().manual_seed(int(scale))
    x = torch.randn(6, 3, generator=generator, dtype=torch.float64) * scale
    x = x.to(dtype).double()  # values the low-precision dtype holds exactly
    y = torch.rand(6, 3, generator=generator, dtype=torch.float64).to(dtype).double()
    y[0] = 0.0
    y[1] = 1.0
    w = (torch.rand(6, 3, generator=generator, dtype=torch.float64) + 0.1).to(dtype).double()
    p = (torch.rand(3, generator=generator, dtype=torch.float64) * 4 + 0.2).to(dtype).double()
    reference_loss, reference = _gradients(x, y, w, p, torch.float64)
    loss, grads = _gradients(x, y, w, p, dtype)
    tolerance = 1e-5 if dtype == torch.float32 else 1.6e-2
    torch.testing.assert_close(loss.double(), reference_loss, rtol=tolerance, atol=tolerance)
    for name, index in (("input", 0), ("weight", 2), ("pos_weight", 3)):
        # relative to each element: the small gradients of confident predictions must stay small and right
        torch.testing.assert_close(grads[index].double(), reference[index], rtol=tolerance, atol=1e-30, msg=name)
    # dl/dy = w (-x - (p - 1) log sigmoid(x)) changes sign, so near its zero no dtype holds it to a
    # relative tolerance: it is checked to the rounding of its two terms, as PyTorch computes it
    terms = w * (x.abs() + (p - 1).abs() * F.logsigmoid(x).abs())
    assert ((grads[1].double() - reference[1]).abs() <= tolerance * terms).all()
    plain_x = x.to(dtype).requires_grad_()
    plain_y = y.to(dtype).requires_grad_()
    theirs = F.binary_cross_entropy_with_logits(plain_x, plain_y, w.to(dtype), pos_weight=p.to(dtype), reduction="sum")
    (theirs_target,) = torch.autograd.grad(theirs, plain_y)
    assert ((theirs_target.double() - reference[1]).abs() <= tolerance * terms).all()  # PyTorch's, to the same bound


def test_ignore_and_focal_paths_keep_small_gradients_too():
    x = torch.tensor([-30.0, -6.0, 25.0, 0.0])
    y = torch.tensor([0.0, 0.0, 1.0, 0.5])
    ignore = torch.tensor([False, False, False, True])
    for options in (dict(ignore=ignore), dict(reduction="weighted_mean")):
        reference_loss, reference = _gradients(x, y, torch.ones(4), torch.tensor(2.0), torch.float64, **options)
        _, grads = _gradients(x, y, torch.ones(4), torch.tensor(2.0), torch.float32, **options)
        torch.testing.assert_close(grads[0].double(), reference[0], rtol=1e-5, atol=1e-30)
    focal = {}
    for dtype in (torch.float64, torch.float32):
        logits, labels = x.to(dtype).requires_grad_(), y.to(dtype).requires_grad_()
        loss = bw.focal_bce_with_logits(logits, labels, gamma=0.5, alpha=0.25, reduction="sum")
        focal[dtype] = torch.autograd.grad(loss, logits)[0]
    assert focal[torch.float32][0] > 0  # the confident negative keeps its tiny gradient
    torch.testing.assert_close(focal[torch.float32].double(), focal[torch.float64], rtol=1e-5, atol=1e-30)


def test_double_backward_through_target_and_pos_weight_in_float64():
    generator = torch.Generator().manual_seed(5)
    x = (torch.randn(3, 4, generator=generator, dtype=torch.float64) * 5).requires_grad_()
    y = torch.rand(3, 4, generator=generator, dtype=torch.float64).requires_grad_()
    w = (torch.rand(3, 4, generator=generator, dtype=torch.float64) + 0.1).requires_grad_()
    p = (torch.rand(4, generator=generator, dtype=torch.float64) + 0.5).requires_grad_()

    def loss(*operands):
        return bw.bce_with_logits(*operands, reduction="mean", check_values=False)

    assert torch.autograd.gradcheck(loss, (x, y, w, p))
    assert torch.autograd.gradgradcheck(loss, (x, y, w, p))
