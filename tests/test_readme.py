"""The README's Python examples run, and the error it shows is the error the package raises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import bceweights as bw

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _namespace() -> dict:
    """Names the README's snippets take as given (a dataset, label maps, a volume)."""
    gen = torch.Generator().manual_seed(0)
    batches = [(None, (torch.rand(4, 3, 8, 8, generator=gen) > 0.8).float()) for _ in range(3)]
    return {
        "labels": torch.randint(0, 2, (8, 3, 64, 64), generator=gen).masked_fill(
            torch.rand(8, 3, 64, 64, generator=gen) > 0.9, 255
        ),
        "loader": batches,
        "label_maps": torch.arange(4).repeat_interleave(16).view(1, 8, 8).repeat(2, 1, 1),
        "volume_target": (torch.rand(1, 1, 60, 40, 40, generator=gen) < 1 / 95).float(),
        "instance_labels": torch.tensor([[1, 1, 0, 0, 2, 2], [1, 1, 0, 0, 2, 2]]),
    }


def test_readme_examples_run_and_its_error_message_is_current():
    blocks = _blocks()
    assert len(blocks) >= 6
    namespace = _namespace()
    shown_errors = 0
    for block in blocks:
        expected = [line[2:] for line in block.splitlines() if line.startswith("# ")]
        if expected and expected[0].startswith("WeightShapeError: "):
            with pytest.raises(bw.WeightShapeError) as info:
                exec(block, namespace)  # noqa: S102 (the README's own code)
            assert str(info.value).splitlines() == [expected[0].removeprefix("WeightShapeError: "), *expected[1:]]
            shown_errors += 1
        else:
            exec(block, namespace)  # noqa: S102
    assert shown_errors == 1
    assert float(namespace["loss"]) > 0
