"""The fused single-pass weighted BCE: a compiled C++ loop on CPU, a Triton kernel on CUDA.

PyTorch's ``binary_cross_entropy_with_logits`` with ``weight`` and ``pos_weight`` runs about ten
elementwise kernels forward and nine backward, each reading and writing full-size temporaries. The
fused paths read input, target and the (broadcast) weights once, compute the loss and ``d loss / d
input`` together, and leave backward a single scaled multiply, or nothing at all on a plain
``loss.backward()`` of a mean or sum on CPU (see :mod:`bceweights.fused.autograd`).

This package is only the fused pass: :func:`unavailable_reason` says whether it can run a call and
:func:`run` runs it. Which path a call takes (``backend="auto"``, ``"torch"``, ``"fused"``) and the
fallback to the eager path are :mod:`bceweights.backend`'s::

    from bceweights.backend import compute_loss
    from bceweights.prepared import prepare

    prepared = prepare(logits, target, weight=mask.unsqueeze(1), pos_weight=[6., 30., 1.], channel_dim=1)
    loss = compute_loss(prepared, "mean", backend="fused")      # (N, C, H, W) -> ()

Modules: :mod:`~bceweights.fused.plan` (what one call computes), :mod:`~bceweights.fused.formula` (the
elementwise formula), :mod:`~bceweights.fused.autograd` (forward saves the gradient, backward scales
it), :mod:`~bceweights.fused.cpu_compiled` (``torch.compile`` on CPU) and
:mod:`~bceweights.fused.triton_kernel` (CUDA; imported only when a CUDA call needs it).

Imports: :mod:`bceweights.prepared` and :mod:`bceweights.eager` (the second-order backward) from the
core; never :mod:`bceweights.backend` or :mod:`bceweights.loss`, which import this package.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch
from torch import Tensor

from bceweights.fused import cpu_compiled
from bceweights.fused.autograd import FusedBCE, finish
from bceweights.fused.plan import FusedBuildFailed, PassOutputs, Plan, make_plan
from bceweights.prepared import Prepared, carries_tangent, functorch_transforms_active

__all__ = [
    "FUSED_DTYPES",
    "TRITON_REQUIREMENT",
    "FusedBuildFailed",
    "autograd_mode_reason",
    "run",
    "unavailable_reason",
]

TRITON_REQUIREMENT: str = "triton==3.7.1"
"""The Triton release torch 2.13.0's CUDA wheels depend on."""

FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def autograd_mode_reason(prepared: Prepared) -> str | None:
    """Why this call must be differentiated by the eager formula whatever the backend, or None.

    The fused pass hands autograd a precomputed gradient; the autograd modes that need more than that
    first-order reverse pass run the eager formula instead, on every backend, with the same values:

    * forward-mode AD (an operand carries a ``torch.autograd.forward_ad`` tangent: ``fwAD.make_dual``,
      ``torch.autograd.functional.jvp``, ``jacobian(..., strategy="forward-mode")``);
    * ``torch.func`` transforms (``grad``, ``vjp``, ``jvp``, ``vmap``, ``jacrev``, ``hessian``), which
      would trace into the compiled function or the kernel.

    Batched gradients (``torch.autograd.grad(..., is_grads_batched=True)``, ``jacobian(...,
    vectorize=True)``) and double backward (``create_graph=True``) start from an ordinary forward and
    are handled by :class:`bceweights.fused.autograd.FusedBCE`'s backward.
    """
    if functorch_transforms_active():
        return "a torch.func transform (grad, vjp, jvp, vmap, ...) is active"
    operands = (prepared.input, prepared.target, prepared.weight, prepared.pos_weight)
    if any(carries_tangent(t) for t in operands):
        return "an operand carries a forward-mode AD tangent"
    return None


def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def unavailable_reason(prepared: Prepared) -> str | None:
    """Why no fused path can compute this call, or None when one can."""
    x = prepared.input
    if torch.compiler.is_compiling():
        return "the call is being traced by torch.compile, which fuses the eager loss by itself"
    if torch.is_grad_enabled():
        needing = [
            name for name in ("target", "weight", "pos_weight")
            if getattr(prepared, name) is not None and getattr(prepared, name).requires_grad
        ]
        if needing:
            return (
                f"{' and '.join(needing)} require{'s' if len(needing) == 1 else ''} grad, and the fused path "
                "differentiates the input only"
            )
    elsewhere = [
        name for name in ("target", "weight", "pos_weight", "ignore")
        if getattr(prepared, name) is not None and getattr(prepared, name).device != x.device
    ]
    if elsewhere:
        verb = "is" if len(elsewhere) == 1 else "are"
        return f"{' and '.join(elsewhere)} {verb} not on the input's device {x.device}"
    if x.dtype not in FUSED_DTYPES:
        return f"input has dtype {x.dtype}; the fused paths handle float16, bfloat16, float32 and float64"
    if x.device.type == "cpu":
        reason = cpu_compiled.unavailable_reason()
        return None if reason is None else f"on CPU the fused loss is compiled by torch.compile, but {reason}"
    if x.device.type == "cuda":
        if not _triton_installed():
            return (
                "on CUDA the fused loss is a Triton kernel, and triton is not installed. "
                f"Install it with `pip install {TRITON_REQUIREMENT}` (the version torch {torch.__version__} pins)"
            )
        return None
    return f"input is on {x.device.type!r}; the fused paths run on 'cpu' and 'cuda'"


def _runner(device: torch.device) -> Callable[..., PassOutputs]:
    if device.type == "cpu":
        return cpu_compiled.run
    from bceweights.fused import triton_kernel

    return triton_kernel.run


def run(prepared: Prepared, reduction: str, gamma: float = 0.0, alpha: float | None = None) -> Tensor:
    """The weighted (focal) BCE of ``prepared`` under ``reduction`` in one fused pass.

    Returns what :func:`bceweights.eager.eager_loss` returns (a scalar, or ``(*)`` for ``"none"``, in
    the input's dtype), with gradients for ``prepared.input`` only. Computes and accumulates in float32
    (float64 for float64 inputs; the Triton kernel adds its per-block partial sums in float64), so
    float16/bfloat16 inputs keep float32 precision until the loss and the gradient are rounded once.

    The caller checks first: ``reduction`` and the focal options (:mod:`bceweights.prepared`), and
    that :func:`unavailable_reason` is None (:func:`bceweights.backend.resolve_backend`).

    Raises:
        FusedBuildFailed: the compiled function or the kernel could not be built or launched.
    """
    x = prepared.input
    need_grad = torch.is_grad_enabled() and x.requires_grad
    plan: Plan = make_plan(prepared, reduction, gamma, alpha, need_grad)
    operands = (x, prepared.target, prepared.weight, prepared.pos_weight, prepared.ignore)
    runner = _runner(x.device)
    if need_grad:
        return FusedBCE.apply(*operands, plan, runner)
    return finish(runner(plan, *operands), plan, x)[0]
