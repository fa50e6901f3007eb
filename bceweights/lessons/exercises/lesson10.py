"""Lesson 10's exercises (beyond one process): a kept pixel's say under a per-rank mean, the value a
rank returns with ``process_group=``, and the dtype of the loss under autocast.
"""

from __future__ import annotations

from typing import Any

import torch

from bceweights.lessons.exercises.answers import answer_number, judge_number, no_answer_yet
from bceweights.lessons.exercises.registry import register

#: 10.1: three ranks keep these numbers of pixels (of 1,024 each) under an ignore mask.
LESSON10_1_KEPT = (100, 300, 800)
LESSON10_1_QUESTION = (
    f"Three DDP ranks compute reduction='mean' with an ignore mask and keep {LESSON10_1_KEPT[0]}, "
    f"{LESSON10_1_KEPT[1]} and {LESSON10_1_KEPT[2]} pixels. Without process_group, how many times more does one "
    "kept pixel of rank 0 count in the averaged gradient than one kept pixel of rank 2?"
)


def check_lesson10_1(answer: float | None) -> bool:
    """Exercise 10.1: weights ``1 / (W k_r)``, ratio ``k_2 / k_0 = 8``."""
    value = answer_number(answer, "a number (a ratio)")
    if value is None:
        return False
    k0, _, k2 = LESSON10_1_KEPT
    world = len(LESSON10_1_KEPT)
    return judge_number(
        value,
        k2 / k0,
        correct=(
            f"a kept pixel of rank r enters with 1 / (W k_r): 1/({world}*{k0}) against 1/({world}*{k2}), "
            f"a ratio of {k2}/{k0} = {k2 / k0:g}. With process_group every kept pixel gets 1/{sum(LESSON10_1_KEPT)}."
        ),
        slips=[
            (k0 / k2, "is the inverse: rank 0 keeps fewer pixels, so each of its pixels counts more, not less."),
            (1.0, "would hold with process_group (or with equal kept counts); without it each rank divides by its own count."),
            (world, "is the number of ranks; the ratio comes from the kept counts."),
        ],
        otherwise="is not it. Write the weight 1 / (W * k_r) of one kept pixel for rank 0 and for rank 2, and divide.",
        abs_tol=1e-2,
    )


def _solution_10_1() -> str:
    k0, _, k2 = LESSON10_1_KEPT
    return (
        f"Rank r divides its sum by k_r and DDP averages over W = 3 ranks: one pixel has weight 1 / (3 k_r). "
        f"Rank 0: 1/{3 * k0}, rank 2: 1/{3 * k2}; the ratio is {k2}/{k0} = {k2 / k0:g}."
    )


register("10.1", LESSON10_1_QUESTION, check_lesson10_1, _solution_10_1, transfer=True)


#: 10.2: one rank's local sum, the world size and the global kept count.
LESSON10_2_LOCAL_SUM = 30.0
LESSON10_2_WORLD = 4
LESSON10_2_GLOBAL_KEPT = 1200
LESSON10_2_QUESTION = (
    f"With process_group and reduction='mean', one of {LESSON10_2_WORLD} ranks has a local sum of per-pixel losses "
    f"of {LESSON10_2_LOCAL_SUM:g} over its kept pixels, and {LESSON10_2_GLOBAL_KEPT} pixels are kept over all ranks. "
    "What loss value does this rank return (and log)?"
)


def check_lesson10_2(answer: float | None) -> bool:
    """Exercise 10.2: ``local_sum * W / D = 30 * 4 / 1200 = 0.1``."""
    value = answer_number(answer, "a number")
    if value is None:
        return False
    s, w, d = LESSON10_2_LOCAL_SUM, LESSON10_2_WORLD, LESSON10_2_GLOBAL_KEPT
    return judge_number(
        value,
        s * w / d,
        correct=(
            f"local_sum * W / D = {s:g} * {w} / {d} = {s * w / d:.4g}. DDP divides the gradients by W again, so "
            f"this rank's pixels enter with 1/{d}, as in one process; the global loss is the mean of the ranks' values."
        ),
        slips=[
            (s / d, f"is local_sum / D: the rank's share of the global loss. The rank returns W = {w} times that, "
                    "because DDP averages (divides by W) afterwards."),
            (s * w, "leaves out the global denominator: divide by the number of pixels kept over all ranks."),
            (s / w, "divides by the world size; the rank multiplies by it (DDP divides again) and divides by D."),
        ],
        otherwise="is not it. The returned value is local_sum * world_size / global_denominator.",
        abs_tol=1e-4,
    )


def _solution_10_2() -> str:
    s, w, d = LESSON10_2_LOCAL_SUM, LESSON10_2_WORLD, LESSON10_2_GLOBAL_KEPT
    return (
        f"The rank returns local_sum * W / D = {s:g} * {w} / {d} = {s * w / d:.4g}. DDP then averages the "
        f"gradients over the {w} ranks, which cancels the factor W: this rank's pixels enter with 1/{d}."
    )


register("10.2", LESSON10_2_QUESTION, check_lesson10_2, _solution_10_2, transfer=True)


LESSON10_3_QUESTION = (
    "Inside torch.autocast('cpu', dtype=torch.bfloat16), logits come out of a convolution in bfloat16 and you call "
    "bw.bce_with_logits(logits, masks). Which dtype does the loss have? Answer with a torch dtype, e.g. torch.float16."
)


def check_lesson10_3(answer: Any) -> bool:
    """Exercise 10.3: ``torch.float32``, as ``F.binary_cross_entropy_with_logits`` under autocast."""
    if answer is None:
        no_answer_yet("a torch dtype such as torch.float16")
        return False
    if isinstance(answer, str):
        answer = getattr(torch, answer.removeprefix("torch."), answer)
    if not isinstance(answer, torch.dtype):
        print(f"Expected a torch dtype such as torch.float16, got {answer!r}.")
        return False
    if answer == torch.float32:
        print(
            "Correct: autocast runs binary cross-entropy in float32 (a loss summed over many elements in bfloat16 "
            "would keep about 3 significant digits), and bw.bce_with_logits follows PyTorch's rule."
        )
        return True
    if answer == torch.bfloat16:
        print("Not yet: the logits are bfloat16, but autocast runs this loss in float32 (it is on autocast's float32 list).")
    elif answer == torch.float64:
        print("Not yet: autocast never widens to float64; it runs the loss in float32.")
    else:
        print(f"Not yet: {answer} is not it. Run the cell in section 2 and read the loss's dtype.")
    return False


def _solution_10_3() -> str:
    return "torch.float32: the loss is on autocast's float32 list, whatever the autocast dtype."


register("10.3", LESSON10_3_QUESTION, check_lesson10_3, _solution_10_3)
