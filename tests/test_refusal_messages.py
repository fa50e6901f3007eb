"""Every refusal names its fix: a "Write instead" block after what was given and what was expected.

The shape rules are checked exhaustively over small shapes (every refused operand's message has the
block, and every ``name=name.view(...)`` it proposes is accepted by the same rules); the other
refusals of the loss, its modules and helpers are collected from one bad call each.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch

import bceweights as bw
from bceweights.shapes import line_up

INPUT_SHAPES = [(), (3,), (2, 3), (4, 3), (2, 3, 4), (2, 3, 4, 4), (2, 3, 3, 3), (4, 3, 2, 2, 2)]
VIEW_FIX = re.compile(r"^\s+(weight|pos_weight)=\1\.view\(([\d, ]+)\)(, channel_dim=(\d+))?\s*(#.*)?$")


def _operand_shapes(max_rank: int = 5):
    for rank in range(max_rank + 1):
        yield from itertools.product((1, 2, 3, 4), repeat=rank)


def test_every_shape_refusal_has_a_write_instead_block_whose_view_fixes_are_accepted():
    refused = checked_fixes = 0
    for input_shape in INPUT_SHAPES:
        for shape in _operand_shapes():
            for channel_dim in (None, 1) if len(input_shape) >= 2 else (None,):
                result = line_up("weight", shape, input_shape, channel_dim)
                if result.ok:
                    continue
                refused += 1
                assert "\nWrite instead" in result.problem, (shape, input_shape, channel_dim, result.problem)
                for line in result.problem.splitlines():
                    match = VIEW_FIX.match(line)
                    if match is None:
                        continue
                    new_shape = tuple(int(s) for s in match.group(2).split(","))
                    assert torch.Size(new_shape).numel() == torch.Size(shape).numel() or "[0]" in line
                    fix_dim = channel_dim if match.group(4) is None else int(match.group(4))  # the call keeps its own
                    assert line_up("weight", new_shape, input_shape, fix_dim).ok, (shape, input_shape, line)
                    checked_fixes += 1
    assert refused > 1000 and checked_fixes > 200


@pytest.mark.parametrize("shape, input_shape, expected", [
    ((1, 1, 3), (5, 3), "weight=weight.view(3)"),                 # leading 1s: drop them
    ((5, 1), (5,), "weight=weight.view(5)"),                        # model(x).squeeze() left the input 1-D
    ((2, 3, 4), (6, 4), "weight=weight.reshape(6, 4)"),            # one value per element
    ((3, 1, 1), (4, 192), "expand the weight to the input's shape before flattening"),  # lesson 03's case
])
def test_more_dimensions_than_the_input_proposes_a_shape_that_fits(shape, input_shape, expected):
    result = line_up("weight", shape, input_shape)
    assert "more dimensions" in result.problem and "Write instead" in result.problem
    assert expected in result.problem


def _messages_of_bad_calls():
    x = torch.randn(2, 3, 4, 4)
    y = torch.rand(2, 3, 4, 4)
    calls = {
        "target shape, unrelated": lambda: bw.bce_with_logits(x, torch.rand(7, 5)),
        "target shape, missing channel": lambda: bw.bce_with_logits(torch.randn(2, 1, 4, 4), torch.rand(2, 4, 4)),
        "integer input": lambda: bw.bce_with_logits(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3)),
        "ignore not bool": lambda: bw.bce_with_logits(x, y, ignore=torch.zeros(2, 3, 4, 4)),
        "reduction": lambda: bw.bce_with_logits(x, y, reduction="avg"),
        "backend": lambda: bw.bce_with_logits(x, y, backend="cuda"),
        "gamma": lambda: bw.focal_bce_with_logits(x, y, gamma=-1.0),
        "alpha": lambda: bw.focal_bce_with_logits(x, y, alpha=2.0),
        "label_smoothing": lambda: bw.bce_with_logits(x, y, label_smoothing=1.5),
        "negative weight": lambda: bw.bce_with_logits(x, y, weight=-torch.ones(3, 1, 1)),
        "NaN weight": lambda: bw.bce_with_logits(x, y, weight=torch.tensor(float("nan"))),
        "target out of range": lambda: bw.bce_with_logits(x, y * 255),
        "channel_dim out of range": lambda: bw.bce_with_logits(x, y, pos_weight=[1.0, 2.0, 3.0], channel_dim=7),
        "channel_dim, wrong length": lambda: bw.bce_with_logits(x, y, pos_weight=[1.0, 2.0], channel_dim=1),
        "more dimensions": lambda: bw.bce_with_logits(x.flatten(1), y.flatten(1), pos_weight=torch.ones(3, 1, 1)),
        "weight of strings": lambda: bw.bce_with_logits(x, y, weight="heavy"),
        "bool weight": lambda: bw.bce_with_logits(x, y, weight=torch.ones(3, 1, 1, dtype=torch.bool)),
        "numpy objects": lambda: bw.bce_with_logits(x, y, weight=np.array([object()])),
        "float16 overflow": lambda: bw.bce_with_logits(x.half(), y.half(), weight=torch.tensor(1e5)),
        "module channel_dim": lambda: bw.BCEWithLogits(channel_dim="1"),
        "module check_values": lambda: bw.BCEWithLogits(check_values="yes"),
        "module label_smoothing": lambda: bw.BCEWithLogits(label_smoothing="0.1"),
        "expand_mask": lambda: bw.expand_mask(torch.ones(2, 5, 5), x),
        "per_channel": lambda: bw.per_channel([1.0, 2.0], x),
        "explain without a tensor": lambda: bw.explain([1.0, 2.0]),
        "ignore misaligned": lambda: bw.bce_with_logits(x, y, ignore=torch.zeros(3, dtype=torch.bool)),
    }
    for name, call in calls.items():
        with pytest.raises((TypeError, ValueError)) as error:
            call()
        yield name, str(error.value)


def test_every_refusal_of_the_loss_and_its_helpers_names_its_fix():
    missing = [name for name, message in _messages_of_bad_calls() if not re.search(r"^Write instead.*:$|\nWrite instead.*:\n    ", message, re.M)]
    assert missing == []
