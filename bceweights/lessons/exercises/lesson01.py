"""Lesson 01's exercises: where ``weight`` and ``pos_weight`` put the optimum, what they do to one
element's gradient, and how to read a ``pos_weight`` model's probability as a frequency.

    from bceweights.lessons.exercises import LESSON01_1_QUESTION, check_lesson01_1
    _ = check_lesson01_1(0.31)

``check_lesson01`` and ``LESSON01_QUESTION`` are exercise 01.1 under its first name.
"""

from __future__ import annotations

import math

from bceweights.lessons.exercises.answers import answer_number, judge_choice, judge_number
from bceweights.lessons.exercises.registry import register, register_questionnaire
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


def _solution_01_1() -> str:
    p, q, w = LESSON01_POS_WEIGHT, LESSON01_FREQUENCY, LESSON01_WEIGHT
    return (
        f"the expected gradient over such inputs is w*[(1 - q)*s - p*q*(1 - s)] with s = sigmoid(x); it is zero at "
        f"s = p*q / (p*q + 1 - q) = {p * q:.4g} / {p * q + 1 - q:.4g} = {float(optimal_probability(q, p)):.4g}. "
        f"weight={w:g} multiplies both terms and drops out."
    )


LESSON01_1_QUESTION = LESSON01_QUESTION
check_lesson01_1 = check_lesson01
register("01.1", LESSON01_1_QUESTION, check_lesson01_1, _solution_01_1, transfer=True)


#: 01.2: one element's gradient, with a soft target (the lesson's table used x in {-2, 0, 1.5, 3}).
LESSON01_2_LOGIT = 1.0
LESSON01_2_TARGET = 0.25
LESSON01_2_WEIGHT = 2.0
LESSON01_2_POS_WEIGHT = 3.0
LESSON01_2_QUESTION = (
    f"One element has logit x = {LESSON01_2_LOGIT:g}, soft target y = {LESSON01_2_TARGET:g}, weight = "
    f"{LESSON01_2_WEIGHT:g} and pos_weight = {LESSON01_2_POS_WEIGHT:g}. What is d loss / d x (reduction='none'), "
    "to 3 decimals?"
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _gradient_01_2(x: float, y: float, w: float, p: float) -> float:
    s = _sigmoid(x)
    return w * ((1.0 - y) * s - p * y * (1.0 - s))


def check_lesson01_2(answer: float | None) -> bool:
    """Check :data:`LESSON01_2_QUESTION`: ``w [(1 - y) s - p y (1 - s)]`` at ``s = sigmoid(1)``, within 0.005."""
    x, y, w, p = LESSON01_2_LOGIT, LESSON01_2_TARGET, LESSON01_2_WEIGHT, LESSON01_2_POS_WEIGHT
    value = answer_number(answer, "a number (the gradient)")
    if value is None:
        return False
    right = _gradient_01_2(x, y, w, p)
    s = _sigmoid(x)
    loss = w * (p * y * math.log1p(math.exp(-x)) + (1 - y) * math.log1p(math.exp(x)))
    return judge_number(
        value,
        right,
        correct=(
            f"{w:g} * [(1 - {y:g}) * {s:.4f} - {p:g} * {y:g} * {1 - s:.4f}] = {right:.4g}. Here 1 - y = p*y, so the "
            "two parts balance at x = 0; at x = 1 the negative part wins and a gradient step lowers the logit."
        ),
        slips=[
            (right / w, f"is the gradient with weight=1. weight multiplies the whole element, loss and gradient: times {w:g}."),
            (_gradient_01_2(x, y, w, 1.0), "leaves pos_weight out. pos_weight multiplies the positive part, p*y*(1 - s)."),
            (w * (p * (1 - y) * s - y * (1 - s)), "puts pos_weight on the negative part; it scales only the positive (y) part."),
            (-right, "has the wrong sign. d/dx softplus(x) = s and d/dx softplus(-x) = -(1 - s)."),
            (loss, "is the loss itself, not its derivative."),
        ],
        otherwise=(
            "is not it. Differentiate w*[p*y*softplus(-x) + (1 - y)*softplus(x)]: "
            "d softplus(x)/dx = sigmoid(x), d softplus(-x)/dx = -(1 - sigmoid(x))."
        ),
    )


def _solution_01_2() -> str:
    x, y, w, p = LESSON01_2_LOGIT, LESSON01_2_TARGET, LESSON01_2_WEIGHT, LESSON01_2_POS_WEIGHT
    s = _sigmoid(x)
    return (
        f"d loss / dx = w*[(1 - y)*s - p*y*(1 - s)] with s = sigmoid({x:g}) = {s:.4f}: "
        f"{w:g} * [{1 - y:g} * {s:.4f} - {p * y:g} * {1 - s:.4f}] = {_gradient_01_2(x, y, w, p):.4g}. Check it with "
        "torch.autograd.grad of F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=p)."
    )


register("01.2", LESSON01_2_QUESTION, check_lesson01_2, _solution_01_2, transfer=True)


#: 01.3: undo the shift of a model trained with pos_weight (the lesson shifted logits by log 4 and log 16).
LESSON01_3_POS_WEIGHT = 6.0
LESSON01_3_OUTPUT = 0.75
LESSON01_3_QUESTION = (
    f"A well-trained model, trained with pos_weight={LESSON01_3_POS_WEIGHT:g}, outputs probability "
    f"{LESSON01_3_OUTPUT:g} on some input. Among inputs like it, what fraction q is really positive?"
)


def lesson01_3_answer() -> float:
    """``sigmoid(logit(s) - log p)``: the calibrated frequency behind the output ``s``."""
    p, s = LESSON01_3_POS_WEIGHT, LESSON01_3_OUTPUT
    odds = s / (1.0 - s) / p
    return odds / (1.0 + odds)


def check_lesson01_3(answer: float | None) -> bool:
    """Check :data:`LESSON01_3_QUESTION`: ``q = sigmoid(logit(0.75) - log 6) = 1/3``, within 0.005."""
    p, s = LESSON01_3_POS_WEIGHT, LESSON01_3_OUTPUT
    value = answer_number(answer, "a number between 0 and 1", "a probability (a number between 0 and 1)")
    if value is None:
        return False
    if not 0.0 <= value <= 1.0:
        print(f"{value:.4g} is not a frequency: q lies between 0 and 1.")
        return False
    right = lesson01_3_answer()
    added = s / (1 - s) * p
    return judge_number(
        value,
        right,
        correct=(
            f"the weighted model's logit is the calibrated one plus log {p:g}, so q = sigmoid(logit({s:g}) - log {p:g}): "
            f"odds {s / (1 - s):.4g} / {p:g} = {s / (1 - s) / p:.4g}, q = {right:.4g}. "
            f"(Check: {p:g}*q / ({p:g}*q + 1 - q) = {s:g}.)"
        ),
        slips=[
            (s, f"is the output as it stands; pos_weight={p:g} pushed it up, so q is lower."),
            (s / p, "divides the probability by p; pos_weight divides the odds s / (1 - s), not the probability."),
            (added / (1 + added), "adds log p to the logit; the weighted model already carries the shift: subtract it."),
            (1 / (1 + p), "is the threshold 1 / (1 + p) that matches pos_weight at 0.5 (lesson 05), not q at this output."),
        ],
        otherwise=f"is not it. Invert s = p*q / (p*q + 1 - q) for q, or subtract log {p:g} from the logit of {s:g}.",
    )


def _solution_01_3() -> str:
    p, s = LESSON01_3_POS_WEIGHT, LESSON01_3_OUTPUT
    return (
        f"logit({s:g}) = log {s / (1 - s):.4g}; subtract log {p:g}: the odds become {s / (1 - s) / p:.4g}, so "
        f"q = {s / (1 - s) / p:.4g} / (1 + {s / (1 - s) / p:.4g}) = {lesson01_3_answer():.4g}. "
        "In code: torch.sigmoid(torch.logit(s) - math.log(p))."
    )


register("01.3", LESSON01_3_QUESTION, check_lesson01_3, _solution_01_3, transfer=True)


#: 01.4 (a concept): which of three loss settings raises recall; the three are lesson 01's section 6 in other dress.
LESSON01_4_CHOICES = ("a", "b", "c")
LESSON01_4_QUESTION = (
    "A single-output classifier, outputs (N, 1), about 10 % positives, trained to the optimum and thresholded "
    "at 0.5. Which one of these three losses raises its recall compared with no weighting?\n"
    "  (a) pos_weight = torch.where(y > 0, 0.9, 0.1)   (each sample gets the share of the other class)\n"
    "  (b) weight = torch.full_like(y, 9.0)\n"
    "  (c) pos_weight = torch.tensor([9.0])\n"
    'Answer with one letter in quotes, e.g. "a".'
)

_LESSON01_4_VERDICTS = {
    "a": (
        "a negative's pos_weight multiplies its positive term, which is 0 for y = 0, so only the positives' value "
        "0.9 ever acts: (a) is one pos_weight of 0.9 < 1. Positives count slightly less and recall does not rise "
        "(section 6, recipe (a))."
    ),
    "b": (
        "a weight that is the same for both labels multiplies both terms: the optimum does not move, only the "
        "gradient's scale (like a 9x learning rate under SGD). Recall stays where it was."
    ),
}


def check_lesson01_4(answer: object) -> bool:
    """Exercise 01.4: only (c), one ``pos_weight`` above 1, moves the optimum up (by ``log 9``) and raises recall."""
    return judge_choice(
        answer,
        LESSON01_4_CHOICES,
        "c",
        correct=(
            "pos_weight=9 multiplies every positive's term, so the optimal logit moves up by log 9 and more "
            "inputs cross 0.5. (a) reduces to one pos_weight of 0.9 (negatives ignore theirs) and (b) scales both "
            "terms alike, so neither moves the optimum up."
        ),
        wrong={letter: f"({letter}) does not raise recall: {verdict}" for letter, verdict in _LESSON01_4_VERDICTS.items()},
    )


def _solution_01_4() -> str:
    return (
        "(c). Write each loss for a negative and a positive. (a): the negative's pos_weight 0.1 multiplies y = 0, so "
        "only the positives' 0.9 acts, one pos_weight of 0.9, which lowers the optimum by log(1/0.9). (b): weight 9 "
        "multiplies both terms, so the gradient is zero at the same logit as without weights. (c): the positive "
        "term counts 9 times, the optimal logit rises by log 9, and thresholding at 0.5 finds more positives."
    )


register("01.4", LESSON01_4_QUESTION, check_lesson01_4, _solution_01_4)


#: Lesson 01's questionnaire: (question, answer).
LESSON01_QUESTIONNAIRE = (
    ("Which term of the per-element loss does pos_weight multiply, and which does weight multiply?",
     "pos_weight multiplies only the positive term, y * softplus(-x); weight multiplies the whole element, both terms."),
    ("An element has target y = 0. What does pos_weight change for it?",
     "Nothing: its positive term is y * softplus(-x) = 0, so pos_weight multiplies zero."),
    ("Where is the optimal logit for a soft target y with pos_weight p?",
     "x* = log(y / (1 - y)) + log p, i.e. probability p*y / (p*y + 1 - y): pos_weight shifts it by log p."),
    ("Does a weight that is the same for both labels move the optimum? What does it change?",
     "No; it multiplies both terms and cancels where the gradient is zero. It scales the gradient, like a "
     "larger learning rate under SGD."),
    ("What type and shape of pos_weight does PyTorch need for a single-output model with outputs (N, 1)?",
     "A tensor, torch.tensor([p]) of shape (1,) (or (1, 1, 1) for (N, 1, H, W)); a plain number raises a "
     "TypeError. bceweights also takes the number."),
    ("Why does a (N, H, W) mask passed as weight to (N, 1, H, W) outputs fail in PyTorch, and what do you write?",
     "Right-aligned, N meets the channel axis, so it would broadcast to (N, N, H, W), which the in-place multiply "
     "cannot produce (with N = 1 it runs, right by luck). Write weight=mask.unsqueeze(1)."),
    ("Per-sample class shares indexed by label and passed as pos_weight: what do they reduce to?",
     "One pos_weight, the value the positives carry (the negative share, below 1): negatives' values multiply "
     "y = 0. Pass per-sample class weights as weight instead."),
    ("A model trained with pos_weight p outputs probability s. How do you read it as a frequency?",
     "Subtract log p from its logit: q = sigmoid(logit(s) - log p) (exact at the optimum of a well-specified "
     "model, an approximation otherwise)."),
)
register_questionnaire("01", LESSON01_QUESTIONNAIRE)
