"""Lesson 05's exercise: two-logit cross-entropy class weights as ``weight`` and ``pos_weight``."""

from __future__ import annotations

import math

from bceweights.lessons.exercises.answers import answer_number
from bceweights.lessons.explore.two_heads import class_weights_as_bce


#: Lesson 05: a two-logit cross-entropy model with class weights (negatives, positives).
LESSON05_CLASS_WEIGHTS = (0.5, 4.0)
LESSON05_QUESTION = (
    f"A binary segmenter trained with two logits and F.cross_entropy(..., weight=torch.tensor("
    f"[{LESSON05_CLASS_WEIGHTS[0]:g}, {LESSON05_CLASS_WEIGHTS[1]:g}]), reduction='none') is rewritten with "
    "one logit and bw.bce_with_logits(..., reduction='none'). Which weight and pos_weight give the same "
    "per-pixel losses?"
)


def check_lesson05(weight: float | None, pos_weight: float | None) -> bool:
    """Check the answer to lesson 05's exercise (see ``LESSON05_QUESTION``); print a verdict.

    Right: ``weight = w_neg = 0.5`` and ``pos_weight = w_pos / w_neg = 8`` (within 0.1 %). Names the
    usual slip (``pos_weight = w_pos``, forgetting that ``weight`` multiplies it). Returns True when right.
    """
    w_neg, w_pos = LESSON05_CLASS_WEIGHTS
    expected = class_weights_as_bce(LESSON05_CLASS_WEIGHTS)
    if weight is None or pos_weight is None:
        print("No answer yet: replace None with numbers for weight and pos_weight, then run the cell again.")
        return False
    values = []
    for name, answer in (("weight", weight), ("pos_weight", pos_weight)):
        value = answer_number(answer, expected=f"a number for {name}")
        if value is None:
            return False
        values.append(value)
    weight, pos_weight = values
    close = lambda a, b: math.isclose(a, b, rel_tol=1e-3)  # noqa: E731
    if close(weight, expected["weight"]) and close(pos_weight, expected["pos_weight"]):
        print(
            f"Correct: the negative term is scaled by weight = {weight:g} = w_neg, the positive term by "
            f"weight * pos_weight = {weight * pos_weight:g} = w_pos."
        )
        return True
    if close(weight, w_neg) and close(pos_weight, w_pos):
        print(
            f"Not yet: the positive term is scaled by weight * pos_weight = {weight * pos_weight:g}, not "
            f"{w_pos:g}. pos_weight is a ratio applied on top of weight."
        )
    elif close(weight, 1.0) and close(pos_weight, w_pos / w_neg):
        print(
            f"Not yet: the ratio is right, but with weight=1 every loss is {1 / w_neg:g} times the "
            "cross-entropy's. weight must carry the negative class weight."
        )
    else:
        print(
            "Not yet. Hint: in BCE the negative term is scaled by weight alone and the positive term by "
            "weight * pos_weight; match them to the two class weights."
        )
    return False
