"""Helpers the tests import: small IDX files, random image batches, the package's modules."""
from __future__ import annotations

import gzip
import importlib
from pathlib import Path

import numpy as np
import torch


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


PACKAGE = Path(__file__).resolve().parent.parent / "course_utils"


def course_modules() -> list[str]:
    """Every importable module of the package, by dotted name (``__main__`` files run a
    command when imported, so they are left out)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def package_exports() -> set[str]:
    """Every name some course_utils module lists in its ``__all__``."""
    return {name for module in course_modules()
            for name in getattr(importlib.import_module(module), "__all__", ())}
