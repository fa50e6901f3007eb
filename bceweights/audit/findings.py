"""What an audit reports: :class:`Finding` (one rule at one line), :class:`Report`, :class:`AuditError`.

A location is ``"path:line"``. :func:`display_location` writes it for reading: relative to the working
directory when the file lies under it, and ``cell, line 3`` for a notebook cell, whose file is a
temporary path that changes with every kernel (IPython's compiler tells which files are cells).

Imports: nothing from ``bceweights``.
"""

from __future__ import annotations

import os
import sys
import textwrap
from dataclasses import dataclass, field


def _split(location: str) -> tuple[str, str]:
    path, _, line = location.rpartition(":")
    return (path, line) if line.isdigit() else (location, "")


def display_location(location: str) -> str:
    """``"path:line"`` as a reader wants it: relative under the working directory, or the notebook cell."""
    path, line = _split(location)
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    compiler = getattr(shell, "compile", None)
    label = compiler.format_code_name(path) if hasattr(compiler, "format_code_name") else None
    if label is not None or path.startswith("<ipython-input-"):
        # The cell's execution count is left out: it depends on how the notebook was run (nbval and
        # a kernel's Run All count differently), and the finding is printed under its cell anyway.
        return f"cell, line {line}" if line else "cell"
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        relative = path
    if not relative.startswith(os.pardir) and os.path.isabs(path):
        path = relative
    return f"{path}:{line}" if line else path


@dataclass(frozen=True)
class Finding:
    """One rule that fired at one line of the user's code.

    Attributes:
        rule: the rule's id, e.g. ``"misaligned-operand"`` (see :data:`bceweights.audit.rules.RULES`).
        message: what was given, why it is wrong, and what to write instead.
        location: ``"path:line"`` of the user's call (not torch's, not bceweights').
        where: the same location as :func:`display_location` wrote it when the finding was made.
        function: the loss the user called, e.g. ``"nn.BCEWithLogitsLoss"``.
        severity: ``"error"`` when the call computes something other than what it was almost surely
            meant to (wrong axis, void labels as targets, a double sigmoid); ``"warning"`` for a choice
            that can be meant but has a consequence worth knowing (a mean that divides by masked
            elements, a ``pos_weight`` repeated along the batch, a ``pos_weight`` along a spatial axis).
    """

    rule: str
    message: str
    location: str
    where: str = ""
    function: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        label = f"[{self.rule}]" if self.severity == "error" else f"[{self.rule}, {self.severity}]"
        return f"{label} {self.where or self.location}" + (f" ({self.function})" if self.function else "") + \
            "\n" + textwrap.indent(self.message, "    ")


class AuditError(ValueError):
    """Raised by ``bw.audit(strict=True)`` at the first finding, before the loss is computed."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(str(finding))
        self.finding = finding


@dataclass
class Report:
    """What an audit found: one :class:`Finding` per location and rule, in the order they were found.

    Attributes:
        findings: the findings (a list, filled while the ``with`` block runs).
        calls: how many binary cross-entropy calls the audit read.
    """

    findings: list[Finding] = field(default_factory=list)
    calls: int = 0

    @property
    def clean(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity ``"error"``."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings of severity ``"warning"``: choices with a consequence, which may be meant."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def rules(self) -> list[str]:
        """The ids of the rules that fired, each once, in the order they first fired."""
        return list(dict.fromkeys(f.rule for f in self.findings))

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self):
        return iter(self.findings)

    def summary(self) -> str:
        """The first line of :meth:`__str__`: how many findings in how many loss calls."""
        calls = f"{self.calls} binary cross-entropy call" + ("" if self.calls == 1 else "s")
        if not self.calls:
            return "bw.audit: no binary cross-entropy call ran inside the block (nothing to audit)."
        if self.clean:
            return f"bw.audit: no findings in {calls}."
        count, warnings = len(self.findings), len(self.warnings)
        of_which = f", {warnings} of them {'a warning' if warnings == 1 else 'warnings'}" if warnings else ""
        return f"bw.audit: {count} finding{'' if count == 1 else 's'} in {calls} ({', '.join(self.rules)}){of_which}."

    def __str__(self) -> str:
        return "\n\n".join([self.summary()] + [str(f) for f in self.findings])
