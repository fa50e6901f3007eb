"""The U-Net weight map against cases small enough to compute by hand, its symmetries and its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bceweights.lessons.cells import touching_cells
from bceweights.weights.maps import class_balance_weights, nearest_two_distances, unet_weight_map
from bceweights.loss import bce_with_logits


def border(distance_sum: float, w0: float = 10.0, sigma: float = 5.0) -> float:
    return w0 * math.exp(-(distance_sum**2) / (2 * sigma**2))


def test_two_one_pixel_objects_on_a_strip():
    # object 1 at column 0, object 2 at column 3; background columns 1, 2, 4, 5, 6.
    labels = np.array([[1, 0, 0, 2, 0, 0, 0]])
    # d1 + d2 by hand: col 1: 1 + 2, col 2: 1 + 2, col 4: 1 + 4, col 5: 2 + 5, col 6: 3 + 6.
    sums = {1: 3.0, 2: 3.0, 4: 5.0, 5: 7.0, 6: 9.0}
    weight = unet_weight_map(labels, w0=10.0, sigma=5.0, class_balance=False)
    expected = [1.0] + [1.0 + border(sums[c]) if c in sums else 1.0 for c in range(1, 7)]
    assert weight.shape == (1, 7) and weight.dtype == torch.float32
    torch.testing.assert_close(weight[0], torch.tensor(expected))


def test_second_nearest_is_not_the_farthest():
    labels = np.array([[1, 0, 2, 0, 0, 0, 3]])
    d1, d2 = nearest_two_distances(labels)
    # column 1: distances to objects 1, 2, 3 are 1, 1, 5 -> d1 = d2 = 1; column 4: 4, 2, 2 -> 2, 2; column 5: 5, 3, 1 -> 1, 3.
    np.testing.assert_allclose(d1[0], [0, 1, 0, 1, 2, 1, 0])
    np.testing.assert_allclose(d2[0], [2, 1, 2, 3, 2, 3, 4])  # on an object, d2 is the next object
    weight = unet_weight_map(labels, w0=4.0, sigma=2.0, class_balance=False)
    expected = [1.0, 1 + border(2, 4, 2), 1.0, 1 + border(4, 4, 2), 1 + border(4, 4, 2), 1 + border(4, 4, 2), 1.0]
    torch.testing.assert_close(weight[0], torch.tensor(expected))


def test_euclidean_distance_on_the_diagonal():
    labels = np.zeros((3, 3), dtype=np.int64)
    labels[0, 0], labels[2, 2] = 1, 2
    weight = unet_weight_map(labels, w0=10.0, sigma=5.0, class_balance=False)
    # centre: sqrt(2) to each object; corner (0, 2): 2 to each object.
    assert weight[1, 1].item() == pytest.approx(1 + border(2 * math.sqrt(2)))
    assert weight[0, 2].item() == pytest.approx(1 + border(4.0))
    assert weight[0, 0].item() == weight[2, 2].item() == 1.0


def test_class_balance_term_by_hand():
    labels = np.array([[1, 0, 0, 2, 0, 0, 0]])  # 2 foreground, 5 background pixels, n = 7
    class_only = unet_weight_map(labels, w0=0.0)
    torch.testing.assert_close(class_only[0], torch.tensor([7 / 4, 7 / 10, 7 / 10, 7 / 4, 7 / 10, 7 / 10, 7 / 10]))
    # Both classes carry n / 2 in total, so the term averages to 1.
    assert class_only.mean().item() == pytest.approx(1.0)
    with_border = unet_weight_map(labels, w0=10.0, sigma=5.0)
    torch.testing.assert_close(with_border[0, 1], torch.tensor(7 / 10 + border(3.0)))


def test_w0_zero_gives_the_class_term_only():
    labels = touching_cells(48, 48, n_cells=5, radius=(8.0, 12.0), seed=3)
    torch.testing.assert_close(
        unet_weight_map(labels, w0=0.0), torch.from_numpy(class_balance_weights(labels)).float()
    )
    assert torch.equal(unet_weight_map(labels, w0=0.0, class_balance=False), torch.ones(48, 48))


def test_border_term_only_on_background_pixels():
    labels = touching_cells(48, 48, n_cells=5, radius=(8.0, 12.0), seed=1)
    weight = unet_weight_map(labels, class_balance=False)
    assert torch.equal(weight[torch.from_numpy(labels > 0)], torch.ones(int((labels > 0).sum())))
    background = weight[torch.from_numpy(labels == 0)]
    assert background.min() >= 1.0 and background.max() > 1.0 + 0.5 * 10.0


def test_fewer_than_two_objects_has_no_border_term():
    one = np.zeros((5, 6), dtype=np.int64)
    one[2, 2:4] = 7
    torch.testing.assert_close(unet_weight_map(one), torch.from_numpy(class_balance_weights(one)).float())
    assert torch.equal(unet_weight_map(one, class_balance=False), torch.ones(5, 6))
    empty = np.zeros((4, 4), dtype=np.int64)
    assert torch.equal(unet_weight_map(empty), torch.ones(4, 4))
    full = np.ones((4, 4), dtype=np.int64)
    assert torch.equal(unet_weight_map(full), torch.ones(4, 4))


def test_symmetries():
    labels = touching_cells(40, 52, n_cells=6, radius=(7.0, 11.0), seed=5)
    weight = unet_weight_map(labels)
    torch.testing.assert_close(unet_weight_map(labels[::-1].copy()), weight.flip(0))
    torch.testing.assert_close(unet_weight_map(labels[:, ::-1].copy()), weight.flip(1))
    torch.testing.assert_close(unet_weight_map(labels.T.copy()), weight.T)
    # Which number an object carries does not matter.
    permutation = np.array([0, *np.random.default_rng(0).permutation(np.arange(1, labels.max() + 1)) + 10])
    torch.testing.assert_close(unet_weight_map(permutation[labels]), weight)


def test_batched_equals_per_image_and_numpy_equals_torch():
    batch = np.stack([touching_cells(32, 32, n_cells=4, radius=(6.0, 9.0), seed=s) for s in range(3)])
    batch[2] = 0  # an empty image in the batch
    weight = unet_weight_map(torch.from_numpy(batch), w0=5.0, sigma=3.0)
    assert weight.shape == (3, 32, 32)
    for index in range(3):
        torch.testing.assert_close(weight[index], unet_weight_map(batch[index], w0=5.0, sigma=3.0))
    for dtype in (np.uint8, np.int32):
        torch.testing.assert_close(unet_weight_map(batch.astype(dtype), w0=5.0, sigma=3.0), weight)
    assert unet_weight_map(batch, dtype=torch.float64).dtype == torch.float64


def test_map_is_a_valid_weight_for_the_loss():
    labels = torch.from_numpy(np.stack([touching_cells(32, 32, n_cells=4, radius=(6.0, 9.0), seed=s) for s in (0, 1)]))
    weight = unet_weight_map(labels)  # (N, H, W)
    logits = torch.zeros(2, 1, 32, 32)
    target = (labels > 0).float().unsqueeze(1)
    loss = bce_with_logits(logits, target, weight=weight.unsqueeze(1), reduction="none")
    torch.testing.assert_close(loss, math.log(2) * weight.unsqueeze(1))


def test_touching_cells_is_seeded_and_touching():
    first, again = touching_cells(seed=4), touching_cells(seed=4)
    assert np.array_equal(first, again) and not np.array_equal(first, touching_cells(seed=5))
    assert first.dtype == np.int64 and first.shape == (96, 96)
    assert set(np.unique(first)) == set(range(first.max() + 1)) and first.max() >= 5
    d1, d2 = nearest_two_distances(first)
    # Touching: background pixels with a cell on each side, one pixel away.
    assert np.sum((first == 0) & (d1 + d2 <= 2.0)) >= 20


@pytest.mark.parametrize(
    ("labels", "error", "fix"),
    [
        (torch.zeros(4, 4), TypeError, "labels.long()"),
        (np.zeros((4, 4), dtype=np.float32), TypeError, "labels.astype(np.int64)"),
        (torch.zeros(4, 4, dtype=torch.bool), TypeError, "scipy.ndimage.label(mask)"),
        (np.zeros((4, 4), dtype=bool), TypeError, "scipy.ndimage.label(mask)"),
        ([[0, 1], [1, 0]], TypeError, "torch.as_tensor(labels)"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.long), ValueError, "labels.squeeze(1)"),
        (torch.zeros(6, dtype=torch.long), ValueError, "labels[None, :]"),
        (torch.zeros(2, 3, 4, 4, dtype=torch.long), ValueError, "labels.reshape(-1, 4, 4)"),
        (torch.tensor([[0, -1], [1, 2]]), ValueError, "labels.clamp(min=0)"),
    ],
    ids=["float tensor", "float array", "bool tensor", "bool array", "list", "N1HW", "1-D", "4-D", "negative"],
)
def test_bad_labels_say_what_to_write(labels, error, fix):
    with pytest.raises(error) as info:
        unet_weight_map(labels)
    message = str(info.value)
    assert fix in message and "Write instead" in message
    if hasattr(labels, "shape"):
        assert str(tuple(labels.shape)) in message and str(labels.dtype) in message


@pytest.mark.parametrize(("w0", "sigma", "fix"), [(-1.0, 5.0, "w0=10.0"), (10.0, 0.0, "sigma=5.0"), (10.0, math.nan, "sigma=5.0")])
def test_bad_parameters(w0, sigma, fix):
    with pytest.raises(ValueError, match=fix):
        unet_weight_map(np.zeros((3, 3), dtype=np.int64), w0=w0, sigma=sigma)
