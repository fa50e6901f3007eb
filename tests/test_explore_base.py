"""The live explorers: numbers against closed forms, extremes, display bundle, silence, blitting.

Runs on the Agg canvas (no Jupyter); one test builds an explorer under ipympl in a subprocess.
"""

from __future__ import annotations

import base64
import itertools
import math
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import bceweights as bw
from bceweights.lessons.exercises import check_lesson01
from bceweights.lessons.explore import Explorer, LossCurveExplorer, explorer_classes
from bceweights.lessons.explore.loss_curve import GRID_POINTS, LOGIT_LIMIT

REPO_ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def closed_form_loss(x: np.ndarray, y: float, w: float, p: float) -> np.ndarray:
    """w * [p*y*softplus(-x) + (1-y)*softplus(x)], written independently of the package."""
    return w * (p * y * np.logaddexp(0.0, -x) + (1.0 - y) * np.logaddexp(0.0, x))


def closed_form_gradient(x: np.ndarray, y: float, w: float, p: float) -> np.ndarray:
    """d/dx of the loss above: w * [(1-y)*sigmoid(x) - p*y*(1-sigmoid(x))]."""
    s = 1.0 / (1.0 + np.exp(-x))
    return w * ((1.0 - y) * s - p * y * (1.0 - s))


def line(explorer: LossCurveExplorer, panel: str, kind: str, key: str):
    return explorer._lines[panel, kind, key]


SETTINGS = [
    dict(weight=1.0, pos_weight=1.0, y=0.3, logit=0.0),
    dict(weight=2.0, pos_weight=10.0, y=0.25, logit=-1.5),
    dict(weight=0.5, pos_weight=0.1, y=0.8, logit=3.0),
    dict(weight=5.0, pos_weight=100.0, y=0.05, logit=-20.0),
]


# --------------------------------------------------------------------------------------------------
# LossCurveExplorer: numbers against closed forms


@pytest.mark.parametrize("values", SETTINGS)
def test_optimal_probability_and_logit_readouts_match_closed_form(values):
    explorer = LossCurveExplorer()
    explorer.set(**values)
    p, y = values["pos_weight"], values["y"]
    assert explorer.readouts["optimal_probability"] == pytest.approx(p * y / (p * y + 1 - y), rel=1e-12)
    assert explorer.readouts["optimal_logit"] == pytest.approx(math.log(p * y / (1 - y)), rel=1e-12)
    assert explorer.readouts["positive_scale"] == pytest.approx(values["weight"] * p)
    assert explorer.readouts["negative_scale"] == pytest.approx(values["weight"])


def test_readouts_follow_a_control_set_directly_and_count_updates():
    explorer = LossCurveExplorer(y=0.25)
    before = explorer.update_count
    explorer.controls["pos_weight"].value = 3  # as a slider drag does (an int works too)
    assert explorer.update_count == before + 1
    assert explorer.values["pos_weight"] == 3.0
    assert explorer.controls["pos_weight"].label == "3"
    assert explorer.readouts["optimal_probability"] == pytest.approx(0.5)
    explorer.set(weight=2.0, pos_weight=10.0)  # several controls, one update
    assert explorer.update_count == before + 2


@pytest.mark.parametrize("values", SETTINGS)
def test_plotted_curves_equal_closed_forms_and_autograd_of_package_loss(values):
    explorer = LossCurveExplorer()
    explorer.set(**values)
    w, p, y = values["weight"], values["pos_weight"], values["y"]
    x = np.asarray(line(explorer, "loss", "weighted", "y").get_xdata(), dtype=float)
    assert x.shape == (GRID_POINTS,) and x[0] == -LOGIT_LIMIT and x[-1] == LOGIT_LIMIT

    for key, target in (("y1", 1.0), ("y0", 0.0), ("y", y)):
        loss = np.asarray(line(explorer, "loss", "weighted", key).get_ydata(), dtype=float)
        gradient = np.asarray(line(explorer, "grad", "weighted", key).get_ydata(), dtype=float)
        np.testing.assert_allclose(loss, closed_form_loss(x, target, w, p), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gradient, closed_form_gradient(x, target, w, p), rtol=1e-9, atol=1e-12)
        plain_loss = np.asarray(line(explorer, "loss", "plain", key).get_ydata(), dtype=float)
        plain_gradient = np.asarray(line(explorer, "grad", "plain", key).get_ydata(), dtype=float)
        np.testing.assert_allclose(plain_loss, closed_form_loss(x, target, 1.0, 1.0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(plain_gradient, closed_form_gradient(x, target, 1.0, 1.0), rtol=1e-9, atol=1e-12)

        # The same curve through the public API and autograd, as a learner would compute it.
        logits = torch.tensor(x, requires_grad=True)
        targets = torch.full_like(logits, target)
        package_loss = bw.bce_with_logits(logits, targets, weight=w, pos_weight=p, reduction="none")
        (package_gradient,) = torch.autograd.grad(package_loss.sum(), logits)
        np.testing.assert_allclose(gradient, package_gradient.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(loss, package_loss.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("values", SETTINGS)
def test_probe_readouts_are_loss_and_gradient_at_the_probe_logit(values):
    explorer = LossCurveExplorer()
    explorer.set(**values)
    w, p, y, x = values["weight"], values["pos_weight"], values["y"], np.array([values["logit"]])
    for key, target in (("y1", 1.0), ("y0", 0.0), ("y", y)):
        assert explorer.readouts[f"loss_{key}"] == pytest.approx(closed_form_loss(x, target, w, p)[0], rel=1e-9)
        assert explorer.readouts[f"grad_{key}"] == pytest.approx(
            closed_form_gradient(x, target, w, p)[0], rel=1e-9, abs=1e-12
        )


def test_weight_scales_both_terms_pos_weight_only_the_positive_one():
    explorer = LossCurveExplorer(y=0.3, logit=0.7)
    plain = dict(explorer.readouts)
    explorer.set(pos_weight=10.0)
    assert explorer.readouts["grad_y1"] == pytest.approx(10 * plain["grad_y1"])
    assert explorer.readouts["grad_y0"] == pytest.approx(plain["grad_y0"])
    explorer.set(pos_weight=1.0, weight=2.5)
    assert explorer.readouts["grad_y1"] == pytest.approx(2.5 * plain["grad_y1"])
    assert explorer.readouts["grad_y0"] == pytest.approx(2.5 * plain["grad_y0"])
    # weight does not move the optimum; pos_weight does, by log(p).
    assert explorer.readouts["optimal_logit"] == pytest.approx(plain["optimal_logit"])
    explorer.set(pos_weight=4.0)
    assert explorer.readouts["optimal_logit"] == pytest.approx(plain["optimal_logit"] + math.log(4.0))


def test_marker_sits_at_the_minimiser_where_the_gradient_is_zero():
    explorer = LossCurveExplorer()
    explorer.set(weight=2.0, pos_weight=3.0, y=0.25)
    (marker_x,) = explorer._lines["grad", "optimum"].get_xdata()
    assert marker_x == pytest.approx(math.log(3.0 * 0.25 / 0.75))
    assert explorer._lines["grad", "optimum"].get_ydata()[0] == pytest.approx(0.0, abs=1e-12)
    assert explorer._lines["loss", "optimum"].get_marker() == "*"


@pytest.mark.parametrize("y, edge, marker", [(0.0, -1, "<"), (1.0, 1, ">"), (0.999, 1, ">")])
def test_marker_goes_to_the_panel_edge_when_the_minimiser_is_out_of_view(y, edge, marker):
    explorer = LossCurveExplorer()
    explorer.set(pos_weight=100.0, y=y)
    low, high = explorer._loss_axes.get_xlim()
    (marker_x,) = explorer._lines["loss", "optimum"].get_xdata()
    assert marker_x == (high if edge > 0 else low)
    assert explorer._lines["loss", "optimum"].get_marker() == marker
    assert math.isfinite(explorer._lines["loss", "optimum"].get_ydata()[0])


EXTREMES = list(itertools.product((0.0, 5.0), (0.01, 100.0), (0.0, 0.5, 1.0), (-20.0, 20.0)))


@pytest.mark.parametrize("weight, pos_weight, y, logit", EXTREMES)
def test_extremes_plot_no_nan(weight, pos_weight, y, logit):
    explorer = LossCurveExplorer()
    explorer.set(weight=weight, pos_weight=pos_weight, y=y, logit=logit)
    explorer.render()
    for label, values in explorer.plotted_arrays():
        assert np.isfinite(values).all(), f"{label} has non-finite values at {explorer.values}"
    for name, value in explorer.readouts.items():
        assert not math.isnan(value), name
    assert explorer._loss_axes.get_xlim()[0] <= logit <= explorer._loss_axes.get_xlim()[1]


def test_weight_zero_says_every_logit_is_optimal():
    explorer = LossCurveExplorer(weight=0.0)
    assert "every logit is optimal" in explorer.readout_view.value
    assert explorer.readouts["loss_y"] == 0.0 and explorer.readouts["grad_y1"] == 0.0


def test_set_rejects_unknown_names_and_out_of_range_values():
    explorer = LossCurveExplorer()
    with pytest.raises(ValueError, match=r"no control named 'pos'.*weight, pos_weight, y, logit"):
        explorer.set(pos=10)
    with pytest.raises(ValueError, match=r"(?s)pos_weight=1000 is not one of .*0.01 ... 100.*pos_weight=100\)"):
        explorer.set(pos_weight=1000)
    with pytest.raises(ValueError, match=r"(?s)pos_weight=3.3 is not one of .*explorer.set\(pos_weight=3\)"):
        explorer.set(pos_weight=3.3)
    with pytest.raises(ValueError, match=r"weight=7 is outside .*\[0, 5\]"):
        explorer.set(weight=7)
    with pytest.raises(ValueError, match="no control named"):
        LossCurveExplorer(gamma=2.0)
    assert explorer.values["pos_weight"] == 1.0  # nothing changed


def test_print_readouts_rounds_to_four_significant_digits(capsys):
    explorer = LossCurveExplorer()
    explorer.set(pos_weight=10.0, y=0.3)
    explorer.print_readouts("optimal_probability", "optimal_logit")
    assert capsys.readouterr().out == "optimal_probability = 0.8108\noptimal_logit = 1.455\n"
    explorer.set(y=1.0)
    explorer.print_readouts("optimal_logit")
    assert capsys.readouterr().out == "optimal_logit = inf\n"
    with pytest.raises(ValueError, match="no readout named"):
        explorer.print_readouts("optimum")


# --------------------------------------------------------------------------------------------------
# Drawing: the blitted frame is the frame a full draw produces


def test_blitted_frames_equal_full_draws():
    explorer = LossCurveExplorer()
    canvas = explorer.figure.canvas
    explorer.render()
    blits = 0
    for change in [dict(y=0.31), dict(logit=1.0), dict(pos_weight=1.2), dict(weight=0.98), dict(y=0.9)]:
        full_before = explorer.full_draw_count
        explorer.set(**change)
        explorer.render()
        blits += explorer.full_draw_count == full_before
        blitted = np.asarray(canvas.buffer_rgba()).copy()
        canvas.draw()
        np.testing.assert_array_equal(blitted, np.asarray(canvas.buffer_rgba()), err_msg=str(change))
    assert blits >= 3  # small moves do not redraw the axes


def test_axis_change_forces_a_full_draw():
    explorer = LossCurveExplorer()
    explorer.render()
    before = explorer.full_draw_count
    explorer.set(pos_weight=100.0, weight=5.0)  # the gradient axis must grow to -500
    explorer.render()
    assert explorer.full_draw_count == before + 1
    assert explorer._grad_axes.get_ylim()[0] <= -500


# --------------------------------------------------------------------------------------------------
# Display: one widget plus a static PNG, and nothing else in the cell


def test_mimebundle_has_widget_view_png_and_short_text():
    explorer = LossCurveExplorer(pos_weight=10.0)
    bundle = explorer._repr_mimebundle_()
    assert bundle[WIDGET_VIEW]["model_id"] == explorer.widget.model_id
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_SIGNATURE)
    assert bundle["text/plain"].startswith("LossCurveExplorer(weight=1, pos_weight=10")
    assert len(bundle["text/plain"]) < 120
    # The fallback view got the frame too, for a notebook on the inline backend.
    assert bytes(explorer.figure_view.value).startswith(PNG_SIGNATURE)


def test_widget_tree_has_the_classes_browser_tests_look_for():
    explorer = LossCurveExplorer()
    assert "bce-explorer" in explorer.widget._dom_classes
    assert "bce-readout" in explorer.readout_view._dom_classes
    assert "bce-canvas" in explorer.figure_view._dom_classes
    assert "bce-control-pos_weight" in explorer.controls["pos_weight"]._dom_classes
    assert explorer.figure_view in explorer.widget.children
    assert 'data-readout="optimal_probability"' in explorer.readout_view.value.replace("'", '"')


def test_construction_and_updates_write_nothing(capfd):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explorer = LossCurveExplorer()
        for change in explorer.benchmark_changes()[::5]:
            explorer.set(**change)
            explorer.render()
        explorer.controls["y"].value = 1.0
        explorer._repr_mimebundle_()
        explorer.set(pos_weight=0.5)  # after display: the fallback view refreshes
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_log_slider_offers_round_values_from_0_01_to_100():
    from bceweights.lessons.explore.controls import log_choices

    values = [value for _, value in log_choices(-2, 2)]
    assert values[0] == 0.01 and values[-1] == 100.0 and len(values) == 49
    assert {0.1, 1.0, 3.0, 4.0, 9.0, 10.0, 100.0} <= set(values)
    ratios = np.diff(np.log10(values))
    assert ratios.min() > 0 and ratios.max() < 0.13  # increasing, no big jumps


def test_under_ipympl_the_canvas_is_the_ipympl_widget():
    """A fresh interpreter with ``matplotlib.use("module://ipympl.backend_nbagg")``, no kernel."""
    script = textwrap.dedent(
        """
        import warnings
        warnings.simplefilter("error")
        import matplotlib
        matplotlib.use("module://ipympl.backend_nbagg")
        import matplotlib.pyplot as plt
        from ipympl.backend_nbagg import Canvas
        from bceweights.lessons.explore import LossCurveExplorer
        explorer = LossCurveExplorer()
        assert isinstance(explorer.figure_view, Canvas), type(explorer.figure_view)
        assert explorer.interactive_canvas
        assert plt.get_fignums() == [], "explorer figures must not be registered with pyplot"
        explorer.set(pos_weight=10.0)
        canvas = explorer.figure.canvas
        assert canvas._data_url is None, "nothing is pushed to the canvas before it is shown"
        bundle = explorer._repr_mimebundle_()
        assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle
        assert canvas._data_url.startswith("data:image/png;base64,")
        shown = canvas._data_url
        explorer.controls["y"].value = 0.9
        assert canvas._data_url.startswith("data:image/png;base64,") and canvas._data_url != shown
        assert explorer.readouts["optimal_probability"] > 0.98
        print("ok", explorer.update_count, explorer.full_draw_count)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "MPLBACKEND"}, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert re.fullmatch(r"ok 3 0\n", result.stdout), result.stdout  # no browser: no canvas draws


# --------------------------------------------------------------------------------------------------
# Every explorer in the package keeps the contract (later explorers are picked up automatically)


def all_explorer_classes() -> list[type[Explorer]]:
    return explorer_classes()


def test_loss_curve_explorer_is_discovered():
    assert LossCurveExplorer in all_explorer_classes()


@pytest.mark.parametrize("cls", all_explorer_classes(), ids=lambda cls: cls.__name__)
def test_every_explorer_is_silent_finite_and_displayable_at_its_extremes(cls, capfd, control_extremes):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explorer = cls.example()
        assert isinstance(explorer, cls)
        for name, control in explorer.controls.items():
            for value in control_extremes(control):
                explorer.set(**{name: value})
                explorer.render()
                for label, values in explorer.plotted_arrays():
                    assert np.isfinite(values).all(), f"{label} not finite at {name}={value!r}"
                for readout, number in explorer.readouts.items():
                    assert not (isinstance(number, float) and math.isnan(number)), f"{readout} at {name}={value!r}"
        bundle = explorer._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_SIGNATURE)
    assert WIDGET_VIEW in bundle
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert len(explorer.benchmark_changes()) > 0


# --------------------------------------------------------------------------------------------------
# The benchmark and the exercise checker


def test_benchmark_prints_the_summary_line(capsys):
    from benchmarks.widgets import MIN_UPDATES, main

    assert main(["LossCurveExplorer"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"LossCurveExplorer: (\d+) updates, median .*", lines[0])
    assert int(lines[0].split()[1]) >= MIN_UPDATES
    assert re.fullmatch(
        r"widgets: slowest explorer median update \d+\.\d ms \(LossCurveExplorer\), "
        r"slowest p95 \d+\.\d ms \(LossCurveExplorer\)",
        lines[-1],
    )


@pytest.mark.parametrize(
    "answer, correct, phrase",
    [
        (None, False, "No answer yet"),
        ("0.3", False, "Expected a probability"),
        (1.3, False, "not a probability"),
        (0.1, False, "q itself"),
        (12 * 0.1 / (12 * 0.1 + 0.9), False, "weight multiplies both"),
        (0.9, False, "Not yet"),
        (0.4 / 1.3, True, "Correct"),
        (0.308, True, "Correct"),
        (torch.tensor(0.3077), True, "Correct"),
    ],
)
def test_check_lesson01_verdicts(answer, correct, phrase, capsys):
    assert check_lesson01(answer) is correct
    assert phrase in capsys.readouterr().out
