"""Shared fixtures: small IDX files written by the tests themselves (helpers in course_helpers)."""
from __future__ import annotations

import numpy as np
import pytest

from course_helpers import random_batch, write_idx  # noqa: F401 (fixtures use them)
from course_utils import data as course_data


@pytest.fixture
def tiny_idx(tmp_path):
    """A small, well-formed images/labels pair."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    labels = np.arange(20, dtype=np.uint8) % 10
    return (write_idx(tmp_path / "imgs-idx3-ubyte.gz", images, compress=True),
            write_idx(tmp_path / "lbls-idx1-ubyte", labels), images, labels)


@pytest.fixture(scope="session")
def real_data():
    """The real Fashion-MNIST, found the way a student's notebook finds it."""
    try:
        return course_data.load_fashion_mnist(download=False)
    except course_data.DataNotFoundError as exc:  # pragma: no cover - CI installs it
        pytest.skip(f"Fashion-MNIST not installed here: {exc}")


@pytest.fixture(autouse=True)
def _isolated_checkpoints(tmp_path, monkeypatch):
    """Checkpoints of test runs go to a temporary folder, not build/."""
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
