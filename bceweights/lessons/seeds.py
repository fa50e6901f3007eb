"""Figures over training seeds: the seed loop, the spread, intervals, and checks with a margin.

A model trained once is one trajectory: a different seed, a different CPU, or a perturbation of its
initial weights by one float32 rounding step can move what it prints in the second digit. What a
lesson may state as a finding is a property of the *method*, so:

* :func:`over_seeds` runs a training function once per seed and gathers each figure it returns into
  a :class:`Spread` (the values, their mean, standard deviation, minimum and maximum);
* :meth:`Spread.format` prints the mean and spread to the digits the spread supports;
* :func:`check_every_seed` and :func:`check_pairs` state a comparison as a check with a margin that
  must hold on every seed, and print its verdict (``[ok] ...`` or ``[FAIL] ...``): it is the verdict
  that a notebook's regression test compares, never a trained digit;
* :func:`wilson_interval` and :func:`bootstrap_interval` give the uncertainty of a precision or a
  recall computed from few predictions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Spread:
    """One figure measured on several seeds.

    Attributes:
        values: the figure on each seed, in the order of ``seeds``.
        seeds: the seeds, ``(n,)``.
    """

    values: tuple[float, ...]
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.seeds) or not self.values:
            raise ValueError(
                f"Spread needs one value per seed and at least one seed, got {len(self.values)} values for "
                f"{len(self.seeds)} seeds.\nWrite instead, e.g.:\n    Spread((0.21, 0.19), seeds=(0, 1))"
            )

    @property
    def n(self) -> int:
        """Number of seeds."""
        return len(self.values)

    @property
    def defined(self) -> tuple[float, ...]:
        """The values that are not NaN (a figure can be undefined on a seed, e.g. a precision with nothing predicted)."""
        return tuple(v for v in self.values if not math.isnan(v))

    @property
    def mean(self) -> float:
        """Arithmetic mean over the seeds where the figure is defined (NaN if it is defined on none)."""
        return float(np.mean(self.defined)) if self.defined else math.nan

    @property
    def sd(self) -> float:
        """Sample standard deviation over the defined values (``ddof=1``; 0 for a single one)."""
        return float(np.std(self.defined, ddof=1)) if len(self.defined) > 1 else 0.0

    @property
    def low(self) -> float:
        """Smallest defined value."""
        return float(min(self.defined)) if self.defined else math.nan

    @property
    def high(self) -> float:
        """Largest defined value."""
        return float(max(self.defined)) if self.defined else math.nan

    def decimals(self, max_decimals: int = 4) -> int:
        """Decimals the spread supports: down to the leading digit of the standard deviation.

        ``sd = 0.046`` gives 2 (``0.21 ± 0.05``), ``sd = 0.003`` gives 3; a spread of 0 (or a single
        seed) gives ``max_decimals``.
        """
        if self.sd <= 0 or not math.isfinite(self.sd):
            return max_decimals
        return int(min(max_decimals, max(0, -math.floor(math.log10(self.sd)))))

    def minus(self, other: Spread) -> Spread:
        """Seed-by-seed difference ``self − other`` (both measured on the same seeds)."""
        if self.seeds != other.seeds:
            raise ValueError(
                f"minus subtracts seed by seed, but the seeds differ: {self.seeds} and {other.seeds}.\n"
                "Write instead: measure both figures in one over_seeds(run, seeds) call."
            )
        return Spread(tuple(a - b for a, b in zip(self.values, other.values)), self.seeds)

    def format(self, decimals: int | None = None) -> str:
        """``"mean ± sd (low–high)"`` rounded to :meth:`decimals`, e.g. ``"0.21 ± 0.05 (0.15–0.27)"``.

        A value that rounds to zero prints as ``0`` (never ``-0.0``); a range with a negative end
        prints with ``to``, ``"-4.1 ± 0.3 (-4.4 to -3.6)"``, so that its dash is not read as a minus.
        """
        if not self.defined:
            return f"n/a (undefined on all {self.n} seeds)"
        d = self.decimals() if decimals is None else decimals
        low, high = _rounded(self.low, d), _rounded(self.high, d)
        between = " to " if low.startswith("-") or high.startswith("-") else "–"
        text = f"{_rounded(self.mean, d)} ± {_rounded(self.sd, d)} ({low}{between}{high})"
        if len(self.defined) < self.n:
            text += f" on the {len(self.defined)} of {self.n} seeds where it is defined"
        return text

    def __str__(self) -> str:
        return self.format()


def _rounded(value: float, decimals: int) -> str:
    """``value`` to ``decimals`` places, with a negative zero (``-0.0``) printed as ``0.0``."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def over_seeds(run: Callable[[int], Mapping[str, float]], seeds: Iterable[int]) -> dict[str, Spread]:
    """Call ``run(seed)`` for every seed and gather each figure it returns into a :class:`Spread`.

    Args:
        run: trains (or measures) once for one seed and returns ``{name: value}``; every call must
            return the same names.
        seeds: the seeds, e.g. ``range(5)``.

    Returns:
        ``{name: Spread}`` in the order of the first call's names.
    """
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("over_seeds needs at least one seed.\nWrite instead, e.g.:\n    over_seeds(run, range(5))")
    rows = [dict(run(seed)) for seed in seeds]
    names = list(rows[0])
    for seed, row in zip(seeds, rows):
        if list(row) != names:
            raise ValueError(f"run({seed}) returned figures {sorted(row)}, but run({seeds[0]}) returned {sorted(names)}.")
    return {name: Spread(tuple(float(row[name]) for row in rows), seeds) for name in names}


@dataclass(frozen=True)
class SeedCheck:
    """A claim tested on every seed.

    Attributes:
        claim: what is claimed, e.g. ``"green recall with neg/pos above 0.7"``.
        passed: whether the claim held on each seed.
        seeds: the seeds, in the order of ``passed``.
    """

    claim: str
    passed: tuple[bool, ...]
    seeds: tuple[int, ...]
    at_least: int | None = None

    @property
    def required(self) -> int:
        """How many seeds the claim must hold on: ``at_least``, or every seed."""
        return len(self.passed) if self.at_least is None else self.at_least

    @property
    def ok(self) -> bool:
        """True when the claim held on :attr:`required` seeds or more."""
        return sum(self.passed) >= self.required

    def __str__(self) -> str:
        held, n = sum(self.passed), len(self.passed)
        if self.ok and self.at_least is None:
            return f"[ok] {self.claim}: on {n} of {n} seeds"
        if self.ok:
            # The count itself may move with a perturbation; the verdict prints only the bound it met.
            return f"[ok] {self.claim}: on at least {self.at_least} of {n} seeds"
        failed = ", ".join(str(s) for s, p in zip(self.seeds, self.passed) if not p)
        return f"[FAIL] {self.claim}: on {held} of {n} seeds, {self.required} needed (not on seed {failed})"


def check_every_seed(
    claim: str,
    spread: Spread,
    *,
    above: float | None = None,
    below: float | None = None,
    at_least: int | None = None,
) -> SeedCheck:
    """Check that every seed's value lies above ``above`` and/or below ``below`` (strictly).

    The bounds are the margin: choose them so that the claim is what the lesson says in words
    (e.g. "recall above 0.7"), not the measured extremes. ``at_least=k`` asks for ``k`` seeds
    instead of all of them (for an effect that a short run shows on most seeds, not every one).
    A NaN value (a figure undefined on that seed) meets no bound.
    """
    if at_least is not None and not 1 <= at_least <= spread.n:
        raise ValueError(f"at_least={at_least} must lie in 1..{spread.n} (the number of seeds).")
    if above is None and below is None:
        raise ValueError(
            "check_every_seed needs a bound.\nWrite instead, e.g.:\n    check_every_seed(claim, spread, above=0.7)"
        )
    passed = tuple(
        (above is None or v > above) and (below is None or v < below) for v in spread.values
    )
    return SeedCheck(claim, passed, spread.seeds, at_least)


def check_pairs(
    claim: str, larger: Spread, smaller: Spread, *, margin: float = 0.0, at_least: int | None = None
) -> SeedCheck:
    """Check ``larger > smaller + margin`` seed by seed (both measured on the same seeds), on every seed or on
    ``at_least`` of them."""
    if larger.seeds != smaller.seeds:
        raise ValueError(
            f"check_pairs compares seed by seed, but the seeds differ: {larger.seeds} and {smaller.seeds}.\n"
            "Write instead: measure both figures in one over_seeds(run, seeds) call."
        )
    passed = tuple(a > b + margin for a, b in zip(larger.values, smaller.values))
    return SeedCheck(claim, passed, larger.seeds, at_least)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (e.g. a precision from ``n`` predictions).

    ``centre ± half`` with ``centre = (p + z²/2n) / (1 + z²/n)`` and
    ``half = z sqrt(p(1 − p)/n + z²/4n²) / (1 + z²/n)``, ``z`` the normal quantile of ``confidence``.
    For ``n = 0`` it is ``(0, 1)``: nothing is known.
    """
    if not 0 <= successes <= n:
        raise ValueError(f"wilson_interval needs 0 <= successes <= n, got successes={successes}, n={n}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    if n == 0:
        return 0.0, 1.0
    z = _normal_quantile(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At k = 0 (or k = n) the bound is exactly 0 (or 1); the formula leaves a rounding residue.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` over ``n`` samples drawn with replacement.

    Args:
        statistic: maps an index array ``(n,)`` into the data (e.g. pixels or samples) to a number,
            e.g. ``lambda i: precision(y[i], predicted[i])``.
        n: number of samples.
        resamples: bootstrap resamples.
        confidence: coverage of the interval.
        seed: seeds the resampling (``numpy.random.default_rng``).
    """
    if n < 1 or resamples < 1:
        raise ValueError(f"bootstrap_interval needs n >= 1 and resamples >= 1, got n={n}, resamples={resamples}.")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)], dtype=np.float64)
    tail = (1 - confidence) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def _normal_quantile(p: float) -> float:
    """Standard normal quantile by bisection on ``erf`` (no SciPy needed)."""
    low, high = -10.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def format_table(spreads: Mapping[str, Mapping[str, Spread]], columns: Sequence[str]) -> str:
    """Rows of ``"mean ± sd (low–high)"`` cells: ``spreads[row][column]``, one line per row."""
    cells = {row: [spreads[row][c].format() for c in columns] for row in spreads}
    width_row = max(len(r) for r in cells)
    widths = [max(len(c), *(len(cells[r][i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [" " * width_row + "  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    for row, values in cells.items():
        lines.append(row.ljust(width_row) + "  " + "  ".join(v.ljust(w) for v, w in zip(values, widths)))
    return "\n".join(line.rstrip() for line in lines)
