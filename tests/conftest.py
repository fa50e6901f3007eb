"""Shared test setup: matplotlib's Agg backend for every test, and fixtures several modules use.

The backend is chosen here, before any test module imports an explorer or pyplot, so the explorers
draw on an Agg canvas (no Jupyter, no display). Tests that need another backend start a subprocess.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

try:
    import matplotlib
except ImportError:  # the core's tests run without the lessons' stack
    matplotlib = None
else:
    matplotlib.use("agg")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def control_extremes() -> Callable[..., list]:
    """``control_extremes(control, text_values=())``: the values at a control's ends, every option of a
    dropdown, or ``text_values`` for a text box."""

    def extremes(control: Any, text_values: tuple[str, ...] = ()) -> list:
        import ipywidgets as widgets

        if isinstance(control, widgets.FloatLogSlider):
            return [control.base**control.min, control.base**control.max]
        if hasattr(control, "min") and hasattr(control, "max"):
            return [control.min, control.max]
        if hasattr(control, "options"):
            return [option[1] if isinstance(option, tuple) else option for option in control.options]
        return list(text_values)

    return extremes


@pytest.fixture
def assert_plots_finite() -> Callable[[Any], None]:
    """``assert_plots_finite(explorer)``: every array the explorer plots is finite."""

    def check(explorer: Any) -> None:
        for label, values in explorer.plotted_arrays():
            assert np.isfinite(values).all(), f"{label} not finite at {explorer.values}"

    return check
