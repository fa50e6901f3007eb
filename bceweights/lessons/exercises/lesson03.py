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
from bceweights.lessons.exercises.registry import register
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
    elif abs(answer - w_fg) <= 0.01 or abs(answer - w_fg / w_bg) <= 0.01:
        print(
            f"Not yet: {answer:.4g} is the foreground weight. The denominators are n and the sum of the "
            "weights over all pixels, foreground and background."
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
            (saturation_logit("float16"), "is float16's saturation logit. bfloat16 has fewer significant bits (8 vs 11)."),
            (saturation_logit("float32"), "is float32's saturation logit."),
            (math.log(2.0**11 - 1.0), "is log(2**11 - 1), float16's bits; bfloat16 keeps 8 significant bits."),
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
        "(torch.sigmoid(torch.arange(0, 20, 0.01).bfloat16()) == 1).nonzero()[0]."
    )


register("03.3", LESSON03_3_QUESTION, check_lesson03_3, _solution_03_3, transfer=True)
