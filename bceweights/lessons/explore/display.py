"""How explorers show things outside their figure: readout numbers, static PNGs, the ipympl check.

Imports: matplotlib and numpy; IPython only inside :func:`png_image`.
"""

from __future__ import annotations

import io
import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

_IPYMPL_BACKENDS = frozenset({"module://ipympl.backend_nbagg", "widget", "ipympl"})
# Resolution of the static PNG put into display bundles and into the fallback Image view.
STATIC_DPI = 80


def ipympl_active() -> bool:
    """True when matplotlib's backend is ipympl (``%matplotlib widget``), without resolving a default."""
    backend = matplotlib.get_backend(auto_select=False)
    return backend is not None and backend.lower() in _IPYMPL_BACKENDS


def format_number(value: float) -> str:
    """A readout value with 4 significant digits; infinities as ``inf`` / ``-inf``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def html_number(value: float) -> str:
    text = format_number(value)
    return {"inf": "+∞", "-inf": "−∞"}.get(text, text.replace("-", "−"))


def figure_png(figure: Figure, dpi: float = STATIC_DPI) -> bytes:
    """The figure rendered as PNG bytes (Agg), whatever canvas the figure is attached to."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def png_image(figure: Figure, dpi: float = STATIC_DPI):
    """An ``IPython.display.Image`` of a static figure, for lessons that run under ``%matplotlib widget``.

    A figure made with ``matplotlib.figure.Figure`` (not ``plt.figure``) is not managed by pyplot, so
    it does not become an ipympl widget; showing it through this function keeps a plain image in the
    notebook (visible on GitHub) with a stable ``text/plain`` for nbval.
    """
    from IPython.display import Image

    return Image(data=figure_png(figure, dpi=dpi), format="png")
