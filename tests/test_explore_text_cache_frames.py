"""The explorers' drawing shortcuts: the text raster cache and the fast PNG frames for ipympl."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

import bceweights.lessons.explore.text_cache as text_cache
from bceweights.lessons.explore.frames import diff_frame, fast_png, send_fast_frames
from bceweights.lessons.explore.text_cache import TextRasterCache


def _figure() -> Figure:
    figure = Figure(figsize=(5, 2.5), dpi=90)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 3])
    axes.set_title("gradient ∂L/∂x, ×1.5", fontsize=9)
    figure.text(0.3, 0.5, "n = 0", rotation=90, color="tab:red", alpha=0.6)
    figure.text(0.5, 0.4, "two\nlines", family="monospace")
    return figure


def _pixels(figure: Figure) -> np.ndarray:
    return np.asarray(figure.canvas.buffer_rgba()).astype(int)


def test_cached_text_matches_matplotlib_at_exact_subpixel_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_cache, "SUBPIXEL_STEPS", 1024)
    monkeypatch.setattr(text_cache, "_GLYPH_API", False)
    plain = _figure()
    plain.canvas.draw()
    cached = _figure()
    cache = TextRasterCache()
    cache.install(cached.canvas.get_renderer())
    cached.canvas.draw()
    difference = np.abs(_pixels(plain) - _pixels(cached))
    assert difference.max() <= 1  # same glyphs, same compositing; only uint8 rounding
    assert cache.misses > 0 and cache.hits == 0


def test_lines_built_from_cached_glyphs_match_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    if not text_cache._GLYPH_API:
        pytest.skip("this matplotlib has no glyph-level FT2Font API")
    monkeypatch.setattr(text_cache, "SUBPIXEL_STEPS", 1024)
    plain = _figure()
    plain.canvas.draw()
    cached = _figure()
    TextRasterCache().install(cached.canvas.get_renderer())
    cached.canvas.draw()
    assert np.abs(_pixels(plain) - _pixels(cached)).max() <= 1


def test_quarter_pixel_origins_look_the_same() -> None:
    plain = _figure()
    plain.canvas.draw()
    cached = _figure()
    TextRasterCache().install(cached.canvas.get_renderer())
    cached.canvas.draw()
    difference = np.abs(_pixels(plain) - _pixels(cached)).max(axis=-1)
    assert (difference > 64).mean() < 0.002  # glyph edges shifted by at most 1/8 px


def test_second_draw_hits_the_cache_and_gives_the_same_frame() -> None:
    figure = _figure()
    cache = TextRasterCache()
    cache.install(figure.canvas.get_renderer())
    figure.canvas.draw()
    first, misses = _pixels(figure), cache.misses
    figure.canvas.draw()
    assert cache.misses == misses and cache.hits >= misses
    assert np.array_equal(first, _pixels(figure))


def test_cache_is_bounded() -> None:
    figure = _figure()
    cache = TextRasterCache(max_entries=3)
    cache.install(figure.canvas.get_renderer())
    figure.canvas.draw()
    assert len(cache) == 3


def test_fast_png_round_trips() -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (7, 11, 4), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(fast_png(rgba))).convert("RGBA"))
    assert np.array_equal(decoded, rgba)
    with pytest.raises(ValueError, match=r"\(H, W, 4\)"):
        fast_png(rgba[..., :3])


class _WebCanvas:
    """The state of matplotlib's web canvas that the diff logic reads and writes."""

    def __init__(self, figure: Figure) -> None:
        self._agg = FigureCanvasAgg(figure)
        self._png_is_old, self._force_full, self._last_buff = True, True, np.empty((0, 0))
        self.modes: list[str] = []

    def get_renderer(self):  # noqa: ANN201
        return self._agg.get_renderer()

    def set_image_mode(self, mode: str) -> None:
        self.modes.append(mode)


def test_diff_frame_sends_full_then_only_changed_pixels() -> None:
    figure = Figure(figsize=(2, 1), dpi=50)
    figure.patch.set_facecolor("white")
    canvas = _WebCanvas(figure)
    assert send_fast_frames(canvas)
    canvas._agg.draw()
    full = np.asarray(Image.open(io.BytesIO(canvas.get_diff_image())).convert("RGBA"))
    assert canvas.modes == ["full"] and (full[..., 3] == 255).all()
    assert canvas.get_diff_image() is None  # nothing drawn since
    figure.text(0.5, 0.5, "x")
    canvas._agg.draw()
    canvas._png_is_old = True
    diff = np.asarray(Image.open(io.BytesIO(diff_frame(canvas))).convert("RGBA"))
    assert canvas.modes[-1] == "diff"
    changed = diff[..., 3] > 0
    assert 0 < changed.sum() < changed.size
    assert np.array_equal(diff[changed], np.asarray(canvas._agg.buffer_rgba())[changed])


def test_send_fast_frames_leaves_other_canvases_alone() -> None:
    canvas = FigureCanvasAgg(Figure())
    assert not send_fast_frames(canvas)
    assert "get_diff_image" not in vars(canvas)

