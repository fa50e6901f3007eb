"""What ``bceweights`` and PyTorch each make of one operand: the comparison behind lesson 02's explorer.

``bceweights``' verdict comes from :func:`bceweights.explain` (the loss's own checks); PyTorch's from
running ``F.binary_cross_entropy_with_logits`` on a small zero input. Imports: the core and
:mod:`~bceweights.lessons.explore.controls`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bceweights.explain import explain
from bceweights.lessons.explore.controls import one_thread
from bceweights.shapes import LineUp

Shape = tuple[int, ...]

#: PyTorch's messages are cut to this many characters in the diagram (the full text is in the notes).
SHORT_ERROR = 124

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

    ``bceweights``: :func:`bceweights.explain`, which judges the operand with the loss's own checks (so
    the message is the one :func:`bceweights.bce_with_logits` raises). PyTorch:
    ``F.binary_cross_entropy_with_logits`` on a zero input with ``reduction="none"``, passing the
    operand as ``weight`` or ``pos_weight``.
    """
    logits = torch.zeros(input_shape)
    lineup = explain(logits, channel_dim=channel_dim, **{operand_name: operand}).operands[0].line_up
    bceweights_error = lineup.problem
    effective: torch.Tensor | None = None
    if lineup.aligned is not None:
        effective = operand.reshape(lineup.aligned).expand(input_shape).float()
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


def short_pytorch_error(message: str) -> str:
    """PyTorch's broadcasting message in a few words (the full text is in the readout notes)."""
    match = _PYTORCH_SIZE_ERROR.search(message)
    if match:
        return f"size {match[1]} vs {match[2]} at dim {match[3]}"
    return message if len(message) <= SHORT_ERROR else message[: SHORT_ERROR - 3] + "..."


def first_fix(message: str | None) -> str | None:
    if not message:
        return None
    lines = message.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Write instead") and index + 1 < len(lines):
            return lines[index + 1].strip()
    return None
