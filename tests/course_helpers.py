"""Helpers the tests import: small IDX files, random image batches, the package's modules,
and processes (the lab's URL, /proc)."""
from __future__ import annotations

import gzip
import importlib
import queue
import re
import subprocess
import threading
import time
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


# --------------------------------------------------------------------------- processes

LAB_URL_RE = re.compile(r"(http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+))")


def wait_for_lab_url(proc: subprocess.Popen, timeout: float, log) -> re.Match:
    """The URL line `python -m course_utils.tools.lab` prints once its server answers
    (groups: url, port, token); fails the test if it exits or prints none in time."""
    import pytest

    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"course_utils.tools.lab exited with {proc.returncode}; see {log}")
        if time.monotonic() > deadline:
            pytest.fail(f"no URL printed within {timeout} s; see {log}")
        try:
            match = LAB_URL_RE.search(lines.get(timeout=0.5))
        except queue.Empty:
            continue
        if match:
            return match


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp ...); None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def proc_alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    fields = proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def proc_children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = proc_stat(int(stat.parent.name))
        if fields is not None and int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found
