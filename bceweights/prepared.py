"""Every argument check of the loss, written once, and :class:`Prepared`: the operands checked and aligned.

:func:`prepare` is the first step of every loss call; it reads only shapes and dtypes, and with value
checks on (see :mod:`bceweights.checks`) also values. It is built from one function per operand, which
:func:`bceweights.explain` calls too, so that ``explain(...).ok`` is true exactly when the loss accepts:

* :func:`check_input`: ``input`` is a floating-point tensor;
* :func:`prepare_target`: ``target`` has exactly ``input.shape`` (:func:`target_problem`), values in [0, 1];
* :func:`prepare_ignore`: ``ignore`` is a bool tensor that lines up with ``input``;
* :func:`prepare_operand`: ``weight`` / ``pos_weight`` are numbers or tensors that line up, values >= 0.

The option checks live here too: :func:`check_reduction` (:data:`REDUCTIONS`), :func:`check_focal`
(``gamma``, ``alpha``) and :func:`check_label_smoothing`.

Imports: :mod:`bceweights.checks`, :mod:`bceweights.shapes`, :mod:`bceweights.messages`; never the loss,
the eager path or the fused package, which all import this module.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
import torch
from torch import Tensor
from torch.autograd import forward_ad

from bceweights import checks
from bceweights.messages import error_message
from bceweights.shapes import align, as_tensor_like, shape_str

Reduction = Literal["mean", "sum", "none", "weighted_mean"]
#: The values ``reduction=`` accepts.
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none", "weighted_mean")
Operand = Union[Tensor, np.ndarray, float, int, list, tuple, None]

AUTOCAST_TO_FLOAT32: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16)
"""Input dtypes that autocast computes this loss in float32, as it does PyTorch's
``binary_cross_entropy_with_logits`` (float64 stays float64, float32 is unchanged)."""


@dataclass(frozen=True)
class Prepared:
    """Operands checked and viewed with the input's rank (``None`` where not given).

    Shapes: ``input`` and ``target`` ``(*)``, the same; ``weight``, ``pos_weight`` and ``ignore`` with
    ``input.ndim`` dimensions, each of size 1 or the input's (broadcastable without enlarging it).
    ``input``, ``target``, ``weight`` and ``pos_weight`` share one floating dtype, the dtype the loss
    is computed in; ``result_dtype`` is the dtype of the loss returned (see :func:`loss_dtypes`),
    ``None`` for ``input.dtype``.
    """

    input: Tensor
    target: Tensor
    weight: Tensor | None
    pos_weight: Tensor | None
    ignore: Tensor | None
    result_dtype: torch.dtype | None = None


# --------------------------------------------------------------------------------------------------
# options


def check_reduction(reduction: str) -> None:
    """``ValueError`` unless ``reduction`` is one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise ValueError(error_message(
            f"reduction={reduction!r} is not one of {', '.join(map(repr, REDUCTIONS))}.", join="",
            fixes='reduction="mean"   # or "sum", "none", "weighted_mean"',
        ))


def check_focal(gamma: float, alpha: float | None) -> None:
    """``ValueError`` unless ``gamma`` is a finite number ``>= 0`` and ``alpha`` is ``None`` or in ``[0, 1]``.

    (NaN fails both tests: every comparison with it is False.)
    """
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0 <= gamma < float("inf"):
        raise ValueError(error_message(
            f"gamma={gamma!r} is not a finite number >= 0",
            "it is the focusing exponent: 0 gives plain BCE, 2 is usual.",
            "gamma=2.0", lead="Write instead, e.g.",
        ))
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1):
        raise ValueError(error_message(
            f"alpha={alpha!r} is outside [0, 1]", "it is the weight of the positives (1 - alpha for the negatives).",
            ["alpha=0.25   # torchvision's default", "alpha=None   # leave alpha_t out"],
        ))


def check_label_smoothing(label_smoothing: float) -> None:
    """``ValueError`` unless ``label_smoothing`` lies in ``[0, 1]``."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(error_message(
            f"label_smoothing={label_smoothing} is outside [0, 1]; it is the share of each target moved to 0.5.",
            fixes="label_smoothing=0.1   # targets 0 -> 0.05, 1 -> 0.95", lead="Write instead, e.g.",
        ))


# --------------------------------------------------------------------------------------------------
# the context a call runs in: autocast, torch.compile, torch.func


def _autocast_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """The dtype autocast hands PyTorch's loss for a floating operand of ``dtype``: float16 and
    bfloat16 become float32 under ``torch.autocast`` for ``device``; everything else is unchanged."""
    if dtype not in AUTOCAST_TO_FLOAT32:
        return dtype
    try:
        enabled = torch.is_autocast_enabled(device.type)
    except RuntimeError:  # a device type autocast does not know
        return dtype
    return torch.float32 if enabled else dtype


def loss_dtypes(input: Tensor, target: Tensor) -> tuple[torch.dtype, torch.dtype]:
    """``(compute dtype, result dtype)`` of a loss call, as ``F.binary_cross_entropy_with_logits`` has them.

    PyTorch's loss returns the dtype of a floating ``target`` whatever the input's (a bfloat16 input
    with float32 targets gives a float32 loss, a float32 input with float64 targets a float64 one;
    ``weight`` and ``pos_weight`` never change it), after autocast has turned float16/bfloat16
    operands into float32. Here the loss is computed in the wider of the input's and the target's
    dtypes (:func:`torch.promote_types`), so no operand is rounded to the narrower one first, and
    rounded once to the result dtype. A bool or integer target (which PyTorch refuses) is converted
    to the input's dtype, and the loss has the input's dtype.
    """
    input_dtype = _autocast_dtype(input.dtype, input.device)
    if not target.is_floating_point():
        return input_dtype, input_dtype
    target_dtype = _autocast_dtype(target.dtype, input.device)
    return torch.promote_types(input_dtype, target_dtype), target_dtype


def functorch_transforms_active() -> bool:
    """True inside a ``torch.func`` transform (``grad``, ``vjp``, ``jvp``, ``vmap``, ``jacrev``, ...).

    PyTorch has no public query for this; ``torch._C._are_functorch_transforms_active`` is what
    ``torch.autograd.Function`` itself consults, so it is used when present.
    """
    query = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(query()) if query is not None else False


def carries_tangent(tensor: Tensor | None) -> bool:
    """True when ``tensor`` is a forward-mode AD dual tensor at the current level (``fwAD.make_dual``)."""
    return tensor is not None and forward_ad.unpack_dual(tensor).tangent is not None


def needs_derivative(tensor: Tensor | None) -> bool:
    """True when a derivative may flow through ``tensor``: it requires grad, carries a forward-mode
    tangent, or a ``torch.func`` transform is active (which may differentiate any operand)."""
    if tensor is None:
        return False
    return tensor.requires_grad or carries_tangent(tensor) or functorch_transforms_active()


def _unwrapped(tensor: Tensor) -> Tensor:
    """The plain tensor under ``torch.func`` wrappers (vmap's batched tensors hold every sample)."""
    functorch = torch._C._functorch
    while functorch.is_functorch_wrapped_tensor(tensor):
        tensor = functorch.get_unwrapped(tensor)
    return tensor


def _problem_mask(name: str, values: Tensor, ignore: Tensor | None) -> Tensor:
    if name == "target":
        return checks.outside_unit_interval(values, ignore)
    return checks.nonfinite_mask(values) | checks.negative_mask(values)


def _traced_problem(name: str, count: str, where: str) -> str:
    """One line, plain characters: inductor writes a compiled assert's message into C++ source as is."""
    expected = "in [0, 1]" if name == "target" else "finite and >= 0"
    return (
        f"{name} holds {count} value(s) that are not {expected} (found by the value check {where}). "
        f"Run the call once outside it, or bw.explain(input, {name}=...), to see which; or pass "
        "check_values=False (or bw.set_value_checks(False)) once the data is known good."
    )


def check_values_of(name: str, values: Tensor, ignore: Tensor | None = None) -> None:
    """The value check of ``target`` (in [0, 1] outside ``ignore``) or of a weight (finite, >= 0).

    Eagerly: :func:`bceweights.checks.check_target_values` / :func:`~bceweights.checks.check_weight_values`.
    Under ``torch.compile`` (``fullgraph=True`` included) the check stays inside the graph, with no
    graph break and no host synchronisation: ``torch._assert_async`` raises ``RuntimeError`` with the
    message when the compiled code runs (on CUDA a device-side assert, which ends the CUDA context).
    Under a ``torch.func`` transform (``vmap`` cannot branch on a batched value) the check reads the
    unwrapped tensor, every sample at once. Tensors on the ``meta`` device hold no values: nothing is
    checked (shape questions, e.g. :func:`bceweights.explain` on a meta input, still get answers).
    """
    if values.is_meta or (ignore is not None and ignore.is_meta):
        return
    if torch.compiler.is_compiling():
        bad = _problem_mask(name, values, ignore)
        torch._assert_async(~bad.any(), _traced_problem(name, "some", "inside a torch.compile graph"))
        return
    if functorch_transforms_active():
        bad = _unwrapped(_problem_mask(name, values, ignore))
        if bool(bad.any()):
            raise ValueError(error_message(
                _traced_problem(name, str(int(bad.sum())), "under a torch.func transform"),
                fixes="check_values=False   # once the data is known good",
            ))
        return
    if name == "target":
        checks.check_target_values(values, ignore)
    else:
        checks.check_weight_values(name, values)


def from_numpy(value: object) -> object:
    """A numpy array or scalar as a tensor (numbers, lists and tensors unchanged)."""
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError(error_message(
                "got a numpy array of dtype object", "expected numbers.", "x=np.asarray(x, dtype=np.float32)"
            ))
        return torch.as_tensor(array)
    return value


# --------------------------------------------------------------------------------------------------
# operands


def check_input(input: object) -> None:
    """``TypeError`` unless ``input`` is a floating-point tensor (the logits)."""
    if not isinstance(input, Tensor) or not input.is_floating_point():
        kind = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise TypeError(error_message(
            f"input must be a floating-point tensor of logits, got {kind}.", fixes="input=input.float()"
        ))


def _target_fixes(target_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> list[str]:
    fixes = []
    t, i = target_shape, input_shape
    if len(t) + 1 == len(i) and len(i) >= 2 and i[1] == 1 and t == i[:1] + i[2:]:
        fixes.append(f"target=target.unsqueeze(1)   # {shape_str(t)} -> {shape_str(i)}")
    if len(t) == len(i) + 1 and len(t) >= 2 and t[1] == 1 and i == t[:1] + t[2:]:
        fixes.append("input=input.unsqueeze(1)   # or target=target.squeeze(1)")
    if len(t) + 1 == len(i) and len(i) >= 2 and i[1] > 1 and t == i[:1] + i[2:]:
        fixes.append(
            f"target=F.one_hot(target.long(), {i[1]}).movedim(-1, 1).float()   "
            "# if target holds class indices (or use F.cross_entropy)"
        )
    if not fixes and torch.Size(t).numel() == torch.Size(i).numel():
        fixes.append("target=target.view_as(input)   # only if the elements are already in the same order")
    if not fixes:
        fixes.append(f"target=<one label per logit, shape {shape_str(i)}>   # check which tensor the model's "
                     "output and the labels really are")
    return fixes


def target_problem(target_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> str | None:
    """The loss's target rule: ``target.shape == input.shape`` exactly; the message when it is broken.

    Unlike ``weight``, the target does not broadcast (PyTorch refuses too): ``(1, C, H, W)``,
    ``(N, 1, H, W)`` and ``()`` are all refused for an ``(N, C, H, W)`` input.
    """
    target_shape, input_shape = tuple(target_shape), tuple(input_shape)
    if target_shape == input_shape:
        return None
    fixes = _target_fixes(target_shape, input_shape)
    return error_message(
        f"target has shape {shape_str(target_shape)} but input has shape {shape_str(input_shape)}",
        "binary cross-entropy is elementwise, so they must be equal (PyTorch refuses too).",
        fixes, lead="Write instead",
    )


def prepare_ignore(ignore: object, input: Tensor) -> Tensor | None:
    """``ignore`` checked (a bool tensor) and viewed with ``input``'s rank; ``None`` stays ``None``.

    Raises:
        TypeError: not a bool tensor.
        WeightShapeError: does not line up with ``input`` (``channel_dim`` does not apply).
    """
    if ignore is None:
        return None
    ignore = from_numpy(ignore)
    if not isinstance(ignore, Tensor) or ignore.dtype != torch.bool:
        kind = ignore.dtype if isinstance(ignore, Tensor) else type(ignore).__name__
        raise TypeError(error_message(
            f"ignore must be a bool tensor (True = leave this element out), got {kind}.",
            fixes=["ignore=(labels == 255)", "ignore=mask.bool()"],
        ))
    return _align(input, "ignore", ignore.to(input.device), None)


def prepare_target(
    target: object,
    input: Tensor,
    ignore: Tensor | None = None,
    check_values: bool | None = None,
    label_smoothing: float = 0.0,
) -> Tensor:
    """``target`` as a tensor of ``input``'s shape and dtype, checked, with label smoothing applied.

    ``ignore`` is the aligned ignore mask (its elements may hold anything, e.g. 255). With
    ``label_smoothing=eps`` the result is ``y (1 - eps) + eps / 2``.

    Raises:
        ValueError: the shape differs from ``input``'s (:func:`target_problem`); with value checks on,
            values outside [0, 1]; ``label_smoothing`` outside [0, 1].
    """
    if not isinstance(target, Tensor):
        target = torch.as_tensor(from_numpy(target), device=input.device)
    problem = target_problem(tuple(target.shape), tuple(input.shape))
    if problem is not None:
        raise ValueError(problem)
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    if checks.value_checks_enabled(check_values):
        check_values_of("target", target, ignore)
    check_label_smoothing(label_smoothing)
    if label_smoothing:
        target = target * (1 - label_smoothing) + 0.5 * label_smoothing
    return target


def prepare_operand(
    name: str,
    value: Operand,
    input: Tensor,
    channel_dim: int | None = None,
    check_values: bool | None = None,
) -> Tensor | None:
    """``weight`` or ``pos_weight`` as a tensor in ``input``'s dtype, checked, viewed with its rank.

    Raises:
        TypeError: not a number, sequence or real tensor.
        ValueError: with value checks on, NaN, infinite or negative values.
        WeightShapeError: does not line up (see :func:`bceweights.shapes.line_up`).
    """
    if value is None:
        return None
    value = from_numpy(value)
    tensor = as_tensor_like(value, input, name)
    if checks.value_checks_enabled(check_values):
        check_cast_range(name, value, tensor)
        check_values_of(name, tensor)
    return _align(input, name, tensor, channel_dim)


def check_cast_range(name: str, value: object, tensor: Tensor) -> None:
    """``ValueError`` when converting ``value`` to ``tensor``'s dtype turned finite values into ``inf``.

    A float32 weight of ``1e5`` is finite, but float16 (largest number 65504) holds it as ``inf``;
    the message names the dtype rather than a NaN or a division by zero. Only eagerly (not under
    ``torch.compile`` or a ``torch.func`` transform, where the value check's assert still catches
    the ``inf``), and only for tensors that hold values (not ``meta``).
    """
    if tensor.dtype == torch.float64 or tensor.is_meta or tensor.numel() == 0:
        return
    if torch.compiler.is_compiling() or functorch_transforms_active():
        return
    if isinstance(value, Tensor):
        if value.is_meta or value.dtype == tensor.dtype:
            return
        original = value.detach().to(device=tensor.device, dtype=torch.float64)
    else:
        original = torch.as_tensor(value, dtype=torch.float64, device=tensor.device)
    overflow = torch.isfinite(original) & ~torch.isfinite(tensor.detach())
    if not bool(overflow.any()):
        return
    largest = torch.finfo(tensor.dtype).max
    example = float(original[overflow.expand_as(original)][0])
    raise ValueError(error_message(
        f"{name} holds {int(overflow.sum())} finite value(s) too large for {str(tensor.dtype).replace('torch.', '')} "
        f"(for example {example:.6g}; the largest is {largest:.6g}), the dtype the loss is computed in, "
        "so they would become inf",
        fixes=[
            f"{name}={name} / {name}.max()   # rescale: the loss is proportional to the weight",
            "input=input.float()   # compute the loss in float32 (or run it under torch.autocast)",
        ],
    ))


def _align(input: Tensor, name: str, operand: Tensor, channel_dim: int | None) -> Tensor:
    """:func:`bceweights.shapes.align`, plus the 0-d input: a one-element operand is viewed as 0-d.

    PyTorch's own kernel refuses a ``(1,)`` weight or pos_weight with a 0-d input ("output with shape
    [] doesn't match the broadcast shape [1]"), yet that is what ``model(x).squeeze()`` at batch size
    1 meets with the ``(1,)`` pos_weight of :func:`bceweights.pos_weight_from_counts`. Here the loss of
    a 0-d input is 0-d, whatever the one-element operand's shape, with the value PyTorch gives for
    the same call on ``input.reshape(1)``.
    """
    if input.ndim == 0 and operand.numel() == 1:
        return operand.reshape(())
    return align(name, operand, input.shape, channel_dim)


def prepare(
    input: Tensor,
    target: Tensor,
    weight: Operand = None,
    pos_weight: Operand = None,
    ignore: Tensor | None = None,
    channel_dim: int | None = None,
    check_values: bool | None = None,
    label_smoothing: float = 0.0,
) -> Prepared:
    """Check every operand against ``input`` and view it with ``input``'s rank.

    Shapes: ``input`` any ``(*)`` floating tensor; ``target`` exactly ``input.shape`` (bool, integer or
    floating); ``weight``, ``pos_weight`` and ``ignore`` broadcastable to ``input.shape`` under the
    rules of :func:`bceweights.shapes.line_up`. With ``label_smoothing=eps`` the returned target is
    ``y (1 - eps) + eps / 2``. Numpy arrays are accepted wherever lists are.

    Dtypes (:func:`loss_dtypes`): the input is cast (differentiably) to the wider of its own and a
    floating target's dtype, and every other operand to that dtype; ``result_dtype`` is the target's
    dtype, as PyTorch returns it (the input's for bool or integer targets). Under ``torch.autocast``
    float16/bfloat16 operands count as float32, as autocast does for PyTorch's loss.

    Raises:
        TypeError: non-tensor input, non-floating input, non-bool ignore.
        ValueError: target shape differs from input shape; with value checks on, NaN/negative
            weights or targets outside [0, 1].
        WeightShapeError: an operand that does not line up.
    """
    check_input(input)
    if not isinstance(target, Tensor):
        target = torch.as_tensor(from_numpy(target), device=input.device)
    problem = target_problem(tuple(target.shape), tuple(input.shape))
    if problem is not None:  # the target's shape first: the commonest mistake gets the first word
        raise ValueError(problem)
    compute_dtype, result_dtype = loss_dtypes(input, target)
    if input.dtype != compute_dtype:
        input = input.to(compute_dtype)  # differentiable: the gradient comes back in the input's dtype
    aligned_ignore = prepare_ignore(ignore, input)
    target = prepare_target(target, input, aligned_ignore, check_values, label_smoothing)
    aligned_weight = prepare_operand("weight", weight, input, channel_dim, check_values)
    aligned_pos_weight = prepare_operand("pos_weight", pos_weight, input, channel_dim, check_values)
    return Prepared(input, target, aligned_weight, aligned_pos_weight, aligned_ignore,
                    None if result_dtype == compute_dtype else result_dtype)
