"""Lesson 08's exercise: rewrite a loss line that the audit reports until it comes back clean and right.

    from bceweights.lessons.exercises import LESSON08_QUESTION, check_lesson08
    def my_loss(logits, masks): ...
    _ = check_lesson08(my_loss)

The checker calls ``my_loss`` under ``bw.audit()`` on two seeded batches, one of them 3 pixels wide
(W == C, where a 1-D ``pos_weight`` lines up with the width without an error), and compares the value
with the intended loss. The solution is printed only by an explicit ``print(lesson08_solution())``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from bceweights.audit import audit
from bceweights.lessons.exercises.answers import no_answer_yet
from bceweights.lessons.exercises.registry import register

LESSON08_POS_WEIGHT = (1.0, 30.0, 6.0)
LESSON08_VOID = 255.0
#: (N, C, H, W) of the two batches the checker uses: W == C first, then a width that differs.
LESSON08_SHAPES = ((2, 3, 6, 3), (2, 3, 4, 5))

LESSON08_QUESTION = (
    "A model outputs logits (N, 3, H, W); the masks (N, 3, H, W) hold 0 and 1, and 255 on void pixels "
    "nobody annotated. Each channel has its own pos_weight, [1, 30, 6]. This line runs on 3-pixel-wide "
    "crops and is wrong twice over:\n"
    "    F.binary_cross_entropy_with_logits(logits, masks, pos_weight=torch.tensor([1.0, 30.0, 6.0]))\n"
    "Write my_loss(logits, masks) in plain PyTorch: pos_weight per channel, void pixels left out, and the "
    "mean over the elements that are not void. It must work for any N, H and W."
)


def _batch(shape: tuple[int, ...], seed: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=generator, dtype=torch.float64)
    masks = (torch.rand(shape, generator=generator, dtype=torch.float64) < 0.3).double()
    void = torch.rand(shape, generator=generator, dtype=torch.float64) < 0.2
    return logits, masks.masked_fill(void, LESSON08_VOID)


def _per_element(logits: Tensor, masks: Tensor, pos_weight: bool = True) -> tuple[Tensor, Tensor]:
    keep = masks != LESSON08_VOID
    weights = torch.tensor(LESSON08_POS_WEIGHT, dtype=logits.dtype).view(3, 1, 1) if pos_weight else None
    losses = F.binary_cross_entropy_with_logits(logits, masks.masked_fill(~keep, 0), pos_weight=weights, reduction="none")
    return losses * keep, keep


def lesson08_reference(logits: Tensor, masks: Tensor) -> Tensor:
    """The intended loss: per-channel pos_weight, void elements out, mean over the kept elements."""
    losses, keep = _per_element(logits, masks)
    return losses.sum() / keep.sum()


def lesson08_solution() -> str:
    """One solution, as code (print it): the notebook never prints it for you."""
    return (
        "def my_loss(logits, masks):\n"
        "    keep = masks != 255\n"
        "    pos_weight = torch.tensor([1.0, 30.0, 6.0], dtype=logits.dtype).view(3, 1, 1)   # (C, 1, 1)\n"
        "    losses = F.binary_cross_entropy_with_logits(\n"
        "        logits, masks.masked_fill(~keep, 0), pos_weight=pos_weight, reduction=\"none\")\n"
        "    return (losses * keep).sum() / keep.sum()"
    )


def _slip(value: float, logits: Tensor, masks: Tensor) -> str:
    """A hint for a wrong value: which usual slip it matches."""
    losses, keep = _per_element(logits, masks)
    plain, _ = _per_element(logits, masks, pos_weight=False)
    close = lambda other: abs(value - float(other)) <= 1e-6 * max(1.0, abs(float(other)))  # noqa: E731
    if close(losses.sum() / losses.numel()):
        return ("it divides by every element, void ones included (a diluted mean): divide the sum by the "
                "number of kept elements, keep.sum().")
    if close(plain.sum() / keep.sum()):
        return "pos_weight is missing: pass the three values, shaped (3, 1, 1) so that they follow the channels."
    if close(losses.sum()):
        return "that is the sum: divide it by the number of kept elements."
    return ("compute the per-element losses with reduction=\"none\" on targets whose void entries are set to 0, "
            "multiply by keep = masks != 255, and divide the sum by keep.sum().")


def check_lesson08(answer: Callable[[Tensor, Tensor], Tensor] | None) -> bool:
    """Check the answer to :data:`LESSON08_QUESTION` (a function); print a verdict; True when it is right."""
    if answer is None:
        no_answer_yet("your function, e.g. my_loss (defined in the cell above)")
        return False
    if not callable(answer):
        print(f"Expected a function my_loss(logits, masks), got {type(answer).__name__}.")
        return False
    values = []
    for seed, shape in enumerate(LESSON08_SHAPES):
        logits, masks = _batch(shape, seed)
        try:
            with audit() as report:
                value = answer(logits, masks)
        except Exception as error:  # the learner's code: show what it raised
            first = str(error).splitlines()[0] if str(error) else ""
            print(f"Not yet: on a batch of shape {shape} my_loss raised {type(error).__name__}: {first}")
            if shape[3] != shape[1]:
                print("Hint: a 1-D pos_weight lines up with the last axis, W; shape it (3, 1, 1) for the channels.")
            return False
        if report.findings:
            print(f"Not yet: on a batch of shape {shape} the audit reports {', '.join(report.rules)}:")
            for finding in report.findings:
                print("    " + finding.message.splitlines()[0])
            return False
        if not isinstance(value, Tensor) or value.numel() != 1:
            print(f"Expected my_loss to return a one-element tensor (the loss), got {type(value).__name__}.")
            return False
        right = float(lesson08_reference(logits, masks))
        got = float(value)
        if abs(got - right) > 1e-6 * max(1.0, abs(right)):
            print(f"Not yet: on a batch of shape {shape} my_loss gives {got:.4g}, the intended loss is "
                  f"{right:.4g}; {_slip(got, logits, masks)}")
            return False
        values.append(right)
    print(f"Correct: the audit is clean on both batches and the values match ({values[0]:.4g} and "
          f"{values[1]:.4g}). The void pixels are out, and pos_weight follows the channels at any width.")
    return True


register("08.1", LESSON08_QUESTION, check_lesson08, lambda: "\n" + lesson08_solution(), transfer=True)
