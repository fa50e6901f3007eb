"""Lesson 04's exercise: the threshold on an unweighted model that matches ``pos_weight=9``."""

from __future__ import annotations

from bceweights.lessons.exercises.answers import answer_number
from bceweights.lessons.explore.threshold import matching_threshold


#: Lesson 04: a model trained *without* pos_weight; which threshold on its probability gives the
#: operating point that retraining with ``pos_weight=9`` gives at threshold 0.5?
LESSON04_POS_WEIGHT = 9.0
LESSON04_TOLERANCE = 5e-3
LESSON04_QUESTION = (
    f"A colleague retrains your model with pos_weight={LESSON04_POS_WEIGHT:g} and thresholds its "
    "probability at 0.5. Which threshold on the probability of your unweighted model gives (nearly) "
    "the same operating point, without retraining?"
)


def check_lesson04(answer: float | None) -> bool:
    """Check the answer to lesson 04's exercise (see ``LESSON04_QUESTION``); print a verdict.

    Accepts a threshold within 0.005 of ``1 / (1 + 9) = 0.1`` and names the usual slips (moving the
    threshold up, using ``1 / p``, or ``log p``). Returns True when the answer is right.
    """
    p = LESSON04_POS_WEIGHT
    right = matching_threshold(p)
    value = answer_number(answer, "a threshold between 0 and 1")
    if value is None:
        return False
    if not 0.0 < value < 1.0:
        print(f"{value:.4g} is not a usable threshold: a threshold on a probability lies between 0 and 1.")
        return False
    close = lambda a, b: abs(a - b) <= LESSON04_TOLERANCE  # noqa: E731
    if close(value, right):
        print(
            f"Correct: pos_weight={p:g} adds log {p:g} to every logit, so sigmoid(x + log {p:g}) >= 0.5 is "
            f"x >= -log {p:g}, i.e. sigmoid(x) >= 1 / (1 + {p:g}) = {right:.4g}."
        )
        return True
    if close(value, 1.0 - right):
        print(
            f"Not yet: {value:.4g} moves the threshold the wrong way. pos_weight > 1 makes the model say "
            "'positive' more often; to match it, lower the threshold of the unweighted model."
        )
    elif close(value, 1.0 / p):
        print(
            f"Not yet: {value:.4g} = 1/p is close but not it. Solve sigmoid(x + log p) = 0.5 for "
            "sigmoid(x): the odds s / (1 - s) must equal 1/p."
        )
    else:
        print(
            f"Not yet: {value:.4g} is not it. pos_weight p shifts every logit by log p; find the probability "
            "sigmoid(x) at which the shifted logit x + log p is 0 (or set the explorer's pos_weight and "
            "read 'same point on the unweighted model')."
        )
    return False
