"""Lesson 08's checker: the solution passes, the usual slips get their hint, the solution is not printed."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import bceweights as bw
from bceweights.lessons.exercises import LESSON08_QUESTION, check_lesson08, lesson08_solution


def solution():
    namespace = {"torch": torch, "F": F}
    exec(lesson08_solution(), namespace)
    return namespace["my_loss"]


def test_the_solution_is_correct_and_only_printed_on_request(capsys):
    assert check_lesson08(solution())
    out = capsys.readouterr().out
    assert out.startswith("Correct:") and "masked_fill" not in out
    assert "[1, 30, 6]" in LESSON08_QUESTION


def test_bceweights_with_ignore_is_accepted(capsys):
    def my_loss(logits, masks):
        return bw.bce_with_logits(logits, masks, pos_weight=[1.0, 30.0, 6.0], channel_dim=1, ignore=masks == 255)

    assert check_lesson08(my_loss)


def test_no_answer_and_not_a_function(capsys):
    assert not check_lesson08(None)
    assert "No answer yet" in capsys.readouterr().out
    assert not check_lesson08(3.0)
    assert "Expected a function" in capsys.readouterr().out


def test_the_line_from_the_question_is_reported_by_the_audit(capsys):
    def my_loss(logits, masks):
        return F.binary_cross_entropy_with_logits(logits, masks, pos_weight=torch.tensor([1.0, 30.0, 6.0]))

    assert not check_lesson08(my_loss)
    out = capsys.readouterr().out
    assert "misaligned-operand" in out and "target-out-of-range" in out


def test_a_diluted_mean_gets_its_hint(capsys):
    def my_loss(logits, masks):
        keep = masks != 255
        pw = torch.tensor([1.0, 30.0, 6.0], dtype=logits.dtype).view(3, 1, 1)
        losses = F.binary_cross_entropy_with_logits(logits, masks.masked_fill(~keep, 0), pos_weight=pw, reduction="none")
        return (losses * keep).mean()

    assert not check_lesson08(my_loss)
    assert "diluted mean" in capsys.readouterr().out


def test_a_width_aligned_pos_weight_fails_on_the_second_batch(capsys):
    def my_loss(logits, masks):
        keep = masks != 255
        losses = F.binary_cross_entropy_with_logits(
            logits, masks.masked_fill(~keep, 0), pos_weight=torch.tensor([1.0, 30.0, 6.0], dtype=logits.dtype),
            reduction="none")
        return (losses * keep).sum() / keep.sum()

    assert not check_lesson08(my_loss)
    out = capsys.readouterr().out
    assert "misaligned-operand" in out
