"""Shared fixtures: small IDX files written by the tests themselves."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import data as course_data


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, compress: bool = False,
              truncate: int = 0) -> Path:
    """Write ``array`` (uint8) as an IDX file; optionally with a wrong magic or cut short."""
    array = np.asarray(array, dtype=np.uint8)
    magic = magic if magic is not None else (2051 if array.ndim == 3 else 2049)
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + array.tobytes()
    if truncate:
        raw = raw[:-truncate]
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if compress else open)(path, "wb").write(raw)
    return path


def random_batch(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random 28x28 uint8 images with labels cycling through the 10 classes."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
            torch.arange(n) % 10)


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
