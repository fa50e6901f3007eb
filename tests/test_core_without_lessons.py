"""The core works without the lessons' stack: ``import bceweights``, the loss and its gradient.

A child interpreter refuses to import matplotlib, ipywidgets, ipympl, tqdm, scipy and sklearn (a
``sys.meta_path`` finder that raises ``ImportError``, as if they were not installed), then imports
``bceweights`` and computes ``bw.bce_with_logits`` with ``weight``, ``pos_weight`` and ``ignore`` and
its gradient, checks it against PyTorch's formula, and checks that ``import bceweights`` imported none
of them. The same holds in a venv with only ``pip install .`` (checked by hand; see the README).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LESSON_STACK = ("matplotlib", "ipywidgets", "ipympl", "tqdm", "scipy", "sklearn")

CHILD = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = {blocked!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked: the core must work without the lessons' stack")
            return None

    sys.meta_path.insert(0, Blocker())

    import torch
    import torch.nn.functional as F

    before = set(sys.modules)
    import bceweights as bw
    loaded = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in BLOCKED)
    assert not loaded, loaded

    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    y = (torch.rand(2, 3, 4, 4) > 0.5).float()
    mask = torch.rand(2, 4, 4)
    loss = bw.bce_with_logits(x, y, weight=mask.unsqueeze(1), pos_weight=[1.0, 30.0, 6.0], channel_dim=1,
                              ignore=torch.zeros(2, 1, 4, 4, dtype=torch.bool))
    loss.backward()
    x_ref = x.detach().clone().requires_grad_(True)
    expected = F.binary_cross_entropy_with_logits(x_ref, y, mask.unsqueeze(1),
                                                  pos_weight=torch.tensor([1.0, 30.0, 6.0]).view(3, 1, 1))
    expected.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(x.grad, x_ref.grad)
    assert bw.explain(x.detach(), y, pos_weight=[1.0, 30.0, 6.0], channel_dim=1).ok
    assert bw.pos_weight_from_counts(100, 300).tolist() == [3.0]
    try:
        bw.unet_weight_map(torch.zeros(4, 4, dtype=torch.long))
    except ImportError as error:
        assert "pip install" in str(error), error
    else:
        raise AssertionError("unet_weight_map ran without scipy")
    print("core ok")
    """
)


def test_import_bceweights_and_the_loss_work_without_the_lessons_stack():
    result = subprocess.run(
        [sys.executable, "-c", CHILD.format(blocked=set(LESSON_STACK))],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("core ok")
