"""Control values and axis limits the explorers share: ``None`` in dropdowns, log sliders, sticky limits.

Imports: torch and the standard library only (no matplotlib, no ipywidgets).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch

NONE_OPTION = "none"
"""A dropdown option value that stands for Python ``None``.

ipywidgets shows a ``Dropdown`` whose value is ``None`` as empty (nothing selected), so an option such
as ``("None", NONE_OPTION)`` is used instead; ``explorer.values`` and ``explorer.set`` speak ``None``.
"""


def to_control(value: Any) -> Any:
    """A Python value as a control holds it (``None`` -> :data:`NONE_OPTION`)."""
    return NONE_OPTION if value is None else value


def from_control(value: Any) -> Any:
    """A control's value as explorers and ``explorer.values`` see it (:data:`NONE_OPTION` -> ``None``)."""
    return None if isinstance(value, str) and value == NONE_OPTION else value


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run tiny tensor work on one intra-op thread (restored after): on a busy machine, waking
    PyTorch's thread pool for a few hundred elements costs milliseconds, the work microseconds."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def nice_ceiling(
    value: float, floor: float = 1.0, mantissas: tuple[float, ...] = (1.0, 2.0, 5.0)
) -> float:
    """Smallest number of the form ``m * 10**k`` (m in ``mantissas``) that is >= ``value`` and >= ``floor``.

    Axis limits snapped to these values change only in visible steps, so a learner sees curves
    steepen between steps instead of the axis silently rescaling on every drag.
    """
    value = max(float(value), float(floor))
    if not math.isfinite(value):
        return float(floor)
    exponent = math.floor(math.log10(value))
    for mantissa in (*mantissas, 10.0):
        candidate = mantissa * 10.0**exponent
        if candidate >= value * (1 - 1e-12):
            return candidate
    return 10.0 ** (exponent + 1)


#: Mantissas of the values a log-scaled slider offers: about evenly spaced in log, and round.
LOG_MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)


def log_choices(
    min_exponent: int, max_exponent: int, mantissas: tuple[float, ...] = LOG_MANTISSAS
) -> list[tuple[str, float]]:
    """``(label, value)`` options for a log-scaled ``SelectionSlider``: ``m * 10**k`` from 10**min to 10**max.

    A log slider over round values (0.01, 0.012, ..., 9, 10, 12, ..., 100) rather than
    ``FloatLogSlider``: that widget snaps a value set from code (``pos_weight=9``) to its step grid
    in the browser and sends the snapped value back, so the kernel's numbers would change under
    the learner. Every value here is exact, and the arrow keys move one option at a time.
    """
    values = [round(m * 10.0**k, 12) for k in range(min_exponent, max_exponent) for m in mantissas]
    values.append(round(10.0**max_exponent, 12))
    return [(f"{v:g}", v) for v in values]


def sticky_limit(
    current: float | None, needed: float, floor: float = 1.0, mantissas: tuple[float, ...] = (1.0, 2.0, 5.0),
    shrink_below: float = 0.3,
) -> float:
    """An axis limit that moves only when it must: kept while ``needed`` fits and fills a fair part.

    Returns ``current`` when ``shrink_below * current <= needed <= current``, else
    ``nice_ceiling(needed)``. Dragging a slider then changes the axes (a full redraw) only now and
    then, and the curves visibly steepen or flatten in between.
    """
    needed = max(float(needed), float(floor))
    if current is not None and shrink_below * current <= needed <= current:
        return current
    return nice_ceiling(needed, floor=floor, mantissas=mantissas)
