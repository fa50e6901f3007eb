r"""The audit's rules: each reads one :class:`~bceweights.audit.calls.LossCall` and returns a message or None.

=========================  ====================================================================  =======  ========
rule                       fires when                                                            reads    severity
=========================  ====================================================================  =======  ========
``misaligned-operand``     ``weight`` / ``pos_weight`` broadcasts onto an axis it was probably   shapes   error
                           not meant for (the cases :func:`bceweights.shapes.line_up` refuses:
                           ``W == C``, a length that matches a spatial axis, ``(N,)`` on
                           ``(N, ...)``, a mask without its channel axis); a 2-class weight
                           such as ``[0.1, 0.9]`` also gets the class-weight readings
\                          a 1-D ``pos_weight`` of length W != C, not all equal, on               shapes   warning
                           ``(N, C, ..., W)``: one ratio per image column
``per-sample-pos-weight``  ``pos_weight`` follows the labels (class weights indexed by the        values   error
                           label), or
\                          is one row repeated along the batch axis (``.repeat(N, 1)``);         values   warning
                           a per-element ``pos_weight`` that varies otherwise is left alone
``double-sigmoid``         the with-logits loss gets a sigmoid's output                          graph    error
``sigmoid-then-bce``       ``binary_cross_entropy`` gets a sigmoid's output (Q12)                graph    error
``target-out-of-range``    a target outside [0, 1] (void label 255, -1, NaN; 0/255 and -1/1      values   error
                           label formats, with the reading the data suggests); a finite one
                           under a weight of 0 is left alone
``diluted-mean``           ``reduction="mean"`` with a weight that is 0 on most elements, or     values   warning
                           input and target multiplied by a mask (input 0 where target is 0)
``invalid-weight-values``  a negative, NaN or infinite ``weight`` / ``pos_weight``               values   error
=========================  ====================================================================  =======  ========

An *error* is a call that computes something other than what it was almost surely meant to; a
*warning* is a choice that can be meant, whose message states its consequence (``diluted-mean``:
dividing by every element keeps each labelled element's step fixed and scales the loss value by the
labelled share, lesson 07, section 1).

"graph" rules read ``input.grad_fn`` with :func:`bceweights.audit.graph.trace_sigmoid` (through views,
copies, slices, ``cat``, ``stack`` and ``split``, following the elements the loss reads), or, without a
graph, whether the audit saw a sigmoid produce the tensor; ``double-sigmoid`` falls back on the values
only when neither exists. "values" rules read elements, so the audit runs them on a sample of the calls
(see :mod:`bceweights.audit.session`); the value rules proper live in :mod:`bceweights.audit.values`.
Every message says what was given, why it is wrong, and what to write instead (built with
:mod:`bceweights.messages`).

Imports: :mod:`bceweights.messages`, :mod:`bceweights.shapes`, and :mod:`bceweights.audit.calls`,
``graph``, ``values``, ``verdict``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from bceweights.audit.calls import LossCall
from bceweights.audit.graph import SIGMOID, trace_sigmoid
from bceweights.audit.values import DILUTED_SHARE, diluted_mean, invalid_weight_values, target_out_of_range
from bceweights.audit.verdict import ERROR, WARNING, Context, Verdict, float_literal, sig4
from bceweights.messages import error_message
from bceweights.shapes import dim_names, intended_readings, line_up, shape_str

__all__ = ["DILUTED_SHARE", "ERROR", "RULES", "WARNING", "Context", "Rule", "Verdict"]

#: The value heuristic of ``double-sigmoid`` needs this many elements, all in [0, 1], spread this far.
PROBABILITY_MIN_NUMEL = 100
PROBABILITY_MIN_SPREAD = 0.5


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


# --------------------------------------------------------------------------------------------------
# shapes


def misaligned_operand(call: LossCall, context: Context) -> str | Verdict | None:
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
            spatial = _pos_weight_along_space(call) if name == "pos_weight" else None
            if spatial is not None:
                return spatial
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
            elif name == "pos_weight" and full[0] != 1:  # per sample: still a pos_weight, viewed along N
                fixes.append(call.code(pos_weight=_view("pos_weight", _stripped(full)))
                             + f"   # if you meant a pos_weight per {varies}: it still scales the positives only")
            else:
                fixes.append(call.code(**{name: _view(name, _stripped(full))}) + f"   # varies along {varies}")
        two_class = _two_class_weight(call, operand) if name == "weight" else None
        if two_class is not None:
            why += two_class[0]
            fixes += two_class[1]
        return error_message(_head(name, operand, call.input), why=why, fixes=fixes)
    return None


def _two_class_weight(call: LossCall, weight: Tensor) -> tuple[str, list[str]] | None:
    """``weight=[w0, w1]`` read as the negative and the positive class's weights (pytorch#5157)."""
    if weight.ndim != 1 or weight.numel() != 2 or not weight.is_floating_point():
        return None
    w0, w1 = (float(v) for v in weight.detach().tolist())
    if w0 == w1 or w0 <= 0 or w1 <= 0:
        return None
    why = (f" Two values can also be class weights, {sig4(w0)} for the negatives and {sig4(w1)} for the positives "
           "(as CrossEntropyLoss takes them): BCE has no such argument, so write them per element, or as pos_weight "
           f"= {sig4(w1)} / {sig4(w0)} (the same balance, the loss 1/{sig4(w0)} times as large).")
    ratio = float_literal(w1 / w0)
    fixes = [call.code(weight=f"torch.where(target == 1, {float_literal(w1)}, {float_literal(w0)})")
             + "   # class weights: negatives, positives"]
    logits_form = call.as_with_logits()
    if not call.with_logits:
        fixes.append(f"{float_literal(w0)} * " + logits_form.code(input="logits", weight=None,
                                                                     pos_weight=f"torch.tensor([{ratio}])")
                     + "   # the same loss from the logits, before the sigmoid")
    else:
        fixes.append(f"{float_literal(w0)} * " + call.code(weight=None, pos_weight=f"torch.tensor([{ratio}])")
                     + "   # the same loss as one ratio")
    return why, fixes


def _pos_weight_along_space(call: LossCall) -> Verdict | None:
    """A 1-D ``pos_weight`` of length W (not C, not all equal) on an ``(N, C, ..., W)`` input: a ratio per column."""
    pos_weight, input = call.pos_weight, call.input
    if pos_weight is None or input.ndim < 3 or pos_weight.ndim != 1:
        return None
    length, channels = pos_weight.numel(), input.shape[1]
    if length < 2 or length != input.shape[-1] or length == channels:
        return None
    values = pos_weight.detach()
    if bool((values == values[0]).all()):
        return None
    names = dim_names(input.ndim)
    head = _head("pos_weight", pos_weight, input)
    why = (
        f"PyTorch lines up a 1-D pos_weight with the last axis, so it runs as one positive weight per "
        f"{names[-1]} position{' (image column)' if input.ndim == 4 else ''}: {names[-1]}={length}. A pos_weight is "
        f"a ratio of negatives to positives, which belongs to a class, a channel (C={channels} here), and on a "
        f"segmentation output a ratio per {'column' if input.ndim == 4 else 'position'} is almost never meant: "
        "the model learns a prior that depends on where an element sits. "
        "bceweights' loss accepts it as PyTorch does; the audit warns. If the values are counts per class:"
    )
    fixes = [call.code(pos_weight=f"(num_neg / num_pos).view({channels}{', 1' * (input.ndim - 2)})")
             + f"   # one ratio per channel, counts of shape ({channels},)",
             call.code(weight="pos_weight", pos_weight=None) + "   # if you meant a weight per column: it scales both terms"]
    return Verdict(error_message(head, why=why, fixes=fixes, lead="Write one of"))


def per_sample_pos_weight(call: LossCall, context: Context) -> str | Verdict | None:
    """A ``pos_weight`` along the batch axis by mistake: indexed by the labels, or one row repeated.

    A per-element ``pos_weight`` of the target's full shape is legitimate (PyTorch documents it), so
    a value that varies along the batch is reported only on evidence of a mistake: it follows the
    labels (an error), or every sample holds the same values (a warning: ``.repeat(N, 1)``).
    """
    pos_weight, input = call.pos_weight, call.input
    if pos_weight is None or not call.with_logits or input.ndim == 0 or input.shape[0] < 2:
        return None
    n = input.shape[0]
    padded = (1,) * (input.ndim - pos_weight.ndim) + tuple(pos_weight.shape)
    if len(padded) != input.ndim or padded[0] != n:
        return None
    label_indexed = _label_indexed(call, context)
    if label_indexed is not None:
        return label_indexed
    values = pos_weight.detach().reshape(padded)
    if not bool(torch.equal(values, values[:1].expand_as(values))):
        return None  # varies along the batch, not with the labels: per-element weights, as documented
    head = (
        f"pos_weight has shape {shape_str(pos_weight.shape)}, one value per sample along N={n}, for an input of "
        f"shape {shape_str(input.shape)} = {_named(tuple(input.shape))}."
    )
    why = (
        "Every sample holds the same values: one pos_weight repeated along the batch axis (as .repeat(N, 1) "
        "makes). The loss is right for this batch, but PyTorch raises on a last batch of another size, and the "
        "repeat hides which axis it weights."
    )
    row = _stripped(tuple(values.shape[1:]) or (1,))
    first = values[0].reshape(-1)
    varying = [size for size in row if size != 1]
    if len(varying) <= 1 and first.numel() <= 8:
        value = f"torch.tensor([{', '.join(float_literal(v) for v in first.tolist())}])"
        value += f".view({', '.join(str(size) for size in row)})" if len(row) > 1 else ""
    else:
        value = "pos_weight[0]"
    return Verdict(error_message(head, why=why, fixes=call.code(pos_weight=value) + "   # one value per channel"))


def _label_indexed(call: LossCall, context: Context) -> str | None:
    """pos_weight equal to one value on every positive and another on every negative (per channel for (N, C, ...))."""
    if not context.values_due:
        return None
    target = call.target.detach()
    try:
        pos_weight = call.pos_weight.detach().expand(target.shape)
    except RuntimeError:
        return None
    channels = target.shape[1] if target.ndim >= 2 else 1
    by_channel_w = pos_weight.reshape(target.shape[0], channels, -1).transpose(0, 1).reshape(channels, -1)
    by_channel_t = target.reshape(target.shape[0], channels, -1).transpose(0, 1).reshape(channels, -1)
    pairs: list[tuple[float | None, float | None]] = []
    for w, t in zip(by_channel_w, by_channel_t):
        positive, negative = w[t == 1], w[t == 0]
        if positive.numel() + negative.numel() != t.numel():
            return None  # soft targets: no label to index by
        on_pos = float(positive[0]) if positive.numel() else None
        on_neg = float(negative[0]) if negative.numel() else None
        if (on_pos is not None and not bool((positive == on_pos).all())) or \
                (on_neg is not None and not bool((negative == on_neg).all())):
            return None
        pairs.append((on_pos, on_neg))
    both = [(p, q) for p, q in pairs if p is not None and q is not None]
    if not both or all(p == q for p, q in both):
        return None
    shared = {p for p, _ in pairs if p is not None} | {q for _, q in pairs if q is not None} == set(both[0])
    pos_values = [p for p, _ in pairs]
    if channels == 1 or (shared and len({pair for pair in both}) == 1):
        on_pos, on_neg = both[0]
        follows = f"{sig4(on_pos)} on positives, {sig4(on_neg)} on negatives"
        ratio = f"torch.tensor([{float_literal(on_pos / on_neg) if on_neg > 0 else 'num_neg / num_pos'}])"
        pos_values = [on_pos]
        channels_shown = 1
    else:
        follows = "per channel, " + "; ".join(f"{sig4(p)} on positives, {sig4(q)} on negatives" for p, q in both[:3]) + \
            ("; ..." if len(both) > 3 else "")
        ratios = [float_literal(p / q) if p is not None and q is not None and q > 0 else "1.0" for p, q in pairs]
        ratio = f"torch.tensor([{', '.join(ratios)}])" + (f".view({channels}{', 1' * (target.ndim - 2)})"
                                                           if target.ndim > 2 else "")
        channels_shown = channels
    head = (f"pos_weight has shape {shape_str(call.pos_weight.shape)}, one value per sample, and follows the labels: "
            f"{follows} (class weights indexed by the label).")
    used = sig4(pos_values[0]) if channels_shown == 1 else "the positives' values"
    why = ("pos_weight multiplies only the positive term, so the negatives' value is never used: this is one "
           f"pos_weight of {used}, not the class weighting it looks like.")
    fixes = [call.code(weight="pos_weight", pos_weight=None) + "   # class weights per sample scale both terms",
             call.code(pos_weight=ratio) + "   # the same balance as one ratio"]
    return error_message(head, why=why, fixes=fixes)


# --------------------------------------------------------------------------------------------------
# the autograd graph


def _sigmoid_source(tensor: Tensor, context: Context) -> tuple[str, int] | None:
    """How we know ``tensor`` holds a sigmoid's output (a phrase for the message), and how many sigmoids in a row."""
    if tensor.grad_fn is not None:
        trace = trace_sigmoid(tensor.grad_fn, tensor.output_nr)
        if trace.kind != SIGMOID:
            return None
        through = f" through {', '.join(trace.path)}" if trace.path else ""
        return f"input.grad_fn leads to SigmoidBackward0{through}", trace.depth
    depth = context.saw_sigmoid(tensor)
    if depth:
        return "the audit saw torch.sigmoid produce it; there is no autograd graph", depth
    return None


def _stacked(depth: int) -> str:
    """A sentence for values that went through ``depth`` sigmoids in a row (empty for one)."""
    if depth < 2:
        return ""
    return (f" It went through {depth} sigmoids in a row: what went into the last one is itself a probability, so "
            "passing it on would still hand the with-logits loss a probability. The logits are what went into the "
            "first sigmoid.")


def double_sigmoid(call: LossCall, context: Context) -> str | None:
    """The with-logits loss gets probabilities: a sigmoid's output, or (no graph) values that look like them."""
    if not call.with_logits or not call.input.is_floating_point():
        return None
    found = _sigmoid_source(call.input, context)
    if found is None and call.input.grad_fn is None and not call.input.requires_grad and context.values_due:
        source = _looks_like_probabilities(call.input)
        found = (source, 1) if source is not None else None
    if found is None:
        return None
    source, depth = found
    head = f"The input of {call.name} is the output of a sigmoid ({source})."
    why = (
        "The with-logits loss applies its own sigmoid, so it scores sigmoid(sigmoid(x)), which stays between "
        "0.5 and 0.7311 whatever the model does: every element is scored at least 0.5 likely positive, the loss "
        "never approaches 0, and the gradient reaching the model is damped by both sigmoids' slopes." + _stacked(depth)
    )
    before = "every sigmoid" if depth > 1 else "the sigmoid"
    flagged = [rule for rule, check in (("misaligned-operand", misaligned_operand),
                                        ("per-sample-pos-weight", per_sample_pos_weight)) if check(call, context)]
    if flagged:  # the call's weights are wrong too: leave them out here, the other findings write them
        dropped = {name: None for name in ("weight", "pos_weight") if getattr(call, name) is not None}
        fix = (call.code(input="logits", **dropped) + f"   # logits: the model's output before {before}; then add "
               + " and ".join(dropped) + " as the " + " and ".join(flagged) + " fix writes it")
    else:
        fix = call.code(input="logits") + f"   # logits: the model's output before {before}"
    note = "(drop the model's final nn.Sigmoid(); apply torch.sigmoid(logits) only to read probabilities)"
    return error_message(head, why=why, fixes=fix, note=note)


def _looks_like_probabilities(input: Tensor) -> str | None:
    if input.numel() < PROBABILITY_MIN_NUMEL:
        return None
    low, high = (float(v) for v in torch.aminmax(input.detach()))
    if not (0.0 <= low and high <= 1.0 and high - low >= PROBABILITY_MIN_SPREAD):
        return None
    return (f"read from the values: there is no autograd graph, and all {input.numel()} values lie in [0, 1], "
            f"from {sig4(low)} to {sig4(high)}")


def sigmoid_then_bce(call: LossCall, context: Context) -> str | None:
    """``binary_cross_entropy`` on a sigmoid's output: the with-logits form is the stable one (Q12)."""
    if call.with_logits or not call.input.is_floating_point():
        return None
    found = _sigmoid_source(call.input, context)
    if found is None:
        return None
    source, depth = found
    dtype = call.input.dtype
    saturates = -math.log(torch.finfo(dtype).eps / 2)
    head = f"{call.name} gets the output of a sigmoid ({source})."
    why = (
        f"In {str(dtype).replace('torch.', '')} sigmoid(x) rounds to exactly 1 for x above about {saturates:.3g}, "
        "where BCE clamps log(1 - p) at -100: a confidently wrong negative then has loss 100 and gradient 0, "
        "so it is never corrected. The with-logits form computes the same loss from x without rounding."
    )
    if depth > 1:
        why += (f" Here there are {depth} sigmoids in a row, so BCE scores sigmoid(sigmoid(x)), which never leaves "
                "(0.5, 0.7311): what went into the last sigmoid is itself a probability, and passing it to the "
                "with-logits loss would be a double sigmoid. Walk back to the logits, before the first sigmoid.")
        fix = call.as_with_logits().code(input="logits") + "   # logits: what went into the first sigmoid; drop every sigmoid"
    else:
        fix = call.as_with_logits().code(input="logits") + "   # logits: what went into the sigmoid"
        if call.module is not None:
            fix += "; drop the nn.Sigmoid() before it"
    return error_message(head, why=why, fixes=fix)


# --------------------------------------------------------------------------------------------------
# the registry


Rule = Callable[[LossCall, Context], "str | Verdict | None"]

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
