"""A training run killed mid-way (SIGKILL) leaves its checkpoint folder run-*; the next run
under the same root removes it, and never the folder of a run that is still training
(slow: marker ``faults``, run by ``make test-faults``)."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_utils.training import RunCheckpoint

pytestmark = pytest.mark.faults

TRAIN = """
import sys, torch
from course_utils.training import make_classifier
X = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
y = torch.arange(64) % 10
make_classifier(valid=(X, y), max_epochs=100_000, patience=None, cosine=False, progress=False,
                verbose=0, batch_size=32, checkpoint_root=sys.argv[1]).fit(X, y)
"""


def _start_training(root: Path) -> tuple[subprocess.Popen, Path]:
    """A run training for ever under ``root``; returns it once its first checkpoint is saved."""
    before = set(root.glob("run-*")) if root.exists() else set()
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(root)])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        new = [p for p in root.glob("run-*") if p not in before and (p / "params.pt").is_file()]
        if new:
            return proc, new[0]
        if proc.poll() is not None:
            pytest.fail(f"the training exited with {proc.returncode}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no checkpoint within 180 s")


def test_a_killed_runs_folder_is_removed_at_the_next_start_and_a_live_one_kept(tmp_path):
    root = tmp_path / "checkpoints"
    killed, dead_folder = _start_training(root)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert dead_folder.is_dir()  # what a killed run leaves
    live, live_folder = _start_training(root)
    try:
        nxt = RunCheckpoint(root=root)
        nxt.initialize()  # what the next training does first
        assert not dead_folder.exists(), "the killed run's checkpoint folder is still there"
        assert live_folder.is_dir() and (live_folder / "params.pt").is_file()
        assert Path(nxt.dirname).is_dir()
    finally:
        live.kill()
        live.wait()
