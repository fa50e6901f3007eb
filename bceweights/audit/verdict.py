"""What a rule returns and what it may ask: :class:`Verdict` (a message and its severity), :class:`Context`.

A rule returns None (nothing found), a message string (a finding of severity ``"error"``), or a
:class:`Verdict` when the finding is a ``"warning"``: a choice that can be meant, with a consequence
the message states (see :class:`bceweights.audit.findings.Finding`).

Imports: torch only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Verdict:
    """A rule's finding with its severity, ``"error"`` or ``"warning"``."""

    message: str
    severity: str = WARNING


@dataclass
class Context:
    """What a rule may ask the audit.

    Attributes:
        values_due: whether this call's values are read (the value rules run on a sample of the calls).
        saw_sigmoid: for a tensor without an autograd graph, how many sigmoids in a row the audit saw
            produce it (0: none).
    """

    values_due: bool
    saw_sigmoid: Callable[[Tensor], int]


def sig4(value: float) -> str:
    """A number with 4 significant digits."""
    return f"{value:.4g}"


def float_literal(value: float) -> str:
    """A float literal with 4 significant digits that stays a float: ``1.0``, ``8.852``, ``1e-05``."""
    text = f"{value:.4g}"
    return text if any(c in text for c in ".en") else text + ".0"
