"""Lesson 11's exercises (beyond one process): a kept pixel's say under a per-rank mean (11.1), the value a
rank returns with ``process_group=`` (11.2), the dtype of the loss under autocast (11.3), a rank that skips
the loss call (11.4, a concept), the denominator of gradient accumulation (11.5), and the questionnaire.
"""

from __future__ import annotations

from typing import Any

import torch

from bceweights.lessons.exercises.answers import answer_choice, answer_number, judge_number, no_answer_yet
from bceweights.lessons.exercises.registry import register, register_questionnaire

#: 11.1: three ranks keep these numbers of pixels (of 1,024 each) under an ignore mask.
LESSON11_1_KEPT = (100, 300, 800)
LESSON11_1_QUESTION = (
    f"Three DDP ranks compute reduction='mean' with an ignore mask and keep {LESSON11_1_KEPT[0]}, "
    f"{LESSON11_1_KEPT[1]} and {LESSON11_1_KEPT[2]} pixels. Without process_group, how many times more does one "
    "kept pixel of rank 0 count in the averaged gradient than one kept pixel of rank 2?"
)


def check_lesson11_1(answer: float | None) -> bool:
    """Exercise 11.1: weights ``1 / (W k_r)``, ratio ``k_2 / k_0 = 8``."""
    value = answer_number(answer, "a number (a ratio)")
    if value is None:
        return False
    k0, _, k2 = LESSON11_1_KEPT
    world = len(LESSON11_1_KEPT)
    return judge_number(
        value,
        k2 / k0,
        correct=(
            f"a kept pixel of rank r enters with 1 / (W k_r): 1/({world}*{k0}) against 1/({world}*{k2}), "
            f"a ratio of {k2}/{k0} = {k2 / k0:g}. With process_group every kept pixel gets 1/{sum(LESSON11_1_KEPT)}."
        ),
        slips=[
            (k0 / k2, "is the inverse: rank 0 keeps fewer pixels, so each of its pixels counts more, not less."),
            (1.0, "would hold with process_group (or with equal kept counts); without it each rank divides by its own count."),
            (world, "is the number of ranks; the ratio comes from the kept counts."),
        ],
        otherwise="is not it. Write the weight 1 / (W * k_r) of one kept pixel for rank 0 and for rank 2, and divide.",
        abs_tol=1e-2,
    )


def _solution_11_1() -> str:
    k0, _, k2 = LESSON11_1_KEPT
    return (
        f"Rank r divides its sum by k_r and DDP averages over W = 3 ranks: one pixel has weight 1 / (3 k_r). "
        f"Rank 0: 1/{3 * k0}, rank 2: 1/{3 * k2}; the ratio is {k2}/{k0} = {k2 / k0:g}."
    )


register("11.1", LESSON11_1_QUESTION, check_lesson11_1, _solution_11_1, transfer=True)


#: 11.2: one rank's local sum, the world size and the global kept count.
LESSON11_2_LOCAL_SUM = 30.0
LESSON11_2_WORLD = 4
LESSON11_2_GLOBAL_KEPT = 1200
LESSON11_2_QUESTION = (
    f"With process_group and reduction='mean', one of {LESSON11_2_WORLD} ranks has a local sum of per-pixel losses "
    f"of {LESSON11_2_LOCAL_SUM:g} over its kept pixels, and {LESSON11_2_GLOBAL_KEPT} pixels are kept over all ranks. "
    "What loss value does this rank return (and log)?"
)


def check_lesson11_2(answer: float | None) -> bool:
    """Exercise 11.2: ``local_sum * W / D = 30 * 4 / 1200 = 0.1``."""
    value = answer_number(answer, "a number")
    if value is None:
        return False
    s, w, d = LESSON11_2_LOCAL_SUM, LESSON11_2_WORLD, LESSON11_2_GLOBAL_KEPT
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


def _solution_11_2() -> str:
    s, w, d = LESSON11_2_LOCAL_SUM, LESSON11_2_WORLD, LESSON11_2_GLOBAL_KEPT
    return (
        f"The rank returns local_sum * W / D = {s:g} * {w} / {d} = {s * w / d:.4g}. DDP then averages the "
        f"gradients over the {w} ranks, which cancels the factor W: this rank's pixels enter with 1/{d}."
    )


register("11.2", LESSON11_2_QUESTION, check_lesson11_2, _solution_11_2, transfer=True)


LESSON11_3_QUESTION = (
    "Inside torch.autocast('cpu', dtype=torch.bfloat16), logits come out of a convolution in bfloat16 and you call "
    "bw.bce_with_logits(logits, masks). Which dtype does the loss have? Answer with a torch dtype, e.g. torch.float16."
)


def check_lesson11_3(answer: Any) -> bool:
    """Exercise 11.3: ``torch.float32``, as ``F.binary_cross_entropy_with_logits`` under autocast."""
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
            "Correct: autocast runs binary cross-entropy in float32 (in bfloat16, with 8 significant bits, about 2.4 "
            "decimal digits, every element's loss and the mean would be rounded to those bits; PyTorch sums them in "
            "float32 either way), and bw.bce_with_logits follows PyTorch's rule."
        )
        return True
    if answer == torch.bfloat16:
        print("Not yet: the logits are bfloat16, but autocast runs this loss in float32 (it is on autocast's float32 list).")
    elif answer == torch.float64:
        print("Not yet: autocast never widens to float64; it runs the loss in float32.")
    else:
        print(f"Not yet: {answer} is not it. Run the cell in section 2 and read the loss's dtype.")
    return False


def _solution_11_3() -> str:
    return "torch.float32: the loss is on autocast's float32 list, whatever the autocast dtype."


register("11.3", LESSON11_3_QUESTION, check_lesson11_3, _solution_11_3)


#: 11.4 (a concept): a rank that skips the loss call under process_group=.
LESSON11_4_CHOICES = ("a", "b", "c")
LESSON11_4_QUESTION = (
    "Training with DDP on 2 ranks, the loss is bw.bce_with_logits(logits, y, ignore=void, "
    "process_group=dist.group.WORLD). To save time, a rank whose batch is all void skips the call:\n"
    "    if keep.any():\n"
    "        loss = bw.bce_with_logits(...)\n"
    "What happens on a step where rank 1's batch is all void and rank 0's is not?\n"
    "  (a) rank 1 contributes a zero gradient and the step is right\n"
    "  (b) rank 0's all-reduce of the denominator pairs with rank 1's next collective call: counts of different steps\n"
    "      get mixed without a word, and the job fails or hangs later, when the ranks' calls no longer match\n"
    "  (c) rank 0's loss is NaN, because the global kept count lacks rank 1's zero\n"
    'Answer with one letter in quotes, e.g. "a".'
)


def check_lesson11_4(answer: object) -> bool:
    """Exercise 11.4: (b); collectives pair by call order, so a skipped one shifts every later one."""
    letter = answer_choice(answer, LESSON11_4_CHOICES)
    if letter is None:
        return False
    if letter == "b":
        print(
            "Correct: the denominator is an all_reduce, a collective that every rank of the group must call, in the "
            "same order: the backend pairs the ranks' calls by their order, not by step. Rank 0's call of this step "
            "meets rank 1's next one, so rank 0 divides by a count mixed from two steps, and every later collective "
            "is one call out of step. Nothing says so at once: the job raises (e.g. gloo's 'Connection closed by "
            "peer' when one rank finishes) or waits until the timeout, often long after the skipped step. Call the "
            "loss on every rank, every step: an all-void batch then adds 0 to the sum and 0 to the count."
        )
        return True
    if letter == "a":
        print(
            "Not yet: rank 1 skips the loss, so it skips backward too, and DDP's gradient all-reduce loses its "
            "partner as well: even without process_group the step would not be right. With process_group= the loss "
            "itself also calls an all_reduce, which rank 0 makes and rank 1 does not."
        )
    else:
        print(
            "Not yet: the count is summed by an all_reduce, and rank 1 adds nothing at this step; rank 0's call pairs "
            "with rank 1's next collective call instead, so it gets a count from another step, not a NaN."
        )
    return False


def _solution_11_4() -> str:
    return (
        "(b). With process_group= the loss all-reduces its denominator (and DDP all-reduces the gradients): "
        "collectives that every rank must call, the same number of times, in the same order, because the backend "
        "pairs them by order. A rank that skips the call shifts every later collective by one: rank 0's denominator "
        "mixes two steps' counts, and the job raises or hangs only later, when the calls that meet no longer match "
        "(at the latest when one rank finishes). Call the loss on every rank every step; an all-void batch "
        "contributes 0 to the sum and 0 to the kept count, and the global count is positive as long as some rank "
        "keeps a pixel."
    )


register("11.4", LESSON11_4_QUESTION, check_lesson11_4, _solution_11_4)


#: 11.5: gradient accumulation over micro-batches with these kept counts (the lesson showed 100, 300, 50, 350;
#: here one micro-batch is all void).
LESSON11_5_KEPT = (120, 40, 200, 0, 240)
LESSON11_5_QUESTION = (
    f"You accumulate gradients over {len(LESSON11_5_KEPT)} micro-batches (one backward each, one optimizer step) "
    f"that keep {', '.join(str(k) for k in LESSON11_5_KEPT)} pixels under an ignore mask. Each micro-batch computes "
    "its loss with reduction='sum' and divides it by one number D before backward. Which D makes the accumulated "
    "gradient equal to the gradient of the ignore mean over all kept pixels of the big batch?"
)


def check_lesson11_5(answer: float | None) -> bool:
    """Exercise 11.5: ``D = sum of the kept counts = 600``, the same for every micro-batch."""
    value = answer_number(answer, "a number (the denominator)")
    if value is None:
        return False
    total = sum(LESSON11_5_KEPT)
    steps = len(LESSON11_5_KEPT)
    return judge_number(
        value,
        total,
        correct=(
            f"D = {' + '.join(str(k) for k in LESSON11_5_KEPT)} = {total}, the kept count of the whole big batch, the "
            "same for every micro-batch: the accumulated gradient is then the sum of all kept pixels' gradients over "
            f"{total}. Count it before the first backward."
        ),
        slips=[
            (steps, f"divides by the number of micro-batches: that is the usual recipe after a per-micro-batch mean, "
                    f"and then micro-batch m's pixels weigh 1 / ({steps} k_m), unequal across micro-batches."),
            (total / steps, f"is the mean kept count: dividing by it gives a gradient {steps} times too large."),
            (1.0, "keeps the plain sum: the step then grows with the number of kept pixels."),
        ],
        otherwise="is not it. Write the big batch's loss, sum over all kept pixels / their count, as a sum over micro-batches.",
        abs_tol=0.5,
    )


def _solution_11_5() -> str:
    total = sum(LESSON11_5_KEPT)
    kept = sorted(k for k in LESSON11_5_KEPT if k)
    return (
        f"The big batch's ignore mean is (sum of all kept losses) / {total}; split the sum by micro-batch and each "
        f"part is that micro-batch's reduction='sum' loss / {total}. So D = {total} for every micro-batch, the "
        "all-void one included (its sum is 0). The usual loss / accumulation_steps after a per-micro-batch mean "
        f"gives micro-batch m's pixels the weight 1 / ({len(LESSON11_5_KEPT)} k_m): a pixel of the {kept[0]}-pixel "
        f"micro-batch would count {kept[-1] / kept[0]:g} times one of the {kept[-1]}-pixel one."
    )


register("11.5", LESSON11_5_QUESTION, check_lesson11_5, _solution_11_5, transfer=True)


#: Lesson 11's questionnaire: (question, answer).
LESSON11_QUESTIONNAIRE = (
    ("Under DDP with reduction='mean' and an ignore mask, what weight does one kept pixel of rank r get in the "
     "averaged gradient?",
     "1 / (W * k_r), with W ranks and k_r the rank's kept count: ranks with few kept pixels get more say."),
    ("What does process_group= change, and what does each rank return then?",
     "The denominator is all-reduced over the group: rank r returns local_sum_r * W / D, with D the global kept "
     "count (or kept weight), so DDP's average is the single-process gradient."),
    ("Why must every rank call the loss on every step when process_group= is set?",
     "The loss calls an all_reduce, a collective that every rank of the group must join, in the same order. The "
     "backend pairs the calls by their order, so the others' call pairs with the skipping rank's next one: counts "
     "of different steps get mixed without a word, and the job raises or hangs later, when the calls no longer "
     "match."),
    ("How do you get one data set's pos_weight on every rank when each rank sees one shard?",
     "Count positives and elements on each shard and sum the counts over the ranks: "
     "bw.pos_weight_from_targets(loader, channel_dim=1, process_group=group)."),
    ("DistributedSampler pads a data set whose length is not divisible by the world size. What does that do to "
     "counts?",
     "It repeats the first indices of its (shuffled or not) order so that every rank gets the same number: those "
     "samples are counted twice in "
     "class counts and in per-epoch means. Count from the data set itself, or pass drop_last=True (which drops "
     "samples instead)."),
    ("With gradient accumulation over micro-batches, what should each micro-batch's summed masked loss be divided by?",
     "The kept count of the whole accumulated batch, the same number for every micro-batch. Under DDP: the count "
     "over every rank and micro-batch, all-reduced by hand, and the loss multiplied by W (DDP averages)."),
    ("In which dtype does binary_cross_entropy_with_logits run under torch.autocast, and how do you see that it "
     "is autocast's doing and not type promotion?",
     "float32. Give it inputs that are all bfloat16 or all float16 (logits, targets, pos_weight): outside autocast "
     "the loss then comes back in that dtype, inside it comes back float32."),
    ("What does PyTorch say to F.binary_cross_entropy (on probabilities) under CUDA autocast?",
     "It raises a RuntimeError: binary_cross_entropy is unsafe to autocast; use the logits form."),
)
register_questionnaire("11", LESSON11_QUESTIONNAIRE)
