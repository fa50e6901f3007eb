"""Issue 23's verdicts and fixes: each case as the issue describes it, its near misses, and every fix its
message proposes, *applied*: the fix line is taken from the message, run on the case's tensors under
``bw.audit()``, and must come back clean with the loss the user meant."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bceweights as bw


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def fixes_of(message: str) -> list[str]:
    """The fix lines of a message (after "Write ...:"), without their comments."""
    lines = message.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Write"))
    return [line[4:].split("   # ")[0] for line in lines[start + 1:] if line.startswith("    ")]


def apply_fix(fix: str, names: dict) -> torch.Tensor:
    """Evaluate one fix line on ``names``; a module (``nn.BCEWithLogitsLoss(...)``) is called on input, target."""
    namespace = {"torch": torch, "F": F, "nn": nn, "bw": bw, **names}
    value = eval(fix, namespace)  # noqa: S307 (the audit's own fix line, on test tensors)
    if isinstance(value, nn.Module):
        value = value(names["input"], names["target"])
    return value


@dataclass
class Case:
    """A buggy call, the names its fix lines use, and per fix the loss the user meant (None: not checked here)."""

    call: Callable[[], torch.Tensor]
    rule: str
    severity: str
    names: dict
    meant: list
    phrases: list[str] = field(default_factory=list)


def audited(fn):
    """Run ``fn`` under audit; its value, or None when PyTorch raised after the audit read the call."""
    value = None
    with bw.audit() as report:
        try:
            value = fn()
        except RuntimeError:  # F.binary_cross_entropy refuses targets outside [0, 1] itself
            pass
    return report, value


def check_case(case: Case) -> None:
    report, _ = audited(case.call)
    assert case.rule in report.rules, str(report)
    finding = next(f for f in report.findings if f.rule == case.rule)
    assert finding.severity == case.severity
    for phrase in case.phrases:
        assert phrase in finding.message, finding.message
    fixes = fixes_of(finding.message)
    assert len(fixes) == len(case.meant), fixes
    for fix, meant in zip(fixes, case.meant):
        with bw.audit() as after:
            value = apply_fix(fix, case.names)
        assert after.clean, f"{fix}\n{after}"
        if meant is not None:
            torch.testing.assert_close(value.double(), torch.as_tensor(meant).double(), rtol=1e-5, atol=1e-6,
                                       msg=lambda m: f"{fix}: {m}")


def per_element(x, y, **kwargs):
    return F.binary_cross_entropy_with_logits(x, y, reduction="none", **kwargs)


# --------------------------------------------------------------------------------------------------
# Verdicts: masking by multiplication (MONAI-style)


def monai_case(with_logits: bool = True) -> Case:
    x = torch.randn(2, 1, 8, 8, generator=gen(0), dtype=torch.float64)
    y = (torch.rand(2, 1, 8, 8, generator=gen(1), dtype=torch.float64) < 0.3).double()
    mask = (torch.rand(2, 1, 8, 8, generator=gen(2), dtype=torch.float64) < 0.2).double()
    kept_mean = (per_element(x, y) * mask).sum() / mask.sum()
    if with_logits:
        return Case(
            lambda: nn.BCEWithLogitsLoss()(x * mask, y * mask), "diluted-mean", "warning",
            {"logits": x, "target": y, "mask": mask},
            [kept_mean, kept_mean],
            ["look multiplied by a mask", "log 2 = 0.6931", "design choice"],
        )
    p = torch.sigmoid(x)  # no graph: only the mask is in question here
    return Case(
        lambda: F.binary_cross_entropy(p * mask, y * mask), "diluted-mean", "warning",
        {"probabilities": p, "target": y, "mask": mask},
        [(F.binary_cross_entropy(p, y, reduction="none") * mask).sum() / mask.sum()],
        ["look multiplied by a mask", "costs 0"],
    )


@pytest.mark.parametrize("with_logits", [True, False], ids=["BCEWithLogitsLoss", "binary_cross_entropy"])
def test_masking_by_multiplication_is_reported_and_its_fixes_are_right(with_logits):
    check_case(monai_case(with_logits))


def test_the_log2_floor_in_the_message_is_what_the_masked_elements_add():
    case = monai_case()
    report, value = audited(case.call)
    masked = float((case.names["mask"] == 0).double().mean())
    floor = math.log(2) * masked
    assert f"= {floor:.4g} to this loss" in report.findings[0].message
    weight_mask = F.binary_cross_entropy_with_logits(case.names["logits"], case.names["target"], weight=case.names["mask"])
    assert value.item() == pytest.approx(weight_mask.item() + floor, rel=1e-9)


def test_masking_by_multiplication_fix_keeps_the_same_gradient_without_the_floor():
    x0 = torch.randn(2, 1, 8, 8, generator=gen(0), dtype=torch.float64)
    y = (torch.rand(2, 1, 8, 8, generator=gen(1), dtype=torch.float64) < 0.3).double()
    mask = (torch.rand(2, 1, 8, 8, generator=gen(2), dtype=torch.float64) < 0.2).double()
    grads = []
    for loss_of in (lambda x: nn.BCEWithLogitsLoss()(x * mask, y * mask),
                    lambda x: F.binary_cross_entropy_with_logits(x, y, weight=mask)):
        x = x0.clone().requires_grad_(True)
        loss_of(x).backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("make", [
    lambda x, y, m: (torch.relu(x), y),                  # a ReLU output: zeros where positives are too
    lambda x, y, m: (x * (torch.rand_like(x) < 0.7), y),  # zeroed on 30 % only
    lambda x, y, m: (torch.zeros_like(x), y * m),        # every logit 0 (a zero-initialised head)
], ids=["relu", "few-zeros", "all-zero"])
def test_masking_by_multiplication_near_misses(make):
    x = torch.randn(2, 1, 8, 8, generator=gen(0))
    y = (torch.rand(2, 1, 8, 8, generator=gen(1)) < 0.3).float()
    mask = (torch.rand(2, 1, 8, 8, generator=gen(2)) < 0.2).float()
    input, target = make(x, y, mask)
    report, _ = audited(lambda: F.binary_cross_entropy_with_logits(input, target))
    assert "diluted-mean" not in report.rules, str(report)


def test_masking_by_multiplication_with_a_sum_is_not_a_mean():
    x, y = torch.randn(64, generator=gen(0)), (torch.rand(64, generator=gen(1)) < 0.3).float()
    mask = (torch.rand(64, generator=gen(2)) < 0.2).float()
    report, _ = audited(lambda: F.binary_cross_entropy_with_logits(x * mask, y * mask, reduction="sum"))
    assert report.clean


def test_a_weight_mask_under_mean_is_a_warning_with_the_lessons_account():
    x, y = torch.randn(2, 1, 4, 4, generator=gen(0)), (torch.rand(2, 1, 4, 4, generator=gen(1)) < 0.3).float()
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, :2, :2] = 1
    meant = (per_element(x, y) * mask).sum() / mask.sum()
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, y, weight=mask), "diluted-mean", "warning",
                    {"input": x, "target": y, "weight": mask}, [meant, meant, meant],
                    ["design choice, not necessarily a bug", "same step", "4x smaller"]))


# --------------------------------------------------------------------------------------------------
# Verdicts: per-element pos_weight


@pytest.mark.parametrize("shape", [(8, 3), (3, 3), (4, 2, 3, 3), (4, 1, 1, 1)], ids=["BC", "N==C", "full-4d", "N111"])
def test_an_intentional_per_element_pos_weight_is_not_flagged(shape):
    full = (8, 3) if shape == (8, 3) else (3, 3) if shape == (3, 3) else (4, 2, 3, 3)
    x, y = torch.randn(full, generator=gen(0)), (torch.rand(full, generator=gen(1)) < 0.3).float()
    pos_weight = torch.rand(shape, generator=gen(2)) * 4 + 0.5
    report, _ = audited(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight))
    assert report.clean, str(report)


def test_a_repeated_pos_weight_is_a_warning_and_one_row_gives_the_same_loss():
    x, y = torch.randn(8, 3, generator=gen(0)), (torch.rand(8, 3, generator=gen(1)) < 0.3).float()
    repeated = torch.tensor([1.0, 30.0, 6.0]).repeat(8, 1)
    meant = F.binary_cross_entropy_with_logits(x, y, pos_weight=repeated)
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=repeated), "per-sample-pos-weight",
                    "warning", {"input": x, "target": y, "pos_weight": repeated}, [meant]))


def test_a_repeated_pos_weight_on_images_proposes_the_channel_layout():
    x, y = torch.randn(4, 3, 5, 6, generator=gen(0)), (torch.rand(4, 3, 5, 6, generator=gen(1)) < 0.3).float()
    repeated = torch.tensor([1.0, 30.0, 6.0]).view(3, 1, 1).repeat(4, 1, 1, 1)
    meant = F.binary_cross_entropy_with_logits(x, y, pos_weight=repeated)
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=repeated), "per-sample-pos-weight",
                    "warning", {"input": x, "target": y, "pos_weight": repeated}, [meant], [".view(3, 1, 1)"]))


def test_label_indexed_pos_weight_is_an_error_and_both_fixes_give_the_class_weighting():
    x, y = torch.randn(16, 1, generator=gen(0)), (torch.rand(16, 1, generator=gen(1)) < 0.2).float()
    pos_weight = torch.tensor([0.1, 0.9])[y.long().view(-1)].view_as(y)
    class_weighted = (per_element(x, y) * torch.where(y == 1, 0.9, 0.1)).mean()
    check_case(Case(lambda: nn.BCEWithLogitsLoss(pos_weight=pos_weight)(x, y), "per-sample-pos-weight", "error",
                    {"input": x, "target": y, "pos_weight": pos_weight}, [class_weighted, class_weighted / 0.1]))


def test_label_indexed_pos_weight_per_channel_is_an_error():
    x, y = torch.randn(12, 3, generator=gen(0)), (torch.rand(12, 3, generator=gen(1)) < 0.3).float()
    table = torch.tensor([[0.2, 0.8], [0.5, 2.0], [1.0, 3.0]])  # per class: (negative, positive)
    pos_weight = torch.where(y == 1, table[:, 1], table[:, 0])
    class_weighted = (per_element(x, y) * pos_weight).mean()
    ratio = table[:, 1] / table[:, 0]
    as_ratio = F.binary_cross_entropy_with_logits(x, y, pos_weight=ratio)
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight), "per-sample-pos-weight",
                    "error", {"input": x, "target": y, "pos_weight": pos_weight}, [class_weighted, as_ratio]))


# --------------------------------------------------------------------------------------------------
# Verdicts: the graph walk through cat, stack, split


def two_parts():
    a = torch.randn(4, 3, requires_grad=True, generator=gen(0))
    b = torch.randn(4, 2, requires_grad=True, generator=gen(1))
    return a, b, (torch.rand(4, 2, generator=gen(2)) < 0.5).float()


@pytest.mark.parametrize("read", [
    lambda a, b: torch.cat([torch.sigmoid(a), b], dim=1)[:, 3:],
    lambda a, b: torch.cat([torch.sigmoid(a), b], dim=1)[:, -2:],
    lambda a, b: torch.cat([torch.sigmoid(a), b], dim=-1).split([3, 2], dim=1)[1],
    lambda a, b: torch.stack([torch.sigmoid(a[:, :2]), b])[1],
    lambda a, b: torch.stack([torch.sigmoid(a[:, :2]), b]).unbind(0)[1],
    lambda a, b: torch.cat([torch.sigmoid(a), b.detach()], dim=1)[:, 3:],   # the raw part without a graph
    lambda a, b: torch.cat([torch.sigmoid(a), b], dim=1).view(-1)[-8:].view(4, 2),   # unknowable: stay quiet
], ids=["slice", "negative-slice", "split", "stack", "unbind", "no-graph-part", "unknowable"])
def test_a_raw_logit_slice_of_a_cat_with_a_sigmoid_is_not_a_double_sigmoid(read):
    a, b, y = two_parts()
    report, _ = audited(lambda: F.binary_cross_entropy_with_logits(read(a, b), y))
    assert report.clean, str(report)


@pytest.mark.parametrize("read", [
    lambda a, b: torch.cat([a * 2, torch.sigmoid(b)], dim=1)[:, 3:],
    lambda a, b: torch.cat([a * 2, torch.sigmoid(b)], dim=1).chunk(2, dim=1)[1],
    lambda a, b: torch.cat([a * 2, torch.sigmoid(b)], dim=1)[:, 3:].squeeze(),
    lambda a, b: torch.stack([a[:, :2] * 2, torch.sigmoid(b)], dim=2)[:, :, 1],
    lambda a, b: torch.cat([a[:, :2] * 2, torch.sigmoid(b)], dim=0)[4:],
], ids=["slice", "chunk", "squeeze", "stack-select", "cat-dim0"])
def test_a_sigmoid_slice_of_a_cat_that_starts_with_another_op_is_found(read):
    a, b, y = two_parts()
    report, _ = audited(lambda: F.binary_cross_entropy_with_logits(read(a, b), y))
    assert report.rules == ["double-sigmoid"], str(report)
    assert "CatBackward0 (input 1 of 2)" in report.findings[0].message or "StackBackward0 (input 1 of 2)" in \
        report.findings[0].message


def test_a_whole_cat_with_a_sigmoid_part_is_reported_and_an_all_sigmoid_cat_is_reported_when_unknowable():
    a, b, _ = two_parts()
    y5 = (torch.rand(4, 5, generator=gen(3)) < 0.5).float()
    report, _ = audited(lambda: F.binary_cross_entropy_with_logits(torch.cat([torch.sigmoid(a), b], 1), y5))
    assert report.rules == ["double-sigmoid"]
    both = torch.cat([torch.sigmoid(a), torch.sigmoid(b)], 1).view(-1)[:8].view(4, 2)
    report, _ = audited(lambda: F.binary_cross_entropy(both, y5[:, :2]))
    assert report.rules == ["sigmoid-then-bce"]


# --------------------------------------------------------------------------------------------------
# Verdicts: a pos_weight along a spatial axis


def test_a_pos_weight_of_length_w_on_images_is_a_warning_and_its_fixes_run():
    x, y = torch.randn(2, 3, 4, 5, generator=gen(0)), (torch.rand(2, 3, 4, 5, generator=gen(1)) < 0.2).float()
    per_column = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    num_pos = y.sum(dim=(0, 2, 3))
    num_neg = y[:, 0].numel() - num_pos
    per_channel = F.binary_cross_entropy_with_logits(x, y, pos_weight=(num_neg / num_pos).view(3, 1, 1))
    column_weight = (per_element(x, y) * per_column).mean()
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=per_column), "misaligned-operand",
                    "warning", {"input": x, "target": y, "pos_weight": per_column, "num_neg": num_neg,
                                "num_pos": num_pos}, [per_channel, column_weight], ["almost never meant", "W=5"]))


@pytest.mark.parametrize("pos_weight", [torch.full((5,), 3.0), torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)],
                         ids=["all-equal", "per-channel"])
def test_a_pos_weight_along_space_near_misses(pos_weight):
    x, y = torch.randn(2, 3, 4, 5, generator=gen(0)), (torch.rand(2, 3, 4, 5, generator=gen(1)) < 0.2).float()
    report, _ = audited(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight))
    assert report.clean, str(report)


# --------------------------------------------------------------------------------------------------
# Fixes: target-out-of-range with a label format


def label_case(values: tuple[float, ...], with_pos_weight: bool = False) -> tuple[torch.Tensor, torch.Tensor, dict]:
    x = torch.randn(2, 3, 4, 4, generator=gen(0), dtype=torch.float64)
    index = torch.randint(0, len(values), (2, 3, 4, 4), generator=gen(1))
    target = torch.tensor(values, dtype=torch.float64)[index]
    names = {"input": x, "target": target}
    if with_pos_weight:
        names["pos_weight"] = torch.tensor([1.0, 4.0, 2.0], dtype=torch.float64).view(3, 1, 1)
    return x, target, names


def kept_mean(x, target, keep, **kwargs):
    clean = torch.where(keep, target, torch.zeros_like(target))
    return (per_element(x, clean, **kwargs) * keep).sum() / keep.sum()


@pytest.mark.parametrize("with_pos_weight", [False, True], ids=["plain", "pos_weight"])
def test_a_0_255_mask_suggests_dividing_by_255_and_each_reading_is_right(with_pos_weight):
    x, target, names = label_case((0.0, 255.0), with_pos_weight)
    extra = {"pos_weight": names["pos_weight"]} if with_pos_weight else {}
    as_mask = F.binary_cross_entropy_with_logits(x, target / 255, **extra)
    as_void = kept_mean(x, target, target != 255, **extra)
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, target, **extra), "target-out-of-range", "error",
                    names, [as_mask, as_void, as_void],
                    ["Two readings", "The data suggests (1): no element holds 1"]))


def test_0_1_255_suggests_void_and_says_why_not_255():
    x, target, names = label_case((0.0, 1.0, 255.0))
    as_void = kept_mean(x, target, target != 255)
    check_case(Case(lambda: nn.BCEWithLogitsLoss()(x, target), "target-out-of-range", "error", names,
                    [as_void, as_void], ["The data suggests (1): 1 already marks the positives", "0.003922"]))


def test_plus_minus_one_labels_suggest_target_plus_one_over_two():
    x, target, names = label_case((-1.0, 1.0))
    as_labels = F.binary_cross_entropy_with_logits(x, (target + 1) / 2)
    as_void = kept_mean(x, target, target != -1)
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, target), "target-out-of-range", "error", names,
                    [as_labels, as_void, as_void], ["(target + 1) / 2", "no element holds 0"]))


def test_minus_one_zero_one_suggests_void():
    x, target, names = label_case((-1.0, 0.0, 1.0))
    as_void = kept_mean(x, target, target != -1)
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, target), "target-out-of-range", "error", names,
                    [as_void, as_void], ["0 already marks the negatives"]))


def test_other_out_of_range_values_keep_the_void_fixes():
    x, target, names = label_case((0.0, 1.0))
    target = target.clone()
    target[0, 0, 0, :2] = 255
    target[1, 0, 0, 0] = float("nan")
    target[1, 1, 0, 0] = 7.0
    names["target"] = target
    keep = (target >= 0) & (target <= 1)
    as_void = kept_mean(x, target, keep)
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, target), "target-out-of-range", "error", names,
                    [as_void, as_void]))


def test_bce_on_probabilities_gets_only_plain_pytorch_fixes():
    x, target, names = label_case((0.0, 255.0))
    p = torch.sigmoid(x)
    names["input"] = p
    as_mask = F.binary_cross_entropy(p, target / 255)
    keep = target != 255
    as_void = (F.binary_cross_entropy(p, torch.where(keep, target, 0.0), reduction="none") * keep).sum() / keep.sum()
    check_case(Case(lambda: F.binary_cross_entropy(p, target), "target-out-of-range", "error", names,
                    [as_mask, as_void]))


# --------------------------------------------------------------------------------------------------
# Fixes: two sigmoids in a row


def test_sigmoid_of_a_sigmoid_then_bce_walks_back_to_the_logits():
    x = torch.randn(8, 3, generator=gen(0), requires_grad=True)
    y = (torch.rand(8, 3, generator=gen(1)) < 0.3).float()
    meant = F.binary_cross_entropy(torch.sigmoid(x), y)  # one sigmoid: what the code meant
    check_case(Case(lambda: nn.BCELoss()(torch.sigmoid(torch.sigmoid(x)), y), "sigmoid-then-bce", "error",
                    {"logits": x, "target": y}, [meant], ["2 sigmoids in a row", "first sigmoid"]))


def test_sigmoid_of_a_sigmoid_without_a_graph_is_counted_too():
    x = torch.randn(8, 3, generator=gen(0))
    y = (torch.rand(8, 3, generator=gen(1)) < 0.3).float()
    with torch.no_grad():
        report, _ = audited(lambda: F.binary_cross_entropy(torch.sigmoid(torch.sigmoid(x)), y))
    assert report.rules == ["sigmoid-then-bce"] and "2 sigmoids in a row" in report.findings[0].message


def test_a_double_sigmoid_of_two_sigmoids_says_so_and_its_fix_is_right():
    x = torch.randn(8, 3, generator=gen(0), requires_grad=True)
    y = (torch.rand(8, 3, generator=gen(1)) < 0.3).float()
    meant = F.binary_cross_entropy_with_logits(x, y)
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(torch.sigmoid(torch.sigmoid(x)), y), "double-sigmoid",
                    "error", {"logits": x, "target": y}, [meant], ["2 sigmoids in a row"]))


def test_one_sigmoid_then_bce_fix_is_right():
    x = torch.randn(8, 3, generator=gen(0), requires_grad=True)
    y = (torch.rand(8, 3, generator=gen(1)) < 0.3).float()
    meant = F.binary_cross_entropy(torch.sigmoid(x), y)
    check_case(Case(lambda: F.binary_cross_entropy(torch.sigmoid(x), y), "sigmoid-then-bce", "error",
                    {"logits": x, "target": y}, [meant]))


# --------------------------------------------------------------------------------------------------
# Fixes: invalid weight values


def test_an_infinite_batch_ratio_proposes_fixing_the_count_not_zeroing_the_weight():
    x = torch.randn(6, 3, generator=gen(0), dtype=torch.float64)
    y = (torch.rand(6, 3, generator=gen(1), dtype=torch.float64) < torch.tensor([0.5, 0.4, 0.0])).double()
    num_pos = y.sum(0)
    num_neg = y.shape[0] - num_pos
    ratio = num_neg / num_pos  # inf for the label with no positive
    finite = torch.where(num_pos > 0, ratio, torch.full_like(ratio, 123.0))  # any finite value: no positive there
    seen = num_pos > 0
    case = Case(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=ratio), "invalid-weight-values", "error",
                {"input": x, "target": y, "pos_weight": ratio, "num_neg": num_neg, "num_pos": num_pos, "seen": seen},
                [F.binary_cross_entropy_with_logits(x, y, pos_weight=finite),
                 F.binary_cross_entropy_with_logits(x[:, seen], y[:, seen], pos_weight=ratio[seen])],
                ["the opposite of the intent", "clamp_min(1)"])
    check_case(case)
    report, _ = audited(case.call)
    assert "nan_to_num(" not in fixes_of(report.findings[0].message)[0]


def test_an_infinite_weight_from_a_zero_count_proposes_clamping_the_count():
    x, y = torch.randn(6, 3, generator=gen(0)), (torch.rand(6, 3, generator=gen(1)) < 0.3).float()
    count = torch.tensor([4.0, 0.0, 2.0])
    total = count.sum()
    meant = F.binary_cross_entropy_with_logits(x, y, weight=total / count.clamp_min(1))
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, y, weight=total / count), "invalid-weight-values",
                    "error", {"input": x, "target": y, "count": count, "total": total}, [meant]))


def test_a_negative_rounding_slip_is_clamped_to_zero():
    x, y = torch.randn(6, 3, generator=gen(0)), (torch.rand(6, 3, generator=gen(1)) < 0.3).float()
    weight = torch.tensor([1.0, -1e-9, 2.0])
    meant = F.binary_cross_entropy_with_logits(x, y, weight=torch.tensor([1.0, 0.0, 2.0]))
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, y, weight=weight), "invalid-weight-values", "error",
                    {"input": x, "target": y, "weight": weight}, [meant]))


# --------------------------------------------------------------------------------------------------
# Fixes: a 2-class weight on BCELoss (pytorch#5157)


def test_a_two_class_weight_offers_class_weights_and_pos_weight():
    x = torch.randn(4, 2, 2, generator=gen(0), dtype=torch.float64)
    y = (torch.rand(4, 2, 2, generator=gen(1), dtype=torch.float64) < 0.3).double()
    p = torch.sigmoid(x)  # made without a graph: the case is the weight, not the sigmoid
    weight = torch.tensor([0.1, 0.9], dtype=torch.float64)
    class_weighted = (F.binary_cross_entropy(p, y, reduction="none") * torch.where(y == 1, 0.9, 0.1)).mean()
    check_case(Case(lambda: nn.BCELoss(weight=weight)(p, y), "misaligned-operand", "error",
                    {"input": p, "target": y, "weight": weight, "logits": x},
                    [None, class_weighted, class_weighted], ["class weights", "0.1 for the negatives"]))


def test_a_two_class_weight_with_logits_offers_pos_weight_directly():
    x = torch.randn(4, 2, 2, generator=gen(0), dtype=torch.float64)
    y = (torch.rand(4, 2, 2, generator=gen(1), dtype=torch.float64) < 0.3).double()
    weight = torch.tensor([0.1, 0.9], dtype=torch.float64)
    class_weighted = (per_element(x, y) * torch.where(y == 1, 0.9, 0.1)).mean()
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, y, weight=weight), "misaligned-operand", "error",
                    {"input": x, "target": y, "weight": weight}, [None, class_weighted, class_weighted]))


# --------------------------------------------------------------------------------------------------
# Fixes of the shape rules


def test_the_misaligned_fixes_put_the_values_on_the_channels():
    x, y = torch.randn(2, 3, 4, 3, generator=gen(0)), (torch.rand(2, 3, 4, 3, generator=gen(1)) < 0.2).float()
    pos_weight = torch.tensor([1.0, 30.0, 6.0])
    meant = F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight.view(3, 1, 1))
    check_case(Case(lambda: nn.BCEWithLogitsLoss(pos_weight=pos_weight)(x, y), "misaligned-operand", "error",
                    {"input": x, "target": y, "pos_weight": pos_weight}, [meant]))
    mask = (torch.rand(3, 4, 3, generator=gen(2)) < 0.5).float()
    x3, y3 = torch.randn(3, 3, 4, 3, generator=gen(3)), (torch.rand(3, 3, 4, 3, generator=gen(4)) < 0.2).float()
    meant = F.binary_cross_entropy_with_logits(x3, y3, weight=mask.unsqueeze(1))
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x3, y3, weight=mask), "misaligned-operand", "error",
                    {"input": x3, "target": y3, "weight": mask}, [meant]))


def test_the_severities_show_in_the_report():
    x, y = torch.randn(8, 3, generator=gen(0)), (torch.rand(8, 3, generator=gen(1)) < 0.3).float()
    with bw.audit() as report:
        F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor([1.0, 2.0, 3.0]).repeat(8, 1))
    assert report.warnings == report.findings and report.errors == []
    assert "[per-sample-pos-weight, warning]" in str(report)
    assert report.summary().endswith("(per-sample-pos-weight), 1 of them a warning.")


def test_the_double_sigmoid_fix_passes_the_logits():
    x = torch.randn(8, 3, generator=gen(0), requires_grad=True)
    y = (torch.rand(8, 3, generator=gen(1)) < 0.3).float()
    pos_weight = torch.tensor([1.0, 2.0, 3.0])
    meant = F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight)
    check_case(Case(lambda: nn.BCEWithLogitsLoss(pos_weight=pos_weight)(torch.sigmoid(x), y), "double-sigmoid", "error",
                    {"logits": x, "target": y, "pos_weight": pos_weight}, [meant]))


def test_the_per_sample_reading_of_a_misaligned_pos_weight_stays_a_pos_weight():
    x, y = torch.randn(3, 3, 4, 3, generator=gen(0)), (torch.rand(3, 3, 4, 3, generator=gen(1)) < 0.2).float()
    pos_weight = torch.tensor([1.0, 30.0, 6.0])  # N == C == W == 3: per channel, or per sample?
    per_channel = F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight.view(3, 1, 1))
    # per sample, still on the positive term only: pos_weight * y * log(p) + (1 - y) * log(1 - p)
    p = torch.sigmoid(x)
    per_sample = -(pos_weight.view(3, 1, 1, 1) * y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    check_case(Case(lambda: F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight), "misaligned-operand",
                    "error", {"input": x, "target": y, "pos_weight": pos_weight}, [per_channel, per_sample]))


# --------------------------------------------------------------------------------------------------
# several findings on one call: lesson 09, section 2 (a per-image mask, void labels 255, a mean)


def lesson09_void_case() -> dict:
    """Lesson 09's case: logits (3, 3, 16, 16), targets with a column of 255 per image, a (3, 16, 16) 0/1 mask."""
    from bceweights.lessons import data
    from bceweights.lessons.model import TinyUNet

    plates = data.make_plates(3, 16, seed=0)
    images, masks = plates.images.double(), plates.masks.double()
    corners = torch.randint(0, 9, (3, 2), generator=gen(0))
    annotated = torch.zeros(3, 16, 16, dtype=torch.float64)
    target = masks.clone()
    for n, (row, col) in enumerate(corners.tolist()):
        annotated[n, row : row + 8, col : col + 8] = 1.0
        target[n, :, row : row + 8, col] = 255.0
    with torch.no_grad():
        logits = TinyUNet(1, 3, seed=0)(images)
    keep = (target != 255) & (annotated.unsqueeze(1) > 0)
    meant = (per_element(logits, target.masked_fill(~keep, 0)) * keep).sum() / keep.sum()  # mean over the kept
    return {"input": logits, "target": target, "weight": annotated, "meant": meant}


def findings_of(call) -> dict[str, str]:
    report, _ = audited(call)
    return {f.rule: f.message for f in report.findings}


def test_the_lessons_void_case_reports_three_findings_and_the_meant_loss_is_0_663():
    case = lesson09_void_case()
    found = findings_of(lambda: F.binary_cross_entropy_with_logits(case["input"], case["target"], weight=case["weight"]))
    assert set(found) == {"misaligned-operand", "target-out-of-range", "diluted-mean"}
    assert round(float(case["meant"]), 4) == 0.6630


def test_each_void_fix_after_the_unsqueeze_gives_the_meant_loss_and_a_clean_report():
    case = lesson09_void_case()
    found = findings_of(lambda: F.binary_cross_entropy_with_logits(case["input"], case["target"], weight=case["weight"]))
    [unsqueeze] = fixes_of(found["misaligned-operand"])
    void_fixes = fixes_of(found["target-out-of-range"])
    assert len(void_fixes) == 3 and "weighted_mean" in void_fixes[2]  # diluted-mean fires too: the weighted mean
    weight = eval(unsqueeze.split("weight=")[1].rstrip(")") + ")", {"weight": case["weight"]})  # noqa: S307
    names = {"input": case["input"], "target": case["target"], "weight": weight}
    for fix in void_fixes:
        with bw.audit() as after:
            value = apply_fix(fix, names)
        assert after.clean, f"{fix}\n{after}"
        torch.testing.assert_close(value, case["meant"], rtol=1e-6, atol=1e-9, msg=lambda m: f"{fix}: {m}")


def test_the_unsqueeze_alone_leaves_the_void_and_diluted_findings_reported():
    case = lesson09_void_case()
    weight = case["weight"].unsqueeze(1)
    found = findings_of(lambda: F.binary_cross_entropy_with_logits(case["input"], case["target"], weight=weight))
    assert set(found) == {"target-out-of-range", "diluted-mean"}


def test_the_diluted_mean_fix_alone_leaves_the_void_labels_reported():
    case = lesson09_void_case()
    input, target, weight = case["input"], case["target"], case["weight"].unsqueeze(1)
    found = findings_of(lambda: F.binary_cross_entropy_with_logits(input, target, weight=weight))
    plain = fixes_of(found["diluted-mean"])[0]
    after = findings_of(lambda: apply_fix(plain, {"input": input, "target": target, "weight": weight}))
    assert set(after) == {"target-out-of-range"}


def test_the_bceweights_void_fixes_before_the_unsqueeze_refuse_the_misaligned_mask():
    case = lesson09_void_case()
    found = findings_of(lambda: F.binary_cross_entropy_with_logits(case["input"], case["target"], weight=case["weight"]))
    names = {"input": case["input"], "target": case["target"], "weight": case["weight"]}
    for fix in fixes_of(found["target-out-of-range"])[1:]:
        with pytest.raises(bw.WeightShapeError):
            apply_fix(fix, names)


def test_a_void_fix_with_a_weight_counts_only_the_elements_whose_weight_is_nonzero():
    x = torch.randn(2, 3, 5, 5, generator=gen(0), dtype=torch.float64)
    y = (torch.rand(2, 3, 5, 5, generator=gen(1)) < 0.3).double()
    y[:, :, 4] = 255
    weight = torch.rand(2, 1, 5, 5, generator=gen(2), dtype=torch.float64) * 3
    weight[:, :, :2] = 0  # 40% zeros: diluted-mean does not fire, only the void fixes
    keep = (y != 255) & (weight > 0)
    meant = (per_element(x, y.masked_fill(~keep, 0)) * weight * keep).sum() / keep.sum()
    found = findings_of(lambda: F.binary_cross_entropy_with_logits(x, y, weight=weight))
    assert set(found) == {"target-out-of-range"}
    fixes = fixes_of(found["target-out-of-range"])
    assert len(fixes) == 2
    for fix in fixes:
        with bw.audit() as after:
            value = apply_fix(fix, {"input": x, "target": y, "weight": weight})
        assert after.clean, f"{fix}\n{after}"
        torch.testing.assert_close(value, meant, rtol=1e-6, atol=1e-9, msg=lambda m: f"{fix}: {m}")


def test_a_double_sigmoid_fix_leaves_out_the_pos_weight_another_finding_corrects():
    features = torch.randn(64, 8, generator=gen(0))
    classifier = nn.Sequential(nn.Linear(8, 1), nn.Sigmoid())
    labels = (torch.rand(64, 1, generator=gen(1)) < 0.1).float()
    pos_weight = torch.where(labels == 1, 9.0, 1.0)  # per sample, indexed by the labels
    found = findings_of(lambda: nn.BCEWithLogitsLoss(pos_weight=pos_weight)(classifier(features), labels))
    assert {"per-sample-pos-weight", "double-sigmoid"} <= set(found)
    [fix] = fixes_of(found["double-sigmoid"])
    assert "pos_weight" not in fix
    logits = classifier[0](features)
    with bw.audit() as after:
        apply_fix(fix, {"logits": logits, "input": logits, "target": labels})
    assert after.clean, f"{fix}\n{after}"
    assert "per-sample-pos-weight fix" in found["double-sigmoid"]


# --------------------------------------------------------------------------------------------------
# Every mean a fix proposes is 0 on a batch with nothing kept, not NaN (lesson 10, sections 3 and 4)


def fixes_on_a_batch_with_nothing_kept(call, rule: str, empty: dict) -> list[tuple[str, torch.Tensor]]:
    """The fixes ``rule`` proposes for ``call`` (a batch with kept elements), each evaluated on ``empty``."""
    fixes = fixes_of(findings_of(call)[rule])
    assert fixes
    return [(fix, apply_fix(fix, empty)) for fix in fixes]


@pytest.mark.parametrize("weighted", [False, True], ids=["no-weight", "weight-mask"])
def test_the_void_fixes_give_0_not_nan_on_an_all_void_batch(weighted):
    case = lesson09_void_case()
    weight = case["weight"].unsqueeze(1) if weighted else None
    extra = {"weight": weight} if weighted else {}
    call = lambda: F.binary_cross_entropy_with_logits(case["input"], case["target"], **extra)  # noqa: E731
    all_void = torch.full_like(case["target"], 255.0)
    empty = {"input": case["input"], "target": all_void, **extra}
    with torch.no_grad():
        unguarded = (per_element(case["input"], torch.zeros_like(all_void)) * 0).sum() / (all_void != 255).sum()
    assert torch.isnan(unguarded)  # what the same mean gives without the guard
    results = fixes_on_a_batch_with_nothing_kept(call, "target-out-of-range", empty)
    assert len(results) == (3 if weighted else 2)
    for fix, value in results:
        assert torch.isfinite(value) and float(value) == 0.0, f"{fix}: {value}"


def test_the_void_fix_still_gives_the_kept_mean_on_a_batch_with_one_kept_element():
    case = lesson09_void_case()
    call = lambda: F.binary_cross_entropy_with_logits(case["input"], case["target"])  # noqa: E731
    one_kept = torch.full_like(case["target"], 255.0)
    one_kept[0, 0, 0, 0] = 1.0
    meant = per_element(case["input"], torch.ones_like(one_kept))[0, 0, 0, 0]
    for fix, value in fixes_on_a_batch_with_nothing_kept(call, "target-out-of-range",
                                                          {"input": case["input"], "target": one_kept}):
        torch.testing.assert_close(value, meant, msg=lambda m: f"{fix}: {m}")


def test_the_weighted_mean_fixes_give_0_not_nan_when_every_weight_is_0():
    case = lesson09_void_case()
    clean = case["target"].masked_fill(case["target"] == 255, 0)
    weight = case["weight"].unsqueeze(1)
    call = lambda: F.binary_cross_entropy_with_logits(case["input"], clean, weight=weight)  # noqa: E731
    empty = {"input": case["input"], "target": clean, "weight": torch.zeros_like(weight)}
    results = fixes_on_a_batch_with_nothing_kept(call, "diluted-mean", empty)
    assert len(results) == 3
    for fix, value in results:
        assert torch.isfinite(value) and float(value) == 0.0, f"{fix}: {value}"


def test_the_weighted_mean_fix_divides_soft_weights_by_their_sum_not_by_1():
    x = torch.randn(2, 1, 4, 4, generator=gen(0), dtype=torch.float64)
    y = (torch.rand(2, 1, 4, 4, generator=gen(1)) < 0.3).double()
    weight = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    weight[:, :, :2, :2] = 0.001  # 8 weights of 0.001: a sum of 0.008, which .clamp_min(1) would replace by 1
    meant = (per_element(x, y) * weight).sum() / weight.sum()
    found = findings_of(lambda: F.binary_cross_entropy_with_logits(x, y, weight=weight))
    fix = fixes_of(found["diluted-mean"])[0]
    assert "clamp_min" not in fix and "torch.where" in fix
    torch.testing.assert_close(apply_fix(fix, {"input": x, "target": y, "weight": weight}), meant)


def test_the_masked_by_multiplication_fixes_give_0_not_nan_on_an_all_zero_mask():
    case = monai_case()
    call = case.call
    empty = {**case.names, "mask": torch.zeros_like(case.names["mask"])}
    results = fixes_on_a_batch_with_nothing_kept(call, "diluted-mean", empty)
    assert len(results) == 2
    for fix, value in results:
        assert torch.isfinite(value) and float(value) == 0.0, f"{fix}: {value}"
