"""Lesson 02's exercises: per-channel ``pos_weight`` that PyTorch itself lines up with the channels, on
images and on volumes, and what ``repeat`` costs next to ``expand``.

The tensors are tried with PyTorch's own ``F.binary_cross_entropy_with_logits`` (no ``channel_dim``
to help), on shapes chosen so that a wrong layout either fails or, worse, runs on the wrong axis.
``check_lesson02`` and ``LESSON02_QUESTION`` are exercise 02.1 under its first name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from bceweights.lessons.exercises.answers import answer_choice, answer_number, judge_number, no_answer_yet
from bceweights.lessons.exercises.registry import register, register_questionnaire
from bceweights.lessons.explore.comparison import read_operand
from bceweights.shapes import shape_str

#: 02.1: the lesson demonstrated [1, 30, 6]; the exercise uses other values on the same layout.
LESSON02_VALUES = (4.0, 1.0, 12.0)
#: The inputs 02.1 is tried on: a realistic one, one whose width equals the channel count, and a smaller last
#: batch (an answer built for exactly B = 4 breaks there).
LESSON02_SHAPES = ((4, 3, 256, 256), (4, 3, 8, 3), (5, 3, 8, 3))

LESSON02_QUESTION = (
    "Predictions have shape (B, 3, H, W). Write pos_weight so that channel 0 gets "
    f"{LESSON02_VALUES[0]:g}, channel 1 gets {LESSON02_VALUES[1]:g} and channel 2 gets {LESSON02_VALUES[2]:g}, "
    "for any B, H and W, passed to PyTorch's own F.binary_cross_entropy_with_logits (no channel_dim to help)."
)

_IMAGE_DIMS = ("N", "C", "H", "W")


def _values_text(values: Sequence[float]) -> str:
    """``(4.0, 1.0, 12.0)`` as ``"4, 1, 12"``."""
    return ", ".join(f"{v:g}" for v in values)

_VOLUME_DIMS = ("N", "C", "D", "H", "W")


def _tensor_or_hint(pos_weight: Any) -> torch.Tensor | None:
    """``pos_weight`` when it is a floating-point tensor, else None after printing what to change."""
    if pos_weight is None:
        no_answer_yet("a tensor")
        return None
    if not isinstance(pos_weight, torch.Tensor):
        print(f"Not yet: pos_weight is a {type(pos_weight).__name__}; PyTorch needs a tensor, e.g. torch.tensor([...]).")
        return None
    if not pos_weight.is_floating_point():
        print(f"Not yet: pos_weight has dtype {pos_weight.dtype}; write the values as floats (e.g. 4.0, not 4).")
        return None
    return pos_weight


def _fixed_batch_hint(pos_weight: torch.Tensor, ndim: int) -> bool:
    """Print a hint and return True when ``pos_weight`` has the input's ``ndim`` dimensions and a batch size other than 1."""
    if pos_weight.dim() == ndim and pos_weight.shape[0] != 1:
        print(
            f"Not yet: shape {shape_str(pos_weight.shape)} carries a batch axis of size {pos_weight.shape[0]}: this "
            f"only works for batches of exactly {pos_weight.shape[0]} (a smaller last batch raises): drop the batch axis."
        )
        return True
    return False


def _varying_dims(effective: torch.Tensor, dims: Sequence[str]) -> list[str]:
    """The named dimensions along which ``effective`` is not constant."""
    varying = []
    for index, name in enumerate(dims):
        first = effective.narrow(index, 0, 1)
        if not torch.equal(effective, first.expand_as(effective)):
            varying.append(name)
    return varying


def _lands_per_channel(pos_weight: torch.Tensor, values: Sequence[float], input_shape: tuple[int, ...], dims: Sequence[str]) -> bool:
    """Run PyTorch's loss with ``pos_weight`` on ``input_shape``; print what is wrong, True when channel c gets values[c]."""
    zeros = torch.zeros(input_shape)
    try:
        out = F.binary_cross_entropy_with_logits(zeros, zeros, pos_weight=pos_weight, reduction="none")
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        print(
            f"Not yet: shape {shape_str(pos_weight.shape)} on predictions of shape {input_shape}: PyTorch raises\n"
            f"    {first_line}\n"
            f"Broadcasting lines shapes up from the right: your last dimension meets {dims[-1]}."
        )
        return False
    if tuple(out.shape) != tuple(input_shape):
        print(f"Not yet: PyTorch runs, but the loss grows to shape {tuple(out.shape)}: pos_weight has more dimensions than the input.")
        return False
    effective = torch.broadcast_to(pos_weight, input_shape).to(torch.float64)
    expected_shape = (1, len(values)) + (1,) * (len(input_shape) - 2)
    expected = torch.tensor(values, dtype=torch.float64).view(expected_shape).expand(input_shape)
    if torch.equal(effective, expected):
        return True
    varying = _varying_dims(effective, dims)
    if varying and "C" not in varying:
        where = " and ".join(varying)
        print(
            f"Not yet: on predictions of shape {input_shape} ({', '.join(dims)}) PyTorch runs without a word, but "
            f"shape {shape_str(pos_weight.shape)} lines up with {where}, not with C: the values go to "
            f"{where} of every channel. A channel needs {len(input_shape) - 2} trailing 1s after its values."
        )
    else:
        channel_values = sorted(set(effective.select(1, 0).flatten().tolist()))
        print(
            f"Not yet: on predictions of shape {input_shape} PyTorch runs, but channel 0 gets {channel_values} "
            f"instead of {values[0]:g}; check the values and their order (channel 0, 1, ...)."
        )
    return False


def check_lesson02(pos_weight: Any) -> bool:
    """Exercise 02.1: is ``pos_weight`` "4, 1, 12 for channels 0, 1, 2" on ``(B, 3, H, W)`` predictions?

    An answer with a batch axis of size other than 1 is refused (it fits one batch size only). The answer is
    tried on ``(4, 3, 256, 256)``, ``(4, 3, 8, 3)`` (where ``W == C``, so a plain ``(3,)`` vector would
    silently weight the columns) and ``(5, 3, 8, 3)`` (another batch size), through PyTorch's own
    ``F.binary_cross_entropy_with_logits`` and through ``bceweights``. Prints what is right or wrong and
    returns True only when every pixel of channel ``c`` gets ``[4, 1, 12][c]`` in both libraries.
    """
    pos_weight = _tensor_or_hint(pos_weight)
    if pos_weight is None or _fixed_batch_hint(pos_weight, len(_IMAGE_DIMS)):
        return False
    for input_shape in LESSON02_SHAPES:
        if not _lands_per_channel(pos_weight, LESSON02_VALUES, input_shape, _IMAGE_DIMS):
            return False
        reading = read_operand("pos_weight", pos_weight, input_shape)
        if not reading.accepted:
            print(f"Not yet: PyTorch takes it, but bceweights refuses:\n{reading.bceweights_error}")
            return False
    print(
        f"Correct: shape {shape_str(pos_weight.shape)} lines up with the channel dimension on any (B, 3, H, W), "
        f"so every pixel of channel c gets [{_values_text(LESSON02_VALUES)}][c], even when W happens to be 3."
    )
    return True


def _solution_02_1() -> str:
    values = ", ".join(f"{v:.1f}" for v in LESSON02_VALUES)
    return (
        f"pos_weight = torch.tensor([{values}]).view(3, 1, 1). Right-aligned, (3, 1, 1) meets (C, H, W): the 3 sits "
        "under C and the two 1s broadcast over H and W. A plain (3,) meets W (an error, or silently the columns "
        "when W == 3); .repeat(B, 1) makes (B, 3), which meets (H, W)."
    )


LESSON02_1_QUESTION = LESSON02_QUESTION
check_lesson02_1 = check_lesson02
register("02.1", LESSON02_1_QUESTION, check_lesson02_1, _solution_02_1)


#: 02.2: the same idea on volumes (B, C, D, H, W), with four channels.
LESSON02_2_VALUES = (2.0, 1.0, 8.0, 4.0)
#: A plain volume, one whose depth equals C (a (4, 1, 1) answer runs on D) and one whose width does.
LESSON02_2_SHAPES = ((2, 4, 8, 8, 8), (2, 4, 4, 6, 5), (2, 4, 6, 5, 4), (3, 4, 8, 8, 8))
LESSON02_2_QUESTION = (
    "A 3-D segmenter predicts volumes of shape (B, 4, D, H, W). Write pos_weight for PyTorch's own "
    f"F.binary_cross_entropy_with_logits so that channel c gets [{_values_text(LESSON02_2_VALUES)}][c] "
    "for any B, D, H and W."
)


def check_lesson02_2(pos_weight: Any) -> bool:
    """Exercise 02.2: tried on ``(2, 4, 8, 8, 8)``, ``(2, 4, 4, 6, 5)`` (D == C), ``(2, 4, 6, 5, 4)`` (W == C)
    and ``(3, 4, 8, 8, 8)`` (another batch size); a batch axis of size other than 1 is refused."""
    pos_weight = _tensor_or_hint(pos_weight)
    if pos_weight is None or _fixed_batch_hint(pos_weight, len(_VOLUME_DIMS)):
        return False
    for input_shape in LESSON02_2_SHAPES:
        if not _lands_per_channel(pos_weight, LESSON02_2_VALUES, input_shape, _VOLUME_DIMS):
            if tuple(pos_weight.shape) == (4, 1, 1):
                print("(4, 1, 1) is the recipe for images (C, H, W); a volume has one more trailing dimension.")
            return False
    print(
        f"Correct: shape {shape_str(pos_weight.shape)} lines up with C of (B, 4, D, H, W): the 4 sits under C and "
        "three trailing 1s broadcast over D, H and W, whatever their sizes."
    )
    return True


def _solution_02_2() -> str:
    values = ", ".join(f"{v:.1f}" for v in LESSON02_2_VALUES)
    return (
        f"pos_weight = torch.tensor([{values}]).view(4, 1, 1, 1): right-aligned it meets (C, D, H, W). The image "
        "recipe (4, 1, 1) meets (D, H, W): an error, or silently the depth when D == 4."
    )


register("02.2", LESSON02_2_QUESTION, check_lesson02_2, _solution_02_2, transfer=True)


#: 02.3: what repeat costs; the lesson measured bytes on a (2, 3, 4, 5) toy and 2 MiB / 6 MiB at (8, 3, 256, 256).
LESSON02_3_SHAPE = (8, 4, 512, 512)
LESSON02_3_QUESTION = (
    "A float32 mask of shape (8, 512, 512) weights predictions of shape (8, 4, 512, 512). How many MiB of new "
    "memory does mask.unsqueeze(1).repeat(1, 4, 1, 1) allocate? (1 MiB = 2**20 bytes.)"
)


def lesson02_3_answer() -> float:
    """Bytes of the materialised ``(8, 4, 512, 512)`` float32 weight, in MiB."""
    n, c, h, w = LESSON02_3_SHAPE
    return n * c * h * w * 4 / 2**20


def check_lesson02_3(answer: float | None) -> bool:
    """Exercise 02.3: ``8 * 4 * 512 * 512 * 4 bytes = 32 MiB`` (also accepts 33.55, the same in MB)."""
    value = answer_number(answer, "a number of MiB")
    if value is None:
        return False
    right = lesson02_3_answer()
    mask_mib = right / LESSON02_3_SHAPE[1]
    if abs(value - right * 2**20 / 1e6) <= 0.05:
        print(f"Correct, in MB (10**6 bytes): {value:.4g} MB = {right:.4g} MiB. expand would allocate nothing.")
        return True
    return judge_number(
        value,
        right,
        correct=(
            f"8 * 4 * 512 * 512 elements * 4 bytes = {right:.4g} MiB, four times the mask's {mask_mib:.4g} MiB. "
            "mask.unsqueeze(1).expand(8, 4, 512, 512), or plain broadcasting of mask.unsqueeze(1), allocates 0."
        ),
        slips=[
            (0.0, "is what expand allocates: a view with stride 0 along C. repeat copies the mask once per channel."),
            (mask_mib, "is the mask's own memory; repeat(1, 4, 1, 1) makes a new tensor with 4 copies of it."),
            (
                right - mask_mib,
                "counts only the 3 copies beyond the mask; the new tensor holds all 4 copies, "
                "and the mask keeps its own memory besides.",
            ),
            (right * 2, "counts 8 bytes per element; float32 takes 4."),
            (right * 8, "counts bits, not bytes."),
            (right * 2**20, "is in bytes; divide by 2**20 for MiB."),
        ],
        otherwise="is not it. Count the elements of the (8, 4, 512, 512) result and multiply by 4 bytes per float32.",
        abs_tol=0.05,
    )


def _solution_02_3() -> str:
    return (
        f"repeat materialises (8, 4, 512, 512) = {8 * 4 * 512 * 512:,} float32 values, 4 bytes each: "
        f"{lesson02_3_answer():.4g} MiB. The mask itself is {lesson02_3_answer() / 4:.4g} MiB; expand or broadcasting "
        "reuse it at no cost. torch.Tensor.untyped_storage().nbytes() measures it."
    )


register("02.3", LESSON02_3_QUESTION, check_lesson02_3, _solution_02_3, transfer=True)


#: 02.4 (a concept): three calls that all run on (3, 3, 4, 5) logits with a (3, 4, 5) mask; one weights the wrong axis.
LESSON02_4_CHOICES = ("a", "b", "c")
LESSON02_4_QUESTION = (
    "logits and target have shape (3, 3, 4, 5): three images, three channels. mask has shape (3, 4, 5), one map "
    "per image. All three calls below run without an error. Which one weights the wrong axis?\n"
    "  (a) F.binary_cross_entropy_with_logits(logits, target, weight=mask.unsqueeze(1))\n"
    "  (b) F.binary_cross_entropy_with_logits(logits, target, weight=mask)\n"
    "  (c) F.binary_cross_entropy_with_logits(logits, target, weight=mask[:, None].expand_as(logits))\n"
    'Answer with one letter in quotes, e.g. "a".'
)


def check_lesson02_4(answer: object) -> bool:
    """Exercise 02.4: (b); right-aligned, ``(N, H, W)`` meets ``(C, H, W)``, and with ``N == C`` it runs."""
    letter = answer_choice(answer, LESSON02_4_CHOICES)
    if letter is None:
        return False
    if letter == "b":
        print(
            "Correct: right-aligned, the mask's (3, 4, 5) meets (C, H, W), and since N == C == 3 the sizes match: "
            "channel c of every image gets image c's map. (a) and (c) put the mask's N under the batch axis."
        )
        return True
    print(
        f"Not yet: ({letter}) weights the right axis. Its mask gets a size-1 channel axis, (3, 1, 4, 5), so N meets N and the map is "
        "shared by the channels. Look for the call whose mask keeps its (N, H, W) shape: right-aligned, which axis "
        "does its N meet?"
    )
    return False


def _solution_02_4() -> str:
    return (
        "(b). Broadcasting aligns shapes from the right: (3, 4, 5) under (3, 3, 4, 5) puts the mask's image axis "
        "under the channels. With N == C the sizes agree, so PyTorch runs and gives channel c of every image the "
        "map of image c. (a) unsqueeze(1) and (c) [:, None].expand_as(logits) both make (3, 1, 4, 5) first, the "
        "right pairing; (c) is a zero-copy view of (a)."
    )


register("02.4", LESSON02_4_QUESTION, check_lesson02_4, _solution_02_4)


#: Lesson 02's questionnaire: (question, answer).
LESSON02_QUESTIONNAIRE = (
    ("How does broadcasting pair an operand's dimensions with the input's?",
     "From the right (trailing dimensions first); each pair of sizes must be equal or one of them 1; missing "
     "leading dimensions count as 1. Meaning (batch, channel, pixel) plays no part. weight and pos_weight must "
     "also broadcast to the input's own shape (PyTorch multiplies the loss in place): no extra leading "
     "dimensions, and no size-1 axis of the input stretched."),
    ("What shape does a (N, H, W) mask need as weight for (N, C, H, W) predictions, and why?",
     "(N, 1, H, W), via mask.unsqueeze(1): the size-1 channel axis is broadcast over the C channels."),
    ("When does weight=mask with a (N, H, W) mask run without an error, and what does it do then?",
     "When N == C it pairs image c's map with channel c of every image (silently wrong); when N = 1 it "
     "broadcasts and happens to be right. Any other N raises."),
    ("What is the difference between expand and repeat?",
     "expand returns a view with stride 0 along the new size (no memory); repeat copies the data that many times."),
    ("Why is target * mask not a way to weight the loss?",
     "It changes the labels: masked-out positives become negatives and are pushed down. weight=mask leaves the "
     "labels alone and gives masked pixels a zero gradient."),
    ("How do you give each of C channels its own weight, and each its own mask?",
     "A weight per channel: w.view(C, 1, 1) (times mask.unsqueeze(1) for a shared mask). A mask per channel: "
     "torch.stack(masks, dim=1), shape (N, C, H, W)."),
    ("Why does pos_weight=torch.tensor([1, 30, 6]).repeat(B, 1) fail on (B, 3, 256, 256), and what is the fix?",
     "Right-aligned, (B, 3) meets (H, W) = (256, 256). Drop repeat and write .view(3, 1, 1), which meets C."),
    ("On (4, 3, 8, 3) predictions, what does pos_weight=torch.tensor([1., 30., 6.]) do in PyTorch?",
     "It runs and weights the three columns (W = 3) instead of the channels; bceweights refuses it."),
)
register_questionnaire("02", LESSON02_QUESTIONNAIRE)
