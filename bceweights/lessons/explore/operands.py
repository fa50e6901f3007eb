"""The operands of lesson 02's cases: a preset per question, and the example tensors the explorer lines up.

Shapes are resolved against an input ``(N, C, H, W)``; values are deterministic (disks for masks,
the lesson's per-channel values), so the explorer's images and the tests agree. Imports: torch only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

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
