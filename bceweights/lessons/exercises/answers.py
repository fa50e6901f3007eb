"""The one answer helper every exercise checker shares: read a learner's answer, or say what is missing.

Imports nothing from ``bceweights``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence


def no_answer_yet(wanted: str) -> None:
    """Print the verdict for an answer still ``None``: ``replace None with <wanted>``."""
    print(f"No answer yet: replace None with {wanted}, then run the cell again.")


def answer_number(
    answer: object, wanted: str = "a number", expected: str = "a number"
) -> float | None:
    """``answer`` as a finite float, or None after printing what is missing or wrong.

    Accepts Python numbers, numpy scalars and 0-d tensors. ``wanted`` completes "replace None with
    ...", ``expected`` completes "Expected ..., got ...".
    """
    if hasattr(answer, "item") and getattr(answer, "ndim", 1) == 0:
        answer = answer.item()  # a 0-d tensor or numpy scalar
    if answer is None:
        no_answer_yet(wanted)
        return None
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real) or not math.isfinite(float(answer)):
        print(f"Expected {expected}, got {answer!r}.")
        return None
    return float(answer)


def judge_number(
    value: float,
    right: float,
    *,
    correct: str,
    slips: Sequence[tuple[float, str]] = (),
    otherwise: str,
    abs_tol: float = 5e-3,
    rel_tol: float = 1e-3,
) -> bool:
    """Print the verdict on a number already read by :func:`answer_number`; True when it is ``right``.

    ``value`` within ``abs_tol`` or ``rel_tol`` of ``right`` prints ``Correct: <correct>``. Otherwise the
    first of ``slips`` (``(wrong value, what it means)``, the usual wrong answers) that ``value`` is close
    to prints ``Not yet: <what it means>``, and any other value prints ``Not yet: <otherwise>``.
    """

    def close(a: float, b: float) -> bool:
        return math.isfinite(b) and math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)

    if close(value, right):
        print(f"Correct: {correct}")
        return True
    for wrong, meaning in slips:
        if close(value, wrong):
            print(f"Not yet: {value:.4g} {meaning}")
            return False
    print(f"Not yet: {value:.4g} {otherwise}")
    return False


def answer_choice(answer: object, choices: Sequence[str]) -> str | None:
    """A multiple-choice answer as one lower-case letter of ``choices``, or None after saying what is wrong.

    Accepts ``"b"``, ``"B"`` and ``"(b)"``; ``choices`` are the letters offered, e.g. ``("a", "b", "c")``.
    """
    offered = ", ".join(f'"{choice}"' for choice in choices)
    if answer is None:
        no_answer_yet(f"one letter in quotes: {offered}")
        return None
    letter = answer.strip().strip("()").strip().lower() if isinstance(answer, str) else None
    if letter not in choices:
        print(f"Expected one letter in quotes, {offered}; got {answer!r}.")
        return None
    return letter


def judge_choice(answer: object, choices: Sequence[str], right: str, *, correct: str, wrong: Mapping[str, str]) -> bool:
    """Judge a multiple-choice answer: print ``"Correct: " + correct`` or ``"Not yet: " + wrong[letter]``.

    Args:
        answer: the learner's answer, e.g. ``"b"``, ``"(B)"`` (read by :func:`answer_choice`).
        choices: the letters offered.
        right: the right letter.
        correct: what the verdict says after "Correct: ".
        wrong: for every other letter, what the verdict says after "Not yet: ".
    """
    letter = answer_choice(answer, choices)
    if letter is None:
        return False
    if letter == right:
        print(f"Correct: {correct}")
        return True
    print(f"Not yet: {wrong[letter]}")
    return False
