"""The explorers of lessons 02 and 03: BroadcastExplorer, ReductionExplorer, StabilityExplorer.

Each test sets controls the way a check cell does and compares the numbers the explorer shows with an
independent computation: PyTorch's own loss, ``bceweights``' own error, or a closed form.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bceweights as bw
from bceweights.lessons.explore import explorer_classes
from bceweights.lessons.explore.broadcast import CUSTOM, SLOTS, BroadcastExplorer
from bceweights.lessons.explore.operands import (
    CASES,
    INPUT_SHAPES,
    POS_WEIGHT_PER_CHANNEL,
    WEIGHT_PER_CHANNEL,
    example_masks,
)
from bceweights.lessons.explore.reduction import (
    BACKGROUND_LOGIT,
    FOREGROUND_LOGIT,
    REDUCTIONS,
    ReductionExplorer,
    closed_form_numbers,
    disk_target,
)
from bceweights.lessons.explore.shape_text import parse_shape
from bceweights.lessons.explore.stability import (
    DTYPES,
    FORMS,
    MAX_MARKERS,
    StabilityExplorer,
    loss_and_gradient,
    saturation_logit,
)

WIDE, SQUARE = INPUT_SHAPES["(2, 3, 8, 10)"], INPUT_SHAPES["(2, 3, 8, 3): W = C"]
MY_EXPLORERS = (BroadcastExplorer, ReductionExplorer, StabilityExplorer)


# --------------------------------------------------------------------------------------------------
# BroadcastExplorer


@pytest.mark.parametrize(
    "text, shape",
    [
        ("N, H, W", (2, 8, 10)),
        ("(N, 1, H, W)", (2, 1, 8, 10)),
        ("c 1 1", (3, 1, 1)),
        ("[3]", (3,)),
        ("(3,)", (3,)),
        ("", ()),
        ("()", ()),
        ("2, 3, 8, 10, 1, 1", (2, 3, 8, 10, 1, 1)),
    ],
)
def test_parse_shape_reads_sizes_and_dimension_letters(text, shape):
    assert parse_shape(text, WIDE) == shape


@pytest.mark.parametrize(
    "text, phrase",
    [("N, X", "cannot read 'X'"), ("0, 3", "cannot read '0'"), ("1,1,1,1,1,1,1", "at most 6"),
     ("1000, 1000", "at most 100000")],
)
def test_parse_shape_refuses_with_a_message(text, phrase):
    with pytest.raises(ValueError, match=phrase):
        parse_shape(text, WIDE)


@pytest.mark.parametrize("case, input_shape", list(itertools.product(CASES, INPUT_SHAPES.values())))
def test_each_case_reports_what_both_libraries_actually_do(case, input_shape, assert_plots_finite):
    explorer = BroadcastExplorer(case=case, input=input_shape)
    operand = explorer.operand_tensor
    name = explorer.values["operand"]
    channel_dim = explorer.values["channel_dim"]
    logits = torch.zeros(input_shape)
    assert tuple(operand.shape) == parse_shape(CASES[case].expression, input_shape)

    try:
        bw.bce_with_logits(logits, logits, **{name: operand}, channel_dim=channel_dim)
        package_error = None
    except bw.WeightShapeError as error:
        package_error = str(error)
    assert explorer.readouts["bceweights_accepts"] == (package_error is None)
    assert explorer.reading.bceweights_error == package_error

    try:
        F.binary_cross_entropy_with_logits(logits, logits, **{name: operand})
        torch_error = None
    except RuntimeError as error:
        torch_error = str(error).strip()
    assert explorer.readouts["pytorch_runs"] == (torch_error is None)
    assert explorer.reading.pytorch_error == torch_error
    assert explorer.readouts["silent_trap"] == (torch_error is None and package_error is not None)
    assert explorer.readouts["elements_if_materialised"] == math.prod(input_shape)
    assert_plots_finite(explorer)


def test_mask_needs_its_channel_dimension():
    explorer = BroadcastExplorer(case="mask")
    assert not explorer.readouts["bceweights_accepts"] and not explorer.readouts["pytorch_runs"]
    assert "weight=weight.unsqueeze(1)" in explorer.reading.bceweights_error
    assert "mean_c0" not in explorer.readouts  # no map to show
    explorer.set(case="mask_unsqueezed")
    mask = example_masks(2, 8, 10)[:, 0]
    for c in range(3):
        assert explorer.readouts[f"mean_c{c}"] == pytest.approx(float(mask.mean()))
    np.testing.assert_array_equal(explorer.reading.effective[:, 1].numpy(), mask.numpy())


def test_expand_mask_is_a_view_repeat_would_copy():
    explorer = BroadcastExplorer(case="mask_expanded")
    operand = explorer.operand_tensor
    assert operand.stride()[1] == 0
    assert explorer.readouts["operand_elements"] == 2 * 8 * 10  # the mask's storage, not 2 * 3 * 8 * 10
    report = explorer.explanation()
    assert report.ok and "stride 0 along C" in str(report)


def test_per_channel_weight_times_shared_mask_has_the_closed_form_channel_means():
    explorer = BroadcastExplorer(case="channel_weights_times_mask")
    mask_mean = float(example_masks(2, 8, 10).mean())
    for c, w in enumerate(WEIGHT_PER_CHANNEL):
        assert explorer.readouts[f"mean_c{c}"] == pytest.approx(w * mask_mean)


@pytest.mark.parametrize("case", ["pos_weight_view", "pos_weight_channel_dim"])
@pytest.mark.parametrize("input_shape", [WIDE, SQUARE])
def test_per_channel_pos_weight_gives_every_pixel_its_channels_value(case, input_shape):
    explorer = BroadcastExplorer(case=case, input=input_shape)
    assert explorer.readouts["bceweights_accepts"]
    expected = torch.tensor(POS_WEIGHT_PER_CHANNEL).view(1, 3, 1, 1).expand(input_shape)
    assert torch.equal(explorer.reading.effective, expected)
    for c, p in enumerate(POS_WEIGHT_PER_CHANNEL):
        assert explorer.readouts[f"mean_c{c}"] == p


def test_the_silent_trap_when_width_equals_channels():
    explorer = BroadcastExplorer(case="pos_weight_vector", input=WIDE)
    assert not explorer.readouts["pytorch_runs"] and not explorer.readouts["silent_trap"]
    assert "must match the size of tensor b (10)" in explorer.reading.pytorch_error
    explorer.set(input=SQUARE)
    assert explorer.readouts["pytorch_runs"] and explorer.readouts["silent_trap"]
    assert "WOULD run" in explorer.reading.bceweights_error
    # The map shows PyTorch's reading: the three values go to the columns, in every channel.
    effective = explorer.reading.effective
    for c in range(3):
        np.testing.assert_array_equal(effective[0, c, 0].numpy(), POS_WEIGHT_PER_CHANNEL)
        assert explorer.readouts[f"mean_c{c}"] == pytest.approx(sum(POS_WEIGHT_PER_CHANNEL) / 3)
    assert "PyTorch would" in explorer._map_caption.get_text()


def test_repeat_over_the_batch_is_refused_with_the_view_to_write():
    explorer = BroadcastExplorer(case="pos_weight_repeat")
    assert tuple(explorer.operand_tensor.shape) == (2, 3)
    assert "pos_weight=pos_weight.view(2, 3, 1, 1)" in explorer.reading.bceweights_error
    assert not explorer.readouts["pytorch_runs"]


def test_diagram_places_boxes_where_broadcasting_puts_them():
    explorer = BroadcastExplorer(case="pos_weight_vector")
    visible = [slot for slot in range(SLOTS) if explorer._operand_boxes[slot].get_visible()]
    assert visible == [SLOTS - 1]  # paired with W, the last input dimension
    assert explorer._links[SLOTS - 1].get_color() == "tab:red"  # 3 against W=10
    explorer.set(channel_dim=1)
    visible = [slot for slot in range(SLOTS) if explorer._operand_boxes[slot].get_visible()]
    assert visible == [SLOTS - 3]  # C of (N, C, H, W)
    assert explorer._links[SLOTS - 3].get_color() == "tab:green"
    explorer.set(shape="N, 1, H, W")
    colors = [explorer._links[slot].get_color() for slot in range(SLOTS - 4, SLOTS)]
    assert colors == ["tab:green", "0.6", "tab:green", "tab:green"]


def test_choosing_a_case_fills_in_the_controls_and_editing_them_picks_the_case():
    explorer = BroadcastExplorer()
    explorer.set(case="pos_weight_view")
    assert explorer.values["shape"] == "C, 1, 1" and explorer.values["operand"] == "pos_weight"
    assert explorer.controls["shape"].value == "C, 1, 1"
    explorer.set(shape="C")
    assert explorer.values["case"] == "pos_weight_vector"
    explorer.controls["channel_dim"].value = 1  # as the dropdown does
    assert explorer.controls["case"].value == "pos_weight_channel_dim"
    explorer.set(shape="2, 3, 1, 1")
    assert explorer.values["case"] == CUSTOM
    # Typed values are 1, 2, ... in memory order.
    assert explorer.operand_tensor.flatten().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert explorer.readouts["mean_c2"] == pytest.approx(4.5)


def test_explicit_controls_at_construction_win_over_the_default_case():
    explorer = BroadcastExplorer(shape="C, 1, 1", operand="pos_weight")
    assert explorer.values["case"] == "pos_weight_view"
    assert explorer.values["shape"] == "C, 1, 1"


@pytest.mark.parametrize("text", ["not a shape", "N, N, N, N, N, N, N", "1, 2, 3, 8, 10, 1"])
def test_unreadable_or_too_large_shapes_are_reported_not_raised(text, assert_plots_finite):
    explorer = BroadcastExplorer()
    explorer.set(shape=text)
    explorer.render()
    assert_plots_finite(explorer)
    if explorer.reading is None:
        assert explorer.shape_error and "cannot read the shape" in explorer.readout_view.value
        assert explorer.readouts == {}
    else:
        assert not explorer.readouts["bceweights_accepts"] and not explorer.readouts["pytorch_runs"]


def test_blitted_frames_equal_full_draws_broadcast():
    explorer = BroadcastExplorer()
    canvas = explorer.figure.canvas
    explorer.render()
    for change in [dict(case="pos_weight_view"), dict(case="mask"), dict(input=SQUARE), dict(case="pos_weight_vector")]:
        explorer.set(**change)
        explorer.render()
        blitted = np.asarray(canvas.buffer_rgba()).copy()
        canvas.draw()
        np.testing.assert_array_equal(blitted, np.asarray(canvas.buffer_rgba()), err_msg=str(change))


# --------------------------------------------------------------------------------------------------
# ReductionExplorer


@pytest.mark.parametrize("side, foreground", [(8, 0.0), (8, 1.0), (64, 0.05), (33, 0.5)])
def test_disk_target_has_exactly_round_f_n_foreground_pixels(side, foreground):
    target = disk_target(side, foreground)
    assert target.shape == (side, side)
    assert int(target.sum()) == round(foreground * side * side)
    assert set(target.unique().tolist()) <= {0.0, 1.0}


REDUCTION_SETTINGS = [
    dict(foreground=0.05, weight_fg=1.0, weight_bg=1.0, side=64),
    dict(foreground=0.02, weight_fg=50.0, weight_bg=1.0, side=128),
    dict(foreground=0.0, weight_fg=100.0, weight_bg=0.01, side=8),
    dict(foreground=1.0, weight_fg=0.01, weight_bg=100.0, side=256),
    dict(foreground=0.5, weight_fg=3.0, weight_bg=0.5, side=40),
]


@pytest.mark.parametrize("values", REDUCTION_SETTINGS)
def test_reduction_readouts_equal_closed_forms(values):
    explorer = ReductionExplorer()
    explorer.set(**values)
    n = values["side"] ** 2
    k = round(values["foreground"] * n)
    assert explorer.readouts["pixels"] == n and explorer.readouts["foreground_pixels"] == k
    expected = closed_form_numbers(n, k, values["weight_fg"], values["weight_bg"])
    for name, value in expected.items():
        assert explorer.readouts[name] == pytest.approx(value, rel=1e-10), name
    for reduction in REDUCTIONS:
        assert explorer.readouts[f"lr_factor_{reduction}"] == pytest.approx(
            expected[f"grad_{reduction}"] / expected["grad_unweighted"], rel=1e-10
        )
        assert explorer._bars["loss", reduction].get_height() == explorer.readouts[f"loss_{reduction}"]
        assert explorer._bars["grad", reduction].get_height() == explorer.readouts[f"grad_{reduction}"]


def test_closed_forms_match_an_independent_pytorch_computation():
    side, foreground, w_fg, w_bg = 16, 0.25, 4.0, 0.5
    y = disk_target(side, foreground)
    x = torch.where(y > 0.5, FOREGROUND_LOGIT, BACKGROUND_LOGIT).double().requires_grad_(True)
    w = w_fg * y + w_bg * (1 - y)
    loss = F.binary_cross_entropy_with_logits(x, y, weight=w, reduction="mean")
    (gradient,) = torch.autograd.grad(loss, x)
    expected = closed_form_numbers(side * side, int(y.sum()), w_fg, w_bg)
    assert float(loss.detach()) == pytest.approx(expected["loss_mean"], rel=1e-12)
    assert float(gradient.abs().sum()) == pytest.approx(expected["grad_mean"], rel=1e-12)


def test_scaling_every_weight_scales_mean_and_sum_but_not_weighted_mean():
    explorer = ReductionExplorer(foreground=0.1, weight_fg=2.0, weight_bg=0.5)
    before = dict(explorer.readouts)
    explorer.set(weight_fg=20.0, weight_bg=5.0)  # both x 10
    for name in ("loss_mean", "grad_mean", "loss_sum", "grad_sum"):
        assert explorer.readouts[name] == pytest.approx(10 * before[name], rel=1e-12)
    for name in ("loss_weighted_mean", "grad_weighted_mean"):
        assert explorer.readouts[name] == pytest.approx(before[name], rel=1e-12)


def test_a_larger_image_scales_sum_but_not_mean():
    explorer = ReductionExplorer(foreground=0.25, side=32, weight_fg=5.0)
    before = dict(explorer.readouts)
    explorer.set(side=64)  # 4x the pixels, exactly 4x the foreground pixels
    assert explorer.readouts["foreground_pixels"] == 4 * before["foreground_pixels"]
    for name in ("loss_sum", "grad_sum"):
        assert explorer.readouts[name] == pytest.approx(4 * before[name], rel=1e-12)
    for name in ("loss_mean", "grad_mean", "loss_weighted_mean", "grad_weighted_mean"):
        assert explorer.readouts[name] == pytest.approx(before[name], rel=1e-12)


def test_mean_divides_by_the_number_of_elements_not_the_sum_of_weights():
    explorer = ReductionExplorer(foreground=0.02, weight_fg=50.0, side=128)
    ratio = explorer.readouts["loss_mean"] / explorer.readouts["loss_weighted_mean"]
    assert ratio == pytest.approx(explorer.readouts["weight_sum"] / explorer.readouts["pixels"], rel=1e-12)


# --------------------------------------------------------------------------------------------------
# StabilityExplorer


def exact(x: float, y: float) -> tuple[float, float]:
    """softplus form of the loss and sigmoid(x) - y, written independently of the module."""
    loss = (1 - y) * x + np.logaddexp(0.0, -x)
    return float(loss), float(1 / (1 + np.exp(-x)) - y)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("target", [0.0, 1.0])
@pytest.mark.parametrize("logit", [-100.0, -30.0, -3.0, 0.0, 2.5, 12.0, 60.0, 100.0])
def test_logits_form_is_right_everywhere_in_every_dtype(dtype, target, logit):
    explorer = StabilityExplorer(dtype=dtype, target=target, logit=logit)
    loss, gradient = explorer.probe["logits"]
    exact_loss, exact_gradient = exact(logit, target)
    tolerance = {"float64": 1e-12, "float32": 1e-6, "bfloat16": 8e-3, "float16": 1e-3}[dtype]
    assert loss == pytest.approx(exact_loss, rel=tolerance, abs=tolerance)
    assert gradient == pytest.approx(exact_gradient, abs=tolerance)
    assert explorer.probe["exact"] == pytest.approx((exact_loss, exact_gradient), rel=1e-12, abs=1e-300)
    assert explorer.readouts["wrong_gradients_logits"] == 0.0


def test_sigmoid_then_bceloss_clamps_the_loss_and_loses_the_gradient_in_float32():
    explorer = StabilityExplorer(dtype="float32", target=0.0, logit=20.0)
    assert explorer.probe["sigmoid_bce"] == (100.0, 0.0)  # log(1 - 1) clamped at -100; gradient 0
    assert explorer.probe["logits"] == pytest.approx(exact(20.0, 0.0), rel=1e-6)
    assert explorer.readouts["one_minus_sigmoid"] == 0.0
    assert "vanished" in explorer.readout_view.value and "clamp at 100" in explorer.readout_view.value
    loss, gradient = explorer.probe["by_hand"]
    assert loss == math.inf and math.isnan(gradient)


def test_sigmoid_then_bceloss_gives_nan_gradients_in_half_precision():
    explorer = StabilityExplorer(dtype="float16", target=0.0, logit=10.0)
    loss, gradient = explorer.probe["sigmoid_bce"]
    assert loss == 100.0 and math.isnan(gradient)
    assert "NaN" in explorer.readout_view.value
    # PyTorch itself, independently of the explorer:
    x = torch.tensor([10.0], dtype=torch.float16, requires_grad=True)
    F.binary_cross_entropy(torch.sigmoid(x), torch.zeros_like(x)).backward()
    assert torch.isnan(x.grad).all()


def test_by_hand_gives_nan_for_a_confidently_right_element():
    explorer = StabilityExplorer(dtype="float32", target=1.0, logit=30.0)
    loss, gradient = explorer.probe["by_hand"]
    assert math.isnan(loss) and math.isnan(gradient)  # 0 * log(0) = 0 * -inf
    assert explorer.probe["sigmoid_bce"][0] == 0.0


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_saturation_logit_is_where_sigmoid_first_rounds_to_one(dtype):
    x = saturation_logit(dtype)
    assert torch.sigmoid(torch.tensor(x, dtype=torch.float64).to(DTYPES[dtype])) == 1
    assert torch.sigmoid(torch.tensor(x - 0.01, dtype=torch.float64).to(DTYPES[dtype])) < 1
    assert {"float16": 8.32, "float32": 16.64, "float64": 36.74}.get(dtype, x) == pytest.approx(x, abs=0.01)


@pytest.mark.parametrize("form", list(FORMS))
def test_loss_and_gradient_computes_in_the_requested_dtype(form):
    logits = torch.linspace(-5.0, 5.0, 11, dtype=torch.float64)
    for dtype in DTYPES.values():
        loss, gradient = loss_and_gradient(form, logits, 1.0, dtype)
        expected = [exact(float(x), 1.0) for x in logits]
        eps = torch.finfo(dtype).eps
        np.testing.assert_allclose(loss, [e[0] for e in expected], rtol=8 * eps, atol=8 * eps)
        np.testing.assert_allclose(gradient, [e[1] for e in expected], rtol=8 * eps, atol=8 * eps)


def test_non_finite_points_become_markers_on_the_top_edge(assert_plots_finite):
    explorer = StabilityExplorer(dtype="float16", target=0.0, logit=10.0)
    markers = explorer._bad["grad", "sigmoid_bce"]
    xs = np.asarray(markers.get_xdata())
    assert 0 < xs.size <= MAX_MARKERS
    assert (np.asarray(markers.get_ydata()) > 1.0).all()  # above every gradient (|gradient| <= 1)
    assert (np.abs(xs) > 8.0).all()  # only where float16's sigmoid has saturated (or underflowed)
    assert np.asarray(explorer._bad["loss", "logits"].get_xdata()).size == 0
    assert_plots_finite(explorer)


def test_print_probe_rounds_and_names_inf_and_nan(capsys):
    explorer = StabilityExplorer(dtype="float16", target=0.0, logit=10.0)
    explorer.print_probe()
    assert capsys.readouterr().out.splitlines() == [
        "exact        loss = 10        gradient = 1",
        "logits       loss = 10        gradient = 1",
        "sigmoid_bce  loss = 100       gradient = nan",
        "by_hand      loss = inf       gradient = nan",
    ]


# --------------------------------------------------------------------------------------------------
# All three: discovered, finite and silent at the extremes of every control


def test_the_three_explorers_are_discovered_by_the_benchmark():
    found = explorer_classes()
    for cls in MY_EXPLORERS:
        assert cls in found


#: Values typed into BroadcastExplorer's shape box at the extremes test.
SHAPE_TEXTS = ("", "N, C", "3, 1, 1", "(", "9, 9, 9, 9, 9, 9")


@pytest.mark.parametrize("cls", MY_EXPLORERS, ids=lambda cls: cls.__name__)
def test_extremes_are_finite_and_nothing_is_written(cls, capfd, control_extremes, assert_plots_finite):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explorer = cls.example()
        for name, control in explorer.controls.items():
            for value in control_extremes(control, SHAPE_TEXTS):
                explorer.set(**{name: value})
                explorer.render()
                assert_plots_finite(explorer)
                for readout, number in explorer.readouts.items():
                    assert math.isfinite(float(number)), f"{readout} at {name}={value!r}"
        for change in explorer.benchmark_changes():
            explorer.set(**change)
        explorer._repr_mimebundle_()
        explorer.set(**explorer.benchmark_changes()[0])  # after display: the fallback view refreshes
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
