"""The output folder of a search: what it may hold, and how the search writes there.

The study itself lives in a database (``DIR/study.db``, or ``--storage URL``); the folder
holds the grid's signature (``grid.json``), the exports of the study (``results.jsonl``,
``summary.csv``, ``best.json``, ``heatmap.png``), a signed lock and the runs' checkpoints.

The search writes and deletes only inside its output folder, and only its own files:

- a folder is the search's when it holds ``grid.json``; otherwise it must be empty, or hold
  only the search's own lock (signed) and temporary files;
- an entry of the folder that is a symbolic link is refused, and every file the search
  opens is opened with ``O_NOFOLLOW``; temporary files are made with ``O_EXCL``;
- every write is whole or not at all: short writes are looped, the data fsynced, a
  failed append cut back, a failed temporary file removed. ``ENOSPC`` and other errors
  give one line that names the file and says the finished results are kept.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import stat
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import GridMismatchError, OutputFolderError, ResultsError
from .spec import GridSpec, config_id, run_key, shorten

__all__ = ["BEST_KEYS", "CHECKPOINT_DIR", "DB_FILE", "FRAME_KEYS", "GRID_FILE", "LOCK_FILE",
           "LOCK_SIGNATURE", "OWN_FILES", "REPORT_FILES", "RESULTS_FILE", "RESULT_KEYS",
           "SearchFolder", "append_line", "append_result", "checkpoint_prefix", "new_record",
           "read_grid_meta", "read_results", "records_by_key", "write_file", "write_results"]

RESULTS_FILE = "results.jsonl"
GRID_FILE = "grid.json"
LOCK_FILE = ".lock"
DB_FILE = "study.db"
CHECKPOINT_DIR = "checkpoints"
REPORT_FILES = ("summary.csv", "best.json", "heatmap.png")
#: The first line of the search's lock file: a lock without it is not the search's.
LOCK_SIGNATURE = b"course_utils.search lock: do not edit\n"
#: What grid.json says about who wrote it.
TOOL = "course_utils.search"
#: Every name the search itself writes into its folder.
OWN_FILES = frozenset({GRID_FILE, LOCK_FILE, DB_FILE, f"{DB_FILE}-journal", f"{DB_FILE}-wal",
                       f"{DB_FILE}-shm", RESULTS_FILE, CHECKPOINT_DIR, *REPORT_FILES})
_TMP_RE = re.compile(r"\.[A-Za-z0-9_.-]+\.tmp-[0-9a-f]{16}")
_CHECKPOINT_RE = re.compile(r"[0-9a-f]{10}-e[0-9]+-")

#: THE results schema: the keys of one line of results.jsonl, in order. The metrics are
#: those of :func:`course_utils.experiment.train_variant` with ``select="best"``.
RESULT_KEYS = (
    "key",            # config_id@epochs: a configuration trained for a number of epochs
    "id",             # config_id: the configuration
    "params",         # its searched values
    "epochs",         # epochs it was given (a pruned run: the epochs it reached)
    "rung",           # successive halving: the last rung the run reached (None in a full grid)
    "seed",
    "status",         # "ok", "pruned" (successive halving stopped it) or "failed"
    "valid_acc",      # eval-mode accuracy on the validation split, best epoch's model
    "train_acc",      # eval-mode accuracy on a fixed training sample, same model
    "gap",            # train_acc - valid_acc
    "best_epoch",
    "epochs_run",     # fewer than epochs when early stopping ended the run
    "valid_history",  # valid_acc after each epoch run (the net's history), in epoch order
    "train_seconds",  # skorch's wall time of all epochs
    "device",
    "error",          # the first line of the error of a failed run
    "threads", "wall_seconds", "host", "pid", "versions", "finished_at",
    "trial",          # the Optuna trial number in the study
)
#: The per-run columns of the report's tables (after the parameters).
FRAME_KEYS = ("valid_acc", "train_acc", "gap", "best_epoch", "epochs", "epochs_run",
              "train_seconds", "rung", "status", "device", "seed", "error", "id")
#: What best.json keeps of the winning record.
BEST_KEYS = ("params", "valid_acc", "train_acc", "gap", "best_epoch", "epochs", "epochs_run",
             "train_seconds", "device", "seed", "versions", "id")


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


def records_by_key(records: Iterable[dict]) -> dict[str, dict]:
    """The last record of each run key (a retried run replaces its failure)."""
    return {r["key"]: r for r in records}


# --------------------------------------------------------------------------- writing

def _cause(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def write_failed(path: Path, exc: OSError) -> OutputFolderError:
    """The one line for a write into ``path`` that failed."""
    full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
    return OutputFolderError(
        f"cannot write {path} ({_cause(exc)}){full}: the finished results are kept in the "
        f"study ({path.parent / DB_FILE} or --storage); make room or make the folder "
        f"writable, then run the same command again (or --report --out {path.parent})")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.EIO, "short write", None)
        view = view[n:]


def _refuse_link(path: Path) -> None:
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise OutputFolderError(f"{path} is a symbolic link: the search never writes "
                                    "through links; remove it or use another --out folder")
    except FileNotFoundError:
        pass


def write_file(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``path`` whole or not at all: an ``O_EXCL`` temporary file beside it, every
    byte written and fsynced, then renamed over ``path`` (a rename never follows a link).
    The temporary file is removed on every exit path."""
    path = Path(path)
    data = data.encode() if isinstance(data, str) else data
    _refuse_link(path)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(8)}")
    fd = None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        _write_all(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.replace(tmp, path)
    except OSError as exc:
        raise write_failed(path, exc) from None
    finally:
        if fd is not None:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def append_line(path: str | os.PathLike, line: bytes) -> None:
    """Append ``line`` to ``path`` whole or not at all (a failed write is cut back)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            _refuse_link(path)
        raise write_failed(path, exc) from None
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, line)
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise write_failed(path, exc) from None
    finally:
        os.close(fd)


def _line(record: dict) -> str:
    return json.dumps({k: record.get(k) for k in RESULT_KEYS}, default=str) + "\n"


def append_result(folder: SearchFolder, record: dict) -> None:
    """One finished configuration onto results.jsonl (``tail -f`` shows the search)."""
    with folder.locked():
        append_line(folder.out / RESULTS_FILE, _line(record).encode())


def write_results(folder: SearchFolder, records: Iterable[dict]) -> None:
    """results.jsonl written again, whole, from the study's records."""
    with folder.locked():
        write_file(folder.out / RESULTS_FILE, "".join(_line(r) for r in records))


def _read_nofollow(path: Path, limit: int = 1 << 26) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > limit:
                raise ResultsError(f"{path} is larger than {limit >> 20} MiB: not a file "
                                   "the search wrote")
            chunks.append(chunk)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- reading

def read_results(out: str | os.PathLike) -> list[dict]:
    """The records in ``out/results.jsonl`` (an export of the study), each checked:
    a line that is not a result record is one :class:`ResultsError` naming it."""
    path = Path(out) / RESULTS_FILE
    try:
        data = _read_nofollow(path)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ResultsError(f"cannot read {path} ({_cause(exc)}): it must be a plain file "
                           "the search wrote") from None
    records = []
    for i, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise ResultsError(f"{path}, line {i}, is not JSON: run --report --out "
                               f"{Path(out)} to write it again from the study") from None
        problem = _record_problem(rec)
        if problem:
            raise ResultsError(f"{path}, line {i}, is not a result record ({problem}): "
                               "run --report to write it again from the study, or delete "
                               "that line")
        records.append({**dict.fromkeys(RESULT_KEYS), **rec})
    return records


def _record_problem(rec: Any) -> str | None:
    if not isinstance(rec, dict):
        return f"a {type(rec).__name__}, not a mapping"
    for key, kind, required in (("key", str, True), ("status", str, True),
                                ("params", dict, True), ("id", str, False),
                                ("epochs", int, False)):
        v = rec.get(key)
        if (v is not None or required) and (not isinstance(v, kind) or isinstance(v, bool)):
            return f"{key}: {shorten(v, 60)}"
    if rec["status"] not in ("ok", "failed", "pruned"):
        return f"status: {shorten(rec['status'], 60)}"
    for key in ("valid_acc", "train_acc", "gap", "train_seconds"):
        v = rec.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return f"{key}: {shorten(v, 60)}"
    if rec["status"] == "ok" and not isinstance(rec.get("valid_acc"), (int, float)):
        return "status ok without valid_acc"
    return None


def read_grid_meta(out: str | os.PathLike) -> dict[str, Any]:
    """``out/grid.json`` as a dict; :class:`GridMismatchError` when it is damaged."""
    gfile = Path(out) / GRID_FILE
    try:
        meta = json.loads(_read_nofollow(gfile, 1 << 20))
        meta["fingerprint"]
    except (ValueError, KeyError, TypeError, ResultsError):
        raise GridMismatchError(f"{gfile} is damaged: use another --out folder") from None
    except OSError as exc:
        raise OutputFolderError(f"cannot read {gfile} ({_cause(exc)}): it must be a plain "
                                "file the search wrote") from None
    return meta


# --------------------------------------------------------------------------- the folder

class SearchFolder:
    """The output folder: ownership, links, the fingerprint, the signed lock.

    :meth:`check` writes nothing. :meth:`claim` (under :meth:`locked`) creates the folder
    and grid.json. :meth:`locked` holds the folder's lock around a write that several
    workers share (the exports).
    """

    def __init__(self, out: str | os.PathLike, spec: GridSpec | None = None):
        self.out, self.spec = Path(out), spec

    @property
    def checkpoints(self) -> Path:
        return self.out / CHECKPOINT_DIR

    def path(self, name: str) -> Path:
        return self.out / name

    def _entries(self) -> list[os.DirEntry]:
        try:
            with os.scandir(self.out) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise OutputFolderError(f"cannot read --out {self.out} ({_cause(exc)}): "
                                    "choose a folder you can read and write") from None

    def owned(self) -> bool:
        """Was the folder made by the search (does it hold grid.json as a plain file)?"""
        try:
            return stat.S_ISREG(os.lstat(self.out / GRID_FILE).st_mode)
        except OSError:
            return False

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
        for e in entries:
            if e.is_symlink():
                raise OutputFolderError(
                    f"--out {out} holds a symbolic link, {shorten(e.name, 80)}: the search "
                    "never writes through links; remove it or use another folder")
        if not self.owned():
            foreign = [e.name for e in entries if not self._ours_before_claim(e)]
            if foreign:
                shown = ", ".join(shorten(n, -60) for n in foreign[:3]) + (
                    ", ..." if len(foreign) > 3 else "")
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
                f"{out} holds results of a different grid ({shorten(meta.get('name'), 80)}, "
                f"fingerprint {shorten(meta['fingerprint'], 40)}; this grid is "
                f"{self.spec.fingerprint()}): use another --out folder, or delete that one "
                "to start over")

    def _ours_before_claim(self, entry: os.DirEntry) -> bool:
        """Before grid.json exists, only a signed lock and the search's temporary files."""
        if _TMP_RE.fullmatch(entry.name):
            return entry.is_file(follow_symlinks=False)
        if entry.name == LOCK_FILE and entry.is_file(follow_symlinks=False):
            try:
                head = _read_nofollow(Path(entry.path), 4096)
            except (OSError, ResultsError):
                return False
            return head in (b"", LOCK_SIGNATURE) or head.startswith(LOCK_SIGNATURE)
        return False

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock (``.lock``, signed, never truncated, never a link)."""
        try:
            import fcntl
        except ImportError:  # Windows: no lock
            yield
            return
        path = self.out / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                _refuse_link(path)
            raise OutputFolderError(f"cannot write into --out {self.out} ({_cause(exc)}): "
                                    "choose a folder you can write to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            head = os.pread(fd, len(LOCK_SIGNATURE), 0)
            if head == b"":
                try:
                    _write_all(fd, LOCK_SIGNATURE)
                except OSError as exc:
                    raise write_failed(path, exc) from None
            elif head != LOCK_SIGNATURE:
                raise OutputFolderError(f"{path} is not the search's lock (it lacks the "
                                        "signature): use another --out folder")
            yield
        finally:
            os.close(fd)  # releases the lock

    def claim(self) -> None:
        """Create the folder and grid.json (the folder is checked first); call under
        :meth:`locked` once the folder exists, or before for a new one."""
        self.check()
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFolderError(f"cannot write into --out {self.out} ({_cause(exc)}): "
                                    "choose a folder you can write to") from None
        with self.locked():
            self.check()  # again, under the lock: another worker may have claimed it
            for entry in os.scandir(self.out):  # temporary files of a killed write
                if _TMP_RE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
            if not self.owned():
                write_file(self.out / GRID_FILE, json.dumps(
                    {"tool": TOOL, "fingerprint": self.spec.fingerprint(),
                     "name": self.spec.name, "source": shorten(self.spec.source, 200),
                     "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "spec": self.spec.to_dict()}, indent=2, default=str))
            try:
                self.checkpoints.mkdir(exist_ok=True)
                _refuse_link(self.checkpoints)
            except OSError as exc:
                raise OutputFolderError(f"cannot write into --out {self.out} "
                                        f"({_cause(exc)}): choose a folder you can write "
                                        "to") from None

    def clean_checkpoints(self, keep_folder: bool = False, older_than: float = 0.0) -> None:
        """Delete the run checkpoints the search made (runs that were killed are rerun
        from scratch); anything else in the checkpoints folder is left alone.
        ``older_than``: only folders not touched for that many seconds (another worker
        may be using the newer ones)."""
        root = self.checkpoints
        if not root.is_dir() or root.is_symlink():
            return
        now = time.time()
        for entry in os.scandir(root):
            if (_CHECKPOINT_RE.match(entry.name) and entry.is_dir(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime >= older_than):
                shutil.rmtree(entry.path, ignore_errors=True)
        if not keep_folder:
            with contextlib.suppress(OSError):
                root.rmdir()  # only when empty
