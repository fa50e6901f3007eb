"""Lesson 07's exercises, one per topic: the focal ``gamma`` that silences easy pixels (07.1), the U-Net
map's ``w0`` (07.2), the learning-rate factor of an ignore mask kept in the denominator (07.3), the
optimum of a label-smoothed loss with ``pos_weight`` (07.4), and a concept question on what ``alpha``
does to missed positives (07.5); then the lesson's questionnaire (``show_solution("07.Q")``).

``check_lesson07_focal`` / ``LESSON07_FOCAL_QUESTION`` are 07.1 and ``check_lesson07_weight_map`` /
``LESSON07_WEIGHT_MAP_QUESTION`` are 07.2 under their first names.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, special

from bceweights.lessons.exercises.answers import answer_choice, answer_number, judge_number
from bceweights.lessons.exercises.registry import register, register_questionnaire
from bceweights.lessons.explore.display import format_number
from bceweights.lessons.explore.focal import EASY_FROM, HARD_BELOW, easy_share, focal_curves, focal_sample
from bceweights.lessons.explore.weight_map import cell_scene, separating_share


#: The exercise: easy pixels (q_t >= 0.9) should carry at most this share of the total gradient.
LESSON07_EASY_SHARE = 0.05
LESSON07_FOCAL_QUESTION = (
    "On the explorer's sample image, without alpha: what is the smallest gamma (to one decimal) at "
    f"which the easy pixels (q_t >= {EASY_FROM}) carry at most {LESSON07_EASY_SHARE:.0%} of the total gradient?"
)


def lesson07_focal_answer() -> float:
    """The smallest gamma on the grid 0, 0.1, ..., 5 that meets :data:`LESSON07_FOCAL_QUESTION`."""
    return next(float(g) for g in np.round(np.arange(0.0, 5.05, 0.1), 1) if easy_share(float(g)) <= LESSON07_EASY_SHARE)


def check_lesson07_focal(answer: float | None) -> bool:
    """Check the answer to :data:`LESSON07_FOCAL_QUESTION`; print a verdict and return True when it is right."""
    gamma = answer_number(answer)
    if gamma is None:
        return False
    if not 0.0 <= gamma <= 5.0:
        print(f"gamma = {format_number(gamma)} is outside the explorer's range [0, 5]; the answer lies inside it.")
        return False
    right = lesson07_focal_answer()
    share = easy_share(gamma)
    if abs(gamma - right) < 0.05:
        print(
            f"Correct: at gamma = {right:.1f} the easy pixels carry {format_number(share)} of the gradient "
            f"(BCE: {format_number(easy_share(0.0))}). Each easy pixel keeps at most 0.1**gamma of its BCE loss."
        )
        return True
    if share > LESSON07_EASY_SHARE:
        print(
            f"Not yet: at gamma = {format_number(gamma)} the easy pixels still carry {format_number(share)} "
            f"of the gradient, more than {LESSON07_EASY_SHARE}; try a larger gamma."
        )
    else:
        print(
            f"Not yet: gamma = {format_number(gamma)} meets the bound (easy share {format_number(share)}), "
            "but a smaller gamma does too; look for the smallest one."
        )
    return False


#: The exercise: separating pixels should carry at least this share of the gradient.
LESSON07_SEPARATING_SHARE = 0.6
LESSON07_WEIGHT_MAP_QUESTION = (
    "In the explorer's first scene (cells = 0), with sigma = 5 and class balance on: what is the smallest "
    "w0 (a multiple of 0.5) at which the separating pixels carry at least "
    f"{LESSON07_SEPARATING_SHARE:.0%} of the weighted gradient?"
)


def lesson07_weight_map_answer() -> float:
    """The smallest w0 on the grid 0, 0.5, ..., 20 that meets :data:`LESSON07_WEIGHT_MAP_QUESTION`."""
    return next(float(w) for w in np.arange(0.0, 20.01, 0.5) if separating_share(float(w)) >= LESSON07_SEPARATING_SHARE)


def check_lesson07_weight_map(answer: float | None) -> bool:
    """Check the answer to :data:`LESSON07_WEIGHT_MAP_QUESTION`; print a verdict and return True when it is right."""
    w0 = answer_number(answer)
    if w0 is None:
        return False
    if not 0.0 <= w0 <= 20.0:
        print(f"w0 = {format_number(w0)} is outside the explorer's range [0, 20]; the answer lies inside it.")
        return False
    right = lesson07_weight_map_answer()
    share = separating_share(w0)
    if abs(w0 - right) < 0.25:
        print(
            f"Correct: at w0 = {format_number(right)} the separating pixels, {format_number(cell_scene(0).regions['separating'].mean())} "
            f"of the image, carry {format_number(share)} of the gradient (unweighted: {format_number(separating_share(0.0, class_balance=False))})."
        )
        return True
    if share < LESSON07_SEPARATING_SHARE:
        print(
            f"Not yet: at w0 = {format_number(w0)} the separating pixels carry {format_number(share)} of the "
            f"gradient, less than {LESSON07_SEPARATING_SHARE}; try a larger w0."
        )
    else:
        print(
            f"Not yet: w0 = {format_number(w0)} meets the bound (share {format_number(share)}), but a smaller "
            "w0 does too; look for the smallest multiple of 0.5."
        )
    return False


def _solution_07_1() -> str:
    right = lesson07_focal_answer()
    return (
        f"gamma = {right:.1f}: there the easy pixels (q_t >= {EASY_FROM}) carry {format_number(easy_share(right))} of the "
        f"gradient, and at {right - 0.1:.1f} still {format_number(easy_share(right - 0.1))}. Found by stepping gamma by 0.1 "
        "on the explorer (or with bceweights.lessons.explore.focal.easy_share)."
    )


def _solution_07_2() -> str:
    right = lesson07_weight_map_answer()
    return (
        f"w0 = {format_number(right)}: the separating pixels then carry {format_number(separating_share(right))} of the "
        f"weighted gradient, and at {format_number(right - 0.5)} only {format_number(separating_share(right - 0.5))}."
    )


LESSON07_1_QUESTION = LESSON07_FOCAL_QUESTION
check_lesson07_1 = check_lesson07_focal
LESSON07_2_QUESTION = LESSON07_WEIGHT_MAP_QUESTION
check_lesson07_2 = check_lesson07_weight_map
register("07.1", LESSON07_1_QUESTION, check_lesson07_1, _solution_07_1)
register("07.2", LESSON07_2_QUESTION, check_lesson07_2, _solution_07_2)


#: 07.3: three 32x32 images with this many void pixels each (the lesson used two 16x16 images).
LESSON07_3_SIDE = 32
LESSON07_3_VOID = (100, 300, 624)
LESSON07_3_QUESTION = (
    f"A batch of three {LESSON07_3_SIDE}x{LESSON07_3_SIDE} images has {LESSON07_3_VOID[0]}, {LESSON07_3_VOID[1]} and "
    f"{LESSON07_3_VOID[2]} void pixels. Under (c), per-pixel losses zeroed on void pixels then .mean() over all "
    "elements, a kept pixel's gradient is what fraction of its gradient under ignore=void?"
)


def lesson07_3_answer() -> float:
    """The batch's kept fraction: (c) divides by all pixels, ``ignore=`` by the kept ones."""
    total = 3 * LESSON07_3_SIDE**2
    return (total - sum(LESSON07_3_VOID)) / total


def check_lesson07_3(answer: float | None) -> bool:
    """Exercise 07.3: ``(3072 - 1024) / 3072 = 2/3`` (within 0.005)."""
    value = answer_number(answer, "a fraction")
    if value is None:
        return False
    right = lesson07_3_answer()
    total = 3 * LESSON07_3_SIDE**2
    kept = total - sum(LESSON07_3_VOID)
    return judge_number(
        value,
        right,
        correct=(
            f"(c) divides by all {total} pixels, ignore=void by the {kept} kept ones: every kept pixel's gradient is "
            f"scaled by {kept}/{total} = {right:.4g}, the annotated share of this batch. Under (c) a kept pixel's step is "
            f"its loss's slope / {total}, whatever the void; it is ignore=void's step (slope / the kept count, {kept} "
            "here) that grows as a batch holds more void."
        ),
        slips=[
            (1.0 - right, "is the void share; the factor is the kept share (what is left in the numerator over all pixels)."),
            (1.0 / right, "is the factor the other way round: (c)'s denominator is the larger one."),
            (1.0, "holds only without void pixels: (c) keeps the void pixels in the denominator."),
        ],
        otherwise="is not it. Write both as (sum over kept pixels) / denominator and compare the denominators.",
    )


def _solution_07_3() -> str:
    total = 3 * LESSON07_3_SIDE**2
    kept = total - sum(LESSON07_3_VOID)
    return (
        f"{total} pixels, {sum(LESSON07_3_VOID)} void, {kept} kept. (c) = sum_kept(l) / {total}, ignore=void = "
        f"sum_kept(l) / {kept}, so (c) = {kept}/{total} * ignore = {lesson07_3_answer():.4g} * ignore, and the same for "
        "every kept pixel's gradient."
    )


register("07.3", LESSON07_3_QUESTION, check_lesson07_3, _solution_07_3, transfer=True)


#: 07.4: label smoothing and pos_weight together (the lesson printed eps = 0.1 with pos_weight 4).
LESSON07_4_EPS = 0.2
LESSON07_4_POS_WEIGHT = 3.0
LESSON07_4_QUESTION = (
    f"A pixel with hard label 1 is trained with label_smoothing={LESSON07_4_EPS:g} and pos_weight="
    f"{LESSON07_4_POS_WEIGHT:g}. At what probability is its loss smallest?"
)


def lesson07_4_answer() -> float:
    """``p y' / (p y' + 1 - y')`` with ``y' = 1 - eps / 2``."""
    smoothed = 1.0 - LESSON07_4_EPS / 2
    p = LESSON07_4_POS_WEIGHT
    return p * smoothed / (p * smoothed + 1.0 - smoothed)


def check_lesson07_4(answer: float | None) -> bool:
    """Exercise 07.4: ``y' = 0.9``, optimum ``2.7 / 2.8 = 0.9643`` (within 0.002)."""
    value = answer_number(answer, "a probability")
    if value is None:
        return False
    eps, p = LESSON07_4_EPS, LESSON07_4_POS_WEIGHT
    smoothed = 1.0 - eps / 2
    smp = 1.0 - eps
    return judge_number(
        value,
        lesson07_4_answer(),
        correct=(
            f"smoothing turns 1 into y' = 1 - {eps:g}/2 = {smoothed:g}, and pos_weight moves the optimum to "
            f"p y' / (p y' + 1 - y') = {p * smoothed:.4g} / {p * smoothed + 1 - smoothed:.4g} = {lesson07_4_answer():.4g}."
        ),
        slips=[
            (smoothed, "is the smoothed target y'; pos_weight still moves the optimum up: p y' / (p y' + 1 - y')."),
            (p * smp / (p * smp + 1.0 - smp), "smooths 1 to 1 - eps (segmentation_models_pytorch's smooth_factor); here 1 becomes 1 - eps/2."),
            (smp, "is 1 - eps; label_smoothing=eps maps 1 to 1 - eps/2, and pos_weight then moves the optimum."),
            (p / (p + 1.0), "is p / (p + 1), the optimum for a target of 1/2; use the smoothed target y'."),
            (1.0, "was the optimum without smoothing (at infinity); smoothing gives it a finite logit."),
        ],
        otherwise="is not it. Smooth the target first, y' = y(1 - eps) + eps/2, then apply p y' / (p y' + 1 - y').",
        abs_tol=2e-3,
    )


def _solution_07_4() -> str:
    eps, p = LESSON07_4_EPS, LESSON07_4_POS_WEIGHT
    smoothed = 1.0 - eps / 2
    return (
        f"y' = 1 * (1 - {eps:g}) + {eps:g}/2 = {smoothed:g}; the optimum of the weighted loss is p y' / (p y' + 1 - y') = "
        f"{p * smoothed:.4g} / {p * smoothed + 1 - smoothed:.4g} = {lesson07_4_answer():.4g} "
        f"(bw.optimal_probability({smoothed:g}, {p:g}))."
    )


register("07.4", LESSON07_4_QUESTION, check_lesson07_4, _solution_07_4, transfer=True)


# --------------------------------------------------------------------------------------------------
# 07.5: alpha on a sample whose missed positives are the hard pixels

#: 07.5's sample: the focal explorer's synthetic image with its smallest object missed (logits lowered by this).
LESSON07_MISSED_SHIFT = 6.0
LESSON07_5_CHOICES = ("a", "b", "c", "d")
LESSON07_5_QUESTION = (
    "On the second focal sample (its smallest object missed, so that object's pixels are hard positives), at gamma = 2: "
    "which alpha leaves the share of the gradient carried by the missed positives exactly as it is without alpha?\n"
    "  (a) alpha = 0.25, Lin et al.'s value\n"
    "  (b) alpha = 0.5\n"
    "  (c) alpha = 0.75\n"
    "  (d) none: every alpha moves weight toward one class\n"
    'Answer with one letter in quotes, e.g. "a".'
)


def lesson07_missed_sample(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The focal explorer's synthetic image (:func:`focal_sample`) with its smallest object missed.

    Returns ``(logits, target, missed)``, each ``(64, 64)``: the object's logits are lowered by
    :data:`LESSON07_MISSED_SHIFT`, so its pixels become hard positives (``q_t < 0.5``), as the missed
    objects of a real rare-foreground image are.
    """
    logits, target = (t.numpy() for t in focal_sample(seed=seed))
    objects, count = ndimage.label(target > 0)
    sizes = ndimage.sum(target > 0, objects, range(1, count + 1))
    missed = objects == 1 + int(np.argmin(sizes))
    return logits - LESSON07_MISSED_SHIFT * missed, target, missed


def missed_positive_share(gamma: float, alpha: float | None = None, seed: int = 0) -> float:
    """Share of the total gradient magnitude carried by the hard positives of :func:`lesson07_missed_sample`."""
    logits, target, _ = lesson07_missed_sample(seed)
    margin = logits * (2.0 * target - 1.0)
    alpha_t = 1.0 if alpha is None else alpha * target + (1.0 - alpha) * (1.0 - target)
    _, gradient = focal_curves(margin, gamma, alpha_t)
    hard_positive = (special.expit(margin) < HARD_BELOW) & (target == 1)
    return float(gradient[hard_positive].sum() / gradient.sum())


def check_lesson07_5(answer: object) -> bool:
    """Exercise 07.5: (b); alpha = 0.5 multiplies every pixel by 0.5, which cancels in a share."""
    letter = answer_choice(answer, LESSON07_5_CHOICES)
    if letter is None:
        return False
    shares = {a: missed_positive_share(2.0, a) for a in (0.25, 0.5, 0.75)}
    without = missed_positive_share(2.0)
    if letter == "b":
        print(f"Correct: alpha = 0.5 gives alpha_t = 0.5 to every pixel, positive or negative, and a common factor "
              f"cancels in a share: {format_number(shares[0.5])}, as without alpha ({format_number(without)}). Below 0.5 "
              f"the positives lose share (0.25: {format_number(shares[0.25])}), above it they gain "
              f"(0.75: {format_number(shares[0.75])}).")
        return True
    hints = {
        "a": f"alpha = 0.25 weights every positive by 0.25 and every negative by 0.75: the missed positives' share falls "
             f"from {format_number(without)} to {format_number(shares[0.25])}.",
        "c": f"alpha = 0.75 weights the positives up: their share rises to {format_number(shares[0.75])}.",
        "d": "one alpha weights both classes alike. Which alpha_t = alpha y + (1 - alpha)(1 - y) is the same for y = 0 "
             "and y = 1?",
    }
    print(f"Not yet: {hints[letter]}")
    return False


def _solution_07_5() -> str:
    return (
        "(b). alpha_t = alpha for positives and 1 - alpha for negatives, so alpha = 0.5 multiplies every pixel's loss and "
        "gradient by 0.5, which cancels in any share. At gamma = 2 the missed positives carry "
        f"{format_number(missed_positive_share(2.0))} of the gradient without alpha, "
        f"{format_number(missed_positive_share(2.0, 0.5))} with alpha = 0.5, "
        f"{format_number(missed_positive_share(2.0, 0.25))} with 0.25 and {format_number(missed_positive_share(2.0, 0.75))} "
        "with 0.75: alpha moves gradient between the classes, whatever their difficulty."
    )


register("07.5", LESSON07_5_QUESTION, check_lesson07_5, _solution_07_5)


#: Lesson 07's questionnaire: (question, answer).
LESSON07_QUESTIONNAIRE = (
    ("What does the mean divide by with ignore=void, and with a mask multiplied in before .mean()? Whose step "
     "changes with the labelled share?",
     "ignore= divides by the kept pixels, so a labelled pixel's step grows when its batch has few labels; the "
     "multiplied mask divides by all pixels, so each labelled pixel's step is fixed and the loss value scales with "
     "the labelled share."),
    ("Why does bw.audit() report a mostly-zero weight under reduction=\"mean\" as a warning, not an error?",
     "It can be meant: it is a design choice (the same step for every labelled pixel) with a consequence (a loss "
     "value that moves with each batch's labelled share), and the diluted-mean message states both."),
    ("At gamma = 2, what share of its BCE loss does a pixel with q_t = 0.9 keep?",
     "(1 - 0.9)^2 = 1 %."),
    ("What does alpha do that gamma does not, and what does alpha = 0.25 do to missed positives?",
     "gamma weights a pixel by how right it already is; alpha weights it by its class (alpha for positives, 1 - alpha "
     "for negatives). Where the missed pixels are positives, alpha = 0.25 cuts their share of the gradient."),
    ("Without alpha, where does a focal-trained model's 0.5 cut sit, and with alpha?",
     "Without alpha it decides like a calibrated model's 0.5 cut (p >= 0.5 exactly where q >= 0.5); with alpha it "
     "sits where q = 1 - alpha. Other thresholds are distorted in both cases."),
    ("Why can focal loss improve calibration in practice (Mukhoti et al., 2020) although its optimum is not q?",
     "Its optimum is pulled toward 0.5. Networks trained with cross-entropy over-fit and become over-confident, and "
     "the pull moves them toward the truth; for a model that would be calibrated anyway it is a bias."),
    ("What does unet_weight_map need as input, and why is a binary mask refused?",
     "Instance labels (0 background, 1..K one number per object): in a binary mask touching objects cannot be told "
     "apart, so the distances to the nearest and second-nearest object are unknown."),
    ("With label_smoothing = eps, what does a calibrated model predict where a fraction q is positive, and how do "
     "you undo it?",
     "q (1 - eps) + eps / 2; undo it with (p - eps / 2) / (1 - eps)."),
)
register_questionnaire("07", LESSON07_QUESTIONNAIRE)
