"""The fused paths against the eager formula: values and input gradients, every option.

The compiled CPU path runs here directly (a C++ compiler is part of the test setup). The Triton kernel
runs in Triton's interpreter on CPU tensors: ``TRITON_INTERPRET=1`` must be set before ``triton`` is
imported, so those cases run in one child process (see :func:`test_triton_kernel_in_interpreter`).

Tolerances: float32 results are compared with the eager formula evaluated in float64 on the same
inputs, ``rtol=1e-5`` plus ``atol=1e-6 * max |reference|`` (elements five orders of magnitude below
the largest may differ by that absolute amount); reduced float32 losses are also compared with the
float32 eager path at ``rtol=1e-5``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import bceweights as bw
from bceweights import backend as backend_module
from bceweights.backend import compute_loss, resolve_backend
from bceweights.eager import eager_loss
from bceweights.fused import cpu_compiled
from bceweights.prepared import prepare


@dataclass(frozen=True)
class Case:
    """One combination of options on an ``(N, C, *spatial)`` input.

    ``weight``: None, "mask" ``(N, 1, *S)``, "full" ``(N, C, *S)``, "channel" ``(C,)`` with
    ``channel_dim=1``, or "number". ``ignore``: None, "mask" ``(N, 1, *S)`` or "full".
    """

    name: str
    reduction: str
    weight: str | None = None
    pos_weight: bool = False
    ignore: str | None = None
    gamma: float = 0.0
    alpha: float | None = None
    soft_target: bool = False
    shape: tuple[int, ...] = (2, 3, 8, 8)


CASES = [
    Case("mean-mask-posweight", "mean", "mask", True),
    Case("sum-full-weight-ignore", "sum", "full", False, "mask"),
    Case("none-mask-posweight-ignore-full", "none", "mask", True, "full"),
    Case("weighted_mean-mask-posweight-ignore", "weighted_mean", "mask", True, "mask"),
    Case("weighted_mean-no-weight-ignore", "weighted_mean", None, False, "mask", soft_target=True),
    Case("mean-ignore-focal2-alpha", "mean", None, True, "mask", gamma=2.0, alpha=0.25),
    Case("none-full-focal-half", "none", "full", False, None, gamma=0.5),
    Case("weighted_mean-channel-weight-focal3", "weighted_mean", "channel", True, None, gamma=3.0, alpha=0.75),
    Case("mean-number-weight-3d", "mean", "number", True, None, shape=(2, 2, 3, 4, 5)),
]


def make_arguments(case: Case, dtype: torch.dtype = torch.float32, seed: int = 0) -> dict:
    """Inputs for ``prepare``: logits spread over [-12, 12] so saturated elements occur too."""
    generator = torch.Generator().manual_seed(seed)
    n, c, *spatial = case.shape
    x = (torch.randn(case.shape, generator=generator, dtype=torch.float64) * 4).clamp(-12, 12)
    if case.soft_target:
        y = torch.rand(case.shape, generator=generator, dtype=torch.float64)
    else:
        y = (torch.rand(case.shape, generator=generator) < 0.3).to(torch.float64)
    mask_shape = (n, 1, *spatial)
    weight = {
        None: None,
        "mask": lambda: torch.rand(mask_shape, generator=generator, dtype=torch.float64) + 0.1,
        "full": lambda: torch.rand(case.shape, generator=generator, dtype=torch.float64) * 2,
        "channel": lambda: torch.linspace(0.5, 2.0, c, dtype=torch.float64),
        "number": lambda: 2.5,
    }[case.weight]
    ignore = {
        None: None,
        "mask": lambda: torch.rand(mask_shape, generator=generator) < 0.25,
        "full": lambda: torch.rand(case.shape, generator=generator) < 0.25,
    }[case.ignore]
    return {
        "input": x.to(dtype),
        "target": y.to(dtype),
        "weight": weight() if callable(weight) else None,
        "pos_weight": torch.tensor([6.0, 30.0, 1.0][:c], dtype=torch.float64) if case.pos_weight else None,
        "ignore": ignore() if callable(ignore) else None,
        "channel_dim": 1 if case.weight == "channel" or case.pos_weight else None,
    }


def _prepared(arguments: dict, dtype: torch.dtype, input: torch.Tensor):
    def cast(value):
        return value.to(dtype) if isinstance(value, torch.Tensor) else value

    return prepare(
        input, cast(arguments["target"]), cast(arguments["weight"]), cast(arguments["pos_weight"]),
        arguments["ignore"], arguments["channel_dim"], check_values=False,
    )


def loss_and_input_grad(case: Case, arguments: dict, dtype: torch.dtype, how) -> tuple[torch.Tensor, torch.Tensor]:
    """``how(prepared) -> loss``; returns the loss and d(sum of loss * fixed cotangent)/d input."""
    x = arguments["input"].to(dtype).detach().requires_grad_()
    loss = how(_prepared(arguments, dtype, x))
    cotangent = torch.linspace(-1.0, 2.0, loss.numel(), dtype=torch.float64).view(loss.shape).to(dtype)
    (grad,) = torch.autograd.grad(loss, x, cotangent)
    return loss.detach(), grad


def eager(case: Case):
    return lambda prepared: eager_loss(prepared, case.reduction, case.gamma, case.alpha)


def fused_path(case: Case, runner=None):
    """The fused loss, through the public entry point or directly with ``runner`` (the Triton kernel)."""
    if runner is None:
        return lambda prepared: compute_loss(prepared, case.reduction, gamma=case.gamma, alpha=case.alpha,
                                           backend="fused")

    def direct(prepared):
        from bceweights.fused.autograd import FusedBCE
        from bceweights.fused.plan import make_plan

        plan = make_plan(prepared, case.reduction, case.gamma, case.alpha, need_grad=True)
        return FusedBCE.apply(prepared.input, prepared.target, prepared.weight, prepared.pos_weight,
                              prepared.ignore, plan, runner)

    return direct


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, rtol: float, what: str,
                   atol_floor: float = 0.0) -> None:
    """``|actual - expected| <= rtol |expected| + max(rtol / 10 * max |expected|, atol_floor)``."""
    expected = expected.to(torch.float64)
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(
        actual.to(torch.float64), expected, rtol=rtol, atol=max(rtol * 0.1 * scale, atol_floor),
        msg=lambda m: f"{what}: {m}",
    )


def compare_with_eager(case: Case, runner=None, dtype: torch.dtype = torch.float32,
                       transform=lambda t: t) -> None:
    """Fused (``dtype``) against eager float64 on the same values; ``transform`` reshapes the input."""
    arguments = make_arguments(case, dtype)
    arguments["input"] = transform(arguments["input"])
    value, grad = loss_and_input_grad(case, arguments, dtype, fused_path(case, runner))
    assert value.dtype == dtype and grad.dtype == dtype
    assert value.shape == (case.shape if case.reduction == "none" else ())
    rounded = {k: (v.to(dtype).to(torch.float64) if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
               for k, v in arguments.items()}
    ref_value, ref_grad = loss_and_input_grad(case, rounded, torch.float64, eager(case))
    rtol = {torch.float32: 1e-5, torch.float64: 1e-10, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    # float16 gradients of a mean over many elements are subnormal: spacing 2**-24 there
    floor = 2.0**-24 if dtype == torch.float16 else 0.0
    assert_matches(value, ref_value, rtol, f"{case.name} {dtype} loss")
    assert_matches(grad, ref_grad, rtol, f"{case.name} {dtype} input gradient", floor)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_compiled_cpu_matches_eager(case: Case) -> None:
    compare_with_eager(case)
    if case.reduction != "none":  # and the float32 eager path itself, at 1e-5 relative
        arguments = make_arguments(case)
        fused_value, _ = loss_and_input_grad(case, arguments, torch.float32, fused_path(case))
        eager_value, _ = loss_and_input_grad(case, arguments, torch.float32, eager(case))
        torch.testing.assert_close(fused_value, eager_value, rtol=1e-5, atol=0)


LOW_PRECISION = Case("mean-mask-posweight-ignore-large", "mean", "mask", True, "mask", shape=(2, 3, 120, 120))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_compiled_cpu_low_precision_accumulates_in_float32(dtype: torch.dtype) -> None:
    """86 400 elements: more than float16 can count (65 504), so the mean's denominator and the sum
    must be accumulated in float32; the result is then within one rounding of the exact value."""
    compare_with_eager(LOW_PRECISION, dtype=dtype)


def test_compiled_cpu_float16_mean_with_ignore_is_finite_where_the_count_overflows_float16() -> None:
    arguments = make_arguments(LOW_PRECISION, torch.float16)
    value, grad = loss_and_input_grad(LOW_PRECISION, arguments, torch.float16, fused_path(LOW_PRECISION))
    assert torch.isfinite(value) and float(value) > 0.1
    assert torch.isfinite(grad).all() and grad.abs().max() > 0


@pytest.mark.parametrize(
    "layout",
    ["channels_last", "strided"],
)
def test_compiled_cpu_non_contiguous_input(layout: str) -> None:
    case = CASES[3]  # weighted_mean, mask weight, pos_weight, ignore
    if layout == "channels_last":
        def transform(t):
            return t.contiguous(memory_format=torch.channels_last)
    else:  # the same values as a view with stride 2 along W
        def transform(t):
            return torch.stack([t, t], dim=-1)[..., 0]
    arguments_check = make_arguments(case)
    assert not transform(arguments_check["input"]).is_contiguous()
    compare_with_eager(case, transform=transform)


def test_compiled_cpu_float64_gradcheck_and_second_derivative() -> None:
    """Analytic against numerical derivatives in float64; ``create_graph`` differentiates the eager
    formula, so second derivatives (``gradgradcheck``) are right too."""
    case = CASES[5]  # focal with alpha, ignore, pos_weight
    arguments = make_arguments(case, torch.float64)

    def function(x):
        return fused_path(case)(_prepared(arguments, torch.float64, x))

    x = arguments["input"].clone().requires_grad_()
    assert torch.autograd.gradcheck(function, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(function, (x,), fast_mode=True)


def test_compiled_cpu_without_grad_matches_and_compiles_once() -> None:
    case = CASES[0]
    arguments = make_arguments(case)
    with torch.no_grad():
        first = fused_path(case)(_prepared(arguments, torch.float32, arguments["input"]))
        graphs = len(cpu_compiled._compiled)
        second = fused_path(case)(_prepared(arguments, torch.float32, arguments["input"].clone()))
        assert len(cpu_compiled._compiled) == graphs  # same signature: the compiled function is reused
        expected = eager(case)(_prepared(arguments, torch.float64, arguments["input"].double()))
    assert torch.equal(first, second)
    assert_matches(first, expected, 1e-5, "no-grad loss")


def test_compiled_cpu_backward_twice_with_retain_graph() -> None:
    case = CASES[0]
    arguments = make_arguments(case)
    x = arguments["input"].clone().requires_grad_()
    loss = fused_path(case)(_prepared(arguments, torch.float32, x))
    loss.backward(retain_graph=True)
    once = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * once)


@pytest.mark.parametrize("case", [CASES[0], CASES[1]], ids=["mean", "sum"])
def test_compiled_cpu_plain_backward_hands_over_the_final_gradient(case: Case) -> None:
    """``loss.backward()`` (grad_output 1, graph not kept): the saved gradient becomes ``.grad``."""
    arguments = make_arguments(case)
    x = arguments["input"].clone().requires_grad_()
    fused_path(case)(_prepared(arguments, torch.float32, x)).backward()
    _, expected = loss_and_input_grad(case, arguments, torch.float64,
                                      lambda prepared: eager(case)(prepared) * -1.0)  # its cotangent is -1
    assert_matches(x.grad, expected, 1e-5, f"{case.name} .grad")


def test_gradients_returned_while_the_graph_is_kept_are_independent_copies() -> None:
    case = CASES[0]
    arguments = make_arguments(case)
    x = arguments["input"].clone().requires_grad_()
    loss = fused_path(case)(_prepared(arguments, torch.float32, x))
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    expected = first.clone()
    first.mul_(100.0)  # the caller owns what it got
    (second,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(second, expected, rtol=0, atol=0)


def test_empty_input_gives_what_eager_gives() -> None:
    x = torch.empty(0, 3, 4, 4, requires_grad=True)
    prepared = prepare(x, torch.empty(0, 3, 4, 4), check_values=False)
    for reduction in ("sum", "none"):
        assert torch.equal(compute_loss(prepared, reduction, backend="fused"), eager_loss(prepared, reduction))
    assert torch.isnan(compute_loss(prepared, "mean", backend="fused"))  # as PyTorch: 0 / 0


# --- through the public API (bw.bce_with_logits(..., backend=...)) ---------------------------------

@pytest.mark.parametrize("case", [CASES[0], CASES[3]], ids=[CASES[0].name, CASES[3].name])
def test_public_bce_with_logits_fused_matches_eager(case: Case) -> None:
    arguments = make_arguments(case)

    def public(backend):
        def call(prepared):
            return bw.bce_with_logits(prepared.input, arguments["target"], arguments["weight"],
                                      arguments["pos_weight"], reduction=case.reduction,
                                      channel_dim=arguments["channel_dim"], ignore=arguments["ignore"],
                                      backend=backend)
        return call

    for key in ("target", "weight", "pos_weight"):
        if isinstance(arguments[key], torch.Tensor):
            arguments[key] = arguments[key].float()
    fused_value, fused_grad = loss_and_input_grad(case, arguments, torch.float32, public("fused"))
    eager_value, eager_grad = loss_and_input_grad(case, arguments, torch.float32, public("torch"))
    torch.testing.assert_close(fused_value, eager_value, rtol=1e-5, atol=0)
    assert_matches(fused_grad, eager_grad, 1e-5, f"{case.name} public input gradient")


def test_public_focal_and_modules_accept_the_backend() -> None:
    case = CASES[5]  # focal gamma 2, alpha 0.25, ignore, pos_weight
    arguments = make_arguments(case)
    x = arguments["input"].float()
    y, pos_weight = arguments["target"].float(), arguments["pos_weight"].float()
    values = [
        bw.focal_bce_with_logits(x, y, 2.0, 0.25, pos_weight=pos_weight, channel_dim=1,
                                 ignore=arguments["ignore"], backend=backend)
        for backend in ("fused", "torch")
    ]
    torch.testing.assert_close(values[0], values[1], rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="backend='cuda' is not one of"):
        bw.bce_with_logits(x, y, backend="cuda")
    for module_class in (bw.BCEWithLogits, bw.FocalBCEWithLogits):
        module = module_class(pos_weight=pos_weight, channel_dim=1, backend="fused")
        eager_module = module_class(pos_weight=pos_weight, channel_dim=1, backend="torch")
        torch.testing.assert_close(module(x, y), eager_module(x, y), rtol=1e-5, atol=0)


# --- choosing the backend -------------------------------------------------------------------------


def _small_prepared(**changes):
    arguments = {"input": torch.randn(2, 3, 4, 4, requires_grad=True), "target": torch.rand(2, 3, 4, 4)}
    arguments.update(changes)
    return prepare(**arguments, check_values=False)


def test_unknown_backend_is_refused_with_the_names() -> None:
    with pytest.raises(ValueError, match=r"backend='triton' is not one of 'auto', 'torch', 'fused'"):
        resolve_backend("triton", _small_prepared())


def test_weight_requiring_grad_goes_eager_under_auto_and_is_refused_under_fused() -> None:
    prepared = _small_prepared(weight=torch.rand(2, 1, 4, 4, requires_grad=True))
    assert resolve_backend("auto", prepared) == "torch"
    with pytest.raises(ValueError, match="weight requires grad.*differentiates the input only"):
        resolve_backend("fused", prepared)
    with torch.no_grad():
        assert resolve_backend("fused", prepared) == "fused"


def test_missing_toolchain_goes_eager_under_auto_and_is_refused_under_fused(monkeypatch) -> None:
    reason = "no working C++ compiler (apt-get install g++)"
    monkeypatch.setattr(cpu_compiled, "unavailable_reason", lambda: reason)
    big = _small_prepared(input=torch.randn(2, 3, 128, 128), target=torch.rand(2, 3, 128, 128))
    assert all(resolve_backend("auto", big) == "torch" for _ in range(backend_module.AUTO_AFTER_CALLS + 1))
    with pytest.raises(ValueError, match=r"cannot run here: on CPU .*apt-get install g\+\+"):
        resolve_backend("fused", big)


def test_unsupported_device_is_refused_with_the_device_named() -> None:
    x = torch.randn(2, 3, 4, 4, device="meta")
    prepared = prepare(x, torch.empty(2, 3, 4, 4, device="meta"), check_values=False)
    assert resolve_backend("auto", prepared) == "torch"
    with pytest.raises(ValueError, match="input is on 'meta'"):
        resolve_backend("fused", prepared)


def test_operand_on_another_device_goes_eager_under_auto_and_is_refused_under_fused() -> None:
    x = torch.randn(2, 3, 4, 4)
    prepared = prepare(x, torch.rand(2, 3, 4, 4, device="meta"), check_values=False)
    assert resolve_backend("auto", prepared) == "torch"
    with pytest.raises(ValueError, match="target is not on the input's device cpu"):
        resolve_backend("fused", prepared)


def test_auto_stays_eager_for_small_inputs_and_for_the_first_calls_of_a_signature() -> None:
    assert resolve_backend("auto", _small_prepared()) == "torch"  # below AUTO_MIN_NUMEL
    shape = (1, 1, 1, backend_module.AUTO_MIN_NUMEL + 1)  # a signature no other test uses
    big = _small_prepared(input=torch.randn(shape), target=torch.rand(shape))
    choices = [resolve_backend("auto", big, "sum") for _ in range(backend_module.AUTO_AFTER_CALLS + 1)]
    assert choices == ["torch"] * (backend_module.AUTO_AFTER_CALLS - 1) + ["fused", "fused"]


def test_auto_falls_back_to_eager_when_the_build_fails(monkeypatch) -> None:
    def failing(*_args):
        raise cpu_compiled.CompileFailed("no compiler")

    monkeypatch.setattr(cpu_compiled, "run", failing)
    monkeypatch.setattr(backend_module, "resolve_backend", lambda *args, **kwargs: "fused")
    prepared = _small_prepared()
    expected = eager_loss(prepared, "mean")
    assert torch.equal(compute_loss(prepared, "mean", backend="auto"), expected)
    with pytest.raises(cpu_compiled.CompileFailed):
        compute_loss(prepared, "mean", backend="fused")


# --- the Triton kernel, in Triton's interpreter on CPU ---------------------------------------------

TRITON_CASES = CASES + [
    Case("sum-mask-5d-merged", "sum", "mask", True, "mask", shape=(2, 3, 2, 5, 7)),
    Case("focal-general-gamma", "mean", "mask", False, None, gamma=1.5, alpha=0.25, soft_target=True),
]


def triton_interpreter_failures() -> list[str]:
    """Run every Triton case in this (interpreted) process; returns one line per failure."""
    from bceweights.fused import triton_kernel

    failures = []
    checks = [(case, torch.float32, lambda t: t) for case in TRITON_CASES] + [
        (LOW_PRECISION, torch.float16, lambda t: t),
        (LOW_PRECISION, torch.bfloat16, lambda t: t),
        (CASES[0], torch.float64, lambda t: t),
        (CASES[3], torch.float32, lambda t: t.contiguous(memory_format=torch.channels_last)),
        (CASES[3], torch.float32, lambda t: t.transpose(2, 3)),
    ]
    for case, dtype, transform in checks:
        try:
            compare_with_eager(case, triton_kernel.run, dtype, transform)
        except AssertionError as error:
            failures.append(f"{case.name} {dtype}: {str(error).splitlines()[0]}")
    # interleaved broadcasting leaves more than MAX_DIMS dimensions: operands are materialised
    shape = (2, 3, 2, 3, 2, 3)
    prepared_args = {"input": torch.randn(shape), "target": torch.rand(shape),
                     "weight": torch.rand(2, 1, 2, 1, 2, 1), "pos_weight": torch.rand(1, 3, 1, 3, 1, 3)}
    sizes, _ = triton_kernel.merge_dimensions(torch.Size(shape), [prepared_args["weight"].expand(shape)])
    if len(sizes) <= triton_kernel.MAX_DIMS:
        failures.append(f"the interleaved case merged to {len(sizes)} dims; it should need more than 4")
    for reduction in ("sum", "none"):
        prepared = prepare(**prepared_args, check_values=False)
        from bceweights.fused.plan import make_plan

        outputs = triton_kernel.run(make_plan(prepared, reduction, 0.0, None, False), prepared.input,
                                    prepared.target, prepared.weight, prepared.pos_weight, None)
        expected = eager_loss(prepared, reduction)
        if not torch.allclose(outputs.values.to(torch.float32), expected, rtol=1e-5, atol=1e-6):
            failures.append(f"interleaved broadcast {reduction}: {outputs.values} != {expected}")
    return failures


def test_triton_kernel_in_interpreter() -> None:
    """Every case through the Triton kernel under ``TRITON_INTERPRET=1``, in a child process."""
    pytest.importorskip("triton", reason="triton is a test dependency; install it to check the kernel")
    here = Path(__file__).resolve()
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('fused_tests', {str(here)!r})\n"
        "module = sys.modules['fused_tests'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print('FAILURES=' + json.dumps(module.triton_interpreter_failures()))\n"
    )
    environment = dict(os.environ, TRITON_INTERPRET="1")
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(here.parents[1])] + ([environment["PYTHONPATH"]] if environment.get("PYTHONPATH") else [])
    )
    child = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                           timeout=600)
    lines = [line for line in child.stdout.splitlines() if line.startswith("FAILURES=")]
    assert child.returncode == 0 and lines, f"child failed:\n{child.stdout[-3000:]}\n{child.stderr[-3000:]}"
    failures = json.loads(lines[-1].removeprefix("FAILURES="))
    assert not failures, "\n".join(failures)


GPU_BUILDS = [  # (dtype, reduction, weight, pos_weight, ignore, gamma, alpha, need_grad, flat, int64)
    (torch.float32, "mean", True, True, False, 0.0, None, True, False, False),
    (torch.float32, "weighted_mean", True, True, True, 0.0, None, True, False, False),
    (torch.float32, "none", True, False, True, 0.0, None, True, True, False),
    (torch.float16, "mean", True, True, True, 2.0, 0.25, True, False, False),
    (torch.bfloat16, "weighted_mean", False, True, True, 1.5, 0.25, True, False, False),
    (torch.float32, "sum", True, True, True, 3.0, None, False, False, True),
    (torch.float64, "weighted_mean", True, True, True, 4.0, 0.75, True, False, False),
]


def test_triton_kernel_compiles_for_h100_without_a_gpu() -> None:
    """The interpreter does not run Triton's code generator; this builds real sm_90 cubins."""
    pytest.importorskip("triton", reason="triton is a test dependency; install it to check the kernel")
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.fail("run this test without TRITON_INTERPRET=1: it needs the compiler, not the interpreter")
    from bceweights.fused import triton_kernel
    from bceweights.fused.plan import Plan

    for dtype, reduction, weight, pos_weight, ignore, gamma, alpha, need_grad, flat, int64 in GPU_BUILDS:
        kept = {"mean": "count" if ignore else None,
                "weighted_mean": "weight" if weight else ("count" if ignore else None)}.get(reduction)
        plan = Plan(reduction, kept, gamma, alpha, need_grad)
        kernel = triton_kernel.compile_for_gpu(90, dtype, plan, weight=weight, pos_weight=pos_weight,
                                               ignore=ignore, flat=flat, int64=int64)
        ptx = kernel.asm["ptx"]
        assert ".target sm_90" in ptx and "st.global" in ptx, (dtype, reduction)
