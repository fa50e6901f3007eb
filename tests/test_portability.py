"""The lessons' data, initial weights and training give the same numbers on every CPU.

The stored notebook outputs were made on one CPU and are checked by strict nbval on others (an
Intel Xeon with AVX-512, an AMD EPYC with AVX2, Apple silicon). PyTorch picks its CPU kernels per
CPU, so float32 results differ in the last bit, and training amplifies that into the printed digits.
These tests run the same script natively and with the vector paths capped (the Makefile's
``CAPPED_CPU_ENV``, which emulates another CPU on this one) and compare what it prints: the fast
guard for ``make nbval-capped``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def capped_cpu_env() -> dict[str, str]:
    """The variables of the Makefile's ``CAPPED_CPU_ENV`` line, read from the Makefile itself."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    line = re.search(r"^CAPPED_CPU_ENV := (.+)$", makefile, re.MULTILINE)
    assert line, "Makefile has no CAPPED_CPU_ENV line"
    return dict(item.split("=", 1) for item in line.group(1).split())


SCRIPT = r"""
import hashlib, json, torch
from bceweights.lessons import data
from bceweights.lessons.model import TinyUNet, predict, train

def digest(*tensors):
    h = hashlib.sha1()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()

plates = data.make_plates(64, 32, fractions=(0.06, 0.01, 0.25), green_contrast=0.25, seed=0)
shapes = data.make_shapes(32, 32, 0.04, objects=2, noise=0.8, seed=1)
volume = data.make_volume((8, 16, 16), seed=2)
model = TinyUNet(1, 3, seed=0, dtype=torch.float64)
init = digest(*model.parameters())
history = train(model, plates.images, plates.masks, epochs=3, batch_size=16, progress=False)
labels = data.rgb_to_labels(plates.masks)
single = TinyUNet(1, 4, seed=1, dtype=torch.float64)
single_history = train(single, plates.images, labels, epochs=2, batch_size=16, progress=False)
print(json.dumps({
    "data": digest(plates.images, plates.masks, shapes.images, shapes.masks, volume.images, volume.masks),
    "init": init,
    "loss": history.loss + single_history.loss,
    "table": history.final.table(["red", "green", "blue"]) + single_history.final.table(["k", "g", "b", "m"]),
    "logit_sum": float(predict(model, plates.images).sum()),
}))
"""


def run_script(extra_env: dict[str, str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", **extra_env}
    for name in capped_cpu_env():
        if name not in extra_env:
            env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def native_and_capped() -> tuple[dict, dict]:
    return run_script({}), run_script(capped_cpu_env())


def test_capped_env_names_the_cpu_paths():
    names = set(capped_cpu_env())
    assert {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"} <= names


def test_data_and_initial_weights_are_the_same_bits(native_and_capped):
    native, capped = native_and_capped
    assert native["data"] == capped["data"]
    assert native["init"] == capped["init"]


def test_training_reproduces_far_below_the_printed_digits(native_and_capped):
    native, capped = native_and_capped
    assert native["loss"] == pytest.approx(capped["loss"], rel=1e-10, abs=0)
    assert native["logit_sum"] == pytest.approx(capped["logit_sum"], rel=1e-10)
    assert native["table"] == capped["table"]
