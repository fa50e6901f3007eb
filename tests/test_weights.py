"""Weight builders: hand-computed cases, streaming equals one tensor, and every error names its fix."""

from __future__ import annotations

import doctest
import importlib
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from bceweights.weights import (
    balanced_weights,
    count_positives,
    median_frequency_weights,
    optimal_logit,
    optimal_probability,
    pos_weight_from_counts,
    pos_weight_from_targets,
    rebalance_map,
)


def test_docstring_examples_hold():
    attempted = 0
    for name in ("counts", "streaming", "classes", "maps", "optimum"):
        module = importlib.import_module(f"bceweights.weights.{name}")
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, name
        attempted += result.attempted
    assert attempted >= 8


# --------------------------------------------------------------------------------------------------
# pos_weight_from_counts
# --------------------------------------------------------------------------------------------------


def test_counts_scalar_gives_shape_one_float32():
    pos_weight = pos_weight_from_counts(100, 300)
    assert pos_weight.shape == (1,) and pos_weight.dtype == torch.float32
    assert pos_weight.item() == 3.0
    # the shape a single-output model needs: it broadcasts against (N, 1) in PyTorch
    logits, target = torch.randn(5, 1), torch.rand(5, 1)
    F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)


@pytest.mark.parametrize(
    "num_pos, num_neg",
    [
        ([100, 10, 40], [300, 990, 60]),
        (np.array([100, 10, 40]), np.array([300, 990, 60])),
        (torch.tensor([100, 10, 40]), torch.tensor([300.0, 990.0, 60.0], dtype=torch.float64)),
        ((100, 10, 40), [300, 990, 60]),
    ],
    ids=["lists", "numpy", "tensors", "tuple+list"],
)
def test_counts_per_channel(num_pos, num_neg):
    pos_weight = pos_weight_from_counts(num_pos, num_neg)
    assert pos_weight.shape == (3,) and pos_weight.dtype == torch.float32
    torch.testing.assert_close(pos_weight, torch.tensor([3.0, 99.0, 1.5]))


def test_counts_number_broadcasts_against_channels_and_dtype_is_honoured():
    torch.testing.assert_close(pos_weight_from_counts([10, 20], 40), torch.tensor([4.0, 2.0]))
    torch.testing.assert_close(pos_weight_from_counts(10, [20, 5]), torch.tensor([2.0, 0.5]))
    assert pos_weight_from_counts(1, 3, dtype=torch.float64).dtype == torch.float64
    assert pos_weight_from_counts(2.5, 7.5).item() == 3.0  # soft counts


def test_counts_zero_positives_names_the_channel_and_the_fix():
    with pytest.raises(ValueError) as info:
        pos_weight_from_counts([100, 0, 40, 0], [300, 990, 60, 1])
    message = str(info.value)
    assert "channel(s) [1, 3] have no positives" in message
    assert "torch.where((num_pos > 0) & (num_neg > 0), num_neg / num_pos, 1.0)" in message


def test_counts_negative_nan_shape_and_length_errors():
    with pytest.raises(ValueError, match=r"num_neg holds negative count\(s\) \[-5.0\] at index \[1\]") as info:
        pos_weight_from_counts([1, 2], [3, -5])
    assert "num_neg = targets.numel()" in str(info.value)
    with pytest.raises(ValueError, match=r"num_pos holds NaN or infinite value\(s\) at index \[0\]"):
        pos_weight_from_counts([float("nan"), 2], [3, 5])
    with pytest.raises(ValueError, match=r"num_pos has 2 channel\(s\) and num_neg has 3") as info:
        pos_weight_from_counts([1, 2], [3, 4, 5])
    assert "bw.pos_weight_from_counts(num_pos=[100, 10, 40]" in str(info.value)
    with pytest.raises(ValueError, match=r"num_pos has shape \(4, 3\)") as info:
        pos_weight_from_counts(torch.ones(4, 3), torch.ones(4, 3))
    assert "num_pos = num_pos.sum(dim=0)" in str(info.value)
    with pytest.raises(TypeError, match="num_pos is 'many'") as info:
        pos_weight_from_counts("many", 3)
    assert "bw.pos_weight_from_counts(num_pos=100, num_neg=300)" in str(info.value)
    with pytest.raises(TypeError, match="num_neg is a dict") as info:
        pos_weight_from_counts(1, {"neg": 3})
    assert "num_neg=torch.tensor(" in str(info.value)


# --------------------------------------------------------------------------------------------------
# count_positives and pos_weight_from_targets
# --------------------------------------------------------------------------------------------------


def _targets_with(num_pos: int, num_neg: int, seed: int = 0) -> torch.Tensor:
    """A shuffled (num_pos + num_neg, 1) 0/1 target column."""
    column = torch.cat([torch.ones(num_pos), torch.zeros(num_neg)])
    order = torch.randperm(column.numel(), generator=torch.Generator().manual_seed(seed))
    return column[order].unsqueeze(1)


def test_count_positives_hand_computed():
    # (N=2, C=2, H=1, W=3): channel 0 has 1 + 2 positives out of 6, channel 1 has 0.5 + 0.25 (soft) out of 6
    targets = torch.tensor(
        [
            [[[1.0, 0.0, 0.0]], [[0.5, 0.0, 0.0]]],
            [[[1.0, 1.0, 0.0]], [[0.0, 0.25, 0.0]]],
        ]
    )
    num_pos, num_total = count_positives(targets)
    assert num_pos.dtype == torch.float64
    torch.testing.assert_close(num_pos, torch.tensor([3.0, 0.75], dtype=torch.float64))
    torch.testing.assert_close(num_total, torch.tensor([6.0, 6.0], dtype=torch.float64))
    num_pos, num_total = count_positives(targets, channel_dim=None)
    assert num_pos.tolist() == [3.75] and num_total.tolist() == [12.0]
    # channels last: the same counts
    num_pos, _ = count_positives(targets.movedim(1, -1), channel_dim=-1)
    torch.testing.assert_close(num_pos, torch.tensor([3.0, 0.75], dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int64, torch.float16, torch.float64])
def test_count_positives_accepts_bool_integer_and_float_targets(dtype):
    targets = torch.tensor([[1, 0, 1], [1, 0, 0]]).to(dtype)
    num_pos, num_total = count_positives(targets)
    assert num_pos.tolist() == [2.0, 0.0, 1.0] and num_total.tolist() == [2.0, 2.0, 2.0]


def test_pos_weight_from_targets_100_positives_300_negatives_is_3():
    pos_weight = pos_weight_from_targets(_targets_with(100, 300))
    assert pos_weight.shape == (1,) and pos_weight.dtype == torch.float32 and pos_weight.item() == 3.0
    assert pos_weight_from_targets(_targets_with(100, 300).squeeze(1), channel_dim=None).tolist() == [3.0]


def test_pos_weight_from_targets_balances_the_two_halves_of_the_loss_per_channel():
    generator = torch.Generator().manual_seed(1)
    rates = torch.tensor([0.5, 0.05, 0.2]).view(3, 1, 1)
    targets = (torch.rand(6, 3, 10, 10, generator=generator) < rates).float()
    pos_weight = pos_weight_from_targets(targets)
    assert pos_weight.shape == (3,)
    num_pos = targets.sum(dim=(0, 2, 3))
    num_neg = (1 - targets).sum(dim=(0, 2, 3))
    torch.testing.assert_close(pos_weight * num_pos, num_neg)  # weighted positives == negatives
    # and it plugs into PyTorch's loss once aligned with the channel dimension
    logits = torch.randn(targets.shape, generator=generator)
    F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight.view(3, 1, 1))


def test_pos_weight_from_targets_names_a_channel_without_positives():
    targets = torch.zeros(4, 3, 2, 2)
    targets[:, 0, 0, 0] = 1
    targets[:, 2, 1, 1] = 1
    with pytest.raises(ValueError, match=r"channel\(s\) \[1\] have no positives") as info:
        pos_weight_from_targets(targets)
    assert "num_pos, num_total = bw.count_positives(targets)" in str(info.value)


def test_streaming_over_a_list_equals_one_tensor():
    generator = torch.Generator().manual_seed(2)
    targets = torch.rand(10, 3, 4, 5, generator=generator).round()
    batches = [targets[:3], targets[3:4], targets[4:10]]
    for (a, b) in zip(count_positives(batches), count_positives(targets)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(pos_weight_from_targets(batches), pos_weight_from_targets(targets))
    torch.testing.assert_close(pos_weight_from_targets(iter(batches)), pos_weight_from_targets(targets))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=2, max_size=5),
    cuts=st.lists(st.integers(0, 6), max_size=3),
    channel_dim=st.sampled_from([1, -1, None]),
    seed=st.integers(0, 2**16),
)
def test_streaming_property(shape, cuts, channel_dim, seed):
    generator = torch.Generator().manual_seed(seed)
    targets = torch.rand(shape, generator=generator, dtype=torch.float64)
    boundaries = sorted({0, shape[0], *[min(c, shape[0]) for c in cuts]})
    batches = [targets[start:stop] for start, stop in zip(boundaries, boundaries[1:])]
    streamed = count_positives(batches, channel_dim)
    whole = count_positives(targets, channel_dim)
    for a, b in zip(streamed, whole):
        torch.testing.assert_close(a, b)
    if channel_dim is None:
        expected_pos = targets.sum().reshape(1)
    else:
        expected_pos = targets.movedim(channel_dim, 0).reshape(targets.shape[channel_dim], -1).sum(dim=1)
    torch.testing.assert_close(whole[0], expected_pos)
    torch.testing.assert_close(whole[1], torch.full_like(expected_pos, targets.numel() / expected_pos.numel()))


def test_inputs_targets_tuples_and_a_dataloader():
    generator = torch.Generator().manual_seed(3)
    inputs = torch.randn(20, 3, 4, 4, generator=generator)
    targets = (torch.rand(20, 3, 4, 4, generator=generator) < 0.3).float()
    expected = pos_weight_from_targets(targets)
    pairs = [(inputs[:7], targets[:7]), (inputs[7:], targets[7:])]
    torch.testing.assert_close(pos_weight_from_targets(pairs), expected)
    triples = [[inputs[:7], "meta", targets[:7]], [inputs[7:], "meta", targets[7:]]]  # last element is the target
    torch.testing.assert_close(pos_weight_from_targets(triples), expected)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, targets), batch_size=6)
    torch.testing.assert_close(pos_weight_from_targets(loader), expected)
    torch.testing.assert_close(pos_weight_from_targets(targets.numpy()), expected)


def test_progress_bar_reports_every_batch(capsys):
    targets = _targets_with(10, 30)
    batches = [targets[:10], targets[10:20], targets[20:]]
    assert pos_weight_from_targets(batches, progress=True).item() == 3.0
    error = capsys.readouterr().err
    assert "counting positives" in error and "3/3" in error
    # a generator has no len: the bar counts without a total
    assert pos_weight_from_targets((b for b in batches), progress=True).item() == 3.0
    assert "counting positives: 3it" in capsys.readouterr().err
    labels = torch.tensor([[0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0]])
    median_frequency_weights([labels[:1], labels[1:]], num_classes=2, progress=True)
    assert "counting class frequencies" in capsys.readouterr().err


def test_count_positives_too_few_dimensions_suggests_channel_dim_none_or_unsqueeze():
    with pytest.raises(ValueError) as info:
        count_positives(torch.ones(8))
    message = str(info.value)
    assert "shape (8,) (1 dimension(s)); channel_dim=1 needs at least 2" in message
    assert "bw.count_positives(targets, channel_dim=None)" in message
    assert "bw.count_positives(targets.unsqueeze(1))" in message
    with pytest.raises(ValueError, match="channel_dim=3 needs at least 4 dimensions"):
        count_positives(torch.ones(2, 3, 4), channel_dim=3)
    with pytest.raises(ValueError, match="channel_dim=-4 needs at least 4 dimensions"):
        pos_weight_from_targets(torch.ones(2, 3, 4), channel_dim=-4)


def test_count_positives_changing_channel_count_is_refused():
    # (N, H, W) masks with the default channel_dim=1: H is taken for channels and changes between batches
    batches = [torch.ones(2, 16, 16), torch.ones(2, 12, 12)]
    with pytest.raises(ValueError) as info:
        count_positives(batches)
    message = str(info.value)
    assert "batch 1 has shape (2, 12, 12) with 12 channel(s)" in message and "batch 0 had shape (2, 16, 16)" in message
    assert "bw.count_positives(targets, channel_dim=None)" in message


def test_count_positives_values_outside_zero_one():
    with pytest.raises(ValueError) as info:
        count_positives(torch.tensor([[0.0, 255.0], [255.0, 0.0]]))
    message = str(info.value)
    assert "holds 2 value(s) outside [0, 1] (for example 255.0)" in message
    assert "targets = targets > 127" in message and "check_values=False" in message
    with pytest.raises(ValueError, match=r"bw.median_frequency_weights\(labels, num_classes=K\)"):
        count_positives(torch.tensor([[0, 1, 2, 3]]))  # class indices, not 0/1 targets
    with pytest.raises(ValueError, match=r"for example nan"):
        count_positives(torch.tensor([[0.5, float("nan")]]))
    # the check can be switched off, and the counts are then taken as they are
    num_pos, _ = count_positives(torch.tensor([[0, 1, 2, 3]]), check_values=False)
    assert num_pos.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_count_positives_bad_batches():
    with pytest.raises(ValueError, match="targets yielded no batches") as info:
        count_positives([])
    assert "bw.count_positives(torch.cat(" in str(info.value)
    with pytest.raises(TypeError, match=r"batch 0 is a dict with keys \['image', 'mask'\]") as info:
        count_positives([{"image": torch.ones(1), "mask": torch.ones(1, 1)}])
    assert "(batch['mask'] for batch in loader)" in str(info.value)
    with pytest.raises(TypeError, match="last element is a int") as info:
        count_positives([[0, 1], [1, 0]])  # nested list of values, not batches
    assert "torch.tensor(targets)" in str(info.value)
    with pytest.raises(TypeError, match="targets is a int") as info:
        count_positives(3)
    assert "bw.count_positives(torch.as_tensor(targets))" in str(info.value)
    with pytest.raises(ValueError, match="batch 0 is an empty tuple") as info:
        count_positives([()])
    assert "(y for x, y in loader)" in str(info.value)
    with pytest.raises(TypeError, match="batch 1 is a str") as info:
        count_positives([torch.ones(1, 1), "labels"])
    assert "torch.as_tensor(t)" in str(info.value)


# --------------------------------------------------------------------------------------------------
# balanced_weights
# --------------------------------------------------------------------------------------------------


def test_balanced_weights_worked_example():
    # labels [0, 0, 0, 1, 2, 2]: n_samples = 6, n_classes = 3, counts [3, 1, 2]
    # scikit-learn's "balanced" gives 6 / (3 * [3, 1, 2]) = [2/3, 2, 1]
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    counts = torch.bincount(labels, minlength=3)
    weights = balanced_weights(counts)
    assert weights.dtype == torch.float32 and weights.shape == (3,)
    torch.testing.assert_close(weights, torch.tensor([2 / 3, 2.0, 1.0]))
    torch.testing.assert_close(balanced_weights([10, 30, 60]), torch.tensor([10 / 3, 10 / 9, 5 / 9]))
    # binary: the ratio of the two weights is num_neg / num_pos, the pos_weight
    binary = balanced_weights([300, 100])
    assert (binary[1] / binary[0]).item() == pytest.approx(pos_weight_from_counts(100, 300).item())


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=12))
def test_balanced_weights_every_class_weighs_the_same(counts):
    weights = balanced_weights(counts, dtype=torch.float64)
    totals = weights * torch.tensor(counts, dtype=torch.float64)
    n_samples, n_classes = sum(counts), len(counts)
    torch.testing.assert_close(totals, torch.full_like(totals, n_samples / n_classes))
    assert totals.sum().item() == pytest.approx(n_samples)


def test_balanced_weights_errors():
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have count 0") as info:
        balanced_weights([5, 0, 3])
    assert "bw.balanced_weights(counts[counts > 0])" in str(info.value)
    with pytest.raises(ValueError, match=r"counts holds negative count\(s\) \[-3.0\]"):
        balanced_weights([5, -3])
    with pytest.raises(ValueError, match="counts is empty") as info:
        balanced_weights([])
    assert "torch.bincount(labels.flatten(), minlength=K)" in str(info.value)


# --------------------------------------------------------------------------------------------------
# median_frequency_weights
# --------------------------------------------------------------------------------------------------

# Three images of four pixels, three classes:
#   image 0: [0, 0, 1, 1]   image 1: [0, 0, 0, 2]   image 2: [0, 1, 1, 1]
# class 0: 2 + 3 + 1 = 6 pixels, appears in all 3 images (12 pixels)  -> freq 6/12 = 0.5
# class 1: 2 + 0 + 3 = 5 pixels, appears in images 0 and 2 (8 pixels) -> freq 5/8  = 0.625
# class 2: 0 + 1 + 0 = 1 pixel,  appears in image 1 only   (4 pixels) -> freq 1/4  = 0.25
# median(0.5, 0.625, 0.25) = 0.5, weights 0.5 / freq = [1.0, 0.8, 2.0]
# (counting every image's pixels for every class would give freq [6/12, 5/12, 1/12] and weights [1, 1.2, 6])
THREE_IMAGES = torch.tensor([[0, 0, 1, 1], [0, 0, 0, 2], [0, 1, 1, 1]])
THREE_IMAGES_WEIGHTS = torch.tensor([1.0, 0.8, 2.0])


def test_median_frequency_hand_computed_label_maps():
    weights = median_frequency_weights(THREE_IMAGES, num_classes=3)
    assert weights.dtype == torch.float32
    torch.testing.assert_close(weights, THREE_IMAGES_WEIGHTS)
    # the same pixels as 2x2 images give the same weights
    as_squares = median_frequency_weights(THREE_IMAGES.view(3, 2, 2), num_classes=3)
    torch.testing.assert_close(as_squares, THREE_IMAGES_WEIGHTS)


def test_median_frequency_hand_computed_masks():
    masks = F.one_hot(THREE_IMAGES, 3).movedim(-1, 1)  # (3, 3, 4) int64 0/1
    torch.testing.assert_close(median_frequency_weights(masks), THREE_IMAGES_WEIGHTS)
    torch.testing.assert_close(median_frequency_weights(masks.bool()), THREE_IMAGES_WEIGHTS)
    channels_last = median_frequency_weights(masks.float().movedim(1, -1), channel_dim=-1)
    torch.testing.assert_close(channels_last, THREE_IMAGES_WEIGHTS)
    # multi-label: a pixel in two classes counts for both. Add class 0 on top of image 2's last pixel:
    # nothing changes for class 0's presence, its pixels become 7: freq 7/12, median 7/12 -> [1, 14/15, 7/3]
    overlapping = masks.clone()
    overlapping[2, 0, 3] = 1
    torch.testing.assert_close(median_frequency_weights(overlapping), torch.tensor([1.0, 14 / 15, 7 / 3]))


def test_median_frequency_uses_the_true_median_for_an_even_number_of_classes():
    # one image per class, so freq = pixel share inside its own images; four classes, 2 pixels per image
    labels = torch.tensor([[0, 0], [1, 0], [2, 2], [3, 2]])
    # class 0: 3 pixels in images 0, 1 (4 px) -> 0.75; class 1: 1 in image 1 -> 0.5
    # class 2: 3 in images 2, 3 -> 0.75;             class 3: 1 in image 3 -> 0.5
    # median of [0.5, 0.5, 0.75, 0.75] = 0.625 (torch.median would give 0.5)
    weights = median_frequency_weights(labels, num_classes=4)
    torch.testing.assert_close(weights, torch.tensor([0.625 / 0.75, 1.25, 0.625 / 0.75, 1.25]))


def test_median_frequency_streaming_tuples_and_images_of_different_sizes():
    batches = [THREE_IMAGES[:2], THREE_IMAGES[2:]]
    torch.testing.assert_close(median_frequency_weights(batches, num_classes=3), THREE_IMAGES_WEIGHTS)
    pairs = [(torch.randn(2, 5), THREE_IMAGES[:2]), (torch.randn(1, 5), THREE_IMAGES[2:])]
    torch.testing.assert_close(median_frequency_weights(pairs, num_classes=3), THREE_IMAGES_WEIGHTS)
    masks = F.one_hot(THREE_IMAGES, 3).movedim(-1, 1)
    torch.testing.assert_close(median_frequency_weights([masks[:1], masks[1:]]), THREE_IMAGES_WEIGHTS)
    # label maps of different sizes in different batches: each image has its own pixel count
    # image 3 (6 px, class 0 and 2): class 0: 10/18, class 1: 5/8, class 2: 3/10 -> median 10/18
    sizes = [THREE_IMAGES, torch.tensor([[0, 0, 0, 0, 2, 2]])]
    expected = torch.tensor([1.0, (10 / 18) / (5 / 8), (10 / 18) / (3 / 10)])
    torch.testing.assert_close(median_frequency_weights(sizes, num_classes=3), expected)


@settings(max_examples=30, deadline=None)
@given(
    images=st.integers(1, 6),
    pixels=st.integers(1, 12),
    classes=st.integers(2, 5),
    cut=st.integers(0, 6),
    seed=st.integers(0, 2**16),
)
def test_median_frequency_property_against_a_direct_loop(images, pixels, classes, cut, seed):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (images, pixels), generator=generator)
    if pixels >= classes:  # usually every class appears; when not, the error is checked instead
        labels[0, :classes] = torch.arange(classes)
    present = [c for c in range(classes) if bool((labels == c).any())]
    if len(present) < classes:
        with pytest.raises(ValueError, match="never appear"):
            median_frequency_weights(labels, num_classes=classes)
        return
    frequency = []
    for c in range(classes):
        class_pixels = int((labels == c).sum())
        image_pixels = sum(pixels for image in labels if bool((image == c).any()))
        frequency.append(class_pixels / image_pixels)
    median = float(np.median(frequency))
    expected = torch.tensor([median / f for f in frequency], dtype=torch.float64)
    cut = min(cut, images)
    batches = [b for b in (labels[:cut], labels[cut:]) if b.shape[0] > 0]
    for targets in (labels, batches, F.one_hot(labels, classes).movedim(-1, 1)):
        kwargs = {} if isinstance(targets, torch.Tensor) and targets.dim() == 3 else {"num_classes": classes}
        result = median_frequency_weights(targets, dtype=torch.float64, **kwargs)
        torch.testing.assert_close(result, expected)


def test_median_frequency_ignore_index():
    # ignored pixels count nowhere: padding image 1 with void pixels changes nothing
    padded = torch.tensor([[0, 0, 1, 1, 255, 255], [0, 0, 0, 2, 255, 255], [0, 1, 1, 1, 255, 255]])
    weights = median_frequency_weights(padded, num_classes=3, ignore_index=255)
    torch.testing.assert_close(weights, THREE_IMAGES_WEIGHTS)
    # an ignore_index that is one of the classes: that class gets 0 and stays out of the median
    # with class 0 ignored, image 0 keeps 2 pixels (class 1), image 1 keeps 1 (class 2), image 2 keeps 3 (class 1):
    # class 1: 5 px in images 0 and 2 (2 + 3 px) -> freq 1; class 2: 1 px in image 1 (1 px) -> freq 1
    weights = median_frequency_weights(THREE_IMAGES, num_classes=3, ignore_index=0)
    torch.testing.assert_close(weights, torch.tensor([0.0, 1.0, 1.0]))


def test_median_frequency_names_classes_that_never_appear():
    with pytest.raises(ValueError) as info:
        median_frequency_weights(THREE_IMAGES, num_classes=5)
    message = str(info.value)
    assert "class(es) [3, 4] never appear" in message and "weights = torch.zeros(K)" in message
    masks = torch.zeros(2, 3, 4, 4)
    masks[:, 1] = 1
    with pytest.raises(ValueError, match=r"class\(es\) \[0, 2\] never appear"):
        median_frequency_weights(masks)


def test_median_frequency_label_errors():
    with pytest.raises(ValueError) as info:
        median_frequency_weights(torch.tensor([[0, 1, 255]]), num_classes=2)
    message = str(info.value)
    assert "label(s) [255] outside 0..1 (num_classes=2)" in message
    assert "bw.median_frequency_weights(labels, num_classes=2, ignore_index=255)" in message
    assert "bw.median_frequency_weights(labels, num_classes=256)" in message
    with pytest.raises(ValueError, match=r"label\(s\) \[-1\] outside 0..2"):
        median_frequency_weights(torch.tensor([[0, 1, 2, -1]]), num_classes=3)
    with pytest.raises(ValueError, match="has dtype torch.float32") as info:
        median_frequency_weights(torch.tensor([[0.0, 1.0]]), num_classes=2)
    assert "bw.median_frequency_weights(labels.long(), num_classes=2)" in str(info.value)
    with pytest.raises(ValueError, match="num_classes is 0"):
        median_frequency_weights(THREE_IMAGES, num_classes=0)
    with pytest.raises(ValueError, match="single number") as info:
        median_frequency_weights(torch.tensor(1), num_classes=2)
    assert "labels.reshape(1, -1)" in str(info.value)
    with pytest.raises(ValueError, match="ignore_index=255 was given without num_classes") as info:
        median_frequency_weights(THREE_IMAGES, ignore_index=255)
    assert "bw.median_frequency_weights(labels, num_classes=K, ignore_index=255)" in str(info.value)


def test_median_frequency_mask_errors():
    # label maps passed without num_classes look like masks with values > 1
    with pytest.raises(ValueError, match=r"bw.median_frequency_weights\(labels, num_classes=K\)"):
        median_frequency_weights(THREE_IMAGES.view(3, 2, 2))
    with pytest.raises(ValueError, match="channel_dim=0 points at dim 0") as info:
        median_frequency_weights(torch.ones(2, 3, 4), channel_dim=0)
    assert "channel_dim=1" in str(info.value)
    with pytest.raises(ValueError, match="channel_dim=1 needs at least 2 dimensions") as info:
        median_frequency_weights(torch.ones(4))
    assert "masks.unsqueeze(1)" in str(info.value)
    with pytest.raises(ValueError, match="batch 0 had shape") as info:
        median_frequency_weights([torch.ones(2, 3, 4), torch.ones(2, 4, 4)])
    assert "num_classes=K" in str(info.value)
    with pytest.raises(ValueError, match="targets yielded no batches"):
        median_frequency_weights([], num_classes=2)
    with pytest.raises(ValueError, match="targets yielded no batches"):
        median_frequency_weights([])


# --------------------------------------------------------------------------------------------------
# rebalance_map
# --------------------------------------------------------------------------------------------------


def test_rebalance_map_q9_foreground_is_one_in_95():
    target = torch.zeros(1, 1, 60, 40, 40)
    target.view(-1)[::95] = 1  # 96000 voxels, 1011 foreground
    num_pos = int(target.sum())
    num_neg = target.numel() - num_pos
    weight = rebalance_map(target)
    assert weight.shape == target.shape and weight.dtype == torch.float32
    assert torch.all(weight[target == 1] == 1)
    torch.testing.assert_close(weight[target == 0], torch.full((num_neg,), num_pos / num_neg))
    # the background's total weight equals the foreground's
    assert weight[target == 0].sum().item() == pytest.approx(num_pos, rel=1e-5)
    # with the ratio given: background 1/94
    weight = rebalance_map(target, ratio=94)
    assert weight.unique().tolist() == pytest.approx([1 / 94, 1.0])


def test_rebalance_map_soft_targets_bool_and_dtypes():
    target = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    weight = rebalance_map(target, ratio=4.0)
    assert weight.dtype == torch.float64
    # 1/4 + 3/4 * y
    torch.testing.assert_close(weight, torch.tensor([0.25, 0.4375, 0.625, 1.0], dtype=torch.float64))
    weight = rebalance_map(torch.tensor([True, False, False, False]))  # ratio 3 from the target
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, torch.tensor([1.0, 1 / 3, 1 / 3, 1 / 3]))
    from_tensor_ratio = rebalance_map(torch.tensor([1, 0]), ratio=torch.tensor(2.0))
    torch.testing.assert_close(from_tensor_ratio, torch.tensor([1.0, 0.5]))
    # ratio 1 is no re-weighting; ratio < 1 (more foreground than background) weighs the background above 1
    assert rebalance_map(torch.tensor([0.0, 1.0]), ratio=1.0).tolist() == [1.0, 1.0]
    assert rebalance_map(torch.tensor([0.0, 1.0]), ratio=0.5).tolist() == [2.0, 1.0]


@pytest.mark.parametrize("ratio", [0, -2.0, float("nan"), float("inf")])
def test_rebalance_map_bad_ratio(ratio):
    with pytest.raises(ValueError, match="expected a finite number > 0") as info:
        rebalance_map(torch.tensor([0.0, 1.0]), ratio=ratio)
    assert "bw.rebalance_map(target)" in str(info.value)


def test_rebalance_map_other_errors():
    with pytest.raises(ValueError, match="has no foreground") as info:
        rebalance_map(torch.zeros(2, 3))
    assert "bw.count_positives(loader, channel_dim=None)" in str(info.value)
    with pytest.raises(ValueError, match="is all foreground"):
        rebalance_map(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"ratio has shape \(3,\)") as info:
        rebalance_map(torch.zeros(2, 3), ratio=torch.tensor([1.0, 2.0, 3.0]))
    assert "ratio.view(C, 1, 1)" in str(info.value)
    with pytest.raises(TypeError, match="ratio is a str"):
        rebalance_map(torch.zeros(2, 3), ratio="94")
    with pytest.raises(TypeError, match="target is a list") as info:
        rebalance_map([0, 1])
    assert "torch.as_tensor(target)" in str(info.value)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]") as info:
        rebalance_map(torch.tensor([0.0, 2.0]), ratio=3.0)
    assert "bw.rebalance_map(target > 0.5)" in str(info.value)
    assert rebalance_map(torch.tensor([0.0, 2.0]), ratio=2.0, check_values=False).tolist() == [0.5, 1.5]


MAP_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


@settings(max_examples=300, deadline=None)
@given(
    ratio=st.floats(min_value=5e-324, max_value=1.7e308, allow_nan=False, allow_infinity=False, exclude_min=False),
    dtype=st.sampled_from(MAP_DTYPES),
)
def test_rebalance_map_is_exact_for_every_positive_finite_ratio(ratio, dtype):
    """Foreground exactly 1, background exactly 1/ratio rounded once to the dtype (the old form
    1/ratio + (1 - 1/ratio) * target cancelled: foreground not 1 at ratio 1e-20, NaN at 1e-39)."""
    target = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    if not 1.0 / ratio <= torch.finfo(dtype).max:  # the background weight would be inf: refused
        with pytest.raises(ValueError, match=r"does not fit the map's dtype(.|\n)*Write instead"):
            rebalance_map(target, ratio=ratio)
        return
    weight = rebalance_map(target, ratio=ratio)
    assert weight.dtype == dtype
    assert weight[1].item() == 1.0 and weight[2].item() == 1.0
    expected_background = torch.tensor(1.0 / ratio, dtype=torch.float64).to(dtype)
    assert torch.equal(weight[[0, 3]], expected_background.expand(2))
    assert torch.isfinite(weight).all()
    # bool targets give the float32 map with the same exact ends
    if 1.0 / ratio <= torch.finfo(torch.float32).max:
        from_bool = rebalance_map(target > 0.5, ratio=ratio)
        assert from_bool[1].item() == 1.0
        assert from_bool[0].item() == torch.tensor(1.0 / ratio, dtype=torch.float64).float().item()


@pytest.mark.parametrize("ratio", [1e-20, 1e-39, 1e-300])
def test_rebalance_map_tiny_ratio_keeps_the_foreground_at_one(ratio):
    target = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    weight = rebalance_map(target, ratio=ratio)
    assert weight[2].item() == 1.0 and weight[0].item() == 1.0 / ratio
    assert weight[1].item() == pytest.approx(0.5 + 0.5 / ratio, rel=1e-15)
    if ratio < 2.9e-39:  # 1/ratio beyond float32's largest number: refused, not a silent inf
        with pytest.raises(ValueError, match=r"1/ratio = 1e\+\d+ does not fit the map's dtype float32"):
            rebalance_map(target.float(), ratio=ratio)
        return
    weight32 = rebalance_map(target.float(), ratio=ratio)
    assert weight32[2].item() == 1.0 and torch.isfinite(weight32).all()
    assert weight32[0].item() == torch.tensor(1.0 / ratio, dtype=torch.float64).float().item()


@pytest.mark.parametrize("dtype, edge", [(torch.float32, 1 / torch.finfo(torch.float32).max),
                                         (torch.float16, 1 / torch.finfo(torch.float16).max)])
def test_rebalance_map_refuses_a_ratio_whose_inverse_overflows_the_dtype_and_accepts_the_edge(dtype, edge):
    target = torch.tensor([0.0, 1.0], dtype=dtype)
    near_miss = rebalance_map(target, ratio=edge * 1.001)  # 1/ratio just below the largest number
    assert torch.isfinite(near_miss).all() and near_miss[1].item() == 1.0
    with pytest.raises(ValueError, match="would be inf"):
        rebalance_map(target, ratio=edge / 1.001)
    with pytest.raises(ValueError, match="would be inf"):
        rebalance_map(target > 0.5, ratio=1e-39)  # bool targets: a float32 map


@pytest.mark.parametrize("soft", [0.1, 0.25, 0.5, 0.9])
def test_rebalance_map_soft_targets_interpolate(soft):
    weight = rebalance_map(torch.tensor([soft], dtype=torch.float64), ratio=7.0)
    assert weight.item() == pytest.approx(soft + (1 - soft) / 7.0, rel=1e-15)


# --------------------------------------------------------------------------------------------------
# one-class channels and bounded messages
# --------------------------------------------------------------------------------------------------


def test_counts_all_positive_channel_is_refused_like_an_all_negative_one():
    """Was: pos_weight 0, which silently gives the channel's positives no weight."""
    with pytest.raises(ValueError, match=r"channel\(s\) \[0\] are all positive \(num_neg == 0\)") as info:
        pos_weight_from_counts(5, 0)
    fix = "torch.where((num_pos > 0) & (num_neg > 0), num_neg / num_pos, 1.0)"
    assert fix in str(info.value)
    with pytest.raises(ValueError, match=r"channel\(s\) \[1, 2\] are all positive"):
        pos_weight_from_counts([10, 4, 7], [30, 0, 0])
    # the fix in the message runs and gives those channels 1
    num_pos, num_neg = [10, 4, 0], [30, 0, 5]
    namespace = {"torch": torch, "num_pos": num_pos, "num_neg": num_neg}
    fix_lines = [line[4:] for line in str(info.value).splitlines() if line.startswith("    ")]
    exec("\n".join(fix_lines), namespace)  # noqa: S102
    torch.testing.assert_close(namespace["pos_weight"], torch.tensor([3.0, 1.0, 1.0]))


def test_targets_all_positive_channel_is_refused():
    targets = torch.zeros(4, 3, 2, 2)
    targets[:, 0] = 1  # channel 0: every element positive
    targets[0, 1, 0, 0] = 1
    targets[1, 2, 1, 1] = 1
    with pytest.raises(ValueError, match=r"channel\(s\) \[0\] are all positive") as info:
        pos_weight_from_targets(targets)
    message = str(info.value)
    assert "num_neg = num_total - num_pos" in message
    with pytest.raises(ValueError, match="are all positive"):
        pos_weight_from_targets(torch.ones(8, 1), channel_dim=None)
    with pytest.raises(ValueError, match="have no positives"):
        pos_weight_from_targets(torch.zeros(8, 1), channel_dim=None)


MESSAGE_LIMIT = 1500


def _message(call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


def test_median_frequency_message_is_bounded_for_two_million_classes():
    """Was a 17-million-character message listing every absent class."""
    labels = torch.tensor([[0, 1, 1, 0]])
    message = _message(lambda: median_frequency_weights(labels, num_classes=2_000_000))
    assert len(message) < MESSAGE_LIMIT
    assert "class(es) [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...] (first 10 of 1999998) never appear" in message


def test_count_messages_are_bounded():
    many = 1_000_000
    assert "(first 10 of 1000000) have no positives" in _message(lambda: pos_weight_from_counts(torch.zeros(many), 5))
    assert "(first 10 of 1000000) are all positive" in _message(lambda: pos_weight_from_counts(torch.ones(many), 0))
    negative = _message(lambda: pos_weight_from_counts(torch.full((many,), -1.0), 5))
    assert "[-1.0, -1.0" in negative and "(first 10 of 1000000)" in negative
    nonfinite = _message(lambda: pos_weight_from_counts(torch.full((many,), math.nan), 5))
    zero = _message(lambda: balanced_weights(torch.zeros(many)))
    absent = _message(lambda: pos_weight_from_targets(torch.zeros(2, many)))
    for message in (negative, nonfinite, zero, absent):
        assert len(message) < MESSAGE_LIMIT, message[:200]
    with pytest.raises(TypeError) as info:
        pos_weight_from_counts(["x"] * many, 5)
    assert len(str(info.value)) < MESSAGE_LIMIT
    with pytest.raises(TypeError) as info:
        count_positives([{str(i): i for i in range(many)}])
    assert len(str(info.value)) < MESSAGE_LIMIT and "(first 10 of 1000000)" in str(info.value)


def test_short_lists_are_shown_whole():
    assert "channel(s) [1, 3] have no positives" in _message(lambda: pos_weight_from_counts([1, 0, 2, 0], 5))
    ten = _message(lambda: balanced_weights(torch.zeros(10)))
    assert "class(es) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] have count 0" in ten


# --------------------------------------------------------------------------------------------------
# optimal_probability and optimal_logit
# --------------------------------------------------------------------------------------------------


def _argmin_of_expected_loss(q: float, p: float) -> float:
    """The logit z minimising q*p*softplus(-z) + (1-q)*softplus(z), by a coarse then a fine grid."""
    coarse = torch.linspace(-30, 30, 60_001, dtype=torch.float64)  # step 1e-3
    loss = q * p * F.softplus(-coarse) + (1 - q) * F.softplus(coarse)
    centre = coarse[torch.argmin(loss)]
    fine = torch.linspace(float(centre) - 2e-3, float(centre) + 2e-3, 40_001, dtype=torch.float64)  # step 1e-7
    loss = q * p * F.softplus(-fine) + (1 - q) * F.softplus(fine)
    return float(fine[torch.argmin(loss)])


@pytest.mark.parametrize(
    "q, p",
    [(0.1, 9.0), (0.5, 1.0), (0.01, 99.0), (0.3, 0.2), (0.9, 5.0), (0.02, 1.0), (0.7, 0.01)],
)
def test_optimal_probability_is_the_argmin_of_the_weighted_loss(q, p):
    z_star = _argmin_of_expected_loss(q, p)
    assert optimal_probability(q, p) == pytest.approx(1 / (1 + math.exp(-z_star)), abs=1e-6)
    assert optimal_logit(q, p) == pytest.approx(z_star, abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(q=st.floats(0.001, 0.999), p=st.floats(0.01, 100.0))
def test_optimal_probability_argmin_property(q, p):
    z_star = _argmin_of_expected_loss(q, p)
    assert optimal_logit(q, p) == pytest.approx(z_star, abs=1e-5)
    assert optimal_probability(q, p) == pytest.approx(torch.sigmoid(torch.tensor(z_star)).item(), abs=1e-5)


def test_optimal_probability_by_gradient_descent_on_a_logit():
    q, p = 0.2, 6.0
    z = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([z], lr=1, max_iter=100, tolerance_grad=1e-14, tolerance_change=1e-16)
    target = torch.tensor(q, dtype=torch.float64)

    def closure():
        optimiser.zero_grad()
        # the expected loss is the weighted BCE of a soft target q
        loss = F.binary_cross_entropy_with_logits(z, target, pos_weight=torch.tensor(p, dtype=torch.float64))
        loss.backward()
        return loss

    optimiser.step(closure)
    assert torch.sigmoid(z).item() == pytest.approx(optimal_probability(q, p), abs=1e-8)
    assert optimal_probability(q, p) == pytest.approx(1.2 / 2.0)


def test_optimal_probability_edges_and_identity():
    assert optimal_probability(0.1, 9.0) == 0.5 and isinstance(optimal_probability(0.1, 9.0), float)
    assert optimal_probability(0.37, 1.0) == pytest.approx(0.37)
    assert optimal_probability(0.0, 5.0) == 0.0 and optimal_probability(1.0, 5.0) == 1.0
    assert optimal_probability(0.4, 0.0) == 0.0 and optimal_probability(1.0, 0.0) == 0.0
    assert optimal_probability(0, 2) == 0.0  # integers are numbers too


def test_optimal_probability_keeps_the_kind_and_broadcasts():
    q = torch.linspace(0, 1, 5, dtype=torch.float64)
    p = torch.tensor([[0.0], [1.0], [4.0]], dtype=torch.float64)
    result = optimal_probability(q, p)
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float64 and result.shape == (3, 5)
    assert not torch.isnan(result).any()
    torch.testing.assert_close(result[1], q)
    torch.testing.assert_close(result[2], 4 * q / (4 * q + 1 - q))
    assert result[0].tolist() == [0.0] * 5
    as_numpy = optimal_probability(q.numpy(), p.numpy())
    assert isinstance(as_numpy, np.ndarray)
    np.testing.assert_allclose(as_numpy, result.numpy())
    mixed = optimal_probability(0.25, torch.tensor([1.0, 3.0]))
    assert isinstance(mixed, torch.Tensor) and mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, torch.tensor([0.25, 0.5]))
    assert isinstance(optimal_probability(np.float64(0.25), 3.0), np.ndarray)


def test_optimal_logit_infinities_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert optimal_logit(0.0, 2.0) == -math.inf
        assert optimal_logit(1.0, 2.0) == math.inf
        assert optimal_logit(0.3, 0.0) == -math.inf
        assert optimal_logit(1.0, 0.0) == -math.inf
        q = np.array([0.0, 0.5, 1.0, 1.0])
        p = np.array([2.0, 2.0, 2.0, 0.0])
        np.testing.assert_array_equal(optimal_logit(q, p), [-np.inf, math.log(2), np.inf, -np.inf])
        result = optimal_logit(torch.tensor(q), torch.tensor(p))
        assert isinstance(result, torch.Tensor)
        assert result.tolist() == [-math.inf, pytest.approx(math.log(2)), math.inf, -math.inf]


@settings(max_examples=50, deadline=None)
@given(q=st.floats(1e-6, 1 - 1e-6), p=st.floats(1e-3, 1e3))
def test_optimal_logit_is_the_logit_of_optimal_probability(q, p):
    probability = optimal_probability(q, p)
    logit_of_probability = math.log(probability) - math.log1p(-probability)
    assert optimal_logit(q, p) == pytest.approx(logit_of_probability, rel=1e-6, abs=1e-6)
    assert optimal_logit(q, p) == pytest.approx(math.log(q / (1 - q)) + math.log(p), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("function", [optimal_probability, optimal_logit])
def test_optimal_errors(function):
    with pytest.raises(ValueError, match=r"q holds 1.5; expected frequencies in \[0, 1\]") as info:
        function(1.5, 2.0)
    assert "q = num_pos / n" in str(info.value)
    with pytest.raises(ValueError, match=r"q holds nan"):
        function(torch.tensor([0.5, float("nan")]), 2.0)
    with pytest.raises(ValueError, match="pos_weight holds -1.0; expected pos_weight >= 0") as info:
        function(np.array([0.5]), np.array([-1.0]))
    assert "bw.pos_weight_from_counts(num_pos, num_neg)" in str(info.value)
    with pytest.raises(TypeError, match="q is a str") as info:
        function("0.5", 2.0)
    assert "np.asarray(q)" in str(info.value)


# --------------------------------------------------------------------------------------------------
# values a dtype cannot hold, and the limit at pos_weight = inf (issue 23)
# --------------------------------------------------------------------------------------------------


def test_pos_weight_from_counts_refuses_a_ratio_its_dtype_holds_as_inf_or_zero():
    with pytest.raises(ValueError, match=r"num_neg / num_pos at channel\(s\) \[1\] is \[1e\+39\], which float32 holds as inf"):
        pos_weight_from_counts([1.0, 1.0], [3.0, 1e39])
    with pytest.raises(ValueError, match="holds as 0"):
        pos_weight_from_counts(1e50, 1.0)
    # near misses: float64 holds both, and a ratio float32 holds
    assert pos_weight_from_counts([1.0, 1.0], [3.0, 1e39], dtype=torch.float64).tolist() == [3.0, 1e39]
    assert torch.isfinite(pos_weight_from_counts(1.0, 3e38)).all()


def test_optimal_probability_at_an_infinite_pos_weight_is_the_limit():
    assert optimal_probability(0.5, math.inf) == 1.0
    assert optimal_probability(0.0, math.inf) == 0.0
    assert optimal_probability(1e-12, math.inf) == 1.0
    as_numpy = optimal_probability(np.array([0.0, 0.3, 1.0]), np.inf)
    assert as_numpy.tolist() == [0.0, 1.0, 1.0]
    as_tensor = optimal_probability(torch.tensor([0.0, 0.3, 1.0]), math.inf)
    assert as_tensor.tolist() == [0.0, 1.0, 1.0] and not torch.isnan(as_tensor).any()
    # the limit of the finite formula: a huge but finite weight is already there
    assert optimal_probability(0.3, 1e300) == pytest.approx(1.0)
    assert optimal_probability(torch.tensor([0.3]), torch.tensor([1e30])).item() == pytest.approx(1.0)
