"""Lesson 05's exercises: the threshold that matches ``pos_weight=9`` (05.1), the output bias to start training
at (05.2), what a recall of 0 with a good average precision calls for (05.3, a concept), and the end-of-lesson
questionnaire.
"""

from __future__ import annotations

import math

from bceweights.lessons.exercises.answers import answer_number, judge_choice, judge_number
from bceweights.lessons.exercises.registry import register, register_questionnaire
from bceweights.lessons.explore.threshold import matching_threshold
from bceweights.weights import optimal_logit


#: 05.1: a model trained *without* pos_weight; which threshold on its probability gives the
#: operating point that retraining with ``pos_weight=9`` gives at threshold 0.5?
LESSON05_1_POS_WEIGHT = 9.0
LESSON05_1_TOLERANCE = 5e-3
LESSON05_1_QUESTION = (
    f"A colleague retrains your model with pos_weight={LESSON05_1_POS_WEIGHT:g} and thresholds its "
    "probability at 0.5. Which threshold on the probability of your unweighted model gives (nearly) "
    "the same operating point, without retraining?"
)


def check_lesson05_1(answer: float | None) -> bool:
    """Exercise 05.1 (see ``LESSON05_1_QUESTION``): the unweighted threshold that matches ``pos_weight=9``.

    Accepts a threshold within 0.005 of ``1 / (1 + 9) = 0.1`` and names the usual slips (moving the
    threshold up, using ``1 / p``, or ``log p``). Returns True when the answer is right.
    """
    p = LESSON05_1_POS_WEIGHT
    right = matching_threshold(p)
    value = answer_number(answer, "a threshold between 0 and 1")
    if value is None:
        return False
    if not 0.0 < value < 1.0:
        print(f"{value:.4g} is not a usable threshold: a threshold on a probability lies between 0 and 1.")
        return False
    close = lambda a, b: abs(a - b) <= LESSON05_1_TOLERANCE  # noqa: E731
    if close(value, right):
        print(
            f"Correct: pos_weight={p:g} moves the optimal logit up by log {p:g}, so sigmoid(x + log {p:g}) >= 0.5 is "
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


def _solution_05_1() -> str:
    p = LESSON05_1_POS_WEIGHT
    return (
        f"retraining with pos_weight={p:g} shifts every logit by about log {p:g}. The retrained model says 'positive' "
        f"where x + log {p:g} >= 0, i.e. x >= -log {p:g}, i.e. sigmoid(x) >= 1 / (1 + {p:g}) = {matching_threshold(p):.4g} "
        "on the unweighted model."
    )


register("05.1", LESSON05_1_QUESTION, check_lesson05_1, _solution_05_1, transfer=True)


#: 05.2: the output bias at the optimum of an empty model, with pos_weight (section 3 used q = 0.04, p = 1).
LESSON05_2_SHARE = 0.02
LESSON05_2_POS_WEIGHT = 10.0
LESSON05_2_QUESTION = (
    f"Positives are {LESSON05_2_SHARE:.0%} of the pixels and you train with pos_weight={LESSON05_2_POS_WEIGHT:g}. "
    "Which value should the output bias start at, so that training starts at the optimum of a model that "
    "knows nothing yet? (A logit, to 3 decimals.)"
)


def check_lesson05_2(answer: float | None) -> bool:
    """Exercise 05.2: ``log(q / (1 - q)) + log p = -1.589`` (``bw.optimal_logit(0.02, 10)``), within 0.005."""
    value = answer_number(answer, "a logit")
    if value is None:
        return False
    q, p = LESSON05_2_SHARE, LESSON05_2_POS_WEIGHT
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


def _solution_05_2() -> str:
    q, p = LESSON05_2_SHARE, LESSON05_2_POS_WEIGHT
    return (
        f"an empty model outputs one logit everywhere; its optimum is x* = log(q / (1 - q)) + log p = "
        f"log({q:g}/{1 - q:g}) + log {p:g} = {float(optimal_logit(q, p)):.4g}. In code: "
        "with torch.no_grad(): model.head.bias.fill_(math.log(q / (1 - q)) + math.log(p)), or bw.optimal_logit(q, p)."
    )


register("05.2", LESSON05_2_QUESTION, check_lesson05_2, _solution_05_2, transfer=True)


#: 05.3 (a concept): recall 0 at 0.5 but an average precision far above the share.
LESSON05_3_CHOICES = ("a", "b", "c")
LESSON05_3_QUESTION = (
    "After 5 epochs your multi-label model's green channel has recall 0 at threshold 0.5. Green covers 1 % of "
    "the validation pixels, and green's validation average precision is 0.35. Which next step fits the evidence? "
    "(a) the model has learned nothing about green: raise pos_weight and retrain; "
    "(b) the model ranks green pixels well above chance, only the 0.5 cut finds none: choose green's threshold on "
    "validation data and report it on test data; "
    "(c) the labels must be broken: an average precision above the share is impossible with recall 0. "
    "Answer with one letter in quotes."
)
_LESSON05_3_VERDICTS = {
    "a": "an AP of 0.35 is 35 times the 0.01 that a ranking which knows nothing scores: the model has learned green's "
    "ranking. Retraining with a larger pos_weight would mostly move the operating point, which a threshold does for free.",
    "c": "the AP scores the ranking over every threshold; recall at one cut can be 0 while low thresholds find "
    "positives. Nothing here points at the labels.",
}


def check_lesson05_3(answer: object) -> bool:
    """Exercise 05.3: (b): a ranking well above chance with nothing above 0.5 is a cut problem, not a learning one."""
    return judge_choice(
        answer,
        LESSON05_3_CHOICES,
        "b",
        correct=(
            "the AP (0.35 against the share 0.01) says the model separates green from the rest; recall 0 says "
            "only that no pixel reaches 0.5. A threshold chosen on validation data uses the ranking as it is (section 4). "
            "A start bias at log(pos/neg) or more epochs helps only if a calibrated model would reach 0.5 at all "
            "(section 3's cause 1); for a faint, rare class like section 1's it often would not."
        ),
        wrong={letter: f"({letter}) does not fit: {verdict}" for letter, verdict in _LESSON05_3_VERDICTS.items()},
    )


def _solution_05_3() -> str:
    return (
        "(b). Read the ranking before the cut. An average precision at the positive share (about 0.01 here) means "
        "nothing is learned yet; 0.35 is far above it, so the model ranks green pixels, and recall 0 at 0.5 means only "
        "that no probability reaches 0.5. Choose green's threshold on validation data and report on test data "
        "(section 4). Whether a better start or more epochs would also help depends on the cause (section 3): they "
        "fix a run still in its bias phase, not a class whose calibrated probability stays below 0.5, as the faint "
        "green disc of section 1 mostly does."
    )


register("05.3", LESSON05_3_QUESTION, check_lesson05_3, _solution_05_3)


#: Lesson 05's questionnaire: (question, answer).
LESSON05_QUESTIONNAIRE = (
    ("With pos_weight = neg/pos, where should the output bias start, and why?",
     "At 0: the empty-model optimum is log(pos/neg) + log(pos_weight) = log(pos/neg) + log(neg/pos) = 0."),
    ("From PyTorch's default output bias, what do the first epochs of a rare-class run spend their steps on?",
     "On pushing every output down toward the positive share: every pixel starts near probability 0.5, and Adam moves "
     "the bias by about the learning rate per step, so the trip to log(pos/neg) takes about |log(pos/neg)| / lr steps, hundreds in this lesson."),
    ("A channel has recall 0 at 0.5. What number tells you whether it was learned at all?",
     "Its average precision against the positive share: at the share it ranks like chance; well above, it ranks "
     "and only the cut is wrong."),
    ("Name the two causes of recall 0 at 0.5 on a model that ranks, and the fix for each.",
     "A run still behind after its bias phase (start the bias at log(pos/neg), or train longer), and a posterior "
     "below 0.5 wherever positives look like negatives (lower the threshold, or use pos_weight)."),
    ("pos_weight = p and the threshold: which unweighted threshold matches a model retrained with p at 0.5?",
     "1 / (1 + p): shifting the logits by log p and cutting at 0 is the cut x >= -log p."),
    ("What does pos_weight change on a model that already ranks well, and what on a faint, rare class in a short run?",
     "On the former it mostly moves the operating point and leaves the average precision roughly where it was. On the latter "
     "it moves the operating point too (recall at 0.5 from about 0 to most of the class); which loss ranks the faint "
     "class better varied from seed to seed in section 1's runs."),
    ("Why choose a threshold on validation data and report it on separate test data?",
     "A threshold chosen on the data it is scored on flatters itself; scored on data that played no part in "
     "choosing it, the figure is what a new image would see."),
    ("Why does this lesson train every arm from five seeds and print checks instead of one run's digits?",
     "A tiny model trained for a few hundred steps is one trajectory: another seed (initial weights, batch order) or "
     "one float32 rounding step can move its figures in the second digit. A finding must hold on every seed, or on a "
     "stated number of them (at least k of 5) when the lesson says 'most'."),
)
register_questionnaire("05", LESSON05_QUESTIONNAIRE)
