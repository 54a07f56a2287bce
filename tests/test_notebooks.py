"""Every committed notebook comes from one clean top-to-bottom run and follows the course's
shape: it opens with what the student learns and how long it takes, imports course_utils,
keeps logic in the package, and closes with a summary and exercises."""
import ast
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _source(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_the_course_has_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_getting_started.ipynb"
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert len(numbers) == len(set(numbers)), f"two notebooks share a number: {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_run_top_to_bottom_in_one_kernel(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts}"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: stored error output {errors[0].get('ename')}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opens_with_goals_and_times_and_closes_with_exercises(path):
    """Two endings: the course_result cell, then one markdown cell with the summary and
    the exercises; or the summary, the exercises, a check() cell per exercise, and the
    course_result cell last."""
    cells = _cells(path)
    first = _source(cells[0])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# ")
    assert re.search(r"what you will learn", first, re.I), f"{path.name}: no learning goals"
    assert "CPU" in first and "GPU" in first, f"{path.name}: no CPU/GPU timing"
    headings = [(i, h.strip()) for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                for h in re.findall(r"^## (.+)$", _source(c), re.M)]
    assert [h for _, h in headings[-2:]] == ["Summary", "Exercises"], (
        f"{path.name}: the last sections are {headings[-2:]}, not Summary then Exercises")
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "course_result(" in _source(code[-1]), f"{path.name}: last code cell lacks course_result"
    exercises_at = headings[-1][0]
    if exercises_at == len(cells) - 1:
        return  # one closing markdown cell
    assert cells[-1] is code[-1], f"{path.name}: the course_result cell is not the last cell"
    checks = [_source(c) for c in cells[exercises_at + 1:-1] if c["cell_type"] == "code"]
    assert checks and all("check(" in src for src in checks), (
        f"{path.name}: between Exercises and course_result, every code cell checks an answer")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_thin_notebooks_use_the_shared_package(path):
    code = [_source(c) for c in _cells(path) if c["cell_type"] == "code"]
    assert any("course_utils" in src for src in code), f"{path.name}: does not use course_utils"
    for src in code:
        tree = ast.parse("\n".join(line for line in src.splitlines()
                                   if not line.lstrip().startswith(("%", "!"))))
        defs = [n.name for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defs, f"{path.name}: defines {defs}; move the logic into course_utils"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_hold_no_progress_widgets(path):
    for cell in _cells(path):
        for out in cell.get("outputs", []):
            assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {}), (
                f"{path.name}: a widget output was stored; run with COURSE_PROGRESS=0")


def _output_text(path):
    for cell in _cells(path):
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain") or ""
            yield "".join(text) if isinstance(text, list) else text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_hold_no_absolute_paths_or_ansi_codes(path):
    for text in _output_text(path):
        assert "\x1b[" not in text, f"{path.name}: ANSI colour codes in an output"
        found = re.search(r"(?<![\w.~])/(?:work|home|root|tmp|usr|Users|opt|var)/\S*", text)
        assert not found, f"{path.name}: absolute path {found.group(0)!r} in an output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_last_output_line_is_the_course_result(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    streams = [o for o in code[-1].get("outputs", []) if o.get("output_type") == "stream"]
    assert streams, f"{path.name}: the last code cell prints nothing"
    last = "".join(streams[-1]["text"]).rstrip("\n").splitlines()[-1]
    assert last.startswith("COURSE-RESULT "), f"{path.name}: last line {last!r}"
    record = json.loads(last[len("COURSE-RESULT "):])
    assert record["notebook"] == path.name[:2]
    for key in ("profile", "device", "threads", "seconds", "seeds"):
        assert key in record, f"{path.name}: COURSE-RESULT lacks {key}"
