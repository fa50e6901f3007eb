"""Lesson 03's exercises: the factor between ``reduction="mean"`` and ``"weighted_mean"``, a per-channel
``pos_weight`` for flattened logits, and where ``sigmoid`` saturates in bfloat16.

``check_lesson03`` and ``LESSON03_QUESTION`` are exercise 03.1 under its first name.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from bceweights.lessons.exercises.answers import answer_number, judge_number, no_answer_yet
from bceweights.lessons.exercises.registry import register, register_questionnaire
from bceweights.lessons.explore.stability import saturation_logit

#: 03.1: 5 % foreground, weights 20 and 0.5 (the lesson's explorer demonstrated 2 %, 50 and 1).
LESSON03_FOREGROUND = 0.05
LESSON03_WEIGHT_FG = 20.0
LESSON03_WEIGHT_BG = 0.5
LESSON03_QUESTION = (
    f"{LESSON03_FOREGROUND:.0%} of the pixels are foreground, with weight={LESSON03_WEIGHT_FG:g} on them and "
    f"{LESSON03_WEIGHT_BG:g} elsewhere. Switching from reduction='weighted_mean' to reduction='mean' multiplies "
    "the loss and every gradient by what factor?"
)


def check_lesson03(answer: float | None) -> bool:
    """Check the answer to lesson 03's exercise (see ``LESSON03_QUESTION``); print a verdict.

    ``mean`` divides the weighted sum by ``n``, ``weighted_mean`` by ``W = sum of weights``, so the
    factor is ``W / n = f w_fg + (1 - f) w_bg`` = 0.05 * 20 + 0.95 * 0.5 = 1.475 (within 0.01).
    Returns True when the answer is right.
    """
    f, w_fg, w_bg = LESSON03_FOREGROUND, LESSON03_WEIGHT_FG, LESSON03_WEIGHT_BG
    right = f * w_fg + (1 - f) * w_bg
    answer = answer_number(answer, expected="a number (the factor)")
    if answer is None:
        return False
    if abs(answer - right) <= 0.01:
        print(
            f"Correct: mean = S / n and weighted_mean = S / W, so mean = (W / n) * weighted_mean, and "
            f"W / n = {f:g} * {w_fg:g} + {1 - f:g} * {w_bg:g} = {right:.4g}: the mean weight. The same factor "
            "multiplies the gradient, so 'mean' with these weights is like a learning rate "
            f"{right:.4g} times larger."
        )
        return True
    if abs(answer - 1 / right) <= 0.01:
        print(
            f"Not yet: {answer:.4g} is the factor the other way round (from 'mean' to 'weighted_mean'). "
            "Which denominator is larger, n or the sum of the weights?"
        )
    elif abs(answer - w_fg) <= 0.01:
        print(
            f"Not yet: {answer:.4g} is the foreground weight. The denominators are n and the sum of the "
            "weights over all pixels, foreground and background."
        )
    elif abs(answer - w_fg / w_bg) <= 0.01:
        print(
            f"Not yet: {answer:.4g} is the ratio of the two weights, {w_fg:g} / {w_bg:g}; the factor is the mean "
            "weight, f * w_fg + (1 - f) * w_bg."
        )
    elif abs(answer - 1.0) <= 0.01:
        print(
            "Not yet: the two reductions agree only when the weights average 1. 'mean' divides by the "
            "number of elements, 'weighted_mean' by the sum of the weights."
        )
    else:
        print(
            f"Not yet: {answer:.4g}. Write both losses as S / n and S / W with S the weighted sum and W the "
            "sum of the weights; their ratio is W / n, the mean weight. Or set the explorer's sliders and "
            "divide its two loss readouts."
        )
    return False


def _solution_03_1() -> str:
    f, w_fg, w_bg = LESSON03_FOREGROUND, LESSON03_WEIGHT_FG, LESSON03_WEIGHT_BG
    return (
        f"with S the weighted sum over n pixels and W = n*({f:g}*{w_fg:g} + {1 - f:g}*{w_bg:g}) the sum of the weights, "
        f"mean = S / n and weighted_mean = S / W, so mean / weighted_mean = W / n = {f * w_fg + (1 - f) * w_bg:.4g}, "
        "the mean weight; every gradient is multiplied by the same factor."
    )


LESSON03_1_QUESTION = LESSON03_QUESTION
check_lesson03_1 = check_lesson03
register("03.1", LESSON03_1_QUESTION, check_lesson03_1, _solution_03_1, transfer=True)


#: 03.2: logits (2, 4, 5, 6) flattened with reshape(2, -1); one pos_weight per channel.
LESSON03_2_SHAPE = (2, 4, 5, 6)
LESSON03_2_VALUES = (0.5, 2.0, 3.0, 8.0)
LESSON03_2_QUESTION = (
    f"Logits of shape {LESSON03_2_SHAPE} (N, C, H, W) are flattened with logits.reshape(2, -1) to (2, 120), targets "
    f"alike. Write the pos_weight tensor that gives channel c the value {list(LESSON03_2_VALUES)}[c] in "
    "F.binary_cross_entropy_with_logits(flat_logits, flat_targets, pos_weight=...)."
)


def lesson03_2_expected() -> torch.Tensor:
    """The per-element pos_weight of the flattened logits, ``(2, 120)``."""
    n, c, h, w = LESSON03_2_SHAPE
    per_channel = torch.tensor(LESSON03_2_VALUES, dtype=torch.float64).view(1, c, 1, 1)
    return per_channel.expand(n, c, h, w).reshape(n, c * h * w)


def check_lesson03_2(pos_weight: Any) -> bool:
    """Exercise 03.2: the answer, broadcast against ``(2, 120)``, must equal the channel values in flattened order."""
    if pos_weight is None:
        no_answer_yet("a tensor")
        return False
    if not isinstance(pos_weight, torch.Tensor) or not pos_weight.is_floating_point():
        print("Not yet: pos_weight must be a floating-point tensor, e.g. torch.tensor([0.5, 2.0, 3.0, 8.0])....")
        return False
    n, c, h, w = LESSON03_2_SHAPE
    flat = torch.zeros(n, c * h * w)
    try:
        out = F.binary_cross_entropy_with_logits(flat, flat, pos_weight=pos_weight, reduction="none")
    except RuntimeError as error:
        hint = ""
        if pos_weight.ndim == 3 or tuple(pos_weight.shape) == (c,):
            hint = (
                f"\n{tuple(pos_weight.shape)} lined up with the 4-D logits; after the reshape there is no channel "
                "dimension left to meet: expand it to the logits' shape first, then flatten it the same way."
            )
        print(f"Not yet: PyTorch raises {str(error).strip().splitlines()[0]}{hint}")
        return False
    if tuple(out.shape) != (n, c * h * w):
        print(f"Not yet: PyTorch runs, but the loss grows to shape {tuple(out.shape)}, not (2, 120).")
        return False
    effective = torch.broadcast_to(pos_weight, (n, c * h * w)).to(torch.float64)
    expected = lesson03_2_expected()
    if torch.equal(effective, expected):
        print(
            f"Correct: shape {tuple(pos_weight.shape)} gives the first {h * w} elements of each row (channel 0) "
            f"{LESSON03_2_VALUES[0]:g}, the next {h * w} (channel 1) {LESSON03_2_VALUES[1]:g}, and so on: the order "
            "reshape(2, -1) puts the elements in."
        )
        return True
    tiled = torch.tensor(LESSON03_2_VALUES, dtype=torch.float64).repeat(h * w).expand(n, -1)
    if torch.equal(effective, tiled):
        print(
            "Not yet: .repeat(30) tiles the values (0.5, 2, 3, 8, 0.5, 2, ...), so neighbouring pixels of one channel "
            "get different values. reshape keeps each channel's 30 pixels together: use repeat_interleave(30), or "
            "expand to (4, 5, 6) and reshape."
        )
    else:
        print(
            "Not yet: the values do not follow the flattened order. Build the full weight with "
            "torch.tensor(values).view(4, 1, 1).expand(4, 5, 6) and reshape it like the logits."
        )
    return False


def _solution_03_2() -> str:
    return (
        "pos_weight = torch.tensor([0.5, 2.0, 3.0, 8.0]).repeat_interleave(5 * 6), shape (120,): reshape(2, -1) lays "
        "out channel 0's 30 pixels first, then channel 1's. Equivalently torch.tensor([...]).view(4, 1, 1)"
        ".expand(4, 5, 6).reshape(-1): expand before flattening, and reshape every tensor the same way."
    )


register("03.2", LESSON03_2_QUESTION, check_lesson03_2, _solution_03_2, transfer=True)


LESSON03_3_QUESTION = (
    "Training in bfloat16: from which logit x (to two decimals) does torch.sigmoid return exactly 1.0, so that "
    "sigmoid + BCELoss on a target-0 pixel sticks at the clamp? (The stability explorer has a bfloat16 setting.)"
)


def lesson03_3_answer() -> float:
    """The smallest logit on a 0.01 grid at which ``torch.sigmoid`` in bfloat16 returns 1.0 (this machine)."""
    return saturation_logit("bfloat16")


def check_lesson03_3(answer: float | None) -> bool:
    """Exercise 03.3: bfloat16 keeps 8 significant bits, so ``sigmoid`` rounds to 1 once ``1 - sigmoid(x) < 2**-9``.

    Accepts the measured saturation logit (about 6.24) or ``log(2**9 - 1) = 6.236``, within 0.05.
    """
    value = answer_number(answer, "a logit")
    if value is None:
        return False
    measured = lesson03_3_answer()
    theory = math.log(2.0**9 - 1.0)
    if abs(value - theory) <= 0.05:
        value = measured
    return judge_number(
        value,
        measured,
        correct=(
            f"from x = {measured:.4g} sigmoid rounds to 1 in bfloat16: 8 significant bits, so the largest number below 1 "
            f"is 1 - 2**-8, and 1 - sigmoid(x) < 2**-9 from x = log(2**9 - 1) = {theory:.4g}. Lower than float16's 8.3: "
            "bfloat16 trades precision for float32's range."
        ),
        slips=[
            (
                saturation_logit("float16"),
                "is float16's saturation logit, log(2**12 - 1) = 8.318 (11 significant bits). bfloat16 keeps 8.",
            ),
            (saturation_logit("float32"), "is float32's saturation logit."),
            (
                math.log(2.0**8 - 1.0),
                "is log(2**8 - 1): it counts bfloat16's 7 stored bits. With the implicit leading bit it keeps 8 "
                "significant bits, so sigmoid rounds to 1 once 1 - sigmoid(x) < 2**-9.",
            ),
            (88.72, "is where exp overflows in float32 and bfloat16 (same range); saturation comes much earlier."),
        ],
        otherwise=(
            "is not it. sigmoid(x) becomes 1.0 once 1 - sigmoid(x), about exp(-x), is below half the gap between 1 and "
            "the largest bfloat16 below 1 (2**-8); or set the stability explorer's dtype to bfloat16 and read it."
        ),
        abs_tol=0.05,
    )


def _solution_03_3() -> str:
    return (
        f"bfloat16 has 8 significant bits: the largest value below 1 is 1 - 2**-8, and sigmoid(x) rounds to 1 when "
        f"1 - sigmoid(x) < 2**-9, i.e. x > log(2**9 - 1) = {math.log(2.0**9 - 1.0):.4g}. torch measures "
        f"{lesson03_3_answer():.4g} (the logit itself is rounded to bfloat16 too). Code: "
        "x = torch.arange(0, 20, 0.01); x[(torch.sigmoid(x.bfloat16()) == 1).nonzero()[0]] (the first logit, "
        "not its index)."
    )


register("03.3", LESSON03_3_QUESTION, check_lesson03_3, _solution_03_3, transfer=True)


#: 03.4 (a repair): the loss of a float16 model written as sigmoid + BCELoss; the learner writes the fix.
LESSON03_4_LOGITS = (-40.0, -3.0, 0.5, 9.0, 14.0, 20.0)
LESSON03_4_TARGETS = (1.0, 0.0, 1.0, 0.0, 1.0, 0.0)
LESSON03_4_QUESTION = (
    "A model trained in float16 computes its loss as\n"
    "    loss = F.binary_cross_entropy(torch.sigmoid(logits), target)\n"
    "and its gradients turn NaN. Repair it: write a function fixed_loss(logits, target) that returns the same "
    "loss (mean over elements) with a finite, correct gradient. The checker calls it on float16 logits "
    f"{list(LESSON03_4_LOGITS)} with targets {list(LESSON03_4_TARGETS)}, and compares loss and gradient with the "
    "exact values. Answer with the function itself, e.g. my_loss = fixed_loss."
)


def lesson03_4_reference() -> tuple[float, torch.Tensor]:
    """The exact mean loss and its gradient for the exercise's logits (float64, ``sigmoid(x) - y`` over n)."""
    x = torch.tensor(LESSON03_4_LOGITS, dtype=torch.float64)
    y = torch.tensor(LESSON03_4_TARGETS, dtype=torch.float64)
    loss = (y * F.softplus(-x) + (1 - y) * F.softplus(x)).mean()
    return float(loss), (torch.sigmoid(x) - y) / len(x)


def check_lesson03_4(fixed_loss: Any) -> bool:
    """Exercise 03.4: the learner's function must give the exact loss (0.5 %) and gradient (0.002) on float16 logits."""
    if fixed_loss is None:
        no_answer_yet("your function, e.g. fixed_loss (no parentheses)")
        return False
    if not callable(fixed_loss):
        print(f"Expected a function taking (logits, target), got {fixed_loss!r}.")
        return False
    logits = torch.tensor(LESSON03_4_LOGITS, dtype=torch.float16, requires_grad=True)
    target = torch.tensor(LESSON03_4_TARGETS, dtype=torch.float16)
    try:
        loss = fixed_loss(logits, target)
        (gradient,) = torch.autograd.grad(loss, logits)
    except Exception as error:  # any failure of the learner's code is reported, not raised
        print(f"Not yet: calling fixed_loss(logits, target) and its backward raised {type(error).__name__}: {error}")
        return False
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        print("Not yet: fixed_loss should return one number, the mean loss, as a tensor (reduction='mean').")
        return False
    right_loss, right_gradient = lesson03_4_reference()
    value, gradient = float(loss.detach()), gradient.detach().double()
    if not torch.isfinite(gradient).all():
        print(
            f"Not yet: the gradient has NaN at logits {[x for x, g in zip(LESSON03_4_LOGITS, gradient.tolist()) if g != g]}."
            " sigmoid still rounds to exactly 0 or 1 there, and BCELoss's backward divides by p(1 - p) = 0: "
            "do not build sigmoid(x) at all."
        )
        return False
    wrong = [x for x, g, r in zip(LESSON03_4_LOGITS, gradient.tolist(), right_gradient.tolist()) if abs(g - r) > 2e-3]
    if wrong:
        print(
            f"Not yet: the gradient is finite but wrong at logits {wrong} (exact: (sigmoid(x) - y) / {len(LESSON03_4_LOGITS)})."
            " Casting to float32 moves the saturation to 16.6 and the 1e-12 guard to -27.6, but does not remove them:"
            " use the logits form."
        )
        return False
    if abs(value - right_loss) > 5e-3 * right_loss:
        print(f"Not yet: the gradient is right but the loss is {value:.4g}, the exact mean is {right_loss:.4g}.")
        return False
    print(
        f"Correct: loss {value:.4g} (exact {right_loss:.4g}) and every gradient within 0.002 of (sigmoid(x) - y) / 6. "
        "The logits form computes log sigmoid(x) as -softplus(-x) and never rounds sigmoid(x) to 0 or 1."
    )
    return True


def _solution_03_4() -> str:
    return (
        "def fixed_loss(logits, target): return F.binary_cross_entropy_with_logits(logits, target). It takes the "
        "logits, computes -log sigmoid(x) as softplus(-x), and its gradient is (sigmoid(x) - y) / n at every logit, "
        "in float16 too. F.binary_cross_entropy(torch.sigmoid(logits.float()), target.float()) is not enough: float32 "
        "still saturates at 16.6 (the logit 20) and its 1e-12 guard shrinks the gradient below -27.6 (the logit -40)."
    )


register("03.4", LESSON03_4_QUESTION, check_lesson03_4, _solution_03_4)


#: Lesson 03's questionnaire: (question, answer).
LESSON03_QUESTIONNAIRE = (
    ("Does reshaping (N, C, H, W) logits to (N*C*H*W, 1) change the loss or its gradient?",
     "No, as long as targets and weights are reshaped the same way (and broadcast weights are expanded first): "
     "the loss is elementwise and 'mean' divides by the same number of elements."),
    ("What does reduction='mean' divide the weighted sum by?",
     "The number of elements, not the sum of the weights; so the weights' overall scale multiplies the loss and "
     "every gradient."),
    ("You multiply every weight by 10 and train with plain SGD. What changes under 'mean', 'sum' and 'weighted_mean'?",
     "'mean' and 'sum': the loss and every gradient grow 10 times, like a 10 times larger learning rate. "
     "'weighted_mean': nothing."),
    ("Which reduction's step grows with the image size at a fixed foreground share?",
     "'sum'; 'mean' and 'weighted_mean' do not change with the number of pixels."),
    ("Why can't you pass a new weight to nn.BCELoss on every call? What do you use instead?",
     "Its forward has no weight argument: the weight is fixed when the module is built. Use "
     "F.binary_cross_entropy_with_logits(..., weight=w) or bw.BCEWithLogits()(x, y, weight=w)."),
    ("From which logit does sigmoid round to exactly 1 in float32, and in float16?",
     "About 16.6 in float32: torch computes 1 / (1 + exp(-x)), and 1 + exp(-x) rounds to 1 once exp(-x) < "
     "2**-24, from 24 * log(2) = 16.64 (the true sigmoid rounded to float32 would wait until log(2**25 - 1) = "
     "17.33). About 8.3 in float16, computed in float32 and then rounded: 1 - sigmoid(x) below half the gap "
     "under 1, 2**-12, from log(2**12 - 1) = 8.318. Beyond it sigmoid + BCELoss sticks at "
     "the clamp with a zero (float32) or NaN (float16) gradient."),
    ("Why does sigmoid + BCELoss give a wrong gradient at logit -40 with target 1 in float32, although "
     "sigmoid(-40) is a normal float?",
     "BCELoss's backward divides by max(p(1 - p), 1e-12); below about -27.6 the guard wins and the gradient "
     "shrinks like e**x * 1e12 instead of staying near -1."),
    ("Why does one saturated element in float16 make a layer's whole weight gradient NaN?",
     "A weight's gradient sums over all elements, and one NaN in a sum makes the sum NaN."),
)
register_questionnaire("03", LESSON03_QUESTIONNAIRE)
