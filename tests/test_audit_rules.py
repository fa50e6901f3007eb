"""Every rule of ``bw.audit``: a true case, and near misses (the correct idioms) that must stay clean."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bceweights as bw
from bceweights.audit import RULES


def rules_of(fn) -> list[str]:
    """Run ``fn()`` under audit; the ids of the rules that fired."""
    with bw.audit() as report:
        fn()
    assert report.calls >= 1, "the audit saw no loss call"
    return [f.rule for f in report.findings]


def logits(*shape: int, grad: bool = True) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0), requires_grad=grad)


def binary(*shape: int, share: float = 0.3) -> torch.Tensor:
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(1)) < share).float()


def test_the_registry_has_the_issue_rule_ids():
    assert {"misaligned-operand", "per-sample-pos-weight", "double-sigmoid", "sigmoid-then-bce",
            "target-out-of-range", "diluted-mean"} <= set(RULES)


# --------------------------------------------------------------------------------------------------
# misaligned-operand


@pytest.mark.parametrize("call", [
    # W == C: a per-channel pos_weight of length C lines up with W, silently (W != C raises: pytorch#27936)
    lambda x, y: F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor([1.0, 30.0, 6.0])),
    lambda x, y: nn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 30.0, 6.0]))(x, y),
    lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=torch.tensor([1.0, 2.0, 3.0])),
    # a mask (N, H, W) without its channel axis, N == C: pairs sample n's mask with channel n
    lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=torch.rand(3, 5, 3)),
    lambda x, y: nn.BCELoss(weight=torch.rand(3, 5, 3))(torch.rand(3, 3, 5, 3), y),
    lambda x, y: torch.binary_cross_entropy_with_logits(x, y, torch.tensor([1.0, 2.0, 3.0])),
], ids=["pos_weight-W==C", "module-W==C", "weight-W==C", "mask-N==C", "BCELoss-mask", "builtin"])
def test_misaligned_operand_fires_on_the_silent_traps(call):
    x, y = logits(3, 3, 5, 3), binary(3, 3, 5, 3)  # N == C == W == 3
    assert "misaligned-operand" in rules_of(lambda: call(x, y))


def test_misaligned_operand_fires_on_per_sample_weight_on_a_4d_input():
    x, y = logits(4, 2, 3, 4), binary(4, 2, 3, 4)  # (N,) with N == W
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, weight=torch.rand(4))) == ["misaligned-operand"]


def test_misaligned_operand_message_says_given_why_and_fix():
    x, y = logits(2, 4, 4, 4), binary(2, 4, 4, 4)
    with bw.audit() as report:
        F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    message = report.findings[0].message
    assert message.startswith("pos_weight has shape (4,) but the input has shape (2, 4, 4, 4)")
    assert "pairing pos_weight with W=4" in message and "one value per channel" in message
    assert "Write instead" in message and "pos_weight=pos_weight.view(4, 1, 1)" in message


@pytest.mark.parametrize("operands", [
    {"pos_weight": torch.tensor([1.0, 30.0, 6.0]).view(3, 1, 1)},    # (C, 1, 1) per channel
    {"weight": torch.rand(3, 1, 5, 3)},                               # (N, 1, H, W) mask
    {"pos_weight": torch.tensor([4.0])},                               # one value for every output
    {"weight": torch.rand(3, 3, 5, 3)},                                # the full shape
    {"weight": torch.rand(5, 3)},                                      # one map (H, W) shared by the batch
    {"pos_weight": torch.tensor([1.0, 30.0, 6.0]).view(1, 3, 1, 1)},
], ids=["C11", "N1HW", "one-value", "full", "HW", "1C11"])
def test_misaligned_operand_leaves_the_correct_idioms_alone(operands):
    x, y = logits(3, 3, 5, 3), binary(3, 3, 5, 3)
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, **operands)) == []


def test_per_class_vector_on_n_by_c_is_clean_even_when_n_equals_c():
    x, y = logits(3, 3), binary(3, 3)
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor([1.0, 2.0, 3.0]))) == []
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, weight=torch.tensor([1.0, 2.0, 3.0]))) == []


def test_operands_pytorch_refuses_are_left_to_pytorch():
    x, y = logits(2, 3, 4, 5), binary(2, 3, 4, 5)
    with bw.audit() as report, pytest.raises(RuntimeError):
        F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor([1.0, 30.0, 6.0]))
    assert report.calls == 1 and report.clean


# --------------------------------------------------------------------------------------------------
# per-sample-pos-weight


def test_label_indexed_class_weights_as_pos_weight_fire():
    labels = binary(16, 1, share=0.2)
    class_weights = torch.tensor([0.1, 0.9])
    pos_weight = class_weights[labels.view(-1).long()].view_as(labels)  # lesson 09, section 4
    with bw.audit() as report:
        nn.BCEWithLogitsLoss(pos_weight=pos_weight)(logits(16, 1), labels)
    assert report.rules == ["per-sample-pos-weight"]
    message = report.findings[0].message
    assert "follows the labels" in message and "0.9 on positives" in message
    assert "pos_weight=torch.tensor([9.0])" in message and "weight=pos_weight" in message


def test_label_indexed_pos_weight_on_1d_logits_fires():
    labels = binary(16, share=0.2)
    pos_weight = torch.tensor([0.1, 0.9])[labels.long()]
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(logits(16), labels, pos_weight=pos_weight)) == [
        "per-sample-pos-weight"
    ]


def test_repeated_pos_weight_fires_and_suggests_one_row():
    x, y = logits(8, 3), binary(8, 3)
    with bw.audit() as report:
        F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor([1.0, 30.0, 6.0]).repeat(8, 1))
    assert report.rules == ["per-sample-pos-weight"]
    assert "pos_weight=torch.tensor([1.0, 30.0, 6.0])" in report.findings[0].message


def test_varying_per_sample_pos_weight_on_4d_is_left_alone():
    # a positive weight per sample that does not follow the labels: legitimate per PyTorch's documentation
    x, y = logits(4, 2, 3, 3), binary(4, 2, 3, 3)
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.rand(4, 1, 1, 1) + 1)) == []


@pytest.mark.parametrize("pos_weight", [
    torch.tensor([3.0]), torch.tensor([1.0, 30.0, 6.0]), torch.rand(1, 3) + 1, torch.rand(3) + 1,
], ids=["one", "per-class", "1C", "random-per-class"])
def test_per_channel_pos_weight_is_not_per_sample(pos_weight):
    x, y = logits(3, 3), binary(3, 3)  # N == C: (C,) still lines up with C
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight)) == []


def test_a_1d_pos_weight_that_ignores_the_labels_is_not_flagged():
    # (C,) logits of one sample with a per-class pos_weight: nothing ties it to the labels
    x, y = logits(5), binary(5, share=0.5)
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.arange(1.0, 6.0))) == []


def test_batch_of_one_is_not_per_sample():
    x, y = logits(1, 3), binary(1, 3)
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.rand(1, 3) + 1)) == []


# --------------------------------------------------------------------------------------------------
# double-sigmoid


def test_sigmoid_before_with_logits_loss_is_read_from_the_graph():
    model = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
    x, y = torch.randn(32, 4), binary(32, 1)
    with bw.audit() as report:
        nn.BCEWithLogitsLoss()(model(x), y)
    assert report.rules == ["double-sigmoid"]
    assert "SigmoidBackward0" in report.findings[0].message and "0.7311" in report.findings[0].message


def test_double_sigmoid_through_views():
    x, y = logits(8, 1, 4, 4), binary(8, 4, 4)
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(torch.sigmoid(x).squeeze(1), y)) == ["double-sigmoid"]


def test_double_sigmoid_without_graph_seen_by_the_audit():
    x, y = logits(8, 3, grad=False), binary(8, 3)
    with torch.no_grad():
        assert rules_of(lambda: F.binary_cross_entropy_with_logits(x.sigmoid(), y)) == ["double-sigmoid"]


def test_double_sigmoid_value_backup_only_without_graph():
    probabilities = torch.sigmoid(4 * logits(20, 10, grad=False))  # made before the audit: no trace
    y = binary(20, 10)
    with bw.audit() as report:
        F.binary_cross_entropy_with_logits(probabilities, y)
    assert report.rules == ["double-sigmoid"] and "read from the values" in report.findings[0].message
    # the same values with a graph that is not a sigmoid's: the graph wins, no value guess
    with_graph = probabilities.clone().requires_grad_(True) * 1.0
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(with_graph, y)) == []


@pytest.mark.parametrize("make", [
    lambda x: x.detach(),                          # logits without a graph (evaluation)
    lambda x: x.detach().abs().clamp(max=0.4),     # small non-negative logits without a graph
    lambda x: x * 1.0,                             # logits with a graph
    lambda x: torch.softmax(x, dim=1),             # a graph without a sigmoid: no guess from the values
], ids=["logits", "small-logits", "graph", "softmax-graph"])
def test_double_sigmoid_near_misses(make):
    x, y = logits(20, 10), binary(20, 10)
    pred = make(x)
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(pred, y)) == []


def test_sigmoid_for_metrics_beside_the_loss_is_clean():
    x, y = logits(8, 3), binary(8, 3)

    def step():
        _ = (torch.sigmoid(x) > 0.5).float().mean()
        F.binary_cross_entropy_with_logits(x, y)

    assert rules_of(step) == []


# --------------------------------------------------------------------------------------------------
# sigmoid-then-bce


@pytest.mark.parametrize("call", [
    lambda x, y: nn.BCELoss()(nn.Sigmoid()(x), y),
    lambda x, y: F.binary_cross_entropy(torch.sigmoid(x).clamp(1e-7, 1 - 1e-7), y),
    lambda x, y: F.binary_cross_entropy(F.sigmoid(x), y),
], ids=["module", "clamped", "F.sigmoid"])
def test_sigmoid_then_bce_fires(call):
    x, y = logits(8, 3), binary(8, 3)
    assert rules_of(lambda: call(x, y)) == ["sigmoid-then-bce"]


def test_sigmoid_then_bce_suggests_the_logits_form():
    x, y = logits(8, 3), binary(8, 3)
    with bw.audit() as report:
        F.binary_cross_entropy(torch.sigmoid(x), y)
    message = report.findings[0].message
    assert "F.binary_cross_entropy_with_logits(logits, target)" in message and "16.6" in message


def test_bce_on_probabilities_that_are_not_a_sigmoid_is_clean():
    x, y = logits(8, 3), binary(8, 3)
    assert rules_of(lambda: F.binary_cross_entropy(torch.softmax(x, 1), y)) == []
    assert rules_of(lambda: F.binary_cross_entropy(torch.rand(8, 3), y)) == []


# --------------------------------------------------------------------------------------------------
# target-out-of-range


def test_void_label_255_fires_with_its_share():
    x, target = logits(2, 1, 4, 4), binary(2, 1, 4, 4)
    target[0, 0, 0, :2] = 255
    with bw.audit() as report:
        F.binary_cross_entropy_with_logits(x, target)
    assert report.rules == ["target-out-of-range"]
    message = report.findings[0].message
    assert "255 on 2 of 32 elements (6.25%)" in message and "weight=(target != 255)" in message
    assert "ignore=target == 255" in message and "The data suggests (1): 1 already marks the positives" in message


@pytest.mark.parametrize("bad", [-1.0, float("nan"), 1.5])
def test_other_out_of_range_targets_fire(bad):
    x, target = logits(4, 3), binary(4, 3)
    target[1, 1] = bad
    assert rules_of(lambda: nn.BCEWithLogitsLoss()(x, target)) == ["target-out-of-range"]


def test_soft_targets_and_the_ends_are_in_range():
    x = logits(4, 3)
    soft = torch.tensor([[0.0, 1.0, 0.5]] * 4)
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, soft)) == []
    assert rules_of(lambda: F.binary_cross_entropy(torch.rand(4, 3), soft)) == []


# --------------------------------------------------------------------------------------------------
# diluted-mean


def test_mostly_zero_mask_under_mean_fires_with_the_share():
    x, y = logits(2, 1, 4, 4), binary(2, 1, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, :2, :2] = 1  # kept: 8 of 32
    with bw.audit() as report:
        F.binary_cross_entropy_with_logits(x, y, weight=mask)
    assert report.rules == ["diluted-mean"]
    message = report.findings[0].message
    assert "0 on 75.0% of the elements (24 of 32)" in message and "4x smaller" in message
    assert 'reduction="weighted_mean"' in message and "ignore=weight == 0" in message


def test_diluted_mean_counts_a_broadcast_mask_over_the_channels():
    x, y = logits(2, 3, 4, 4), binary(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, 0] = 1
    with bw.audit() as report:
        F.binary_cross_entropy_with_logits(x, y, weight=mask)
    assert "(72 of 96)" in report.findings[0].message


@pytest.mark.parametrize("reduction, zero_share", [("mean", 0.4), ("sum", 0.9), ("none", 0.9)])
def test_diluted_mean_near_misses(reduction, zero_share):
    x, y = logits(10, 10), binary(10, 10)
    weight = torch.ones(10, 10)
    weight.view(-1)[: int(100 * zero_share)] = 0
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, weight=weight, reduction=reduction)) == []


def test_legacy_size_average_false_is_a_sum():
    x, y = logits(10, 10), binary(10, 10)
    weight = torch.zeros(10, 10)
    with pytest.warns(UserWarning):
        criterion = nn.BCEWithLogitsLoss(weight=weight, size_average=False)
    assert rules_of(lambda: criterion(x, y)) == []


# --------------------------------------------------------------------------------------------------
# invalid-weight-values


@pytest.mark.parametrize("operand", ["weight", "pos_weight"])
@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_negative_nan_or_infinite_weights_fire(operand, bad):
    x, y = logits(4, 3), binary(4, 3)
    values = torch.tensor([1.0, bad, 2.0])
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, **{operand: values})) == ["invalid-weight-values"]


def test_zero_weights_are_valid():
    x, y = logits(4, 3), binary(4, 3)
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, y, weight=torch.tensor([0.0, 1.0, 2.0]))) == []


def test_void_labels_under_a_zero_weight_are_left_alone():
    # RCF / HED style: label 2 marks uncertain pixels, and the weight is 0 there
    x, target = logits(2, 1, 4, 4), binary(2, 1, 4, 4)
    target[0, 0, 0] = 2.0
    weight = (target != 2).float() * 1.5
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, target, weight=weight, reduction="sum")) == []
    weight[0, 0, 0, 0] = 1.0  # one void pixel with a weight: reported
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, target, weight=weight, reduction="sum")) == [
        "target-out-of-range"
    ]
    nan_target = target.clone()
    nan_target[0, 0, 0] = float("nan")  # NaN times a weight of 0 is still NaN
    zero_there = (target != 2).float()
    assert rules_of(lambda: F.binary_cross_entropy_with_logits(x, nan_target, weight=zero_there, reduction="sum")) == [
        "target-out-of-range"
    ]
