"""The exception raised when an operand does not line up with the input."""

from __future__ import annotations


class WeightShapeError(ValueError):
    """An operand (``weight``, ``pos_weight``, ``ignore``, a mask) does not line up with the input.

    A subclass of :class:`ValueError`, so code that already catches ``ValueError`` keeps working.
    The message always says what was given, what was expected, and the line to write instead.
    """
