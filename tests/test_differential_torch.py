"""A differential run against ``F.binary_cross_entropy_with_logits`` and a float64 reference.

Generated cases (hypothesis): inputs of rank 0 to 5, every broadcastable ``weight`` and ``pos_weight``
shape (leading dimensions dropped too, as PyTorch accepts), every reduction, float64, float32,
bfloat16 and float16 inputs, soft, bool and integer targets and targets of another floating dtype,
gradients on every operand, contiguous, transposed, strided, channels_last and expanded operands,
logits up to 60 in magnitude. Each case must either

* match PyTorch: the result's dtype exactly, the value and the input's gradient to the tolerance of
  the narrower dtype, and match a float64 reference (the same rounded operands, computed with
  ``-log sigmoid(-x)`` in float64) for the value and the gradient of every operand (normwise); or
* be a documented refusal: a ``WeightShapeError`` whose message has a "Write instead" block (the
  operands that PyTorch would silently line up with the wrong axis).

PyTorch refuses bool and integer targets and gradients for ``weight`` and ``pos_weight``; there the
comparison is with PyTorch on the target converted to the input's dtype and with the reference.
Separately: every backend on CPU (``"fused"`` compiles each signature, so a few fixed cases), and
``torch.compile`` with dynamic shapes.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bceweights as bw

FLOATS = (torch.float64, torch.float32, torch.bfloat16, torch.float16)
TOLERANCE = {torch.float64: 1e-9, torch.float32: 2e-5, torch.bfloat16: 3e-2, torch.float16: 5e-3}
LAYOUTS = ("contiguous", "transposed", "strided", "channels_last", "expanded")

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:The .grad attribute of a Tensor that is not a leaf Tensor is being accessed:UserWarning"
    ),
    # Dynamo instantiates every autograd.Function it traces (the stable formula used when the target
    # requires grad is one) and warns about that itself; users' default filters hide it
    pytest.mark.filterwarnings("ignore:<class 'torch.autograd.function.Function'> should not be instantiated"),
]


@st.composite
def cases(draw):
    ndim = draw(st.integers(0, 5))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))

    def operand_shape():
        if not draw(st.booleans()):
            return None
        kept = tuple(s if draw(st.booleans()) else 1 for s in shape)
        return kept[draw(st.integers(0, ndim)):]  # every shape PyTorch broadcasts without enlarging

    target_kind = draw(st.sampled_from(["soft", "soft", "bool", "int", "other"]))
    return dict(
        shape=shape,
        dtype=draw(st.sampled_from(FLOATS)),
        target_kind=target_kind,
        target_dtype=draw(st.sampled_from(FLOATS)),
        weight_shape=operand_shape(),
        pos_weight_shape=operand_shape(),
        weight_dtype=draw(st.sampled_from(FLOATS)),
        pos_weight_dtype=draw(st.sampled_from(FLOATS)),
        reduction=draw(st.sampled_from(["mean", "sum", "none", "weighted_mean"])),
        layout=draw(st.sampled_from(LAYOUTS)),
        grads=tuple(name for name in ("target", "weight", "pos_weight") if draw(st.booleans())),
        scale=draw(st.sampled_from([1.0, 8.0, 60.0])),
        double_backward=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def _layout(tensor: torch.Tensor, how: str) -> torch.Tensor:
    """The same values in another memory layout (a view, or a copy with other strides)."""
    if how == "transposed" and tensor.ndim >= 2:
        return tensor.transpose(0, -1).contiguous().transpose(0, -1)
    if how == "strided":
        return torch.stack([tensor, torch.zeros_like(tensor)], dim=-1)[..., 0]
    if how == "channels_last" and tensor.ndim == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def _operand(shape, dtype, generator, low, high, how):
    """Values in [low, high); ``how="expanded"`` makes a stride-0 view along the last dimension."""
    if shape is None:
        return None
    if how == "expanded" and len(shape) and shape[-1] > 1:
        base = torch.rand(shape[:-1] + (1,), generator=generator, dtype=torch.float64)
        return (low + (high - low) * base).to(dtype).expand(shape)
    values = low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)
    return _layout(values.to(dtype), how)


def build(case):
    generator = torch.Generator().manual_seed(case["seed"])
    shape, dtype = case["shape"], case["dtype"]
    x = _layout((torch.randn(shape, generator=generator, dtype=torch.float64) * case["scale"]).to(dtype), case["layout"])
    probabilities = torch.rand(shape, generator=generator, dtype=torch.float64)
    kind = case["target_kind"]
    if kind == "bool":
        y = probabilities > 0.5
    elif kind == "int":
        y = (probabilities > 0.5).long()
    else:
        y = _layout(probabilities.to(dtype if kind == "soft" else case["target_dtype"]), case["layout"])
    w = _operand(case["weight_shape"], case["weight_dtype"], generator, 0.1, 3.0, case["layout"])
    p = _operand(case["pos_weight_shape"], case["pos_weight_dtype"], generator, 0.2, 10.0, case["layout"])
    return x, y, w, p


def reference(x, y, w, p, reduction):
    """The loss in float64 from the given (already rounded) operands: ``w [(1 - y) sp(x) + p y sp(-x)]``."""
    softplus = -F.logsigmoid(-x)
    minus_softplus = -F.logsigmoid(x)
    per_element = (1 - y) * softplus + (1 if p is None else p) * y * minus_softplus
    if w is not None:
        per_element = per_element * w
    if reduction == "none":
        return per_element
    if reduction == "sum":
        return per_element.sum()
    if reduction == "mean" or w is None:
        return per_element.mean()
    return per_element.sum() / w.expand(x.shape).sum()


def _leaves(tensors, names, grads):
    """Detached copies; the input and every operand named in ``grads`` require grad."""
    out = []
    for name, tensor in zip(names, tensors):
        if tensor is None:
            out.append(None)
            continue
        wants = name == "input" or (name in grads and tensor.is_floating_point())
        out.append(tensor.detach().requires_grad_(wants) if wants else tensor)
    return out


def _close_normwise(got, expected, tolerance, what, floor=1e-3):
    """``max |got - expected| <= tolerance * max(max |expected|, floor)``."""
    got, expected = got.double(), expected.double()
    scale = expected.abs().max().item() if expected.numel() else 0.0
    error = (got - expected).abs().max().item() if expected.numel() else 0.0
    assert error <= tolerance * max(scale, floor), f"{what}: error {error:.3g} at scale {scale:.3g}"


def _gradient_bound(x, w, p, reduction, cotangent):
    """The largest input gradient any element could have: ``cot w max(1, p) / denominator``.

    PyTorch's kernel computes ``sigmoid(x) - y``, which for a confident positive (``y = 1``, large
    ``x``) in bfloat16 or float16 keeps only an absolute accuracy of the dtype's epsilon; the input
    gradient is compared to that scale (backward stability), not to its own tiny value.
    """
    weight = 1.0 if w is None else w.double().abs().max().item()
    positive = 1.0 if p is None else max(1.0, p.double().abs().max().item())
    if reduction in ("sum", "none"):
        denominator = 1.0
    elif reduction == "mean" or w is None:
        denominator = max(x.numel(), 1)
    else:
        denominator = max(w.double().expand(x.shape).sum().item(), 1e-12)
    return cotangent.abs().max().item() * weight * positive / denominator


def check_case(case, backend="torch"):
    """Run one case; returns "match" or "refused" (and fails the test on any defect)."""
    x, y, w, p = build(case)
    names = ("input", "target", "weight", "pos_weight")
    ours_leaves = _leaves((x, y, w, p), names, case["grads"])
    try:
        ours = bw.bce_with_logits(*ours_leaves, reduction=case["reduction"], backend=backend)
    except bw.WeightShapeError as error:
        assert "\nWrite instead" in str(error), str(error)
        return "refused"

    tolerance = max(TOLERANCE[case["dtype"]], TOLERANCE[y.dtype] if y.is_floating_point() else 0.0)
    # PyTorch rounds (pos_weight - 1) and weight * loss in their own dtypes: a float16 pos_weight with
    # float64 logits is float16-accurate there (bceweights computes in the input's and target's dtype)
    torch_tolerance = max([tolerance] + [TOLERANCE[t.dtype] for t in (w, p) if t is not None])
    cotangent = torch.rand(ours.shape, generator=torch.Generator().manual_seed(case["seed"] + 1), dtype=torch.float64)
    bound = _gradient_bound(x, w, p, case["reduction"], cotangent)
    # PyTorch's value (1 - y) x - (1 + (p - 1) y) log sigmoid(x) rounds terms of size |x|: a value is
    # accurate to the tolerance at that scale (for a confident negative in float32, x - log sigmoid(x)
    # keeps 1e-7 absolute of a 0.0025 loss; a bfloat16 target makes PyTorch round each step to bfloat16)
    largest_logit = x.double().abs().max().item() if x.numel() else 0.0
    value_floor = _gradient_bound(x, w, p, case["reduction"], torch.ones(())) * max(1.0, largest_logit)
    torch_target = y if y.is_floating_point() else y.to(x.dtype)  # PyTorch refuses bool/integer targets
    if case["reduction"] != "weighted_mean":
        theirs_x = x.detach().requires_grad_()
        try:
            theirs = F.binary_cross_entropy_with_logits(theirs_x, torch_target, w, pos_weight=p,
                                                        reduction=case["reduction"])
        except RuntimeError:
            # the one documented extension: a one-element operand on a 0-d input (PyTorch refuses)
            assert x.ndim == 0 and ((w is not None and w.ndim > 0) or (p is not None and p.ndim > 0))
        else:
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
            if not torch.isfinite(theirs).all():  # float16 overflow in PyTorch too: nothing finite to compare
                torch.testing.assert_close(ours, theirs, equal_nan=True, rtol=torch_tolerance, atol=torch_tolerance)
                return "match"
            _close_normwise(ours.detach(), theirs, torch_tolerance, "value vs PyTorch", floor=value_floor)
            (theirs_grad,) = torch.autograd.grad(theirs, theirs_x, cotangent.to(theirs.dtype))
            (ours_grad,) = torch.autograd.grad(ours, ours_leaves[0], cotangent.to(ours.dtype), retain_graph=True)
            assert ours_grad.dtype == theirs_grad.dtype == x.dtype
            _close_normwise(ours_grad, theirs_grad, torch_tolerance, "input gradient vs PyTorch", floor=bound)

    wide = [None if t is None else t.detach().double().requires_grad_(t.requires_grad) for t in ours_leaves]
    expected = reference(*wide, case["reduction"])
    _close_normwise(ours.detach(), expected.detach(), tolerance, "value vs float64", floor=value_floor)
    differentiable = [(name, ours_t, wide_t) for name, ours_t, wide_t in zip(names, ours_leaves, wide)
                      if ours_t is not None and ours_t.requires_grad]
    cotangent = cotangent.to(ours.dtype).double()  # the cotangent both sides see
    create_graph = case["double_backward"] and case["dtype"] == torch.float64
    ours_grads = torch.autograd.grad(ours, [t for _, t, _ in differentiable], cotangent.to(ours.dtype),
                                     create_graph=create_graph)
    expected_grads = torch.autograd.grad(expected, [t for _, _, t in differentiable], cotangent, create_graph=create_graph)
    for (name, _, _), got, want in zip(differentiable, ours_grads, expected_grads):
        assert got.shape == want.shape
        # d/dw of a weighted mean cancels (it is 0 for a scalar weight): every partial other than the
        # input's is compared at the scale of the loss terms it is made of
        floor = bound if name == "input" else max(1e-3, value_floor, expected.detach().abs().max().item())
        own = max(tolerance, TOLERANCE[got.dtype])  # a gradient comes back in its operand's dtype
        _close_normwise(got, want, own, f"{name} gradient vs float64", floor=floor)
    _check_hard_target_gradients(case, y, ours_leaves, ours_grads, expected_grads, differentiable, tolerance)
    if create_graph:
        direction = torch.rand(x.shape, generator=torch.Generator().manual_seed(case["seed"] + 2), dtype=torch.float64)
        (ours_second,) = torch.autograd.grad((ours_grads[0] * direction).sum(), ours_leaves[0])
        (expected_second,) = torch.autograd.grad((expected_grads[0] * direction).sum(), wide[0])
        _close_normwise(ours_second, expected_second, tolerance, "second derivative vs float64")
    return "match"


def _check_hard_target_gradients(case, y, ours_leaves, ours_grads, expected_grads, differentiable, tolerance):
    """The input gradient element by element where nothing cancels: ``sigmoid(x)`` for a target 0 on
    every path, and ``-p sigmoid(-x)`` for a target 1 where the stable formula runs (a target or
    pos_weight that requires grad). A confident prediction's tiny gradient must keep its digits
    (a float32 ``1 - sigmoid(-x)`` at ``x = -30`` is 0, not 9.36e-14); PyTorch's own kernel, used
    otherwise, computes ``sigmoid(x) - 1`` for a target 1, which only a normwise bound holds."""
    if not differentiable or differentiable[0][0] != "input":
        return
    got, want = ours_grads[0].double(), expected_grads[0].double()
    labels = y.double().expand(got.shape)
    stable_formula = any(t is not None and t.requires_grad for t in ours_leaves[1:2] + ours_leaves[3:4])
    hard = (labels == 0) | ((labels == 1) if stable_formula else torch.zeros_like(labels, dtype=torch.bool))
    representable = want.abs() >= torch.finfo(ours_grads[0].dtype).tiny / tolerance  # no subnormal gradients
    mask = hard & representable
    if mask.any():
        torch.testing.assert_close(got[mask], want[mask], rtol=4 * tolerance, atol=0.0,
                                   msg=lambda m: f"input gradient of hard targets, element by element: {m}")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_generated_cases_match_pytorch_or_are_documented_refusals(case):
    check_case(case)


def test_the_generated_cases_reach_both_outcomes_and_every_dtype():
    """The strategy is not vacuous: seeded cases match, others are refused (the silent traps)."""
    outcomes = {}
    base = dict(target_kind="soft", target_dtype=torch.float32, weight_dtype=torch.float32,
                pos_weight_dtype=torch.float32, reduction="mean", layout="contiguous", grads=(),
                scale=1.0, double_backward=False, seed=0)
    for dtype in FLOATS:
        case = dict(base, shape=(2, 3, 4, 4), dtype=dtype, weight_shape=(2, 1, 4, 4), pos_weight_shape=(3, 1, 1))
        outcomes[dtype] = check_case(case)
    refused = check_case(dict(base, shape=(2, 3, 4, 3), dtype=torch.float32, weight_shape=None, pos_weight_shape=(3,)))
    assert set(outcomes.values()) == {"match"} and refused == "refused"


FUSED_CASES = [
    dict(shape=(2, 3, 4, 4), dtype=torch.float32, target_kind="soft", layout="channels_last",
         weight_shape=(2, 1, 4, 4), pos_weight_shape=(3, 1, 1), reduction="mean", scale=60.0),
    dict(shape=(3, 5), dtype=torch.bfloat16, target_kind="other", target_dtype=torch.float32, layout="transposed",
         weight_shape=(5,), pos_weight_shape=(3, 5), reduction="none", scale=8.0),
    dict(shape=(2, 3, 4), dtype=torch.float16, target_kind="bool", layout="expanded",
         weight_shape=(2, 3, 4), pos_weight_shape=None, reduction="weighted_mean", scale=8.0),
    dict(shape=(4, 2, 3), dtype=torch.float64, target_kind="soft", layout="strided",
         weight_shape=None, pos_weight_shape=(2, 1), reduction="sum", scale=60.0),
]


DEFAULTS = dict(target_dtype=torch.float32, weight_dtype=torch.float32, pos_weight_dtype=torch.float32,
                grads=(), double_backward=False)


@pytest.mark.parametrize("index", range(len(FUSED_CASES)))
def test_the_fused_backend_matches(index):
    case = {**DEFAULTS, "seed": index, **FUSED_CASES[index]}
    if index > 1:
        case["double_backward"] = True  # the fused pass's second-order backward (checked in float64)
    assert check_case(case, "fused") == "match"


def test_the_auto_backend_matches_once_it_fuses():
    """``"auto"`` fuses from its third call of a signature with at least 65,536 elements."""
    from bceweights import backend as backend_module

    case = {**DEFAULTS, "seed": 7, "shape": (2, 2, 128, 128), "dtype": torch.float32, "target_kind": "bool",
            "layout": "channels_last", "weight_shape": (2, 1, 128, 128), "pos_weight_shape": (2, 1, 1),
            "reduction": "mean", "scale": 8.0}
    assert case["shape"][0] * case["shape"][1] * 128 * 128 >= backend_module.AUTO_MIN_NUMEL
    for _ in range(backend_module.AUTO_AFTER_CALLS):
        assert check_case(case, "auto") == "match"


@pytest.mark.parametrize("backend", ["torch", "fused", "auto"])
def test_compiled_with_dynamic_shapes_matches_eager(backend):
    """``torch.compile(dynamic=True, fullgraph=True)`` over three batch sizes, bfloat16 logits with
    float32 targets, gradients of the input and the target."""
    torch._dynamo.reset()

    def loss(x, y, w, p, backend=backend):
        return bw.bce_with_logits(x, y, w, p, channel_dim=1, reduction="weighted_mean", backend=backend)

    compiled = torch.compile(loss, dynamic=True, fullgraph=True, backend="aot_eager")
    # eagerly, "fused" refuses a target that requires grad (and names backend="auto"); inside a graph
    # every backend traces the eager formula, so the eager reference is backend="torch"
    eager = lambda x, y, w, p: loss(x, y, w, p, backend="torch")  # noqa: E731
    pos_weight = torch.tensor([3.0, 0.5, 9.0])
    for batch in (6, 9, 4):
        generator = torch.Generator().manual_seed(batch)
        x = (torch.randn(batch, 3, 5, 5, generator=generator) * 20).bfloat16()
        y = torch.rand(batch, 3, 5, 5, generator=generator)
        w = torch.rand(batch, 1, 5, 5, generator=generator)
        results = []
        for function in (compiled, eager):
            xl, yl = x.clone().requires_grad_(), y.clone().requires_grad_()
            out = function(xl, yl, w, pos_weight)
            results.append((out.detach(), *torch.autograd.grad(out, (xl, yl))))
        for got, want in zip(*results):
            assert got.dtype == want.dtype
            torch.testing.assert_close(got, want, rtol=1e-2, atol=1e-5)
        assert results[0][0].dtype == torch.float32  # the target's dtype, as PyTorch
