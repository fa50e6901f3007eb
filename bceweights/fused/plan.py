"""What one fused call must compute: the reduction, the denominator, the focal options.

Both fused backends read a :class:`Plan` and return :class:`PassOutputs` from a single pass over the
elements; :mod:`bceweights.fused.autograd` turns those into the loss and, in backward, the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from bceweights.prepared import Prepared


class FusedBuildFailed(RuntimeError):
    """A fused backend could not build (compile) or launch its kernel; the message says why.

    ``backend="auto"`` falls back to the eager path on it and stops trying that backend in this process.
    """


@dataclass(frozen=True)
class Plan:
    """The static description of one fused call.

    Attributes:
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"weighted_mean"``.
        kept: what the pass must also sum for the denominator: ``None`` (nothing: ``"sum"``,
            ``"none"``, or a mean over all ``numel`` elements), ``"count"`` (non-ignored elements) or
            ``"weight"`` (the weight broadcast to the input, over non-ignored elements).
        gamma: focal exponent (0 = plain BCE).
        alpha: focal class balance, or None.
        need_grad: compute ``d loss / d input`` in the same pass.
        grad_scale: factor applied to the gradient inside the pass: ``1 / numel`` for a mean over all
            elements (so the saved gradient is already final for ``grad_output = 1``), else 1.
    """

    reduction: str
    kept: str | None
    gamma: float
    alpha: float | None
    need_grad: bool
    grad_scale: float = 1.0

    @property
    def reduce(self) -> bool:
        """True when the pass sums the loss instead of writing it per element."""
        return self.reduction != "none"

    @property
    def divides_by_numel(self) -> bool:
        """True for a mean whose denominator is simply the number of elements."""
        return self.reduction in ("mean", "weighted_mean") and self.kept is None


@dataclass
class PassOutputs:
    """What a backend's single pass returns.

    Attributes:
        values: the per-element loss ``(*)`` in the input's dtype (``reduction="none"``), or the sum of
            the weighted losses as a 0-d tensor in the compute dtype.
        kept: the 0-d denominator sum (compute dtype) when ``plan.kept`` is set, else None.
        grad: ``plan.grad_scale * d (sum of losses) / d input`` per element, ``(*)`` in the input's
            dtype, or None when ``plan.need_grad`` is False.
    """

    values: Tensor
    kept: Tensor | None
    grad: Tensor | None


def make_plan(prepared: Prepared, reduction: str, gamma: float, alpha: float | None, need_grad: bool) -> Plan:
    """The :class:`Plan` for ``prepared`` under ``reduction``, mirroring ``weight_and_reduce``'s denominators.

    ``"mean"`` divides by the number of non-ignored elements; ``"weighted_mean"`` by the sum of the
    weight over non-ignored elements (by their number when there is no weight). ``reduction`` is
    one of :data:`bceweights.prepared.REDUCTIONS` (checked by :func:`bceweights.backend.compute_loss`).
    """
    kept: str | None = None
    if reduction == "weighted_mean" and prepared.weight is not None:
        kept = "weight"
    elif reduction in ("mean", "weighted_mean") and prepared.ignore is not None:
        kept = "count"
    mean_over_all = reduction in ("mean", "weighted_mean") and kept is None and prepared.input.numel() > 0
    return Plan(reduction, kept, float(gamma), None if alpha is None else float(alpha), need_grad,
                1.0 / prepared.input.numel() if mean_over_all else 1.0)
