"""Lesson 10's exercises (plain PyTorch): a mask weight when ``N == C`` (10.1), the plain weighted mean (10.2),
a dataset's ``pos_weight`` from per-batch counts (10.3), ``WeightedRandomSampler`` weights for a chosen share
(10.4), an ignore mean that stays finite on an all-void batch (10.5, a repair), and the questionnaire.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from bceweights.lessons.exercises.answers import answer_number, judge_number, no_answer_yet
from bceweights.lessons.exercises.registry import register, register_questionnaire

#: 10.1: four images, four channels: N == C, where weight=mask runs and pairs the wrong axes.
LESSON10_1_SHAPE = (4, 4, 6, 7)


def lesson10_1_mask() -> torch.Tensor:
    """The exercise's ``(N, H, W) = (4, 6, 7)`` mask of 0s and 1s (seeded)."""
    generator = torch.Generator().manual_seed(91)
    n, _, h, w = LESSON10_1_SHAPE
    return (torch.rand(n, h, w, generator=generator) < 0.5).float()


LESSON10_1_QUESTION = (
    "Predictions have shape (4, 4, 6, 7): four images, four channels. mask = lesson10_1_mask() has shape (4, 6, 7), "
    "one map per image. Write the weight for F.binary_cross_entropy_with_logits that applies image n's map to "
    "every channel of image n."
)


def check_lesson10_1(weight: Any) -> bool:
    """Exercise 10.1: the answer, broadcast to ``(4, 4, 6, 7)``, must equal ``mask[:, None]`` expanded."""
    if weight is None:
        no_answer_yet("a tensor built from mask")
        return False
    if not isinstance(weight, torch.Tensor):
        print(f"Not yet: weight is a {type(weight).__name__}; pass a tensor built from mask.")
        return False
    mask = lesson10_1_mask()
    zeros = torch.zeros(LESSON10_1_SHAPE)
    try:
        out = F.binary_cross_entropy_with_logits(zeros, zeros, weight=weight, reduction="none")
    except RuntimeError as error:
        print(f"Not yet: PyTorch raises {str(error).strip().splitlines()[0]}")
        return False
    if tuple(out.shape) != LESSON10_1_SHAPE:
        print(f"Not yet: PyTorch runs, but the loss grows to shape {tuple(out.shape)}.")
        return False
    effective = torch.broadcast_to(weight, LESSON10_1_SHAPE).float()
    expected = mask.unsqueeze(1).expand(LESSON10_1_SHAPE)
    if torch.equal(effective, expected):
        how = "a copy" if weight.numel() == expected.numel() and weight.stride()[1] != 0 else "no copy"
        print(
            f"Correct: shape {tuple(weight.shape)} puts N under N and broadcasts over C ({how}); every channel of image n "
            "gets mask[n]. mask.unsqueeze(1), shape (4, 1, 6, 7), is the shortest way."
        )
        return True
    if torch.equal(effective, mask.unsqueeze(0).expand(LESSON10_1_SHAPE)):
        print(
            "Not yet: PyTorch runs without a word, but right-aligned (4, 6, 7) meets (C, H, W): channel c of every "
            "image gets image c's map, because N == C here. With 1 < N != C it would raise; with N = 1 it runs and "
            "happens to be right, which hides the bug in a test on one image. Give the mask its channel dimension: "
            "(N, 1, H, W)."
        )
    else:
        print("Not yet: the maps do not land on their images. Insert a size-1 channel dimension after N.")
    return False


def _solution_10_1() -> str:
    return (
        "weight = mask.unsqueeze(1), shape (4, 1, 6, 7) (or mask.unsqueeze(1).expand_as(logits), a zero-copy view). "
        "weight=mask runs here only because N == C = 4, and pairs image c's map with channel c; with N = 1 it "
        "also runs (a single map broadcast to everything), so a test on one image hides the bug."
    )


register("10.1", LESSON10_1_QUESTION, check_lesson10_1, _solution_10_1, transfer=True)


#: 10.2: per-element losses and weights; the weighted mean in plain PyTorch.
LESSON10_2_LOSSES = (0.2, 1.0, 0.5, 3.0, 0.8)
LESSON10_2_WEIGHTS = (2.0, 1.0, 0.0, 0.5, 1.0)
LESSON10_2_QUESTION = (
    f"With reduction='none' five elements have losses l = {list(LESSON10_2_LOSSES)} and weights w = "
    f"{list(LESSON10_2_WEIGHTS)}. What is the weighted mean (l * w).sum() / w.sum(), what "
    "bw.bce_with_logits(..., reduction='weighted_mean') returns?"
)


def check_lesson10_2(answer: float | None) -> bool:
    """Exercise 10.2: ``3.7 / 4.5 = 0.8222`` (within 0.002)."""
    value = answer_number(answer, "a number")
    if value is None:
        return False
    losses = torch.tensor(LESSON10_2_LOSSES, dtype=torch.float64)
    weights = torch.tensor(LESSON10_2_WEIGHTS, dtype=torch.float64)
    weighted_sum = float((losses * weights).sum())
    right = weighted_sum / float(weights.sum())
    return judge_number(
        value,
        right,
        correct=f"(l * w).sum() = {weighted_sum:.4g}, w.sum() = {float(weights.sum()):.4g}, ratio {right:.4g}.",
        slips=[
            (weighted_sum / len(LESSON10_2_LOSSES), "is (l * w).mean(), reduction='mean': it divides by the 5 elements, not by the sum of the weights."),
            (float(losses.mean()), "is the unweighted mean; multiply by the weights first."),
            (weighted_sum / int((weights > 0).sum()), "divides by the count of nonzero weights; the weighted mean divides by their sum."),
            (weighted_sum, "is the weighted sum, reduction='sum'; divide by w.sum()."),
        ],
        otherwise="is not it. Multiply each loss by its weight, add, and divide by the sum of the weights.",
        abs_tol=2e-3,
    )


def _solution_10_2() -> str:
    products = " + ".join(f"{l:g}*{w:g}" for l, w in zip(LESSON10_2_LOSSES, LESSON10_2_WEIGHTS))
    weighted_sum = sum(l * w for l, w in zip(LESSON10_2_LOSSES, LESSON10_2_WEIGHTS))
    return (
        f"({products}) / {sum(LESSON10_2_WEIGHTS):g} = {weighted_sum:.4g} / {sum(LESSON10_2_WEIGHTS):g} = "
        f"{weighted_sum / sum(LESSON10_2_WEIGHTS):.4g}. In code: l = F.binary_cross_entropy_with_logits(x, y, "
        "reduction='none'); (l * w).sum() / w.sum()."
    )


register("10.2", LESSON10_2_QUESTION, check_lesson10_2, _solution_10_2, transfer=True)


#: 10.3: four batches of 1,000 pixels with these positives each.
LESSON10_3_BATCH_PIXELS = 1000
LESSON10_3_POSITIVES = (2, 0, 10, 5)
LESSON10_3_QUESTION = (
    f"A data set is read in four batches of {LESSON10_3_BATCH_PIXELS} pixels with {list(LESSON10_3_POSITIVES)} "
    "positive pixels. What pos_weight = neg / pos does the whole data set give?"
)


def lesson10_3_answer() -> float:
    """Add the counts over the batches, then divide: ``(4000 - 17) / 17``."""
    positives = sum(LESSON10_3_POSITIVES)
    return (LESSON10_3_BATCH_PIXELS * len(LESSON10_3_POSITIVES) - positives) / positives


def check_lesson10_3(answer: float | None) -> bool:
    """Exercise 10.3: ``3983 / 17 = 234.3`` (within 0.1 %); no single batch's ratio is it."""
    if isinstance(answer, float) and math.isinf(answer):
        print(
            "Not yet: inf is the ratio of the batch with no positive. Count over the whole data set first, then "
            "divide once: a per-batch ratio is infinite, or huge, whenever a batch has few positives."
        )
        return False
    value = answer_number(answer, "a number")
    if value is None:
        return False
    n = LESSON10_3_BATCH_PIXELS
    finite = [(n - p) / p for p in LESSON10_3_POSITIVES if p > 0]
    total = n * len(LESSON10_3_POSITIVES)
    positives = sum(LESSON10_3_POSITIVES)
    return judge_number(
        value,
        lesson10_3_answer(),
        correct=(
            f"{total} pixels, {positives} positive: ({total} - {positives}) / {positives} = {lesson10_3_answer():.4g}. "
            "Accumulate the counts batch by batch and divide once (bw.pos_weight_from_targets does it over a DataLoader)."
        ),
        slips=[
            (sum(finite) / len(finite), "averages the per-batch ratios of the batches with positives; a ratio of sums is not a mean of ratios."),
            (total / positives, "is n / pos; pos_weight is neg / pos: subtract the positives first."),
            (positives / (total - positives), "is pos / neg, the other way round."),
            *(
                (ratio, "is one batch's own neg / pos; the data set's ratio adds the counts of all four batches first.")
                for ratio in finite
            ),
        ],
        otherwise="is not it. Add the positives of all batches and the negatives of all batches, then divide.",
    )


def _solution_10_3() -> str:
    positives = sum(LESSON10_3_POSITIVES)
    total = LESSON10_3_BATCH_PIXELS * len(LESSON10_3_POSITIVES)
    n = LESSON10_3_BATCH_PIXELS
    per_batch = ", ".join(f"{(n - p) / p:.4g}" if p else "inf" for p in LESSON10_3_POSITIVES)
    return (
        f"pos = {positives}, neg = {total} - {positives} = {total - positives}, pos_weight = {lesson10_3_answer():.4g}. "
        f"Per batch the ratios are {per_batch}: a per-batch pos_weight jumps with every batch, is infinite when a "
        "batch has no positive, and none of them is the data set's."
    )


register("10.3", LESSON10_3_QUESTION, check_lesson10_3, _solution_10_3, transfer=True)


#: 10.4: WeightedRandomSampler weights for a chosen share of positives.
LESSON10_4_SAMPLES = 2000
LESSON10_4_POSITIVES = 100
LESSON10_4_SHARE = 0.25
LESSON10_4_QUESTION = (
    f"{LESSON10_4_SAMPLES} samples, {LESSON10_4_POSITIVES} of them positive. torch.utils.data.WeightedRandomSampler gets "
    f"weight 1.0 for every negative. Which weight for every positive makes a drawn sample positive with probability "
    f"{LESSON10_4_SHARE:g}?"
)


def lesson10_4_answer() -> float:
    """``pos * w / (pos * w + neg) = share`` solved for ``w``."""
    negatives = LESSON10_4_SAMPLES - LESSON10_4_POSITIVES
    share = LESSON10_4_SHARE
    return share * negatives / ((1 - share) * LESSON10_4_POSITIVES)


def check_lesson10_4(answer: float | None) -> bool:
    """Exercise 10.4: ``0.25 * 1900 / (0.75 * 100) = 6.333`` (within 0.1 %)."""
    value = answer_number(answer, "a sample weight")
    if value is None:
        return False
    negatives = LESSON10_4_SAMPLES - LESSON10_4_POSITIVES
    right = lesson10_4_answer()
    return judge_number(
        value,
        right,
        correct=(
            f"a draw is positive with probability {LESSON10_4_POSITIVES} w / ({LESSON10_4_POSITIVES} w + {negatives}); "
            f"= {LESSON10_4_SHARE:g} at w = {right:.4g}. (w = neg/pos = {negatives / LESSON10_4_POSITIVES:g} would give 1/2.)"
        ),
        slips=[
            (negatives / LESSON10_4_POSITIVES, "is neg / pos: it makes positives half of the draws, not a quarter."),
            (LESSON10_4_SHARE * negatives / LESSON10_4_POSITIVES, "forgets that the positives' own weight is in the denominator: solve pos*w / (pos*w + neg) = share."),
            (LESSON10_4_SHARE * LESSON10_4_SAMPLES / LESSON10_4_POSITIVES, f"divides by the {LESSON10_4_SAMPLES} samples; the sampler divides by the total weight pos*w + neg."),
        ],
        otherwise="is not it. The sampler draws sample i with probability w_i / sum(w); write that for all positives together.",
    )


def _solution_10_4() -> str:
    negatives = LESSON10_4_SAMPLES - LESSON10_4_POSITIVES
    return (
        f"P(positive) = pos*w / (pos*w + neg) = {LESSON10_4_SHARE:g} gives w = share * neg / ((1 - share) * pos) = "
        f"{LESSON10_4_SHARE:g} * {negatives} / ({1 - LESSON10_4_SHARE:g} * {LESSON10_4_POSITIVES}) = {lesson10_4_answer():.4g}. "
        "In code: weights = torch.where(labels == 1, w, 1.0); WeightedRandomSampler(weights, num_samples=len(weights))."
    )


register("10.4", LESSON10_4_QUESTION, check_lesson10_4, _solution_10_4, transfer=True)


#: 10.5 (a repair): the ignore mean of section 3 returns NaN on a batch where every pixel is void.
LESSON10_5_QUESTION = (
    "Section 3's ignore mean, (l * keep).sum() / keep.sum(), returns NaN on a batch where every pixel is void, and "
    "one NaN loss ruins the weights at the next step. Repair it: write a function masked_mean(per_pixel, keep) "
    "(per_pixel: the losses with reduction='none'; keep: 1.0 where a pixel counts, 0.0 where it is void) that "
    "returns the mean over the kept pixels, and 0 with a zero gradient when no pixel is kept. "
    "Answer with the function itself, e.g. my_masked_mean = masked_mean."
)


def lesson10_5_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """The checker's batches: (name, per-pixel losses (2, 1, 4, 4), keep (2, 1, 4, 4)); the last is all void."""
    generator = torch.Generator().manual_seed(95)
    losses = torch.rand(3, 2, 1, 4, 4, generator=generator, dtype=torch.float64) * 2
    some = (torch.rand(2, 1, 4, 4, generator=generator) < 0.6).double()
    return [
        ("a batch with some void pixels", losses[0], some),
        ("a batch with no void pixel", losses[1], torch.ones(2, 1, 4, 4, dtype=torch.float64)),
        ("a batch where every pixel is void", losses[2], torch.zeros(2, 1, 4, 4, dtype=torch.float64)),
    ]


def check_lesson10_5(masked_mean: Any) -> bool:
    """Exercise 10.5: the mean over kept pixels on ordinary batches, and 0 (finite, zero gradient) on an all-void one."""
    if masked_mean is None:
        no_answer_yet("your function, e.g. masked_mean (no parentheses)")
        return False
    if not callable(masked_mean):
        print(f"Expected a function taking (per_pixel, keep), got {masked_mean!r}.")
        return False
    for name, losses, keep in lesson10_5_cases():
        leaf = losses.clone().requires_grad_(True)
        try:
            value = masked_mean(leaf, keep)
        except Exception as error:  # any failure of the learner's code is reported, not raised
            print(f"Not yet: on {name}, masked_mean raised {type(error).__name__}: {error}")
            return False
        if not isinstance(value, torch.Tensor) or not value.requires_grad:
            print(
                f"Not yet: on {name} masked_mean returns {value!r}, which is not connected to per_pixel: loss.backward() "
                "would raise. Return a value connected to per_pixel, e.g. per_pixel.sum() * 0 when no pixel is kept."
            )
            return False
        try:
            (gradient,) = torch.autograd.grad(value, leaf, allow_unused=True)
        except Exception as error:  # any failure of the learner's code is reported, not raised
            print(f"Not yet: on {name}, the backward of masked_mean raised {type(error).__name__}: {error}")
            return False
        gradient = torch.zeros_like(losses) if gradient is None else gradient
        value = float(value.detach())
        kept = float(keep.sum())
        right = float((losses * keep).sum() / kept) if kept else 0.0
        if value != value:
            print(
                f"Not yet: on {name} it returns NaN: keep.sum() is 0 there, and 0 / 0 is NaN. Divide by "
                "keep.sum().clamp_min(1): with no kept pixel the sum is 0, and 0 / 1 = 0."
            )
            return False
        if abs(value - right) > 1e-9 * max(1.0, abs(right)):
            if kept and abs(value - float((losses * keep).mean())) < 1e-9:
                hint = "that is (l * keep).mean(): void pixels stay in the denominator. Divide by the kept count."
            elif kept and abs(value - float(losses.mean())) < 1e-9:
                hint = "that is the mean over all pixels: keep is not applied."
            else:
                hint = f"the mean over the kept pixels is {right:.4g}."
            print(f"Not yet: on {name} it returns {value:.4g}; {hint}")
            return False
        if not torch.isfinite(gradient).all() or float(gradient[keep == 0].abs().sum()) != 0.0:
            print(f"Not yet: on {name} the void pixels get a nonzero or NaN gradient; they must get exactly 0.")
            return False
    print(
        "Correct: the mean over kept pixels where there are some, and 0 with a zero gradient on an all-void batch, "
        "what bw.bce_with_logits(..., ignore=void) returns. E.g. (per_pixel * keep).sum() / keep.sum().clamp_min(1)."
    )
    return True


def _solution_10_5() -> str:
    return (
        "def masked_mean(per_pixel, keep): return (per_pixel * keep).sum() / keep.sum().clamp_min(1). With kept pixels "
        "clamp_min(1) changes nothing (the count is at least 1); with none the sum is 0 and 0 / 1 = 0, gradient 0. "
        "Boolean indexing works the same way: per_pixel[keep > 0].sum() / keep.sum().clamp_min(1) (the .mean() of an "
        "empty selection is NaN). Replace targets 255 before the loss: they give large negative (finite) losses that "
        "any unmasked reduction or logged value picks up; and keep per_pixel finite, since inf * 0 and NaN * 0 are NaN."
    )


register("10.5", LESSON10_5_QUESTION, check_lesson10_5, _solution_10_5)


#: Lesson 10's questionnaire: (question, answer).
LESSON10_QUESTIONNAIRE = (
    ("How do you give PyTorch one pos_weight per channel of (N, C, H, W) predictions?",
     "pos_weight=pw.view(C, 1, 1): two trailing 1s put the C values under the channel axis."),
    ("What goes wrong with weight=mask for a (N, H, W) mask when N == C, and when N = 1?",
     "N == C: it runs, and channel c of every image gets image c's map. N = 1: it is right by luck; later the "
     "first batch with 1 < N != C raises, and one with N == C goes silently wrong. Always write mask.unsqueeze(1)."),
    ("How do you leave void pixels out of the mean in plain PyTorch, so that an all-void batch gives 0?",
     "Replace the void targets by a valid value, take reduction='none', and divide (l * keep).sum() by "
     "keep.sum().clamp_min(1)."),
    ("Why is (l * keep).mean() not an ignore mean?",
     "It divides by all pixels, void ones included: the loss and gradient shrink by the kept share, which changes "
     "from batch to batch."),
    ("What does PyTorch's reduction='mean' equal, in terms of the weighted mean?",
     "The weighted mean times the mean weight: (l * w).sum() / n = (l * w).sum() / w.sum() * w.mean()."),
    ("You assign criterion.weight = w before each call of an nn.BCEWithLogitsLoss() built without a weight. "
     "What can go wrong with its state_dict?",
     "The buffer was None when the module was built, so a fresh criterion has no 'weight' entry: loading the "
     "saved state_dict raises 'Unexpected key(s)' (strict load). And it saves the last batch's weight map."),
    ("Why is pos_weight counted per batch a bad estimate?",
     "It jumps from batch to batch and is infinite when a batch has no positive; a mean of per-batch ratios is "
     "not the data set's ratio. Count over the data set once."),
    ("What does WeightedRandomSampler with w_i = 1 / count[y_i] train on, on average?",
     "The same loss as weighting by 1 / count, i.e. pos_weight = neg / pos up to a constant; it shows the few "
     "positives many times instead of weighting them."),
)
register_questionnaire("10", LESSON10_QUESTIONNAIRE)
