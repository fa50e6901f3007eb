"""The audit's rules: each reads one :class:`~bceweights.audit.calls.LossCall` and returns a message or None.

=========================  ====================================================================  =======
rule                       fires when                                                            reads
=========================  ====================================================================  =======
``misaligned-operand``     ``weight`` / ``pos_weight`` broadcasts onto an axis it was probably   shapes
                           not meant for (the cases :func:`bceweights.shapes.line_up` refuses:
                           ``W == C``, a length that matches a spatial axis, ``(N,)`` on
                           ``(N, ...)``, a mask without its channel axis)
``per-sample-pos-weight``  ``pos_weight`` varies, or is repeated, along the batch axis           shapes
``double-sigmoid``         the with-logits loss gets a sigmoid's output                          graph
``sigmoid-then-bce``       ``binary_cross_entropy`` gets a sigmoid's output (Q12)                graph
``target-out-of-range``    a target outside [0, 1] (void label 255, -1, NaN)                     values
``diluted-mean``           ``reduction="mean"`` with a weight that is 0 on most elements         values
``invalid-weight-values``  a negative, NaN or infinite ``weight`` / ``pos_weight``               values
=========================  ====================================================================  =======

"graph" rules read ``input.grad_fn`` (through view-like nodes), or, without a graph, whether the audit
saw a sigmoid produce the tensor; ``double-sigmoid`` falls back on the values only when neither exists.
"values" rules read elements, so the audit runs them on a sample of the calls (see
:mod:`bceweights.audit.session`). Every message says what was given, why it is wrong, and what to
write instead (built with :mod:`bceweights.messages`).

Imports: :mod:`bceweights.messages`, :mod:`bceweights.shapes`, :mod:`bceweights.audit.calls`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from bceweights.audit.calls import LossCall
from bceweights.messages import error_message
from bceweights.shapes import dim_names, intended_readings, line_up, shape_str

#: ``diluted-mean`` fires when the weight is 0 on more than this share of the elements ("most").
DILUTED_SHARE = 0.5
#: The value heuristic of ``double-sigmoid`` needs this many elements, all in [0, 1], spread this far.
PROBABILITY_MIN_NUMEL = 100
PROBABILITY_MIN_SPREAD = 0.5

# autograd nodes that keep every value of their input as it was (so a sigmoid's range survives them)
_VALUE_KEEPING_NODES = frozenset({
    "ViewBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0", "UnsqueezeBackward0", "SqueezeBackward0",
    "SqueezeBackward1", "SqueezeBackward2", "PermuteBackward0", "TransposeBackward0", "TBackward0",
    "ExpandBackward0", "CloneBackward0", "SliceBackward0", "SelectBackward0", "IndexBackward0",
    "ToCopyBackward0", "ClampBackward1", "ClampBackward0", "ClampMinBackward0", "ClampMaxBackward0",
    "AliasBackward0", "CatBackward0", "StackBackward0", "SplitBackward0", "NarrowBackward0",
    "FlattenBackward0", "MovedimBackward0",
})


def _named(shape: tuple[int, ...]) -> str:
    names = dim_names(len(shape))
    return "(" + ", ".join(f"{n}={s}" for n, s in zip(names, shape)) + ")" if shape else "()"


def _head(name: str, operand: Tensor, input: Tensor) -> str:
    shape, input_shape = tuple(operand.shape), tuple(input.shape)
    return f"{name} has shape {shape_str(shape)} but the input has shape {shape_str(input_shape)} = {_named(input_shape)}."


def _stripped(shape: tuple[int, ...]) -> tuple[int, ...]:
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


def _view(name: str, shape: tuple[int, ...]) -> str:
    return f"{name}.view({', '.join(str(s) for s in shape)})" if len(shape) > 1 else f"{name}.view({shape[0]})"


def _sig4(value: float) -> str:
    return f"{value:.4g}"


def _float(value: float) -> str:
    """A float literal with 4 significant digits that stays a float: ``1.0``, ``8.852``, ``1e-05``."""
    text = f"{value:.4g}"
    return text if any(c in text for c in ".en") else text + ".0"


# --------------------------------------------------------------------------------------------------
# shapes


def misaligned_operand(call: LossCall, context: "Context") -> str | None:
    """A ``weight`` or ``pos_weight`` that PyTorch's trailing alignment pairs with the wrong axis."""
    for name in ("weight", "pos_weight"):
        operand = getattr(call, name)
        if operand is None:
            continue
        shape, input_shape = tuple(operand.shape), tuple(call.input.shape)
        try:
            if torch.broadcast_shapes(shape, input_shape) != input_shape:
                continue  # PyTorch refuses this one itself
        except RuntimeError:
            continue
        if line_up(name, shape, input_shape).ok:
            continue
        padded = (1,) * (len(input_shape) - len(shape)) + shape
        names = dim_names(len(input_shape))
        readings = [(d, s) for d, s in intended_readings(shape, input_shape) if s != padded]
        readings.sort(key=lambda reading: (not reading[0].startswith("one value per channel"),
                                           not reading[0].startswith("a mask")))
        if not readings:
            continue
        pairing = ", ".join(f"{n}={s}" for n, a, s in zip(names, padded, input_shape) if a != 1)
        why = (
            f"PyTorch lines up trailing dimensions, so it runs, pairing {name} with {pairing}; it looks like "
            + " or ".join(d for d, _ in readings) + " instead. Nothing fails: the wrong elements get the weights."
        )
        fixes = []
        for desc, full in readings:
            varies = ", ".join(n for n, a in zip(names, full) if a != 1)
            if desc.startswith("a mask"):
                fixes.append(call.code(**{name: f"{name}.unsqueeze(1)"}) + "   # (N, 1, ...): every channel")
            elif name == "pos_weight" and full[0] != 1:  # per sample: that is a weight, not a pos_weight
                fixes.append(call.code(weight=_view("pos_weight", _stripped(full)), pos_weight=None)
                             + f"   # if you meant a weight per {varies}")
            else:
                fixes.append(call.code(**{name: _view(name, _stripped(full))}) + f"   # varies along {varies}")
        return error_message(_head(name, operand, call.input), why=why, fixes=fixes)
    return None


def per_sample_pos_weight(call: LossCall, context: "Context") -> str | None:
    """A ``pos_weight`` with one value per sample (it varies or repeats along the batch axis)."""
    pos_weight, input = call.pos_weight, call.input
    if pos_weight is None or not call.with_logits or input.ndim == 0 or input.shape[0] < 2:
        return None
    n = input.shape[0]
    padded = (1,) * (input.ndim - pos_weight.ndim) + tuple(pos_weight.shape)
    if len(padded) != input.ndim or padded[0] != n:
        return None
    if tuple(pos_weight.shape) == tuple(call.target.shape):
        label_indexed = _label_indexed(call, context)
        if label_indexed is not None or input.ndim == 1:
            return label_indexed  # (N,) logits: per-sample only if the values follow the labels
    head = (
        f"pos_weight has shape {shape_str(pos_weight.shape)}, one value per sample along N={n}, for an input of "
        f"shape {shape_str(input.shape)} = {_named(tuple(input.shape))}."
    )
    values = pos_weight.detach()
    if bool(torch.equal(values, values[:1].expand_as(values))):
        why = (
            "Every sample holds the same values: one pos_weight repeated along the batch axis (as .repeat(N, 1) "
            "makes). It breaks on a last batch of another size, and it hides which axis it weights."
        )
        row = _stripped(tuple(values.shape[1:]) or (1,))
        first = values[0].reshape(row)
        value = (f"torch.tensor([{', '.join(_float(v) for v in first.tolist())}])" if len(row) == 1 and row[0] <= 8
                 else "pos_weight[0]")
        return error_message(head, why=why, fixes=call.code(pos_weight=value) + "   # one value per channel")
    why = (
        "pos_weight multiplies only the positive term, so a value per sample is not a sample weight: the "
        "negatives ignore it, and class weights indexed by the label (w[labels]) act as one pos_weight, the "
        "value the positives carry. Per-sample weights belong in weight; pos_weight is one ratio per channel."
    )
    fixes = [call.code(weight="pos_weight", pos_weight=None) + "   # per-sample weights scale both terms",
             call.code(pos_weight="torch.tensor([num_neg / num_pos])") + "   # one ratio for the channel"]
    return error_message(head, why=why, fixes=fixes)


def _label_indexed(call: LossCall, context: "Context") -> str | None:
    if not context.values_due:
        return None
    pos_weight, target = call.pos_weight.reshape(-1), call.target.detach().reshape(-1)
    positive, negative = pos_weight[target == 1], pos_weight[target == 0]
    if positive.numel() == 0 or negative.numel() == 0 or positive.numel() + negative.numel() != target.numel():
        return None
    on_pos, on_neg = float(positive[0]), float(negative[0])
    if on_pos == on_neg or not (bool((positive == on_pos).all()) and bool((negative == on_neg).all())):
        return None
    head = (f"pos_weight has shape {shape_str(call.pos_weight.shape)}, one value per sample, and follows the labels: "
            f"{_sig4(on_pos)} on positives, {_sig4(on_neg)} on negatives (class weights indexed by the label).")
    why = ("pos_weight multiplies only the positive term, so the negatives' value is never used: this is one "
           f"pos_weight of {_sig4(on_pos)}, not the class weighting it looks like.")
    fixes = [call.code(weight="pos_weight", pos_weight=None) + "   # class weights per sample scale both terms",
             call.code(pos_weight=f"torch.tensor([{_float(on_pos / on_neg) if on_neg > 0 else 'num_neg / num_pos'}])")
             + "   # the same balance as one ratio"]
    return error_message(head, why=why, fixes=fixes)


# --------------------------------------------------------------------------------------------------
# the autograd graph


def _sigmoid_source(tensor: Tensor, context: "Context") -> str | None:
    """How we know ``tensor`` is a sigmoid's output (a phrase for the message), or None."""
    node = tensor.grad_fn
    path = []
    for _ in range(16):
        if node is None:
            break
        name = type(node).__name__
        if name == "SigmoidBackward0":
            through = f" through {', '.join(path)}" if path else ""
            return f"input.grad_fn leads to SigmoidBackward0{through}"
        if name not in _VALUE_KEEPING_NODES:
            return None
        path.append(name)
        node = next((n for n, _ in node.next_functions if n is not None), None)
    if tensor.grad_fn is None and context.saw_sigmoid(tensor):
        return "the audit saw torch.sigmoid produce it; there is no autograd graph"
    return None


def double_sigmoid(call: LossCall, context: "Context") -> str | None:
    """The with-logits loss gets probabilities: a sigmoid's output, or (no graph) values that look like them."""
    if not call.with_logits or not call.input.is_floating_point():
        return None
    source = _sigmoid_source(call.input, context)
    if source is None and call.input.grad_fn is None and not call.input.requires_grad and context.values_due:
        source = _looks_like_probabilities(call.input)
    if source is None:
        return None
    head = f"The input of {call.name} is the output of a sigmoid ({source})."
    why = (
        "The with-logits loss applies its own sigmoid, so it scores sigmoid(sigmoid(x)), which stays between "
        "0.5 and 0.7311 whatever the model does: every element is scored at least 0.5 likely positive, the loss "
        "never approaches 0, and the gradient reaching the model is damped by both sigmoids' slopes."
    )
    fix = call.code(input="logits") + "   # logits: the model's output before the sigmoid"
    note = "(drop the model's final nn.Sigmoid(); apply torch.sigmoid(logits) only to read probabilities)"
    return error_message(head, why=why, fixes=fix, note=note)


def _looks_like_probabilities(input: Tensor) -> str | None:
    if input.numel() < PROBABILITY_MIN_NUMEL:
        return None
    low, high = (float(v) for v in torch.aminmax(input.detach()))
    if not (0.0 <= low and high <= 1.0 and high - low >= PROBABILITY_MIN_SPREAD):
        return None
    return (f"read from the values: there is no autograd graph, and all {input.numel()} values lie in [0, 1], "
            f"from {_sig4(low)} to {_sig4(high)}")


def sigmoid_then_bce(call: LossCall, context: "Context") -> str | None:
    """``binary_cross_entropy`` on a sigmoid's output: the with-logits form is the stable one (Q12)."""
    if call.with_logits or not call.input.is_floating_point():
        return None
    source = _sigmoid_source(call.input, context)
    if source is None:
        return None
    dtype = call.input.dtype
    saturates = -math.log(torch.finfo(dtype).eps / 2)
    head = f"{call.name} gets the output of a sigmoid ({source})."
    why = (
        f"In {str(dtype).replace('torch.', '')} sigmoid(x) rounds to exactly 1 for x above about {saturates:.3g}, "
        "where BCE clamps log(1 - p) at -100: a confidently wrong negative then has loss 100 and gradient 0, "
        "so it is never corrected. The with-logits form computes the same loss from x without rounding."
    )
    fixes = [call.as_with_logits().code(input="logits") + "   # logits: what went into the sigmoid"]
    if call.module is not None:
        fixes[0] += "; drop the nn.Sigmoid() before it"
    return error_message(head, why=why, fixes=fixes)


# --------------------------------------------------------------------------------------------------
# values


def target_out_of_range(call: LossCall, context: "Context") -> str | None:
    """Targets outside [0, 1]: void or ignore labels (255, -1) passed to the loss as if they were targets."""
    if not context.values_due or call.target.dtype == torch.bool:
        return None
    target = call.target.detach()
    if not target.is_floating_point():
        target = target.double()
    outside = ~((target >= 0) & (target <= 1))
    count = int(outside.sum())
    if count == 0:
        return None
    values = torch.unique(target[outside])
    finite = values[torch.isfinite(values)]
    share = count / target.numel()
    shown = ", ".join(_sig4(v) for v in values[:4].tolist()) + (", ..." if values.numel() > 4 else "")
    head = (f"target holds values outside [0, 1]: {shown} on {count} of {target.numel()} elements "
            f"({share:.2%}).")
    example = _sig4(float(finite.max() if finite.numel() else 255))
    why = (
        f"BCE reads a target of {example} as {example} times a positive and {_sig4(1 - float(example))} times a "
        f"negative: its loss has no minimum there (it falls without bound as the logit grows) and its gradient "
        f"sigmoid(x) - {example} never vanishes. Void or ignore labels must be left out of the loss, not passed as targets."
    )
    single = values.numel() == 1 and finite.numel() == 1
    keep = f"target != {example}" if single else "(target >= 0) & (target <= 1)"
    ignore = f"target == {example}" if single else f"~({keep})"
    fixes = [
        f"keep = {keep}\n"
        + call.code(target="target.masked_fill(~keep, 0)", weight="keep.float()", reduction="sum") + " / keep.sum()",
        f"bw.bce_with_logits(input, target, ignore={ignore})   # bceweights: the mean over the kept elements",
    ]
    if not call.with_logits:
        fixes = fixes[:1]
    return error_message(head, why=why, fixes=fixes)


def diluted_mean(call: LossCall, context: "Context") -> str | None:
    """``reduction="mean"`` divides by every element, even where the weight is 0 (most of them here)."""
    weight = call.weight
    if call.reduction != "mean" or weight is None or not context.values_due or weight.numel() == 0:
        return None
    zero_share = float((weight.detach() == 0).sum()) / weight.numel()
    if zero_share <= DILUTED_SHARE:
        return None
    numel = call.input.numel()
    kept = round(numel * (1 - zero_share))
    head = (f'reduction="mean" with a weight that is 0 on {zero_share:.1%} of the elements '
            f"({numel - kept} of {numel}).")
    factor = f"{numel / kept:.3g}x smaller" if kept else "0"
    why = (
        f"The mean divides the weighted sum by all {numel} elements, not by the {kept} that count, so the loss "
        f"and its gradient are {factor} than the mean over those, and the factor changes with every batch's "
        "mask (a learning rate that drifts)."
    )
    fixes = [
        call.code(reduction="sum") + " / weight.expand_as(input).sum()   # the weighted mean",
        f"bw.bce_with_logits(input, target, weight=weight, reduction=\"weighted_mean\")   # bceweights",
        "bw.bce_with_logits(input, target, ignore=weight == 0)   # a 0/1 mask: the mean over the kept elements",
    ]
    return error_message(head, why=why, fixes=fixes if call.with_logits else fixes[:1])


def invalid_weight_values(call: LossCall, context: "Context") -> str | None:
    """A ``weight`` or ``pos_weight`` with negative, NaN or infinite values."""
    if not context.values_due:
        return None
    for name in ("weight", "pos_weight"):
        operand = getattr(call, name)
        if operand is None or not operand.is_floating_point():
            continue
        values = operand.detach()
        nonfinite, negative = int((~torch.isfinite(values)).sum()), int((values < 0).sum())
        if not nonfinite and not negative:
            continue
        what = " and ".join(p for p in (f"{negative} negative" if negative else "",
                                        f"{nonfinite} NaN or infinite" if nonfinite else "") if p)
        head = f"{name} holds {what} value(s) among its {values.numel()}."
        why = ("A negative weight turns descent into ascent on its elements (the loss has no minimum there); a NaN "
               "or infinite one makes the loss NaN. Weights must be finite and >= 0.")
        fix = call.code(**{name: f"torch.nan_to_num({name}, nan=0.0, posinf=0.0).clamp(min=0)"})
        return error_message(head, why=why, fixes=fix + "   # better: fix how it is computed")
    return None


# --------------------------------------------------------------------------------------------------
# the registry


@dataclass
class Context:
    """What a rule may ask the audit: whether this call's values are read, whether a tensor is a sigmoid's."""

    values_due: bool
    saw_sigmoid: Callable[[Tensor], bool]


Rule = Callable[[LossCall, Context], "str | None"]

#: Every rule, by id, in the order the audit applies them.
RULES: dict[str, Rule] = {
    "misaligned-operand": misaligned_operand,
    "per-sample-pos-weight": per_sample_pos_weight,
    "double-sigmoid": double_sigmoid,
    "sigmoid-then-bce": sigmoid_then_bce,
    "target-out-of-range": target_out_of_range,
    "diluted-mean": diluted_mean,
    "invalid-weight-values": invalid_weight_values,
}
