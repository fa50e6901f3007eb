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

The error texts are the libraries' own: the explorer calls :func:`bceweights.shapes.align` (what
:func:`bceweights.bce_with_logits` calls) and PyTorch's loss on a small input.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from bceweights.errors import WeightShapeError
from bceweights.explain import explain
from bceweights.explore.base import NONE_OPTION, Explorer, format_number, nice_ceiling, one_thread, to_control
from bceweights.shapes import LineUp, align, dim_names, line_up, normalize_dim, shape_str

Shape = tuple[int, ...]

#: The inputs the explorer can line an operand up with: ``(N, C, H, W)``; the second has ``W == C``.
INPUT_SHAPES: dict[str, Shape] = {
    "(2, 3, 8, 10)": (2, 3, 8, 10),
    "(2, 3, 8, 3): W = C": (2, 3, 8, 3),
}
#: One value per channel: the per-channel ``pos_weight`` of question Q8, and per-channel ``weight`` (Q3).
POS_WEIGHT_PER_CHANNEL = (1.0, 30.0, 6.0)
WEIGHT_PER_CHANNEL = (0.5, 2.0, 1.0)
#: One value per sample, e.g. to down-weight a sample with doubtful labels.
WEIGHT_PER_SAMPLE = (1.0, 0.25)
#: Typed shapes are limited to this many dimensions and elements (the explorer builds the tensor).
MAX_DIMS = 6
MAX_ELEMENTS = 100_000
#: Dimensions drawn in the diagram: the input's 4 on the right, room for 2 extra operand dimensions.
SLOTS = MAX_DIMS
CUSTOM = "custom"
_WRAP = 62


@dataclass(frozen=True)
class Case:
    """A preset operand: its argument name, symbolic shape, ``channel_dim`` and how its values are made."""

    label: str
    operand: str
    expression: str
    channel_dim: int | None
    values: str


#: The cases of lesson 02, keyed by the name ``explorer.set(case=...)`` takes.
CASES: dict[str, Case] = {
    "mask": Case("Q1: mask as loaded, (N, H, W)", "weight", "N, H, W", None, "mask"),
    "mask_unsqueezed": Case("Q1: mask.unsqueeze(1), (N, 1, H, W)", "weight", "N, 1, H, W", None, "mask"),
    "mask_expanded": Case("Q1: bw.expand_mask(mask, pred), (N, C, H, W)", "weight", "N, C, H, W", None, "expanded_mask"),
    "channel_weights": Case("Q3: one weight per channel, (C, 1, 1)", "weight", "C, 1, 1", None, "channel"),
    "channel_weights_times_mask": Case(
        "Q3: per-channel weight × shared mask, (N, C, H, W)", "weight", "N, C, H, W", None, "channel_times_mask"
    ),
    "channel_masks": Case("Q3: a mask per channel, stacked, (N, C, H, W)", "weight", "N, C, H, W", None, "channel_masks"),
    "sample_weights": Case("one weight per sample, (N, 1, 1, 1)", "weight", "N, 1, 1, 1", None, "sample"),
    "pos_weight_vector": Case("Q8: pos_weight=[1, 30, 6], (C,)", "pos_weight", "C", None, "channel"),
    "pos_weight_repeat": Case("Q8: pos_weight.repeat(N, 1), (N, C)", "pos_weight", "N, C", None, "channel"),
    "pos_weight_view": Case("Q8: pos_weight.view(3, 1, 1), (C, 1, 1)", "pos_weight", "C, 1, 1", None, "channel"),
    "pos_weight_channel_dim": Case("Q8: pos_weight (C,) with channel_dim=1", "pos_weight", "C", 1, "channel"),
}


# --------------------------------------------------------------------------------------------------
# Plain functions: parsing a typed shape, building example operands, reading what each library does.


def parse_shape(text: str, input_shape: Sequence[int]) -> Shape:
    """Read a typed shape: integers and the letters of the input's dimensions, e.g. ``"N, 1, H, W"``.

    Brackets, commas and spaces are optional: ``"(3,)"``, ``"3"``, ``"[2, 3]"``, ``"N C"`` all work; an
    empty text or ``"()"`` is a 0-d operand (a single number). Letters resolve against
    ``input_shape`` = ``(N, C, H, W)``.

    Raises:
        ValueError: with a message that says what was typed and what is expected.
    """
    names = dim_names(len(input_shape))
    sizes = dict(zip(names, input_shape))
    body = text.strip()
    if body[:1] in "([" and body[-1:] in ")]":
        body = body[1:-1]
    tokens = [token for token in re.split(r"[\s,]+", body) if token]
    shape = []
    for token in tokens:
        if token.upper() in sizes:
            shape.append(int(sizes[token.upper()]))
        elif token.isdigit() and int(token) >= 1:
            shape.append(int(token))
        else:
            raise ValueError(
                f"cannot read {token!r} in the shape {text!r}; expected sizes >= 1 or the letters "
                f"{', '.join(names)}, separated by commas, e.g. \"N, 1, H, W\" or \"3, 1, 1\"."
            )
    if len(shape) > MAX_DIMS:
        raise ValueError(f"the shape {text!r} has {len(shape)} dimensions; this explorer draws at most {MAX_DIMS}.")
    if math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(
            f"the shape {text!r} has {math.prod(shape)} elements; this explorer builds at most {MAX_ELEMENTS}."
        )
    return tuple(shape)


def example_masks(samples: int, height: int, width: int, count: int = 1) -> torch.Tensor:
    """Deterministic 0/1 masks, ``(samples, count, height, width)``: a disk per sample, shifted per mask.

    Mask ``k`` of sample ``n`` is a disk of radius ``0.32 * min(height, width) + 0.6`` pixels centred at
    ``((0.35 + 0.3 n) * height, (0.3 + 0.2 n + 0.2 k) * width)`` (wrapping around in ``width``), so every
    sample and every mask differs.
    """
    rows = torch.arange(height, dtype=torch.float32)[:, None] + 0.5
    cols = torch.arange(width, dtype=torch.float32)[None, :] + 0.5
    radius = 0.32 * min(height, width) + 0.6
    out = torch.zeros(samples, count, height, width)
    for n in range(samples):
        for k in range(count):
            centre_row = (0.35 + 0.3 * (n % 2)) * height
            centre_col = ((0.3 + 0.2 * n + 0.2 * k) % 1.0) * width
            out[n, k] = ((rows - centre_row) ** 2 + (cols - centre_col) ** 2 <= radius**2).float()
    return out


def _channel_vector(operand: str, channels: int) -> torch.Tensor:
    values = POS_WEIGHT_PER_CHANNEL if operand == "pos_weight" else WEIGHT_PER_CHANNEL
    if channels == len(values):
        return torch.tensor(values)
    return torch.linspace(1.0, float(channels), channels)


def example_operand(case: Case | None, operand: str, shape: Shape, input_shape: Shape) -> torch.Tensor:
    """The tensor the explorer lines up: the case's values when ``shape`` is the case's, else ``1, 2, ...``.

    Args:
        case: the preset whose values to use, or ``None`` for a typed shape (values ``1, 2, ...,
            numel`` in memory order, so the images show the memory layout).
        operand: ``"weight"`` or ``"pos_weight"`` (the per-channel values differ).
        shape: the operand's shape, already resolved against ``input_shape``.
        input_shape: ``(N, C, H, W)``.
    """
    n, c, h, w = input_shape
    if case is None:
        return torch.arange(1, math.prod(shape) + 1, dtype=torch.float32).reshape(shape)
    if case.values == "mask":
        return example_masks(n, h, w)[:, 0].reshape(shape)
    if case.values == "expanded_mask":
        return example_masks(n, h, w)[:, 0].unsqueeze(1).expand(shape)
    if case.values == "channel":
        vector = _channel_vector(operand, c)
        return vector.repeat(shape[0], 1) if len(shape) == 2 else vector.reshape(shape)
    if case.values == "channel_times_mask":
        return _channel_vector(operand, c).view(c, 1, 1) * example_masks(n, h, w)
    if case.values == "channel_masks":
        return example_masks(n, h, w, count=c)
    if case.values == "sample":
        values = WEIGHT_PER_SAMPLE if n == len(WEIGHT_PER_SAMPLE) else tuple(range(1, n + 1))
        return torch.tensor(values, dtype=torch.float32).view(shape)
    raise ValueError(f"unknown case values {case.values!r}")  # pragma: no cover


@dataclass(frozen=True)
class Reading:
    """What both libraries make of one operand against one input.

    Attributes:
        line_up: ``bceweights``' reading (:func:`bceweights.shapes.line_up`).
        bceweights_error: the ``WeightShapeError`` message, or ``None`` when accepted.
        effective: the operand's value at every input element as ``bceweights`` applies it, or, when
            ``bceweights`` refuses but PyTorch runs, as PyTorch applies it; ``None`` if neither does.
            Shape ``(N, C, H, W)``.
        pytorch_error: PyTorch's ``RuntimeError`` message, or ``None`` when it runs.
        pytorch_output_shape: the shape of PyTorch's ``reduction="none"`` loss when it runs (larger than the
            input when the operand has extra dimensions).
        pytorch_aligned: the operand's shape as PyTorch pairs it with the input (leading 1s added).
    """

    line_up: LineUp
    bceweights_error: str | None
    effective: torch.Tensor | None
    pytorch_error: str | None
    pytorch_output_shape: Shape | None
    pytorch_aligned: Shape

    @property
    def accepted(self) -> bool:
        return self.bceweights_error is None

    @property
    def pytorch_runs(self) -> bool:
        return self.pytorch_error is None

    @property
    def silent_trap(self) -> bool:
        """PyTorch runs without a word, but pairs the operand with other dimensions than ``bceweights`` would."""
        return self.pytorch_runs and not self.accepted


def read_operand(
    operand_name: str, operand: torch.Tensor, input_shape: Shape, channel_dim: int | None = None
) -> Reading:
    """Run both libraries' shape handling on ``operand`` against an input of ``input_shape``.

    ``bceweights``: :func:`bceweights.shapes.align`, exactly what :func:`bceweights.bce_with_logits` calls
    (so the message is the one it raises). PyTorch: ``F.binary_cross_entropy_with_logits`` on a zero
    input with ``reduction="none"``, passing the operand as ``weight`` or ``pos_weight``.
    """
    lineup = line_up(operand_name, operand.shape, input_shape, channel_dim)
    try:
        aligned = align(operand_name, operand, input_shape, channel_dim)
        bceweights_error = None
        effective: torch.Tensor | None = aligned.expand(input_shape).float()
    except WeightShapeError as error:
        bceweights_error = str(error)
        effective = None
    logits = torch.zeros(input_shape)
    pytorch_error = None
    pytorch_output_shape = None
    try:
        with one_thread():
            out = F.binary_cross_entropy_with_logits(logits, logits, reduction="none", **{operand_name: operand})
        pytorch_output_shape = tuple(out.shape)
    except RuntimeError as error:
        pytorch_error = str(error).strip()
    k, nd = operand.ndim, len(input_shape)
    pytorch_aligned = (1,) * (nd - k) + tuple(operand.shape) if k <= nd else tuple(operand.shape)
    if effective is None and pytorch_output_shape == tuple(input_shape):
        effective = torch.broadcast_to(operand, input_shape).float()
    return Reading(lineup, bceweights_error, effective, pytorch_error, pytorch_output_shape, pytorch_aligned)


_PYTORCH_SIZE_ERROR = re.compile(
    r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton dimension (\d+)"
)


def _short_pytorch_error(message: str) -> str:
    """PyTorch's broadcasting message in a few words (the full text is in the readout notes)."""
    match = _PYTORCH_SIZE_ERROR.search(message)
    if match:
        return f"size {match[1]} vs {match[2]} at dim {match[3]}"
    return message if len(message) <= 2 * _WRAP else message[: 2 * _WRAP - 3] + "..."


def _first_fix(message: str | None) -> str | None:
    if not message:
        return None
    lines = message.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Write instead") and index + 1 < len(lines):
            return lines[index + 1].strip()
    return None


# --------------------------------------------------------------------------------------------------
# The exercise of lesson 02.


EXERCISE_QUESTION = (
    "Predictions have shape (B, 3, H, W). Write pos_weight so that channel 0 gets 1, channel 1 gets 30 and "
    "channel 2 gets 6, for any B, H and W, passed to PyTorch's own F.binary_cross_entropy_with_logits "
    "(no channel_dim to help)."
)


def check_per_channel_pos_weight(pos_weight: Any) -> bool:
    """Exercise check: is ``pos_weight`` "1, 30, 6 for channels 0, 1, 2" on ``(B, 3, H, W)`` predictions?

    The answer is tried on two inputs, ``(4, 3, 256, 256)`` and ``(4, 3, 8, 3)`` (where ``W == C``, so
    a plain ``(3,)`` vector would silently weight the columns), both through PyTorch's own
    ``F.binary_cross_entropy_with_logits`` (no ``channel_dim`` to help) and through ``bceweights``.
    Prints what is right or wrong and returns True only when every pixel of channel ``c`` gets
    ``[1, 30, 6][c]`` in both libraries.
    """
    expected = torch.tensor(POS_WEIGHT_PER_CHANNEL)
    if pos_weight is None:
        print("No answer yet: replace None with a tensor, then run the cell again.")
        return False
    if not isinstance(pos_weight, torch.Tensor):
        print(f"Not yet: pos_weight is a {type(pos_weight).__name__}; PyTorch needs a tensor, e.g. torch.tensor([...]).")
        return False
    if not pos_weight.is_floating_point():
        print(f"Not yet: pos_weight has dtype {pos_weight.dtype}; write the values as floats (1.0, 30.0, 6.0).")
        return False
    for input_shape in ((4, 3, 256, 256), (4, 3, 8, 3)):
        reading = read_operand("pos_weight", pos_weight, input_shape)
        if not reading.pytorch_runs:
            print(f"Not yet: on predictions of shape {input_shape} PyTorch raises:\n    {reading.pytorch_error}")
            return False
        if reading.pytorch_output_shape != input_shape:
            print(f"Not yet: PyTorch runs, but the loss grows to shape {reading.pytorch_output_shape}.")
            return False
        effective = torch.broadcast_to(pos_weight, input_shape).float()
        per_channel = expected.view(1, 3, 1, 1).expand(input_shape)
        if not torch.equal(effective, per_channel):
            columns = "the columns (W)" if input_shape[3] == 3 else "the wrong dimension"
            print(
                f"Not yet: on predictions of shape {input_shape} the values land on {columns}, "
                f"not on the channels. Channel 0 gets {sorted(set(effective[:, 0].flatten().tolist()))}."
            )
            return False
        if not reading.accepted:
            print(f"Not yet: PyTorch takes it, but bceweights refuses:\n{reading.bceweights_error}")
            return False
    print(
        f"Correct: shape {shape_str(pos_weight.shape)} lines up with the channel dimension on any (B, 3, H, W), "
        "so every pixel of channel c gets [1, 30, 6][c] — even when W happens to be 3."
    )
    return True


# --------------------------------------------------------------------------------------------------
# The explorer.


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
            lines += textwrap.wrap(f"{who}: RuntimeError, " + _short_pytorch_error(reading.pytorch_error), _WRAP)
        elif reading.pytorch_output_shape != reading.line_up.input_shape:
            lines.append(f"{who}: runs, but the loss grows to {shape_str(reading.pytorch_output_shape or ())}")
        elif reading.silent_trap:
            lines.append(f"{who}: runs SILENTLY: {pairs}")
        elif reading.line_up.aligned != reading.pytorch_aligned:
            lines.append(f"{who}: runs, but pairs {pairs}")
        else:
            lines.append(f"{who}: runs, same pairing")
        fix = _first_fix(reading.bceweights_error)
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
        self.static_version += 1

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
