"""Which path computes a loss call: the backend policy, the dispatch and the fallback.

Backends: ``"torch"`` (the eager formula, :mod:`bceweights.eager`), ``"fused"`` (one pass,
:mod:`bceweights.fused`; an error saying why when it cannot run) and ``"auto"`` (fused when it can run
and pays off, else torch, silently). :func:`compute_loss` is what :mod:`bceweights.loss` calls after
:func:`bceweights.prepared.prepare`::

    from bceweights.backend import compute_loss
    from bceweights.prepared import prepare

    prepared = prepare(logits, target, weight=mask.unsqueeze(1), pos_weight=[6., 30., 1.], channel_dim=1)
    loss = compute_loss(prepared, "mean", backend="fused")      # (N, C, H, W) -> ()

Imports: :mod:`bceweights.prepared`, :mod:`bceweights.eager`, :mod:`bceweights.fused`; only
:mod:`bceweights.loss` imports this module.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import torch
from torch import Tensor

from bceweights import fused
from bceweights.eager import eager_loss
from bceweights.messages import error_message
from bceweights.prepared import Prepared, check_focal, check_reduction

__all__ = [
    "AUTO_AFTER_CALLS",
    "AUTO_MIN_NUMEL",
    "BACKENDS",
    "check_backend",
    "compute_loss",
    "resolve_backend",
]

#: The values ``backend=`` accepts.
BACKENDS: tuple[str, ...] = ("auto", "torch", "fused")

AUTO_MIN_NUMEL: int = 1 << 16
"""``"auto"`` keeps the eager path below this many elements, where the fused call's fixed cost
(guards, autograd node, thread start-up) is not repaid; measured in ``benchmarks/RESULTS.md``."""

AUTO_AFTER_CALLS: int = 3
"""``"auto"`` switches a shape signature to the fused path on its third call: compiling costs
seconds once, which a training loop repays and a one-off call in a notebook does not."""

_calls_seen: OrderedDict[Hashable, int] = OrderedDict()
_MAX_SEEN = 256

_failed: OrderedDict[Hashable, str] = OrderedDict()
"""Signatures whose fused build failed under ``"auto"`` (with the reason): ``"auto"`` keeps them on
the eager path. Only that signature: a failure never switches the fused path off for other calls, and
``backend="fused"`` always tries again (and raises the fresh error)."""


def _signature(prepared: Prepared, options: tuple) -> Hashable:
    """What one compiled fused function is specialised on (apart from grad mode and threads)."""
    tensors = (prepared.input, prepared.target, prepared.weight, prepared.pos_weight, prepared.ignore)
    return (options, prepared.input.device, tuple(
        None if t is None else (tuple(t.shape), t.stride(), t.dtype) for t in tensors
    ))


def _count_call(key: Hashable) -> int:
    count = _calls_seen.pop(key, 0) + 1
    _calls_seen[key] = count
    while len(_calls_seen) > _MAX_SEEN:
        _calls_seen.popitem(last=False)
    return count


def check_backend(backend: object) -> None:
    """``ValueError`` unless ``backend`` is one of :data:`BACKENDS`."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(error_message(
            f"backend={backend!r} is not one of {', '.join(map(repr, BACKENDS))}.",
            fixes='backend="auto"   # fused when it pays off, else the eager torch path',
        ))


def resolve_backend(
    backend: str,
    prepared: Prepared,
    reduction: str = "mean",
    *,
    gamma: float = 0.0,
    alpha: float | None = None,
) -> str:
    """Which path computes this call: ``"torch"`` or ``"fused"``.

    ``"torch"`` is taken as asked. Inside a ``torch.compile`` graph every backend answers ``"torch"``:
    the compiler fuses the eager formula into its own kernels (the fused pass is itself a compiled
    graph, which cannot be traced into another), so ``backend="fused"`` and ``"auto"`` compile with
    ``fullgraph=True`` and dynamic shapes like ``"torch"``. Under forward-mode AD or a ``torch.func``
    transform every backend answers ``"torch"`` (:func:`bceweights.fused.autograd_mode_reason`: the fused pass carries only
    first-order reverse-mode gradients), so that every way PyTorch differentiates works, with the same
    values, whichever backend is named. Otherwise ``"fused"`` is taken as asked (raising when it cannot
    run), and ``"auto"`` answers ``"fused"`` when a fused path can run, the input has at least
    :data:`AUTO_MIN_NUMEL` elements, this shape signature is on its :data:`AUTO_AFTER_CALLS`-th call or
    later (each ``"auto"`` call counts; the signature is the operands' shapes, strides, dtypes and
    device with ``reduction``, ``gamma`` and ``alpha``) and its fused build has not failed before;
    otherwise ``"torch"``, silently.

    Raises:
        ValueError: an unknown backend name, or ``backend="fused"`` where no fused path can run
            (missing compiler or Triton, unsupported device or dtype, ``weight`` requiring grad, ...).
    """
    check_backend(backend)
    if backend == "torch" or torch.compiler.is_compiling():
        return "torch"  # inside a torch.compile graph the compiler fuses the eager formula itself
    if fused.autograd_mode_reason(prepared) is not None:
        return "torch"
    if backend == "auto" and prepared.input.numel() < AUTO_MIN_NUMEL:
        return "torch"  # before probing the compiler: small calls never pay for its imports
    reason = fused.unavailable_reason(prepared)
    if backend == "fused":
        if reason is not None:
            raise ValueError(error_message(
                f'backend="fused" cannot run here: {reason}.',
                fixes='backend="auto"   # uses the fused path only where it can run',
            ))
        return "fused"
    if reason is not None:
        return "torch"
    key = _signature(prepared, (reduction, float(gamma), alpha))
    if key in _failed:
        return "torch"
    calls = _count_call(key)
    return "fused" if calls >= AUTO_AFTER_CALLS else "torch"


def compute_loss(
    prepared: Prepared,
    reduction: str,
    *,
    gamma: float = 0.0,
    alpha: float | None = None,
    backend: str = "auto",
) -> Tensor:
    """The weighted (focal) BCE of ``prepared`` under ``reduction``, by the backend ``backend`` picks.

    Returns what :func:`bceweights.eager.eager_loss` returns (a scalar, or ``(*)`` for ``"none"``, in
    the dtype of ``prepared.input``, the dtype the loss is computed in; :mod:`bceweights.loss` rounds
    it to ``prepared.result_dtype`` last, after any all-reduced scaling, so that no gradient is
    rounded on its way back). The fused path (:func:`bceweights.fused.run`) differentiates the input only:
    :func:`resolve_backend` keeps calls whose target, weight or pos_weight require grad on the eager
    path. Under ``"auto"`` a fused build that fails falls back to the eager path (for that signature
    from then on; nothing else is switched off).

    Args:
        prepared: the operands from :func:`bceweights.prepared.prepare`.
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"weighted_mean"``.
        gamma, alpha: focal loss parameters (``gamma=0, alpha=None``: plain BCE).
        backend: ``"auto"``, ``"torch"`` or ``"fused"`` (see :func:`resolve_backend`).

    Raises:
        ValueError: an unknown reduction or backend, bad focal options, ``"fused"`` where it cannot run.
    """
    check_reduction(reduction)
    check_focal(gamma, alpha)
    choice = resolve_backend(backend, prepared, reduction, gamma=gamma, alpha=alpha)
    if choice == "torch" or prepared.input.numel() == 0:
        return eager_loss(prepared, reduction, gamma, alpha)
    try:
        return fused.run(prepared, reduction, gamma, alpha)
    except fused.FusedBuildFailed as error:
        if backend != "auto":
            raise
        _failed[_signature(prepared, (reduction, float(gamma), alpha))] = str(error)
        while len(_failed) > _MAX_SEEN:
            _failed.popitem(last=False)
        return eager_loss(prepared, reduction, gamma, alpha)
