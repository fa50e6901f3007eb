"""Where ``pos_weight`` moves the optimum: :func:`optimal_probability` and :func:`optimal_logit`.

A model trained with ``pos_weight = p`` where a fraction ``q`` of similar inputs is positive predicts
``p q / (p q + 1 - q)``, i.e. the logit ``logit(q) + log p``. Imports: :mod:`bceweights.messages` only.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, TypeVar

import numpy as np
import torch

from bceweights.messages import error_message

#: A float, a numpy array or a tensor: each function returns the kind it is given.
ArrayLike = TypeVar("ArrayLike", float, np.ndarray, torch.Tensor)


def _check_probability_operands(q: Any, pos_weight: Any) -> None:
    """``ValueError`` if ``q`` is outside [0, 1] or ``pos_weight`` negative (NaN included)."""
    q_values = np.asarray(q.detach().cpu() if isinstance(q, torch.Tensor) else q, dtype=np.float64)
    p_values = np.asarray(
        pos_weight.detach().cpu() if isinstance(pos_weight, torch.Tensor) else pos_weight, dtype=np.float64
    )
    if not bool(np.all((q_values >= 0) & (q_values <= 1))):
        bad = float(q_values[~((q_values >= 0) & (q_values <= 1))].reshape(-1)[0])
        raise ValueError(error_message(
            f"q holds {bad!r}", "expected frequencies in [0, 1] (the share of positives among similar inputs).",
            "q = num_pos / n", lead="Write instead, for a count of positives out of n",
        ))
    if not bool(np.all(p_values >= 0)):
        bad = float(p_values[~(p_values >= 0)].reshape(-1)[0])
        raise ValueError(error_message(
            f"pos_weight holds {bad!r}", "expected pos_weight >= 0.",
            "pos_weight = bw.pos_weight_from_counts(num_pos, num_neg)", lead="Write instead, from counts",
        ))


def _operand_kind(q: Any, pos_weight: Any) -> str:
    if isinstance(q, torch.Tensor) or isinstance(pos_weight, torch.Tensor):
        return "tensor"
    if isinstance(q, (np.ndarray, np.generic)) or isinstance(pos_weight, (np.ndarray, np.generic)):
        return "numpy"
    for name, value in (("q", q), ("pos_weight", pos_weight)):
        if not isinstance(value, numbers.Real):
            raise TypeError(error_message(
                f"{name} is a {type(value).__name__}", "expected a number, a numpy array or a tensor.",
                f"bw.optimal_probability(np.asarray({name}), pos_weight)", lead="Write for example",
            ))
    return "float"


def _as_tensors(q: Any, pos_weight: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Both operands as float tensors on the same device, in the floating dtype of the tensor one."""
    reference = q if isinstance(q, torch.Tensor) else pos_weight
    dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
    q_tensor = torch.as_tensor(q, dtype=dtype, device=reference.device)
    p_tensor = torch.as_tensor(pos_weight, dtype=dtype, device=reference.device)
    return q_tensor, p_tensor


def optimal_probability(q: ArrayLike, pos_weight: ArrayLike | float) -> ArrayLike:
    """The probability a calibrated model trained with ``pos_weight = p`` predicts: ``p*q / (p*q + 1 - q)``.

    Where a fraction ``q`` of similar inputs is positive, the expected loss of a logit ``z`` is
    ``q * p * softplus(-z) + (1 - q) * softplus(z)``; setting its derivative to zero gives
    ``sigmoid(z) = p*q / (p*q + 1 - q)``. So ``p > 1`` pushes predictions up (the model is no
    longer calibrated: read its outputs through :func:`optimal_probability`'s inverse, or move the
    threshold), ``p = 1`` returns ``q``.

    Args:
        q: the true positive frequency, in [0, 1]: a float, numpy array or tensor.
        pos_weight: ``p >= 0``, same kinds; broadcast against ``q``.

    Returns:
        The same kind as the inputs (a tensor if either is a tensor, else a numpy array if either
        is numpy, else a float), broadcast shape. Defined everywhere on the domain: ``q = 0`` gives
        0, ``q = 1`` gives 1 for ``p > 0``, ``p = 0`` gives 0 (positives carry no weight), including
        at ``q = 1``, where every prediction has zero loss and 0 is the limit from ``q < 1``.
        ``p = inf`` gives the limit as ``p`` grows: 1 for ``q > 0`` (the positives outweigh
        everything), 0 for ``q = 0`` (there are none to weight), never the NaN of ``inf / inf``.

    Raises:
        ValueError: ``q`` outside [0, 1] or ``pos_weight`` negative or NaN.

    Example:
        >>> optimal_probability(0.1, 9.0)   # 0.9 / (0.9 + 0.9)
        0.5
    """
    kind = _operand_kind(q, pos_weight)
    _check_probability_operands(q, pos_weight)
    if kind == "tensor":
        q_tensor, p_tensor = _as_tensors(q, pos_weight)
        infinite = torch.isinf(p_tensor)
        finite_p = torch.where(infinite, torch.ones_like(p_tensor), p_tensor)
        weighted = finite_p * q_tensor
        denominator = weighted + (1 - q_tensor)
        safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
        value = torch.where(denominator > 0, weighted / safe, torch.zeros_like(weighted))
        return torch.where(infinite, (q_tensor > 0).to(value.dtype), value)  # type: ignore[return-value]
    if kind == "numpy":
        q_array = np.asarray(q, dtype=np.float64)
        p_array = np.asarray(pos_weight, dtype=np.float64)
        infinite = np.isinf(p_array)
        weighted = np.where(infinite, 1.0, p_array) * q_array
        denominator = weighted + (1 - q_array)
        safe = np.where(denominator > 0, denominator, 1.0)
        value = np.where(denominator > 0, weighted / safe, 0.0)
        return np.where(infinite, (q_array > 0).astype(np.float64), value)  # type: ignore[return-value]
    if math.isinf(float(pos_weight)):
        return 1.0 if float(q) > 0 else 0.0  # type: ignore[return-value]
    weighted_value = float(pos_weight) * float(q)
    denominator_value = weighted_value + (1 - float(q))
    return weighted_value / denominator_value if denominator_value > 0 else 0.0  # type: ignore[return-value]


def optimal_logit(q: ArrayLike, pos_weight: ArrayLike | float) -> ArrayLike:
    """The logit a model trained with ``pos_weight = p`` outputs where the positive frequency is ``q``.

    ``logit(q) + log(p)``: ``pos_weight`` shifts the optimal logit by ``log p`` everywhere (so a
    threshold of 0.5 on the weighted model is a threshold of ``1 / (1 + p)`` on calibrated
    probabilities). Equal to ``logit(optimal_probability(q, p))``.

    Args:
        q: the true positive frequency, in [0, 1]: a float, numpy array or tensor.
        pos_weight: ``p >= 0``, same kinds; broadcast against ``q``.

    Returns:
        The same kind as the inputs (as in :func:`optimal_probability`). Infinite values are
        returned, without warnings, where the optimum is at infinity: ``-inf`` at ``q = 0`` or
        ``p = 0`` (including ``q = 1, p = 0``, matching :func:`optimal_probability`'s 0), ``+inf`` at
        ``q = 1`` with ``p > 0``.

    Raises:
        ValueError: ``q`` outside [0, 1] or ``pos_weight`` negative or NaN.

    Example:
        >>> round(optimal_logit(0.5, math.e), 6)   # logit(0.5) = 0, log(e) = 1
        1.0
    """
    kind = _operand_kind(q, pos_weight)
    _check_probability_operands(q, pos_weight)
    if kind == "tensor":
        q_tensor, p_tensor = _as_tensors(q, pos_weight)
        logit = torch.log(q_tensor) - torch.log1p(-q_tensor) + torch.log(p_tensor)
        minus_infinity = torch.full_like(logit, -math.inf)
        return torch.where((q_tensor == 0) | (p_tensor == 0), minus_infinity, logit)  # type: ignore[return-value]
    if kind == "numpy":
        q_array = np.asarray(q, dtype=np.float64)
        p_array = np.asarray(pos_weight, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            logit = np.log(q_array) - np.log1p(-q_array) + np.log(p_array)
        return np.where((q_array == 0) | (p_array == 0), -np.inf, logit)  # type: ignore[return-value]
    q_value, p_value = float(q), float(pos_weight)
    if q_value == 0 or p_value == 0:
        return -math.inf  # type: ignore[return-value]
    if q_value == 1:
        return math.inf  # type: ignore[return-value]
    return math.log(q_value) - math.log1p(-q_value) + math.log(p_value)  # type: ignore[return-value]
