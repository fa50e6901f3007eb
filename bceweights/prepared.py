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

from dataclasses import dataclass
from typing import Literal, Union

import torch
from torch import Tensor

from bceweights import checks
from bceweights.messages import error_message
from bceweights.shapes import align, as_tensor_like, shape_str

Reduction = Literal["mean", "sum", "none", "weighted_mean"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none", "weighted_mean")
Operand = Union[Tensor, float, int, list, tuple, None]


@dataclass(frozen=True)
class Prepared:
    """Operands checked and viewed with the input's rank (``None`` where not given).

    Shapes: ``input`` and ``target`` ``(*)``, the same; ``weight``, ``pos_weight`` and ``ignore`` with
    ``input.ndim`` dimensions, each of size 1 or the input's (broadcastable without enlarging it).
    """

    input: Tensor
    target: Tensor
    weight: Tensor | None
    pos_weight: Tensor | None
    ignore: Tensor | None


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
    """``ValueError`` unless ``gamma >= 0`` and ``alpha`` is ``None`` or in ``[0, 1]``."""
    if gamma < 0:
        raise ValueError(f"gamma={gamma} is negative; expected gamma >= 0 (0 gives plain BCE, 2 is usual).")
    if alpha is not None and not 0 <= alpha <= 1:
        raise ValueError(
            f"alpha={alpha} is outside [0, 1]; expected the weight of positives, e.g. alpha=0.25, "
            "or alpha=None to leave it out."
        )


def check_label_smoothing(label_smoothing: float) -> None:
    """``ValueError`` unless ``label_smoothing`` lies in ``[0, 1]``."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(error_message(
            f"label_smoothing={label_smoothing} is outside [0, 1]; it is the share of each target moved to 0.5.",
            fixes="label_smoothing=0.1   # targets 0 -> 0.05, 1 -> 0.95", lead="Write instead, e.g.",
        ))


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
        fixes, lead="Write instead" if fixes else None,
    )


def prepare_ignore(ignore: object, input: Tensor) -> Tensor | None:
    """``ignore`` checked (a bool tensor) and viewed with ``input``'s rank; ``None`` stays ``None``.

    Raises:
        TypeError: not a bool tensor.
        WeightShapeError: does not line up with ``input`` (``channel_dim`` does not apply).
    """
    if ignore is None:
        return None
    if not isinstance(ignore, Tensor) or ignore.dtype != torch.bool:
        kind = ignore.dtype if isinstance(ignore, Tensor) else type(ignore).__name__
        raise TypeError(error_message(
            f"ignore must be a bool tensor (True = leave this element out), got {kind}.",
            fixes=["ignore=(labels == 255)", "ignore=mask.bool()"],
        ))
    return align("ignore", ignore.to(input.device), input.shape, channel_dim=None)


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
        target = torch.as_tensor(target, device=input.device)
    problem = target_problem(tuple(target.shape), tuple(input.shape))
    if problem is not None:
        raise ValueError(problem)
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    if checks.value_checks_enabled(check_values):
        checks.check_target_values(target, ignore)
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
    tensor = as_tensor_like(value, input, name)
    if checks.value_checks_enabled(check_values):
        checks.check_weight_values(name, tensor)
    return align(name, tensor, input.shape, channel_dim)


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
    floating; converted to ``input.dtype``); ``weight``, ``pos_weight`` and ``ignore`` broadcastable to
    ``input.shape`` under the rules of :func:`bceweights.shapes.line_up`. With ``label_smoothing=eps``
    the returned target is ``y (1 - eps) + eps / 2``.

    Raises:
        TypeError: non-tensor input, non-floating input, non-bool ignore.
        ValueError: target shape differs from input shape; with value checks on, NaN/negative
            weights or targets outside [0, 1].
        WeightShapeError: an operand that does not line up.
    """
    check_input(input)
    if not isinstance(target, Tensor):
        target = torch.as_tensor(target, device=input.device)
    problem = target_problem(tuple(target.shape), tuple(input.shape))
    if problem is not None:  # the target's shape first: the commonest mistake gets the first word
        raise ValueError(problem)
    aligned_ignore = prepare_ignore(ignore, input)
    target = prepare_target(target, input, aligned_ignore, check_values, label_smoothing)
    aligned_weight = prepare_operand("weight", weight, input, channel_dim, check_values)
    aligned_pos_weight = prepare_operand("pos_weight", pos_weight, input, channel_dim, check_values)
    return Prepared(input, target, aligned_weight, aligned_pos_weight, aligned_ignore)
