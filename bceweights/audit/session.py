"""The interception: a :class:`~torch.overrides.TorchFunctionMode` that reads every BCE call and changes none.

Inside ``with audit() as report:`` every torch function call passes through
:meth:`AuditMode.__torch_function__`. For the four BCE entry points of :mod:`bceweights.audit.calls`
it finds the user's line, applies each rule of :data:`bceweights.audit.rules.RULES` not yet found
there, and then calls the function with exactly the arguments it was given; for the sigmoids it
remembers the output (weakly), so that a sigmoid's output is recognised even without an autograd graph;
everything else is passed straight through. Rules read tensors under ``torch.no_grad()``, never write
them, and draw no random numbers, so the computation is the same with and without the audit.

Cost: shape and graph rules run on every call. Rules that read values (a sync on a GPU) run on the first
:data:`VALUE_CHECKS_FIRST` calls at each line, then on every :data:`VALUE_CHECKS_EVERY`-th: a training
loop repeats the same call, and a finding is reported once per line anyway.

Imports: :mod:`bceweights.audit.calls`, :mod:`bceweights.audit.rules`, :mod:`bceweights.audit.findings`.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from bceweights.audit.calls import LOSS_FUNCTIONS, SIGMOID_FUNCTIONS, LossCall, call_site, read_call
from bceweights.audit.findings import AuditError, Finding, Report, display_location
from bceweights.audit.rules import RULES, Context, Verdict

#: Value-reading rules run on this many first calls at each line ...
VALUE_CHECKS_FIRST = 8
#: ... and then on every this-many-th call there.
VALUE_CHECKS_EVERY = 8


class AuditMode(TorchFunctionMode):
    """The mode behind :func:`bceweights.audit.audit`; fills ``report`` and, if ``strict``, raises."""

    def __init__(self, report: Report, strict: bool = False) -> None:
        super().__init__()
        self.report = report
        self.strict = strict
        self._found: set[tuple[str, str]] = set()
        self._calls_at: dict[str, int] = {}
        self._sigmoid_outputs: weakref.WeakValueDictionary[int, Tensor] = weakref.WeakValueDictionary()
        self._sigmoid_depth: dict[int, int] = {}

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        try:
            spec, sigmoid = LOSS_FUNCTIONS.get(func), func in SIGMOID_FUNCTIONS
        except TypeError:  # an unhashable callable: not one of ours
            spec, sigmoid = None, False
        if spec is not None:
            finding = self._audit(spec, args, kwargs)
            if finding is not None:
                raise AuditError(finding)
            return func(*args, **kwargs)
        result = func(*args, **kwargs)
        if sigmoid and isinstance(result, Tensor):
            source = args[0] if args else kwargs.get("input")
            depth = 1 + (self.saw_sigmoid(source) if isinstance(source, Tensor) else 0)
            self._remember(result, depth)
        return result

    def _remember(self, tensor: Tensor, depth: int) -> None:
        key = id(tensor)
        self._sigmoid_outputs[key] = tensor
        self._sigmoid_depth[key] = depth
        weakref.finalize(tensor, self._sigmoid_depth.pop, key, None)

    def saw_sigmoid(self, tensor: Tensor) -> int:
        """How many sigmoids in a row produced ``tensor`` (or the tensor it is a view of) inside the audit; 0: none."""
        for candidate in (tensor, tensor._base):
            if candidate is not None and self._sigmoid_outputs.get(id(candidate)) is candidate:
                return self._sigmoid_depth.get(id(candidate), 1)
        return 0

    def _audit(self, spec: Any, args: tuple, kwargs: dict) -> Finding | None:
        """Apply the rules to one call; the finding to raise (strict mode), else None."""
        try:
            if torch.compiler.is_compiling():
                return None
            site = call_site(sys._getframe(1))
            if site is None:  # a call made by bceweights' own loss, which checks its operands itself
                return None
            location, module = site
            call = read_call(spec, args, kwargs, location, module)
            if call is None:
                return None
            self.report.calls += 1
            seen = self._calls_at.get(location, 0) + 1
            self._calls_at[location] = seen
            due = seen <= VALUE_CHECKS_FIRST or seen % VALUE_CHECKS_EVERY == 0
            with torch.no_grad():
                return self._apply_rules(call, Context(values_due=due, saw_sigmoid=self.saw_sigmoid))
        except AuditError:
            raise
        except Exception:  # the audit must never break the code it watches
            return None

    def _apply_rules(self, call: LossCall, context: Context) -> Finding | None:
        for rule, check in RULES.items():
            key = (rule, call.location)
            if key in self._found:
                continue
            try:
                message = check(call, context)
            except Exception:  # an exotic tensor (sparse, meta, a subclass): no verdict
                message = None
            if message is None:
                continue
            severity = "error"
            if isinstance(message, Verdict):
                message, severity = message.message, message.severity
            self._found.add(key)
            finding = Finding(rule, message, call.location, display_location(call.location), call.name, severity)
            self.report.findings.append(finding)
            if self.strict:
                return finding
        return None


class audit:  # noqa: N801  (used like a function: ``with bw.audit() as report``)
    """Audit every binary cross-entropy call in a block of unmodified PyTorch code.

    ::

        with bw.audit() as report:
            train(model, loader)          # plain PyTorch: F.binary_cross_entropy_with_logits, nn.BCELoss, ...
        print(report)                     # one finding per line of code and rule
        report.findings[0].rule, report.findings[0].location   # "misaligned-operand", "train.py:42"

    Watched: ``F.binary_cross_entropy_with_logits``, ``F.binary_cross_entropy``,
    ``torch.binary_cross_entropy_with_logits``, ``torch._C._nn.binary_cross_entropy`` and so
    ``nn.BCEWithLogitsLoss`` and ``nn.BCELoss``. Calls that bceweights' own loss makes are left out (it
    checks its operands itself). What the code computes does not change.

    Args:
        strict: raise :class:`~bceweights.audit.findings.AuditError` at the first finding, before the
            loss is computed, instead of collecting it.
    """

    def __init__(self, strict: bool = False) -> None:
        self.report = Report()
        self._mode = AuditMode(self.report, strict=strict)

    def __enter__(self) -> Report:
        self._mode.__enter__()
        return self.report

    def __exit__(self, *exc_info: object) -> None:
        self._mode.__exit__(*exc_info)
