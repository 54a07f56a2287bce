"""The output folder of a search: results.jsonl, grid.json, the lock and the run checkpoints.

Never losing work: each finished configuration is appended to ``DIR/results.jsonl`` as
one JSON line of :data:`RESULT_KEYS`, flushed and fsynced. A half-written last line
(a kill mid-write) is dropped with a :class:`TornLineWarning`. ``DIR/grid.json``
holds the grid's fingerprint, so a folder is never mixed up with another grid's
results, and marks the folder as the search's own.

The search writes and deletes only inside its output folder, and only its own files:
it refuses a folder that holds anything else (unless that folder is empty), and its
per-run checkpoints live in ``DIR/checkpoints/``, where it deletes only the
folders it made.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

from .errors import (GridMismatchError, OutputFolderError, ResultsError, SearchBusyError,
                     TornLineWarning)
from .spec import GridSpec, config_id, run_key

__all__ = ["BEST_KEYS", "CHECKPOINT_DIR", "FRAME_KEYS", "GRID_FILE", "LOCK_FILE",
           "REPORT_FILES", "RESULTS_FILE", "RESULT_KEYS", "SearchFolder", "append_result",
           "checkpoint_prefix", "new_record", "read_grid_meta", "read_results",
           "records_by_key", "write_atomic"]

RESULTS_FILE = "results.jsonl"
GRID_FILE = "grid.json"
LOCK_FILE = ".lock"
CHECKPOINT_DIR = "checkpoints"
REPORT_FILES = ("summary.csv", "best.json", "heatmap.png")

#: THE results schema: the keys of one line of results.jsonl, in order. The metrics are
#: those of :func:`course_utils.experiment.train_variant` with ``select="best"``.
RESULT_KEYS = (
    "key",            # config_id@epochs: a configuration trained for a number of epochs
    "id",             # config_id: the configuration
    "params",         # its searched values
    "epochs",         # epochs it was given
    "rung",           # successive-halving rung (None in a full grid)
    "seed",
    "status",         # "ok" or "failed"
    "valid_acc",      # eval-mode accuracy on the validation split, best epoch's model
    "train_acc",      # eval-mode accuracy on a fixed training sample, same model
    "gap",            # train_acc - valid_acc
    "best_epoch",
    "epochs_run",     # fewer than epochs when early stopping ended the run
    "train_seconds",  # skorch's wall time of all epochs
    "device",
    "error",          # the first line of the error of a failed run
    "threads", "wall_seconds", "host", "pid", "versions", "finished_at",
)
#: The per-run columns of the report's tables (after the parameters).
FRAME_KEYS = ("valid_acc", "train_acc", "gap", "best_epoch", "epochs", "epochs_run",
              "train_seconds", "rung", "status", "device", "seed", "error", "id")
#: What best.json keeps of the winning record.
BEST_KEYS = ("params", "valid_acc", "train_acc", "gap", "best_epoch", "epochs", "epochs_run",
             "train_seconds", "device", "seed", "versions", "id")

_CHECKPOINT_RE = re.compile(r"[0-9a-f]{10}-e[0-9]+-")


def new_record(params: dict, epochs: int, *, rung: int | None, seed: int,
               error: str | None = None) -> dict[str, Any]:
    """A record of :data:`RESULT_KEYS`, every result empty: ``failed`` until filled in."""
    record = dict.fromkeys(RESULT_KEYS)
    record.update(key=run_key(params, epochs), id=config_id(params), params=params,
                  epochs=epochs, rung=rung, seed=seed, status="failed", error=error)
    return record


def checkpoint_prefix(params: dict, epochs: int) -> str:
    """The name start of one run's checkpoint folder (what the search may delete)."""
    return f"{config_id(params)}-e{epochs}-"


# --------------------------------------------------------------------------- results.jsonl

def read_results(out: str | os.PathLike, repair: bool = False) -> list[dict]:
    """The records in ``out/results.jsonl``.

    A torn last line (a kill mid-write) is dropped with a :class:`TornLineWarning`;
    ``repair=True`` also cuts it from the file. Keys a record lacks (an older file)
    read as None.
    """
    path = Path(out) / RESULTS_FILE
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    records, good_end, pos = [], 0, 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        end = pos + len(line) + (0 if last else 1)
        if line.strip():
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or "key" not in rec or "status" not in rec:
                    raise ValueError("not a result record")
                if last:  # complete JSON but no newline: written, not terminated
                    raise ValueError("no newline")
                records.append({**dict.fromkeys(RESULT_KEYS), **rec})
                good_end = end
            except ValueError:
                if any(rest.strip() for rest in lines[i + 1:]):
                    raise ResultsError(f"{path}, line {i + 1}, is damaged and is not the last "
                                       "line: fix or delete that line, then run again") from None
                warnings.warn(f"{path}: the last line was half written (the search was killed "
                              "while writing it) and was dropped; that configuration runs again",
                              TornLineWarning, stacklevel=2)
                if repair:
                    with open(path, "r+b") as fh:
                        fh.truncate(good_end)
                        fh.flush()
                        os.fsync(fh.fileno())
                break
        else:
            good_end = end
        pos = end
    return records


def append_result(out: str | os.PathLike, record: dict) -> None:
    """Append one record (its :data:`RESULT_KEYS`) as one line, then flush and fsync:
    a finished configuration survives a kill or a power cut."""
    line = (json.dumps({k: record.get(k) for k in RESULT_KEYS}, default=str) + "\n").encode()
    fd = os.open(Path(out) / RESULTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``path`` through a temporary file and a rename: never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def read_grid_meta(out: str | os.PathLike) -> dict[str, Any]:
    """``out/grid.json`` as a dict; :class:`GridMismatchError` when it is damaged."""
    gfile = Path(out) / GRID_FILE
    try:
        meta = json.loads(gfile.read_text())
        meta["fingerprint"]
    except (ValueError, KeyError, TypeError):
        raise GridMismatchError(f"{gfile} is damaged: use another --out folder") from None
    except OSError as exc:
        raise OutputFolderError(f"cannot read {gfile}: {exc.strerror or exc}") from None
    return meta


# --------------------------------------------------------------------------- the folder

class SearchFolder:
    """The output folder: ownership and fingerprint checks, the lock, grid.json.

    ``with SearchFolder(out, spec):`` checks the folder, creates it, takes the lock
    (:class:`SearchBusyError` when another search holds it), writes grid.json and
    removes the checkpoints of runs that were killed. :meth:`check` does the
    checks alone and writes nothing.
    """

    def __init__(self, out: str | os.PathLike, spec: GridSpec | None = None):
        self.out, self.spec, self._lock = Path(out), spec, None

    @property
    def checkpoints(self) -> Path:
        return self.out / CHECKPOINT_DIR

    def _entries(self) -> list[str]:
        try:
            return sorted(p.name for p in self.out.iterdir())
        except OSError as exc:
            raise OutputFolderError(f"cannot read --out {self.out} ({exc.strerror or exc}): "
                                    "choose a folder you can read and write") from None

    def owned(self) -> bool:
        """Was the folder made by the search (does it hold grid.json)?"""
        return (self.out / GRID_FILE).is_file()

    def check(self, need_results: bool = False) -> None:
        """Refuse a folder the search must not write into; writes nothing."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise OutputFolderError(f"--out {out} is a file, not a folder: give a folder, "
                                    "e.g. --out build/search/NAME")
        if not out.exists():
            if need_results:
                raise ResultsError(f"{out} does not exist: run the search first "
                                   "(python -m course_utils.search GRID.yaml --out DIR)")
            return
        entries = self._entries()
        if not self.owned():
            foreign = [e for e in entries if e != LOCK_FILE and not e.endswith(".tmp")]
            if foreign:
                shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                raise OutputFolderError(
                    f"--out {out} holds files the search did not make ({shown}) and no "
                    f"{GRID_FILE}: give a new or empty folder, e.g. --out build/search/NAME")
            if need_results:
                raise ResultsError(f"no {RESULTS_FILE} in {out}: run the search first "
                                   "(python -m course_utils.search GRID.yaml --out DIR)")
            return
        meta = read_grid_meta(out)
        if self.spec is not None and meta["fingerprint"] != self.spec.fingerprint():
            raise GridMismatchError(
                f"{out} holds results of a different grid ({meta.get('name')!r}, "
                f"fingerprint {meta['fingerprint']}; this grid is {self.spec.fingerprint()}): "
                "use another --out folder, or delete that one to start over")
        if need_results and not (out / RESULTS_FILE).exists():
            raise ResultsError(f"no {RESULTS_FILE} in {out}: run the search first "
                               "(python -m course_utils.search GRID.yaml --out DIR)")

    def __enter__(self) -> "SearchFolder":
        self.check()
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self._take_lock()
            if not self.owned():
                write_atomic(self.out / GRID_FILE, json.dumps(
                    {"fingerprint": self.spec.fingerprint(), "name": self.spec.name,
                     "source": self.spec.source,
                     "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "spec": self.spec.to_dict()}, indent=2, default=str))
            # everything the search will write, tried now rather than after a run
            with open(self.out / RESULTS_FILE, "ab"):
                pass
            self.checkpoints.mkdir(exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.checkpoints, suffix=".tmp")
            os.close(fd)
            os.remove(probe)
        except OSError as exc:
            self.__exit__()
            raise OutputFolderError(f"cannot write into --out {self.out} "
                                    f"({exc.strerror or exc}): choose a folder you can write "
                                    "to") from None
        self.clean_checkpoints(keep_folder=True)
        return self

    def _take_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no lock
            return
        self._lock = open(self.out / LOCK_FILE, "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise SearchBusyError(f"another search is writing into {self.out}: wait for it, "
                                  "or use another --out folder") from None

    def clean_checkpoints(self, keep_folder: bool = False) -> None:
        """Delete the run checkpoints the search made (runs that were killed are rerun
        from scratch); anything else in the checkpoints folder is left alone."""
        root = self.checkpoints
        if not root.is_dir() or root.is_symlink():
            return
        for entry in root.iterdir():
            if _CHECKPOINT_RE.match(entry.name) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
        if not keep_folder:
            try:
                root.rmdir()  # only when empty
            except OSError:
                pass

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def records_by_key(records: Iterable[dict]) -> dict[str, dict]:
    """The last record of each run key (a retried run replaces its failure)."""
    return {r["key"]: r for r in records}
