"""Synthetic data, the tiny model and its training loop, and the per-channel metrics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from bceweights.lessons import data
from bceweights.lessons.metrics import (
    channel_counts,
    channel_metrics,
    one_hot_prediction,
    one_hot_target,
    precision_recall_curve,
)
from bceweights.lessons.model import TinyUNet, evaluate, predict, reproducible, train

# ---------------------------------------------------------------------------------------------
# Metrics against counts done by hand.


def test_channel_metrics_hand_counted():
    # channel 0: TP=2, FP=1, FN=1, TN=0; channel 1: TP=0, FP=0, FN=2, TN=2 (nothing predicted).
    prediction = torch.tensor([[[1, 1], [1, 0]], [[0, 0], [0, 0]]], dtype=torch.bool).view(1, 2, 2, 2)
    target = torch.tensor([[[1, 1], [0, 1]], [[1, 1], [0, 0]]], dtype=torch.float32).view(1, 2, 2, 2)
    m = channel_metrics(prediction, target)
    assert m.counts.tp.tolist() == [2, 0]
    assert m.counts.fp.tolist() == [1, 0]
    assert m.counts.fn.tolist() == [1, 2]
    assert m.counts.tn.tolist() == [0, 2]
    assert m.precision.tolist() == pytest.approx([2 / 3, 0.0])  # 0/0 -> zero_division
    assert m.recall.tolist() == pytest.approx([2 / 3, 0.0])
    assert m.f1.tolist() == pytest.approx([4 / 6, 0.0])
    assert m.iou.tolist() == pytest.approx([2 / 4, 0.0])


def test_zero_division_value_is_used_only_for_empty_denominators():
    prediction = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    target = torch.zeros(1, 1, 2, 2)
    m = channel_metrics(prediction, target, zero_division=1.0)
    assert m.precision.tolist() == [1.0] and m.recall.tolist() == [1.0]
    target[0, 0, 0, 0] = 1
    assert channel_metrics(prediction, target, zero_division=1.0).recall.tolist() == [0.0]


def test_channel_dim_other_than_one():
    prediction = torch.tensor([[1, 0, 1], [1, 1, 0]], dtype=torch.bool)  # (N=2, C=3) read with channel_dim=1
    target = torch.tensor([[1, 0, 0], [1, 0, 0]], dtype=torch.float32)
    by_dim1 = channel_metrics(prediction, target, channel_dim=1)
    by_last = channel_metrics(prediction.T, target.T, channel_dim=0)
    assert by_dim1.counts.tp.tolist() == by_last.counts.tp.tolist() == [2, 0, 0]
    assert by_dim1.counts.fp.tolist() == [0, 1, 1]


def test_shape_mismatch_names_the_fix():
    with pytest.raises(ValueError, match="one_hot"):
        channel_metrics(torch.zeros(2, 3, 4, 4, dtype=torch.bool), torch.zeros(2, 4, 4))


def test_one_hot_helpers_and_multiclass_evaluate():
    logits = torch.tensor([[[[2.0]], [[5.0]], [[-1.0]]]])  # (1, 3, 1, 1): argmax is class 1
    assert one_hot_prediction(logits).view(-1).tolist() == [False, True, False]
    labels = torch.tensor([[[1]]])
    assert one_hot_target(labels, 3).view(-1).tolist() == [False, True, False]
    m = evaluate(logits, labels)
    assert m.recall.tolist() == [0.0, 1.0, 0.0]


def test_table_rounds_and_names_rows():
    m = channel_metrics(torch.tensor([[True, False]]).view(1, 2, 1), torch.tensor([[1.0, 1.0]]).view(1, 2, 1))
    text = m.table(["red", "green"])
    assert text.splitlines()[1].split() == ["red", "1.000", "1.000", "1.000", "1.000"]
    assert text.splitlines()[2].split() == ["green", "0.000", "0.000", "0.000", "0.000"]
    with pytest.raises(ValueError, match="one name per channel"):
        m.table(["red"])


def test_precision_recall_curve_by_hand():
    scores = torch.tensor([0.9, 0.8, 0.8, 0.3, 0.1])
    target = torch.tensor([1, 0, 1, 1, 0])
    curve = precision_recall_curve(scores, target)
    # Thresholds at the distinct scores, highest first; the tie at 0.8 switches together.
    assert curve.thresholds.tolist() == pytest.approx([0.9, 0.8, 0.3, 0.1])
    assert curve.precision.tolist() == pytest.approx([1.0, 2 / 3, 3 / 4, 3 / 5])
    assert curve.recall.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    assert curve.at(0.95) == (1.0, 0.0)  # nothing predicted
    assert curve.at(0.85) == pytest.approx((1.0, 1 / 3))
    assert curve.at(0.8) == pytest.approx((2 / 3, 2 / 3))  # >= threshold
    assert curve.at(0.0) == pytest.approx((3 / 5, 1.0))
    # AP = sum (R_k - R_{k-1}) P_k = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/4
    assert curve.average_precision() == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_precision_recall_curve_matches_channel_metrics_at_every_threshold():
    g = torch.Generator().manual_seed(3)
    scores = torch.rand(500, generator=g)
    target = (torch.rand(500, generator=g) < scores).float()
    curve = precision_recall_curve(scores, target)
    for threshold in (0.05, 0.3, 0.5, 0.77, 0.99):
        m = channel_metrics((scores >= threshold).view(1, 1, -1), target.view(1, 1, -1))
        precision, recall = curve.at(threshold)
        assert precision == pytest.approx(float(m.precision[0]))
        assert recall == pytest.approx(float(m.recall[0]))



def test_precision_recall_curve_is_scikit_learns_curve_and_average_precision():
    from sklearn.metrics import average_precision_score
    from sklearn.metrics import precision_recall_curve as sklearn_curve

    g = torch.Generator().manual_seed(5)
    scores = torch.round(torch.rand(2000, generator=g, dtype=torch.float64) * 50) / 50  # many ties
    target = (torch.rand(2000, generator=g, dtype=torch.float64) < 0.3 * scores).double()
    curve = precision_recall_curve(scores, target)
    precision, recall, thresholds = sklearn_curve(target.numpy(), scores.numpy())
    np.testing.assert_array_equal(curve.thresholds, thresholds[::-1])
    np.testing.assert_array_equal(curve.precision, precision[:-1][::-1])
    np.testing.assert_array_equal(curve.recall, recall[:-1][::-1])
    assert curve.average_precision() == average_precision_score(target.numpy(), scores.numpy())
    assert (curve.positives, curve.total) == (int(target.sum()), 2000)


def test_precision_recall_curve_without_positives_is_finite_and_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        curve = precision_recall_curve(torch.linspace(0, 1, 7), torch.zeros(7))
    assert curve.recall.tolist() == [0.0] * 7 and curve.precision.tolist() == [0.0] * 7
    assert curve.average_precision() == 0.0 and curve.at(2.0) == (1.0, 0.0)


def test_channel_counts_equal_scikit_learns_multilabel_confusion_matrix():
    from sklearn.metrics import multilabel_confusion_matrix, precision_recall_fscore_support

    g = torch.Generator().manual_seed(2)
    prediction = torch.rand(6, 3, 8, 8, generator=g) > 0.6
    target = torch.rand(6, 3, 8, 8, generator=g) > 0.8
    counts = channel_counts(prediction, target)
    flat = lambda t: t.movedim(1, -1).reshape(-1, 3).numpy()  # noqa: E731
    matrix = multilabel_confusion_matrix(flat(target), flat(prediction))  # [[tn, fp], [fn, tp]] per channel
    assert counts.tn.tolist() == matrix[:, 0, 0].tolist() and counts.fp.tolist() == matrix[:, 0, 1].tolist()
    assert counts.fn.tolist() == matrix[:, 1, 0].tolist() and counts.tp.tolist() == matrix[:, 1, 1].tolist()
    precision, recall, f1, _ = precision_recall_fscore_support(flat(target), flat(prediction), zero_division=0.0)
    m = channel_metrics(prediction, target)
    np.testing.assert_allclose(m.precision.numpy(), precision)
    np.testing.assert_allclose(m.recall.numpy(), recall)
    np.testing.assert_allclose(m.f1.numpy(), f1)

# ---------------------------------------------------------------------------------------------
# Data.


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.2])
def test_shapes_fraction_matches_parameter(fraction):
    shapes = data.make_shapes(300, 32, fraction, seed=1)
    assert shapes.images.shape == shapes.masks.shape == (300, 1, 32, 32)
    assert float(shapes.fractions()[0]) == pytest.approx(fraction, rel=0.08)


def test_shapes_with_several_objects_do_not_overlap():
    shapes = data.make_shapes(200, 32, 0.2, objects=4, seed=2)
    assert float(shapes.fractions()[0]) == pytest.approx(0.2, rel=0.08)


def test_plates_fractions_and_colours():
    plates = data.make_plates(300, 32, fractions=(0.06, 0.01, 0.25), seed=0)
    assert plates.masks.shape == (300, 3, 32, 32) and plates.images.shape == (300, 1, 32, 32)
    assert plates.fractions().tolist() == pytest.approx([0.06, 0.01, 0.25], rel=0.08)
    red, green, blue = plates.masks.unbind(1)
    assert torch.all(red <= blue)  # every red pixel is on the plate: magenta
    assert not torch.any((green > 0) & (blue > 0))
    labels = data.rgb_to_labels(plates.masks)
    assert labels.shape == (300, 32, 32) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) == {0, 1, 2, 3}
    assert torch.equal(data.labels_to_rgb(labels), plates.masks)


def test_rgb_to_labels_refuses_a_colour_without_class():
    masks = torch.zeros(1, 3, 2, 2)
    masks[0, 0, 0, 0] = 1  # pure red is not one of black, green, blue, magenta
    with pytest.raises(ValueError, match=r"\(1, 0, 0\)"):
        data.rgb_to_labels(masks)


def test_volume_shape_and_fraction():
    volume = data.make_volume((60, 40, 40), 1 / 95, seed=0)
    assert volume.masks.shape == volume.images.shape == (1, 1, 60, 40, 40)
    assert float(volume.fractions()[0]) == pytest.approx(1 / 95, rel=0.3)


def test_same_seed_same_data_other_seed_other_data():
    a, b = data.make_plates(8, seed=5), data.make_plates(8, seed=5)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, data.make_plates(8, seed=6).images)


def test_fraction_out_of_range_names_the_fix():
    with pytest.raises(ValueError, match="fraction=0.05"):
        data.make_shapes(4, 32, 0.0)
    with pytest.raises(ValueError, match="objects=1"):
        data.make_shapes(4, 32, 0.5, objects=9)


# ---------------------------------------------------------------------------------------------
# Model and training.


def test_model_shapes_and_output_bias():
    model = TinyUNet(1, 3, output_bias=[-1.0, -2.0, -3.0])
    logits = predict(model, torch.zeros(2, 1, 16, 16))
    assert logits.shape == (2, 3, 16, 16)
    assert model.head.bias.tolist() == [-1.0, -2.0, -3.0]
    with pytest.raises(ValueError, match="even height and width"):
        model(torch.zeros(1, 1, 15, 16))


def test_model_seed_fixes_weights_and_leaves_global_rng_alone():
    torch.manual_seed(0)
    expected_next = torch.rand(1)
    torch.manual_seed(0)
    a = TinyUNet(seed=3)
    assert torch.equal(torch.rand(1), expected_next)
    b = TinyUNet(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def _tiny_problem():
    return data.make_shapes(32, 16, 0.2, seed=0, noise=0.2)


def test_train_decreases_loss_and_learns():
    shapes = _tiny_problem()
    q = float(shapes.fractions()[0])
    model = TinyUNet(seed=0, output_bias=math.log(q / (1 - q)))
    history = train(model, shapes.images, shapes.masks, epochs=8, batch_size=8, lr=1e-2, progress=False)
    assert len(history.loss) == len(history.metrics) == 8
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert float(history.final.iou[0]) > 0.5


def test_train_is_deterministic_with_a_seed():
    shapes = _tiny_problem()

    def run(seed: int) -> list[float]:
        model = TinyUNet(seed=0)
        return train(model, shapes.images, shapes.masks, epochs=3, batch_size=8, seed=seed, progress=False).loss

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_train_restores_threads_and_determinism_settings():
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    shapes = _tiny_problem()
    train(TinyUNet(), shapes.images, shapes.masks, epochs=1, progress=False)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    with reproducible(1):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()


def test_train_with_class_indices_uses_cross_entropy_and_argmax_metrics():
    plates = data.make_plates(16, 16, fractions=(0.06, 0.04, 0.25), seed=0)
    labels = data.rgb_to_labels(plates.masks)
    history = train(TinyUNet(1, 4), plates.images, labels, epochs=2, batch_size=8, progress=False)
    assert history.final.precision.shape == (4,)


def test_train_progress_bar_writes_text_outside_jupyter(capsys):
    shapes = _tiny_problem()
    train(TinyUNet(), shapes.images, shapes.masks, epochs=2, description="tiny run")
    err = capsys.readouterr().err
    assert "tiny run" in err and "2/2" in err
    train(TinyUNet(), shapes.images, shapes.masks, epochs=1, progress=False)
    assert capsys.readouterr().err == ""


def test_train_refuses_unpaired_data():
    with pytest.raises(ValueError, match="pair up"):
        train(TinyUNet(), torch.zeros(4, 1, 8, 8), torch.zeros(3, 1, 8, 8), progress=False)


def test_history_series_and_final():
    shapes = _tiny_problem()
    history = train(TinyUNet(), shapes.images, shapes.masks, epochs=2, progress=False)
    assert history.series("recall") == [float(m.recall[0]) for m in history.metrics]
    assert np.isfinite(history.seconds)
    with pytest.raises(ValueError, match="unknown metric"):
        history.series("accuracy")
