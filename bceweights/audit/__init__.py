"""``bw.audit()``: find the weighting bugs in existing PyTorch training code, without rewriting it.

    import bceweights as bw

    with bw.audit() as report:
        train(model, loader)      # unmodified: F.binary_cross_entropy_with_logits, nn.BCEWithLogitsLoss, nn.BCELoss
    print(report)
    for finding in report.findings:
        finding.rule, finding.location, finding.message   # "misaligned-operand", "train.py:42", "pos_weight has ..."
        finding.severity          # "error", or "warning" for a choice with a stated consequence (diluted-mean)

    with bw.audit(strict=True):   # raise AuditError at the first finding instead
        ...

From a shell, ``python -m bceweights.audit train.py [args...]`` runs a script under audit, prints the
report and exits with status 1 when there are findings.

The rules (ids and what they read) are listed in :mod:`bceweights.audit.rules`; the interception, and
why it changes nothing the code computes, in :mod:`bceweights.audit.session`.

``bw.audit`` is this package made callable (calling it is calling :class:`audit`), so that
``bceweights.audit.Finding`` and ``bw.audit()`` both work.

Imports: the core (:mod:`bceweights.messages`, :mod:`bceweights.shapes`); nothing in the core imports
this package, except ``bceweights/__init__.py``, which exports :func:`audit`.
"""

from __future__ import annotations

import sys
import types

from bceweights.audit.findings import AuditError, Finding, Report, display_location
from bceweights.audit.rules import RULES
from bceweights.audit.session import audit

__all__ = ["RULES", "AuditError", "Finding", "Report", "audit", "display_location"]


class _CallableModule(types.ModuleType):
    """This package, callable: ``bw.audit(strict=False)`` is :class:`audit`, and ``bceweights.audit``
    stays the package (``bceweights.audit.rules``, ``import bceweights.audit``) rather than being hidden
    by a function of the same name."""

    def __call__(self, strict: bool = False) -> audit:
        return audit(strict=strict)


sys.modules[__name__].__class__ = _CallableModule
