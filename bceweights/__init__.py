"""bceweights: weighted binary cross-entropy for PyTorch that is hard to get wrong.

    import bceweights as bw
    loss = bw.bce_with_logits(logits, target, weight=mask.unsqueeze(1), pos_weight=[6., 30., 1.], channel_dim=1)

See the notebooks for the lessons and ``bw.explain`` for how an operand lines up with the input.

Layout (imports go one way, down this list; nothing here imports :mod:`bceweights.lessons`):

* :mod:`~bceweights.messages` (the error-message builder), :mod:`~bceweights.errors`,
  :mod:`~bceweights.checks` (value checks and their switch), :mod:`~bceweights.shapes` (how an
  operand lines up with the input);
* :mod:`~bceweights.prepared`: every argument check of the loss, and :class:`~bceweights.prepared.Prepared`;
* :mod:`~bceweights.eager` (the eager formula), :mod:`bceweights.fused` (the fused pass only),
  :mod:`~bceweights.backend` (which of the two runs a call, and the fallback);
* :mod:`~bceweights.loss`: the public functions and modules; :mod:`~bceweights.explain`;
* :mod:`bceweights.weights`: weight builders (counts, streaming, classes, maps, optimum);
* :mod:`bceweights.audit`: ``with bw.audit() as report:`` reads the BCE calls of unmodified PyTorch
  code and reports the weighting bugs (rules, interception, report, ``python -m bceweights.audit``); it
  imports the core, and nothing in the core imports it (this file only re-exports :func:`audit`).

:mod:`bceweights.lessons` (data, model, metrics, explorers, exercises) imports the core, never the
other way; it needs the ``lessons`` extra (``pip install "bceweights[lessons]"``). The core needs
only torch and numpy.
"""

from bceweights import audit
from bceweights.audit import AuditError
from bceweights.checks import set_value_checks, value_checks
from bceweights.errors import WeightShapeError
from bceweights.explain import Explanation, explain
from bceweights.loss import (
    BCEWithLogits,
    FocalBCEWithLogits,
    bce_with_logits,
    focal_bce_with_logits,
)
from bceweights.shapes import expand_mask, per_channel
from bceweights.weights import (
    balanced_weights,
    count_positives,
    median_frequency_weights,
    optimal_logit,
    optimal_probability,
    pos_weight_from_counts,
    pos_weight_from_targets,
    rebalance_map,
    unet_weight_map,
)

__version__ = "0.1.0"

__all__ = [
    "AuditError",
    "BCEWithLogits",
    "Explanation",
    "FocalBCEWithLogits",
    "WeightShapeError",
    "audit",
    "balanced_weights",
    "bce_with_logits",
    "count_positives",
    "expand_mask",
    "explain",
    "focal_bce_with_logits",
    "median_frequency_weights",
    "optimal_logit",
    "optimal_probability",
    "per_channel",
    "pos_weight_from_counts",
    "pos_weight_from_targets",
    "rebalance_map",
    "set_value_checks",
    "unet_weight_map",
    "value_checks",
]
