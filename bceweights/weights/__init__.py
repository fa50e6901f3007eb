"""Weight builders: turn counts, targets or a dataset into ``pos_weight``, class weights and weight maps.

Every builder gives a float tensor shaped for the place it goes:

==============================================  ===========================  =====================================
builder                                         result shape                 use it as
==============================================  ===========================  =====================================
``pos_weight_from_counts(num_pos, num_neg)``    ``(1,)`` or ``(C,)``         ``pos_weight`` (with ``channel_dim=1``)
``pos_weight_from_targets(targets)``            ``(C,)``; ``(1,)`` global    ``pos_weight`` (with ``channel_dim=1``)
``count_positives(targets)``                    two ``(C,)`` tensors         the counts behind the two above
``balanced_weights(counts)``                    ``(K,)``                     per-class ``weight``
``median_frequency_weights(targets, ...)``      ``(K,)``                     per-class ``weight``
``rebalance_map(target, ratio)``                ``target.shape``             per-element ``weight``
``unet_weight_map(labels)``                     ``labels.shape``             per-pixel ``weight``
``optimal_probability(q, pos_weight)``          like ``q``                   what a trained model will predict
``optimal_logit(q, pos_weight)``                like ``q``                   the logit it will output
==============================================  ===========================  =====================================

``targets`` may be one tensor or any iterable of batches (a list, a ``DataLoader``); batches are
counted one at a time and never concatenated, so a dataset larger than memory is fine.

Modules, one concern each; each imports only modules above it in this list (and none the loss):

* :mod:`~bceweights.weights.counts`: ``pos_weight`` from counts, and the count helpers;
* :mod:`~bceweights.weights.streaming`: counting over a tensor or a dataset of batches;
* :mod:`~bceweights.weights.classes`: per-class weights (balanced, median frequency);
* :mod:`~bceweights.weights.maps`: per-element maps (:func:`rebalance_map`, :func:`unet_weight_map`);
* :mod:`~bceweights.weights.optimum`: where ``pos_weight`` moves the optimum (no other dependency).
"""

from __future__ import annotations

from bceweights.weights.classes import balanced_weights, median_frequency_weights
from bceweights.weights.counts import Counts, pos_weight_from_counts
from bceweights.weights.maps import rebalance_map, unet_weight_map
from bceweights.weights.optimum import optimal_logit, optimal_probability
from bceweights.weights.streaming import Targets, count_positives, pos_weight_from_targets

__all__ = [
    "Counts",
    "Targets",
    "balanced_weights",
    "count_positives",
    "median_frequency_weights",
    "optimal_logit",
    "optimal_probability",
    "pos_weight_from_counts",
    "pos_weight_from_targets",
    "rebalance_map",
    "unet_weight_map",
]
