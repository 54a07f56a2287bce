"""Execute the course notebooks headless, in order: the engine behind ``make run``.

    python -m course_utils.tools.runner                 # every notebook -> build/
    python -m course_utils.tools.runner 00 05           # just these (by number or name)
    python -m course_utils.tools.runner --inplace 01    # refresh the committed outputs

Each notebook runs top to bottom in a fresh kernel. The executed copy and an
HTML render go to ``build/``; a notebook that fails is reported and the rest
still run. The last lines are one summary line per notebook, printed whatever
happens (a failed write, Ctrl-C).

Bad input gets one line and exit 2 before anything runs: an empty or unmatched
selection (never "every notebook"), an output folder that cannot be written.
Kernels talk to the runner over CurveZMQ-encrypted sockets where pyzmq has Curve
(ipykernel otherwise warns once per notebook that its TCP traffic is plain text).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

from ..config import BUILD_DIR, REPO_ROOT, CourseError
from ..experiment import RESULT_PREFIX
from . import OneLineParser, positive

__all__ = ["ANSI", "NOTEBOOK_DIR", "RunnerError", "StopRequest", "check_writable",
           "course_notebooks", "course_results", "execute", "kernel_config", "main", "strip_ansi",
           "write_results_csv"]

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


class RunnerError(CourseError):
    """Bad input to the runner: nothing has run."""


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def course_notebooks(selection: list[str] | None = None) -> list[Path]:
    """The notebooks in course order; with ``selection``, only those whose name starts
    with (or equals) one of its entries (a number, a name, or a path to one).

    An empty entry, or one that matches no notebook, raises :class:`RunnerError`:
    a selection never silently means "every notebook".
    """
    books = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return books
    if any(not s.strip() for s in selection):
        raise RunnerError("an empty notebook name selects nothing: give numbers or names "
                          "(e.g. 00 05), or none at all to run every notebook")
    wanted = [Path(s.strip()).name for s in selection]

    def matches(book: Path, name: str) -> bool:
        return book.name.startswith(name) or book.stem == name

    missing = [name for name in wanted if not any(matches(b, name) for b in books)]
    if missing:
        shown = ", ".join(repr(_short(m)) for m in missing[:5])
        first, last = (books[0].name[:2], books[-1].name[:2]) if books else ("00", "00")
        raise RunnerError(f"no notebook matches {shown} in {NOTEBOOK_DIR}: give numbers "
                          f"{first}-{last} or names from that folder")
    return [b for b in books if any(matches(b, name) for name in wanted)]


def check_writable(out_dir: Path, books: list[Path] = (), inplace: bool = False) -> None:
    """Raise :class:`RunnerError` unless ``out_dir`` can be created and written (and,
    with ``inplace``, each of ``books`` rewritten): checked before anything runs."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunnerError(f"the output folder {out_dir} is a file: choose a folder with "
                          "--out DIR")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".runner-probe-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RunnerError(f"cannot write to the output folder {out_dir} ({reason}): "
                          "choose another with --out DIR") from None
    if inplace:
        locked = [b.name for b in books if not os.access(b, os.W_OK)]
        if locked:
            raise RunnerError(f"--inplace cannot rewrite {', '.join(locked[:3])}: make "
                              "them writable, or run without --inplace")


def kernel_config():
    """The kernels' configuration: CurveZMQ transport encryption where pyzmq supports it
    and the kernel declares it (``KernelManager.transport_encryption = "auto"``)."""
    from traitlets.config import Config

    config = Config()
    try:
        import zmq
        from jupyter_client.manager import KernelManager
    except ImportError:  # pragma: no cover - nbclient needs both
        return config
    if "transport_encryption" in KernelManager.class_traits() and zmq.has("curve"):
        config.KernelManager.transport_encryption = "auto"
    return config


class StopRequest:
    """Ctrl-C or SIGTERM while notebooks run (install it as the handler of both).

    The first signal interrupts the running cell's kernel (as JupyterLab's stop button
    does: kernels run in a session of their own and do not see a terminal's Ctrl-C),
    lets no further cell start, and :func:`execute` reports the notebook as STOPPED;
    its kernel is shut down in order. A second signal stops at once.

    While a notebook runs, nbclient's event loop handles SIGINT and SIGTERM itself (it
    shuts the kernel down under the running cell); :meth:`check`, nbclient's
    ``on_cell_start`` hook, puts this request in its place on that loop.
    """

    def __init__(self):
        self.signal: int | None = None
        self.client = None  # the NotebookClient running now
        self._loop = None

    def __call__(self, signum, frame=None):
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        km = getattr(self.client, "km", None)
        if km is not None and self._loop is not None:
            import asyncio

            from jupyter_core.utils import ensure_async

            asyncio.ensure_future(ensure_async(km.interrupt_kernel()))

    def check(self, **_):
        """nbclient's ``on_cell_start`` hook: no cell starts once a stop is asked for."""
        if self.signal is not None:
            raise RuntimeError("stopped before this cell")
        import asyncio

        loop = asyncio.get_event_loop()
        if loop is not self._loop:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self, sig)
                except (RuntimeError, NotImplementedError, ValueError):  # not the main thread
                    return
            self._loop = loop

    def detach(self) -> None:
        """After a notebook: back to this process's own handlers."""
        self.client, self._loop = None, None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self)

    @property
    def name(self) -> str:
        if self.signal is None:
            return ""
        return "Ctrl-C" if self.signal == signal.SIGINT else signal.Signals(self.signal).name


def execute(path: Path, out_dir: Path, inplace: bool = False, timeout: int = 3600,
            stop: StopRequest | None = None) -> tuple[str, float, str, list[dict]]:
    """Run one notebook; returns (status, seconds, message, its COURSE-RESULT records).
    With ``stop`` (see :class:`StopRequest`), a stop request makes the status STOPPED."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", config=kernel_config(),
                            resources={"metadata": {"path": str(path.parent)}})
    if stop is not None:
        stop.client, client.on_cell_start = client, stop.check
    start = time.perf_counter()
    status, message = "ok", ""
    try:
        client.execute()
    except CellExecutionError as exc:
        status = "FAILED"
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        message = lines[-1] if lines else "cell error"
    except Exception as exc:  # kernel died, timeout...
        status, message = "FAILED", f"{type(exc).__name__}: {exc}"
    finally:
        if stop is not None:
            stop.detach()
    if stop is not None and stop.signal is not None:
        status, message = "STOPPED", f"stopped by {stop.name}"
    seconds = time.perf_counter() - start
    strip_ansi(nb)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    body, _ = HTMLExporter().from_notebook_node(nb)
    (out_dir / path.with_suffix(".html").name).write_text(body, encoding="utf-8")
    if inplace and status == "ok":
        nbformat.write(nb, path)
    return status, seconds, message, course_results(nb)


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(nb) -> None:
    """Remove terminal colour codes (skorch colours its epoch log) from the stored
    outputs: committed notebooks hold plain text."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = ANSI.sub("", out.get("text", ""))
            elif out.get("output_type") == "error":
                out["traceback"] = [ANSI.sub("", line) for line in out.get("traceback", [])]


def course_results(nb) -> list[dict]:
    """The ``COURSE-RESULT {json}`` lines a notebook printed, parsed."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                for line in out.get("text", "").splitlines():
                    if line.startswith(RESULT_PREFIX + " "):
                        try:
                            found.append(json.loads(line[len(RESULT_PREFIX) + 1:]))
                        except ValueError:
                            pass
    return found


def write_results_csv(records: list[dict], path: Path) -> Path:
    """One row per notebook result; nested values (per-variant mean/std) as JSON."""
    keys: list[str] = []
    for r in records:
        keys += [k for k in r if k not in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for r in records:
            writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v
                             for k, v in r.items()})
    return path


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m course_utils.tools.runner", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="numbers or names (default: all)")
    parser.add_argument("--out", type=Path, default=BUILD_DIR, help="output folder (build/)")
    parser.add_argument("--inplace", action="store_true",
                        help="also write outputs back into notebooks/ when a run succeeds")
    parser.add_argument("--timeout", type=positive(int), default=3600, help="seconds per cell")
    args = parser.parse_args(argv)

    os.environ.setdefault("COURSE_PROGRESS", "0")  # no progress widgets in stored outputs
    from ..config import get_profile

    try:
        profile = get_profile().name  # fail early on a bad COURSE_PROFILE
        books = course_notebooks(args.notebooks)
        check_writable(args.out, books, args.inplace)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Running {len(books)} notebook(s) in profile '{profile}', output in {args.out}",
          flush=True)
    results, records, code = [], [], 0
    stop = StopRequest()  # Ctrl-C and SIGTERM: the running notebook stops, the summary prints
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for book in books:
            print(f"-> {book.name} ...", flush=True)
            start = time.perf_counter()
            try:
                status, seconds, message, found = execute(book, args.out, args.inplace,
                                                          args.timeout, stop=stop)
            except OSError as exc:  # its outputs could not be written (disk full, ...)
                status, seconds, found = "FAILED", time.perf_counter() - start, []
                where = exc.filename or args.out
                message = f"could not write its outputs to {where}: {exc.strerror or exc}"
            except Exception as exc:  # not a readable notebook (bad JSON, ...): the rest run
                status, seconds, found = "FAILED", time.perf_counter() - start, []
                first = (str(exc).strip().splitlines() or [""])[0]
                message = f"{type(exc).__name__}: {_short(first, 160)}"
            results.append((book.name, status, seconds, message))
            records += found
            if stop.signal is not None:
                code = 130
                break
    except KeyboardInterrupt:  # a second Ctrl-C
        results.append((book.name, "STOPPED", time.perf_counter() - start, "stopped"))
        code = 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if records:
            try:
                print(f"results: {write_results_csv(records, args.out / 'results.csv')}")
            except OSError as exc:
                print(f"error: could not write {args.out / 'results.csv'}: "
                      f"{exc.strerror or exc}", file=sys.stderr)
                code = code or 1
        done = {r[0] for r in results}
        results += [(b.name, "-", 0.0, "not run") for b in books if b.name not in done]
        print("\nSummary")
        for name, status, seconds, message in results:
            extra = f"  {message}" if message else ""
            print(f"  {status:7} {seconds:8.1f} s  {name}{extra}", flush=True)
    if code:
        return code
    return 0 if all(r[1] == "ok" for r in results) else 1

if __name__ == "__main__":
    sys.exit(main())
