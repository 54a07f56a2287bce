"""Every committed notebook comes from one clean top-to-bottom run and follows the course's
shape: it opens with what the student learns and how long it takes, imports course_utils,
asserts that the code it teaches agrees with the package's copy, and closes with a summary and
exercises."""
import ast
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks")
                   .glob("[0-9][0-9]_*.ipynb"))


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
def test_notebooks_use_the_shared_package(path):
    code = [_source(c) for c in _cells(path) if c["cell_type"] == "code"]
    assert any("course_utils" in src for src in code), f"{path.name}: does not use course_utils"


# --------------------------------------------------------------------------- taught code
# A notebook may define the functions and classes it teaches. Where the package exports a
# name the notebook also defines, the package keeps a tested copy for later notebooks, and
# the notebook asserts that its version and the package's agree.

def _tree(src: str) -> ast.Module:
    """A code cell's AST, its IPython magics and shell lines left out."""
    return ast.parse("\n".join(line for line in src.splitlines()
                               if not line.lstrip().startswith(("%", "!"))))


def _is_agreement_check(node: ast.AST) -> bool:
    """An ``assert`` statement, or a call of an ``assert_*`` function
    (``torch.testing.assert_close``, ``np.testing.assert_allclose``, ...)."""
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name.startswith("assert")
    return False


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def missing_agreements(sources: list[str], exports: set[str]) -> list[str]:
    """The names the code cells ``sources`` define (``def``/``class``) that ``exports``
    also holds, and that no agreement check compares with the package's version.

    The package's version is named by an import from ``course_utils`` (``from
    course_utils.layers import relu as package_relu``) or reached through an imported
    ``course_utils`` module (``L.relu`` after ``import course_utils.layers as L``). An
    agreement check (an ``assert``, or an ``assert_*`` call) mentions both versions."""
    trees = [_tree(src) for src in sources]
    nodes = [n for tree in trees for n in ast.walk(tree)]
    defined = {n.name for tree in trees for n in tree.body  # a cell's own names, not methods
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    modules = {"course_utils"}  # names bound to course_utils modules
    imported = {}  # local alias -> name imported from course_utils
    for n in nodes:
        if isinstance(n, ast.Import):
            modules |= {a.asname or a.name.split(".")[0] for a in n.names
                        if a.name.split(".")[0] == "course_utils"}
        elif isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "course_utils":
            for a in n.names:
                imported[a.asname or a.name] = a.name
                modules.add(a.asname or a.name)  # may be a module (from course_utils import data)
    missing = []
    for name in sorted(defined & exports):
        package_aliases = {alias for alias, real in imported.items()
                           if real == name and alias != name}
        agreed = False
        for check in filter(_is_agreement_check, nodes):
            inside = list(ast.walk(check))
            ours = any(isinstance(n, ast.Name) and n.id == name for n in inside)
            theirs = any((isinstance(n, ast.Name) and n.id in package_aliases)
                         or (isinstance(n, ast.Attribute) and n.attr == name
                             and _root(n) in modules) for n in inside)
            agreed = agreed or (ours and theirs)
        if not agreed:
            missing.append(name)
    return missing


@pytest.fixture(scope="module")
def exports():
    from course_helpers import package_exports
    return package_exports()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_taught_code_agrees_with_the_packages_copy(path, exports):
    code = [_source(c) for c in _cells(path) if c["cell_type"] == "code"]
    missing = missing_agreements(code, exports)
    assert not missing, (
        f"{path.name} defines {missing}, which course_utils also exports: add a cell that "
        "asserts both versions give the same output (e.g. torch.testing.assert_close)")


EXPORTS = {"relu", "LocalResponseNorm"}


@pytest.mark.parametrize("cells,missing", [
    # the taught code with no comparison, or a check that tests one version only
    (["def relu(x):\n    return x.clamp(min=0)"], ["relu"]),
    (["def relu(x):\n    return x.clamp(min=0)", "assert relu(torch.ones(1)) == 1"], ["relu"]),
    (["class LocalResponseNorm(torch.nn.Module):\n    pass",
      "from course_utils.layers import LocalResponseNorm"], ["LocalResponseNorm"]),
    # compared with the package's copy: an assert, or torch.testing / np.testing
    (["from course_utils.layers import relu as package_relu\n%matplotlib inline",
      "def relu(x):\n    return x.clamp(min=0)",
      "x = torch.randn(5)\nassert torch.equal(relu(x), package_relu(x))"], []),
    (["import course_utils.layers as L", "def relu(x):\n    return x.clamp(min=0)",
      "torch.testing.assert_close(relu(x), L.relu(x))"], []),
    (["from course_utils import layers", "class LocalResponseNorm(torch.nn.Module):\n    pass",
      "np.testing.assert_allclose(LocalResponseNorm()(x), layers.LocalResponseNorm()(x))"], []),
    # a name the package does not export is the notebook's own, and so is a method
    (["def plot_my_figure():\n    pass"], []),
    (["class Net(torch.nn.Module):\n    def relu(self, x):\n        return x"], []),
])
def test_the_agreement_checker_on_small_notebooks(cells, missing):
    nb = {"cells": [{"cell_type": "code", "source": src.splitlines(keepends=True),
                     "outputs": []} for src in cells]}
    assert missing_agreements([_source(c) for c in nb["cells"]], EXPORTS) == missing


# --------------------------------------------------------------------------- library code
# The lesson standard: a notebook shows the library code it teaches in at least four code cells
# (a def or class, or at least two calls of PyTorch / skorch / scikit-learn / NumPy / SciPy,
# reached through their module names or a name the notebook imports from them), one of which
# defines a function or class; imports-only, check()/solution() and course_result cells do not
# count. Every lesson notebook is held to it (00 is the set-up tour).

LIBRARY_MODULES = ("torch", "torchvision", "skorch", "sklearn", "numpy", "scipy")
LIBRARIES = {"torch", "nn", "F", "np", "skorch", "sklearn", "torchvision", "scipy"}
SHOW_LIBRARY_CODE = {f"{n:02d}" for n in range(1, 14)}


def imported_library_names(sources: list[str]) -> set[str]:
    """The names a notebook's cells import from the libraries (``from skorch import X``)."""
    names = set()
    for src in sources:
        for node in ast.walk(_tree(src)):
            if isinstance(node, ast.ImportFrom) and node.module and (
                    node.module.split(".")[0] in LIBRARY_MODULES):
                names |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names
                          if a.name.split(".")[0] in LIBRARY_MODULES}
    return names


def library_code(src: str, imported: frozenset[str] | set[str] = frozenset()
                 ) -> tuple[bool, bool]:
    """``(shows library code, defines a function or class)`` for one code cell; ``imported``:
    the names the notebook imports from the libraries."""
    if re.search(r"\b(course_result|check|solution)\(", src):
        return False, False
    tree = _tree(src)
    defines = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  for n in tree.body)
    roots = LIBRARIES | set(imported)
    calls = sum(isinstance(n, ast.Call) and _root(n.func) in roots for n in ast.walk(tree))
    return defines or calls >= 2, defines


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] in SHOW_LIBRARY_CODE],
                         ids=lambda p: p.stem)
def test_notebooks_show_the_library_code_they_teach(path):
    sources = [_source(c) for c in _cells(path) if c["cell_type"] == "code"]
    imported = imported_library_names(sources)
    kinds = [library_code(src, imported) for src in sources]
    shown, defining = sum(k[0] for k in kinds), sum(k[1] for k in kinds)
    assert shown >= 4, f"{path.name}: {shown} code cells show library code, fewer than 4"
    assert defining >= 1, f"{path.name}: no code cell defines a function or class"


def test_the_counter_reads_names_imported_from_the_libraries():
    cells = ["from skorch.callbacks import EpochScoring, LRScheduler\nfrom course_utils import x",
             "cbs = [EpochScoring('accuracy'), LRScheduler('StepLR')]", "y = x(1)\nz = x(2)"]
    imported = imported_library_names(cells)
    assert {"EpochScoring", "LRScheduler"} <= imported and "x" not in imported
    assert library_code(cells[1], imported) == (True, False)
    assert library_code(cells[2], imported) == (False, False)


@pytest.mark.parametrize("src,kind", [
    ("import torch\nimport torch.nn.functional as F", (False, False)),
    ("x = torch.zeros(3)", (False, False)),
    ("x = torch.zeros(3)\ny = F.softmax(x, dim=0)", (True, False)),
    ("def f(x):\n    return x", (True, True)),
    ("answer = None\ncheck('10-3', answer)", (False, False)),
    ("course_result('10', seeds=1, x=np.mean(a), y=np.std(a))", (False, False)),
    ("%matplotlib inline\nclass Net(nn.Module):\n    pass", (True, True)),
])
def test_the_library_code_counter_on_small_cells(src, kind):
    assert library_code(src) == kind


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
