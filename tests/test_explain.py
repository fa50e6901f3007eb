"""bw.explain reports how operands line up, as text and HTML, without raising for bad ones."""

from __future__ import annotations

import torch

import bceweights as bw


def test_report_for_good_operands():
    pred = torch.zeros(8, 3, 64, 64)
    mask = torch.ones(8, 64, 64)
    report = bw.explain(pred, pred, weight=bw.expand_mask(mask, pred), pos_weight=[1.0, 30.0, 6.0], channel_dim=1)
    assert report.ok and report.problems() == {}
    text = str(report)
    lines = {line.split()[0]: line for line in text.splitlines() if line}
    assert "varies along C; broadcast over N, H, W (placed by channel_dim)" in lines["pos_weight"]
    assert "stride 0 along C (an expand view: no copy)" in lines["weight"]
    assert "128.0 KiB (shared)" in lines["weight"] and "384.0 KiB" in lines["weight"]


def test_report_for_refused_operands_carries_the_error_message():
    pred = torch.zeros(4, 3, 16, 16)
    report = bw.explain(pred, weight=torch.rand(4), pos_weight=torch.tensor([1.0, 30.0, 6.0]).repeat(4, 1))
    assert not report.ok
    assert set(report.problems()) == {"weight", "pos_weight"}
    text = str(report)
    assert "refused" in text and "pos_weight=pos_weight.view(4, 3, 1, 1)" in text
    for name, message in report.problems().items():
        try:
            bw.bce_with_logits(pred, torch.zeros_like(pred), **{name: report_operand(name)})
        except bw.WeightShapeError as error:
            assert str(error) == message


def report_operand(name):
    return torch.rand(4) if name == "weight" else torch.tensor([1.0, 30.0, 6.0]).repeat(4, 1)


def test_scalar_and_numbers():
    report = bw.explain(torch.zeros(10, 1), pos_weight=10)
    line = str(report).splitlines()[-1]
    assert line.startswith("pos_weight") and "broadcast over N" in line


def test_html_table():
    html = bw.explain(torch.zeros(2, 3, 4, 4), weight=torch.rand(2, 4, 4))._repr_html_()
    assert html.startswith('<table class="bce-explain">')
    assert "<th>C</th>" in html and "WeightShapeError" in html and "unsqueeze(1)" in html
