"""Lesson 09's exercises (plain PyTorch): a mask weight when ``N == C``, the plain weighted mean, a
dataset's ``pos_weight`` from per-batch counts, and ``WeightedRandomSampler`` weights for a chosen share.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from bceweights.lessons.exercises.answers import answer_number, judge_number, no_answer_yet
from bceweights.lessons.exercises.registry import register

#: 09.1: four images, four channels: N == C, where weight=mask runs and pairs the wrong axes.
LESSON09_1_SHAPE = (4, 4, 6, 7)


def lesson09_1_mask() -> torch.Tensor:
    """The exercise's ``(N, H, W) = (4, 6, 7)`` mask of 0s and 1s (seeded)."""
    generator = torch.Generator().manual_seed(91)
    n, _, h, w = LESSON09_1_SHAPE
    return (torch.rand(n, h, w, generator=generator) < 0.5).float()


LESSON09_1_QUESTION = (
    "Predictions have shape (4, 4, 6, 7): four images, four channels. mask = lesson09_1_mask() has shape (4, 6, 7), "
    "one map per image. Write the weight for F.binary_cross_entropy_with_logits that applies image n's map to "
    "every channel of image n."
)


def check_lesson09_1(weight: Any) -> bool:
    """Exercise 09.1: the answer, broadcast to ``(4, 4, 6, 7)``, must equal ``mask[:, None]`` expanded."""
    if weight is None:
        no_answer_yet("a tensor built from mask")
        return False
    if not isinstance(weight, torch.Tensor):
        print(f"Not yet: weight is a {type(weight).__name__}; pass a tensor built from mask.")
        return False
    mask = lesson09_1_mask()
    zeros = torch.zeros(LESSON09_1_SHAPE)
    try:
        out = F.binary_cross_entropy_with_logits(zeros, zeros, weight=weight, reduction="none")
    except RuntimeError as error:
        print(f"Not yet: PyTorch raises {str(error).strip().splitlines()[0]}")
        return False
    if tuple(out.shape) != LESSON09_1_SHAPE:
        print(f"Not yet: PyTorch runs, but the loss grows to shape {tuple(out.shape)}.")
        return False
    effective = torch.broadcast_to(weight, LESSON09_1_SHAPE).float()
    expected = mask.unsqueeze(1).expand(LESSON09_1_SHAPE)
    if torch.equal(effective, expected):
        how = "a copy" if weight.numel() == expected.numel() and weight.stride()[1] != 0 else "no copy"
        print(
            f"Correct: shape {tuple(weight.shape)} puts N under N and broadcasts over C ({how}); every channel of image n "
            "gets mask[n]. mask.unsqueeze(1), shape (4, 1, 6, 7), is the shortest way."
        )
        return True
    if torch.equal(effective, mask.unsqueeze(0).expand(LESSON09_1_SHAPE)):
        print(
            "Not yet: PyTorch runs without a word, but right-aligned (4, 6, 7) meets (C, H, W): channel c of every "
            "image gets image c's map, because N == C here. With another batch size it would raise. Give the mask "
            "its channel dimension: (N, 1, H, W)."
        )
    else:
        print("Not yet: the maps do not land on their images. Insert a size-1 channel dimension after N.")
    return False


def _solution_09_1() -> str:
    return (
        "weight = mask.unsqueeze(1), shape (4, 1, 6, 7) (or mask.unsqueeze(1).expand_as(logits), a zero-copy view). "
        "weight=mask runs here only because N == C = 4, and pairs image c's map with channel c; with N = 1 it "
        "also runs (a single map broadcast to everything), so a test on one image hides the bug."
    )


register("09.1", LESSON09_1_QUESTION, check_lesson09_1, _solution_09_1, transfer=True)


#: 09.2: per-element losses and weights; the weighted mean in plain PyTorch.
LESSON09_2_LOSSES = (0.2, 1.0, 0.5, 3.0, 0.8)
LESSON09_2_WEIGHTS = (2.0, 1.0, 0.0, 0.5, 1.0)
LESSON09_2_QUESTION = (
    f"With reduction='none' five elements have losses l = {list(LESSON09_2_LOSSES)} and weights w = "
    f"{list(LESSON09_2_WEIGHTS)}. What is the weighted mean (l * w).sum() / w.sum(), what "
    "bw.bce_with_logits(..., reduction='weighted_mean') returns?"
)


def check_lesson09_2(answer: float | None) -> bool:
    """Exercise 09.2: ``3.7 / 4.5 = 0.8222`` (within 0.002)."""
    value = answer_number(answer, "a number")
    if value is None:
        return False
    losses = torch.tensor(LESSON09_2_LOSSES, dtype=torch.float64)
    weights = torch.tensor(LESSON09_2_WEIGHTS, dtype=torch.float64)
    weighted_sum = float((losses * weights).sum())
    right = weighted_sum / float(weights.sum())
    return judge_number(
        value,
        right,
        correct=f"(l * w).sum() = {weighted_sum:.4g}, w.sum() = {float(weights.sum()):.4g}, ratio {right:.4g}.",
        slips=[
            (weighted_sum / len(LESSON09_2_LOSSES), "is (l * w).mean(), reduction='mean': it divides by the 5 elements, not by the sum of the weights."),
            (float(losses.mean()), "is the unweighted mean; multiply by the weights first."),
            (weighted_sum / int((weights > 0).sum()), "divides by the count of nonzero weights; the weighted mean divides by their sum."),
            (weighted_sum, "is the weighted sum, reduction='sum'; divide by w.sum()."),
        ],
        otherwise="is not it. Multiply each loss by its weight, add, and divide by the sum of the weights.",
        abs_tol=2e-3,
    )


def _solution_09_2() -> str:
    products = " + ".join(f"{l:g}*{w:g}" for l, w in zip(LESSON09_2_LOSSES, LESSON09_2_WEIGHTS))
    weighted_sum = sum(l * w for l, w in zip(LESSON09_2_LOSSES, LESSON09_2_WEIGHTS))
    return (
        f"({products}) / {sum(LESSON09_2_WEIGHTS):g} = {weighted_sum:.4g} / {sum(LESSON09_2_WEIGHTS):g} = "
        f"{weighted_sum / sum(LESSON09_2_WEIGHTS):.4g}. In code: l = F.binary_cross_entropy_with_logits(x, y, "
        "reduction='none'); (l * w).sum() / w.sum()."
    )


register("09.2", LESSON09_2_QUESTION, check_lesson09_2, _solution_09_2, transfer=True)


#: 09.3: four batches of 1,000 pixels with these positives each.
LESSON09_3_BATCH_PIXELS = 1000
LESSON09_3_POSITIVES = (2, 0, 10, 4)
LESSON09_3_QUESTION = (
    f"A data set is read in four batches of {LESSON09_3_BATCH_PIXELS} pixels with {list(LESSON09_3_POSITIVES)} "
    "positive pixels. What pos_weight = neg / pos does the whole data set give?"
)


def lesson09_3_answer() -> float:
    """Add the counts over the batches, then divide: ``(4000 - 16) / 16``."""
    positives = sum(LESSON09_3_POSITIVES)
    return (LESSON09_3_BATCH_PIXELS * len(LESSON09_3_POSITIVES) - positives) / positives


def check_lesson09_3(answer: float | None) -> bool:
    """Exercise 09.3: ``3984 / 16 = 249`` (within 0.1 %)."""
    if isinstance(answer, float) and math.isinf(answer):
        print(
            "Not yet: inf is the ratio of the batch with no positive. Count over the whole data set first, then "
            "divide once: a per-batch ratio is infinite, or huge, whenever a batch has few positives."
        )
        return False
    value = answer_number(answer, "a number")
    if value is None:
        return False
    n = LESSON09_3_BATCH_PIXELS
    finite = [(n - p) / p for p in LESSON09_3_POSITIVES if p > 0]
    total = n * len(LESSON09_3_POSITIVES)
    positives = sum(LESSON09_3_POSITIVES)
    return judge_number(
        value,
        lesson09_3_answer(),
        correct=(
            f"{total} pixels, {positives} positive: ({total} - {positives}) / {positives} = {lesson09_3_answer():.4g}. "
            "Accumulate the counts batch by batch and divide once (bw.pos_weight_from_targets does it over a DataLoader)."
        ),
        slips=[
            (sum(finite) / len(finite), "averages the per-batch ratios of the batches with positives; a ratio of sums is not a mean of ratios."),
            (total / positives, "is n / pos; pos_weight is neg / pos: subtract the positives first."),
            (positives / (total - positives), "is pos / neg, the other way round."),
        ],
        otherwise="is not it. Add the positives of all batches and the negatives of all batches, then divide.",
    )


def _solution_09_3() -> str:
    positives = sum(LESSON09_3_POSITIVES)
    total = LESSON09_3_BATCH_PIXELS * len(LESSON09_3_POSITIVES)
    return (
        f"pos = {positives}, neg = {total} - {positives} = {total - positives}, pos_weight = {lesson09_3_answer():.4g}. "
        "Per batch the ratios are 499, inf, 99 and 249: a per-batch pos_weight jumps with every batch, and is infinite "
        "when a batch has no positive."
    )


register("09.3", LESSON09_3_QUESTION, check_lesson09_3, _solution_09_3, transfer=True)


#: 09.4: WeightedRandomSampler weights for a chosen share of positives.
LESSON09_4_SAMPLES = 2000
LESSON09_4_POSITIVES = 100
LESSON09_4_SHARE = 0.25
LESSON09_4_QUESTION = (
    f"{LESSON09_4_SAMPLES} samples, {LESSON09_4_POSITIVES} of them positive. torch.utils.data.WeightedRandomSampler gets "
    f"weight 1.0 for every negative. Which weight for every positive makes a drawn sample positive with probability "
    f"{LESSON09_4_SHARE:g}?"
)


def lesson09_4_answer() -> float:
    """``pos * w / (pos * w + neg) = share`` solved for ``w``."""
    negatives = LESSON09_4_SAMPLES - LESSON09_4_POSITIVES
    share = LESSON09_4_SHARE
    return share * negatives / ((1 - share) * LESSON09_4_POSITIVES)


def check_lesson09_4(answer: float | None) -> bool:
    """Exercise 09.4: ``0.25 * 1900 / (0.75 * 100) = 6.333`` (within 0.1 %)."""
    value = answer_number(answer, "a sample weight")
    if value is None:
        return False
    negatives = LESSON09_4_SAMPLES - LESSON09_4_POSITIVES
    right = lesson09_4_answer()
    return judge_number(
        value,
        right,
        correct=(
            f"a draw is positive with probability {LESSON09_4_POSITIVES} w / ({LESSON09_4_POSITIVES} w + {negatives}); "
            f"= {LESSON09_4_SHARE:g} at w = {right:.4g}. (w = neg/pos = {negatives / LESSON09_4_POSITIVES:g} would give 1/2.)"
        ),
        slips=[
            (negatives / LESSON09_4_POSITIVES, "is neg / pos: it makes positives half of the draws, not a quarter."),
            (LESSON09_4_SHARE * LESSON09_4_SAMPLES / LESSON09_4_POSITIVES, "forgets that the positives' own weight is in the denominator: solve pos*w / (pos*w + neg) = share."),
        ],
        otherwise="is not it. The sampler draws sample i with probability w_i / sum(w); write that for all positives together.",
    )


def _solution_09_4() -> str:
    negatives = LESSON09_4_SAMPLES - LESSON09_4_POSITIVES
    return (
        f"P(positive) = pos*w / (pos*w + neg) = {LESSON09_4_SHARE:g} gives w = share * neg / ((1 - share) * pos) = "
        f"{LESSON09_4_SHARE:g} * {negatives} / ({1 - LESSON09_4_SHARE:g} * {LESSON09_4_POSITIVES}) = {lesson09_4_answer():.4g}. "
        "In code: weights = torch.where(labels == 1, w, 1.0); WeightedRandomSampler(weights, num_samples=len(weights))."
    )


register("09.4", LESSON09_4_QUESTION, check_lesson09_4, _solution_09_4, transfer=True)
