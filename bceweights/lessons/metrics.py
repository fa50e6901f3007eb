"""Segmentation metrics per channel, and scikit-learn's precision-recall curve with a threshold lookup.

For one channel, with predictions ``ŷ`` and targets ``y`` in {0, 1} counted over every pixel of every image:

    TP = Σ ŷ y      FP = Σ ŷ (1 - y)      FN = Σ (1 - ŷ) y
    precision = TP / (TP + FP)      recall = TP / (TP + FN)
    F1 = 2 TP / (2 TP + FP + FN)    IoU = TP / (TP + FP + FN)

A ratio whose denominator is 0 (no predicted positives for precision, no positives at all for recall)
is reported as ``zero_division`` (default 0.0, as scikit-learn), never as NaN.

The counts are tensor code on ``(N, C, *)`` masks, the training loop's per-epoch evaluation: they equal
``sklearn.metrics.multilabel_confusion_matrix`` on the masks flattened to ``(pixels, C)`` (the tests
check it), at a fifth of its cost. The precision-recall curve and average precision come from
scikit-learn (:func:`precision_recall_curve`); scikit-learn is imported only there.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from bceweights.messages import error_message
from bceweights.shapes import shape_str


@dataclass(frozen=True)
class ChannelCounts:
    """True positives, false positives, false negatives and true negatives, each ``(C,)`` int64."""

    tp: Tensor
    fp: Tensor
    fn: Tensor
    tn: Tensor


@dataclass(frozen=True)
class ChannelMetrics:
    """Per-channel precision, recall, F1 and IoU, each ``(C,)`` float64, plus the counts they come from."""

    precision: Tensor
    recall: Tensor
    f1: Tensor
    iou: Tensor
    counts: ChannelCounts

    def as_dict(self) -> dict[str, list[float]]:
        """``{"precision": [...], "recall": [...], "f1": [...], "iou": [...]}`` as Python floats."""
        return {name: getattr(self, name).tolist() for name in ("precision", "recall", "f1", "iou")}

    def table(self, names: Sequence[str] | None = None, digits: int = 3) -> str:
        """A plain-text table, one row per channel, numbers rounded to ``digits`` decimals."""
        names = list(names) if names is not None else [str(i) for i in range(len(self.precision))]
        if len(names) != len(self.precision):
            raise ValueError(error_message(
                f"table() got {len(names)} names for {len(self.precision)} channels.",
                fixes=f"metrics.table({['c' + str(i) for i in range(len(self.precision))]})",
                lead="Write instead one name per channel, e.g.",
            ))
        width = max(7, *(len(n) for n in names))
        header = f"{'channel':<{width}}  precision  recall      F1     IoU"
        rows = [
            f"{name:<{width}}  {p:>9.{digits}f}  {r:>6.{digits}f}  {f:>6.{digits}f}  {i:>6.{digits}f}"
            for name, p, r, f, i in zip(names, *(getattr(self, k).tolist() for k in ("precision", "recall", "f1", "iou")))
        ]
        return "\n".join([header, *rows])


def _check_pair(prediction: Tensor, target: Tensor) -> None:
    if prediction.shape != target.shape:
        raise ValueError(error_message(
            f"prediction has shape {shape_str(prediction.shape)} but target has shape {shape_str(target.shape)}",
            "metrics compare them element by element.",
            "channel_metrics(one_hot_prediction(logits), F.one_hot(target, C).movedim(-1, 1))",
            lead="Write instead, for class indices (N, H, W) and logits (N, C, H, W)",
        ))


def channel_counts(prediction: Tensor, target: Tensor, channel_dim: int = 1) -> ChannelCounts:
    """TP, FP, FN, TN per channel of binary ``prediction`` and ``target`` of the same shape ``(N, C, *)``.

    Both are read as booleans (``> 0.5`` for floating tensors). Every dimension except ``channel_dim``
    is summed over; pass a tensor with a channel dimension of size 1 for a binary problem.
    """
    _check_pair(prediction, target)
    as_bool = lambda t: t if t.dtype == torch.bool else t > 0.5  # noqa: E731
    pred = as_bool(prediction).movedim(channel_dim, 0).reshape(prediction.shape[channel_dim], -1)
    true = as_bool(target).movedim(channel_dim, 0).reshape(target.shape[channel_dim], -1)
    tp = (pred & true).sum(dim=1)
    fp = (pred & ~true).sum(dim=1)
    fn = (~pred & true).sum(dim=1)
    tn = (~pred & ~true).sum(dim=1)
    return ChannelCounts(tp, fp, fn, tn)


def _ratio(numerator: Tensor, denominator: Tensor, zero_division: float) -> Tensor:
    numerator, denominator = numerator.double(), denominator.double()
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return torch.where(denominator > 0, numerator / safe, torch.full_like(numerator, zero_division))


def metrics_from_counts(counts: ChannelCounts, zero_division: float = 0.0) -> ChannelMetrics:
    """Precision, recall, F1 and IoU from counts (formulas in the module docstring)."""
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    return ChannelMetrics(
        precision=_ratio(tp, tp + fp, zero_division),
        recall=_ratio(tp, tp + fn, zero_division),
        f1=_ratio(2 * tp, 2 * tp + fp + fn, zero_division),
        iou=_ratio(tp, tp + fp + fn, zero_division),
        counts=counts,
    )


def channel_metrics(
    prediction: Tensor, target: Tensor, channel_dim: int = 1, zero_division: float = 0.0
) -> ChannelMetrics:
    """Per-channel precision, recall, F1 and IoU of binary ``prediction`` against ``target``, both ``(N, C, *)``.

    For logits, threshold first: ``channel_metrics(logits > 0, target)`` is the 0.5 probability threshold.
    """
    return metrics_from_counts(channel_counts(prediction, target, channel_dim), zero_division)


def one_hot_prediction(logits: Tensor, channel_dim: int = 1) -> Tensor:
    """Single-label prediction as one-hot booleans: ``(N, C, *)`` logits -> ``(N, C, *)``, True at the argmax."""
    index = logits.argmax(dim=channel_dim, keepdim=True)
    return torch.zeros_like(logits, dtype=torch.bool).scatter_(channel_dim, index, True)


def one_hot_target(labels: Tensor, num_classes: int, channel_dim: int = 1) -> Tensor:
    """Class indices ``(N, *)`` as one-hot booleans ``(N, C, *)`` with the classes at ``channel_dim``."""
    return torch.nn.functional.one_hot(labels.long(), num_classes).bool().movedim(-1, channel_dim)


@dataclass(frozen=True)
class PRCurve:
    """scikit-learn's precision-recall curve, highest threshold first, with binary search on thresholds.

    Predicting positive when ``score >= thresholds[k]`` gives ``precision[k]`` and ``recall[k]``. All
    arrays are float64 numpy arrays of the same length (the number of distinct scores): the points of
    ``sklearn.metrics.precision_recall_curve`` in reverse order, without its closing point
    ``(recall 0, precision 1)``; the last point, at the lowest score, predicts everything positive.
    ``positives`` and ``total`` are the counts behind the recall and the all-positive precision;
    ``average_precision_value`` is ``sklearn.metrics.average_precision_score`` of the same scores.
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    positives: int
    total: int
    average_precision_value: float = 0.0

    def at(self, threshold: float) -> tuple[float, float]:
        """``(precision, recall)`` of predicting positive when ``score >= threshold``.

        Above every score nothing is predicted positive: recall 0 and precision 1 by convention (the
        curve's left end, as scikit-learn's closing point), so an operating point never becomes NaN.
        scikit-learn has no lookup of one threshold; this is a binary search in the curve.
        """
        # thresholds is decreasing; k = number of thresholds >= threshold.
        k = int(np.searchsorted(-self.thresholds, -threshold, side="right"))
        if k == 0:
            return 1.0, 0.0
        return float(self.precision[k - 1]), float(self.recall[k - 1])

    def average_precision(self) -> float:
        """``sklearn.metrics.average_precision_score``: Σ (R_k − R_{k−1}) P_k, the step-wise area under the curve."""
        return self.average_precision_value


def as_flat_numpy(values: Tensor | np.ndarray) -> np.ndarray:
    """Any tensor or array as a flat float64 numpy array (detached, on the CPU)."""
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).ravel()


def precision_recall_curve(scores: Tensor | np.ndarray, target: Tensor | np.ndarray) -> PRCurve:
    """scikit-learn's precision-recall curve of ``scores`` (probabilities or logits, any shape) as a :class:`PRCurve`.

    ``target`` has the shape of ``scores`` and holds 0/1. The curve and its average precision are
    ``sklearn.metrics.precision_recall_curve`` and ``average_precision_score`` (ties share one point:
    all equal scores switch together); :meth:`PRCurve.at` then answers any threshold by binary search,
    which is what the live explorers use. Without any positive, scikit-learn sets the recall to 1
    everywhere and warns; here that warning is left out (the curve is then flat, precision 0).
    """
    from sklearn import metrics as sk_metrics

    scores_np, target_np = as_flat_numpy(scores), as_flat_numpy(target)
    if scores_np.shape != target_np.shape:
        raise ValueError(error_message(
            f"scores has {scores_np.size} elements but target has {target_np.size}",
            "they must match element by element.", "precision_recall_curve(torch.sigmoid(logits), target)",
        ))
    labels = (target_np > 0.5).astype(np.int64)
    positives = int(labels.sum())
    if scores_np.size == 0:
        empty = np.zeros(0)
        return PRCurve(empty, empty, empty, 0, 0, 0.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No positive class found in y_true", category=UserWarning)
        precision, recall, thresholds = sk_metrics.precision_recall_curve(labels, scores_np)
        average_precision = float(sk_metrics.average_precision_score(labels, scores_np)) if positives else 0.0
    if not positives:
        recall = np.zeros_like(recall)
    return PRCurve(
        thresholds=np.ascontiguousarray(thresholds[::-1], dtype=np.float64),
        precision=np.ascontiguousarray(precision[-2::-1], dtype=np.float64),
        recall=np.ascontiguousarray(recall[-2::-1], dtype=np.float64),
        positives=positives,
        total=int(scores_np.size),
        average_precision_value=average_precision,
    )
