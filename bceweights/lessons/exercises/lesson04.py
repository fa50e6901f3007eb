"""Lesson 04's exercises: the threshold that matches ``pos_weight=9``, balanced class weights from counts,
and the output bias to start training at.

``check_lesson04`` and ``LESSON04_QUESTION`` are exercise 04.1 under its first name.
"""

from __future__ import annotations

import math

from bceweights.lessons.exercises.answers import answer_number, judge_number
from bceweights.lessons.exercises.registry import register
from bceweights.lessons.explore.threshold import matching_threshold
from bceweights.weights import optimal_logit


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


def _solution_04_1() -> str:
    p = LESSON04_POS_WEIGHT
    return (
        f"retraining with pos_weight={p:g} shifts every logit by about log {p:g}. The retrained model says 'positive' "
        f"where x + log {p:g} >= 0, i.e. x >= -log {p:g}, i.e. sigmoid(x) >= 1 / (1 + {p:g}) = {matching_threshold(p):.4g} "
        "on the unweighted model."
    )


LESSON04_1_QUESTION = LESSON04_QUESTION
check_lesson04_1 = check_lesson04
register("04.1", LESSON04_1_QUESTION, check_lesson04_1, _solution_04_1, transfer=True)


#: 04.2: scikit-learn's "balanced" class weights on a label map with three classes.
LESSON04_2_COUNTS = (7000, 2500, 500)
LESSON04_2_QUESTION = (
    f"A single-label segmentation has three classes with pixel counts {LESSON04_2_COUNTS} (background, road, "
    "sign). What 'balanced' class weight, n_samples / (n_classes * count), does the rarest class get "
    "(bw.balanced_weights, sklearn's compute_class_weight('balanced'))?"
)


def lesson04_2_answer() -> float:
    counts = LESSON04_2_COUNTS
    return sum(counts) / (len(counts) * min(counts))


def check_lesson04_2(answer: float | None) -> bool:
    """Exercise 04.2: ``10000 / (3 * 500) = 6.667`` (within 0.1 %), with the usual slips named."""
    value = answer_number(answer, "a class weight")
    if value is None:
        return False
    counts = LESSON04_2_COUNTS
    n, k, rare = sum(counts), len(counts), min(counts)
    shares = sorted(c / n for c in counts)
    return judge_number(
        value,
        lesson04_2_answer(),
        correct=(
            f"{n} / ({k} * {rare}) = {lesson04_2_answer():.4g}. The weighted counts are then equal, n / k for every "
            f"class: {rare} * {lesson04_2_answer():.4g} = {n / k:.4g}; the common class gets {n / (k * max(counts)):.4g}."
        ),
        slips=[
            (n / rare, f"is n / count = 1 / share: the rule divides by n_classes * count, so divide by {k} too."),
            ((n - rare) / rare, "is neg / pos, BCE's pos_weight for a one-vs-rest channel, not a class weight."),
            (max(counts) / rare, "is the ratio to the largest class; 'balanced' divides n by n_classes * count."),
            (shares[1] / (rare / n), "is median-frequency balancing (median share / share), another rule."),
        ],
        otherwise="is not it. 'balanced' is n_samples / (n_classes * count) with n_samples the total pixel count.",
    )


def _solution_04_2() -> str:
    counts = LESSON04_2_COUNTS
    n, k = sum(counts), len(counts)
    weights = ", ".join(f"{n / (k * c):.4g}" for c in counts)
    return (
        f"n = {n}, n_classes = {k}: the weights are {n} / ({k} * count) = [{weights}]. In PyTorch: "
        "counts = torch.bincount(labels.flatten(), minlength=3); counts.sum() / (3 * counts)."
    )


register("04.2", LESSON04_2_QUESTION, check_lesson04_2, _solution_04_2, transfer=True)


#: 04.3: the output bias at the optimum of an empty model, with pos_weight (the lesson used q = 0.04, p = 1).
LESSON04_3_SHARE = 0.02
LESSON04_3_POS_WEIGHT = 10.0
LESSON04_3_QUESTION = (
    f"Positives are {LESSON04_3_SHARE:.0%} of the pixels and you train with pos_weight={LESSON04_3_POS_WEIGHT:g}. "
    "Which value should the output bias start at, so that training starts at the optimum of a model that "
    "knows nothing yet? (A logit, to 3 decimals.)"
)


def check_lesson04_3(answer: float | None) -> bool:
    """Exercise 04.3: ``log(q / (1 - q)) + log p = -1.589`` (``bw.optimal_logit(0.02, 10)``), within 0.005."""
    value = answer_number(answer, "a logit")
    if value is None:
        return False
    q, p = LESSON04_3_SHARE, LESSON04_3_POS_WEIGHT
    prior = math.log(q / (1 - q))
    right = float(optimal_logit(q, p))
    return judge_number(
        value,
        right,
        correct=(
            f"log({q:g} / {1 - q:g}) + log {p:g} = {prior:.4g} + {math.log(p):.4g} = {right:.4g}: the prior's logit, "
            f"shifted by log p as pos_weight shifts every optimum (sigmoid of it: {1 / (1 + math.exp(-right)):.4g})."
        ),
        slips=[
            (prior, "is log(pos / neg), right without pos_weight; pos_weight moves the optimum up by log p."),
            (math.log(q), "is log q; the logit of the prior is log(q / (1 - q))."),
            (prior - math.log(p), "moves the bias the wrong way: pos_weight raises the optimal logit by log p."),
            (0.0, "is PyTorch's default start, probability 0.5: the first epochs then push everything down."),
            (q * p / (q * p + 1 - q), "is the optimal probability; the bias is a logit: take its log-odds."),
        ],
        otherwise="is not it. The optimum of an empty model is x* = log(q / (1 - q)) + log p (bw.optimal_logit).",
    )


def _solution_04_3() -> str:
    q, p = LESSON04_3_SHARE, LESSON04_3_POS_WEIGHT
    return (
        f"an empty model outputs one logit everywhere; its optimum is x* = log(q / (1 - q)) + log p = "
        f"log({q:g}/{1 - q:g}) + log {p:g} = {float(optimal_logit(q, p)):.4g}. In code: "
        "model.head.bias.data.fill_(math.log(q / (1 - q)) + math.log(p)), or bw.optimal_logit(q, p)."
    )


register("04.3", LESSON04_3_QUESTION, check_lesson04_3, _solution_04_3, transfer=True)
