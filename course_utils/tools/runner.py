"""Execute the course notebooks headless, in order: the engine behind ``make run``.

    python -m course_utils.tools.runner                 # every notebook -> build/
    python -m course_utils.tools.runner 00 05           # just these (by number or name)
    python -m course_utils.tools.runner --inplace 01    # refresh the committed outputs

Each notebook runs top to bottom in a fresh kernel. The executed copy and an
HTML render go to ``build/``; a notebook that fails is reported and the rest
still run. The last lines are one summary line per notebook.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from pathlib import Path

from ..config import BUILD_DIR, REPO_ROOT
from ..experiment import RESULT_PREFIX

__all__ = ["ANSI", "NOTEBOOK_DIR", "course_notebooks", "course_results", "execute", "main",
           "strip_ansi", "write_results_csv"]

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def course_notebooks(selection: list[str] | None = None) -> list[Path]:
    """The notebooks in course order, optionally only those whose name starts with
    (or equals) one of ``selection``."""
    books = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return books
    chosen = [b for b in books if any(b.name.startswith(s) or b.stem == s for s in selection)]
    missing = [s for s in selection if not any(b.name.startswith(s) or b.stem == s for b in books)]
    if missing:
        raise SystemExit(f"error: no notebook matches {', '.join(missing)} in {NOTEBOOK_DIR}")
    return chosen


def execute(path: Path, out_dir: Path, inplace: bool = False, timeout: int = 3600
            ) -> tuple[str, float, str, list[dict]]:
    """Run one notebook; returns (status, seconds, message, its COURSE-RESULT records)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
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
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.runner",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="numbers or names (default: all)")
    parser.add_argument("--out", type=Path, default=BUILD_DIR, help="output folder (build/)")
    parser.add_argument("--inplace", action="store_true",
                        help="also write outputs back into notebooks/ when a run succeeds")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)

    os.environ.setdefault("COURSE_PROGRESS", "0")  # no progress widgets in stored outputs
    from ..config import get_profile

    profile = get_profile().name  # fail early on a bad COURSE_PROFILE
    books = course_notebooks(args.notebooks)
    print(f"Running {len(books)} notebook(s) in profile '{profile}', output in {args.out}",
          flush=True)
    results, records = [], []
    for book in books:
        print(f"-> {book.name} ...", flush=True)
        status, seconds, message, found = execute(book, args.out, args.inplace, args.timeout)
        results.append((book.name, status, seconds, message))
        records += found
    if records:
        print(f"results: {write_results_csv(records, args.out / 'results.csv')}")
    print("\nSummary")
    for name, status, seconds, message in results:
        extra = f"  {message}" if message else ""
        print(f"  {status:6} {seconds:8.1f} s  {name}{extra}")
    return 0 if all(r[1] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
