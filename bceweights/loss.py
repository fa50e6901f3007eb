"""Weighted binary cross-entropy on logits: the functional form, the focal variant and the modules.

For logits ``x``, targets ``y`` in ``[0, 1]``, ``weight`` ``w`` and ``pos_weight`` ``p``, every element's loss is

    l = -w * [ p * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)) ]
      = w * [ (1 - y) * x - (1 + (p - 1) * y) * log(sigmoid(x)) ]        (the stable form computed here)

``w`` scales both terms; ``p`` scales only the positive term. Its derivative with respect to the logit is

    dl/dx = w * [ (1 - y) * sigmoid(x) - p * y * (1 - sigmoid(x)) ]

Reductions:

* ``"mean"`` divides the sum by the number of (non-ignored) elements, as PyTorch does. It does *not*
  divide by the sum of the weights: doubling every weight doubles the loss and the gradient, so weights
  change the effective learning rate. (``nn.CrossEntropyLoss`` with class weights divides by the sum of
  the weights of the targets instead, which is why its mean is unchanged by scaling all weights.)
* ``"weighted_mean"`` divides by the sum of ``weight`` broadcast to the input's shape (non-ignored
  elements only): a true weighted average, invariant to rescaling ``weight``.
* ``"sum"``, and ``"none"`` (the per-element losses, shaped like the input; ignored elements are 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bceweights import checks
from bceweights.fused import fused_loss
from bceweights.shapes import align, as_tensor_like, shape_str

Reduction = Literal["mean", "sum", "none", "weighted_mean"]
Backend = Literal["auto", "torch", "fused"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none", "weighted_mean")
Operand = Tensor | float | int | list | tuple | None


@dataclass(frozen=True)
class Prepared:
    """Operands checked and viewed with the input's rank (``None`` where not given)."""

    input: Tensor
    target: Tensor
    weight: Tensor | None
    pos_weight: Tensor | None
    ignore: Tensor | None


def _target_fix(target_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> list[str]:
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
    numel = lambda s: int(torch.Size(s).numel())  # noqa: E731
    if not fixes and numel(t) == numel(i):
        fixes.append("target=target.view_as(input)   # only if the elements are already in the same order")
    return fixes


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
    if not isinstance(input, Tensor) or not input.is_floating_point():
        kind = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise TypeError(
            f"input must be a floating-point tensor of logits, got {kind}.\n"
            "Write instead:\n    input=input.float()"
        )
    if not isinstance(target, Tensor):
        target = torch.as_tensor(target, device=input.device)
    if target.shape != input.shape:
        fixes = _target_fix(tuple(target.shape), tuple(input.shape))
        message = (
            f"target has shape {shape_str(target.shape)} but input has shape {shape_str(input.shape)}; "
            "binary cross-entropy is elementwise, so they must be equal (PyTorch refuses too)."
        )
        if fixes:
            message += "\nWrite instead:\n" + "\n".join(f"    {fix}" for fix in fixes)
        raise ValueError(message)

    aligned_ignore = None
    if ignore is not None:
        if not isinstance(ignore, Tensor) or ignore.dtype != torch.bool:
            kind = ignore.dtype if isinstance(ignore, Tensor) else type(ignore).__name__
            raise TypeError(
                f"ignore must be a bool tensor (True = leave this element out), got {kind}.\n"
                "Write instead one of:\n    ignore=(labels == 255)\n    ignore=mask.bool()"
            )
        aligned_ignore = align("ignore", ignore.to(input.device), input.shape, channel_dim=None)

    check = checks.value_checks_enabled(check_values)
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    if check:
        checks.check_target_values(target, aligned_ignore)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"label_smoothing={label_smoothing} is outside [0, 1]; it is the share of each target moved to 0.5.\n"
            "Write instead, e.g.:\n    label_smoothing=0.1   # targets 0 -> 0.05, 1 -> 0.95"
        )
    if label_smoothing:
        target = target * (1 - label_smoothing) + 0.5 * label_smoothing

    aligned: dict[str, Tensor | None] = {}
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is None:
            aligned[name] = None
            continue
        tensor = as_tensor_like(value, input, name)
        if check:
            checks.check_weight_values(name, tensor)
        aligned[name] = align(name, tensor, input.shape, channel_dim)
    return Prepared(input, target, aligned["weight"], aligned["pos_weight"], aligned_ignore)


def bce_terms(input: Tensor, target: Tensor, pos_weight: Tensor | None = None) -> Tensor:
    """Per-element loss before ``weight``: ``(1 - y) x - (1 + (p - 1) y) log sigmoid(x)``.

    Shapes: ``input`` and ``target`` ``(*)``; ``pos_weight`` broadcastable to them. Differentiable in
    every argument: when only ``input`` needs a gradient this is PyTorch's own kernel (one pass, same
    values); otherwise the formula above in differentiable operations, since PyTorch's kernel refuses
    gradients for ``pos_weight`` and ``weight``.
    """
    if not (target.requires_grad or (pos_weight is not None and pos_weight.requires_grad)):
        return F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight, reduction="none")
    log_sigmoid = F.logsigmoid(input)
    if pos_weight is None:
        return (1 - target) * input - log_sigmoid
    return (1 - target) * input - (1 + (pos_weight - 1) * target) * log_sigmoid


def per_element_loss(prepared: Prepared, gamma: float = 0.0, alpha: float | None = None) -> Tensor:
    """Per-element (focal) loss before ``weight`` and ``ignore``, shaped like ``prepared.input``.

    ``gamma=0, alpha=None`` gives :func:`bce_terms`; otherwise the factors of
    :func:`focal_bce_with_logits`: ``alpha_t (1 - q_t) ** gamma``.
    """
    x, y = prepared.input, prepared.target
    per_element = bce_terms(x, y, prepared.pos_weight)
    if gamma != 0:
        prob = torch.sigmoid(x)
        prob_true = prob * y + (1 - prob) * (1 - y)
        per_element = per_element * (1 - prob_true) ** gamma
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
        and not any(t is not None and t.requires_grad for t in (prepared.target, prepared.weight, prepared.pos_weight))
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
    non-ignored elements (1 per element without ``weight``); an all-ignored or all-zero-weight input
    gives 0 (and zero gradients) rather than NaN.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction={reduction!r} is not one of {', '.join(map(repr, REDUCTIONS))}.\n"
            "Write instead:\n    reduction=\"mean\"   # or \"sum\", \"none\", \"weighted_mean\""
        )
    loss = per_element
    weight, ignore = prepared.weight, prepared.ignore
    if weight is not None:
        loss = loss * weight
    if ignore is not None:
        loss = loss.masked_fill(ignore, 0)
    if reduction == "none":
        return loss
    if reduction == "mean" and ignore is None:
        return loss.mean()  # sum / numel, exactly as PyTorch (NaN for an empty input, as PyTorch)
    if reduction == "sum":
        return loss.sum()
    # float16 sums overflow past 65504: accumulate numerator and denominator in float32 at least
    total = loss.sum(dtype=torch.float64 if loss.dtype == torch.float64 else torch.float32)
    numel = prepared.input.numel()
    if reduction == "mean" or weight is None:
        if ignore is not None:
            denominator = _broadcast_sum((~ignore).to(total.dtype), numel)
        else:
            denominator = total.new_tensor(numel)
    else:
        kept_weight = weight if ignore is None else weight.masked_fill(ignore, 0)
        denominator = _broadcast_sum(kept_weight, numel)
    denominator = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return (total / denominator).to(loss.dtype)


def bce_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Operand = None,
    pos_weight: Operand = None,
    *,
    reduction: Reduction = "mean",
    channel_dim: int | None = None,
    ignore: Tensor | None = None,
    check_values: bool | None = None,
    label_smoothing: float = 0.0,
    backend: Backend = "auto",
) -> Tensor:
    """Binary cross-entropy on logits, a drop-in for ``F.binary_cross_entropy_with_logits``.

    Per element, ``l = -w [p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]`` (see the module docstring).

    Args:
        input: logits ``x``, any shape, e.g. ``(N, C, H, W)``; floating point.
        target: ``y``, the same shape as ``input``; float in ``[0, 1]``, or bool/integer 0-1 labels
            (converted to ``input.dtype``).
        weight: ``w >= 0``, a number or a tensor broadcastable to ``input`` — ``(N, 1, H, W)`` for a mask
            shared by the channels, ``(C, 1, 1)`` per channel, ``(N, 1, 1, 1)`` per sample.
        pos_weight: ``p >= 0``, multiplies the positive term only; a number, or a tensor broadcastable to
            ``input`` — ``(C, 1, 1)`` per channel on ``(N, C, H, W)``, ``(C,)`` on ``(N, C)``.
        reduction: ``"mean"`` (sum / number of non-ignored elements), ``"sum"``, ``"none"``, or
            ``"weighted_mean"`` (sum / sum of ``weight`` over non-ignored elements).
        channel_dim: the dimension a 1-D ``weight`` or ``pos_weight`` of length C refers to, e.g. 1 for
            ``(N, C, H, W)``. Without it, 1-D operands follow PyTorch's trailing alignment, and the ones
            that would silently land on the wrong axis are refused.
        ignore: bool, broadcastable to ``input``; True elements add 0 to the loss, get zero gradient and
            are left out of the mean's denominator. Their targets may hold anything (255 for void).
        check_values: look at values (targets in ``[0, 1]``, weights finite and ``>= 0``). Default: the
            global setting (on; see :func:`bceweights.set_value_checks`). The checks read every element
            and synchronise with the GPU; turn them off for speed once your data is known good.
        label_smoothing: ``eps`` in ``[0, 1]``; targets become ``y (1 - eps) + eps / 2`` (0 -> eps/2,
            1 -> 1 - eps/2), so the loss-minimising logit stays finite: ``log(y' / (1 - y'))``.
        backend: ``"torch"`` (the eager formula), ``"fused"`` (one pass computing loss and input gradient:
            a compiled C++ loop on CPU, a Triton kernel on CUDA; an error saying why if it cannot run) or
            ``"auto"`` (fused from the third call of a shape signature with at least 65,536 elements, when
            it can run and nothing but the input needs a gradient; eager otherwise, silently). See
            :mod:`bceweights.fused`.

    Returns:
        a scalar, or ``input``'s shape for ``reduction="none"``.

    Raises:
        WeightShapeError: an operand that does not line up, with the line to write instead.
        ValueError: target shape differs from input's; bad values (when checked); unknown reduction.
    """
    prepared = prepare(input, target, weight, pos_weight, ignore, channel_dim, check_values, label_smoothing)
    return fused_loss(prepared, reduction, backend=backend)


def focal_bce_with_logits(
    input: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    alpha: float | None = None,
    weight: Operand = None,
    pos_weight: Operand = None,
    *,
    reduction: Reduction = "mean",
    channel_dim: int | None = None,
    ignore: Tensor | None = None,
    check_values: bool | None = None,
    label_smoothing: float = 0.0,
    backend: Backend = "auto",
) -> Tensor:
    """Sigmoid focal loss (Lin et al., 2017), with the shape rules of :func:`bce_with_logits`.

    With ``q = sigmoid(x)``, ``q_t = q y + (1 - q)(1 - y)`` and ``l_bce`` the per-element loss of
    :func:`bce_with_logits` (including ``pos_weight``):

        l = w * alpha_t * (1 - q_t) ** gamma * l_bce,     alpha_t = alpha y + (1 - alpha)(1 - y)

    the formula of ``torchvision.ops.sigmoid_focal_loss``. ``alpha=None`` drops ``alpha_t`` (torchvision's
    ``alpha=-1``); ``gamma=0, alpha=None`` is exactly :func:`bce_with_logits`.

    Args:
        gamma: focusing exponent ``>= 0``; larger values down-weight easy, well-classified elements.
        alpha: balance in ``[0, 1]`` for positives (torchvision's default is 0.25), or ``None``.
        Other arguments (``backend`` included) and shapes: as :func:`bce_with_logits`.
    """
    if gamma < 0:
        raise ValueError(f"gamma={gamma} is negative; expected gamma >= 0 (0 gives plain BCE, 2 is usual).")
    if alpha is not None and not 0 <= alpha <= 1:
        raise ValueError(
            f"alpha={alpha} is outside [0, 1]; expected the weight of positives, e.g. alpha=0.25, "
            "or alpha=None to leave it out."
        )
    prepared = prepare(input, target, weight, pos_weight, ignore, channel_dim, check_values, label_smoothing)
    return fused_loss(prepared, reduction, gamma=gamma, alpha=alpha, backend=backend)


def _buffer(value: Operand) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    return torch.as_tensor(value, dtype=torch.get_default_dtype())


class BCEWithLogits(nn.Module):
    """Module form of :func:`bce_with_logits`; its ``forward`` takes a different weight on every call.

    ``nn.BCEWithLogitsLoss(weight=...)`` fixes the weight when the module is built. Here the weight given
    at construction (e.g. per channel) and the one given to ``forward`` (e.g. this batch's pixel mask)
    are both aligned with the input and multiplied.

    Args:
        weight, pos_weight: as :func:`bce_with_logits`; stored as buffers (they follow ``.to(device)``).
        reduction, channel_dim, check_values, label_smoothing, backend: as :func:`bce_with_logits`.

    Shapes:
        ``forward(input (*), target (*), weight=None, ignore=None) -> ()`` or ``(*)`` for ``"none"``.
    """

    weight: Tensor | None
    pos_weight: Tensor | None

    def __init__(
        self,
        weight: Operand = None,
        pos_weight: Operand = None,
        *,
        reduction: Reduction = "mean",
        channel_dim: int | None = None,
        check_values: bool | None = None,
        label_smoothing: float = 0.0,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction={reduction!r} is not one of {', '.join(map(repr, REDUCTIONS))}.")
        self.register_buffer("weight", _buffer(weight))
        self.register_buffer("pos_weight", _buffer(pos_weight))
        self.reduction = reduction
        self.channel_dim = channel_dim
        self.check_values = check_values
        self.label_smoothing = label_smoothing
        self.backend = backend

    def combined_weight(self, input: Tensor, weight: Operand) -> Operand:
        """The module's weight times this call's, each aligned with ``input`` first."""
        if self.weight is None:
            return weight
        if weight is None:
            return self.weight
        own = align("weight", as_tensor_like(self.weight, input, "weight"), input.shape, self.channel_dim)
        call = align("weight", as_tensor_like(weight, input, "weight"), input.shape, self.channel_dim)
        return own * call

    def call_options(self, input: Tensor, weight: Operand, ignore: Tensor | None) -> dict:
        """Keyword arguments for the functional form: this call's operands plus the module's settings."""
        return dict(
            weight=self.combined_weight(input, weight),
            pos_weight=self.pos_weight,
            reduction=self.reduction,
            channel_dim=self.channel_dim,
            ignore=ignore,
            check_values=self.check_values,
            label_smoothing=self.label_smoothing,
            backend=self.backend,
        )

    def forward(
        self,
        input: Tensor,
        target: Tensor,
        weight: Operand = None,
        ignore: Tensor | None = None,
    ) -> Tensor:
        return bce_with_logits(input, target, **self.call_options(input, weight, ignore))

    def extra_repr(self) -> str:
        parts = [f"reduction={self.reduction!r}"]
        if self.channel_dim is not None:
            parts.append(f"channel_dim={self.channel_dim}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        if self.backend != "auto":
            parts.append(f"backend={self.backend!r}")
        for name in ("weight", "pos_weight"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={shape_str(value.shape)}")
        return ", ".join(parts)


class FocalBCEWithLogits(BCEWithLogits):
    """Module form of :func:`focal_bce_with_logits` (``gamma``, ``alpha`` fixed; weight per call)."""

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | None = None,
        weight: Operand = None,
        pos_weight: Operand = None,
        *,
        reduction: Reduction = "mean",
        channel_dim: int | None = None,
        check_values: bool | None = None,
        label_smoothing: float = 0.0,
        backend: Backend = "auto",
    ) -> None:
        super().__init__(
            weight, pos_weight, reduction=reduction, channel_dim=channel_dim, check_values=check_values,
            label_smoothing=label_smoothing, backend=backend,
        )
        self.gamma = gamma
        self.alpha = alpha

    def forward(
        self,
        input: Tensor,
        target: Tensor,
        weight: Operand = None,
        ignore: Tensor | None = None,
    ) -> Tensor:
        return focal_bce_with_logits(
            input, target, self.gamma, self.alpha, **self.call_options(input, weight, ignore)
        )

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}, " + super().extra_repr()
