"""The command line: ``python -m course_utils.search GRID [--out DIR] [options]``.

Every error is one line, ``error: ...`` saying what to do, on stderr, with exit
status 2; a search in which no configuration succeeded ends with one such line and
exit status 1. Ctrl-C and SIGTERM stop the search and its worker processes (exit
130 and 143); what finished is kept, and the same command resumes.

Many machines share one search through one database: run the same command on each,
with the same ``--storage postgresql://...`` (or ``mysql://...``).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from ..config import BUILD_DIR, CourseError, display_path
from .errors import SearchError
from .execute import DASK_IDLE_TIMEOUT, DASK_TIMEOUT, run_search
from .folder import GRID_FILE, RESULTS_FILE, SearchFolder
from .report import write_report
from .spec import MAX_CONFIGS, load_grid, shorten
from .study import HEARTBEAT, GRACE_FACTOR

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one ``error:`` line too."""

    def error(self, message):  # noqa: D102
        self.exit(2, f"error: {message}: see python -m course_utils.search --help\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m course_utils.search",
        description="Resumable grid search over skorch parameters (see grids/*.yaml).",
        epilog="Run the same command again to resume: finished configurations are skipped "
               "and failed ones run again.")
    p.add_argument("grid", nargs="?", help="grid YAML file, or a name under grids/ (smoke, "
                   "quick, reference); optional with --report")
    p.add_argument("--out", help="output folder: new, empty, or made by this search "
                   "(default: build/search/GRIDNAME)")
    p.add_argument("--jobs", type=int, default=1, help="configurations at once (joblib), "
                   "at most one per core and per configuration")
    p.add_argument("--storage", metavar="URL",
                   help="the study's database for a search on many machines: "
                        "postgresql://USER:PASSWORD@HOST/DB or mysql://...; run the same "
                        "command on each machine (default: DIR/study.db, SQLite)")
    p.add_argument("--heartbeat", type=int, default=HEARTBEAT, metavar="SECONDS",
                   help=f"seconds between a running trial's heartbeats; a worker silent for "
                        f"{GRACE_FACTOR} times that is taken for dead and its configuration "
                        f"is queued again (default {HEARTBEAT})")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="send configurations to this dask.distributed scheduler")
    p.add_argument("--dask-timeout", type=float, default=DASK_TIMEOUT, metavar="SECONDS",
                   help=f"seconds the Dask scheduler has to answer (default {DASK_TIMEOUT:g})")
    p.add_argument("--dask-idle-timeout", type=float, default=DASK_IDLE_TIMEOUT,
                   metavar="SECONDS",
                   help="give up when the Dask cluster has had no worker for this long, "
                        "keeping what finished (a line every 30 s until then; default "
                        f"{DASK_IDLE_TIMEOUT:g})")
    p.add_argument("--halving", action="store_true",
                   help="successive halving with epochs as the resource (Optuna's pruner)")
    p.add_argument("--report", action="store_true",
                   help="only write summary.csv, best.json and heatmap.png from DIR")
    p.add_argument("--skip-failed", action="store_true",
                   help="keep configurations recorded as failed (default: run them again)")
    # failed configurations run again by default now; kept so older command lines still work
    p.add_argument("--retry-failed", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--max-configs", type=int, default=MAX_CONFIGS, metavar="N",
                   help=f"refuse a grid of more configurations (default {MAX_CONFIGS:,})")
    p.add_argument("--allow-module", action="append", default=[], metavar="MODULE",
                   help="a module whose network classes the grid's model: may name "
                        "('MODULE:Class'); repeat for several")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: the same clean stop."""


def _sigterm_as_interrupt():
    """Make SIGTERM stop the search as Ctrl-C does; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the stop is under way
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return shorten(text.splitlines()[0], -1000) if text else type(exc).__name__


def _run(args) -> int:
    if args.grid is None and not (args.report and args.out):
        raise SearchError("give a grid file (e.g. grids/smoke.yaml), or --report --out DIR")
    if args.max_configs < 1:
        raise SearchError(f"--max-configs must be a positive integer, got {args.max_configs}")
    spec = load_grid(args.grid, allow_modules=args.allow_module,
                     max_configs=args.max_configs) if args.grid else None
    out = Path(args.out) if args.out else BUILD_DIR / "search" / spec.name
    args.out_folder = out
    if args.report:
        if spec is not None:
            SearchFolder(out, spec).check()
        paths = write_report(out, storage=args.storage)
        print("report: " + ", ".join(display_path(p) for p in paths.values()))
        return 0
    start = time.perf_counter()
    frame = run_search(spec, out, jobs=args.jobs, dask=args.dask, halving=args.halving,
                       skip_failed=args.skip_failed, max_configs=args.max_configs,
                       dask_timeout=args.dask_timeout, dask_idle_timeout=args.dask_idle_timeout,
                       storage=args.storage, heartbeat=args.heartbeat,
                       progress=False if args.no_progress else None)
    print(f"wall time {time.perf_counter() - start:.1f} s")
    if frame.empty or not (frame["status"] == "ok").any():
        errors = [e for e in frame.get("error", []) if isinstance(e, str)] if len(frame) else []
        first = f"; the first error: {errors[0]}" if errors else ""
        print(f"error: no configuration succeeded ({len(frame)} failed{first}): fix the "
              f"cause and run the same command again (failed ones are retried); each error "
              f"is in {out / RESULTS_FILE}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed as one line
        return exc.code if isinstance(exc.code, int) else 2
    restore = _sigterm_as_interrupt()
    try:
        return _run(args)
    except CourseError as exc:
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        out = getattr(args, "out_folder", None)  # set once the grid was checked
        if out is not None and (out / GRID_FILE).is_file():
            print(f"\ninterrupted: finished configurations are in {out}; run the same "
                  "command again to resume", file=sys.stderr)
        else:
            print("\ninterrupted before the search started: nothing was written",
                  file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    except MemoryError:
        print("error: out of memory: search a smaller grid (--max-configs caps it) or use "
              "less data", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 -- one line, never a traceback
        print(f"error: {type(exc).__name__}: {_first_line(exc)} (unexpected: please report "
              "it with the command you ran)", file=sys.stderr)
        return 2
    finally:
        restore()
