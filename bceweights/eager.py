"""The eager (``backend="torch"``) loss: per-element terms, focal factors, weighting and reduction.

For logits ``x``, targets ``y``, ``pos_weight`` ``p`` and ``weight`` ``w`` (see :mod:`bceweights.loss`):

    l_bce = (1 - y) x - (1 + (p - 1) y) log sigmoid(x)                 (:func:`bce_terms`)
    l     = alpha_t (1 - q_t) ** gamma * l_bce                         (:func:`per_element_loss`)
    loss  = reduce(w * l, with ignored elements 0)                     (:func:`weight_and_reduce`)

in differentiable PyTorch operations (or PyTorch's own kernel where the call means exactly what
PyTorch's does). The fused package computes the same numbers in one pass; its second-order backward
differentiates :func:`eager_loss`.

Imports: :mod:`bceweights.prepared` (for :class:`~bceweights.prepared.Prepared`) and torch only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from bceweights.prepared import Prepared, needs_derivative


class _StableBCETerms(torch.autograd.Function):
    """``l = -(1 - y) log sigmoid(-x) - p y log sigmoid(x)`` with each partial derivative in its stable form.

    Autograd would differentiate any one way of writing ``l`` into a form that cancels somewhere:
    ``(1 - y) x - (1 + (p - 1) y) log sigmoid(x)`` gives ``dl/dx = (1 - y) - (...) sigmoid(-x)``, which
    is 0 in float32 at ``x = -30, y = 0`` (true value 9.36e-14) and 58 % high in bfloat16 at ``x = -6``;
    the form above gives a target derivative ``log sigmoid(-x) - p log sigmoid(x)`` that cancels near
    ``x = 0``. Here each partial is written on its own (``sigma`` is ``torch.sigmoid``, exact in both
    tails):

        dl/dx = (1 - y) sigma(x) - p y sigma(-x)
        dl/dy = -x - (p - 1) log sigmoid(x)                 (PyTorch's own target derivative)
        dl/dp = -y log sigmoid(x)

    in differentiable operations, so double backward (``create_graph=True``), forward-mode AD
    (``_StableBCETermsWithJvp``) and ``torch.func`` transforms (``generate_vmap_rule``) all work. Shapes: ``x``, ``y``
    ``(*)``; ``p`` broadcastable to them with the same rank, or None (``p = 1``).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, target: Tensor, pos_weight: Tensor | None) -> Tensor:  # type: ignore[override]
        positive = target if pos_weight is None else pos_weight * target
        return -(1 - target) * F.logsigmoid(-input) - positive * F.logsigmoid(input)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]  # noqa: ANN001
        input, target, pos_weight = inputs
        ctx.save_for_backward(input, target, pos_weight)
        if not torch.compiler.is_compiling():
            ctx.save_for_forward(input, target, pos_weight)

    @staticmethod
    def partials(input: Tensor, target: Tensor, pos_weight: Tensor | None, which: tuple[bool, ...]):
        """``(dl/dx, dl/dy, dl/dp)``, each None where ``which`` says it is not needed."""
        x, y, p = input, target, pos_weight
        d_input = d_target = d_pos_weight = None
        if which[0]:
            positive = y if p is None else p * y
            d_input = (1 - y) * torch.sigmoid(x) - positive * torch.sigmoid(-x)
        if which[1]:
            d_target = -x if p is None else -x - (p - 1) * F.logsigmoid(x)
        if which[2] and p is not None:
            d_pos_weight = -y * F.logsigmoid(x)
        return d_input, d_target, d_pos_weight

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]  # noqa: ANN001, ANN205
        input, target, pos_weight = ctx.saved_tensors
        d_input, d_target, d_pos_weight = _StableBCETerms.partials(input, target, pos_weight, ctx.needs_input_grad)
        grad_input = None if d_input is None else grad * d_input
        grad_target = None if d_target is None else grad * d_target
        grad_pos_weight = None
        if d_pos_weight is not None:
            grad_pos_weight = (grad * d_pos_weight).sum_to_size(pos_weight.shape)
        return grad_input, grad_target, grad_pos_weight



class _StableBCETermsWithJvp(_StableBCETerms):
    """``_StableBCETerms`` with forward-mode AD; used outside ``torch.compile``, whose Dynamo
    cannot trace a custom ``jvp`` (inside a graph the base class runs, reverse mode only)."""

    @staticmethod
    def jvp(ctx, input_tangent, target_tangent, pos_weight_tangent):  # type: ignore[override]  # noqa: ANN001, ANN205
        input, target, pos_weight = ctx.saved_tensors
        which = (input_tangent is not None, target_tangent is not None, pos_weight_tangent is not None)
        partials = _StableBCETerms.partials(input, target, pos_weight, which)
        tangent = torch.zeros_like(input)
        for partial, direction in zip(partials, (input_tangent, target_tangent, pos_weight_tangent)):
            if partial is not None and direction is not None:
                tangent = tangent + partial * direction
        return tangent


def bce_terms(input: Tensor, target: Tensor, pos_weight: Tensor | None = None) -> Tensor:
    """Per-element loss before ``weight``: ``(1 - y) x - (1 + (p - 1) y) log sigmoid(x)``.

    Shapes: ``input`` and ``target`` ``(*)``; ``pos_weight`` broadcastable to them. Differentiable in
    every argument: when no derivative can flow through ``target`` or ``pos_weight`` this is
    PyTorch's own kernel (one pass, same values); otherwise, since PyTorch's kernel refuses gradients
    for ``pos_weight`` and ``weight`` and silently drops their forward-mode tangents
    (:func:`bceweights.prepared.needs_derivative`), ``_StableBCETerms``: the same loss, every
    partial derivative in a form without cancellation (checked against float64).
    """
    if not (target.requires_grad or needs_derivative(target) or needs_derivative(pos_weight)):
        return F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight, reduction="none")
    if torch.compiler.is_compiling():
        return _StableBCETerms.apply(input, target, pos_weight)
    return _StableBCETermsWithJvp.apply(input, target, pos_weight)


def focal_modulation(input: Tensor, target: Tensor, gamma: float) -> Tensor:
    """``(1 - q_t) ** gamma`` with ``q_t = q y + (1 - q)(1 - y)``, ``q = sigmoid(x)``; shape ``(*)``.

    ``m = 1 - q_t`` is formed as ``q (1 - y) + sigmoid(-x) y``, without the cancellation of ``1 - q_t``
    (which is 0 for ``|x|`` past 17 in float32, 8 in bfloat16). The power's gradient stays finite for
    every ``gamma >= 0`` at every logit: for ``0 < gamma < 1`` the derivative of ``m ** gamma`` is
    infinite at ``m = 0``, so below float's smallest normal number (``m < finfo.tiny``, where the
    loss itself is below 1e-38) the value is kept and its gradient taken as 0, the limit of the full
    product ``gamma m^gamma (dm/dx / m) l_bce``.
    """
    m = torch.sigmoid(input) * (1 - target) + torch.sigmoid(-input) * target
    if gamma >= 1:
        return m**gamma
    normal = m >= torch.finfo(m.dtype).tiny
    safe = torch.where(normal, m, torch.ones_like(m))  # the unselected branch must not see 0 ** (gamma - 1)
    return torch.where(normal, safe**gamma, m.detach() ** gamma)


def per_element_loss(prepared: Prepared, gamma: float = 0.0, alpha: float | None = None) -> Tensor:
    """Per-element (focal) loss before ``weight`` and ``ignore``, shaped like ``prepared.input``.

    ``gamma=0, alpha=None`` gives :func:`bce_terms`; otherwise the factors of
    :func:`focal_bce_with_logits`: ``alpha_t (1 - q_t) ** gamma`` (:func:`focal_modulation`).

    Ignored elements (``prepared.ignore``) are given logit 0 and target 0 before anything is computed,
    so that a NaN or infinite logit or target there (NaN as "missing label") cannot reach the loss or
    the gradient (``0 * NaN`` is NaN; masking afterwards would be too late for the backward).
    """
    x, y, pos_weight = prepared.input, prepared.target, prepared.pos_weight
    if prepared.ignore is not None:
        x = torch.where(prepared.ignore, 0.0, x)
        y = torch.where(prepared.ignore, 0.0, y)
    per_element = bce_terms(x, y, pos_weight)
    if gamma != 0:
        per_element = per_element * focal_modulation(x, y, gamma)
    if alpha is not None:
        per_element = per_element * (alpha * y + (1 - alpha) * (1 - y))
    return per_element


def eager_loss(prepared: Prepared, reduction: str, gamma: float = 0.0, alpha: float | None = None) -> Tensor:
    """The eager (``backend="torch"``) loss of ``prepared``: a scalar, or ``(*)`` for ``"none"``.

    Where the call means exactly what PyTorch's does (no focal factors, no ``ignore``, a PyTorch
    reduction, nothing but the input needing a gradient) it is PyTorch's own call; otherwise
    :func:`per_element_loss` then :func:`weight_and_reduce`.
    """
    pytorch_call = (
        gamma == 0
        and alpha is None
        and prepared.ignore is None
        and reduction in ("mean", "sum", "none")
        and not prepared.target.requires_grad
        and not any(needs_derivative(t) for t in (prepared.weight, prepared.pos_weight))
    )
    if pytorch_call:
        return F.binary_cross_entropy_with_logits(
            prepared.input, prepared.target, prepared.weight, pos_weight=prepared.pos_weight, reduction=reduction
        )
    return weight_and_reduce(per_element_loss(prepared, gamma, alpha), prepared, reduction)


def _broadcast_sum(values: Tensor, full_numel: int) -> Tensor:
    """Sum of ``values`` broadcast to a tensor of ``full_numel`` elements, without materialising it.

    Summed in at least float32: a float16 count overflows past 65504 elements.
    """
    wide = values if values.dtype == torch.float64 else values.float()
    if values.numel() == 0:
        return wide.sum()
    return wide.sum() * (full_numel // values.numel())


def weight_and_reduce(per_element: Tensor, prepared: Prepared, reduction: str) -> Tensor:
    """Apply ``weight`` and ``ignore`` to per-element losses ``(*)`` and reduce them.

    ``mean``: sum / number of non-ignored elements; ``weighted_mean``: sum / sum of the weight over
    non-ignored elements (1 per element without ``weight``); a non-empty all-ignored or
    all-zero-weight input gives 0 (and zero gradients) rather than NaN. An input with no elements
    gives NaN under both means, with or without ``ignore``: PyTorch's mean of nothing.
    """
    loss = per_element
    weight, ignore = prepared.weight, prepared.ignore
    if weight is not None and ignore is not None:
        weight = torch.where(ignore, 0.0, weight)  # a NaN weight on an ignored element counts for nothing
    if weight is not None:
        loss = loss * weight
    if ignore is not None:
        loss = loss.masked_fill(ignore, 0)
    if reduction == "none":
        return loss
    if reduction in ("mean", "weighted_mean") and loss.numel() == 0:
        return loss.mean()  # NaN, as PyTorch's mean of an empty input, whatever ignore and weight hold
    if reduction == "mean" and ignore is None:
        return loss.mean()  # sum / numel, exactly as PyTorch
    if reduction == "sum":
        return loss.sum()
    # float16 sums overflow past 65504: accumulate numerator and denominator in float32 at least
    total = loss.sum(dtype=torch.float64 if loss.dtype == torch.float64 else torch.float32)
    denominator = reduction_denominator(prepared, reduction)
    denominator = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return (total / denominator).to(loss.dtype)


def reduction_denominator(prepared: Prepared, reduction: str) -> Tensor:
    """What ``"mean"`` or ``"weighted_mean"`` divides the sum by: a scalar, float32 at least.

    ``"mean"``: the number of non-ignored elements of the input (``numel`` without ``ignore``);
    ``"weighted_mean"``: the sum of ``weight`` broadcast to the input over non-ignored elements (the
    kept count without ``weight``). Differentiable in ``weight``; 0 when nothing is kept. This is the
    count that ``process_group=`` all-reduces (:mod:`bceweights.distributed`).
    """
    x, weight, ignore = prepared.input, prepared.weight, prepared.ignore
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    numel = x.numel()
    if reduction == "mean" or weight is None:
        if ignore is not None:
            return _broadcast_sum((~ignore).to(dtype), numel).to(dtype)
        return torch.tensor(float(numel), dtype=dtype, device=x.device)
    # torch.where, not a product: a NaN weight on an ignored element counts for nothing
    kept_weight = weight if ignore is None else torch.where(ignore, 0.0, weight)
    return _broadcast_sum(kept_weight, numel).to(dtype)
