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

This module holds only the public functions and modules. Each call runs
:func:`bceweights.prepared.prepare` (every argument check) and then
:func:`bceweights.backend.compute_loss` (eager or fused), or with ``process_group=``
:func:`bceweights.distributed.global_loss` (which calls it); imports go that way only.
"""

from __future__ import annotations

import numbers
from typing import Any, Literal

import torch
from torch import Tensor, nn

from bceweights import checks
from bceweights.backend import check_backend, compute_loss
from bceweights.distributed import global_loss
from bceweights.messages import error_message
from bceweights.prepared import (
    Operand,
    Prepared,
    Reduction,
    check_focal,
    check_label_smoothing,
    check_reduction,
    from_numpy,
    prepare,
)
from bceweights.shapes import align, as_tensor_like, shape_str

Backend = Literal["auto", "torch", "fused"]
ProcessGroup = Any  # a torch.distributed.ProcessGroup (typed loosely: torch.distributed may be absent)


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
    process_group: ProcessGroup | None = None,
) -> Tensor:
    """Binary cross-entropy on logits, a drop-in for ``F.binary_cross_entropy_with_logits``.

    Per element, ``l = -w [p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]`` (see the module docstring).

    Args:
        input: logits ``x``, any shape, e.g. ``(N, C, H, W)``; floating point.
        target: ``y``, the same shape as ``input``; float in ``[0, 1]``, or bool/integer 0-1 labels
            (converted to ``input.dtype``). A floating target sets the loss's dtype, as in PyTorch: a
            bfloat16 input with float32 targets gives a float32 loss (computed in float32, the
            targets never rounded to bfloat16); a float32 input with bfloat16 targets a bfloat16 one.
        weight: ``w >= 0``, a number or a tensor broadcastable to ``input`` — ``(N, 1, H, W)`` for a mask
            shared by the channels, ``(C, 1, 1)`` per channel, ``(N, 1, 1, 1)`` per sample.
        pos_weight: ``p >= 0``, multiplies the positive term only; a number, or a tensor broadcastable to
            ``input`` — ``(C, 1, 1)`` per channel on ``(N, C, H, W)``, ``(C,)`` on ``(N, C)``.
        reduction: ``"mean"`` (sum / number of non-ignored elements), ``"sum"``, ``"none"``, or
            ``"weighted_mean"`` (sum / sum of ``weight`` over non-ignored elements). An input with no
            elements gives NaN under both means, as PyTorch's ``"mean"`` does (with or without
            ``ignore``: an empty batch is usually a bug upstream, and NaN shows it); a non-empty
            input with nothing kept (every element ignored, or all weights 0 under
            ``"weighted_mean"``) gives 0 with zero gradients, so a batch of only void pixels
            trains on.
        channel_dim: the dimension a 1-D ``weight`` or ``pos_weight`` of length C refers to, e.g. 1 for
            ``(N, C, H, W)``. Without it, 1-D operands follow PyTorch's trailing alignment, and the ones
            that would silently land on the wrong axis are refused.
        ignore: bool, broadcastable to ``input``; True elements add 0 to the loss, get zero gradient and
            are left out of the mean's denominator. Their targets and logits may hold anything (255 for
            void, NaN for a missing label, inf): nothing of them reaches the loss or the gradient.
        check_values: look at values (targets in ``[0, 1]``, weights finite and ``>= 0``). Default: the
            global setting (on; see :func:`bceweights.set_value_checks`). The checks read every element
            and synchronise with the GPU; turn them off for speed once your data is known good. Under
            ``torch.compile`` (``fullgraph=True`` included) they stay in the graph as
            ``torch._assert_async`` (no graph break, no sync) and a bad value raises ``RuntimeError``
            when the compiled code runs (on CUDA a device-side assert, which ends the CUDA context);
            under ``torch.func.vmap`` they read every sample at once.
        label_smoothing: ``eps`` in ``[0, 1]``; targets become ``y (1 - eps) + eps / 2`` (0 -> eps/2,
            1 -> 1 - eps/2), so the loss-minimising logit stays finite: ``log(y' / (1 - y'))``.
        backend: ``"torch"`` (the eager formula), ``"fused"`` (one pass computing loss and input gradient:
            a compiled C++ loop on CPU, a Triton kernel on CUDA; an error saying why if it cannot run) or
            ``"auto"`` (fused from the third call of a shape signature with at least 65,536 elements, when
            it can run and nothing but the input needs a gradient; eager otherwise, silently). Under
            forward-mode AD and ``torch.func`` transforms every backend runs the eager formula, so
            every way PyTorch differentiates works whichever backend is named. Under ``torch.autocast``
            a float16/bfloat16 input is computed in float32 and the loss is float32, as PyTorch's.
            See :mod:`bceweights.fused`.
        process_group: a ``torch.distributed`` group (e.g. ``dist.group.WORLD`` under DDP) over which
            the denominator of ``"mean"`` and ``"weighted_mean"`` is all-reduced: each rank returns
            ``local_sum * world_size / global_denominator``, so DDP's gradient averaging gives exactly
            the gradient of the mean over the global batch (see :mod:`bceweights.distributed`; the
            logged value of one rank is not the global mean). ``None``: the local mean, as PyTorch.
            ``"sum"`` and ``"none"`` are unaffected.

    Returns:
        a scalar, or ``input``'s shape for ``reduction="none"``; in the target's dtype when the target
        is floating (PyTorch's rule), else in the input's (float32 under ``torch.autocast``).

    Raises:
        WeightShapeError: an operand that does not line up, with the line to write instead.
        ValueError: target shape differs from input's; bad values (when checked); unknown reduction.
    """
    prepared = prepare(input, target, weight, pos_weight, ignore, channel_dim, check_values, label_smoothing)
    if process_group is not None:
        return in_result_dtype(global_loss(prepared, reduction, process_group, backend=backend), prepared)
    return in_result_dtype(compute_loss(prepared, reduction, backend=backend), prepared)


def in_result_dtype(loss: Tensor, prepared: Prepared) -> Tensor:
    """``loss`` in PyTorch's result dtype, the target's (:func:`bceweights.prepared.loss_dtypes`).

    The last step of a call: the loss is computed (and all-reduced) in the wider dtype, and only the
    value is rounded; ``loss.backward()`` then sends a gradient of 1 back through the cast unrounded.
    """
    if prepared.result_dtype is None or loss.dtype == prepared.result_dtype:
        return loss
    return loss.to(prepared.result_dtype)


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
    process_group: ProcessGroup | None = None,
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

    Other arguments (``backend`` and ``process_group`` included) and shapes: as :func:`bce_with_logits`.
    """
    check_focal(gamma, alpha)  # before prepare: a wrong option is reported before a wrong operand
    prepared = prepare(input, target, weight, pos_weight, ignore, channel_dim, check_values, label_smoothing)
    if process_group is not None:
        loss = global_loss(prepared, reduction, process_group, gamma=gamma, alpha=alpha, backend=backend)
    else:
        loss = compute_loss(prepared, reduction, gamma=gamma, alpha=alpha, backend=backend)
    return in_result_dtype(loss, prepared)


def _buffer(name: str, value: Operand, check_values: bool | None) -> Tensor | None:
    """A module's ``weight`` / ``pos_weight`` as a floating tensor, checked as a call would check it.

    Numbers, sequences and numpy arrays become tensors of the default dtype; a floating tensor keeps
    its dtype. With value checks on (``check_values``, else the process setting) NaN, infinite and
    negative values are refused here, at construction, rather than at the first ``forward``.
    """
    if value is None:
        return None
    value = from_numpy(value)
    floating = isinstance(value, Tensor) and value.is_floating_point()
    like = torch.empty((), dtype=value.dtype if floating else torch.get_default_dtype())
    tensor = as_tensor_like(value, like, name)
    if checks.value_checks_enabled(check_values):
        checks.check_weight_values(name, tensor)
    return tensor


def check_module_options(channel_dim: object, check_values: object, label_smoothing: object) -> None:
    """The types of the options a module stores (the values are checked by their own checks)."""
    if channel_dim is not None and (isinstance(channel_dim, bool) or not isinstance(channel_dim, int)):
        raise TypeError(error_message(
            f"channel_dim={channel_dim!r} is not an int", "expected the channel dimension, e.g. 1, or None.",
            "channel_dim=1   # the C of (N, C, H, W)",
        ))
    if check_values is not None and not isinstance(check_values, bool):
        raise TypeError(error_message(
            f"check_values={check_values!r} is not True, False or None",
            "None follows bw.set_value_checks.", "check_values=None",
        ))
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real):
        raise TypeError(error_message(
            f"label_smoothing={label_smoothing!r} is not a number", "expected eps in [0, 1].",
            "label_smoothing=0.1",
        ))


class BCEWithLogits(nn.Module):
    """Module form of :func:`bce_with_logits`; its ``forward`` takes a different weight on every call.

    ``nn.BCEWithLogitsLoss(weight=...)`` fixes the weight when the module is built. Here the weight given
    at construction (e.g. per channel) and the one given to ``forward`` (e.g. this batch's pixel mask)
    are both aligned with the input and multiplied.

    Args:
        weight, pos_weight: as :func:`bce_with_logits` (numbers, sequences, numpy arrays or tensors);
            stored as buffers (they follow ``.to(device)``).
        reduction, channel_dim, check_values, label_smoothing, backend, process_group: as
            :func:`bce_with_logits` (the group is kept as a plain attribute, not a buffer).

    Every option is checked here, when the module is built (``backend="bogus"``,
    ``label_smoothing=2``, a negative weight raise at construction, not at the first ``forward``).

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
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        check_reduction(reduction)
        check_backend(backend)
        check_module_options(channel_dim, check_values, label_smoothing)
        check_label_smoothing(label_smoothing)
        self.register_buffer("weight", _buffer("weight", weight, check_values))
        self.register_buffer("pos_weight", _buffer("pos_weight", pos_weight, check_values))
        self.reduction = reduction
        self.channel_dim = channel_dim
        self.check_values = check_values
        self.label_smoothing = label_smoothing
        self.backend = backend
        self.process_group = process_group

    def combined_weight(self, input: Tensor, weight: Operand) -> Operand:
        """The module's weight times this call's, each aligned with ``input`` first.

        The product is formed in the widest floating dtype of the input and the two weights, and
        rounded once, to the dtype the loss computes in, by :func:`bceweights.prepared.prepare`.
        """
        if self.weight is None:
            return weight
        if weight is None:
            return self.weight
        weight = from_numpy(weight)
        dtype = torch.promote_types(input.dtype, self.weight.dtype)
        if isinstance(weight, Tensor) and weight.is_floating_point():
            dtype = torch.promote_types(dtype, weight.dtype)
        like = torch.empty((), dtype=dtype, device=input.device)
        own = align("weight", as_tensor_like(self.weight, like, "weight"), input.shape, self.channel_dim)
        call = align("weight", as_tensor_like(weight, like, "weight"), input.shape, self.channel_dim)
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
            process_group=self.process_group,
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
        if self.process_group is not None:
            parts.append("process_group=<group>")
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
        process_group: ProcessGroup | None = None,
    ) -> None:
        check_focal(gamma, alpha)
        super().__init__(
            weight, pos_weight, reduction=reduction, channel_dim=channel_dim, check_values=check_values,
            label_smoothing=label_smoothing, backend=backend, process_group=process_group,
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
