"""A switch that perturbs the lessons' training by about 1e-7 relative, to prove figures robust.

Two CPUs round a float32 sum differently in the last bit (AVX-512, AVX2, NEON and scalar kernels
each have their own order), and a few hundred optimizer steps can amplify that bit into the printed
digits. A figure that a lesson prints from a trained model must therefore not depend on it. The
test suite checks that directly: ``make nbval-perturbed`` runs the stored notebooks again with the
environment variable :data:`ENV_VAR` set to a seed, and every model that the lessons build
(:class:`~bceweights.lessons.model.TinyUNet`, :class:`~bceweights.lessons.rare_class.TinyMLP`)
multiplies each initial weight ``w`` by ``1 + scale * u``, ``u`` uniform in ``[-1, 1]`` drawn from that
seed (``scale`` = :data:`RELATIVE_SCALE` = 1e-7, the size of one float32 rounding step). Strict nbval
must still pass against the outputs stored without the switch.

Unset, empty or ``0``, the switch is off and nothing changes.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

#: The environment variable read at every model construction: an integer seed, or unset/"0" for off.
ENV_VAR = "BCEWEIGHTS_PERTURB"
#: Relative size of the jitter: one float32 rounding step is 2**-24 ≈ 6e-8 relative.
RELATIVE_SCALE = 1e-7


def perturbation_seed() -> int | None:
    """The seed in :data:`ENV_VAR`, or ``None`` when the switch is off (unset, empty or ``"0"``)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value in ("", "0"):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"{ENV_VAR}={value!r} is not an integer seed.\n"
            f"Write instead, e.g.:\n    {ENV_VAR}=1 make nbval-perturbed"
        ) from None


@torch.no_grad()
def jitter_(parameters: list[Tensor], model_seed: int) -> None:
    """Multiply every tensor in ``parameters`` by ``1 + RELATIVE_SCALE * u`` in place, if the switch is on.

    ``u`` is uniform in ``[-1, 1]``, drawn in float64 from a generator seeded with the switch's seed
    and ``model_seed``, so two models with different seeds get different jitter. Off, this does nothing.
    """
    seed = perturbation_seed()
    if seed is None:
        return
    generator = torch.Generator().manual_seed(seed * 1_000_003 + int(model_seed))
    for parameter in parameters:
        u = torch.rand(parameter.shape, generator=generator, dtype=torch.float64) * 2.0 - 1.0
        # In float64, then rounded once: a float32 weight moves by about one rounding step.
        parameter.copy_(parameter.double() * (1.0 + RELATIVE_SCALE * u))
