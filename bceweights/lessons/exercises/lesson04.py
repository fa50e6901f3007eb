"""Lesson 04's exercises: the threshold that matches ``pos_weight=9``, balanced class weights from counts,
the output bias to start training at, what a recall of 0 with a good average precision calls for (a
concept), a repair of the thread's ``pos_weight.repeat(B, 1)``, and the end-of-lesson questionnaire.

``check_lesson04`` and ``LESSON04_QUESTION`` are exercise 04.1 under its first name.
"""

from __future__ import annotations

import math

from typing import Any

import torch

from bceweights.lessons.exercises.answers import answer_number, judge_choice, judge_number, no_answer_yet
from bceweights.lessons.exercises.registry import register, register_questionnaire
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
        "with torch.no_grad(): model.head.bias.fill_(math.log(q / (1 - q)) + math.log(p)), or bw.optimal_logit(q, p)."
    )


register("04.3", LESSON04_3_QUESTION, check_lesson04_3, _solution_04_3, transfer=True)


#: 04.4 (a concept): recall 0 at 0.5 but an average precision far above the share.
LESSON04_4_CHOICES = ("a", "b", "c")
LESSON04_4_QUESTION = (
    "After 5 epochs your multi-label model's green channel has recall 0 at threshold 0.5. Green covers 1 % of "
    "the validation pixels, and green's validation average precision is 0.35. Which next step fits the evidence? "
    "(a) the model has learned nothing about green: raise pos_weight and retrain; "
    "(b) the model ranks green pixels well above chance, only the 0.5 cut finds none: choose green's threshold on "
    "validation data and report it on test data; "
    "(c) the labels must be broken: an average precision above the share is impossible with recall 0. "
    "Answer with one letter in quotes."
)
_LESSON04_4_VERDICTS = {
    "a": "an AP of 0.35 is 35 times the 0.01 that a ranking which knows nothing scores: the model has learned green's "
    "ranking. Retraining with a larger pos_weight would mostly move the operating point, which a threshold does for free.",
    "c": "the AP scores the ranking over every threshold; recall at one cut can be 0 while low thresholds find "
    "positives. Nothing here points at the labels.",
}


def check_lesson04_4(answer: object) -> bool:
    """Exercise 04.4: (b): a ranking well above chance with nothing above 0.5 is a cut problem, not a learning one."""
    return judge_choice(
        answer,
        LESSON04_4_CHOICES,
        "b",
        correct=(
            "the AP (0.35 against the share 0.01) says the model separates green from the rest; recall 0 says "
            "only that no pixel reaches 0.5. A threshold chosen on validation data uses the ranking as it is (section 6). "
            "A start bias at log(pos/neg) or more epochs helps only if a calibrated model would reach 0.5 at all "
            "(section 5's cause 1); for a faint, rare class like section 2's it often would not."
        ),
        wrong={letter: f"({letter}) does not fit: {verdict}" for letter, verdict in _LESSON04_4_VERDICTS.items()},
    )


def _solution_04_4() -> str:
    return (
        "(b). Read the ranking before the cut. An average precision at the positive share (about 0.01 here) means "
        "nothing is learned yet; 0.35 is far above it, so the model ranks green pixels, and recall 0 at 0.5 means only "
        "that no probability reaches 0.5. Choose green's threshold on validation data and report on test data "
        "(section 6). Whether a better start or more epochs would also help depends on the cause (section 5): they "
        "fix a run still in its bias phase, not a class whose calibrated probability stays below 0.5, as the faint "
        "green disc of section 2 mostly does."
    )


register("04.4", LESSON04_4_QUESTION, check_lesson04_4, _solution_04_4)


#: 04.5 (a repair): the thread's pos_weight, repeated over the batch and in B, G, R order.
LESSON04_5_QUESTION = (
    "The thread behind Q8 wrote pos_weight=torch.Tensor([1, 30, 6]).repeat(BATCH_SIZE, 1) for (N, 3, H, W) logits "
    "and R, G, B masks, with hand-typed values in B, G, R order. Repair it: write a function "
    "plates_pos_weight(masks) that counts from masks (N, 3, H, W) of 0/1 and returns the pos_weight to pass to "
    "torch.nn.BCEWithLogitsLoss, one neg/pos per channel in the masks' order, shaped to work for any batch size. "
    "Answer with the function itself, e.g. my_pos_weight = plates_pos_weight."
)


def lesson04_5_masks() -> torch.Tensor:
    """The checker's masks: (6, 3, 8, 8) with channel shares of about 0.06, 0.01 and 0.25 (R, G, B), all present."""
    generator = torch.Generator().manual_seed(45)
    shares = torch.tensor([0.06, 0.02, 0.25]).view(1, 3, 1, 1)
    masks = (torch.rand(6, 3, 8, 8, generator=generator) < shares).float()
    masks[0, :, 0, 0] = 1.0  # every channel has a positive
    return masks


def check_lesson04_5(plates_pos_weight: Any) -> bool:
    """Exercise 04.5: ``(neg / pos).view(3, 1, 1)`` counted per channel, R, G, B; any batch size works."""
    if plates_pos_weight is None:
        no_answer_yet("your function, e.g. plates_pos_weight (no parentheses)")
        return False
    if not callable(plates_pos_weight):
        print(f"Expected a function taking masks (N, 3, H, W), got {plates_pos_weight!r}.")
        return False
    masks = lesson04_5_masks()
    pos = masks.sum(dim=(0, 2, 3))
    right = (masks.numel() / 3 - pos) / pos
    try:
        value = torch.as_tensor(plates_pos_weight(masks)).detach().float()
    except Exception as error:  # the learner's code is reported, not raised
        print(f"Not yet: plates_pos_weight(masks) raised {type(error).__name__}: {error}")
        return False
    flat = value.flatten()
    if value.ndim >= 2 and value.shape[-1] != 1:
        print(
            f"Not yet: shape {tuple(value.shape)} ends in {value.shape[-1]}, which broadcasting lines up with the width W "
            "of (N, 3, H, W). One value per channel must sit in dimension 1: shape (3, 1, 1)."
        )
        return False
    if tuple(value.shape) == (3,):
        print(
            "Not yet: a (3,) tensor lines up with the last dimension, the width W, not with the channels: "
            "PyTorch refuses it unless W == 3, and then it silently weights columns. View it as (3, 1, 1)."
        )
        return False
    if flat.numel() != 3:
        print(f"Not yet: expected one value per channel (3 in all), got {flat.numel()} values of shape {tuple(value.shape)}.")
        return False
    if torch.allclose(flat, right.flip(0), rtol=1e-4):
        print("Not yet: the values are in B, G, R order, the thread's; the masks are R, G, B, so red and blue swap weights.")
        return False
    if torch.allclose(flat, 1 / right, rtol=1e-4):
        print("Not yet: that is pos / neg; pos_weight multiplies the positives up, so it is neg / pos.")
        return False
    if not torch.allclose(flat, right, rtol=1e-4):
        print(f"Not yet: the values {[round(v, 4) for v in flat.tolist()]} are not neg / pos per channel, {[round(v, 4) for v in right.tolist()]}.")
        return False
    for batch in (1, 4):
        logits = torch.zeros(batch, 3, 8, 8)
        try:
            torch.nn.BCEWithLogitsLoss(pos_weight=value)(logits, masks[:batch])
        except RuntimeError as error:
            print(f"Not yet: with a batch of {batch}, nn.BCEWithLogitsLoss refuses it: {error}")
            return False
    print(
        "Correct: counted per channel in the masks' order, neg / pos, shaped (3, 1, 1) so that it lines up with "
        "dimension 1 of (N, 3, H, W) for any batch size, as section 6's loop does."
    )
    return True


def _solution_04_5() -> str:
    return (
        "pos = masks.sum(dim=(0, 2, 3)); neg = masks.numel() / masks.shape[1] - pos; return (neg / pos).view(3, 1, 1). "
        "Counting replaces the hand-typed values (and their B, G, R order); .view(3, 1, 1) replaces .repeat(BATCH_SIZE, 1), "
        "so the tensor lines up with the channels and works for the last, smaller batch too. Add .to(device) for a GPU."
    )


register("04.5", LESSON04_5_QUESTION, check_lesson04_5, _solution_04_5)


#: Lesson 04's questionnaire: (question, answer).
LESSON04_QUESTIONNAIRE = (
    ("What pos_weight does PyTorch's documentation give for 100 positives and 300 negatives, and what balances then?",
     "300 / 100 = 3. The weighted counts balance (100 x 3 = 300 against 300), not the sums of loss terms."),
    ("Why does pos_weight.repeat(B, 1) fail on (B, 3, H, W) logits, and what is the fix?",
     "Broadcasting lines up trailing dimensions, so the 3 meets the width. Drop .repeat and view the (3,) tensor as "
     "(3, 1, 1), in the mask's channel order."),
    ("With pos_weight = neg/pos, where should the output bias start, and why?",
     "At 0: the empty-model optimum is log(pos/neg) + log(pos_weight) = log(pos/neg) + log(neg/pos) = 0."),
    ("A channel has recall 0 at 0.5. What number tells you whether it was learned at all?",
     "Its average precision against the positive share: at the share it ranks like chance; well above, it ranks "
     "and only the cut is wrong."),
    ("pos_weight = p and the threshold: which unweighted threshold matches a model retrained with p at 0.5?",
     "1 / (1 + p): shifting the logits by log p and cutting at 0 is the cut x >= -log p."),
    ("What does pos_weight change on a model that already ranks well, and what on a faint, rare class in a short run?",
     "On the former it moves the operating point and leaves the average precision about where it was. On the latter "
     "it moves the operating point (recall at 0.5 from about 0 to most of the class) and, in section 2's runs, the "
     "ranking was learned on more seeds than with plain BCE, though not on every one."),
    ("pos_weight = neg/pos and a background-down weight map balance the gradient alike. How do they differ?",
     "In scale, by the ratio neg/pos: under SGD that is a different effective learning rate; Adam mostly cancels a "
     "constant factor."),
    ("Why does this lesson train every arm from five seeds and print checks instead of one run's digits?",
     "A tiny model trained for a few hundred steps is one trajectory: another seed (initial weights, batch order) or "
     "one float32 rounding step can move its figures in the second digit. A finding must hold on every seed, or on a "
     "stated number of them (at least k of 5) when the lesson says 'most'."),
)
register_questionnaire("04", LESSON04_QUESTIONNAIRE)
