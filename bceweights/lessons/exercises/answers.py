"""The one answer helper every exercise checker shares: read a learner's answer, or say what is missing.

Imports nothing from ``bceweights``.
"""

from __future__ import annotations

import math
import numbers


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
