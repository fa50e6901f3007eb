"""examples/ddp_train.py under ``torchrun --nproc-per-node 2`` (gloo on 127.0.0.1).

Its first-step DDP gradients, with ``process_group=``, must equal one process's gradients on the union
of the two ranks' batches; the per-rank mean must not (the void borders keep uneven pixel counts).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bceweights.lessons.ranks import free_loopback_port

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_ddp_example_matches_one_process():
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(free_loopback_port()),
        str(REPO_ROOT / "examples" / "ddp_train.py"), "--check", "--steps", "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "match" in done.stdout.splitlines()
    with_group = float(re.search(r"process_group=group: (\S+)", done.stdout).group(1))
    without_group = float(re.search(r"process_group=None : (\S+)", done.stdout).group(1))
    assert with_group < 1e-12
    assert without_group > 1e-4
    assert re.search(r"step 1: loss over the global batch \d", done.stdout)
