"""Time every live explorer in ``bceweights.lessons.explore``: one update = set a control, recompute, redraw.

    python -m benchmarks.widgets                      # every explorer
    python -m benchmarks.widgets LossCurveExplorer    # some of them, by class name
    python -m benchmarks.widgets --repeat 2           # cycle each explorer's changes twice

Each explorer class supplies a representative instance (``cls.example()``) and a list of control
changes shaped like a learner dragging its sliders (``instance.benchmark_changes()``). One update is
``explorer.set(**change)`` (recompute, move the artists) followed by ``explorer.render()``, the
synchronous redraw the kernel does for the browser: a blit of the moving artists over the cached
background, or a full ``figure.canvas.draw()`` when an axes' limits changed. Runs on the Agg canvas,
so no Jupyter is needed. At least ``MIN_UPDATES`` updates per explorer (the changes are cycled).

Prints, per explorer, the median and 95th percentile of the update time, how many updates needed a
full draw, and the cost of one full ``figure.canvas.draw()`` for reference; the last line is
``widgets: slowest explorer median update N ms, slowest p95 M ms`` (the goals on a 2-core machine:
N <= 20 and M <= 50). On a shared machine, run it a few times and read the medians of the runs.
An explorer that raises is reported (``NAME: FAILED ...``) and makes the exit status 1; the others
are still timed.
"""

from __future__ import annotations

import argparse
import statistics
import time
import traceback
from dataclasses import dataclass

import matplotlib

matplotlib.use("agg")

import numpy as np  # noqa: E402

from bceweights.lessons.explore import Explorer, explorer_classes  # noqa: E402

MIN_UPDATES = 30
FULL_DRAW_SAMPLES = 10


@dataclass(frozen=True)
class Timing:
    """Update times of one explorer, in milliseconds."""

    name: str
    updates_ms: list[float]
    full_draws: int
    full_draw_ms: float

    @property
    def median_ms(self) -> float:
        return statistics.median(self.updates_ms)

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.updates_ms, 95))


def time_explorer(cls: type[Explorer], repeat: int = 1) -> Timing:
    """Apply ``cls.example().benchmark_changes()`` (cycled to at least ``MIN_UPDATES``) and time each."""
    explorer = cls.example()
    changes = explorer.benchmark_changes()
    if not changes:
        raise ValueError(f"{cls.__name__}.benchmark_changes() returned no changes; give it a few control values.")
    count = max(MIN_UPDATES, len(changes) * repeat)
    explorer.render()  # the first frame: builds the background, as the first display would
    full_before = explorer.full_draw_count
    updates_ms = []
    for index in range(count):
        change = changes[index % len(changes)]
        start = time.perf_counter()
        explorer.set(**change)
        explorer.render()
        updates_ms.append((time.perf_counter() - start) * 1e3)
    full_draws = explorer.full_draw_count - full_before

    full_ms = []
    for _ in range(FULL_DRAW_SAMPLES):
        start = time.perf_counter()
        explorer.figure.canvas.draw()
        full_ms.append((time.perf_counter() - start) * 1e3)
    return Timing(cls.__name__, updates_ms, full_draws, statistics.median(full_ms))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="explorer class names (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="cycle each explorer's changes this many times")
    args = parser.parse_args(argv)

    classes = explorer_classes()
    if args.names:
        known = {cls.__name__: cls for cls in classes}
        unknown = [name for name in args.names if name not in known]
        if unknown:
            raise SystemExit(f"no explorer named {unknown[0]!r}; the explorers are: {', '.join(known)}")
        classes = [known[name] for name in args.names]
    if not classes:
        raise SystemExit("no explorers found in bceweights.lessons.explore")
    timings, failed = [], []
    for cls in classes:
        try:
            timing = time_explorer(cls, repeat=args.repeat)
        except Exception as error:  # noqa: BLE001 (report every explorer, then fail)
            failed.append(cls.__name__)
            where = traceback.extract_tb(error.__traceback__)[-1]
            print(f"{cls.__name__}: FAILED {type(error).__name__}: {error} (at {where.filename}:{where.lineno})")
            continue
        timings.append(timing)
        print(
            f"{timing.name}: {len(timing.updates_ms)} updates, median {timing.median_ms:.1f} ms, "
            f"p95 {timing.p95_ms:.1f} ms ({timing.full_draws} needed a full draw; "
            f"one full canvas.draw() {timing.full_draw_ms:.1f} ms)"
        )
    if timings:
        slowest = max(timings, key=lambda t: t.median_ms)
        tail = max(timings, key=lambda t: t.p95_ms)
        print(
            f"widgets: slowest explorer median update {slowest.median_ms:.1f} ms ({slowest.name}), "
            f"slowest p95 {tail.p95_ms:.1f} ms ({tail.name})"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
