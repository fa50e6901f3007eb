"""The autograd wrapper around a fused pass: forward saves the gradient, backward only scales it.

The fused pass already computed ``g = d (sum of weighted losses) / d input`` per element (divided by
``numel`` in the pass for a mean over all elements, whose denominator is known in advance), so

    reduction "none":                                 d input = g * grad_output      (elementwise)
    reduction "sum", or a mean over all elements:     d input = g * grad_output
    a mean whose denominator the pass summed:         d input = g * (grad_output / denominator)

one multiply in backward, and none at all in the common case ``loss.backward()`` on CPU: when
``grad_output`` is 1 and autograd will not run this graph again (no ``retain_graph``), the saved
gradient is handed over as it is (autograd then stores it as ``.grad`` without a copy). A second-order
backward (``create_graph=True``, e.g. MAML or a gradient penalty) differentiates the eager formula
instead, so higher derivatives stay exact. Batched gradients (``is_grads_batched=True``,
``jacobian(..., vectorize=True)``) run this backward under ``vmap``: the multiplies batch, the shortcut
is skipped. Forward-mode AD and ``torch.func`` transforms never reach this class
(:func:`bceweights.fused.autograd_mode_reason`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from bceweights.eager import eager_loss
from bceweights.fused.plan import PassOutputs, Plan
from bceweights.prepared import Prepared, functorch_transforms_active

Runner = Callable[[Plan, Tensor, Tensor, "Tensor | None", "Tensor | None", "Tensor | None"], PassOutputs]


def denominator(outputs: PassOutputs, plan: Plan, numel: int) -> Tensor | float:
    """What the summed loss is divided by: 1, ``numel``, or the kept count/weight (1 where it is 0).

    Only the last (a tensor) still has to divide the gradient; ``numel`` is in ``plan.grad_scale``.
    """
    if plan.reduction in ("sum", "none"):
        return 1.0
    if outputs.kept is None:
        return float(numel)
    return torch.where(outputs.kept > 0, outputs.kept, torch.ones_like(outputs.kept))


def finish(outputs: PassOutputs, plan: Plan, input: Tensor) -> tuple[Tensor, Tensor | float]:
    """The loss as the eager path returns it (input's dtype), and the denominator used."""
    divisor = denominator(outputs, plan, input.numel())
    if not plan.reduce:
        return outputs.values, divisor
    return (outputs.values / divisor).to(input.dtype), divisor


class FusedBCE(torch.autograd.Function):
    """``FusedBCE.apply(input, target, weight, pos_weight, ignore, plan, runner) -> loss``.

    Differentiable in ``input`` only (``target``, ``weight`` and ``pos_weight`` must not require grad;
    :func:`bceweights.backend.resolve_backend` sends such calls to the eager path).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        input: Tensor,
        target: Tensor,
        weight: Tensor | None,
        pos_weight: Tensor | None,
        ignore: Tensor | None,
        plan: Plan,
        runner: Runner,
    ) -> Tensor:
        outputs = runner(plan, input, target, weight, pos_weight, ignore)
        loss, divisor = finish(outputs, plan, input)
        ctx.save_for_backward(outputs.grad, input, target, weight, pos_weight, ignore)
        ctx.plan = plan
        ctx.divisor = divisor
        return loss

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_output: Tensor):  # type: ignore[override]
        grad, input, target, weight, pos_weight, ignore = ctx.saved_tensors
        plan: Plan = ctx.plan
        nothing = (None,) * 6
        if torch.is_grad_enabled():  # create_graph=True: a differentiable gradient
            with torch.enable_grad():
                loss = eager_loss(Prepared(input, target, weight, pos_weight, ignore), plan.reduction,
                                  plan.gamma, plan.alpha)
                (grad_input,) = torch.autograd.grad(loss, input, grad_output, create_graph=True)
            return (grad_input, *nothing)
        if not plan.reduce:
            return (grad * grad_output, *nothing)
        if isinstance(ctx.divisor, Tensor):
            return (grad * (grad_output.to(ctx.divisor.dtype) / ctx.divisor), *nothing)
        if _is_one_on_cpu(grad_output) and not _graph_is_kept():
            return (grad, *nothing)  # already final; nothing else will read it
        return (grad * grad_output.to(torch.float64 if grad.dtype == torch.float64 else torch.float32), *nothing)


def _is_one_on_cpu(grad_output: Tensor) -> bool:
    """True for a CPU scalar equal to 1 (reading a CUDA scalar would wait for the device).

    False for a batch of cotangents: under ``is_grads_batched=True`` (the backward runs under
    ``torch._vmap_internals.vmap``) or a ``torch.func`` transform, ``grad_output`` looks like one
    scalar but holds a batch, which has no single truth value ("Batching rule not implemented for
    aten::is_nonzero"); such a backward takes the multiply instead.
    """
    if grad_output.device.type != "cpu" or grad_output.numel() != 1 or functorch_transforms_active():
        return False
    try:
        return bool(grad_output == 1)
    except RuntimeError:  # a legacy-vmap batched tensor (is_grads_batched=True)
        return False


def _graph_is_kept() -> bool:
    """Whether the running backward keeps the graph (``retain_graph=True``); True when unknown."""
    query = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    try:
        return True if query is None else bool(query())
    except RuntimeError:  # not inside a backward run by the engine
        return True
