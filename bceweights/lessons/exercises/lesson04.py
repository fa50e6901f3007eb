"""Lesson 04's exercises: balanced class weights from counts (04.1), a repair of the thread's
``pos_weight.repeat(B, 1)`` counted from the masks (04.2), what a background-down weight map changes against
``pos_weight`` under SGD and Adam (04.3, a concept), and the end-of-lesson questionnaire.
"""

from __future__ import annotations

from typing import Any

import torch

from bceweights.lessons.exercises.answers import answer_number, judge_choice, judge_number, no_answer_yet
from bceweights.lessons.exercises.registry import register, register_questionnaire


#: 04.1: scikit-learn's "balanced" class weights on a label map with three classes.
LESSON04_1_COUNTS = (7000, 2500, 500)
LESSON04_1_QUESTION = (
    f"A single-label segmentation has three classes with pixel counts {LESSON04_1_COUNTS} (background, road, "
    "sign). What 'balanced' class weight, n_samples / (n_classes * count), does the rarest class get "
    "(bw.balanced_weights, sklearn's compute_class_weight('balanced'))?"
)


def lesson04_1_answer() -> float:
    counts = LESSON04_1_COUNTS
    return sum(counts) / (len(counts) * min(counts))


def check_lesson04_1(answer: float | None) -> bool:
    """Exercise 04.1: ``10000 / (3 * 500) = 6.667`` (within 0.1 %), with the usual slips named."""
    value = answer_number(answer, "a class weight")
    if value is None:
        return False
    counts = LESSON04_1_COUNTS
    n, k, rare = sum(counts), len(counts), min(counts)
    shares = sorted(c / n for c in counts)
    return judge_number(
        value,
        lesson04_1_answer(),
        correct=(
            f"{n} / ({k} * {rare}) = {lesson04_1_answer():.4g}. The weighted counts are then equal, n / k for every "
            f"class: {rare} * {lesson04_1_answer():.4g} = {n / k:.4g}; the common class gets {n / (k * max(counts)):.4g}."
        ),
        slips=[
            (n / rare, f"is n / count = 1 / share: the rule divides by n_classes * count, so divide by {k} too."),
            ((n - rare) / rare, "is neg / pos, BCE's pos_weight for a one-vs-rest channel, not a class weight."),
            (max(counts) / rare, "is the ratio to the largest class; 'balanced' divides n by n_classes * count."),
            (shares[1] / (rare / n), "is median-frequency balancing (median share / share), another rule."),
        ],
        otherwise="is not it. 'balanced' is n_samples / (n_classes * count) with n_samples the total pixel count.",
    )


def _solution_04_1() -> str:
    counts = LESSON04_1_COUNTS
    n, k = sum(counts), len(counts)
    weights = ", ".join(f"{n / (k * c):.4g}" for c in counts)
    return (
        f"n = {n}, n_classes = {k}: the weights are {n} / ({k} * count) = [{weights}]. In PyTorch: "
        "counts = torch.bincount(labels.flatten(), minlength=3); counts.sum() / (3 * counts)."
    )


register("04.1", LESSON04_1_QUESTION, check_lesson04_1, _solution_04_1, transfer=True)


#: 04.2 (a repair): the thread's pos_weight, repeated over the batch and in B, G, R order.
LESSON04_2_QUESTION = (
    "The thread behind Q8 wrote pos_weight=torch.Tensor([1, 30, 6]).repeat(BATCH_SIZE, 1) for (N, 3, H, W) logits "
    "and R, G, B masks, with hand-typed values in B, G, R order. Repair it: write a function "
    "plates_pos_weight(masks) that counts from masks (N, 3, H, W) of 0/1 and returns the pos_weight to pass to "
    "torch.nn.BCEWithLogitsLoss, one neg/pos per channel in the masks' order, shaped to work for any batch size. "
    "Answer with the function itself, e.g. my_pos_weight = plates_pos_weight."
)


def lesson04_2_masks() -> torch.Tensor:
    """The checker's masks: (6, 3, 8, 8) with channel shares of about 0.06, 0.02 and 0.25 (R, G, B), all present."""
    generator = torch.Generator().manual_seed(45)
    shares = torch.tensor([0.06, 0.02, 0.25]).view(1, 3, 1, 1)
    masks = (torch.rand(6, 3, 8, 8, generator=generator) < shares).float()
    masks[0, :, 0, 0] = 1.0  # every channel has a positive
    return masks


def check_lesson04_2(plates_pos_weight: Any) -> bool:
    """Exercise 04.2: ``(neg / pos).view(3, 1, 1)`` counted per channel, R, G, B; any batch size works."""
    if plates_pos_weight is None:
        no_answer_yet("your function, e.g. plates_pos_weight (no parentheses)")
        return False
    if not callable(plates_pos_weight):
        print(f"Expected a function taking masks (N, 3, H, W), got {plates_pos_weight!r}.")
        return False
    masks = lesson04_2_masks()
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
        "dimension 1 of (N, 3, H, W) for any batch size, as section 2 shows."
    )
    return True


def _solution_04_2() -> str:
    return (
        "pos = masks.sum(dim=(0, 2, 3)); neg = masks.numel() / masks.shape[1] - pos; return (neg / pos).view(3, 1, 1). "
        "Counting replaces the hand-typed values (and their B, G, R order); .view(3, 1, 1) replaces .repeat(BATCH_SIZE, 1), "
        "so the tensor lines up with the channels and works for the last, smaller batch too. Add .to(device) for a GPU."
    )


register("04.2", LESSON04_2_QUESTION, check_lesson04_2, _solution_04_2)


#: 04.3 (a concept): the map and pos_weight give one optimum; under SGD their steps differ by neg/pos.
LESSON04_3_RATIO = 90.0
LESSON04_3_CHOICES = ("a", "b", "c")
LESSON04_3_QUESTION = (
    f"Your 3-D segmenter trains with plain SGD and loss bw.bce_with_logits(x, y, pos_weight=r), r = neg/pos = "
    f"{LESSON04_3_RATIO:g}, reduction 'mean', and a learning rate you tuned. A colleague replaces pos_weight=r with "
    "weight=bw.rebalance_map(y) (background voxels 1/r, foreground 1), same reduction, same learning rate. What "
    "changes? (a) nothing: both balance the two classes, so the optimum and the steps are the same; "
    f"(b) the optimum is the same, but every step is {LESSON04_3_RATIO:g} times smaller, so training crawls until the "
    "learning rate is raised by that factor (with Adam the factor would nearly cancel); "
    "(c) the optimum moves: the map down-weights the background instead of up-weighting the foreground, so the "
    "model predicts foreground less often. Answer with one letter in quotes."
)
_LESSON04_3_VERDICTS = {
    "a": f"both give the foreground {LESSON04_3_RATIO:g} times the background's weight, so the optimum is the same; "
    f"but the map's weights are pos_weight's divided by {LESSON04_3_RATIO:g}, so its loss and every gradient are "
    f"{LESSON04_3_RATIO:g} times smaller, and an SGD step is the learning rate times the gradient.",
    "c": "where the loss is lowest depends only on the ratio of the foreground weight to the background weight, "
    f"{LESSON04_3_RATIO:g} in both (bw.optimal_probability(q, r)); the map moves the optimum exactly as pos_weight does.",
}


def check_lesson04_3(answer: object) -> bool:
    """Exercise 04.3: (b): the map's loss is pos_weight's loss divided by ``r``; one optimum, SGD steps ``r`` times smaller."""
    return judge_choice(
        answer,
        LESSON04_3_CHOICES,
        "b",
        correct=(
            f"the map's weights (1 and 1/r) are pos_weight's (r and 1) divided by r, so the loss is the same function "
            f"divided by r = {LESSON04_3_RATIO:g}: the same minimum, a gradient {LESSON04_3_RATIO:g} times smaller. "
            "With SGD, raise the learning rate by r (or keep pos_weight); Adam divides each gradient by a running "
            "estimate of its size, so a constant factor nearly cancels (section 3)."
        ),
        wrong={letter: f"({letter}) does not fit: {verdict}" for letter, verdict in _LESSON04_3_VERDICTS.items()},
    )


def _solution_04_3() -> str:
    r = LESSON04_3_RATIO
    return (
        f"(b). pos_weight=r weighs a foreground voxel r and a background voxel 1; the map weighs them 1 and 1/r. Every "
        f"weight is divided by r = {r:g}, so the loss is the same function of the logits divided by {r:g}: its minimum "
        "(where the loss is lowest) is unchanged, and its gradient is "
        f"{r:g} times smaller. Plain SGD steps by the learning rate times the gradient, so each step is {r:g} times "
        "shorter: raise the learning rate by that factor, or keep pos_weight. Adam's update divides by a running "
        "estimate of the gradient's size, so the factor nearly cancels (all but eps). Section 3 prints the two "
        "gradient sums at logits 0: -0.4945 and -0.005458 on the foreground, 90.6 times apart."
    )


register("04.3", LESSON04_3_QUESTION, check_lesson04_3, _solution_04_3)


#: Lesson 04's questionnaire: (question, answer).
LESSON04_QUESTIONNAIRE = (
    ("What pos_weight does PyTorch's documentation give for 100 positives and 300 negatives, and what balances then?",
     "300 / 100 = 3. The weighted counts balance (100 x 3 = 300 against 300), not the sums of loss terms."),
    ("Why count a data set's positives batch by batch (bw.pos_weight_from_targets over a DataLoader)?",
     "The counts are sums, so they add up over batches exactly; nothing is concatenated, and the data set may be "
     "larger than memory."),
    ("scikit-learn's 'balanced' weights and median-frequency weights: in what two ways do they differ?",
     "The scale (median frequency gives 1 to a class at the median frequency) and the frequency itself (median "
     "frequency counts only the pixels of the images that contain the class). With every class in every image they "
     "agree up to one factor."),
    ("Why does pos_weight.repeat(B, 1) fail on (B, 3, H, W) logits, and what is the fix?",
     "Broadcasting lines up trailing dimensions, so the 3 meets the width. Drop .repeat and view the (3,) tensor as "
     "(3, 1, 1), or pass channel_dim=1 to bceweights."),
    ("The thread's comment says 'red, blue, green = 6, 1, 30' and its tensor is [1, 30, 6]. What goes wrong on an "
     "R, G, B mask?",
     "The tensor is in B, G, R order, so red gets blue's weight and blue red's. The weights must follow the mask's "
     "channels: [6, 30, 1]. Counting from the masks avoids the question."),
    ("pos_weight = neg/pos and a background-down weight map (bw.rebalance_map) balance the gradient alike. How do "
     "they differ?",
     "In scale, by the ratio neg/pos: the map's loss is pos_weight's divided by it. Under SGD that is a different "
     "effective learning rate; Adam mostly cancels a constant factor. Both move the optimum the same way."),
    ("What does reduction='weighted_mean' divide by, and why use it with a weight map?",
     "By the sum of the weights instead of the number of elements: it removes the weights' common scale from the "
     "step, so a background-down map and pos_weight with the same ratio give the same step. A new weight ratio still "
     "changes the step (lesson 03), so tune the learning rate once for it."),
    ("bw.rebalance_map(target) counts the ratio in the batch it is given. When should you pass the data set's ratio?",
     "When the batches' foreground shares vary: a per-batch ratio changes the loss's scale from step to step, which "
     "even Adam does not cancel. Count once over the data set and pass it: bw.rebalance_map(target, ratio)."),
)
register_questionnaire("04", LESSON04_QUESTIONNAIRE)
