"""The audit's rules that read values: ``target-out-of-range``, ``diluted-mean``, ``invalid-weight-values``.

Each reads one :class:`~bceweights.audit.calls.LossCall` (on the sample of calls whose values are due,
see :mod:`bceweights.audit.session`) and returns None, a message (an error), or a
:class:`~bceweights.audit.verdict.Verdict` (a warning). Every fix a message proposes is a line that
runs on the names it uses (``input``, ``target``, ``weight``, ``pos_weight``, and for a mask that was
multiplied in, ``logits``, ``mask``; for counts, ``num_neg``, ``num_pos``); the tests run each one.

Imports: :mod:`bceweights.messages`, :mod:`bceweights.audit.calls`, :mod:`bceweights.audit.verdict`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from bceweights.audit.calls import LossCall
from bceweights.audit.verdict import Context, Verdict, sig4
from bceweights.messages import error_message

#: ``diluted-mean`` fires when the weight (or, multiplied in, the input) is 0 on more than this share.
DILUTED_SHARE = 0.5
#: ``target-out-of-range`` offers the readings of a label format when the target holds at most this many values.
FORMAT_VALUES = 3

_LOG2 = math.log(2.0)
#: The denominator of a weighted mean, written so that a batch whose weights are all 0 gives 0, not NaN:
#: ``torch.where(w_sum > 0, w_sum, 1)`` divides by the true sum whenever it is positive (and by 1 when the
#: weighted sum above it is 0 too). ``.clamp_min(1)`` is right only for a count: on soft weights summing to
#: less than 1 it would change the value. One expression (``:=``), so that each fix stays one line.
_GUARDED_SUM = "torch.where((w_sum := {}.sum()) > 0, w_sum, 1)"


# --------------------------------------------------------------------------------------------------
# target-out-of-range


def _literal(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else sig4(value)


def _diluted(call: LossCall) -> bool:
    """Whether ``diluted-mean`` reads this call's weight: a mean over a weight that is 0 on most elements."""
    weight = call.weight
    return (call.reduction == "mean" and weight is not None and weight.numel() > 0
            and float((weight.detach() == 0).sum()) / weight.numel() > DILUTED_SHARE)


def _void_fixes(call: LossCall, ignore: str, keep: str, comment: str) -> list[str]:
    """The fixes that leave the void elements out: the mean over the elements kept.

    With a weight, an element with a weight of 0 is left out as well: the denominator counts the
    elements kept whose weight is nonzero, ``sum(weight * loss) / count(keep & weight > 0)``, so that
    the fix does not hide the dilution ``diluted-mean`` reports (a weight that is a 0/1 mask gives the
    mean over the elements both keep). The count is clamped to 1: a batch with no element kept gives 0
    (its weighted sum is 0), not 0 / 0 = NaN. When ``diluted-mean`` reads the same call, the weighted mean
    ``sum(weight * loss) / sum(weight)`` over the kept elements is offered too.
    """
    weighted = call.weight is not None
    count = f"(({keep}) * weight > 0)" if weighted else f"({keep})"
    fixes = [
        call.code(target=f"target.masked_fill({ignore}, 0)", weight=f"({keep}).to(input.dtype)"
                  + (" * weight" if weighted else ""), reduction="sum")
        + f" / {count}.expand_as(input).sum().clamp_min(1)   # {comment}"
    ]
    if call.with_logits:
        pos_weight = ", pos_weight=pos_weight" if call.pos_weight is not None else ""
        if weighted:
            fixes.append(f"bw.bce_with_logits(input, target, weight=weight{pos_weight}, ignore=({ignore}) | (weight == 0))"
                         "   # bceweights: the same mean over the kept elements")
            if _diluted(call):
                fixes.append(f"bw.bce_with_logits(input, target, weight=weight{pos_weight}, ignore={ignore}, "
                             'reduction="weighted_mean")   # bceweights: the weighted mean over the kept elements '
                             "(the diluted-mean fix too)")
        else:
            fixes.append(f"bw.bce_with_logits(input, target{pos_weight}, ignore={ignore})   # bceweights: "
                         "the same mean over the kept elements")
    return fixes


def _label_format(call: LossCall, values: list[float], outside: list[float]) -> tuple[str, list[str]] | None:
    """For a target with two or three values (0/255, 0/1/255, -1/1, -1/0/1): the readings, and the fixes."""
    inside = [v for v in values if 0 <= v <= 1]
    if len(outside) != 1 or not set(inside) <= {0.0, 1.0}:
        return None
    v = outside[0]
    shown = ", ".join(_literal(x) for x in values[:-1]) + " and " + _literal(values[-1])
    ignore, keep = f"target == {_literal(v)}", f"target != {_literal(v)}"
    if v > 1 and 1.0 not in inside:
        why = (f"The target holds only {shown}. Two readings: (1) a 0/{_literal(v)} mask, as image files store masks: "
               f"{_literal(v)} marks the positives, and target / {_literal(v)} gives the 0/1 targets BCE expects; "
               f"(2) {_literal(v)} marks void pixels to leave out, but then no element is positive and the loss only "
               f"teaches that nothing is there. The data suggests (1): no element holds 1.")
        fixes = [call.code(target=f"target / {_literal(v)}") + f"   # (1) {_literal(v)} marks the positives: what the data suggests"]
        fixes += _void_fixes(call, ignore, keep, f"(2) {_literal(v)} marks void elements")
        return why, fixes
    if v > 1:
        why = (f"The target holds {shown}. Two readings: (1) {_literal(v)} marks void pixels (unlabelled or unsure) to "
               f"leave out of the loss; (2) a 0/{_literal(v)} mask to divide by {_literal(v)}, but that turns every 1 into "
               f"{sig4(1 / v)}, a near-negative. The data suggests (1): 1 already marks the positives.")
        return why, _void_fixes(call, ignore, keep, f"(1) {_literal(v)} marks void elements: what the data suggests")
    if v == -1 and 0.0 not in inside:
        why = (f"The target holds only {shown}. Two readings: (1) labels in {{-1, 1}}, as SVM-style code writes them: -1 "
               "is a negative, and (target + 1) / 2 gives the 0/1 targets BCE expects; (2) -1 marks void elements to "
               "leave out, but then no element is negative. The data suggests (1): no element holds 0.")
        fixes = [call.code(target="(target + 1) / 2") + "   # (1) -1 is a negative: what the data suggests"]
        fixes += _void_fixes(call, ignore, keep, "(2) -1 marks void elements")
        return why, fixes
    if v == -1:
        why = (f"The target holds {shown}. Two readings: (1) -1 marks void elements to leave out of the loss; (2) labels "
               "in {-1, 1} to map with (target + 1) / 2, but that turns every 0 into 0.5, a target of no class. The "
               "data suggests (1): 0 already marks the negatives.")
        return why, _void_fixes(call, ignore, keep, "(1) -1 marks void elements: what the data suggests")
    return None


def target_out_of_range(call: LossCall, context: Context) -> str | None:
    """Targets outside [0, 1]: void labels (255, -1), or a label format (0/255, -1/1) BCE does not read."""
    if not context.values_due or call.target.dtype == torch.bool:
        return None
    target = call.target.detach()
    if not target.is_floating_point():
        target = target.double()
    outside = ~((target >= 0) & (target <= 1))
    all_outside = int(outside.sum())
    if call.weight is not None and all_outside:
        try:  # a finite void label under a weight of 0 adds nothing and sends no gradient: the RCF-style idiom
            silenced = (call.weight.detach() == 0).expand(target.shape) & torch.isfinite(target)
            outside = outside & ~silenced
        except RuntimeError:
            pass
    count = int(outside.sum())
    if count == 0:
        return None
    values = torch.unique(target[outside])
    finite = values[torch.isfinite(values)]
    share = count / target.numel()
    shown = ", ".join(sig4(v) for v in values[:4].tolist()) + (", ..." if values.numel() > 4 else "")
    silenced = (f" with a nonzero weight ({all_outside - count} more lie under a weight of 0, which leaves them out)"
                if all_outside > count else "")
    head = (f"target holds values outside [0, 1]: {shown} on {count} of {target.numel()} elements "
            f"({share:.2%}){silenced}.")
    example = float(finite.max()) if finite.numel() else 255.0
    scored = (
        f"BCE reads a target of {sig4(example)} as {sig4(example)} times a positive and {sig4(1 - example)} times a "
        f"negative: its loss has no minimum there (it falls without bound as the logit moves) and its gradient "
        f"sigmoid(x) - ({sig4(example)}) never vanishes."
    )
    if values.numel() == finite.numel() and values.numel() == 1:
        distinct = torch.unique(target)
        if distinct.numel() <= FORMAT_VALUES:
            reading = _label_format(call, [float(v) for v in distinct.tolist()], [float(v) for v in values.tolist()])
            if reading is not None:
                why, fixes = reading
                return error_message(head, why=why + " As it stands, " + scored, fixes=fixes)
    single = values.numel() == 1 and finite.numel() == 1
    keep = f"target != {_literal(example)}" if single else "(target >= 0) & (target <= 1)"
    ignore = f"target == {_literal(example)}" if single else f"~({keep})"
    why = scored + " Void or ignore labels must be left out of the loss, not passed as targets."
    return error_message(head, why=why, fixes=_void_fixes(call, ignore, keep, "the mean over the kept elements"))


# --------------------------------------------------------------------------------------------------
# diluted-mean


_DESIGN = "a design choice, not necessarily a bug (lesson 07, section 1)"


def _diluted_weight(call: LossCall) -> Verdict | None:
    weight = call.weight
    if not _diluted(call):
        return None
    zero_share = float((weight.detach() == 0).sum()) / weight.numel()
    numel = call.input.numel()
    kept = round(numel * (1 - zero_share))
    head = (f'reduction="mean" with a weight that is 0 on {zero_share:.1%} of the elements '
            f"({numel - kept} of {numel}): the mean divides by all {numel}.")
    factor = f"{numel / kept:.3g}x smaller than" if kept else "0, whatever"
    why = (
        f"That is {_DESIGN}, with this consequence: each kept element's gradient is its weight times its slope "
        f"sigmoid(x) - y, divided by {numel} whatever the mask, so every labelled element takes the same step; the "
        f"loss value is the mean over the {kept} kept elements times their share ({sig4(kept / numel)}), so it is "
        f"{factor} that mean and rises and falls with each batch's labelled share. If you meant the mean over the "
        "kept elements (each batch counting the same, as CrossEntropyLoss(ignore_index=...) averages):"
    )
    fixes = [
        call.code(reduction="sum") + f" / {_GUARDED_SUM.format('weight.expand_as(input)')}   # the weighted mean",
        "bw.bce_with_logits(input, target, weight=weight" + (", pos_weight=pos_weight" if call.pos_weight is not None
                                                            else "") + ', reduction="weighted_mean")   # bceweights',
    ]
    if bool(((weight == 0) | (weight == 1)).all()):
        fixes.append("bw.bce_with_logits(input, target" + (", pos_weight=pos_weight" if call.pos_weight is not None
                                                           else "") + ", ignore=weight == 0)   # a 0/1 mask: the same")
    return Verdict(error_message(head, why=why, fixes=fixes if call.with_logits else fixes[:1],
                                 lead="Write one of"))


def _diluted_input(call: LossCall) -> Verdict | None:
    """Input and target multiplied by a mask (MONAI-style): most input elements exactly 0 where the target is 0."""
    input, target = call.input.detach(), call.target.detach()
    if not input.is_floating_point() or input.shape != target.shape or input.numel() < 2:
        return None
    zeros = input == 0
    masked = int(zeros.sum())
    numel = input.numel()
    if masked / numel <= DILUTED_SHARE or masked == numel or bool((target[zeros] != 0).any()):
        return None
    share = masked / numel
    head = (f"The input is exactly 0 on {share:.1%} of the elements ({masked} of {numel}), and the target is 0 on "
            f'every one of them: input and target look multiplied by a mask, and reduction="mean" divides by all {numel}.')
    why = (
        f"As with a mask passed as weight, that is {_DESIGN}, with this consequence: the product sends no gradient "
        f"to the masked elements, each kept element's gradient is its slope divided by {numel} whatever the mask, "
        f"and the loss value rises and falls with each batch's masked share."
    )
    if call.with_logits:
        why += (f" With logits there is more: a logit of 0 against a target of 0 costs log 2 = 0.6931, so the masked "
                f"elements add 0.6931 x {sig4(share)} = {sig4(_LOG2 * share)} to this loss, a floor that no training "
                "lowers and that moves with the mask.")
    else:
        why += (" A probability of 0 against a target of 0 costs 0, so the value is the mean over the kept elements "
                f"times their share, {sig4(1 - share)}.")
    name = "logits" if call.with_logits else "probabilities"
    why += (f" Pass the mask instead of multiplying by it ({name} and target as they were before the product): "
            f"weight=mask with the same mean keeps today's steps{' without the floor' if call.with_logits else ''}; "
            "if you meant the mean over the kept elements:")
    fixes = [call.code(input="logits", weight="mask", reduction="sum")
             + f" / {_GUARDED_SUM.format('mask.expand_as(logits)')}   # the mean over the kept elements"]
    if call.with_logits:
        fixes.append("bw.bce_with_logits(logits, target, ignore=mask == 0)   # bceweights: the same mean")
    else:
        fixes[0] = fixes[0].replace("logits", "probabilities")
    return Verdict(error_message(head, why=why, fixes=fixes, lead="Write one of"))


def diluted_mean(call: LossCall, context: Context) -> Verdict | None:
    """``reduction="mean"`` over elements a mask zeroed: in ``weight``, or multiplied into input and target.

    A warning, not an error: dividing by every element keeps each labelled element's step fixed, which
    can be meant (lesson 07, section 1); the message states what it does to the loss value.
    """
    if call.reduction != "mean" or not context.values_due:
        return None
    return _diluted_weight(call) or _diluted_input(call)


# --------------------------------------------------------------------------------------------------
# invalid-weight-values


def invalid_weight_values(call: LossCall, context: Context) -> str | None:
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
        if nonfinite and name == "pos_weight":
            why = (
                "An infinite pos_weight is what num_neg / num_pos gives for a label with no positive (NaN: 0 / 0), and "
                "it makes the loss NaN. Replacing it by 0 (nan_to_num(posinf=0)) would give that label's positives no "
                "weight at all, the opposite of the intent. Fix the count instead: a label with no positive in the "
                "counts has none in the batch either, so its pos_weight changes nothing there once it is finite."
            )
            fixes = [call.code(pos_weight="num_neg / num_pos.clamp_min(1)") + "   # counted once, over the whole data set",
                     call.code(input="input[:, seen]", target="target[:, seen]", pos_weight="pos_weight[seen]")
                     + "   # seen = num_pos > 0: drops the labels with no positive from training, negatives too"]
        elif nonfinite:
            why = ("An infinite weight is what 1 / count gives for a class or sample counted 0 times (NaN: 0 / 0), and it "
                   "makes the loss NaN. Setting it to 0 would silence exactly what the weight meant to stress. Fix the "
                   "count instead:")
            fixes = [call.code(weight="total / count.clamp_min(1)") + "   # e.g. total / count, with the count kept >= 1"]
        else:
            why = ("A negative weight turns descent into ascent on its elements: the loss has no minimum there. Find "
                   "where it goes negative (1 - share, a log of a ratio); clamping it is right only for a rounding slip:")
            fixes = [call.code(**{name: f"{name}.clamp_min(0)"}) + "   # only if the negative values are rounding slips"]
        return error_message(head, why=why, fixes=fixes)
    return None
