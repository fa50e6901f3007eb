"""A raster cache for text on an explorer's Agg renderer: each line of text is rendered once.

matplotlib 3.11's Agg renderer lays out and rasterises every glyph of every text on every draw (about
0.1 ms a glyph, 1 ms a line on a busy 2-core machine). An explorer redraws the same strings over and
over: tick labels on each full draw, captions and verdicts that change only with a dropdown, bar labels
that take a few values. :class:`TextRasterCache` keeps, per line of text, the coverage bitmap the
renderer produced (an ``(h, w)`` uint8 alpha mask) and composites it with the text's colour through
the renderer's own ``draw_text_image``, the routine that composites each glyph in the uncached path:
same glyphs, same clipping, same colour. Only the sub-pixel origin is rounded, to a quarter pixel
(the uncached renderer places glyphs at exact sub-pixel positions; a shift of at most 1/8 px is not
visible).

Scope: plain text on the renderer of the explorer's own canvas (:meth:`TextRasterCache.install`).
Mathtext, TeX, text with path effects and the renderers ``savefig`` creates (the static PNGs) take
matplotlib's usual path.

Imports: matplotlib and numpy.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import RendererAgg, get_hinting_flag

#: Sub-pixel steps per pixel at which a line's origin is cached.
SUBPIXEL_STEPS = 4
#: Lines kept (least recently used dropped first): a few hundred strings times a few origins.
MAX_ENTRIES = 4096

#: Glyph bitmaps kept (oldest dropped first).
MAX_GLYPHS = 8192
_MARKER = "_bceweights_text_cache"
#: FreeType's identity matrix in 16.16 fixed point.
_IDENTITY = np.array([[0x10000, 0], [0, 0x10000]])

try:  # matplotlib 3.11's glyph-level API (what its Agg renderer uses); older versions take the scratch path
    from matplotlib.ft2font import FT2Font, RenderMode

    _GLYPH_API = all(hasattr(FT2Font, name) for name in ("_layout", "_render_glyph", "_set_transform"))
except ImportError:  # pragma: no cover
    _GLYPH_API = False


class TextRasterCache:
    """Coverage bitmaps of text lines, keyed by string, font, size, angle, antialiasing and origin.

    ``hits`` and ``misses`` count lookups (for tests and profiling).
    """

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, tuple[np.ndarray, int, int]] = OrderedDict()
        self._glyphs: dict[tuple, tuple[np.ndarray, int, int]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def install(self, renderer: Any) -> None:
        """Route ``renderer.draw_text`` through the cache (once per renderer; others are left alone)."""
        if not isinstance(renderer, RendererAgg) or getattr(renderer, _MARKER, None) is self:
            return
        uncached = type(renderer).draw_text.__get__(renderer)

        def draw_text(gc, x, y, s, prop, angle, ismath=False, mtext=None):  # noqa: ANN001, ANN202
            if ismath or not s:
                return uncached(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
            return self.draw(renderer, gc, x, y, s, prop, angle, mtext)

        renderer.draw_text = draw_text
        setattr(renderer, _MARKER, self)

    def draw(self, renderer: RendererAgg, gc: Any, x: float, y: float, s: str, prop: Any, angle: float,
             mtext: Any = None) -> None:
        """Draw one line of text at ``(x, y)`` (pixels, y downwards, the baseline's left end)."""
        ix, iy = math.floor(x), math.floor(y)
        fx = round((x - ix) * SUBPIXEL_STEPS)
        fy = round((y - iy) * SUBPIXEL_STEPS)
        features = getattr(mtext, "get_fontfeatures", lambda: None)() if mtext is not None else None
        language = getattr(mtext, "get_language", lambda: None)() if mtext is not None else None
        key = (
            s, hash(prop), prop.get_size_in_points(), float(angle) % 360.0, bool(gc.get_antialiased()),
            float(renderer.dpi), get_hinting_flag(), tuple(features) if features else None,
            str(language) if language else None, fx, fy,
        )
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            subpixel = (fx / SUBPIXEL_STEPS, fy / SUBPIXEL_STEPS)
            entry = None
            if float(angle) % 360.0 == 0.0 and _GLYPH_API:
                entry = self._from_glyphs(renderer, gc, s, prop, mtext, *subpixel)
            if entry is None:
                entry = _rasterise(renderer, gc, s, prop, angle, mtext, *subpixel)
            self._entries[key] = entry
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        else:
            self.hits += 1
            self._entries.move_to_end(key)
        coverage, left, bottom = entry
        if coverage.size:
            renderer._renderer.draw_text_image(coverage, ix + left, iy + bottom, 0, gc)

    def _from_glyphs(self, renderer: RendererAgg, gc: Any, s: str, prop: Any, mtext: Any, fx: float,
                     fy: float) -> tuple[np.ndarray, int, int]:
        """A new line from cached glyph bitmaps: matplotlib's layout, each glyph rendered once per
        font, size and quarter-pixel offset (letters repeat across lines: most glyphs are hits)."""
        font = renderer._prepare_font(prop)
        kwargs = {}
        if mtext is not None and hasattr(mtext, "get_fontfeatures"):
            kwargs = {"features": mtext.get_fontfeatures(), "language": mtext.get_language()}
        items = font._layout(s, flags=get_hinting_flag(), **kwargs)
        size = prop.get_size_in_points()
        antialiased = bool(gc.get_antialiased())
        pieces = []  # (coverage, left, top), pixels, y downwards, relative to the line's integer origin
        for item in items:
            gx, gy = fx + item.x, fy - item.y  # item.y is upwards
            steps_x, steps_y = round(gx * SUBPIXEL_STEPS), round(gy * SUBPIXEL_STEPS)
            base_x, base_y = steps_x // SUBPIXEL_STEPS, steps_y // SUBPIXEL_STEPS
            glyph = self._glyph(item.ft_object, size, renderer.dpi, item.glyph_index, antialiased,
                                steps_x - base_x * SUBPIXEL_STEPS, steps_y - base_y * SUBPIXEL_STEPS)
            if glyph[0].size:
                pieces.append((glyph[0], base_x + glyph[1], base_y + glyph[2]))
        if not pieces:
            return np.zeros((0, 0), dtype=np.uint8), 0, 0
        left = min(p[1] for p in pieces)
        top = min(p[2] for p in pieces)
        right = max(p[1] + p[0].shape[1] for p in pieces)
        bottom = max(p[2] + p[0].shape[0] for p in pieces)
        coverage = np.zeros((bottom - top, right - left), dtype=np.uint16)
        for bitmap, x0, y0 in pieces:
            region = coverage[y0 - top:y0 - top + bitmap.shape[0], x0 - left:x0 - left + bitmap.shape[1]]
            # Coverages combine as 1 - (1 - a)(1 - b): what compositing the glyphs one by one gives.
            region += bitmap - (region * bitmap + 127) // 255
        return coverage.astype(np.uint8), left, bottom

    def _glyph(self, ft_object: Any, size: float, dpi: float, index: int, antialiased: bool, steps_x: int,
               steps_y: int) -> tuple[np.ndarray, int, int]:
        """One glyph's coverage ``(h, w)`` uint16 and its top-left offset (y downwards) from the pen,
        rendered by FreeType at the pen's sub-pixel offset ``steps / SUBPIXEL_STEPS``."""
        key = (ft_object.fname, size, float(dpi), index, antialiased, get_hinting_flag(), steps_x, steps_y)
        glyph = self._glyphs.get(key)
        if glyph is None:
            ft_object.set_size(size, dpi)
            shift_x = round(0x40 * steps_x / SUBPIXEL_STEPS)
            shift_y = round(-0x40 * steps_y / SUBPIXEL_STEPS)  # FreeType's y is upwards
            ft_object._set_transform(_IDENTITY, [shift_x, shift_y])
            bitmap = ft_object._render_glyph(
                index, get_hinting_flag(), RenderMode.NORMAL if antialiased else RenderMode.MONO
            )
            buffer = np.asarray(bitmap.buffer, dtype=np.uint16)
            if not antialiased:
                buffer = buffer * 0xFF
            glyph = (buffer, int(bitmap.left), -int(bitmap.top))
            self._glyphs[key] = glyph
            if len(self._glyphs) > MAX_GLYPHS:
                self._glyphs.pop(next(iter(self._glyphs)))
        return glyph


def _rasterise(renderer: RendererAgg, gc: Any, s: str, prop: Any, angle: float, mtext: Any,
               fx: float, fy: float) -> tuple[np.ndarray, int, int]:
    """Render ``s`` with matplotlib's own Agg path on a small transparent canvas; crop its alpha.

    Returns the coverage ``(h, w)`` uint8 and the offsets of its left edge and of the row below its
    bottom edge from the integer origin (what ``draw_text_image`` takes).
    """
    width, height, descent = renderer.get_text_width_height_descent(s, prop, ismath=False)
    pad = int(math.ceil(4 + prop.get_size_in_points() * renderer.dpi / 72.0 * 0.5))
    if float(angle) % 360.0 == 0.0:
        canvas_w, canvas_h = int(math.ceil(width)) + 2 * pad, int(math.ceil(height)) + 2 * pad
        origin_x, origin_y = pad, pad + int(math.ceil(height - descent))
    else:
        reach = int(math.ceil(math.hypot(width, height))) + pad
        canvas_w = canvas_h = 2 * reach
        origin_x = origin_y = reach
    scratch = RendererAgg(canvas_w, canvas_h, renderer.dpi)
    scratch_gc = scratch.new_gc()
    scratch_gc.set_foreground((0.0, 0.0, 0.0, 1.0), isRGBA=True)
    scratch_gc.set_antialiased(gc.get_antialiased())
    RendererAgg.draw_text(scratch, scratch_gc, origin_x + fx, origin_y + fy, s, prop, angle, mtext=mtext)
    scratch_gc.restore()
    alpha = np.asarray(scratch.buffer_rgba())[:, :, 3]
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    if rows.size == 0:
        return np.zeros((0, 0), dtype=np.uint8), 0, 0
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    left, right = int(cols[0]), int(cols[-1]) + 1
    coverage = np.ascontiguousarray(alpha[top:bottom, left:right])
    return coverage, left - origin_x, bottom - origin_y
