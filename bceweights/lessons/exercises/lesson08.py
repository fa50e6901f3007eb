"""Lesson 08's exercises: undo ``pos_weight`` (Q17), choose a threshold honestly (Q19), run the checklist (Q20),
does 0.5 find positives at a 10 % share (08.4, a concept, Q18); and the lesson's questionnaire.

Each has a question (``LESSON08_*_QUESTION``), a checker (``check_lesson08_*``) that prints a verdict
with a hint, and a worked solution that is printed only by an explicit call,
``show_lesson08_solution("shift" | "threshold" | "checklist")``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bceweights.lessons.calibration import operating_point, threshold_for_precision, wilson_lower_bound
from bceweights.lessons.diagnose import CHECK_NAMES, recall_zero_checklist
from bceweights.lessons.exercises.answers import answer_number, judge_choice, no_answer_yet
from bceweights.lessons.exercises.registry import register, register_questionnaire
from bceweights.lessons.rare_class import REGIMES, TinyMLP, largest_likelihood_ratio, make_features

# ------------------------------------------------------------------------------------------------
# 1. Undo pos_weight (Q17)

LESSON08_POS_WEIGHT = 49.0
LESSON08_LOGIT = 1.2
LESSON08_SHIFT_QUESTION = (
    f"A model trained with pos_weight = {LESSON08_POS_WEIGHT:g} (neg/pos at 2 % positives) outputs the logit "
    f"{LESSON08_LOGIT:g} for a sample. Near the optimum, what is the calibrated probability that this "
    "sample is positive (to 3 decimals)?"
)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def lesson08_shift_answer() -> float:
    """``sigmoid(logit - log p)``: the weighted model's logit is ``logit(q) + log p`` (``bw.optimal_logit``)."""
    return _sigmoid(LESSON08_LOGIT - math.log(LESSON08_POS_WEIGHT))


def check_lesson08_shift(answer: float | None) -> bool:
    """Check :data:`LESSON08_SHIFT_QUESTION`; print a verdict and return True when the answer is right."""
    value = answer_number(answer, "a probability")
    if value is None:
        return False
    if not 0.0 <= value <= 1.0:
        print(f"{value:.4g} is not a probability: the answer lies between 0 and 1.")
        return False
    right = lesson08_shift_answer()
    close = lambda a, b: abs(a - b) <= 5e-4  # noqa: E731
    if close(value, right):
        print(
            f"Correct: pos_weight={LESSON08_POS_WEIGHT:g} adds log {LESSON08_POS_WEIGHT:g} = "
            f"{math.log(LESSON08_POS_WEIGHT):.4g} to the optimal logit, so the calibrated probability is "
            f"sigmoid({LESSON08_LOGIT:g} - {math.log(LESSON08_POS_WEIGHT):.4g}) = {right:.4g}."
        )
        return True
    if close(value, _sigmoid(LESSON08_LOGIT)):
        print("Not yet: that is the weighted model's own probability, sigmoid(logit). Undo the shift first.")
    elif close(value, _sigmoid(LESSON08_LOGIT + math.log(LESSON08_POS_WEIGHT))):
        print("Not yet: that shifts the logit the wrong way. pos_weight > 1 pushed it up; move it back down.")
    elif close(value, _sigmoid(LESSON08_LOGIT) / LESSON08_POS_WEIGHT):
        print("Not yet: dividing the probability by p is not the inverse. The shift is additive on the logit.")
    else:
        print(
            "Not yet. The weighted optimum is bw.optimal_logit(q, p) = logit(q) + log p: solve it for q "
            "(or try bw.optimal_probability on your answer: it should give back sigmoid(1.2))."
        )
    return False


# ------------------------------------------------------------------------------------------------
# 2. A threshold for a precision target, chosen on validation (Q19)

LESSON08_MIN_PRECISION = 0.2
LESSON08_THRESHOLD_QUESTION = (
    "lesson08_threshold_data() returns validation and test scores (the true posterior of the overlapping "
    f"regime) with their targets. Which threshold gives a validation precision >= {LESSON08_MIN_PRECISION:g} (the "
    "precision itself, not its Wilson bound) with the most recall? Then read its precision on the test split."
)


def lesson08_threshold_data() -> dict[str, torch.Tensor]:
    """``{"val_scores", "val_target", "test_scores", "test_target"}``: 4000 samples each, seeds 701 and 702."""
    regime = REGIMES["overlapping"]
    val, test = make_features(4000, regime, 701), make_features(4000, regime, 702)
    return {"val_scores": val.posterior, "val_target": val.y, "test_scores": test.posterior, "test_target": test.y}


def lesson08_threshold_answer() -> float:
    """The validation threshold of :data:`LESSON08_THRESHOLD_QUESTION` (``threshold_for_precision``)."""
    data = lesson08_threshold_data()
    return threshold_for_precision(data["val_scores"], data["val_target"], LESSON08_MIN_PRECISION).threshold


def lesson08_expected_precision_reached(target: float) -> tuple[float, int]:
    """The lowest validation score ``t`` whose samples at or above it have a mean score of at least ``target``.

    The scores of :func:`lesson08_threshold_data` are the true posterior ``q``, so the mean of ``q`` over the
    samples at or above ``t`` is the precision to expect there. Sorted from the top, that running mean falls as
    ``t`` falls; returns ``(t, count)``, ``count`` the number of validation samples at or above ``t``.
    """
    scores = torch.sort(lesson08_threshold_data()["val_scores"], descending=True).values.double()
    running_mean = torch.cumsum(scores, 0) / torch.arange(1, len(scores) + 1, dtype=torch.float64)
    count = int((running_mean >= target).sum())
    if count == 0:
        raise ValueError(f"no threshold has an expected precision of {target:g}: the largest score is {float(scores[0]):.3g}")
    return float(scores[count - 1]), count


def check_lesson08_threshold(answer: float | None) -> bool:
    """Check :data:`LESSON08_THRESHOLD_QUESTION`: any threshold that selects the same validation samples is right."""
    value = answer_number(answer, "a threshold")
    if value is None:
        return False
    data = lesson08_threshold_data()
    val_scores, val_target = data["val_scores"], data["val_target"]
    right = lesson08_threshold_answer()
    chosen, mine = operating_point(val_scores, val_target, right), operating_point(val_scores, val_target, value)
    if (mine.tp, mine.fp) == (chosen.tp, chosen.fp):
        test = operating_point(data["test_scores"], data["test_target"], right)
        predicted = chosen.tp + chosen.fp
        lower = float(wilson_lower_bound(chosen.tp, predicted, 0.95))
        # The scores are the true posterior, so the precision to expect above a threshold is their mean there.
        expected = float(val_scores[val_scores >= right].mean())
        reachable_from, reachable_count = lesson08_expected_precision_reached(LESSON08_MIN_PRECISION)
        steady = threshold_for_precision(val_scores, val_target, LESSON08_MIN_PRECISION, confidence=0.95)
        at_steady = operating_point(data["test_scores"], data["test_target"], steady.threshold)
        expected_steady = float(val_scores[val_scores >= steady.threshold].mean())
        target = f"{LESSON08_MIN_PRECISION:g}"
        why = "Why lower?" if test.precision < LESSON08_MIN_PRECISION else "It held on test, but not by design:"
        print(
            f"Correct: on validation, threshold {right:.4g} gives precision {chosen.precision:.3f} and recall "
            f"{chosen.recall:.3f}. The honest numbers are the test split's: precision {test.precision:.3f}, "
            f"recall {test.recall:.3f}.\n{why} {right:.4g} is where the validation precision last touched {target}, "
            f"a matter of a few samples: it rests on {predicted} predictions (95 % Wilson lower bound {lower:.3f}). "
            "These scores are the true posterior, so here you can see what no split shows: the precision to expect "
            f"above a threshold is the mean score above it, {expected:.3f} at {right:.4g}. It reaches {target} only "
            f"from {reachable_from:.3g} on (the top {reachable_count} of {len(val_scores)} validation samples).\n"
            f"Section 4's rule, threshold_for_precision(..., confidence=0.95), takes {steady.threshold:.4g} "
            f"(reached={steady.reached}; test precision {at_steady.precision:.3f}, recall {at_steady.recall:.3f}): "
            f"steadier, yet the precision to expect there is {expected_steady:.3f}, since it too picks among many "
            f"thresholds on {int(val_target.sum())} validation positives. A target this close to the top of the "
            "scores needs a larger validation split (section 4's has 40 000 samples)."
        )
        return True
    on_test = threshold_for_precision(data["test_scores"], data["test_target"], LESSON08_MIN_PRECISION).threshold
    leaked = operating_point(val_scores, val_target, on_test)
    if (mine.tp, mine.fp) == (leaked.tp, leaked.fp):
        print("Not yet: that threshold was chosen on the test split. Choose on validation; test only reports.")
    elif mine.tp + mine.fp == 0:
        print(f"Not yet: at {value:.4g} nothing is predicted positive on validation; lower the threshold.")
    elif mine.precision < LESSON08_MIN_PRECISION:
        print(
            f"Not yet: on validation, {value:.4g} gives precision {mine.precision:.3f} < {LESSON08_MIN_PRECISION:g}; "
            "raise the threshold."
        )
    else:
        print(
            f"Not yet: {value:.4g} meets the precision on validation ({mine.precision:.3f}) with recall "
            f"{mine.recall:.3f}, but a lower threshold does too and keeps more recall."
        )
    return False


# ------------------------------------------------------------------------------------------------
# 3. The recall-is-0 checklist on a case (Q20)

LESSON08_CHECKLIST_QUESTION = (
    "lesson08_checklist_case() returns (outputs, targets, model) from a colleague whose recall is 0. Run "
    "recall_zero_checklist(outputs, targets, model=model) and answer with the name of the check that "
    f"reports [FAIL] (one of: {', '.join(CHECK_NAMES)})."
)


def lesson08_checklist_case() -> tuple[torch.Tensor, torch.Tensor, TinyMLP]:
    """A model started at the prior logit, whose evaluation passes *probabilities* as outputs."""
    regime = REGIMES["overlapping"]
    features = make_features(4000, regime, 703)
    q = float(features.y.mean())
    model = TinyMLP(output_bias=math.log(q / (1 - q)), seed=7)
    outputs = features.posterior.clone()  # what a forward pass ending in torch.sigmoid would hand over
    return outputs, features.y, model


def lesson08_checklist_answer() -> str:
    outputs, targets, model = lesson08_checklist_case()
    failures = recall_zero_checklist(outputs, targets, model=model, verbose=False).failures
    if len(failures) != 1:
        raise AssertionError(f"lesson08_checklist_case() should fail exactly one check, got {failures}")
    return failures[0]


def check_lesson08_checklist(answer: str | None) -> bool:
    """Check :data:`LESSON08_CHECKLIST_QUESTION`; accepts the check's name or its number (1-4)."""
    if answer is None:
        no_answer_yet("the name of a check, e.g. 'bias init'")
        return False
    names = {name.lower(): name for name in CHECK_NAMES}
    if isinstance(answer, (int, np.integer)) and not isinstance(answer, bool) and 1 <= int(answer) <= len(CHECK_NAMES):
        given = CHECK_NAMES[int(answer) - 1]
    elif isinstance(answer, str) and answer.strip().lower() in names:
        given = names[answer.strip().lower()]
    else:
        print(f"Expected one of: {', '.join(repr(n) for n in CHECK_NAMES)} (or its number 1-4), got {answer!r}.")
        return False
    right = lesson08_checklist_answer()
    if given == right:
        print(
            "Correct: every output lies in [0, 1], so these are probabilities, not logits; the checklist would "
            "apply a sigmoid again. Threshold probabilities at 0.5 (or logits at 0), then run the checklist on logits. "
            "Now run it on torch.logit(outputs): check 2 reports that nothing reaches 0.5 (largest 0.247). The "
            "colleague's recall 0 is the overlap, not a bug; check 4 shows what a lower threshold gives."
        )
        return True
    hints = {
        "bias init": "the model's output bias sits at log(pos/neg) already: that check passes. Read its line.",
        "posterior below 0.5": "that check is skipped here ([skip]), and its line says why: look at what the outputs are.",
        "learning rate and warmup": "that check is skipped here ([skip]); its line names the check that found why.",
    }
    print(f"Not yet: {hints.get(given, 'run the checklist and read its [FAIL] line.')}")
    return False


# ------------------------------------------------------------------------------------------------
# Solutions, only on request.

def _solution_shift() -> str:
    return (
        f"z = {LESSON08_LOGIT:g} - math.log({LESSON08_POS_WEIGHT:g})   # undo the optimum's shift log p\n"
        f"q = 1 / (1 + math.exp(-z))        # = {lesson08_shift_answer():.4g}"
    )


def _solution_threshold() -> str:
    return (
        "data = lesson08_threshold_data()\n"
        f"choice = threshold_for_precision(data['val_scores'], data['val_target'], {LESSON08_MIN_PRECISION:g})\n"
        "test = operating_point(data['test_scores'], data['test_target'], choice.threshold)\n"
        f"# choice.threshold = {lesson08_threshold_answer():.4g}; report test.precision and test.recall\n"
        f"steady = threshold_for_precision(data['val_scores'], data['val_target'], {LESSON08_MIN_PRECISION:g}, confidence=0.95)\n"
        "# steady.threshold: where the Wilson lower bound reaches the target (section 4), the steadier choice"
    )


def _solution_checklist() -> str:
    return (
        "outputs, targets, model = lesson08_checklist_case()\n"
        "report = recall_zero_checklist(outputs, targets, model=model)\n"
        f"report.failures   # [{lesson08_checklist_answer()!r}]: the outputs are probabilities, not logits\n"
        "report = recall_zero_checklist(torch.logit(outputs), targets, model=model)\n"
        "report.failures   # ['posterior below 0.5', 'evaluation threshold']: nothing reaches 0.5 (largest 0.247);\n"
        "                  # recall 0 is the overlap, not a bug, and check 4 shows what a lower threshold gives"
    )


#: The worked solutions by the names ``show_lesson08_solution`` takes.
_SOLUTIONS = {"shift": _solution_shift, "threshold": _solution_threshold, "checklist": _solution_checklist}


def show_lesson08_solution(exercise: str) -> None:
    """Print the worked solution of ``"shift"``, ``"threshold"`` or ``"checklist"``."""
    solution = _SOLUTIONS.get(exercise)
    print(solution() if solution else "Choose one of: 'shift', 'threshold', 'checklist'.")


register("08.1", LESSON08_SHIFT_QUESTION, check_lesson08_shift, lambda: "\n" + _solution_shift(), transfer=True)
register("08.2", LESSON08_THRESHOLD_QUESTION, check_lesson08_threshold, lambda: "\n" + _solution_threshold(), transfer=True)
register("08.3", LESSON08_CHECKLIST_QUESTION, check_lesson08_checklist, lambda: "\n" + _solution_checklist(), transfer=True)

# The collection's one naming scheme (``check_lessonNN_K``, ``LESSONNN_K_QUESTION``) for the same exercises.
LESSON08_1_QUESTION, check_lesson08_1 = LESSON08_SHIFT_QUESTION, check_lesson08_shift
LESSON08_2_QUESTION, check_lesson08_2 = LESSON08_THRESHOLD_QUESTION, check_lesson08_threshold
LESSON08_3_QUESTION, check_lesson08_3 = LESSON08_CHECKLIST_QUESTION, check_lesson08_checklist


# ------------------------------------------------------------------------------------------------
# 4. A concept: does 0.5 find positives at a 10 % share? (Q18)

LESSON08_4_CHOICES = ("a", "b", "c")
LESSON08_4_QUESTION = (
    "Keep section 1's overlapping clouds exactly as they are (centre distance 1.5, spread 0.6) but draw 10 % "
    "positives instead of 2 %. A perfect model, the true posterior P(y=1|x), is thresholded at 0.5. "
    "(a) It finds nothing: the overlap alone decides, and these clouds overlap as much as at 2 %; "
    "(b) it finds positives: where positives are densest relative to negatives, the posterior now passes 0.5; "
    "(c) it finds nothing: 10 % is still a rare class, and only pos_weight or oversampling would let 0.5 find any. "
    "Predict, then check with largest_likelihood_ratio(REGIMES['overlapping']) from bceweights.lessons.rare_class. "
    "Answer with one letter in quotes."
)
_LESSON08_4_VERDICTS = {
    "a": "the overlap sets how large the likelihood ratio LR(x) = p(x|y=1) / p(x|y=0) can get (about 16 here), but the "
    "posterior reaches 0.5 where LR(x) >= (1 - π)/π, and that bar falls from 49 at 2 % to 9 at 10 %.",
    "c": "the true posterior is not trained at all, so no loss or sampler enters it; and pos_weight would move a trained "
    "model's scale, not the posterior. The bar (1 - π)/π is 9 at 10 %: compare it with the largest LR(x).",
}


def check_lesson08_4(answer: object) -> bool:
    """Exercise 08.4: (b): the posterior reaches 0.5 where LR(x) >= (1 - π)/π; the largest LR is about 16 > 9."""
    largest = largest_likelihood_ratio(REGIMES["overlapping"])
    odds = largest * 0.1 / 0.9
    return judge_choice(
        answer,
        LESSON08_4_CHOICES,
        "b",
        correct=(
            f"the largest likelihood ratio of these clouds is {largest:.4g}, above the bar (1 - π)/π = 9 at "
            f"10 %, so the posterior peaks at {odds / (1 + odds):.4g}; at 2 % the bar is 49 and it peaks at "
            f"{largest * 0.02 / 0.98 / (1 + largest * 0.02 / 0.98):.4g}. Share and overlap decide together."
        ),
        wrong={letter: f"({letter}) does not fit: {verdict}" for letter, verdict in _LESSON08_4_VERDICTS.items()},
    )


def _solution_08_4() -> str:
    largest = largest_likelihood_ratio(REGIMES["overlapping"])
    return (
        "(b). Bayes: posterior odds = LR(x) · π / (1 - π), so P(y=1|x) >= 0.5 exactly where LR(x) >= (1 - π)/π.\n"
        f"largest_likelihood_ratio(REGIMES['overlapping'])   # {largest:.4g}\n"
        f"share_where_half_is_reached(REGIMES['overlapping'])   # {1 / (1 + largest):.4g}: from this share on, 0.5 finds positives\n"
        f"At 10 % the bar is 9 < {largest:.4g}: the samples where LR(x) >= 9 (around x = (2.3, 0), beyond the positives' "
        f"centre, where the negatives thin out faster) pass 0.5. At 2 % it is 49 > {largest:.4g}: none do."
    )


register("08.4", LESSON08_4_QUESTION, check_lesson08_4, _solution_08_4)


#: Lesson 08's questionnaire: (question, answer).
LESSON08_QUESTIONNAIRE = (
    ("Which columns of section 2's tables do pos_weight, oversampling, focal loss and Dice change, and which do they "
     "leave nearly alone?",
     "They change calibration (Brier score, slope, intercept, reliability) and the operating point at 0.5; they leave "
     "the ranking (AUROC, AUPRC) within a few hundredths of plain BCE's, except Dice, whose AUROC can fall up to "
     "about 0.08 below."),
    ("When does the true posterior reach 0.5, in terms of the likelihood ratio and the share π?",
     "Where LR(x) = p(x|y=1) / p(x|y=0) is at least (1 - π)/π: the overlap bounds LR, the share sets the bar."),
    ("A model trained with pos_weight = p: what undoes its shift, and how exactly?",
     "sigmoid(logit - log p), exact only at the optimum; check it on validation data and refit the intercept (and "
     "slope) there if it is off."),
    ("Why can an ECE of 0.005 hide miscalibration with a rare class?",
     "Most probabilities are tiny, so the low bins decide the mean; the top scores, where thresholds are chosen, "
     "weigh little. Look at the top scores (e.g. the top 1 %, or a reliability diagram with quantile bins); a "
     "whole-sample intercept is dominated by the low scores too."),
    ("How do you choose a threshold for 'precision at least X', and where do you report it?",
     "On validation data, the lowest threshold whose precision (better: its Wilson lower bound) reaches X; "
     "precision and recall are reported on test data. If no threshold reaches X on validation (reached=False), "
     "report a miss, not the fallback's numbers."),
    ("Why is every comparison of the lesson trained from five seeds and stated as a check with a margin?",
     "A tiny network trained briefly is chaotic: a 1e-7 change of its initial weights moves its figures in the second "
     "digit, so a finding is what the seeds show with room to spare, on a stated number of them (at least 4 of 5 "
     "for most checks, 3 or 2 for a few, as each says), since an outlier run now and then is what tiny models "
     "trained briefly do; only the untrained true-posterior check asks for every seed."),
    ("The recall-0 checklist flags PyTorch's default output bias on a model whose loss went at least 2 % below the base rate and "
     "whose AP is well above the share. Is that the cause of recall 0?",
     "No: the model learned, so the bias only warns. Read every check's finding; the numbers do not rank causes."),
)
register_questionnaire("08", LESSON08_QUESTIONNAIRE)

