"""Lesson 01's exercise: where ``weight`` and ``pos_weight`` put the optimum.

    from bceweights.lessons.exercises import LESSON01_QUESTION, check_lesson01
    _ = check_lesson01(0.31)
"""

from __future__ import annotations

from bceweights.lessons.exercises.answers import answer_number
from bceweights.weights import optimal_probability

#: Lesson 01: a model trained with ``weight=3`` and ``pos_weight=4``, on inputs where a fraction
#: ``q = 0.1`` is positive. What probability does the well-trained model predict for them?
LESSON01_WEIGHT = 3.0
LESSON01_POS_WEIGHT = 4.0
LESSON01_FREQUENCY = 0.1
LESSON01_TOLERANCE = 5e-3

LESSON01_QUESTION = (
    f"A model is trained with weight={LESSON01_WEIGHT:g} and pos_weight={LESSON01_POS_WEIGHT:g}. Among "
    f"inputs that look alike, a fraction q={LESSON01_FREQUENCY:g} is positive. What probability does "
    "the well-trained model predict for them?"
)


def _is_close(answer: float, value: float) -> bool:
    return abs(answer - value) <= LESSON01_TOLERANCE


def check_lesson01(answer: float | None) -> bool:
    """Check the answer to lesson 01's exercise (see ``LESSON01_QUESTION``); print a verdict.

    Accepts a probability within 0.005 of ``p*q / (p*q + 1 - q)`` for ``p = 4``, ``q = 0.1``.
    Recognises the usual slips (answering ``q``, or folding ``weight`` into ``pos_weight``) and says
    what went wrong. Returns True when the answer is right.
    """
    p, q, w = LESSON01_POS_WEIGHT, LESSON01_FREQUENCY, LESSON01_WEIGHT
    right = float(optimal_probability(q, p))
    answer = answer_number(answer, "a number between 0 and 1", "a probability (a number between 0 and 1)")
    if answer is None:
        return False
    if not 0.0 <= answer <= 1.0:
        print(f"{answer:.4g} is not a probability: the model's output sigmoid(x) lies between 0 and 1.")
        return False
    if _is_close(answer, right):
        print(
            f"Correct: p*q / (p*q + 1 - q) = {p * q:.4g} / {p * q + 1 - q:.4g} = {right:.4g}. "
            f"weight={w:g} does not move the optimum (it scales both terms, so it cancels where the "
            "gradient is zero); it only scales the gradient."
        )
        return True
    if _is_close(answer, q):
        print(
            f"Not yet: {answer:.4g} is q itself, what a model trained without pos_weight predicts. "
            f"pos_weight={p:g} multiplies the positive term, so the optimum moves up."
        )
    elif _is_close(answer, float(optimal_probability(q, w * p))):
        print(
            f"Not yet: {answer:.4g} is what pos_weight={w * p:g} would give. weight multiplies both "
            "terms, so it does not change where the gradient is zero: use pos_weight alone."
        )
    elif _is_close(answer, p * q):
        print(
            f"Not yet: {answer:.4g} = p*q is the positive term's share before normalising. Set the "
            "gradient w*[(1 - q)*s - p*q*(1 - s)] to zero and solve for s = sigmoid(x)."
        )
    else:
        print(
            f"Not yet: {answer:.4g} is not the optimum. Set the gradient w*[(1 - q)*s - p*q*(1 - s)] to "
            "zero and solve for s = sigmoid(x); or set the explorer's y and pos_weight and read the "
            "optimal probability."
        )
    return False
