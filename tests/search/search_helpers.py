"""Shared by the grid-search tests: a tiny grid, the results file, a read-only folder."""
from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import sys
from pathlib import Path

from course_utils import search as S

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "COURSE_PROFILE": "smoke", "COURSE_PROGRESS": "0", "MPLBACKEND": "Agg",
       "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
PYTHON = sys.executable

TINY = {"name": "tiny", "model": "AlexNetSmall", "data": {"train_size": 64, "valid_size": 64},
        "max_epochs": 1, "seed": 0,
        "params": {"lr": [1.0e-3, 1.0e-4], "batch_size": [32, 64]}}


def tiny(**changes) -> dict:
    grid = json.loads(json.dumps(TINY))
    grid.update(changes)
    return grid


def write_yaml(path: Path, grid: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def lines(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / S.RESULTS_FILE).read_text().splitlines() if x.strip()]


def quiet(_line: str) -> None:
    """A ``log`` that prints nothing."""


def one_error_line(err: str) -> str:
    """The only line of ``err``, which must be ``error: ...`` without a traceback."""
    text = [ln for ln in err.splitlines() if ln.strip()]
    assert len(text) == 1, err
    assert text[0].startswith("error: ") and "Traceback" not in err, err
    return text[0]


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` (and what it holds) cannot be written while in the block.

    ``chmod`` does it for a normal user; root ignores permissions, so as root every
    open for writing, ``os.open`` with a write flag and ``os.mkdir`` under ``folder``
    fail the way a read-only folder makes them fail (``PermissionError``).
    """
    folder = Path(folder).resolve()
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    for p in modes:
        p.chmod(0o555 if p.is_dir() else 0o444)
    patches = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        def inside(path) -> bool:
            try:
                return Path(os.fsdecode(path)).resolve().is_relative_to(folder)
            except (TypeError, ValueError):
                return False

        def denied(path):
            return PermissionError(13, "Permission denied", os.fsdecode(path))

        real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

        def fake_open(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and inside(file) and any(
                    c in mode for c in "wax+"):
                raise denied(file)
            return real_open(file, mode, *args, **kwargs)

        def fake_os_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
                raise denied(path)
            return real_os_open(path, flags, *args, **kwargs)

        def fake_mkdir(path, *args, **kwargs):
            if inside(path) and not Path(os.fsdecode(path)).exists():
                raise denied(path)
            return real_mkdir(path, *args, **kwargs)

        patches = [(builtins, "open", real_open, fake_open), (io, "open", real_open, fake_open),
                   (os, "open", real_os_open, fake_os_open),
                   (os, "mkdir", real_mkdir, fake_mkdir)]
        for mod, name, _, fake in patches:
            setattr(mod, name, fake)
    try:
        yield folder
    finally:
        for mod, name, real, _ in patches:
            setattr(mod, name, real)
        for p, mode in modes.items():
            p.chmod(mode)
