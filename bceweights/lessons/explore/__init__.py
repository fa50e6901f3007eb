"""Live explorers for the lessons: ipympl figures driven by ipywidgets controls.

    from bceweights.lessons.explore import LossCurveExplorer
    explorer = LossCurveExplorer(pos_weight=10)
    explorer                        # as a cell's value: controls, figure and readouts
    explorer.set(y=0.25)            # recompute from code
    explorer.readouts["optimal_probability"]

Every explorer subclasses :class:`~bceweights.lessons.explore.base.Explorer`; :func:`explorer_classes`
finds them all (the benchmark ``python -m benchmarks.widgets`` times each one).

What lives where: :mod:`~.base` (the Explorer pattern), :mod:`~.controls` and :mod:`~.display` (shared
helpers, imported by base), one module per explorer (:mod:`~.loss_curve`, :mod:`~.broadcast`, ...),
and the pieces lesson 02's explorer is built from (:mod:`~.operands`, :mod:`~.shape_text`,
:mod:`~.comparison`). Imports go from the explorers to base and the helpers, and from here to the
core (:mod:`bceweights`); the exercise checkers (:mod:`bceweights.lessons.exercises`) import the
explorers, never the other way.
"""

from __future__ import annotations

import importlib
import pkgutil

from bceweights.lessons.explore.base import Explorer
from bceweights.lessons.explore.display import figure_png, format_number, png_image
from bceweights.lessons.explore.loss_curve import LossCurveExplorer


def explorer_classes() -> list[type[Explorer]]:
    """Every concrete explorer class defined in this package, sorted by name.

    Imports each module of ``bceweights.lessons.explore`` first, so an explorer added in a new module is
    found without registering it anywhere.
    """
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    found: dict[str, type[Explorer]] = {}
    pending = list(Explorer.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith(__name__ + ".") and "build_figure" in _defined_hooks(cls):
            found[cls.__qualname__] = cls
    return [found[name] for name in sorted(found)]


def _defined_hooks(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ if klass is not Explorer for name in vars(klass)}


__all__ = ["Explorer", "LossCurveExplorer", "explorer_classes", "figure_png", "format_number", "png_image"]
