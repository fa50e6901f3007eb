"""Lesson 03's exercise: the factor between ``reduction="mean"`` and ``"weighted_mean"``."""

from __future__ import annotations

from bceweights.lessons.exercises.answers import answer_number


#: 2 % foreground, weights 50 (foreground, about the negative/positive ratio of 49) and 1 (background).
LESSON03_FOREGROUND = 0.02
LESSON03_WEIGHT_FG = 50.0
LESSON03_WEIGHT_BG = 1.0
LESSON03_QUESTION = (
    f"{LESSON03_FOREGROUND:.0%} of the pixels are foreground, with weight={LESSON03_WEIGHT_FG:g} on them and "
    f"{LESSON03_WEIGHT_BG:g} elsewhere. Switching from reduction='weighted_mean' to reduction='mean' multiplies "
    "the loss and every gradient by what factor?"
)


def check_lesson03(answer: float | None) -> bool:
    """Check the answer to lesson 03's exercise (see ``LESSON03_QUESTION``); print a verdict.

    ``mean`` divides the weighted sum by ``n``, ``weighted_mean`` by ``W = sum of weights``, so the
    factor is ``W / n = f w_fg + (1 - f) w_bg`` = 0.02 * 50 + 0.98 = 1.98 (within 0.01).
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
