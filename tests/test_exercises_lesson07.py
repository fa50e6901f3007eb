"""Lesson 07's additions for issue 21: the missed-object focal sample, exercise 07.5 and the questionnaire.

The shares are recomputed here with bceweights' own focal loss and autograd, not with the lesson's
closed forms."""

from __future__ import annotations

import pytest
import torch

import bceweights as bw
from bceweights.lessons.exercises import QUESTIONNAIRES, check_lesson07_5, print_questionnaire, show_solution
from bceweights.lessons.exercises.lesson07 import lesson07_missed_sample, missed_positive_share


def autograd_share(seed: int, alpha: float | None) -> float:
    """Share of sum |d loss / d logit| on the hard positives, by autograd through bw.focal_bce_with_logits."""
    logits, target, _ = (torch.from_numpy(a).double() for a in lesson07_missed_sample(seed))
    leaf = logits.clone().requires_grad_(True)
    bw.focal_bce_with_logits(leaf, target, gamma=2.0, alpha=alpha, reduction="sum").backward()
    gradient = leaf.grad.abs()
    prob_true = torch.sigmoid(logits * (2 * target - 1))
    hard_positive = (prob_true < 0.5) & (target == 1)
    return float(gradient[hard_positive].sum() / gradient.sum())


@pytest.mark.parametrize("seed", range(4))
def test_the_missed_sample_shares_match_autograd_and_alpha_025_cuts_them(seed):
    for alpha in (None, 0.25, 0.5, 0.75):
        assert missed_positive_share(2.0, alpha, seed) == pytest.approx(autograd_share(seed, alpha), rel=1e-6)
    assert missed_positive_share(2.0, 0.25, seed) < missed_positive_share(2.0, None, seed)
    assert missed_positive_share(2.0, 0.5, seed) == pytest.approx(missed_positive_share(2.0, None, seed), rel=1e-12)
    _, target, missed = lesson07_missed_sample(seed)
    assert missed.any() and (target[missed] == 1).all()


def test_06_5_checker(capsys):
    assert check_lesson07_5("(b)") and capsys.readouterr().out.startswith("Correct")
    assert not check_lesson07_5("a") and "falls" in capsys.readouterr().out
    assert not check_lesson07_5("c") and "rises" in capsys.readouterr().out
    assert not check_lesson07_5("d") and "same for y = 0" in capsys.readouterr().out
    assert not check_lesson07_5("e") and "Expected one letter" in capsys.readouterr().out


def test_the_questionnaire_has_five_to_ten_questions_and_its_answers_are_hidden(capsys):
    items = QUESTIONNAIRES["07"]
    assert 5 <= len(items) <= 10
    print_questionnaire("07")
    questions = capsys.readouterr().out
    show_solution("07.Q")
    answers = capsys.readouterr().out
    for number, (question, answer) in enumerate(items, start=1):
        assert f"{number}. {question}" in questions and answer not in questions
        assert f"{number}. {answer}" in answers


def test_the_notebook_prints_the_questionnaire_and_says_the_sample_is_synthetic():
    import json
    from pathlib import Path

    (path,) = (Path(__file__).resolve().parent.parent / "notebooks").glob("07_*.ipynb")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    printing = [c for c in cells if c["cell_type"] == "code" and 'print_questionnaire("07")' in "".join(c["source"])]
    assert len(printing) == 1
    assert "".join("".join(o.get("text", "")) for o in printing[0]["outputs"]).startswith("1. ")
    markdown = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert 'show_solution("07.Q")' in markdown and "Mukhoti et al." in markdown
    assert "partly trained model's output" not in markdown and "synthetic" in markdown
