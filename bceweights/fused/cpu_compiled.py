"""The CPU fused path: :func:`bceweights.fused.formula.loss_and_grad` compiled once per shape signature.

``torch.compile`` (inductor) turns the formula plus its reduction into a single vectorized, OpenMP
parallel C++ loop that reads input, target, weight and pos_weight once and writes the gradient. Each
shape signature (shapes, strides, dtypes, which operands are present, the plan) gets its own compiled
function with ``dynamic=False``, kept in a small LRU cache; every compiled function is built from its
own code object, so dynamo's per-function recompile limit never turns a new signature into a silent
eager fallback, and calls with a signature seen before never recompile.
"""

from __future__ import annotations

import functools
import itertools
import os
import sysconfig
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch
from torch import Tensor

from bceweights.fused.formula import kept_amount, loss_and_grad
from bceweights.fused.plan import FusedBuildFailed, PassOutputs, Plan
from bceweights.messages import error_message

MAX_COMPILED: int = 64
"""Compiled signatures kept per process; the least recently used one is dropped beyond this."""

_compiled: OrderedDict[Hashable, Callable[..., tuple]] = OrderedDict()
_lock = threading.Lock()
_serial = itertools.count()


class CompileFailed(FusedBuildFailed):
    """torch.compile could not build the fused CPU loss; the message says why."""


@functools.lru_cache(maxsize=1)
def toolchain_problem() -> str | None:
    """Why inductor cannot build C++ here, or None when it can (a compiler and Python's headers)."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception as error:  # InvalidCxxCompiler, or an inductor that moved the helper
        return (
            f"no working C++ compiler for torch.compile's CPU backend ({type(error).__name__}). "
            "Install one, e.g. `sudo apt-get install g++` (or `conda install gxx`), or point CXX at it."
        )
    include = sysconfig.get_paths().get("include", "")
    if not os.path.exists(os.path.join(include, "Python.h")):
        return (
            f"Python's C headers are missing ({include}/Python.h), which torch.compile's CPU backend "
            "needs. Install them, e.g. `sudo apt-get install python3-dev`."
        )
    return None


def unavailable_reason() -> str | None:
    """Why the compiled CPU path cannot run in this process (no C++ toolchain), or None.

    A build that fails is not remembered here: it concerns its own signature only (see
    :func:`bceweights.backend.compute_loss`), and never turns the path off for the whole process.
    """
    return toolchain_problem()


def signature(plan: Plan, tensors: tuple[Tensor | None, ...]) -> Hashable:
    """Everything a compiled function is specialised on: the plan, threads and each operand's layout."""
    layouts = tuple(
        None if t is None else (tuple(t.shape), t.stride(), t.dtype, t.requires_grad) for t in tensors
    )
    return (plan, torch.get_num_threads(), layouts)


def _single_pass(
    plan: Plan,
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    pos_weight: Tensor | None,
    ignore: Tensor | None,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """The graph inductor compiles: loss (summed or per element), denominator and gradient."""
    loss, grad = loss_and_grad(
        input, target, weight, pos_weight, ignore, gamma=plan.gamma, alpha=plan.alpha, need_grad=plan.need_grad
    )
    values = loss.sum() if plan.reduce else loss.to(input.dtype)
    kept = kept_amount(input, weight, ignore, plan.kept) if plan.kept is not None else None
    if grad is not None and plan.grad_scale != 1.0:
        grad = grad * plan.grad_scale
    return values, kept, None if grad is None else grad.to(input.dtype)


def _new_compiled(plan: Plan) -> Callable[..., tuple]:
    def fused_bce(input, target, weight, pos_weight, ignore):  # noqa: ANN001, ANN202 (traced by dynamo)
        return _single_pass(plan, input, target, weight, pos_weight, ignore)

    # A fresh code object gives this signature its own dynamo cache and recompile budget.
    code = fused_bce.__code__.replace(co_name=f"fused_bce_{next(_serial)}")
    function = types.FunctionType(code, fused_bce.__globals__, code.co_name, None, fused_bce.__closure__)
    return torch.compile(function, dynamic=False, fullgraph=True)


def compiled_for(plan: Plan, tensors: tuple[Tensor | None, ...]) -> tuple[Callable[..., tuple], bool]:
    """The compiled function for this signature, and whether it was created by this call."""
    key = signature(plan, tensors)
    with _lock:
        function = _compiled.get(key)
        if function is not None:
            _compiled.move_to_end(key)
            return function, False
        function = _new_compiled(plan)
        _compiled[key] = function
        while len(_compiled) > MAX_COMPILED:
            _compiled.popitem(last=False)
        return function, True


def is_compiled(plan: Plan, tensors: tuple[Tensor | None, ...]) -> bool:
    """True when a call with this signature would not compile anything."""
    return signature(plan, tensors) in _compiled


def run(plan: Plan, input: Tensor, target: Tensor, weight: Tensor | None, pos_weight: Tensor | None,
        ignore: Tensor | None) -> PassOutputs:
    """One fused pass on CPU tensors (see :class:`bceweights.fused.plan.PassOutputs`).

    Runs with autocast off: the operands arrive in the dtype the loss computes in (see
    :func:`bceweights.prepared.prepare`), and the compiled function is not re-traced for autocast.

    Raises:
        CompileFailed: the first call of a new signature could not be compiled (nothing is kept: the
            next call of that signature compiles again).
    """
    # Detached: the pass computes the gradient itself, and dynamo tracing a non-leaf input (any model
    # output) reads its .grad, which warns (an error under -W error) and guards on autograd state.
    tensors = tuple(None if t is None else t.detach() for t in (input, target, weight, pos_weight, ignore))
    function, new = compiled_for(plan, tensors)
    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        if not new:
            values, kept, grad = function(*tensors)
        else:
            try:
                with warnings.catch_warnings():
                    # torch's own modules, imported while compiling, warn about their deprecations;
                    # those are not the caller's to act on (and would break `-W error` test runs)
                    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
                        warnings.simplefilter("ignore", category)
                    values, kept, grad = function(*tensors)
            except Exception as error:
                with _lock:
                    _compiled.pop(signature(plan, tensors), None)
                problem = toolchain_problem()
                reason = problem or f"torch.compile failed: {type(error).__name__}: {error}".splitlines()[0]
                raise CompileFailed(error_message(
                    f"The compiled CPU loss could not be built: {reason}",
                    fixes='backend="torch"   # the eager path, same values',
                )) from error
    return PassOutputs(values, kept, grad)
