"""Lesson 06's exercises: two-logit cross-entropy class weights as ``weight`` and ``pos_weight``, the
lowest loss a softmax head can reach on a pixel in three channels, why the two means differ, which head
fits labels that overlap (a concept), and the end-of-lesson questionnaire.

``check_lesson06`` and ``LESSON06_QUESTION`` are exercise 06.1 under its first name.
"""

from __future__ import annotations

import math

from bceweights.lessons.exercises.answers import answer_number, judge_choice, judge_number
from bceweights.lessons.exercises.registry import register, register_questionnaire
from bceweights.lessons.explore.two_heads import class_weights_as_bce


#: 06.1: a two-logit cross-entropy model with class weights (negatives, positives); the lesson's own
#: check used (0.5, 4.0).
LESSON06_CLASS_WEIGHTS = (2.0, 5.0)
LESSON06_QUESTION = (
    f"A binary segmenter trained with two logits and F.cross_entropy(..., weight=torch.tensor("
    f"[{LESSON06_CLASS_WEIGHTS[0]:.1f}, {LESSON06_CLASS_WEIGHTS[1]:.1f}]), reduction='none') is rewritten with "
    "one logit and bw.bce_with_logits(..., reduction='none'). Which weight and pos_weight give the same "
    "per-pixel losses?"
)


def check_lesson06(weight: float | None, pos_weight: float | None) -> bool:
    """Check the answer to lesson 06's exercise (see ``LESSON06_QUESTION``); print a verdict.

    Right: ``weight = w_neg = 2`` and ``pos_weight = w_pos / w_neg = 2.5`` (within 0.1 %). Names the
    usual slip (``pos_weight = w_pos``, forgetting that ``weight`` multiplies it). Returns True when right.
    """
    w_neg, w_pos = LESSON06_CLASS_WEIGHTS
    expected = class_weights_as_bce(LESSON06_CLASS_WEIGHTS)
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


def _solution_06_1() -> str:
    w_neg, w_pos = LESSON06_CLASS_WEIGHTS
    return (
        f"cross-entropy multiplies a negative's loss by w_neg = {w_neg:g} and a positive's by w_pos = {w_pos:g}. BCE "
        f"scales the negative term by weight and the positive term by weight * pos_weight, so weight = {w_neg:g} and "
        f"pos_weight = {w_pos:g} / {w_neg:g} = {w_pos / w_neg:g}."
    )


LESSON06_1_QUESTION = LESSON06_QUESTION
check_lesson06_1 = check_lesson06
register("06.1", LESSON06_1_QUESTION, check_lesson06_1, _solution_06_1, transfer=True)


LESSON06_2_QUESTION = (
    "A pixel is white: red, green and blue all at once. Suppose a softmax head had only the classes none, red, "
    "green, blue (logits (0, z_red, z_green, z_blue)) and no class for white, and its target spreads evenly over the "
    "classes the pixel is in. Its cross-entropy on this pixel has a floor: a value it approaches as the logits grow "
    "but never reaches (an infimum). Enter the softmax head's floor; the verdict then compares it with the sigmoid + "
    "BCE head's floor."
)


def check_lesson06_2(answer: float | None) -> bool:
    """Exercise 06.2: the softmax head's floor (infimum) is the entropy of the target (0, 1/3, 1/3, 1/3),
    ``log 3 = 1.099`` (within 0.005). One number: the sigmoid + BCE head's floor, 0, is in the verdict."""
    value = answer_number(answer, "a loss")
    if value is None:
        return False
    return judge_number(
        value,
        math.log(3.0),
        correct=(
            f"log 3 = {math.log(3.0):.4g}. As z_red = z_green = z_blue grow together, q approaches (0, 1/3, 1/3, 1/3) "
            "and the cross-entropy approaches the target's entropy, log 3, without reaching it (q_none > 0 at finite "
            "logits). The sigmoid + BCE head's floor is 0, approached the same way: three yeses at once."
        ),
        slips=[
            (math.log(2.0), "is log 2, the floor for a pixel in two of these classes. White is in three."),
            (
                0.0,
                "is the sigmoid + BCE head's floor; the softmax head must share one unit of probability between "
                "three classes.",
            ),
            (math.log(4.0), "is log 4; in the limit the 'none' class gets nothing, so only three classes share."),
            (1.0 / 3.0, "is the probability each class gets; the loss is -sum(target * log q)."),
        ],
        otherwise="is not it. Find the softmax output closest to the target, then -sum(target * log q).",
    )


def _solution_06_2() -> str:
    return (
        f"the cross-entropy -sum_k t_k log q_k would be smallest at q = t = (0, 1/3, 1/3, 1/3), where it equals the "
        f"entropy of t: 3 * (1/3) * log 3 = {math.log(3.0):.4g}. Softmax reaches q_none = 0 only in the limit (the three "
        "logits growing together), so log 3 is an infimum: approached, never reached, and nowhere near 0. The "
        "multi-label head (three sigmoids) has floor 0, approached as all three logits grow."
    )


register("06.2", LESSON06_2_QUESTION, check_lesson06_2, _solution_06_2, transfer=True)


#: 06.3: the two means with class weights (1, 9) and 10 % positives.
LESSON06_3_CLASS_WEIGHTS = (1.0, 9.0)
LESSON06_3_POSITIVE_SHARE = 0.1
LESSON06_3_QUESTION = (
    f"10 % of the pixels are positive. F.cross_entropy(two_logits, y, weight=torch.tensor([1., 9.])) and "
    "bw.bce_with_logits(x, y, weight=1, pos_weight=9) (reduction 'mean' in both) give the same per-pixel losses. "
    "By what factor is the BCE mean larger than the cross-entropy mean?"
)


def lesson06_3_answer() -> float:
    """Cross-entropy divides by ``sum w_y = n (0.9 * 1 + 0.1 * 9)``, BCE by ``n``: the factor is the mean target weight."""
    (w_neg, w_pos), f = LESSON06_3_CLASS_WEIGHTS, LESSON06_3_POSITIVE_SHARE
    return (1 - f) * w_neg + f * w_pos


def check_lesson06_3(answer: float | None) -> bool:
    """Exercise 06.3: ``0.9 * 1 + 0.1 * 9 = 1.8`` (within 0.005)."""
    value = answer_number(answer, "a factor")
    if value is None:
        return False
    right = lesson06_3_answer()
    return judge_number(
        value,
        right,
        correct=(
            f"both sum the same weighted losses S. Cross-entropy divides by the targets' weights, n * (0.9 * 1 + 0.1 * 9) "
            f"= {right:g} n; BCE's 'mean' by n. So BCE mean = {right:g} * CE mean, and its gradients are {right:g} times larger."
        ),
        slips=[
            (1.0 / right, "is the factor the other way round: which denominator is larger, n or the sum of the targets' weights?"),
            (1.0, "would hold only if the targets' weights averaged 1. Cross-entropy divides by their sum, BCE by n."),
            (LESSON06_3_CLASS_WEIGHTS[1], "is the positive class weight; the denominators differ by the *mean* weight of the targets."),
            (sum(LESSON06_3_CLASS_WEIGHTS) / 2, "averages the two class weights; average the targets' weights instead (90 % of them are 1)."),
        ],
        otherwise="is not it. Write both means as S / denominator; cross-entropy's denominator is sum of w_{y_i}.",
    )


def _solution_06_3() -> str:
    return (
        f"S = sum_i w_(y_i) * loss_i is the same in both. F.cross_entropy(weight=...) returns S / sum_i w_(y_i) = "
        f"S / (n * (0.9 * 1 + 0.1 * 9)); BCE 'mean' returns S / n. Ratio {lesson06_3_answer():g}. To match cross-entropy, "
        "pass the per-pixel weight map w_(y_i) with reduction='weighted_mean', or divide BCE's sum by weight_map.sum()."
    )


register("06.3", LESSON06_3_QUESTION, check_lesson06_3, _solution_06_3, transfer=True)


#: 06.4 (a concept): labels that overlap need one independent yes/no per label.
LESSON06_4_CHOICES = ("a", "b", "c")
LESSON06_4_QUESTION = (
    "A scan is labelled per pixel with 'tumour' and 'oedema', and a pixel can be both (oedema around a tumour "
    "overlaps it). Which model and loss fit these labels? "
    "(a) 2 output channels, softmax over them, F.cross_entropy with class indices (N, H, W); "
    "(b) 2 output channels, one sigmoid each, BCE with logits on 0/1 masks (N, 2, H, W); "
    "(c) 3 output channels (background, tumour, oedema), softmax, F.cross_entropy with class indices. "
    "Answer with one letter in quotes."
)
_LESSON06_4_VERDICTS = {
    "a": "softmax makes the two labels compete: their probabilities add up to 1, so a pixel that is both cannot get "
    "both near 1, and class indices cannot even write 'both' down. It also has no 'neither'.",
    "c": "a background class gives 'neither', but one index per pixel still cannot say 'both': you would need a fourth "
    "class 'tumour and oedema', as lesson 06 needs magenta for red and blue at once.",
}


def check_lesson06_4(answer: object) -> bool:
    """Exercise 06.4: (b): overlapping labels are independent yes/no questions, sigmoid + BCE per channel."""
    return judge_choice(
        answer,
        LESSON06_4_CHOICES,
        "b",
        correct=(
            "each label is its own yes/no question, so each channel gets its own sigmoid and BCE term; a pixel "
            "can be tumour, oedema, both or neither, as a plate pixel under the code is red and blue in section 1."
        ),
        wrong={letter: f"({letter}) does not fit: {verdict}" for letter, verdict in _LESSON06_4_VERDICTS.items()},
    )


def _solution_06_4() -> str:
    return (
        "(b). Ask what a pixel is: if it can carry several labels at once, the labels are independent yes/no "
        "questions: one logit per label, a sigmoid each, BCE on (N, 2, H, W) masks of 0/1 (with a per-channel "
        "pos_weight if a label is rare). Softmax heads, (a) and (c), give each pixel exactly one class; they fit only "
        "if 'both' is made a class of its own."
    )


register("06.4", LESSON06_4_QUESTION, check_lesson06_4, _solution_06_4)


#: Lesson 06's questionnaire: (question, answer).
LESSON06_QUESTIONNAIRE = (
    ("What question decides between sigmoid + BCE and softmax + cross-entropy?",
     "What a pixel is: several properties at once (multi-label: sigmoid + BCE per channel) or exactly one class "
     "(single-label: softmax + cross-entropy, background included)."),
    ("Why is softmax over the R, G, B channels wrong for the plates' masks?",
     "Its three probabilities add up to 1, so it can say neither 'no colour' (black, 0) nor 'two colours' "
     "(magenta, 2)."),
    ("How do you get 'the whole plate' from each model of section 1?",
     "Multi-label: read the blue channel. Single-label: add the classes that contain blue, blue or magenta."),
    ("For two classes, what is the relation between one logit with BCE and two logits with cross-entropy?",
     "The same model: softmax(a, b)_1 = sigmoid(b - a), so the losses are identical and the gradient on b is "
     "BCE's. But one step moves b - a twice as far as the single logit."),
    ("Cross-entropy class weights (w0, w1) on two logits: which weight and pos_weight give the same per-pixel "
     "losses with one logit?",
     "weight = w0 on every pixel and pos_weight = w1 / w0."),
    ("In lesson 06's short runs, was a rare class learned on every seed? What should a practitioner do?",
     "No: at the 0.5 cut the bright green disc was found on about half the seeds or more and the faint one on none, "
     "yet the ranking (AP) put green above chance on most seeds, bright or faint. Not on all: a run can miss the "
     "rare class entirely, ranking included. Read the ranking (AP) as well as the 0.5 cut, use several seeds, and "
     "train longer before concluding that a class cannot be learned."),
)
register_questionnaire("06", LESSON06_QUESTIONNAIRE)
