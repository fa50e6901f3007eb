"""Checks that need to look at values (range, sign, NaN), and the switch that turns them off.

Shape checks are free: they read only ``.shape``. Value checks read every element and, on a GPU,
wait for the device (``.item()`` synchronises), so a training loop that has already validated its
data may turn them off::

    bw.set_value_checks(False)          # the process default (every thread, every task)
    with bw.value_checks(False): ...    # this thread / this asyncio task only, for the block
    bw.bce_with_logits(..., check_values=False)   # for one call

Which setting a call uses, first match wins:

1. the call's own ``check_values=True/False``;
2. the innermost ``with bw.value_checks(...)`` block still open **in the current context**: a
   :class:`contextvars.ContextVar`, so a block in one thread or asyncio task never changes what
   another thread or task sees (a thread starts with no block open; a task starts with the blocks
   open where it was created, as :mod:`contextvars` defines);
3. the process default, set by :func:`set_value_checks` (on when ``bceweights`` is imported).

Inside a ``torch.compile`` graph, rule 2 does not apply (Dynamo cannot read a ``ContextVar``): the
call's ``check_values`` or the process default decide, and changing the default recompiles.

Each block removes exactly its own entry when it ends, so blocks that end in any order (nested,
overlapping, or interleaved across tasks) leave the setting as it was before them.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

import torch

from bceweights.messages import error_message

_process_default: bool = True
_default_lock = threading.Lock()

#: The blocks open in this context, outermost first: ``(marker, enabled)`` pairs (an immutable tuple,
#: so a context copied by a new task keeps its own snapshot).
_open_blocks: contextvars.ContextVar[tuple[tuple[object, bool], ...]] = contextvars.ContextVar(
    "bceweights_value_checks", default=()
)


def set_value_checks(enabled: bool) -> bool:
    """Set the process default for value checks (all threads and tasks); returns the previous default.

    A ``with bw.value_checks(...)`` block open in the current context still wins over the default
    inside that block.
    """
    global _process_default
    with _default_lock:
        previous, _process_default = _process_default, bool(enabled)
    return previous


@contextlib.contextmanager
def value_checks(enabled: bool) -> Iterator[None]:
    """Context manager: value checks on or off inside the ``with`` block, in the current context only.

    Other threads and asyncio tasks keep their own setting; the process default
    (:func:`set_value_checks`) is not touched. Also usable as a decorator.
    """
    marker = object()
    _open_blocks.set((*_open_blocks.get(), (marker, bool(enabled))))
    try:
        yield
    finally:
        _open_blocks.set(tuple(block for block in _open_blocks.get() if block[0] is not marker))


def value_checks_enabled(check_values: bool | None = None) -> bool:
    """The effective setting for one call: ``check_values`` if given, else the innermost open block of
    the current context, else the process default."""
    if check_values is not None:
        return bool(check_values)
    if torch.compiler.is_compiling():
        # Dynamo cannot read a ContextVar. Inside a compiled graph the process default applies: a plain
        # global, which Dynamo guards on, so bw.set_value_checks(...) recompiles the graph with the new
        # setting. `with bw.value_checks(...)` blocks do not reach into compiled graphs.
        return _process_default
    blocks = _open_blocks.get()
    return blocks[-1][1] if blocks else _process_default


def nonfinite_mask(values: torch.Tensor) -> torch.Tensor:
    """``values.shape`` bool: True where a value is NaN or infinite."""
    return ~torch.isfinite(values)


def negative_mask(values: torch.Tensor) -> torch.Tensor:
    """``values.shape`` bool: True where a value is below 0 (NaN is not negative)."""
    return values < 0


def outside_unit_interval(values: torch.Tensor, ignore: torch.Tensor | None = None) -> torch.Tensor:
    """Bool mask, ``values.shape`` broadcast with ``ignore``: True where a value is NaN or outside [0, 1]
    and not ignored (``ignore`` is ``None`` or a bool mask broadcastable to ``values``)."""
    outside = ~((values >= 0) & (values <= 1))  # NaN compares False, so it counts as outside
    return outside if ignore is None else outside & ~ignore


def check_weight_values(name: str, weight: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``weight`` holds NaN, infinity or a negative number."""
    if weight.numel() == 0:
        return
    nonfinite = nonfinite_mask(weight)
    if bool(nonfinite.any()):
        nan = int(torch.isnan(weight).sum())
        infinite = int(nonfinite.sum()) - nan
        held = " and ".join(part for part in (f"{nan} NaN" if nan else "", f"{infinite} infinite" if infinite else "") if part)
        raise ValueError(error_message(
            f"{name} holds {held} value(s)", "weights must be finite numbers >= 0.",
            f"{name} = torch.nan_to_num({name}, nan=0.0)   # if those elements should not count",
            why=f"A NaN or an inf usually comes from a division by a zero count (0/0, 1/0); check how {name} "
            f"was built, or whether its dtype ({str(weight.dtype).replace('torch.', '')}) holds its values.",
            lead="Write instead, e.g.",
        ))
    negative = negative_mask(weight)
    if bool(negative.any()):
        smallest = float(weight.min())
        raise ValueError(error_message(
            f"{name} holds {int(negative.sum())} negative value(s) (smallest {smallest:.4g})",
            "expected weights >= 0.", f"{name} = {name}.clamp_min(0)",
            why="A negative weight rewards the model for being wrong.",
            lead="Write instead, if the sign is a bug upstream",
        ))


def check_target_values(target: torch.Tensor, ignore: torch.Tensor | None) -> None:
    """Raise ``ValueError`` if a target outside ``ignore`` is NaN or lies outside ``[0, 1]``.

    ``target`` has the input's shape; ``ignore`` is ``None`` or a bool mask broadcastable to it.
    """
    if target.numel() == 0:
        return
    outside = outside_unit_interval(target, ignore)
    if not bool(outside.any()):
        return
    count = int(outside.sum())
    example = target[outside.expand_as(target)][0].item()
    raise ValueError(error_message(
        f"target holds {count} value(s) outside [0, 1] (for example {example!r})",
        "binary cross-entropy needs targets in [0, 1] (probabilities, or 0/1 labels).",
        [
            "ignore=(target == 255)        # if a value marks void or unlabelled pixels",
            "target = F.one_hot(target.long(), C).movedim(-1, 1).float()   # if values are class indices",
        ],
        join="; ", note="(or check_values=False to skip value checks, at your own risk)",
    ))
