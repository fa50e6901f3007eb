"""``bw.audit()`` as a whole: locations, once per line and rule, strict mode, nothing changed, the CLI,
and the lessons' own training code audited clean."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bceweights as bw
from bceweights.audit import AuditError
from bceweights.lessons import data
from bceweights.lessons.model import TinyUNet, train

REPO_ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()


def line_of(marker: str) -> int:
    """The line number in this file of the line that contains ``marker`` (inside code, not this call)."""
    lines = HERE.read_text(encoding="utf-8").splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if marker in line and "line_of(" not in line]
    assert len(hits) == 1, hits
    return hits[0]


def misaligned_call() -> None:
    x, y = torch.randn(2, 3, 4, 3), torch.rand(2, 3, 4, 3)
    F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor([1.0, 2.0, 3.0]))  # <- functional call


def test_location_is_the_users_line_not_torchs():
    with bw.audit() as report:
        misaligned_call()
    assert report.findings[0].location == f"{HERE}:{line_of('# <- functional call')}"


def test_location_of_a_module_call_is_the_users_line():
    criterion = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 2.0, 3.0]))
    x, y = torch.randn(2, 3, 4, 3), torch.rand(2, 3, 4, 3)
    with bw.audit() as report:
        criterion(x, y)  # <- module call
    finding = report.findings[0]
    assert finding.location == f"{HERE}:{line_of('# <- module call')}"
    assert finding.function == "nn.BCEWithLogitsLoss"
    assert "nn.BCEWithLogitsLoss(pos_weight=pos_weight.view(3, 1, 1))" in finding.message


def test_a_finding_is_counted_once_per_location_and_rule():
    with bw.audit() as report:
        for _ in range(5):
            misaligned_call()
        misaligned_call()
    assert report.calls == 6
    assert [f.rule for f in report.findings] == ["misaligned-operand"]


def test_two_lines_give_two_findings_and_two_rules_at_one_line_give_two():
    x, target = torch.randn(3, 3, 4, 3), torch.rand(3, 3, 4, 3)
    target[0, 0, 0, 0] = 255
    pos_weight = torch.tensor([1.0, 2.0, 3.0])
    with bw.audit() as report:
        F.binary_cross_entropy_with_logits(x, target, pos_weight=pos_weight)
        F.binary_cross_entropy_with_logits(x, target.clamp(0, 1), pos_weight=pos_weight)
    assert [f.rule for f in report.findings] == ["misaligned-operand", "target-out-of-range", "misaligned-operand"]
    assert report.findings[0].location != report.findings[2].location


def test_strict_raises_at_the_first_finding_before_computing():
    x = torch.randn(2, 3, 4, 3, requires_grad=True)
    with pytest.raises(AuditError) as raised, bw.audit(strict=True) as report:
        F.binary_cross_entropy_with_logits(x, torch.rand(2, 3, 4, 3), pos_weight=torch.tensor([1.0, 2.0, 3.0]))
    assert isinstance(raised.value, ValueError)
    assert raised.value.finding.rule == "misaligned-operand"
    assert "misaligned-operand" in str(raised.value) and "Write instead" in str(raised.value)
    assert x.grad is None and len(report.findings) == 1


def test_strict_lets_clean_code_run():
    with bw.audit(strict=True) as report:
        F.binary_cross_entropy_with_logits(torch.randn(4, 3), torch.rand(4, 3), pos_weight=torch.tensor([1.0, 2.0, 3.0]))
    assert report.clean and report.calls == 1


def _one_training_run(audited: bool) -> tuple[list[float], list[torch.Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid())  # buggy on purpose: the audit must still not interfere
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=generator), (torch.rand(64, 3, generator=generator) > 0.7).float()
    y[0, 0] = 255
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    context = bw.audit() if audited else contextlib.nullcontext()
    with context:
        for _ in range(3):
            optimizer.zero_grad()
            loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 2.0, 3.0]).repeat(64, 1))(model(x), y)
            loss = loss + F.binary_cross_entropy(model(x), y.clamp(0, 1), weight=torch.zeros(3))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses, [p.detach().clone() for p in model.parameters()]


def test_the_audit_changes_nothing_the_code_computes():
    plain_losses, plain_parameters = _one_training_run(audited=False)
    audited_losses, audited_parameters = _one_training_run(audited=True)
    assert plain_losses == audited_losses
    assert all(torch.equal(a, b) for a, b in zip(plain_parameters, audited_parameters))


def test_the_rng_is_untouched():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with bw.audit():
        F.binary_cross_entropy_with_logits(torch.zeros(300), torch.full((300,), 255.0))
    assert torch.equal(torch.rand(3), expected)


def test_bceweights_own_loss_is_not_audited_twice():
    x, target = torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    target[0, 0, 0, 0] = 255
    with bw.audit() as report:
        bw.bce_with_logits(x, target, ignore=target == 255, pos_weight=[1.0, 2.0, 3.0], channel_dim=1)
    assert report.calls == 0 and report.clean


def test_print_report_is_a_readable_summary():
    with bw.audit() as report:
        pass
    assert "no binary cross-entropy call" in str(report)
    with bw.audit() as report:
        F.binary_cross_entropy_with_logits(torch.randn(4, 3), torch.rand(4, 3))
    assert str(report) == "bw.audit: no findings in 1 binary cross-entropy call."
    with bw.audit() as report:
        misaligned_call()
    text = str(report)
    assert text.startswith("bw.audit: 1 finding in 1 binary cross-entropy call (misaligned-operand).")
    assert "[misaligned-operand] " in text and "tests/test_audit_session.py:" in text
    assert "    pos_weight has shape (3,)" in text


def test_the_lessons_training_code_audits_clean():
    """Lessons 05 and 06 train with lessons.model.train and these losses; under audit: nothing found."""
    plates = data.make_plates(16, 16, seed=0)
    shapes = data.make_shapes(16, 16, seed=0)
    labels = data.rgb_to_labels(plates.masks)
    pos_weight = bw.pos_weight_from_targets(plates.masks, channel_dim=1)
    # name: (output channels, targets, loss_fn, whether PyTorch's BCE is called directly)
    losses = {
        "default BCE (04, 05)": (3, plates.masks, None, True),
        "cross-entropy on class maps (05)": (4, labels, None, False),
        "bw per-channel pos_weight (04)": (
            3, plates.masks, lambda x, y: bw.bce_with_logits(x, y, pos_weight=pos_weight, channel_dim=1), False),
        "bw one pos_weight (04)": (1, shapes.masks, lambda x, y: bw.bce_with_logits(x, y, pos_weight=4.0), False),
        "PyTorch per-channel (C, 1, 1)": (3, plates.masks, lambda x, y: F.binary_cross_entropy_with_logits(
            x, y, pos_weight=pos_weight.view(3, 1, 1).to(x.dtype)), True),
        "PyTorch tensor([p])": (1, shapes.masks, lambda x, y: F.binary_cross_entropy_with_logits(
            x, y, pos_weight=torch.tensor([4.0], dtype=x.dtype)), True),
        "PyTorch (N, 1, H, W) mask": (3, plates.masks, lambda x, y: F.binary_cross_entropy_with_logits(
            x, y, weight=(y.sum(1, keepdim=True) > 0).to(x.dtype) + 0.5), True),
    }
    for name, (channels, targets, loss_fn, direct) in losses.items():
        images = shapes.images if targets is shapes.masks else plates.images
        with bw.audit() as report:
            train(TinyUNet(1, channels, width=4), images, targets, loss_fn, epochs=1, batch_size=8, progress=False)
        assert report.clean, f"{name}:\n{report}"
        assert (report.calls > 0) == direct, (name, report.calls)


# --------------------------------------------------------------------------------------------------
# python -m bceweights.audit


def run_cli(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "train.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "bceweights.audit", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )


BUGGY = """
    import sys
    import torch
    from torch import nn
    print("argv", sys.argv[1:])
    criterion = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 30.0, 6.0]))
    x, y = torch.randn(2, 3, 8, 3), torch.rand(2, 3, 8, 3)
    for _ in range(3):
        criterion(x, y)
"""


def test_cli_runs_the_script_with_its_arguments_and_exits_1_on_findings(tmp_path):
    done = run_cli(tmp_path, BUGGY, "train.py", "--epochs", "2")
    assert done.returncode == 1, done.stderr
    assert "argv ['--epochs', '2']" in done.stdout
    assert "bw.audit: 1 finding in 3 binary cross-entropy calls (misaligned-operand)." in done.stdout
    assert "train.py:9" in done.stdout


def test_cli_exits_0_on_clean_code(tmp_path):
    done = run_cli(tmp_path, BUGGY.replace("[1.0, 30.0, 6.0])", "[1.0, 30.0, 6.0]).view(3, 1, 1)"), "train.py")
    assert done.returncode == 0, done.stderr
    assert "bw.audit: no findings in 3 binary cross-entropy calls." in done.stdout


def test_cli_strict_stops_at_the_first_finding(tmp_path):
    done = run_cli(tmp_path, BUGGY, "--strict", "train.py")
    assert done.returncode == 1
    assert "in 1 binary cross-entropy call" in done.stdout


def test_cli_keeps_the_scripts_own_exit_status(tmp_path):
    done = run_cli(tmp_path, "import sys\nsys.exit(3)\n", "train.py")
    assert done.returncode == 3 and "no binary cross-entropy call" in done.stdout


def test_bw_audit_is_callable_and_still_the_package():
    import bceweights.audit as package

    assert package is bw.audit and callable(bw.audit)
    assert bw.audit.Finding is package.findings.Finding and "misaligned-operand" in bw.audit.RULES
    with bw.audit(strict=True) as report:
        pass
    assert isinstance(report, bw.audit.Report) and bw.AuditError is package.AuditError
