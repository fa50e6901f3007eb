"""Lesson 09's checker: the solution passes, the usual slips get their hint, the solution is not printed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import bceweights as bw
from bceweights.lessons.exercises import LESSON09_QUESTION, check_lesson09, lesson09_solution


def solution():
    namespace = {"torch": torch, "F": F}
    exec(lesson09_solution(), namespace)
    return namespace["my_loss"]


def test_the_solution_is_correct_and_only_printed_on_request(capsys):
    assert check_lesson09(solution())
    out = capsys.readouterr().out
    assert out.startswith("Correct:") and "masked_fill" not in out
    assert "[1, 30, 6]" in LESSON09_QUESTION


def test_bceweights_with_ignore_is_accepted(capsys):
    def my_loss(logits, masks):
        return bw.bce_with_logits(logits, masks, pos_weight=[1.0, 30.0, 6.0], channel_dim=1, ignore=masks == 255)

    assert check_lesson09(my_loss)


def test_no_answer_and_not_a_function(capsys):
    assert not check_lesson09(None)
    assert "No answer yet" in capsys.readouterr().out
    assert not check_lesson09(3.0)
    assert "Expected a function" in capsys.readouterr().out


def test_the_line_from_the_question_is_reported_by_the_audit(capsys):
    def my_loss(logits, masks):
        return F.binary_cross_entropy_with_logits(logits, masks, pos_weight=torch.tensor([1.0, 30.0, 6.0]))

    assert not check_lesson09(my_loss)
    out = capsys.readouterr().out
    assert "misaligned-operand" in out and "target-out-of-range" in out


def test_a_diluted_mean_gets_its_hint(capsys):
    def my_loss(logits, masks):
        keep = masks != 255
        pw = torch.tensor([1.0, 30.0, 6.0], dtype=logits.dtype).view(3, 1, 1)
        losses = F.binary_cross_entropy_with_logits(logits, masks.masked_fill(~keep, 0), pos_weight=pw, reduction="none")
        return (losses * keep).mean()

    assert not check_lesson09(my_loss)
    assert "diluted mean" in capsys.readouterr().out


def test_an_unclamped_count_fails_on_the_all_void_batch_with_its_hint(capsys):
    def my_loss(logits, masks):
        keep = masks != 255
        pw = torch.tensor([1.0, 30.0, 6.0], dtype=logits.dtype).view(3, 1, 1)
        losses = F.binary_cross_entropy_with_logits(logits, masks.masked_fill(~keep, 0), pos_weight=pw, reduction="none")
        return (losses * keep).sum() / keep.sum()  # right on both batches, NaN when nothing is kept

    assert not check_lesson09(my_loss)
    out = capsys.readouterr().out
    assert "every pixel is void my_loss gives nan" in out and "clamp_min(1)" in out
    assert "void pixels" in LESSON09_QUESTION and "not NaN" in LESSON09_QUESTION


def test_a_nan_hidden_by_nan_to_num_fails_on_its_gradient(capsys):
    def my_loss(logits, masks):
        keep = masks != 255
        pw = torch.tensor([1.0, 30.0, 6.0], dtype=logits.dtype).view(3, 1, 1)
        losses = F.binary_cross_entropy_with_logits(logits, masks.masked_fill(~keep, 0), pos_weight=pw, reduction="none")
        return torch.nan_to_num((losses * keep).sum() / keep.sum())  # 0 when nothing is kept, but a NaN gradient

    assert not check_lesson09(my_loss)
    out = capsys.readouterr().out
    assert "gives 0, but its gradient is not 0 everywhere" in out and "clamp_min(1)" in out


def test_the_solution_gives_0_on_an_all_void_batch():
    logits = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    value = solution()(logits, torch.full((2, 3, 4, 5), 255.0, dtype=torch.float64))
    assert torch.isfinite(value) and float(value) == 0.0


def test_a_width_aligned_pos_weight_fails_on_the_second_batch(capsys):
    def my_loss(logits, masks):
        keep = masks != 255
        losses = F.binary_cross_entropy_with_logits(
            logits, masks.masked_fill(~keep, 0), pos_weight=torch.tensor([1.0, 30.0, 6.0], dtype=logits.dtype),
            reduction="none")
        return (losses * keep).sum() / keep.sum()

    assert not check_lesson09(my_loss)
    out = capsys.readouterr().out
    assert "misaligned-operand" in out


# --------------------------------------------------------------------------------------------------
# 09.2 to 09.4 and the questionnaire

from bceweights.lessons.exercises import (  # noqa: E402
    QUESTIONNAIRES,
    check_lesson09_2,
    check_lesson09_3,
    check_lesson09_4,
    lesson_exercises,
    print_questionnaire,
    show_solution,
)
from bceweights.lessons.exercises.lesson09 import LESSON09_2_CALLS, lesson09_2_rules  # noqa: E402


def test_lesson09_has_at_least_three_checked_exercises_and_concept_ones():
    keys = [exercise.key for exercise in lesson_exercises("09")]
    assert keys == ["09.1", "09.2", "09.3", "09.4"]


def test_09_2_the_answer_is_what_the_audit_says_on_every_seed(capsys):
    for seed in range(5):
        assert lesson09_2_rules(seed) == {"a": [], "b": [], "c": ["per-sample-pos-weight"]}
    assert check_lesson09_2("c") and capsys.readouterr().out.startswith("Correct")
    assert not check_lesson09_2("a") and "lines up with the labels" in capsys.readouterr().out
    assert not check_lesson09_2("b") and "documents" in capsys.readouterr().out
    assert "[labels.long()]" in LESSON09_2_CALLS["c"]


def test_09_3_accepts_each_form_of_the_0_255_reading(capsys):
    forms = [
        lambda x, m: F.binary_cross_entropy_with_logits(x, m.to(x.dtype) / 255),
        lambda x, m: F.binary_cross_entropy_with_logits(x, (m == 255).to(x.dtype)),
        lambda x, m: bw.bce_with_logits(x, m.to(x.dtype) / 255),
    ]
    for form in forms:
        assert check_lesson09_3(form), capsys.readouterr().out
        capsys.readouterr()


def test_09_3_names_the_slips(capsys):
    as_written = lambda x, m: F.binary_cross_entropy_with_logits(x, m.float().to(x.dtype))  # noqa: E731
    assert not check_lesson09_3(as_written)
    assert "target-out-of-range" in capsys.readouterr().out
    as_void = lambda x, m: bw.bce_with_logits(x, torch.zeros_like(x), ignore=m == 255)  # noqa: E731
    assert not check_lesson09_3(as_void)
    assert "drops every object pixel" in capsys.readouterr().out
    assert not check_lesson09_3(None) and "No answer yet" in capsys.readouterr().out


def test_09_4_the_constant_is_what_masking_by_multiplication_adds(capsys):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 16, 32, 32, generator=generator, dtype=torch.float64)
    y = (torch.rand(2, 1, 16, 32, 32, generator=generator, dtype=torch.float64) < 0.3).double()
    mask = torch.zeros(2 * 16 * 32 * 32, dtype=torch.float64)
    mask[torch.randperm(mask.numel(), generator=generator)[:4096]] = 1
    mask = mask.view_as(x)
    multiplied = nn.BCEWithLogitsLoss()(x * mask, y * mask)
    as_weight = F.binary_cross_entropy_with_logits(x, y, weight=mask)  # the same steps, no floor
    constant = float(multiplied - as_weight)
    assert check_lesson09_4(round(constant, 4)), capsys.readouterr().out
    assert not check_lesson09_4(0.6931) and "one masked voxel" in capsys.readouterr().out


def test_the_questionnaire_has_five_to_ten_questions_and_its_answers_are_hidden(capsys):
    items = QUESTIONNAIRES["09"]
    assert 5 <= len(items) <= 10
    print_questionnaire("09")
    questions = capsys.readouterr().out
    show_solution("09.Q")
    answers = capsys.readouterr().out
    for number, (question, answer) in enumerate(items, start=1):
        assert f"{number}. {question}" in questions and answer not in questions
        assert f"{number}. {answer}" in answers


def test_the_notebook_has_a_cell_per_exercise_a_questionnaire_and_no_stored_solution():
    import json
    import re
    from pathlib import Path

    (path,) = (Path(__file__).resolve().parent.parent / "notebooks").glob("09_*.ipynb")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]

    def text(cell):
        return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))

    for exercise in lesson_exercises("09"):
        name = f"check_lesson{exercise.key.replace('.', '_')}("
        calling = [c for c in code if name in "".join(c["source"])]
        assert len(calling) == 1, name
        assert re.search(r"=\s*None", "".join(calling[0]["source"])) and "No answer yet" in text(calling[0])
    printing = [c for c in code if 'print_questionnaire("09")' in "".join(c["source"])]
    assert len(printing) == 1 and text(printing[0]).startswith("1. ")
    markdown = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert 'show_solution("09.Q")' in markdown and "pytorch#27936" in markdown
    for cell in code:
        assert "Correct:" not in text(cell) and "Solution " not in text(cell)
        assert "show_solution(" not in "".join(cell["source"])
