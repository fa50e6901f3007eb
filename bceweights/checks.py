"""Checks that need to look at values (range, sign, NaN), and the switch that turns them off.

Shape checks are free: they read only ``.shape``. Value checks read every element and, on a GPU,
wait for the device (``.item()`` synchronises), so a training loop that has already validated its
data may turn them off::

    bw.set_value_checks(False)          # for the whole process
    with bw.value_checks(False): ...    # for a block
    bw.bce_with_logits(..., check_values=False)   # for one call
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

_enabled: bool = True


def set_value_checks(enabled: bool) -> bool:
    """Turn value checks on or off for the whole process; returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


@contextlib.contextmanager
def value_checks(enabled: bool) -> Iterator[None]:
    """Context manager: value checks on or off inside the ``with`` block."""
    previous = set_value_checks(enabled)
    try:
        yield
    finally:
        set_value_checks(previous)


def value_checks_enabled(check_values: bool | None = None) -> bool:
    """The effective setting for one call: the call's own ``check_values`` wins over the global one."""
    return _enabled if check_values is None else bool(check_values)


def check_weight_values(name: str, weight: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``weight`` holds NaN, infinity or a negative number."""
    if weight.numel() == 0:
        return
    finite = torch.isfinite(weight)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(
            f"{name} holds {bad} NaN or infinite value(s); weights must be finite numbers >= 0.\n"
            f"A NaN usually comes from a division by a zero count; check how {name} was built, e.g.\n"
            f"    {name} = torch.nan_to_num({name}, nan=0.0)   # if those elements should not count"
        )
    negative = weight < 0
    if bool(negative.any()):
        smallest = float(weight.min())
        raise ValueError(
            f"{name} holds {int(negative.sum())} negative value(s) (smallest {smallest:.4g}); "
            f"expected weights >= 0.\nA negative weight rewards the model for being wrong. "
            f"Write instead, if the sign is a bug upstream:\n    {name} = {name}.clamp_min(0)"
        )


def check_target_values(target: torch.Tensor, ignore: torch.Tensor | None) -> None:
    """Raise ``ValueError`` if a target outside ``ignore`` is NaN or lies outside ``[0, 1]``.

    ``target`` has the input's shape; ``ignore`` is ``None`` or a bool mask broadcastable to it.
    """
    if target.numel() == 0:
        return
    outside = ~((target >= 0) & (target <= 1))  # NaN compares False, so it counts as outside
    if ignore is not None:
        outside = outside & ~ignore
    if not bool(outside.any()):
        return
    count = int(outside.sum())
    example = target[outside.expand_as(target)][0].item()
    fixes = [
        "    ignore=(target == 255)        # if a value marks void or unlabelled pixels",
        "    target = F.one_hot(target.long(), C).movedim(-1, 1).float()   # if values are class indices",
    ]
    raise ValueError(
        f"target holds {count} value(s) outside [0, 1] (for example {example!r}); binary cross-entropy "
        f"needs targets in [0, 1] (probabilities, or 0/1 labels).\nWrite instead one of:\n"
        + "\n".join(fixes)
        + "\n(or check_values=False to skip value checks, at your own risk)"
    )
