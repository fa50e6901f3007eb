"""Lesson 02's exercise: a per-channel ``pos_weight`` that PyTorch itself lines up with the channels.

The answer is tried through both libraries with
:func:`bceweights.lessons.explore.broadcast.read_operand`.
"""

from __future__ import annotations

from typing import Any

import torch

from bceweights.lessons.exercises.answers import no_answer_yet
from bceweights.lessons.explore.comparison import read_operand
from bceweights.lessons.explore.operands import POS_WEIGHT_PER_CHANNEL
from bceweights.shapes import shape_str


LESSON02_QUESTION = (
    "Predictions have shape (B, 3, H, W). Write pos_weight so that channel 0 gets 1, channel 1 gets 30 and "
    "channel 2 gets 6, for any B, H and W, passed to PyTorch's own F.binary_cross_entropy_with_logits "
    "(no channel_dim to help)."
)


def check_lesson02(pos_weight: Any) -> bool:
    """Exercise check: is ``pos_weight`` "1, 30, 6 for channels 0, 1, 2" on ``(B, 3, H, W)`` predictions?

    The answer is tried on two inputs, ``(4, 3, 256, 256)`` and ``(4, 3, 8, 3)`` (where ``W == C``, so
    a plain ``(3,)`` vector would silently weight the columns), both through PyTorch's own
    ``F.binary_cross_entropy_with_logits`` (no ``channel_dim`` to help) and through ``bceweights``.
    Prints what is right or wrong and returns True only when every pixel of channel ``c`` gets
    ``[1, 30, 6][c]`` in both libraries.
    """
    expected = torch.tensor(POS_WEIGHT_PER_CHANNEL)
    if pos_weight is None:
        no_answer_yet("a tensor")
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
