"""Lesson 09's exercises and questionnaire.

* 09.1 (repair): rewrite a loss line that the audit reports until it comes back clean and right. The
  checker calls ``my_loss`` under ``bw.audit()`` on two seeded batches, one of them 3 pixels wide
  (W == C, where a 1-D ``pos_weight`` lines up with the width without an error), and compares the
  value with the intended loss, then on a batch where every pixel is void, where the loss must be 0, not
  NaN. ``check_lesson09`` / ``LESSON09_QUESTION`` are its first names.
* 09.2 (concept): which of three ``pos_weight`` calls the audit reports as an error (a per-element
  ``pos_weight`` is legitimate; one that follows the labels is not).
* 09.3 (repair): a training step fed PNG masks of 0 and 255; the checker runs the learner's step
  under audit and compares it with the loss meant.
* 09.4 (transfer): the constant that masking by multiplication adds to a with-logits mean.

Solutions are printed only on request: ``show_solution("09.K")`` (or ``print(lesson09_solution())``
for 09.1), the questionnaire's answers by ``show_solution("09.Q")``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from bceweights.audit import audit
from bceweights.lessons.exercises.answers import answer_choice, answer_number, judge_number, no_answer_yet
from bceweights.lessons.exercises.registry import register, register_questionnaire

LESSON09_POS_WEIGHT = (1.0, 30.0, 6.0)
LESSON09_VOID = 255.0
#: (N, C, H, W) of the two batches the checker uses: W == C first, then a width that differs.
LESSON09_SHAPES = ((2, 3, 6, 3), (2, 3, 4, 5))

LESSON09_QUESTION = (
    "A model outputs logits (N, 3, H, W); the masks (N, 3, H, W) hold 0 and 1, and 255 on void pixels "
    "nobody annotated. Each channel has its own pos_weight, [1, 30, 6]. This line runs on 3-pixel-wide "
    "crops and is wrong twice over:\n"
    "    F.binary_cross_entropy_with_logits(logits, masks, pos_weight=torch.tensor([1.0, 30.0, 6.0]))\n"
    "Write my_loss(logits, masks) in plain PyTorch: pos_weight per channel, void pixels left out, and the "
    "mean over the elements that are not void. It must work for any N, H and W, and give 0 (not NaN) on a batch "
    "in which every pixel is void."
)


def _batch(shape: tuple[int, ...], seed: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=generator, dtype=torch.float64)
    masks = (torch.rand(shape, generator=generator, dtype=torch.float64) < 0.3).double()
    void = torch.rand(shape, generator=generator, dtype=torch.float64) < 0.2
    return logits, masks.masked_fill(void, LESSON09_VOID)


def _per_element(logits: Tensor, masks: Tensor, pos_weight: bool = True) -> tuple[Tensor, Tensor]:
    keep = masks != LESSON09_VOID
    weights = torch.tensor(LESSON09_POS_WEIGHT, dtype=logits.dtype).view(3, 1, 1) if pos_weight else None
    losses = F.binary_cross_entropy_with_logits(logits, masks.masked_fill(~keep, 0), pos_weight=weights, reduction="none")
    return losses * keep, keep


def lesson09_reference(logits: Tensor, masks: Tensor) -> Tensor:
    """The intended loss: per-channel pos_weight, void elements out, mean over the kept elements (0 if none is)."""
    losses, keep = _per_element(logits, masks)
    return losses.sum() / keep.sum().clamp_min(1)


def lesson09_solution() -> str:
    """One solution, as code (print it): the notebook never prints it for you."""
    return (
        "def my_loss(logits, masks):\n"
        "    keep = masks != 255\n"
        "    pos_weight = torch.tensor([1.0, 30.0, 6.0], dtype=logits.dtype).view(3, 1, 1)   # (C, 1, 1)\n"
        "    losses = F.binary_cross_entropy_with_logits(\n"
        "        logits, masks.masked_fill(~keep, 0), pos_weight=pos_weight, reduction=\"none\")\n"
        "    return (losses * keep).sum() / keep.sum().clamp_min(1)   # 0, not NaN, when every pixel is void"
    )


def _slip(value: float, logits: Tensor, masks: Tensor) -> str:
    """A hint for a wrong value: which usual slip it matches."""
    losses, keep = _per_element(logits, masks)
    plain, _ = _per_element(logits, masks, pos_weight=False)
    close = lambda other: abs(value - float(other)) <= 1e-6 * max(1.0, abs(float(other)))  # noqa: E731
    if close(losses.sum() / losses.numel()):
        return ("it divides by every element, void ones included (a diluted mean): divide the sum by the "
                "number of kept elements, keep.sum().clamp_min(1).")
    if close(plain.sum() / keep.sum().clamp_min(1)):
        return "pos_weight is missing: pass the three values, shaped (3, 1, 1) so that they follow the channels."
    if close(losses.sum()):
        return "that is the sum: divide it by the number of kept elements."
    return ("compute the per-element losses with reduction=\"none\" on targets whose void entries are set to 0, "
            "multiply by keep = masks != 255, and divide the sum by keep.sum().clamp_min(1).")


def check_lesson09(answer: Callable[[Tensor, Tensor], Tensor] | None) -> bool:
    """Check the answer to :data:`LESSON09_QUESTION` (a function); print a verdict; True when it is right."""
    if answer is None:
        no_answer_yet("your function, e.g. my_loss (defined in the cell above)")
        return False
    if not callable(answer):
        print(f"Expected a function my_loss(logits, masks), got {type(answer).__name__}.")
        return False
    values = []
    for seed, shape in enumerate(LESSON09_SHAPES):
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
        right = float(lesson09_reference(logits, masks))
        got = float(value)
        if abs(got - right) > 1e-6 * max(1.0, abs(right)):
            print(f"Not yet: on a batch of shape {shape} my_loss gives {got:.4g}, the intended loss is "
                  f"{right:.4g}; {_slip(got, logits, masks)}")
            return False
        values.append(right)
    if not _zero_when_all_void(answer):
        return False
    print(f"Correct: the audit is clean on both batches and the values match ({values[0]:.4g} and "
          f"{values[1]:.4g}). The void pixels are out, pos_weight follows the channels at any width, and a batch "
          "with no pixel kept gives 0.")
    return True


def _zero_when_all_void(answer: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Whether ``answer`` gives 0, with a zero and finite gradient, on a batch whose every pixel is void; print
    why not otherwise (``torch.nan_to_num`` of a 0 / 0 gives 0 but leaves a NaN gradient)."""
    shape = LESSON09_SHAPES[1]
    logits, _ = _batch(shape, len(LESSON09_SHAPES))
    logits = logits.clone().requires_grad_(True)
    masks = torch.full(shape, LESSON09_VOID, dtype=torch.float64)
    try:
        loss = answer(logits, masks)
        value = float(loss.detach())
        gradient = torch.autograd.grad(loss, logits, allow_unused=True)[0] if loss.requires_grad else None
    except Exception as error:  # the learner's code: show what it raised
        first = str(error).splitlines()[0] if str(error) else ""
        print(f"Not yet: on a batch where every pixel is void my_loss raised {type(error).__name__}: {first}")
        return False
    if value != 0.0:
        why = ("the kept count is 0 there, and 0 / 0 is NaN; " if math.isnan(value) else "")
        print(f"Not yet: on a batch where every pixel is void my_loss gives {value:.4g}; {why}divide the kept sum by "
              "keep.sum().clamp_min(1), so that such a batch gives 0 and teaches nothing.")
        return False
    if gradient is not None and not bool((gradient == 0).all()):
        print("Not yet: on a batch where every pixel is void my_loss gives 0, but its gradient is not 0 everywhere "
              "(NaN, if a 0 / 0 was hidden by nan_to_num or a where): one step would ruin the model. Divide the kept "
              "sum by keep.sum().clamp_min(1) instead, so that the value and the gradient are both 0.")
        return False
    return True


def _run_audited(answer: Callable[..., Tensor], shape: tuple[int, ...], *tensors: Tensor) -> Tensor | None:
    """Call the learner's function under audit; the value, or None after printing why it is not accepted."""
    try:
        with audit() as report:
            value = answer(*tensors)
    except Exception as error:  # the learner's code: show what it raised
        first = str(error).splitlines()[0] if str(error) else ""
        print(f"Not yet: on a batch of shape {shape} your function raised {type(error).__name__}: {first}")
        return None
    if report.findings:
        print(f"Not yet: on a batch of shape {shape} the audit reports {', '.join(report.rules)}:")
        for finding in report.findings:
            print("    " + finding.message.splitlines()[0])
        return None
    if not isinstance(value, Tensor) or value.numel() != 1:
        print(f"Expected your function to return a one-element tensor (the loss), got {type(value).__name__}.")
        return None
    return value


LESSON09_1_QUESTION = LESSON09_QUESTION
check_lesson09_1 = check_lesson09
register("09.1", LESSON09_1_QUESTION, check_lesson09_1, lambda: "\n" + lesson09_solution(), transfer=True)


# --------------------------------------------------------------------------------------------------
# 09.2: which pos_weight is an error?

LESSON09_2_CHOICES = ("a", "b", "c")
#: The three calls of 09.2, as the question writes them (``logits``, ``labels``: (8, 3)).
LESSON09_2_CALLS = {
    "a": "pos_weight=torch.tensor([1.0, 4.0, 9.0])",
    "b": "pos_weight=torch.rand(8, 3) + 1",
    "c": "pos_weight=torch.tensor([0.2, 0.8])[labels.long()]",
}
LESSON09_2_QUESTION = (
    "A multi-label classifier gives logits (8, 3): 8 samples, 3 labels; labels (8, 3) hold 0 and 1. All three calls "
    "below run without an error:\n"
    f"  (a) F.binary_cross_entropy_with_logits(logits, labels, {LESSON09_2_CALLS['a']})\n"
    f"  (b) F.binary_cross_entropy_with_logits(logits, labels, {LESSON09_2_CALLS['b']})   # one weight per element, by design\n"
    f"  (c) F.binary_cross_entropy_with_logits(logits, labels, {LESSON09_2_CALLS['c']})   # class weights by label\n"
    "Which one does bw.audit() report as an error? Answer with one letter in quotes, e.g. \"a\"."
)


def lesson09_2_rules(seed: int = 0) -> dict[str, list[str]]:
    """The rules the audit reports on each call of 09.2, run on seeded (8, 3) logits and labels."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(8, 3, generator=generator)
    labels = (torch.rand(8, 3, generator=generator) < 0.3).float()
    operands = {
        "a": torch.tensor([1.0, 4.0, 9.0]),
        "b": torch.rand(8, 3, generator=generator) + 1,
        "c": torch.tensor([0.2, 0.8])[labels.long()],
    }
    rules = {}
    for letter, pos_weight in operands.items():
        with audit() as report:
            F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight)
        rules[letter] = [f.rule for f in report.errors]
    return rules


def check_lesson09_2(answer: object) -> bool:
    """Exercise 09.2: (c), class weights picked by the label act as one pos_weight (per-sample-pos-weight)."""
    letter = answer_choice(answer, LESSON09_2_CHOICES)
    if letter is None:
        return False
    if letter == "c":
        print("Correct: pos_weight multiplies only the positive term, so the 0.2 picked for every negative is never "
              "used: (c) is one pos_weight of 0.8, which weights the positives down. The audit reports it as "
              "per-sample-pos-weight because the values follow the labels.")
        return True
    if letter == "a":
        print("Not yet: (a) is one ratio per label, and on (N, C) a (C,) tensor lines up with the labels, as meant. "
              "Look for the call whose values depend on each element's label.")
    else:
        print("Not yet: (b) is a positive weight for every element, of the target's full shape, which PyTorch "
              "documents. The audit leaves it alone: it reports a pos_weight along the batch only when it follows "
              "the labels, or repeats one row (a warning).")
    return False


def _solution_09_2() -> str:
    return (
        "(c). torch.tensor([0.2, 0.8])[labels.long()] holds 0.8 on every positive and 0.2 on every negative. "
        "pos_weight multiplies only the positive term, so the 0.2 is never used: the call is one pos_weight of 0.8, "
        "which weights the positives down, not the class weighting it looks like (per-sample-pos-weight, an error). "
        "Write weight=torch.where(labels == 1, 0.8, 0.2) for class weights, or pos_weight=torch.tensor([4.0]) for the "
        "same balance as one ratio. (a) lines up with the labels; (b) is a per-element pos_weight, legitimate."
    )


register("09.2", LESSON09_2_QUESTION, check_lesson09_2, _solution_09_2)


# --------------------------------------------------------------------------------------------------
# 09.3: a step fed PNG masks of 0 and 255

#: (N, 1, H, W) of the two batches 09.3 is checked on.
LESSON09_3_SHAPES = ((4, 1, 8, 8), (2, 1, 5, 7))
LESSON09_3_QUESTION = (
    "A data loader reads binary masks from PNG files as they are stored: torch.uint8, 0 for background and 255 for "
    "the object. The training step is\n"
    "    loss = F.binary_cross_entropy_with_logits(logits, masks.float())\n"
    "and bw.audit() reports target-out-of-range. Write my_step(logits, masks) that returns the loss the code meant, "
    "in plain PyTorch (logits float (N, 1, H, W), masks uint8 of the same shape). The checker runs it under "
    "bw.audit() on two batches."
)


def _batch_09_3(shape: tuple[int, ...], seed: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=generator, dtype=torch.float64)
    masks = ((torch.rand(shape, generator=generator) < 0.25).to(torch.uint8) * 255)
    return logits, masks


def lesson09_3_reference(logits: Tensor, masks: Tensor) -> Tensor:
    """The loss meant: 255 marks the object, so the targets are masks / 255."""
    return F.binary_cross_entropy_with_logits(logits, masks.to(logits.dtype) / 255)


def check_lesson09_3(answer: Callable[[Tensor, Tensor], Tensor] | None) -> bool:
    """Exercise 09.3: clean under audit and equal to BCE with targets ``masks / 255`` on both batches."""
    if answer is None:
        no_answer_yet("your function, e.g. my_step (defined in the cell above)")
        return False
    if not callable(answer):
        print(f"Expected a function my_step(logits, masks), got {type(answer).__name__}.")
        return False
    values = []
    for seed, shape in enumerate(LESSON09_3_SHAPES):
        logits, masks = _batch_09_3(shape, seed + 10)
        value = _run_audited(answer, shape, logits, masks)
        if value is None:
            return False
        right = float(lesson09_3_reference(logits, masks))
        got = float(value)
        if abs(got - right) > 1e-6 * max(1.0, abs(right)):
            keep = masks != 255
            void = float((F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
                          * keep).sum() / keep.sum())
            hint = ("that leaves the 255s out as void: it drops every object pixel and trains on background alone. In a "
                    "PNG mask 255 marks the object; the data holds no 1." if abs(got - void) <= 1e-6 * max(1.0, void)
                    else "the targets BCE expects are 0 and 1: map the mask's 255 to 1.")
            print(f"Not yet: on a batch of shape {shape} my_step gives {got:.4g}, the loss meant is {right:.4g}; {hint}")
            return False
        values.append(right)
    print(f"Correct: the audit is clean and the values match ({values[0]:.4g} and {values[1]:.4g}). 255 marks the "
          "object in a PNG mask, so masks / 255 (or masks > 0) gives the 0/1 targets; reading 255 as void, the "
          "audit's other proposal, would drop every object pixel.")
    return True


def _solution_09_3() -> str:
    return (
        "\ndef my_step(logits, masks):\n"
        "    return F.binary_cross_entropy_with_logits(logits, masks.to(logits.dtype) / 255)\n"
        "The audit names two readings of a target that holds only 0 and 255: a 0/255 mask (divide by 255) or 255 as "
        "void (ignore=masks == 255). The data suggests the first, since no element holds 1; the second would leave "
        "only background in the loss. (masks > 0).to(logits.dtype) gives the same targets."
    )


register("09.3", LESSON09_3_QUESTION, check_lesson09_3, _solution_09_3, transfer=True)


# --------------------------------------------------------------------------------------------------
# 09.4: the floor of masking by multiplication

LESSON09_4_SHAPE = (2, 1, 16, 32, 32)
LESSON09_4_KEPT = 4096
LESSON09_4_QUESTION = (
    f"Logits and targets of volumes {LESSON09_4_SHAPE} are both multiplied by a 0/1 mask that keeps "
    f"{LESSON09_4_KEPT} of the {math.prod(LESSON09_4_SHAPE)} voxels, then passed to nn.BCEWithLogitsLoss() with its "
    "default mean. How much of the loss value is a constant that no training can lower? (4 significant digits)"
)


def lesson09_4_answer() -> float:
    """Every masked voxel scores logit 0 against target 0, log 2, divided by every voxel."""
    total = math.prod(LESSON09_4_SHAPE)
    return (total - LESSON09_4_KEPT) / total * math.log(2.0)


def check_lesson09_4(answer: float | None) -> bool:
    """Exercise 09.4: ``(32768 - 4096) / 32768 * log 2 = 0.6065``."""
    value = answer_number(answer, "a number")
    if value is None:
        return False
    total = math.prod(LESSON09_4_SHAPE)
    masked = total - LESSON09_4_KEPT
    return judge_number(
        value,
        lesson09_4_answer(),
        correct=(f"each of the {masked} masked voxels scores a logit of 0 against a target of 0, which costs log 2 = "
                 f"0.6931, and the mean divides by all {total}: {masked}/{total} x 0.6931 = {lesson09_4_answer():.4g}. "
                 "It moves with each batch's mask, and the audit reports it under diluted-mean."),
        slips=[
            (math.log(2.0), "is one masked voxel's cost; the mean divides the masked voxels' sum by every voxel."),
            (LESSON09_4_KEPT / total * math.log(2.0), "uses the kept share; the constant comes from the masked voxels."),
            (masked * math.log(2.0), "is the masked voxels' sum; the default reduction is the mean over every voxel."),
            (0.0, "would hold for probabilities (BCELoss: p = 0 against 0 costs 0); a logit of 0 is a probability of 0.5."),
        ],
        otherwise="is not it. What does a logit of 0 against a target of 0 cost, and what does the mean divide by?",
        abs_tol=5e-4,
    )


def _solution_09_4() -> str:
    total = math.prod(LESSON09_4_SHAPE)
    masked = total - LESSON09_4_KEPT
    return (
        f"{masked} of {total} voxels are masked. Each has logit 0 and target 0 after the product, and BCE with logits "
        f"of (0, 0) is log(1 + e^0) = log 2 = 0.6931. The mean divides the sum by {total}, so the masked voxels add "
        f"{masked}/{total} x 0.6931 = {lesson09_4_answer():.4g}. Their gradient is 0 (the mask multiplies it), so "
        "no training lowers it. Pass the mask as weight with reduction=\"sum\" / mask.sum().clamp_min(1), or "
        "ignore=mask == 0."
    )


register("09.4", LESSON09_4_QUESTION, check_lesson09_4, _solution_09_4, transfer=True)


#: Lesson 09's questionnaire: (question, answer).
LESSON09_QUESTIONNAIRE = (
    ("Does running code under bw.audit() change what it computes?",
     "No. The audit reads each BCE call's operands under torch.no_grad(), draws no random numbers, and then calls "
     "the function with exactly the arguments it got."),
    ("What does one finding hold?",
     "The rule id, its severity (error or warning), the message (what was given, why it is wrong or what it does, "
     "what to write instead), the line of your code that made the call, and the loss that was called."),
    ("What is the difference between an error and a warning in the report?",
     "An error is a call that computes something other than what it was almost surely meant to. A warning is a choice "
     "that can be meant, and the message states its consequence: diluted-mean, a pos_weight row repeated along the "
     "batch, a pos_weight of length W on images."),
    ("Why does pos_weight=torch.tensor([1.0, 30.0, 6.0]) on (N, 3, H, 3) crops run, and what does it weight?",
     "Broadcasting lines up trailing dimensions, so (3,) meets W = 3: it weights the columns. On any other width it "
     "raises (the error pytorch#27936 reports); the silent case is W == C."),
    ("Input and target are multiplied by a 0/1 mask before BCEWithLogitsLoss with the default mean. What happens to "
     "the masked elements' gradient, to the kept elements' step and to the loss value?",
     "The masked elements get gradient 0 (the product), each kept element's step is its slope over every element, "
     "and each masked element adds log 2 to the sum: a floor of log 2 times the masked share that no training lowers."),
    ("A target holds only 0 and 255. Which two readings does the audit name, and which does the data suggest?",
     "A 0/255 mask (write target / 255) or 255 as void labels (ignore=target == 255). The data suggests the mask: no "
     "element holds 1, so the void reading would leave no positive at all."),
    ("Why is nan_to_num(posinf=0) the wrong repair for an infinite pos_weight counted on one batch?",
     "It gives that label's positives weight 0, the opposite of the intent. Count once over the whole data set and "
     "keep the denominator at least 1 (num_pos.clamp_min(1)); a label with no positive has no positive term, so any "
     "finite value gives the same loss there."),
    ("When does the audit report a pos_weight of the target's full shape (B, C)?",
     "Only on evidence of a mistake: its values follow the labels (class weights indexed by the label, an error), or "
     "every sample holds the same row (a warning). A per-element pos_weight that varies otherwise is legitimate."),
    ("The loss reads torch.cat([torch.sigmoid(aux), logits], dim=1)[:, 1:]. Does the audit report a double sigmoid?",
     "No, if aux is one channel wide: it follows the slice through the cat to the input it came from, the raw logits. "
     "When it cannot tell which elements are read, it stays quiet unless every input is a sigmoid's output."),
)
register_questionnaire("09", LESSON09_QUESTIONNAIRE)
