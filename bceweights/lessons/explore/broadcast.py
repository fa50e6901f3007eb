"""``BroadcastExplorer``: how a ``weight`` or ``pos_weight`` of some shape lines up with ``(N, C, H, W)``.

PyTorch broadcasts an operand against the input by aligning *trailing* dimensions, so a tensor of shape
``(3,)`` meant as "one value per channel" pairs with ``W``, not with ``C``. The explorer takes an operand
shape (one of the cases of lesson 02, or one typed in with numbers and the letters ``N, C, H, W``) and shows

* a diagram: the input's dimensions on top, the operand's dimensions below, placed where broadcasting puts
  them (green: the operand varies along that dimension; grey: size 1, shared; red: a clash);
* the effective value of the operand at every pixel of every sample and channel, as images (a ``2 x 3``
  grid for ``N = 2`` samples and ``C = 3`` channels);
* what each library does with it: the ``WeightShapeError`` that ``bceweights`` raises (with its fix), and
  whether ``F.binary_cross_entropy_with_logits`` raises, or runs with a different pairing (the silent trap
  when ``W == C``).

The error texts are the libraries' own (:mod:`~bceweights.lessons.explore.comparison`: ``bw.explain``,
which runs the loss's own checks, and PyTorch's loss on a small input). This module is the view only:
the presets are in :mod:`~bceweights.lessons.explore.operands`, typed shapes are read by
:mod:`~bceweights.lessons.explore.shape_text`, and lesson 02's exercise is
:func:`bceweights.lessons.exercises.check_lesson02`.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import ipywidgets as widgets
import matplotlib
import numpy as np
import torch
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from bceweights.explain import explain
from bceweights.lessons.explore.base import Explorer
from bceweights.lessons.explore.comparison import Reading, first_fix, read_operand, short_pytorch_error
from bceweights.lessons.explore.controls import NONE_OPTION, nice_ceiling, to_control
from bceweights.lessons.explore.display import format_number
from bceweights.lessons.explore.operands import CASES, INPUT_SHAPES, Shape, example_operand
from bceweights.lessons.explore.shape_text import MAX_DIMS, parse_shape
from bceweights.shapes import dim_names, normalize_dim, shape_str

#: Dimensions drawn in the diagram: the input's 4 on the right, room for 2 extra operand dimensions.
SLOTS = MAX_DIMS
CUSTOM = "custom"
_WRAP = 62


class BroadcastExplorer(Explorer):
    """An operand's shape against ``(N, C, H, W)``: the line-up diagram, the per-pixel map, each library's verdict.

    Controls: ``case`` (a preset of lesson 02, or ``"custom"``), ``shape`` (text: sizes and the letters
    ``N, C, H, W``), ``operand`` (``"weight"`` or ``"pos_weight"``), ``channel_dim`` (``None`` or 1),
    ``input`` (the prediction shape, ``(2, 3, 8, 10)`` or ``(2, 3, 8, 3)`` where ``W == C``).

    Choosing a case fills in ``shape``, ``operand`` and ``channel_dim``; editing any of those picks the
    case that matches, or ``"custom"``.

    Readouts: ``bceweights_accepts``, ``pytorch_runs``, ``silent_trap`` (PyTorch runs, ``bceweights``
    refuses), ``operand_elements``, ``elements_if_materialised`` (the input's size), and, whenever a map is
    shown, ``mean_c0``, ``mean_c1``, ``mean_c2``: the mean effective value over each channel.
    Attributes ``reading`` (:class:`Reading`), ``operand_tensor`` and ``shape_error`` (for a shape
    that could not be read) hold the rest.

    Example::

        explorer = BroadcastExplorer(case="pos_weight_vector")
        explorer.set(input=(2, 3, 8, 3))
        explorer.readouts["silent_trap"]     # True: PyTorch runs, pairing the 3 values with W
    """

    title = "Broadcasting an operand against predictions (N, C, H, W)"
    figsize = (10.0, 3.4)
    readout_labels = {
        "bceweights_accepts": "bceweights accepts it",
        "pytorch_runs": "PyTorch runs",
        "silent_trap": "silent trap (PyTorch runs, bceweights refuses)",
        "operand_elements": "operand elements in memory",
        "elements_if_materialised": "elements if materialised at the input's size",
        "mean_c0": "mean value, channel 0",
        "mean_c1": "mean value, channel 1",
        "mean_c2": "mean value, channel 2",
    }

    def __init__(self, **initial: Any) -> None:
        # Controls given explicitly win over the case's preset on the first update.
        self._explicit = set(initial) & {"shape", "operand", "channel_dim"}
        super().__init__(**initial)

    def build_controls(self) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "initial"}
        case_options = [(case.label, key) for key, case in CASES.items()] + [("your own shape (type it)", CUSTOM)]
        first = CASES["mask"]
        return {
            "case": widgets.Dropdown(
                options=case_options, value="mask", description="case", style=style,
                layout=widgets.Layout(width="26em"),
            ),
            "shape": widgets.Text(
                value=first.expression, description="operand shape", continuous_update=False, style=style,
                layout=widgets.Layout(width="17em"),
            ),
            "operand": widgets.ToggleButtons(
                options=["weight", "pos_weight"], value=first.operand, description="as",
                style={"button_width": "7.5em", "description_width": "initial"},
            ),
            "channel_dim": widgets.Dropdown(
                options=[("None", NONE_OPTION), ("1", 1)], value=to_control(first.channel_dim), description="channel_dim",
                style=style, layout=widgets.Layout(width="14em"),
            ),
            "input": widgets.Dropdown(
                options=list(INPUT_SHAPES.items()), value=INPUT_SHAPES["(2, 3, 8, 10)"],
                description="predictions", style=style, layout=widgets.Layout(width="17em"),
            ),
        }

    def build_figure(self, figure: Figure) -> None:
        # Left: the line-up diagram; right: a 2 x 3 grid of maps (samples x channels) and a colour bar.
        d = self._diagram = figure.add_axes((0.0, 0.0, 0.42, 1.0))
        d.set_xlim(-0.1, SLOTS + 0.1)
        d.set_ylim(-1.25, 3.3)
        d.set_axis_off()
        self._input_caption = d.text(0.0, 3.1, "", fontsize=9, va="center")
        self._operand_caption = d.text(0.0, 0.3, "", fontsize=9, va="center")
        self._input_boxes, self._input_texts = [], []
        self._operand_boxes, self._operand_texts, self._links = [], [], []
        for slot in range(SLOTS):
            box = Rectangle((slot + 0.08, 2.05), 0.84, 0.7, facecolor="0.92", edgecolor="0.3", linewidth=1.0)
            d.add_patch(box)
            self._input_boxes.append(box)
            self._input_texts.append(d.text(slot + 0.5, 2.4, "", ha="center", va="center", fontsize=9))
            box = Rectangle((slot + 0.08, 0.55), 0.84, 0.7, facecolor="white", edgecolor="0.3", linewidth=1.0)
            d.add_patch(box)
            self._operand_boxes.append(box)
            self._operand_texts.append(d.text(slot + 0.5, 0.9, "", ha="center", va="center", fontsize=9))
            (link,) = d.plot([slot + 0.5, slot + 0.5], [1.27, 2.03], linewidth=2.0, color="0.6")
            self._links.append(link)
        self._verdict = d.text(0.0, 0.0, "", fontsize=8, va="top", family="monospace", linespacing=1.35)

        # Right: one image holding a 2 x 3 mosaic of maps (samples x channels), one pixel of gap between
        # tiles (masked), and a colour bar whose three labels move with the scale.
        self._maps_axes = figure.add_axes((0.455, 0.03, 0.47, 0.8))
        self._maps_axes.set_xticks([])
        self._maps_axes.set_yticks([])
        for spine in self._maps_axes.spines.values():
            spine.set_visible(False)
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
        self._norm = Normalize(vmin=0.0, vmax=1.0)
        self._mosaic = self._maps_axes.imshow(
            np.ma.masked_all((17, 32)), cmap=cmap, norm=self._norm, interpolation="nearest", aspect="equal"
        )
        self._column_titles = [
            self._maps_axes.text(0, 0, f"c = {col}", ha="center", va="bottom", fontsize=9) for col in range(3)
        ]
        self._row_labels = [
            self._maps_axes.text(0, 0, f"n = {row}", ha="right", va="center", fontsize=9, rotation=90)
            for row in range(2)
        ]
        self._blank = self._maps_axes.text(
            0.5, 0.5, "", transform=self._maps_axes.transAxes, ha="center", va="center", fontsize=10,
            color="tab:red", bbox={"facecolor": "white", "edgecolor": "tab:red", "alpha": 0.95}, zorder=5,
        )
        caption_axes = figure.add_axes((0.455, 0.88, 0.47, 0.1))
        caption_axes.set_axis_off()
        self._map_caption = caption_axes.text(0.5, 0.5, "", ha="center", va="center", fontsize=9)
        bar = figure.add_axes((0.945, 0.1, 0.014, 0.66))
        bar.imshow(np.linspace(0.0, 1.0, 256)[:, None], cmap=cmap, aspect="auto", origin="lower", extent=(0, 1, 0, 1))
        bar.set_xticks([])
        bar.set_yticks([])
        bar.text(1.4, 0.0, "0", transform=bar.transAxes, ha="left", va="center", fontsize=8)
        self._bar_top = bar.text(1.4, 1.0, "", transform=bar.transAxes, ha="left", va="center", fontsize=8)
        self.animate(
            self._operand_caption, self._verdict, *self._operand_boxes, *self._operand_texts, *self._links,
            self._mosaic, self._blank, self._map_caption, self._bar_top,
        )
        self._shown_input: Shape | None = None
        self._previous: dict[str, Any] = {}
        self.reading: Reading | None = None
        self.operand_tensor: torch.Tensor | None = None
        self.shape_error: str | None = None

    # ---- keeping ``case`` and the controls it fills in consistent --------------------------------

    def _sync_case(self, values: dict[str, Any]) -> None:
        """A newly chosen case fills in shape/operand/channel_dim; an edit of those re-selects the case."""
        previous = self._previous
        owned = ("shape", "operand", "channel_dim")
        new: dict[str, Any] = {}
        if not previous and self._explicit:
            new = {"case": self._matching_case(values)}
        elif values["case"] != previous.get("case") and values["case"] != CUSTOM:
            case = CASES[values["case"]]
            new = {"shape": case.expression, "operand": case.operand, "channel_dim": case.channel_dim}
        elif any(values[name] != previous.get(name) for name in owned):
            new = {"case": self._matching_case(values)}
        new = {name: value for name, value in new.items() if values[name] != value}
        if new:
            with self._holding():
                for name, value in new.items():
                    self.controls[name].value = to_control(value)
            values.update(new)
            self.values.update(new)
        self._previous = dict(values)

    def _matching_case(self, values: dict[str, Any]) -> str:
        try:
            shape = parse_shape(values["shape"], values["input"])
        except ValueError:
            return CUSTOM
        current = values["case"]
        candidates = [current] if current in CASES else []
        candidates += [key for key in CASES if key != current]
        for key in candidates:
            case = CASES[key]
            if (case.operand, case.channel_dim) == (values["operand"], values["channel_dim"]) and parse_shape(
                case.expression, values["input"]
            ) == shape:
                return key
        return CUSTOM

    # ---- drawing ----------------------------------------------------------------------------------

    def _draw_input_row(self, input_shape: Shape) -> None:
        nd = len(input_shape)
        names = dim_names(nd)
        first = SLOTS - nd
        for slot in range(SLOTS):
            visible = slot >= first
            self._input_boxes[slot].set_visible(visible)
            self._input_texts[slot].set_text(f"{names[slot - first]}={input_shape[slot - first]}" if visible else "")
        self._input_caption.set_text(f"input {shape_str(input_shape)} = ({', '.join(names)})")

    def _draw_operand_row(self, name: str, shape: Shape | None, reading: Reading | None, input_shape: Shape) -> None:
        nd = len(input_shape)
        for slot in range(SLOTS):
            self._operand_boxes[slot].set_visible(False)
            self._operand_texts[slot].set_text("")
            self._links[slot].set_visible(False)
        if shape is None or reading is None:
            self._operand_caption.set_text(f"{name}: shape not readable")
            return
        if len(shape) == 0:
            self._operand_caption.set_text(f"{name} (): a single number, shared by every element")
            return
        lineup = reading.line_up
        if lineup.via_channel_dim:
            paired = [normalize_dim(self.values["channel_dim"], nd)]
            self._operand_caption.set_text(f"{name} {shape_str(shape)}: on C by channel_dim")
        else:
            paired = [nd - len(shape) + index for index in range(len(shape))]
            self._operand_caption.set_text(f"{name} {shape_str(shape)}: trailing dims aligned")
        for size, input_index in zip(shape, paired):
            slot = SLOTS - nd + input_index
            target_size = input_shape[input_index] if input_index >= 0 else None
            if target_size is None or (size != 1 and size != target_size):
                color = "tab:red"
            elif size == 1:
                color = "0.6"
            elif reading.silent_trap:
                color = "tab:orange"
            else:
                color = "tab:green"
            box = self._operand_boxes[slot]
            box.set_visible(True)
            box.set_facecolor("white" if size == 1 else color)
            box.set_alpha(1.0 if size == 1 else 0.55)
            self._operand_texts[slot].set_text(str(size))
            if target_size is not None:
                link = self._links[slot]
                link.set_visible(True)
                link.set_color(color)
                link.set_linestyle(":" if size == 1 else "-")

    def _verdict_lines(self, name: str, reading: Reading | None) -> list[str]:
        if reading is None:
            return textwrap.wrap(self.shape_error or "", _WRAP)
        lines = []
        if reading.accepted:
            varies = ", ".join(reading.line_up.varies_along()) or "nothing (one value)"
            lines.append(f"bceweights: accepts; varies along {varies}")
        else:
            lines.append("bceweights: refuses (WeightShapeError)")
        # PyTorch has no channel_dim: it always uses trailing alignment.
        who = "PyTorch (no channel_dim)" if reading.line_up.via_channel_dim else "PyTorch"
        names = dim_names(len(reading.line_up.input_shape))
        pairs = ", ".join(f"{a} with {n}" for n, a in zip(names, reading.pytorch_aligned) if a != 1)
        if reading.pytorch_error:
            lines += textwrap.wrap(f"{who}: RuntimeError, " + short_pytorch_error(reading.pytorch_error), _WRAP)
        elif reading.pytorch_output_shape != reading.line_up.input_shape:
            lines.append(f"{who}: runs, but the loss grows to {shape_str(reading.pytorch_output_shape or ())}")
        elif reading.silent_trap:
            lines.append(f"{who}: runs SILENTLY: {pairs}")
        elif reading.line_up.aligned != reading.pytorch_aligned:
            lines.append(f"{who}: runs, but pairs {pairs}")
        else:
            lines.append(f"{who}: runs, same pairing")
        fix = first_fix(reading.bceweights_error)
        if fix:
            lines += textwrap.wrap("fix: " + fix.split("   #")[0], _WRAP, subsequent_indent="  ")
        return lines

    def _place_maps(self, input_shape: Shape) -> None:
        """Size the mosaic for ``(N, C, H, W)`` and move the tile titles; a static change (full redraw)."""
        n, c, h, w = input_shape
        rows, cols = n * (h + 1) - 1, c * (w + 1) - 1
        self._mosaic.set_data(np.ma.masked_all((rows, cols)))
        self._mosaic.set_extent((-0.5, cols - 0.5, rows - 0.5, -0.5))
        self._maps_axes.set_xlim(-0.5, cols - 0.5)
        self._maps_axes.set_ylim(rows - 0.5, -0.5)
        for col, title in enumerate(self._column_titles):
            title.set_position((col * (w + 1) + (w - 1) / 2, -0.9))
        for row, label in enumerate(self._row_labels):
            label.set_position((-0.9, row * (h + 1) + (h - 1) / 2))
        self._draw_input_row(input_shape)
        self._shown_input = input_shape
        self.static_state = input_shape

    def _draw_maps(self, name: str, reading: Reading | None, input_shape: Shape) -> dict[str, float]:
        n, c, h, w = input_shape
        mosaic = np.ma.masked_all((n * (h + 1) - 1, c * (w + 1) - 1))
        mosaic.data[...] = 0.0
        effective = reading.effective if reading is not None else None
        readouts: dict[str, float] = {}
        if effective is None:
            for row in range(n):
                for col in range(c):
                    mosaic[row * (h + 1):row * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = 0.0
            self._mosaic.set_alpha(0.25)
            top = 1.0
            self._blank.set_text("no map: neither library\ncan line it up")
            self._blank.set_visible(True)
            self._map_caption.set_text(f"{name} per pixel")
            self._map_caption.set_color("black")
        else:
            values = effective.numpy()
            for row in range(n):
                for col in range(c):
                    mosaic[row * (h + 1):row * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = values[row, col]
            self._mosaic.set_alpha(1.0)
            top = nice_ceiling(float(values.max()), floor=1.0, mantissas=(1.0, 2.0, 3.0, 5.0))
            for col in range(c):
                readouts[f"mean_c{col}"] = float(values[:, col].mean())
            self._blank.set_visible(False)
            who = "as bceweights applies it" if reading.accepted else "as PyTorch would (bceweights refuses)"
            self._map_caption.set_text(f"{name} per pixel, {who}")
            self._map_caption.set_color("black" if reading.accepted else "tab:orange")
        self._norm.vmax = top
        self._mosaic.set_data(mosaic)
        self._bar_top.set_text(format_number(top))
        return readouts

    def recompute(self, values: dict[str, Any]) -> dict[str, float]:
        self._sync_case(values)
        name, input_shape = values["operand"], tuple(values["input"])
        if self._shown_input != input_shape:
            self._place_maps(input_shape)
        try:
            shape: Shape | None = parse_shape(values["shape"], input_shape)
            self.shape_error = None
        except ValueError as error:
            shape, self.shape_error = None, str(error)
        reading = None
        self.operand_tensor = None
        if shape is not None:
            case = CASES.get(values["case"])
            tensor = example_operand(case, name, shape, input_shape)
            reading = read_operand(name, tensor, input_shape, values["channel_dim"])
            self.operand_tensor = tensor
        self.reading = reading
        self._draw_operand_row(name, shape, reading, input_shape)
        self._verdict.set_text("\n".join(self._verdict_lines(name, reading)))
        readouts: dict[str, float] = {}
        if reading is not None and self.operand_tensor is not None:
            readouts = {
                "bceweights_accepts": reading.accepted,
                "pytorch_runs": reading.pytorch_runs,
                "silent_trap": reading.silent_trap,
                "operand_elements": int(self.operand_tensor.untyped_storage().nbytes() // 4),
                "elements_if_materialised": math.prod(input_shape),
            }
        readouts.update(self._draw_maps(name, reading, input_shape))
        return readouts

    def explanation(self):
        """``bw.explain`` for the current operand (memory, stride, line-up), or ``None`` if unreadable."""
        if self.operand_tensor is None:
            return None
        logits = torch.zeros(tuple(self.values["input"]))
        return explain(logits, **{self.values["operand"]: self.operand_tensor}, channel_dim=self.values["channel_dim"])

    def readout_notes(self, values: dict[str, Any], readouts: dict[str, float]) -> list[str]:
        import html

        if self.reading is None:
            return [f"<b>cannot read the shape</b>: {html.escape(self.shape_error or '')}"]
        notes = []
        if self.reading.bceweights_error:
            notes.append(
                "<b>bceweights raises</b> <code>WeightShapeError</code>:"
                f"<pre style='margin:0.2em 0'>{html.escape(self.reading.bceweights_error)}</pre>"
            )
        if self.reading.pytorch_error:
            notes.append(f"<b>PyTorch raises</b> <code>RuntimeError</code>: {html.escape(self.reading.pytorch_error)}")
        elif self.reading.silent_trap:
            notes.append("<b>PyTorch runs without a word</b>: the images show what it would weight.")
        return notes

    @classmethod
    def example(cls) -> BroadcastExplorer:
        return cls()

    def benchmark_changes(self) -> list[dict[str, Any]]:
        """Every case on both inputs, channel_dim toggled, typed shapes (readable or not)."""
        changes: list[dict[str, Any]] = []
        for input_shape in INPUT_SHAPES.values():
            changes.append({"input": input_shape})
            changes.extend({"case": key} for key in CASES)
        changes += [
            {"shape": "3"}, {"channel_dim": 1}, {"channel_dim": None}, {"shape": "2, 8, 3"},
            {"operand": "weight"}, {"shape": "1, 2, 3, 8, 3"}, {"shape": "not a shape"}, {"case": "mask"},
        ]
        return changes
