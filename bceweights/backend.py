"""Fused single-pass weighted BCE: a compiled C++ loop on CPU, a Triton kernel on CUDA.

PyTorch's ``binary_cross_entropy_with_logits`` with ``weight`` and ``pos_weight`` runs about ten
elementwise kernels forward and nine backward, each reading and writing full-size temporaries. The
fused paths read input, target and the (broadcast) weights once, compute the loss and ``d loss / d
input`` together, and leave backward a single scaled multiply, or nothing at all on a plain
``loss.backward()`` of a mean or sum on CPU (see :mod:`bceweights.fused.autograd`).

    from bceweights.fused import fused_loss, resolve_backend
    from bceweights.loss import prepare

    prepared = prepare(logits, target, weight=mask.unsqueeze(1), pos_weight=[6., 30., 1.], channel_dim=1)
    loss = fused_loss(prepared, "mean", backend="fused")      # (N, C, H, W) -> ()

Backends: ``"torch"`` (the eager formula), ``"fused"`` (this package; an error saying why when it
cannot run) and ``"auto"`` (fused when it can run and pays off, else torch, silently).
"""

from __future__ import annotations

import importlib.util
import sys
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from bceweights.fused import cpu_compiled
from bceweights.fused.autograd import FusedBCE, eager_loss, finish
from bceweights.fused.plan import FusedBuildFailed, Plan, make_plan

if TYPE_CHECKING:
    from bceweights.loss import Prepared

__all__ = [
    "AUTO_AFTER_CALLS",
    "AUTO_MIN_NUMEL",
    "BACKENDS",
    "TRITON_REQUIREMENT",
    "fused_loss",
    "resolve_backend",
    "unavailable_reason",
]

BACKENDS: tuple[str, ...] = ("auto", "torch", "fused")

AUTO_MIN_NUMEL: int = 1 << 16
"""``"auto"`` keeps the eager path below this many elements, where the fused call's fixed cost
(guards, autograd node, thread start-up) is not repaid; measured in ``benchmarks/RESULTS.md``."""

AUTO_AFTER_CALLS: int = 3
"""``"auto"`` switches a shape signature to the fused path on its third call: compiling costs
seconds once, which a training loop repays and a one-off call in a notebook does not."""

TRITON_REQUIREMENT: str = "triton==3.7.1"
"""The Triton release torch 2.13.0's CUDA wheels depend on."""

FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

_calls_seen: OrderedDict[Hashable, int] = OrderedDict()
_MAX_SEEN = 256


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
        kernel_module = sys.modules.get("bceweights.fused.triton_kernel")
        return None if kernel_module is None else kernel_module.unavailable_reason()
    return f"input is on {x.device.type!r}; the fused paths run on 'cpu' and 'cuda'"


def _signature(prepared: Prepared, options: tuple) -> Hashable:
    """What one compiled fused function is specialised on (apart from grad mode and threads)."""
    tensors = (prepared.input, prepared.target, prepared.weight, prepared.pos_weight, prepared.ignore)
    return (options, prepared.input.device, tuple(
        None if t is None else (tuple(t.shape), t.stride(), t.dtype) for t in tensors
    ))


def _count_call(prepared: Prepared, options: tuple) -> int:
    key = _signature(prepared, options)
    count = _calls_seen.pop(key, 0) + 1
    _calls_seen[key] = count
    while len(_calls_seen) > _MAX_SEEN:
        _calls_seen.popitem(last=False)
    return count


def resolve_backend(
    backend: str,
    prepared: Prepared,
    reduction: str = "mean",
    *,
    gamma: float = 0.0,
    alpha: float | None = None,
) -> str:
    """Which path computes this call: ``"torch"`` or ``"fused"``.

    ``"torch"`` and ``"fused"`` are taken as asked (``"fused"`` raises when it cannot run). ``"auto"``
    answers ``"fused"`` when a fused path can run, the input has at least :data:`AUTO_MIN_NUMEL`
    elements and this shape signature is on its :data:`AUTO_AFTER_CALLS`-th call or later (each
    ``"auto"`` call counts; the signature is the operands' shapes, strides, dtypes and device with
    ``reduction``, ``gamma`` and ``alpha``); otherwise ``"torch"``, silently.

    Raises:
        ValueError: an unknown backend name, or ``backend="fused"`` where no fused path can run
            (missing compiler or Triton, unsupported device or dtype, ``weight`` requiring grad, ...).
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"backend={backend!r} is not one of {', '.join(map(repr, BACKENDS))}.\n"
            "Write instead:\n    backend=\"auto\"   # fused when it pays off, else the eager torch path"
        )
    if backend == "torch":
        return "torch"
    reason = unavailable_reason(prepared)
    if backend == "fused":
        if reason is not None:
            raise ValueError(
                f"backend=\"fused\" cannot run here: {reason}.\n"
                "Write instead:\n    backend=\"auto\"   # uses the fused path only where it can run"
            )
        return "fused"
    if reason is not None or prepared.input.numel() < AUTO_MIN_NUMEL:
        return "torch"
    calls = _count_call(prepared, (reduction, float(gamma), alpha))
    return "fused" if calls >= AUTO_AFTER_CALLS else "torch"


def _runner(device: torch.device):
    if device.type == "cpu":
        return cpu_compiled.run
    from bceweights.fused import triton_kernel

    return triton_kernel.run


def fused_loss(
    prepared: Prepared,
    reduction: str,
    *,
    gamma: float = 0.0,
    alpha: float | None = None,
    backend: str = "auto",
) -> Tensor:
    """The weighted (focal) BCE of ``prepared`` under ``reduction``, by the backend ``backend`` picks.

    Returns what ``weight_and_reduce(per_element_loss, prepared, reduction)`` returns on the eager path
    (a scalar, or ``(*)`` for ``"none"``, in the input's dtype), with gradients for ``prepared.input``.
    The fused paths compute and accumulate in float32 (float64 for float64 inputs; the Triton kernel
    adds its per-block partial sums in float64), so float16/bfloat16 inputs keep float32 precision until
    the loss and the gradient are rounded once. Only the input is differentiated: ``resolve_backend``
    keeps calls whose target, weight or pos_weight require grad on the eager path.

    Args:
        prepared: the operands from :func:`bceweights.loss.prepare`.
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"weighted_mean"``.
        gamma, alpha: focal loss parameters (``gamma=0, alpha=None``: plain BCE).
        backend: ``"auto"``, ``"torch"`` or ``"fused"`` (see :func:`resolve_backend`).
    """
    if gamma < 0:
        raise ValueError(f"gamma={gamma} is negative; expected gamma >= 0 (0 gives plain BCE, 2 is usual).")
    choice = resolve_backend(backend, prepared, reduction, gamma=gamma, alpha=alpha)
    x = prepared.input
    if choice == "torch" or x.numel() == 0:
        return eager_loss(prepared, reduction, gamma, alpha)
    need_grad = torch.is_grad_enabled() and x.requires_grad
    plan: Plan = make_plan(prepared, reduction, gamma, alpha, need_grad)
    operands = (x, prepared.target, prepared.weight, prepared.pos_weight, prepared.ignore)
    runner = _runner(x.device)
    try:
        if need_grad:
            return FusedBCE.apply(*operands, plan, runner)
        return finish(runner(plan, *operands), plan, x)[0]
    except FusedBuildFailed:
        if backend == "auto":
            return eager_loss(prepared, reduction, gamma, alpha)
        raise
