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


# --------------------------------------------------------------------------------------------------
# the windowed distances against the exact computation (one transform of the whole image per object)


def reference_nearest_two_distances(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact d1, d2: one distance transform of the whole image per object (the slow original)."""
    from scipy import ndimage

    d1 = np.full(labels.shape, np.inf)
    d2 = np.full(labels.shape, np.inf)
    for object_id in np.unique(labels):
        if object_id == 0:
            continue
        distance = ndimage.distance_transform_edt(labels != object_id)
        d2 = np.minimum(d2, np.maximum(d1, distance))
        d1 = np.minimum(d1, distance)
    return d1, d2


def reference_unet_weight_map(labels: np.ndarray, w0: float, sigma: float, class_balance: bool) -> np.ndarray:
    """The U-Net map of one image from the exact distances, float64."""
    d1, d2 = reference_nearest_two_distances(labels)
    border = w0 * np.exp(-np.square(d1 + d2) / (2.0 * sigma * sigma))
    class_weights = class_balance_weights(labels) if class_balance else 1.0
    return class_weights + np.where(labels == 0, border, 0.0)


def random_labels(rng: np.random.Generator) -> np.ndarray:
    """Small random label images of several kinds: touching blobs, sparse specks, stripes, big ids."""
    height, width = (int(v) for v in rng.integers(1, 40, size=2))
    kind = rng.integers(4)
    if kind == 0:  # touching blobs: a coarse random grid of ids, upsampled, with background holes
        coarse = rng.integers(0, 6, size=(max(height // 4, 1), max(width // 4, 1)))
        labels = np.kron(coarse, np.ones((4, 4), dtype=np.int64))[:height, :width]
        labels = np.pad(labels, ((0, height - labels.shape[0]), (0, width - labels.shape[1])))
    elif kind == 1:  # sparse specks, each its own object
        labels = np.where(rng.random((height, width)) < 0.05, rng.integers(1, 1000, size=(height, width)), 0)
    elif kind == 2:  # stripes of objects
        labels = np.tile(rng.integers(0, 4, size=(1, width)), (height, 1))
    else:  # every pixel random, large and non-consecutive ids
        labels = rng.choice([0, 7, 10**9, 12345, 3], size=(height, width))
    return labels.astype(np.int64)


@pytest.mark.parametrize("seed", range(60))
def test_unet_weight_map_equals_the_exact_computation(seed):
    """Default (border_tolerance 1e-16): within 1e-16 * w0 of the exact map; exact mode: equal."""
    rng = np.random.default_rng(seed)
    labels = random_labels(rng)
    w0 = float(rng.choice([0.5, 10.0, 100.0]))
    sigma = float(rng.choice([0.3, 1.0, 2.5, 5.0]))
    class_balance = bool(rng.integers(2))
    expected = reference_unet_weight_map(labels, w0, sigma, class_balance)
    kwargs = {"class_balance": class_balance, "dtype": torch.float64}
    fast = unet_weight_map(labels, w0, sigma, **kwargs).numpy()
    np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-16 * w0 + 4e-16 * np.abs(expected).max())
    exact = unet_weight_map(labels, w0, sigma, border_tolerance=0.0, **kwargs).numpy()
    np.testing.assert_allclose(exact, expected, rtol=1e-15, atol=0)
    loose = unet_weight_map(labels, w0, sigma, border_tolerance=1e-3, **kwargs).numpy()
    assert np.max(np.abs(loose - expected)) <= 1e-3 * w0 + 1e-15 * np.abs(expected).max()


@pytest.mark.parametrize("seed", range(30))
def test_windowed_distances_are_exact_up_to_the_window(seed):
    rng = np.random.default_rng(100 + seed)
    labels = random_labels(rng)
    max_distance = float(rng.choice([0.5, 1.0, 3.0, 7.5]))
    exact_d1, exact_d2 = reference_nearest_two_distances(labels)
    d1, d2 = nearest_two_distances(labels, max_distance=max_distance)
    for windowed, exact in ((d1, exact_d1), (d2, exact_d2)):
        near = exact <= max_distance
        assert np.array_equal(windowed[near], exact[near])  # bit for bit where it is within reach
        assert np.all(windowed[~near] >= exact[~near])  # never smaller elsewhere
    full_d1, full_d2 = nearest_two_distances(labels)  # no max_distance: exact everywhere
    assert np.array_equal(full_d1, exact_d1) and np.array_equal(full_d2, exact_d2)


def test_windowed_map_on_touching_cells_matches_in_float32():
    labels = touching_cells(96, 96, n_cells=9, seed=7)
    expected = torch.from_numpy(reference_unet_weight_map(labels, 10.0, 5.0, True)).float()
    assert torch.equal(unet_weight_map(labels), expected)


def test_no_background_or_one_object_needs_no_distances():
    distinct = np.arange(1, 26, dtype=np.int64).reshape(5, 5)  # every pixel its own object
    assert torch.equal(unet_weight_map(distinct), torch.ones(5, 5))
    np.testing.assert_array_equal(unet_weight_map(distinct, dtype=torch.float64).numpy(),
                                  reference_unet_weight_map(distinct, 10.0, 5.0, True))


@pytest.mark.parametrize("tolerance", [-1e-3, 1.0, 2.0, math.nan])
def test_bad_border_tolerance(tolerance):
    with pytest.raises(ValueError, match=r"border_tolerance=.* must be in \[0, 1\)") as info:
        unet_weight_map(np.zeros((3, 3), dtype=np.int64), border_tolerance=tolerance)
    assert "border_tolerance=1e-16" in str(info.value)
