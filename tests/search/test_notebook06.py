"""Notebook 06's lesson (course_utils.lessons.ch06_grid_search) on the tiny search: the
notebook's GridSearchCV cells against the tool, the bracketing rule and the grids that extend a
search, the best on more seeds."""
from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest
from search_helpers import REPO, tiny

from course_utils import search as S
from course_utils.config import get_profile
from course_utils.data import course_splits
from course_utils.lessons import ch06_grid_search as L

NOTEBOOK = REPO / "notebooks" / "06_grid_search.ipynb"


def _notebook_cell(marker: str) -> str:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    found = ["".join(c["source"]) for c in cells
             if c["cell_type"] == "code" and "".join(c["source"]).startswith(marker)]
    assert len(found) == 1, f"one cell of notebook 06 starts with {marker!r}"
    return found[0]


def _run_cells(namespace: dict, *markers: str) -> dict:
    """Run the notebook's cells that start with ``markers``, in ``namespace``."""
    for marker in markers:
        exec(compile(_notebook_cell(marker), str(NOTEBOOK), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def tiny_spec():
    return S.load_grid(tiny())


def _grid_search(spec, summary):
    """Run the notebook's two GridSearchCV cells on ``spec`` and the tool's ``summary``;
    their namespace afterwards."""
    import torch
    from sklearn.model_selection import GridSearchCV, ParameterGrid, PredefinedSplit

    from course_utils.training import make_classifier

    # what the notebook's first cell imports, and the grid, images and summary it made before
    namespace = {"torch": torch, "GridSearchCV": GridSearchCV, "ParameterGrid": ParameterGrid,
                 "PredefinedSplit": PredefinedSplit, "make_classifier": make_classifier,
                 "sklearn_results": L.sklearn_results, "agreement": L.agreement,
                 "spec": spec, "splits": S.grid_splits(spec), "summary": summary}
    return _run_cells(namespace, "# The grid search, the scikit-learn way",
                      "# GridSearchCV on two configurations")


def test_the_notebooks_grid_search_cv_finds_what_the_tool_finds(tiny_spec, jobs1):
    out, _, _ = jobs1
    summary = S.load_summary(out)
    ns = _grid_search(tiny_spec, summary)
    assert ns["param_grid"] == tiny_spec.params  # the grid the notebook shows is the tool's
    # GridSearchCV trained the tool's best and worst configurations, and scored them alike
    sk = ns["sk"]
    params = list(tiny_spec.params)
    ends = summary.iloc[[0, -1]][params].to_dict("records")
    assert sorted(map(str, sk[params].to_dict("records"))) == sorted(map(str, ends))
    assert ns["verdict"].startswith("both searches agree"), ns["table"]
    assert (ns["table"]["difference"] == 0).all()
    assert sorted(ns["table"]["search tool rank"]) == [1, len(summary)]
    # the comparison can fail: a changed score is reported with its size
    off = summary.copy()
    off.loc[off.index[0], "valid_acc"] += 0.05  # the best gains: still the best
    verdict = L.agreement(sk, off, params)[1]
    assert "differ by up to 0.0500" in verdict and "same order" in verdict
    off.loc[off.index[-1], "valid_acc"] += 2.0  # the worst overtakes it
    assert "different orders" in L.agreement(sk, off, params)[1]
    missing = summary.iloc[1:]
    assert "missing from the tool's results" in L.agreement(sk, missing, params)[1]


def test_repeat_best_reruns_the_best_and_reuses_the_runner_ups_grid_run(tiny_spec, jobs1):
    out, _, _ = jobs1
    summary = S.load_summary(out)
    prof = get_profile("smoke").with_(train_size=64, valid_size=64, test_size=100)
    splits = course_splits(prof, seed=tiny_spec.data_seed)
    assert (splits.y_valid == S.grid_splits(tiny_spec).y_valid).all()
    runs = L.repeat_best(tiny_spec, summary, splits, seeds=[0, 1])
    assert list(runs["variant"]) == ["best", "best", "runner-up", "runner-up"]
    assert list(runs["source"]) == ["trained", "trained", "grid run", "trained"]
    # seed 0 of the best reproduces its grid run; the runner-up's seed 0 is that run
    assert runs.iloc[0]["valid_acc"] == summary.iloc[0]["valid_acc"]
    assert runs.iloc[2]["valid_acc"] == summary.iloc[1]["valid_acc"]
    assert runs[runs["variant"] == "best"]["test_acc"].notna().all()
    assert runs[runs["variant"] == "runner-up"]["test_acc"].isna().all()  # test used once


# --------------------------------------------------------------------------- bracketing

def _summary(rows):
    """A summary of ``rows`` (parameter dicts, best first), every run finished."""
    return pd.DataFrame([{**r, "status": "ok"} for r in rows])


GRID = {"lr": [3e-4, 1e-3, 3e-3], "batch_size": [64, 256], "module__dropout": [0.5]}


@pytest.mark.parametrize("best, edges", [
    ({"lr": 1e-3, "batch_size": 64}, {"batch_size": 16}),  # lr inside; batch at its low edge
    ({"lr": 3e-3, "batch_size": 256}, {"lr": 0.009, "batch_size": 1024}),  # both high
    ({"lr": 3e-4, "batch_size": 256}, {"lr": 9e-05, "batch_size": 1024}),
])
def test_edge_axes_steps_beyond_the_edge_by_the_outermost_ratio(best, edges):
    summary = _summary([{**best, "module__dropout": 0.5},
                        {"lr": 1e-3, "batch_size": 128, "module__dropout": 0.5}])
    assert L.edge_axes(summary, GRID) == edges  # dropout: one value, never an edge
    got = L.edge_axes(summary, GRID)
    assert all(type(v) is type(GRID[axis][0]) for axis, v in got.items())  # ints stay ints


def test_edge_axes_reads_the_best_finished_run_and_keeps_to_the_limits():
    failed = {"lr": 3e-3, "batch_size": 64, "module__dropout": 0.5, "status": "failed"}
    summary = pd.concat([pd.DataFrame([failed]),
                         _summary([{"lr": 1e-3, "batch_size": 64, "module__dropout": 0.5}])],
                        ignore_index=True)
    assert L.edge_axes(summary, GRID) == {"batch_size": 16}  # the failed run is not the best
    assert L.edge_axes(summary, GRID, limits={"batch_size": (32, 1024)}) == {"batch_size": None}
    inside = _summary([{"lr": 1e-3, "batch_size": 128}])
    assert L.edge_axes(inside, {"lr": [3e-4, 1e-3, 3e-3], "batch_size": [64, 128, 256]}) == {}
    # values that are not positive numbers cannot be stepped by a ratio: not searched here
    words = _summary([{"optimizer": "Adam", "module__dropout": 0.0}])
    assert L.edge_axes(words, {"optimizer": ["Adam", "SGD"], "module__dropout": [0.0, 0.5]}) \
        == {}


def test_extension_grids_hold_each_added_configuration_once(tiny_spec):
    new = {"lr": [1e-2], "batch_size": [16, 128]}
    parts = L.extension_grids(tiny_spec, new, "tiny-ext1")
    assert [p.name for p in parts] == ["tiny-ext1-1", "tiny-ext1-2"]
    old = {S.config_id(c) for c in tiny_spec.configs()}
    added = [S.config_id(c) for p in parts for c in p.configs()]
    extended = {k: [*v, *new[k]] for k, v in tiny_spec.params.items()}
    every = {S.config_id(dict(zip(extended, values)))
             for values in itertools.product(*extended.values())}
    assert len(added) == len(set(added)) and set(added) == every - old
    for p in parts:  # the same nets on the same images: only the searched values differ
        assert (p.model, p.fixed, p.train_size, p.valid_size, p.data_seed, p.max_epochs,
                p.seed) == (tiny_spec.model, tiny_spec.fixed, tiny_spec.train_size,
                            tiny_spec.valid_size, tiny_spec.data_seed, tiny_spec.max_epochs,
                            tiny_spec.seed)
    # values the grid has already add nothing; an axis the grid lacks is an error
    assert L.extension_grids(tiny_spec, {"lr": tiny_spec.params["lr"]}, "x") == []
    with pytest.raises(ValueError, match="not axes of the grid"):
        L.extension_grids(tiny_spec, {"dropout": [0.2]}, "x")


def test_the_notebooks_edge_rule_is_the_packages(jobs1):
    """The notebook's own edge_axes, run on the tiny search and on the cases above."""
    import math

    out, _, _ = jobs1
    ns = {"math": math}
    code = _notebook_cell("# The bracketing rule, written out")
    exec(compile(code.split("\n\n\nlimits = ")[0], str(NOTEBOOK), "exec"), ns)
    summary = S.load_summary(out)
    spec = S.load_grid(tiny())
    for limits in (None, {"lr": (1e-4, 1e-3)}):
        assert ns["edge_axes"](summary, spec.params, limits) == L.edge_axes(summary,
                                                                              spec.params, limits)
    for best in ({"lr": 1e-3, "batch_size": 64}, {"lr": 3e-3, "batch_size": 256}):
        s = _summary([{**best, "module__dropout": 0.5}])
        assert ns["edge_axes"](s, GRID) == L.edge_axes(s, GRID)
