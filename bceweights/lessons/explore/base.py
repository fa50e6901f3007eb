"""The pattern every live explorer follows: one figure, a dict of controls, numeric readouts.

An :class:`Explorer` owns

* ``controls``: a dict ``name -> ipywidgets`` value widget (sliders, dropdowns);
* ``figure``: one matplotlib figure, built once; every update changes artists in place
  (``set_data``, ``set_ydata``) and redraws: artists registered with ``animate`` are blitted over a
  cached background (axes, ticks, labels), which is redrawn in full only when an axes' limits
  change; an explorer without animated artists asks the canvas for ``draw_idle``;
* ``readouts``: a plain dict ``name -> float`` of the numbers the explorer shows, recomputed on every
  update, so code (the notebooks' check cells, the tests) can read what a learner sees;
* ``widget``: one ipywidgets container (controls, figure view, readout table) with CSS classes
  ``bce-explorer``, ``bce-canvas``, ``bce-readout`` and ``bce-control bce-control-<name>`` that the
  browser tests look for.

Changing a control (by dragging it, by ``explorer.controls["pos_weight"].value = 10`` or by
``explorer.set(pos_weight=10)``) recomputes synchronously; ``update_count`` counts the updates.

The figure view depends on the matplotlib backend. Under ``%matplotlib widget`` (ipympl) it is the
interactive ipympl canvas. Anywhere else (a plain Python process, tests, the benchmark, a notebook on
the inline backend) the figure gets an Agg canvas and the view is an ``ipywidgets.Image`` that is
refreshed with a PNG only once the explorer has been displayed; ``figure.canvas.draw()`` always works.

``display(explorer)`` (or an explorer as a cell's value) shows the container widget. The display
bundle also carries an ``image/png`` of the current frame, so a notebook viewed without a kernel
(GitHub, nbviewer, ``jupyter nbconvert --to html``) still shows the plot.

Writing a new explorer: subclass and implement three hooks, plus optionally two for the benchmark::

    class MyExplorer(Explorer):
        figsize = (8.0, 3.2)
        readout_labels = {"ratio": "positive / negative gradient"}

        def build_controls(self) -> dict[str, widgets.ValueWidget]: ...
        def build_figure(self, figure: Figure) -> None: ...        # axes and artists, once;
                                                                   # self.animate(*moving_artists)
        def recompute(self, values: dict) -> dict[str, float]: ... # move artists, return readouts

        @classmethod
        def example(cls) -> "MyExplorer": ...                       # a representative instance
        def benchmark_changes(self) -> list[dict]: ...              # control values to cycle

The helpers explorers share live beside this module: :mod:`~bceweights.lessons.explore.controls`
(control values, slider choices, axis limits) and :mod:`~bceweights.lessons.explore.display`
(readout numbers, static PNGs, the ipympl check).
"""

from __future__ import annotations

import base64
import contextlib
import html
import math
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import ipywidgets as widgets
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bceweights.lessons.explore.controls import from_control, to_control
from bceweights.lessons.explore.frames import send_fast_frames
from bceweights.lessons.explore.display import STATIC_DPI, figure_png, format_number, html_number, ipympl_active, png_image
from bceweights.lessons.explore.text_cache import TextRasterCache
from bceweights.messages import error_message

#: Rendered lines of text, shared by every explorer's canvas (tick labels, captions, readouts in the figure).
TEXT_CACHE = TextRasterCache()
#: Backgrounds kept per explorer (about 1 MB each): axes limits that come back (a slider dragged back
#: and forth across a limit step) are blitted over their kept background instead of redrawn.
MAX_BACKGROUNDS = 16

class Explorer:
    """Base class of the live explorers. See the module docstring for the pattern and the hooks."""

    #: Figure size in inches.
    figsize: ClassVar[tuple[float, float]] = (9.0, 3.4)
    #: Figure resolution (dots per inch); the ipympl canvas is ``figsize * dpi`` pixels.
    dpi: ClassVar[float] = 90.0
    #: Human-readable labels for the readout table, in display order; readouts not listed are
    #: shown after these under their own names.
    readout_labels: ClassVar[dict[str, str]] = {}
    #: One line shown above the controls.
    title: ClassVar[str] = ""

    # ----------------------------------------------------------------------------------------------
    # Hooks for subclasses.

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        """Create the control widgets, ``name -> widget`` (values are the initial state)."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_controls()")

    def build_figure(self, figure: Figure) -> None:
        """Create the axes and every artist that ``recompute`` will move. Called once."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_figure(figure)")

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        """Move the artists to show ``values`` (control name -> value); return the readouts."""
        raise NotImplementedError(f"{type(self).__name__} must implement recompute(values)")

    def readout_notes(self, values: dict[str, Any], readouts: Mapping[str, float]) -> list[str]:
        """Optional sentences shown under the readout table (HTML allowed)."""
        return []

    @classmethod
    def example(cls) -> Explorer:
        """A representative instance, used by ``python -m benchmarks.widgets``."""
        return cls()

    def benchmark_changes(self) -> list[dict[str, Any]]:
        """Control values that ``python -m benchmarks.widgets`` applies in order, one update each.

        They should look like a learner dragging: the default sweeps each numeric slider from its
        minimum to its maximum in 12 steps (log sliders evenly in the exponent), cycles through each
        dropdown's options, and returns the control to its initial value. Override it to exercise
        an explorer's expensive paths.
        """
        changes: list[dict[str, Any]] = []
        steps = np.linspace(0.0, 1.0, 12)
        for name, control in self.controls.items():
            initial = control.value
            if isinstance(control, widgets.FloatLogSlider):
                points = [float(control.base ** (control.min + f * (control.max - control.min))) for f in steps]
            elif isinstance(control, (widgets.IntSlider, widgets.FloatSlider)):
                points = [float(control.min + f * (control.max - control.min)) for f in steps]
                if isinstance(control, widgets.IntSlider):
                    points = [int(round(p)) for p in points]
            elif hasattr(control, "options"):
                points = [opt[1] if isinstance(opt, tuple) else opt for opt in control.options]
            else:
                continue
            changes.extend({name: p} for p in points)
            changes.append({name: initial})
        return changes

    # ----------------------------------------------------------------------------------------------
    # Construction.

    def __init__(self, **initial: Any) -> None:
        self.controls: dict[str, widgets.ValueWidget] = self.build_controls()
        self._check_names(initial)
        self._hold = False
        self._displayed = False
        self.update_count = 0
        #: Full draws done by ``render`` (the rest were blits); bump ``static_version`` after changing
        #: a static artist (a title, a legend label) so the next render redraws everything.
        self.full_draw_count = 0
        self.static_version = 0
        #: Hashable description of the static artists' content (a chosen case, a target colour), set by
        #: ``recompute``: part of the background's key, so returning to a state reuses its background.
        self.static_state: Any = None
        self._animated: list[Any] = []
        # Backgrounds by static key (limits, size, static_version, static_state), most recent last.
        self._backgrounds: OrderedDict[tuple, Any] = OrderedDict()
        self.readouts: dict[str, float] = {}
        self.values: dict[str, Any] = {}

        for name, value in initial.items():
            self._check_range(name, to_control(value))
            self.controls[name].value = to_control(value)

        self.figure, self.figure_view, self.interactive_canvas = self._make_figure()
        TEXT_CACHE.install(self.figure.canvas.get_renderer())
        self.build_figure(self.figure)
        self.figure.canvas.mpl_connect("draw_event", self._on_draw_event)

        self.readout_view = widgets.HTML()
        self.readout_view.add_class("bce-readout")
        for name, control in self.controls.items():
            control.add_class("bce-control")
            control.add_class(f"bce-control-{name}")
            control.observe(self._on_control_change, names="value")

        control_box = widgets.HBox(
            list(self.controls.values()),
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        parts: list[widgets.Widget] = []
        if self.title:
            parts.append(widgets.HTML(f"<b>{html.escape(self.title)}</b>"))
        parts += [control_box, self.figure_view, self.readout_view]
        self.widget = widgets.VBox(parts)
        self.widget.add_class("bce-explorer")
        self.widget.add_class(f"bce-explorer-{type(self).__name__}")
        self.update()

    def _make_figure(self) -> tuple[Figure, widgets.DOMWidget, bool]:
        """The figure and the widget that shows it: ipympl's canvas, or an Agg canvas behind an Image."""
        # No layout engine: constrained/tight layout would re-solve on every draw (tens of ms);
        # explorers place their axes once in build_figure.
        figure = Figure(figsize=self.figsize, dpi=self.dpi)
        if ipympl_active():
            import matplotlib.pyplot as plt
            from ipympl import backend_nbagg

            # Under ioff the new manager is not queued for display at the end of the cell; the figure
            # is not registered with pyplot, so re-running a cell does not pile up open figures.
            # ipympl's Toolbar passes its canvas on to traitlets, which warns (ipympl 0.9-0.10);
            # that warning is about ipympl's code, not the learner's, so keep it out of the cell.
            with plt.ioff(), warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message=r"Passing unrecognized arguments to super\(Toolbar\)", category=DeprecationWarning
                )
                manager = backend_nbagg.new_figure_manager_given_figure(id(figure), figure)
            canvas = manager.canvas
            canvas.header_visible = False
            canvas.footer_visible = False
            canvas.toolbar_visible = False
            canvas.resizable = False
            canvas.add_class("bce-canvas")
            send_fast_frames(canvas)
            return figure, canvas, True
        FigureCanvasAgg(figure)
        width = int(round(self.figsize[0] * STATIC_DPI))
        view = widgets.Image(format="png", layout=widgets.Layout(width=f"{width}px"))
        view.add_class("bce-canvas")
        return figure, view, False

    # ----------------------------------------------------------------------------------------------
    # State and updates.

    def _check_names(self, values: Mapping[str, Any]) -> None:
        unknown = [name for name in values if name not in self.controls]
        if unknown:
            names = ", ".join(self.controls)
            first = next(iter(self.controls))
            raise ValueError(error_message(
                f"{type(self).__name__} has no control named {unknown[0]!r}", f"its controls are: {names}.",
                f"explorer.set({first}={self.controls[first].value!r})", lead="Write instead, e.g.",
            ))

    def _check_range(self, name: str, value: Any) -> None:
        control = self.controls[name]
        if isinstance(control, widgets.FloatLogSlider):
            low, high = control.base**control.min, control.base**control.max
        elif hasattr(control, "options"):
            allowed = [option[1] if isinstance(option, tuple) else option for option in control.options]
            if value not in allowed:
                if all(isinstance(v, (int, float)) for v in allowed) and isinstance(value, (int, float)):
                    nearest = min(allowed, key=lambda v: abs(math.log(v / value)) if v > 0 and value > 0 else abs(v - value))
                    listing = f"{format_number(allowed[0])} ... {format_number(allowed[-1])} (round values)"
                    example = format_number(nearest)
                else:
                    listing = ", ".join(repr(v) for v in allowed)
                    example = repr(allowed[0])
                raise ValueError(error_message(
                    f"{name}={value!r} is not one of {type(self).__name__}'s {name} values: {listing}.",
                    fixes=f"explorer.set({name}={example})", lead="Write instead, e.g.",
                ))
            return
        elif hasattr(control, "min") and hasattr(control, "max"):
            low, high = control.min, control.max
        else:
            return
        if not (low <= value <= high):
            raise ValueError(error_message(
                f"{name}={value!r} is outside the range of {type(self).__name__}'s {name} slider, "
                f"[{format_number(low)}, {format_number(high)}].",
                fixes=f"explorer.set({name}={format_number(high)})", lead="Write instead a value in that range, e.g.",
            ))

    def set(self, **values: Any) -> None:
        """Set several controls at once and recompute once: ``explorer.set(weight=2, pos_weight=10)``.

        Returns nothing, so a check cell that ends with ``explorer.set(...)`` does not display the
        explorer a second time. Read the result from ``explorer.readouts``.
        """
        self._check_names(values)
        for name, value in values.items():
            self._check_range(name, to_control(value))
        with self._holding():
            for name, value in values.items():
                self.controls[name].value = to_control(value)
        self.update()

    @contextlib.contextmanager
    def _holding(self) -> Iterator[None]:
        previous, self._hold = self._hold, True
        try:
            yield
        finally:
            self._hold = previous

    def _on_control_change(self, change: dict[str, Any]) -> None:
        if not self._hold:
            self.update()

    def update(self) -> None:
        """Recompute from the controls' current values, move the artists, redraw, refresh readouts."""
        self.values = {name: from_control(control.value) for name, control in self.controls.items()}
        self.readouts = dict(self.recompute(dict(self.values)))
        self.readout_view.value = self._readout_html()
        self.update_count += 1
        self._request_redraw()

    def _request_redraw(self) -> None:
        if self.interactive_canvas:
            if self._displayed:
                self.render()
            # Before it is shown an ipympl canvas is left alone: the browser asks for its first frame.
        elif self._displayed:
            self.figure_view.value = figure_png(self.figure)

    def _browser_view_ready(self) -> bool:
        """False while no browser view of the ipympl canvas has initialised (always so under nbclient).

        ipympl keeps ``syncing_data_url`` True until a view reports in. Frames pushed through the
        canvas before that leave the view 0 x 0 in JupyterLab ("Error setting state ... broken"), so
        until then only the picture saved with the widget state is kept current.
        """
        return not getattr(self.figure.canvas, "syncing_data_url", False)

    def _save_picture_for_widget_state(self) -> None:
        """Store the current frame as the ipympl canvas's ``_data_url`` (a ``data:`` URL).

        That trait is saved with the widget state, and nbviewer or an HTML export shows it when no
        kernel is running. (ipympl itself stores bare base64 there, which an ``<img>`` cannot show.)
        """
        encoded = base64.b64encode(figure_png(self.figure, dpi=self.figure.dpi)).decode("ascii")
        self.figure.canvas._data_url = "data:image/png;base64," + encoded

    # ----------------------------------------------------------------------------------------------
    # Drawing: a full draw renders the static parts (axes, ticks, labels, legend) and keeps them as a
    # background; an update restores that background and draws only the animated artists. Tick
    # labels are most of a full draw's cost, so this is what keeps dragging a slider smooth.

    def animate(self, *artists: Any) -> None:
        """Register artists that ``recompute`` moves; they are redrawn on every update (blitting).

        Everything else in the figure is treated as static background until an axes' limits, the
        figure's size or dpi, ``static_version`` or ``static_state`` change, which triggers a full draw
        (unless the background of that static state was drawn recently and is still kept).
        """
        for artist in artists:
            artist.set_animated(True)
            self._animated.append(artist)
        self._animated.sort(key=lambda artist: artist.get_zorder())

    def _static_key(self) -> tuple:
        limits = tuple((*axes.get_xlim(), *axes.get_ylim()) for axes in self.figure.axes)
        return (limits, self.figure.dpi, tuple(self.figure.bbox.bounds), self.static_version, self.static_state)

    def _on_draw_event(self, event: Any) -> None:
        """After every full draw (ours or the browser's): keep the background, add the animated artists."""
        canvas = self.figure.canvas
        if canvas.is_saving():
            return
        # A new renderer (the browser changed the dpi ratio) draws its first frame uncached.
        TEXT_CACHE.install(canvas.get_renderer())
        if not self._animated:
            return
        self._backgrounds[self._static_key()] = canvas.copy_from_bbox(self.figure.bbox)
        while len(self._backgrounds) > MAX_BACKGROUNDS:
            self._backgrounds.popitem(last=False)
        for artist in self._animated:
            self.figure.draw_artist(artist)

    def render(self) -> None:
        """Render the current frame synchronously: blit when only animated artists changed, else draw.

        This is what an update costs in the kernel (``python -m benchmarks.widgets`` times it). On
        ipympl the canvas then sends the changed pixels to the browser; before a browser view has
        initialised, the frame is only stored for the saved widget state.
        """
        canvas = self.figure.canvas
        if self.interactive_canvas and not self._browser_view_ready():
            self._save_picture_for_widget_state()
            return
        TEXT_CACHE.install(canvas.get_renderer())
        key = self._static_key()
        background = self._backgrounds.get(key) if self._animated else None
        if background is None:
            canvas.draw()
            self.full_draw_count += 1
            return
        self._backgrounds.move_to_end(key)
        canvas.restore_region(background)
        for artist in self._animated:
            self.figure.draw_artist(artist)
        canvas.blit(self.figure.bbox)

    # ----------------------------------------------------------------------------------------------
    # Showing.

    def _readout_html(self) -> str:
        ordered = [k for k in self.readout_labels if k in self.readouts]
        ordered += [k for k in self.readouts if k not in self.readout_labels]
        rows = "".join(
            f"<tr><td style='padding:0 1em 0 0'>{html.escape(self.readout_labels.get(k, k))}</td>"
            f"<td style='text-align:right;font-family:monospace' data-readout='{html.escape(k)}'>"
            f"{html_number(self.readouts[k])}</td></tr>"
            for k in ordered
        )
        notes = "".join(f"<div>{note}</div>" for note in self.readout_notes(self.values, self.readouts))
        return f"<table style='border-collapse:collapse'>{rows}</table>{notes}"

    def print_readouts(self, *names: str) -> None:
        """Print ``name = value`` lines (4 significant digits), for check cells; all readouts by default."""
        self._check_readout_names(names)
        for name in names or self.readouts:
            print(f"{name} = {format_number(self.readouts[name])}")

    def _check_readout_names(self, names: tuple[str, ...]) -> None:
        unknown = [n for n in names if n not in self.readouts]
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no readout named {unknown[0]!r}; its readouts are: "
                f"{', '.join(self.readouts)}."
            )

    def png(self, dpi: float = STATIC_DPI) -> bytes:
        """The current frame as PNG bytes."""
        return figure_png(self.figure, dpi=dpi)

    def snapshot(self, dpi: float = STATIC_DPI):
        """The current frame as an ``IPython.display.Image``: a still that stays in the notebook.

        The live figure above changes whenever a control does; a snapshot after a check cell keeps
        that state visible (also on GitHub, where widgets do not run).
        """
        return png_image(self.figure, dpi=dpi)

    def plotted_arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every array drawn in the figure: line data, image data, scatter offsets (for NaN checks)."""
        for index, axes in enumerate(self.figure.axes):
            for line in axes.lines:
                label = f"axes {index} line {line.get_label()!r}"
                yield label + " x", np.asarray(line.get_xdata(), dtype=float)
                yield label + " y", np.asarray(line.get_ydata(), dtype=float)
            for image in axes.images:
                # Masked pixels are hidden on purpose; what is shown must be finite.
                yield f"axes {index} image", np.ma.filled(np.ma.asarray(image.get_array(), dtype=float), 0.0)
            for collection in axes.collections:
                yield f"axes {index} collection", np.asarray(collection.get_offsets(), dtype=float)

    def __repr__(self) -> str:
        state = ", ".join(
            f"{k}={format_number(v)}" if isinstance(v, float) else f"{k}={v!r}" for k, v in self.values.items()
        )
        return f"{type(self).__name__}({state})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        """The container widget's view, plus a PNG of the current frame for kernel-less viewers."""
        self._displayed = True
        png = self.png()
        encoded = base64.b64encode(png).decode("ascii")
        if not self.interactive_canvas:
            self.figure_view.value = png
        elif not self._browser_view_ready():
            self._save_picture_for_widget_state()
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude, **kwargs))
        bundle["image/png"] = encoded
        bundle["text/plain"] = repr(self)
        return bundle
