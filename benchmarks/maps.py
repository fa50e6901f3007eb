"""Time ``unet_weight_map`` against the exact per-object computation, on the same labels, in one run.

    python -m benchmarks.maps                 # 512x512 with 200 touching cells, and two other cases
    python -m benchmarks.maps --repeats 5

The reference is the exact map (``border_tolerance=0``): one distance transform of the whole image per
object, which is what ``unet_weight_map`` computed before it limited each object's transform to the
window where its border term can matter. Both run on the same label image in the same run,
interleaved (each repeat times each path once), so load from other processes hits both alike; the
figures are medians. Each case also reports the largest difference between the two maps, against the
documented bound ``border_tolerance * w0``.

Cases (w0 = 10, sigma = 5, the paper's values; class balancing on):

* ``cells 512x512 / 200``: a Voronoi partition of 200 seeded random centres, with the pixels within
  half a pixel of each boundary set to background, so every cell touches its neighbours across a
  one-pixel gap (the U-Net paper's situation);
* ``cells 128x128 / 40``: the same at a smaller size;
* ``checkerboard 128x128``: every other pixel its own object (8192 one-pixel objects, each touching
  four background pixels), the many-objects worst case. (Every pixel its own object with no background,
  the issue's 9-second case, now takes no time at all: the border term lives on background pixels only,
  so an image without background needs no distances.)

The last line is the headline: ``maps: unet_weight_map 512x512/200 cells X.XXX s (reference Y.YY s, ratio Z.ZZZ)``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from bceweights.weights.maps import DEFAULT_BORDER_TOLERANCE, unet_weight_map

W0, SIGMA = 10.0, 5.0


def voronoi_cells(size: int, n_cells: int, gap: float = 1.0, seed: int = 0) -> np.ndarray:
    """``(size, size)`` int64 labels 1..n_cells tiling the image, with a background line ``gap`` wide between
    neighbours: pixels within ``gap / 2`` of the bisector of their two nearest centres are 0."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, size, size=(n_cells, 2))
    rows, cols = np.mgrid[0:size, 0:size]
    pixels = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.float64)
    distances, nearest = cKDTree(centres).query(pixels, k=2)
    separation = np.linalg.norm(centres[nearest[:, 0]] - centres[nearest[:, 1]], axis=1)
    to_bisector = (distances[:, 1] ** 2 - distances[:, 0] ** 2) / (2.0 * separation)
    labels = np.where(to_bisector < gap / 2.0, 0, nearest[:, 0] + 1)
    return labels.reshape(size, size).astype(np.int64)


@dataclass(frozen=True)
class Case:
    name: str
    labels: np.ndarray
    repeats: int  # interleaved repeats of both paths (the reference is slow)


def cases() -> list[Case]:
    rows, cols = np.mgrid[0:128, 0:128]
    distinct = np.where((rows + cols) % 2 == 0, rows * 128 + cols + 1, 0)  # a checkerboard of 8192 objects
    return [
        Case("cells 512x512 / 200", voronoi_cells(512, 200), 3),
        Case("cells 128x128 / 40", voronoi_cells(128, 40, seed=1), 3),
        Case("checkerboard 128x128", distinct, 1),
    ]


def timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def run_case(case: Case, repeats: int) -> dict[str, float]:
    def windowed() -> np.ndarray:
        return unet_weight_map(case.labels, W0, SIGMA, dtype=torch.float64).numpy()

    def reference() -> np.ndarray:
        return unet_weight_map(case.labels, W0, SIGMA, dtype=torch.float64, border_tolerance=0).numpy()

    windowed()  # warm-up (imports, caches)
    fast_times, reference_times = [], []
    fast_map = reference_map = np.zeros(0)
    for _ in range(case.repeats):  # interleaved: each repeat times both
        seconds, fast_map = timed(windowed)
        fast_times.append(seconds)
        seconds, reference_map = timed(reference)
        reference_times.append(seconds)
    while len(fast_times) < repeats:  # more repeats of the cheap path alone
        fast_times.append(timed(windowed)[0])
    fast, ref = statistics.median(fast_times), statistics.median(reference_times)
    return {
        "objects": float(len(np.unique(case.labels[case.labels > 0]))),
        "fast_s": fast,
        "reference_s": ref,
        "ratio": fast / ref,
        "max_abs_diff": float(np.max(np.abs(fast_map - reference_map))),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of the windowed map per case")
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"w0={W0}, sigma={SIGMA}, border_tolerance={DEFAULT_BORDER_TOLERANCE:g} "
          f"(bound on |difference|: {DEFAULT_BORDER_TOLERANCE * W0:.1e})")
    print(f"{'case':<22} {'objects':>7} {'windowed':>10} {'reference':>10} {'ratio':>7} {'max |diff|':>11}")
    headline = None
    for case in cases():
        result = run_case(case, args.repeats)
        print(f"{case.name:<22} {int(result['objects']):>7} {result['fast_s']:>9.3f}s {result['reference_s']:>9.2f}s "
              f"{result['ratio']:>7.4f} {result['max_abs_diff']:>11.1e}", flush=True)
        if headline is None:
            headline = (
                f"maps: unet_weight_map 512x512/200 cells {result['fast_s']:.3f} s "
                f"(reference {result['reference_s']:.2f} s, ratio {result['ratio']:.3f})"
            )
    print(headline)


if __name__ == "__main__":
    main()
