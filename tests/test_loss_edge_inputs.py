"""Edge inputs of the loss: ignored NaN/inf, confident focal predictions, 0-d inputs, numpy operands,
module options, and the value checks under ``torch.compile(fullgraph=True)``; under every backend.

``"auto"`` is checked on a large input (:data:`bceweights.backend.AUTO_MIN_NUMEL` elements) from its
third call on, where it fuses.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bceweights as bw
from bceweights import backend as backend_module

BACKENDS = ("torch", "fused", "auto")
BIG = (2, 2, 128, 128)


def repeated(backend, call):
    """``call(backend)`` once, or for ``"auto"`` until it fuses (the last result)."""
    for _ in range(backend_module.AUTO_AFTER_CALLS if backend == "auto" else 1):
        result = call(backend)
    return result


# --------------------------------------------------------------------------------------------------
# ignored elements contribute nothing


@pytest.mark.parametrize(
    "backend, reduction",
    [("torch", r) for r in ("mean", "sum", "none", "weighted_mean")]
    + [("fused", "weighted_mean"), ("fused", "none"), ("auto", "mean")],  # few compiled signatures
)
def test_nan_and_inf_targets_and_logits_on_ignored_elements_contribute_nothing(backend, reduction):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(BIG, generator=generator)
    target = (torch.rand(BIG, generator=generator) > 0.5).float()
    weight = torch.rand(BIG[0], 1, *BIG[2:], generator=generator)
    ignore = torch.rand(BIG[0], 1, *BIG[2:], generator=generator) < 0.2
    full_ignore = ignore.expand(BIG)
    poisoned_logits, poisoned_target = logits.clone(), target.clone()
    bad = torch.tensor([float("nan"), float("inf"), -float("inf"), 255.0])
    picks = torch.randint(0, 4, BIG, generator=generator)
    poisoned_target[full_ignore] = bad[picks[full_ignore]]
    poisoned_logits[full_ignore] = bad[picks.flip(0)[full_ignore]].nan_to_num(nan=float("nan"), posinf=1e30)
    poisoned_logits[full_ignore & (picks == 1)] = float("inf")

    def run(backend, x, y):
        x = x.clone().requires_grad_()
        out = repeated(backend, lambda b: bw.focal_bce_with_logits(
            x, y, gamma=0.0, weight=weight, pos_weight=3.0, ignore=ignore, reduction=reduction, backend=b))
        (grad,) = torch.autograd.grad(out.sum(), x)
        return out, grad

    out, grad = run(backend, poisoned_logits, poisoned_target)
    clean_out, clean_grad = run("torch", logits, target)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()
    assert (grad[full_ignore] == 0).all()
    if reduction == "none":
        assert (out[full_ignore] == 0).all()
    torch.testing.assert_close(out, clean_out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, clean_grad, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("backend", ["torch", "fused"])
def test_ignored_elements_stay_inert_under_focal_and_double_backward(backend):
    x = torch.tensor([0.3, float("nan"), -2.0, float("inf")], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0, float("nan"), 0.0, 0.5], dtype=torch.float64)
    ignore = torch.tensor([False, True, False, True])
    out = bw.focal_bce_with_logits(x, y, gamma=0.5, alpha=0.25, ignore=ignore, backend=backend)
    (grad,) = torch.autograd.grad(out, x, create_graph=True)
    (second,) = torch.autograd.grad(grad.sum(), x)
    assert torch.isfinite(out) and torch.isfinite(grad).all() and torch.isfinite(second).all()
    assert grad[1] == grad[3] == second[1] == second[3] == 0


# --------------------------------------------------------------------------------------------------
# focal gradients are finite


def torchvision_focal(x, y, gamma, alpha=-1.0):
    """torchvision.ops.sigmoid_focal_loss with reduction="none", written out (torchvision 0.x)."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


FOCAL_CASES = [
    ("torch", dtype, gamma)
    for dtype in (torch.float32, torch.bfloat16, torch.float64)
    for gamma in (0.01, 0.5, 0.99, 1.0, 1.5, 2.0)
] + [("fused", torch.float32, 0.01), ("fused", torch.float32, 0.5), ("fused", torch.bfloat16, 0.5)]


@pytest.mark.parametrize("backend, dtype, gamma", FOCAL_CASES)
def test_focal_gradients_are_finite_at_every_logit(backend, dtype, gamma):
    logits = torch.tensor([-1e4, -200.0, -90.0, -40.0, -17.0, -8.0, -1.0, 0.0, 1.0, 8.0, 17.0, 40.0, 90.0, 1e4])
    x = logits.repeat(2).to(dtype).requires_grad_()
    y = torch.cat([torch.zeros(len(logits)), torch.ones(len(logits))]).to(dtype)
    out = bw.focal_bce_with_logits(x, y, gamma=gamma, alpha=0.25, reduction="none", backend=backend)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()
    # where torchvision's formula is finite (its 1 - p_t cancels, so compare on moderate logits)
    moderate = x.detach().abs() <= 8
    x64 = x.detach().double().requires_grad_()
    reference = torchvision_focal(x64, y.double(), gamma, 0.25)
    (reference_grad,) = torch.autograd.grad(reference.sum(), x64)
    tolerance = dict(rtol=2e-2, atol=1e-3) if dtype == torch.bfloat16 else dict(rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out.double()[moderate], reference.detach()[moderate], **tolerance)
    torch.testing.assert_close(grad.double()[moderate], reference_grad[moderate], **tolerance)


def test_auto_focal_with_small_gamma_matches_eager_on_confident_predictions():
    generator = torch.Generator().manual_seed(3)
    x = (torch.randn(BIG, generator=generator) * 30).requires_grad_()
    y = (x.detach() > 0).float()  # confident and correct: 1 - q_t underflows
    eager = bw.focal_bce_with_logits(x, y, gamma=0.3, backend="torch")
    (eager_grad,) = torch.autograd.grad(eager, x)
    out = repeated("auto", lambda b: bw.focal_bce_with_logits(x, y, gamma=0.3, backend=b))
    (grad,) = torch.autograd.grad(out, x)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(out, eager, rtol=1e-5, atol=0)
    torch.testing.assert_close(grad, eager_grad, rtol=1e-4, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# 0-d inputs, numpy operands


@pytest.mark.parametrize("backend", ["torch", "fused"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_a_0d_input_takes_one_element_operands(backend, reduction):
    """``model(x).squeeze()`` at batch size 1, with the ``(1,)`` pos_weight of pos_weight_from_counts.

    PyTorch's kernel refuses this pair ("output with shape [] doesn't match the broadcast shape [1]");
    here the loss is 0-d, with the value PyTorch gives for the same call on shape ``(1,)``.
    """
    x = torch.tensor(0.7, requires_grad=True)
    y = torch.tensor(1.0)
    pos_weight = bw.pos_weight_from_counts(torch.tensor([3.0]), torch.tensor([10.0]))
    assert pos_weight.shape == (1,)
    out = bw.bce_with_logits(x, y, weight=torch.tensor([0.5]), pos_weight=pos_weight, reduction=reduction,
                             backend=backend)
    assert out.shape == ()
    x1 = x.detach().reshape(1).requires_grad_()
    expected = F.binary_cross_entropy_with_logits(x1, y.reshape(1), torch.tensor([0.5]), pos_weight=pos_weight,
                                                  reduction=reduction)
    torch.testing.assert_close(out, expected.reshape(()))
    torch.testing.assert_close(torch.autograd.grad(out, x)[0], torch.autograd.grad(expected.sum(), x1)[0].reshape(()))


def test_numpy_operands_are_accepted_wherever_lists_are():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 4, generator=generator)
    y = (torch.rand(2, 3, 4, 4, generator=generator) > 0.5).float()
    ignore = torch.rand(2, 1, 4, 4, generator=generator) < 0.3
    weight = torch.rand(2, 1, 4, 4, generator=generator)
    expected = bw.bce_with_logits(x, y, weight=weight, pos_weight=[1.0, 2.0, 3.0], ignore=ignore, channel_dim=1)
    out = bw.bce_with_logits(x, y.numpy(), weight=weight.numpy(), pos_weight=np.array([1.0, 2.0, 3.0]),
                             ignore=ignore.numpy(), channel_dim=1)
    torch.testing.assert_close(out, expected)
    assert bw.bce_with_logits(x, y, pos_weight=np.float32(2.0)).dtype == torch.float32
    module = bw.BCEWithLogits(pos_weight=np.array([1.0, 2.0, 3.0]), channel_dim=1)
    torch.testing.assert_close(module(x, y, weight=weight.numpy(), ignore=ignore.numpy()), expected)
    with pytest.raises(TypeError, match="bool tensor"):
        bw.bce_with_logits(x, y, ignore=ignore.numpy().astype(np.uint8))


# --------------------------------------------------------------------------------------------------
# module constructors check everything they store


@pytest.mark.parametrize(
    "build, error, words",
    [
        (lambda: bw.BCEWithLogits(backend="bogus"), ValueError, "backend='bogus'"),
        (lambda: bw.BCEWithLogits(label_smoothing=2), ValueError, "label_smoothing=2"),
        (lambda: bw.BCEWithLogits(label_smoothing="0.1"), TypeError, "label_smoothing"),
        (lambda: bw.BCEWithLogits(reduction="avg"), ValueError, "reduction='avg'"),
        (lambda: bw.BCEWithLogits(channel_dim=1.0), TypeError, "channel_dim"),
        (lambda: bw.BCEWithLogits(check_values="yes"), TypeError, "check_values"),
        (lambda: bw.BCEWithLogits(pos_weight=[1.0, -2.0]), ValueError, "negative"),
        (lambda: bw.BCEWithLogits(weight=[1.0, float("nan")]), ValueError, "NaN"),
        (lambda: bw.FocalBCEWithLogits(gamma=-1), ValueError, "gamma=-1"),
        (lambda: bw.FocalBCEWithLogits(gamma=float("nan")), ValueError, "gamma=nan"),
        (lambda: bw.FocalBCEWithLogits(alpha=1.5), ValueError, "alpha=1.5"),
        (lambda: bw.FocalBCEWithLogits(backend="triton"), ValueError, "backend='triton'"),
    ],
)
def test_module_constructors_refuse_bad_options_at_construction(build, error, words):
    with pytest.raises(error) as raised:
        build()
    assert words in str(raised.value)
    assert "\n    " in str(raised.value)  # the builder's block of lines to write instead


def test_module_constructor_refuses_a_weight_that_is_not_numbers():
    with pytest.raises(TypeError, match="weight is a str"):
        bw.BCEWithLogits(weight="heavy")


def test_module_constructor_values_follow_check_values():
    module = bw.BCEWithLogits(pos_weight=[1.0, -2.0], check_values=False)  # the caller's decision
    assert module.pos_weight.tolist() == [1.0, -2.0]


# --------------------------------------------------------------------------------------------------
# torch.compile(fullgraph=True) with value checks on


def test_value_checks_run_inside_a_fullgraph_compiled_function():
    step = torch.compile(lambda x, y: bw.bce_with_logits(x, y, pos_weight=[1.0, 2.0, 3.0]), fullgraph=True)
    x = torch.randn(4, 3)
    y = torch.rand(4, 3)
    torch.testing.assert_close(step(x, y), bw.bce_with_logits(x, y, pos_weight=[1.0, 2.0, 3.0]))
    bad = y.clone()
    bad[0, 0] = 2.0
    with pytest.raises(RuntimeError, match="check_values=False"):
        step(x, bad)


# --------------------------------------------------------------------------------------------------
# edge defects from the reliability probe (issue 23)


def test_explain_answers_shape_questions_on_meta_tensors():
    """A meta input holds no values: the value checks are skipped, the line-up is still reported
    (with a real expanded mask, a real weight, or meta operands)."""
    x = torch.empty(2, 3, 4, 4, device="meta")
    mask = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0)) > 0.5
    cases = [
        dict(weight=mask.float().unsqueeze(1).expand(2, 3, 4, 4)),
        dict(ignore=mask.unsqueeze(1).expand(2, 3, 4, 4)),
        dict(target=torch.empty(2, 3, 4, 4, device="meta"), weight=torch.empty(2, 1, 4, 4, device="meta"),
             ignore=torch.empty(2, 1, 4, 4, device="meta", dtype=torch.bool)),
    ]
    for operands in cases:
        report = bw.explain(x, **operands)
        assert report.ok
    shared = bw.explain(x, weight=mask.float().unsqueeze(1).expand(2, 3, 4, 4))
    assert "stride 0 along C" in str(shared)
    # near miss: a misaligned operand is still refused on meta, with its fix
    refused = bw.explain(x, pos_weight=torch.empty(3, device="meta"))
    assert not refused.ok and "pos_weight.view(3, 1, 1)" in refused.problems()["pos_weight"]
    loss = bw.bce_with_logits(x, torch.empty(2, 3, 4, 4, device="meta"), weight=mask.float().unsqueeze(1))
    assert loss.shape == () and loss.device.type == "meta"


def test_a_weight_that_overflows_the_inputs_dtype_is_named_by_its_dtype():
    x = torch.randn(4, 3).half()
    y = torch.rand(4, 3).half()
    weight = torch.tensor([1e5, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"too large for float16 \(for example 100000; the largest is 65504\)") as error:
        bw.bce_with_logits(x, y, weight=weight)
    assert "division" not in str(error.value)
    with pytest.raises(ValueError, match="too large for float16"):
        bw.bce_with_logits(x, y, pos_weight=[1e5, 1.0, 1.0])  # numbers too
    # near misses: a weight float16 holds, and float32 targets (the loss is then computed in float32)
    assert torch.isfinite(bw.bce_with_logits(x, y, weight=torch.tensor([1e3, 1.0, 1.0])))
    assert torch.isfinite(bw.bce_with_logits(x, y.float(), weight=weight))
    # a weight that is infinite to begin with keeps the NaN/inf message, which now names the dtype too
    with pytest.raises(ValueError, match=r"1 infinite value\(s\)(.|\n)*its dtype \(float16\)"):
        bw.bce_with_logits(x, y, weight=torch.tensor([float("inf"), 1.0, 1.0]).half())


@pytest.mark.parametrize("backend", ["torch", "fused"])
@pytest.mark.parametrize("reduction", ["mean", "weighted_mean"])
def test_an_empty_input_gives_nan_under_both_means_with_or_without_ignore(backend, reduction):
    """One behaviour for an empty batch: NaN, PyTorch's mean of nothing, whether or not an ignore mask
    or a weight is passed. A non-empty batch with every element ignored gives 0 (near miss)."""
    x = torch.zeros(0, 3, requires_grad=True)
    y = torch.zeros(0, 3)
    variants = [dict(), dict(ignore=torch.zeros(0, 3, dtype=torch.bool)), dict(weight=torch.ones(3))]
    for options in variants:
        loss = bw.bce_with_logits(x, y, reduction=reduction, backend=backend, **options)
        assert torch.isnan(loss), options
        (grad,) = torch.autograd.grad(loss, x)
        assert grad.shape == (0, 3)
    assert torch.isnan(F.binary_cross_entropy_with_logits(x, y))  # PyTorch's own
    logits = torch.randn(4, 3, requires_grad=True)
    everything = torch.ones(4, 3, dtype=torch.bool)
    loss = bw.bce_with_logits(logits, torch.rand(4, 3), ignore=everything, reduction=reduction, backend=backend)
    assert loss.item() == 0.0
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.equal(grad, torch.zeros(4, 3))


def test_a_modules_weight_times_the_calls_is_rounded_once_to_the_loss_dtype():
    """The module's float32 weight and the call's are multiplied in float32, then rounded once: with
    float32 targets the float16 logits' loss is float32 and finite; with float16 targets the weight
    of 1e5 is named as too large for float16 (not blamed on a division by zero)."""
    module = bw.BCEWithLogits(weight=torch.tensor([1e5, 1.0, 1.0]))
    x = torch.randn(4, 3).half()
    loss = module(x, torch.rand(4, 3), weight=torch.ones(3))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    with pytest.raises(ValueError, match="too large for float16"):
        module(x, torch.rand(4, 3).half(), weight=torch.ones(3))
