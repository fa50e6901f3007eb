"""What one intercepted loss call is: its operands read off PyTorch's arguments, and where it was made.

The audit watches four PyTorch entry points, the ones every binary cross-entropy in PyTorch goes through:

* ``F.binary_cross_entropy_with_logits`` (which ``nn.BCEWithLogitsLoss.forward`` calls) and the
  builtin ``torch.binary_cross_entropy_with_logits`` (which that function calls; seen only when user
  code calls it directly, since a mode does not see what runs inside its own handler);
* ``F.binary_cross_entropy`` (which ``nn.BCELoss.forward`` calls) and the builtin
  ``torch._C._nn.binary_cross_entropy``.

:func:`read_call` turns the ``(func, args, kwargs)`` a :class:`torch.overrides.TorchFunctionMode` receives
into a :class:`LossCall`; :func:`call_site` finds the user's own line on the Python stack.

Imports: torch only.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

_REDUCTION_NAMES = {0: "none", 1: "mean", 2: "sum"}


@dataclass(frozen=True)
class LossSpec:
    """One watched entry point: whether it takes logits, its parameter order, how a fix calls it."""

    with_logits: bool
    params: tuple[str, ...]
    function: str


_WITH_LOGITS_F = LossSpec(
    True, ("input", "target", "weight", "size_average", "reduce", "reduction", "pos_weight"),
    "F.binary_cross_entropy_with_logits",
)
_PROBABILITIES_F = LossSpec(
    False, ("input", "target", "weight", "size_average", "reduce", "reduction"), "F.binary_cross_entropy"
)
_WITH_LOGITS_BUILTIN = LossSpec(
    True, ("input", "target", "weight", "pos_weight", "reduction"), "F.binary_cross_entropy_with_logits"
)
_PROBABILITIES_BUILTIN = LossSpec(False, ("input", "target", "weight", "reduction"), "F.binary_cross_entropy")

#: The watched functions, as a :class:`~torch.overrides.TorchFunctionMode` receives them.
LOSS_FUNCTIONS: dict[Callable[..., Any], LossSpec] = {
    F.binary_cross_entropy_with_logits: _WITH_LOGITS_F,
    F.binary_cross_entropy: _PROBABILITIES_F,
    torch.binary_cross_entropy_with_logits: _WITH_LOGITS_BUILTIN,
    torch._C._nn.binary_cross_entropy: _PROBABILITIES_BUILTIN,
}

#: The functions whose output is a sigmoid's (``nn.Sigmoid`` and ``F.sigmoid`` call one of them).
SIGMOID_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset({
    torch.sigmoid, torch.sigmoid_, torch.special.expit, Tensor.sigmoid, Tensor.sigmoid_,
})

#: The modules whose ``forward`` calls a watched function, by the name a fix writes.
MODULE_NAMES = {"BCEWithLogitsLoss": "nn.BCEWithLogitsLoss", "BCELoss": "nn.BCELoss"}


@dataclass
class LossCall:
    """One binary cross-entropy call, its operands as PyTorch received them.

    Shapes: ``input`` and ``target`` ``(*)`` (PyTorch refuses anything else); ``weight`` and
    ``pos_weight`` broadcastable to them, or ``None``.

    Attributes:
        with_logits: True for the logits form, False for ``binary_cross_entropy`` on probabilities.
        function: how a fix calls it, ``"F.binary_cross_entropy_with_logits"``.
        module: ``"nn.BCEWithLogitsLoss"`` when the call came from that module's ``forward``, else None.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (legacy ``size_average``/``reduce`` resolved).
        location: ``"path:line"`` of the user's own call.
    """

    with_logits: bool
    function: str
    input: Tensor
    target: Tensor
    weight: Tensor | None
    pos_weight: Tensor | None
    reduction: str
    module: str | None
    location: str

    @property
    def name(self) -> str:
        """What the user called: the module if there is one, else the function."""
        return self.module or self.function

    def code(self, input: str = "input", target: str = "target", **operands: str | None) -> str:
        """The call as a fix writes it, with ``operands`` replacing (or, as None, dropping) the given ones.

        ``call.code(pos_weight="pos_weight.view(3, 1, 1)")`` gives
        ``F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight.view(3, 1, 1))``, or
        for a module ``nn.BCEWithLogitsLoss(pos_weight=pos_weight.view(3, 1, 1))``.
        """
        given = {"weight": self.weight, "pos_weight": self.pos_weight}
        parts = []
        for key in ("weight", "pos_weight"):
            value = operands[key] if key in operands else (key if given[key] is not None else None)
            if value is not None:
                parts.append(f"{key}={value}")
        reduction = operands.get("reduction", self.reduction)
        if reduction != "mean":
            parts.append(f'reduction="{reduction}"')
        if self.module is not None and "reduction" not in operands:
            arguments = f"({input}, {target})" if (input, target) != ("input", "target") else ""
            return f"{self.module}({', '.join(parts)}){arguments}"
        return f"{self.function}({', '.join([input, target] + parts)})"

    def as_with_logits(self) -> LossCall:
        """The same call in the logits form (``F.binary_cross_entropy`` -> ``..._with_logits``)."""
        return replace(
            self, with_logits=True, function="F.binary_cross_entropy_with_logits",
            module="nn.BCEWithLogitsLoss" if self.module else None,
        )


def _bind(spec: LossSpec, args: tuple, kwargs: dict) -> dict[str, Any]:
    bound = dict(zip(spec.params, args))
    bound.update(kwargs)
    return bound


def _reduction(bound: dict[str, Any]) -> str:
    size_average, reduce = bound.get("size_average"), bound.get("reduce")
    if size_average is not None or reduce is not None:  # the legacy arguments win, as in PyTorch
        if reduce is False:
            return "none"
        return "sum" if size_average is False else "mean"
    reduction = bound.get("reduction", "mean")
    return _REDUCTION_NAMES.get(reduction, "mean") if isinstance(reduction, int) else str(reduction)


def read_call(spec: LossSpec, args: tuple, kwargs: dict, location: str, module: str | None) -> LossCall | None:
    """The :class:`LossCall` of a watched call, or None when its input or target is not a tensor."""
    bound = _bind(spec, args, kwargs)
    input, target = bound.get("input"), bound.get("target")
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        return None
    weight, pos_weight = bound.get("weight"), bound.get("pos_weight")
    return LossCall(
        with_logits=spec.with_logits,
        function=spec.function,
        input=input,
        target=target,
        weight=weight if isinstance(weight, Tensor) else None,
        pos_weight=pos_weight if isinstance(pos_weight, Tensor) else None,
        reduction=_reduction(bound),
        module=module,
        location=location,
    )


def _package_dir(module_file: str) -> str:
    return os.path.dirname(os.path.abspath(module_file)) + os.sep


_TORCH_DIR = _package_dir(torch.__file__)
_BCEWEIGHTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LESSONS_DIR = os.path.join(_BCEWEIGHTS_DIR, "lessons") + os.sep
_AUDIT_DIR = _package_dir(__file__)

_kinds: dict[str, str] = {}


def _kind(filename: str) -> str:
    """``"audit"``, ``"torch"``, ``"bceweights"`` (the core) or ``"user"`` (anything else, the lessons too)."""
    kind = _kinds.get(filename)
    if kind is None:
        path = os.path.abspath(filename) if os.path.isabs(filename) or os.sep in filename else filename
        if path.startswith(_AUDIT_DIR):
            kind = "audit"
        elif path.startswith(_TORCH_DIR):
            kind = "torch"
        elif path.startswith(_BCEWEIGHTS_DIR) and not path.startswith(_LESSONS_DIR):
            kind = "bceweights"
        else:
            kind = "user"
        _kinds[filename] = kind
    return kind


def _module_of(frame: FrameType) -> str | None:
    if frame.f_code.co_name != "forward":
        return None
    owner = frame.f_locals.get("self")
    return MODULE_NAMES.get(type(owner).__name__) if owner is not None else None


def call_site(frame: FrameType | None = None) -> tuple[str, str | None] | None:
    """``("path:line", module)`` of the innermost frame outside torch and bceweights, or None.

    Walks outwards from ``frame`` (default: the caller's), past the audit's own frames and torch's
    (``handle_torch_function``, ``nn.BCEWithLogitsLoss.forward``, ...). ``module`` names the loss module
    whose ``forward`` was passed on the way, if any. None when the first frame past torch belongs to the
    bceweights core: its loss checks its own operands, so its internal calls are not the user's.
    """
    frame = frame if frame is not None else sys._getframe(1)
    module = None
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind == "torch":
            module = module or _module_of(frame)
        elif kind == "bceweights":
            return None
        elif kind == "user":
            return f"{frame.f_code.co_filename}:{frame.f_lineno}", module
        frame = frame.f_back
    return None
