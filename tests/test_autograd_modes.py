"""Every way PyTorch differentiates, under every backend: the properties PyTorch's own OpInfo tests
check for ``binary_cross_entropy_with_logits``, restated for bceweights.

Each property is checked under ``backend="torch"``, ``"fused"`` and ``"auto"``. For ``"auto"`` the
input is large (:data:`bceweights.backend.AUTO_MIN_NUMEL` elements) and the checked call is the third
of its signature or later, the first one ``"auto"`` fuses; :func:`loss_on` makes the warm-up calls and
asserts that a plain call of that signature really is fused. Few distinct signatures are compiled
(the CPU fused path compiles each one, seconds on two cores): one large float32 shape, one small
float64 shape.

The properties:

* forward-mode AD: the tangent of the loss equals ``<grad, tangent>`` from reverse mode and a central
  finite difference;
* batched gradients: ``autograd.grad(..., is_grads_batched=True)`` and ``jacobian(vectorize=True)``;
* double backward: ``gradgradcheck`` in float64 (the fused path routes it to the eager formula);
* ``torch.func.grad``, ``vjp``, ``jvp`` and ``vmap``;
* non-contiguous operands;
* no process-wide state: a ``vmap`` or a failed build never switches the fused path off.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.autograd import gradcheck, gradgradcheck
from torch.autograd.functional import jacobian

import bceweights as bw
from bceweights import backend as backend_module
from bceweights.backend import compute_loss, resolve_backend
from bceweights.fused import cpu_compiled
from bceweights.prepared import prepare

# PyTorch's first forward-mode AD call imports torch._decomp.decompositions_for_jvp, which scripts
# functions with torch.jit.script and so warns that it is deprecated: torch's warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

BACKENDS = ("torch", "fused", "auto")
BIG = (4, 128, 128)  # AUTO_MIN_NUMEL elements: "auto" fuses it from the third call
assert torch.Size(BIG).numel() >= backend_module.AUTO_MIN_NUMEL


def operands(shape=BIG, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator, dtype=dtype) * 3
    y = torch.rand(shape, generator=generator, dtype=dtype)
    weight = torch.rand(shape[-1], generator=generator, dtype=dtype).expand(*[1] * (len(shape) - 1), -1) + 0.5
    return x, y, weight


def loss(x, y, weight, backend, reduction="mean"):
    return bw.bce_with_logits(x, y, weight=weight, pos_weight=2.0, reduction=reduction, backend=backend)


def loss_on(backend, x, y, weight, reduction="mean"):
    """For ``"auto"``: make the warm-up calls of this signature and check that a plain call fuses."""
    if backend == "auto":
        for _ in range(backend_module.AUTO_AFTER_CALLS):
            loss(x.detach().requires_grad_(x.requires_grad), y, weight, "auto", reduction)
        prepared = prepare(x, y, weight, 2.0)
        assert resolve_backend("auto", prepared, reduction) == "fused"
    return lambda input: loss(input, y, weight, backend, reduction)


def reference_grad(x, y, weight, reduction="mean"):
    input = x.detach().double().requires_grad_()
    out = loss(input, y.double(), weight.double(), "torch", reduction)
    (grad,) = torch.autograd.grad(out.sum(), input)
    return grad


# --------------------------------------------------------------------------------------------------
# forward-mode AD


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("requires_grad", [False, True])
def test_forward_ad_tangent_matches_reverse_mode_and_finite_difference(backend, requires_grad):
    x, y, weight = operands()
    x.requires_grad_(requires_grad)
    f = loss_on(backend, x, y, weight)
    tangent = torch.randn(BIG, generator=torch.Generator().manual_seed(1))
    for _ in range(2):  # the fourth and fifth "auto" call too
        with fwAD.dual_level():
            out = f(fwAD.make_dual(x, tangent))
            value, jvp = fwAD.unpack_dual(out)
        assert jvp is not None, "the tangent was lost"
        expected = (reference_grad(x, y, weight) * tangent.double()).sum()
        torch.testing.assert_close(jvp.double(), expected, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(value, loss(x.detach(), y, weight, "torch"), rtol=1e-5, atol=1e-6)
    step = 1e-3
    with torch.no_grad():
        x64, y64, w64 = x.detach().double(), y.double(), weight.double()
        difference = (loss(x64 + step * tangent, y64, w64, "torch") - loss(x64 - step * tangent, y64, w64, "torch"))
    torch.testing.assert_close(jvp.double(), difference / (2 * step), rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_ad_per_element_tangent_and_tangents_on_target_and_weight(backend):
    x, y, weight = operands()
    f = loss_on(backend, x, y, weight, "none")
    tangent = torch.randn(BIG)
    with fwAD.dual_level():
        _, jvp = fwAD.unpack_dual(f(fwAD.make_dual(x, tangent)))
    grad = reference_grad(x, y, weight, "none")
    torch.testing.assert_close(jvp.double(), grad * tangent.double(), rtol=1e-4, atol=1e-6)
    # a tangent on the weight: d loss / d weight = the unweighted loss
    weight_tangent = torch.randn(weight.shape)
    with fwAD.dual_level():
        out = bw.bce_with_logits(x, y, weight=fwAD.make_dual(weight, weight_tangent), pos_weight=2.0,
                                 reduction="none", backend=backend)
        _, jvp = fwAD.unpack_dual(out)
    unweighted = bw.bce_with_logits(x, y, pos_weight=2.0, reduction="none", backend="torch")
    torch.testing.assert_close(jvp, unweighted * weight_tangent)


# --------------------------------------------------------------------------------------------------
# batched gradients


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_batched_gradients_equal_one_gradient_per_cotangent(backend, reduction):
    x, y, weight = operands()
    x.requires_grad_()
    f = loss_on(backend, x, y, weight, reduction)
    out = f(x)
    cotangents = torch.stack([torch.ones_like(out), 2 * torch.ones_like(out), torch.rand(out.shape)])
    (batched,) = torch.autograd.grad(out, x, cotangents, is_grads_batched=True)
    assert batched.shape == (3, *BIG)
    for cotangent, grad in zip(cotangents, batched):
        (single,) = torch.autograd.grad(f(x), x, cotangent)
        torch.testing.assert_close(grad, single)
    torch.testing.assert_close(batched[0].double(), reference_grad(x, y, weight, reduction), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "fused"])
def test_vectorized_jacobian_equals_the_loop_jacobian(backend):
    x, y, weight = operands((3, 5), torch.float64)
    f = loss_on(backend, x, y, weight, "none")
    fast = jacobian(f, x, vectorize=True)
    slow = jacobian(f, x, vectorize=False)
    torch.testing.assert_close(fast, slow)
    assert torch.count_nonzero(fast.reshape(15, 15) - torch.diag(torch.diagonal(fast.reshape(15, 15)))) == 0


# --------------------------------------------------------------------------------------------------
# double backward and gradcheck


@pytest.mark.parametrize("backend", ["torch", "fused"])
def test_gradcheck_and_gradgradcheck_in_float64(backend):
    x, y, weight = operands((3, 5), torch.float64)
    x.requires_grad_()
    f = loss_on(backend, x, y, weight)
    assert gradcheck(f, (x,))
    assert gradgradcheck(f, (x,))
    if backend == "torch":  # the fused focal double backward is this same eager formula
        focal = lambda input: bw.focal_bce_with_logits(input, y, gamma=0.5, weight=weight, backend=backend)  # noqa: E731
        assert gradcheck(focal, (x,)) and gradgradcheck(focal, (x,))


def test_double_backward_under_auto_equals_eager():
    x, y, weight = operands()
    x.requires_grad_()
    results = {}
    for backend in ("torch", "auto"):
        f = loss_on(backend, x, y, weight)
        (grad,) = torch.autograd.grad(f(x), x, create_graph=True)
        (hessian_vector,) = torch.autograd.grad((grad * grad).sum(), x)
        results[backend] = hessian_vector
    torch.testing.assert_close(results["auto"], results["torch"], rtol=1e-4, atol=1e-9)


# --------------------------------------------------------------------------------------------------
# torch.func


@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_func_grad_vjp_jvp_and_vmap(backend):
    x, y, weight = operands()
    f = loss_on(backend, x, y, weight)
    expected = reference_grad(x, y, weight).float()
    torch.testing.assert_close(torch.func.grad(f)(x), expected, rtol=1e-4, atol=1e-8)
    out, pullback = torch.func.vjp(f, x)
    torch.testing.assert_close(pullback(torch.tensor(2.0))[0], 2 * expected, rtol=1e-4, atol=1e-8)
    tangent = torch.randn(BIG)
    _, jvp = torch.func.jvp(f, (x,), (tangent,))
    torch.testing.assert_close(jvp.double(), (expected.double() * tangent).sum(), rtol=1e-4, atol=1e-6)
    row = weight[0]  # (1, W): the weight of one sample's (H, W) map
    per_sample = torch.func.vmap(lambda a, b: bw.bce_with_logits(a, b, weight=row, backend=backend))(x, y)
    expected_per_sample = torch.stack([bw.bce_with_logits(a, b, weight=row) for a, b in zip(x, y)])
    torch.testing.assert_close(per_sample, expected_per_sample)
    per_sample_grads = torch.func.vmap(torch.func.grad(
        lambda a, b: bw.bce_with_logits(a, b, weight=row, backend=backend)))(x, y)
    assert per_sample_grads.shape == BIG and torch.isfinite(per_sample_grads).all()


def test_vmap_value_checks_still_refuse_bad_targets():
    x, y, weight = operands((3, 5))
    bad = y.clone()
    bad[1, 2] = 1.5
    with pytest.raises(ValueError, match="not in \\[0, 1\\]"):
        torch.func.vmap(lambda a, b: bw.bce_with_logits(a, b))(x, bad)


def test_vmap_leaves_the_fused_path_working_for_everyone_else():
    x, y, weight = operands()
    for backend in ("fused", "auto"):
        torch.func.vmap(lambda a, b: bw.bce_with_logits(a, b, backend=backend))(x, y)
    assert cpu_compiled.unavailable_reason() is None
    f = loss_on("auto", x, y, weight)  # asserts that "auto" still fuses this signature
    torch.testing.assert_close(f(x), loss(x, y, weight, "fused"))


def test_a_failed_build_switches_off_only_its_own_signature(monkeypatch):
    x, y, weight = operands()
    shape = (1, 1, backend_module.AUTO_MIN_NUMEL + 7)  # a signature no other test uses
    lone = torch.randn(shape)
    lone_target = torch.rand(shape)
    real_run = cpu_compiled.run

    def failing(plan, input, *rest):
        if input.shape == shape:
            raise cpu_compiled.CompileFailed("simulated build failure")
        return real_run(plan, input, *rest)

    monkeypatch.setattr(cpu_compiled, "run", failing)
    from bceweights import fused

    monkeypatch.setattr(fused, "_runner", lambda device: failing)
    results = [bw.bce_with_logits(lone, lone_target, backend="auto") for _ in range(5)]
    expected = bw.bce_with_logits(lone, lone_target, backend="torch")
    assert all(torch.equal(r, expected) for r in results)
    assert resolve_backend("auto", prepare(lone, lone_target), "mean") == "torch"  # remembered for this one
    with pytest.raises(cpu_compiled.CompileFailed):
        bw.bce_with_logits(lone, lone_target, backend="fused")  # "fused" tries again, and says why
    f = loss_on("auto", x, y, weight)  # every other signature still fuses
    torch.testing.assert_close(f(x), loss(x, y, weight, "torch"), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------------
# non-contiguous operands, and "auto" changes nothing


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_operands_give_the_contiguous_result(backend):
    x, y, weight = operands((4, 128, 128))
    x_t = x.transpose(1, 2).contiguous().transpose(1, 2).requires_grad_()  # same values, other strides
    y_t = y.transpose(1, 2).contiguous().transpose(1, 2)
    assert not x_t.is_contiguous()
    f = loss_on(backend, x_t, y_t, weight)
    out = f(x_t)
    (grad,) = torch.autograd.grad(out, x_t)
    torch.testing.assert_close(out.double(), loss(x.double(), y.double(), weight.double(), "torch"), rtol=1e-5, atol=0)
    torch.testing.assert_close(grad.double(), reference_grad(x, y, weight), rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_auto_keeps_values_dtype_and_grad_from_the_third_call_on(dtype):
    x, y, weight = operands(BIG, dtype)
    x.requires_grad_()
    eager = loss(x, y, weight, "torch")
    (eager_grad,) = torch.autograd.grad(eager, x)
    tolerance = dict(rtol=1e-5, atol=1e-7) if dtype == torch.float32 else dict(rtol=2e-2, atol=1e-6)
    for call in range(backend_module.AUTO_AFTER_CALLS + 2):
        out = loss(x, y, weight, "auto")
        (grad,) = torch.autograd.grad(out, x)
        assert out.dtype == eager.dtype == dtype and grad.dtype == dtype, call
        torch.testing.assert_close(out, eager, **tolerance)
        torch.testing.assert_close(grad, eager_grad, **tolerance)


def test_a_non_leaf_input_such_as_a_model_output_is_fused_without_a_warning():
    """Dynamo tracing a non-leaf input reads its .grad and warns (an error under -W error, as here)."""
    x, y, weight = operands((2, 3, 5))
    leaf = x.clone().requires_grad_()
    grads = []
    for backend in ("torch", "fused"):
        out = loss(leaf * 2, y, weight, backend)  # leaf * 2 stands for model(x)
        grads.append(torch.autograd.grad(out, leaf)[0])
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-7)
