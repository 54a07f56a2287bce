"""Notebook 06's lesson (course_utils.lessons.ch06_grid_search) on the tiny search: the
notebook's GridSearchCV cell against the tool, the best on more seeds, halving's note."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from search_helpers import REPO, tiny

from course_utils import search as S
from course_utils.data import course_splits
from course_utils.config import get_profile
from course_utils.lessons import ch06_grid_search as L

NOTEBOOK = REPO / "notebooks" / "06_grid_search.ipynb"


def _notebook_cell(marker: str) -> str:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    found = ["".join(c["source"]) for c in cells
             if c["cell_type"] == "code" and "".join(c["source"]).startswith(marker)]
    assert len(found) == 1, f"one cell of notebook 06 starts with {marker!r}"
    return found[0]


@pytest.fixture(scope="module")
def tiny_spec():
    return S.load_grid(tiny())


def _grid_search(spec):
    """Run the notebook's own GridSearchCV cell on ``spec``; its namespace afterwards."""
    import torch
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    from course_utils.training import make_classifier

    # what the notebook's first cell imports, and the grid and images it made before
    namespace = {"torch": torch, "GridSearchCV": GridSearchCV, "PredefinedSplit": PredefinedSplit,
                 "make_classifier": make_classifier, "spec": spec,
                 "splits": S.grid_splits(spec)}
    exec(compile(_notebook_cell("# The grid search, the scikit-learn way"), str(NOTEBOOK),
                 "exec"), namespace)
    return namespace


def test_the_notebooks_grid_search_cv_finds_what_the_tool_finds(tiny_spec, jobs1):
    out, frame, _ = jobs1
    ns = _grid_search(tiny_spec)
    assert ns["param_grid"] == tiny_spec.params  # the grid the notebook shows is the tool's
    sk = L.sklearn_results(ns["gs"])
    assert len(sk) == len(tiny_spec) and list(sk["rank"]) == sorted(sk["rank"])
    summary = S.load_summary(out)
    table, verdict = L.agreement(sk, summary, list(tiny_spec.params))
    assert verdict.startswith("both searches agree"), (verdict, table)
    assert (table["difference"] == 0).all()
    assert table.iloc[0]["search tool rank"] == 1  # GridSearchCV's best is the tool's
    # the comparison can fail: a changed score is reported with its size
    off = summary.copy()
    off.loc[off.index[-1], "valid_acc"] += 0.05
    table, verdict = L.agreement(sk, off, list(tiny_spec.params))
    assert "differ by up to 0.0500" in verdict
    missing = summary.iloc[1:]
    assert "missing from the tool's results" in L.agreement(sk, missing,
                                                             list(tiny_spec.params))[1]


def test_updates_table_counts_a_step_per_batch_the_last_one_included(tiny_spec):
    t = L.updates_table(tiny_spec.with_(max_epochs=3), 1000)
    assert list(t.index) == [32, 64]
    assert list(t["steps per epoch"]) == [32, 16]  # 1000 / 32 = 31.25 -> 32 steps
    assert list(t["updates in all"]) == [96, 48]


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


def _runs(best, runner_up):
    rows = [{"variant": v, "seed": s, "valid_acc": a}
            for v, accs in (("best", best), ("runner-up", runner_up))
            for s, a in enumerate(accs)]
    return pd.DataFrame(rows)


def test_ranking_note_calls_each_outcome():
    assert "best beats the runner-up" in L.ranking_note(_runs([0.90, 0.91, 0.92],
                                                               [0.88, 0.89, 0.90]))
    assert "best trails the runner-up" in L.ranking_note(_runs([0.88, 0.89, 0.90],
                                                                [0.90, 0.91, 0.92]))
    noisy = L.ranking_note(_runs([0.90, 0.88, 0.92], [0.89, 0.90, 0.90]))
    assert "+0.33 ± 2.08 points" in noisy and "inside the noise" in noisy
    assert "cannot be told apart" in noisy


def test_compare_halving_counts_images(jobs1):
    _, full, _ = jobs1
    half = full.sort_values("valid_acc", ascending=False).head(1)
    table = L.compare_halving(full, half, train_images=64)
    assert table.loc["full grid", "images processed"] == 4 * 64
    assert table.loc["successive halving", "images processed"] == 64
    assert table.loc["successive halving", "compute (images) vs full"] == 0.25
    assert L.halving_note(table, 4) == ("successive halving found the full grid's best "
                                        "configuration, with 25% of the full grid's images "
                                        "processed")
    worst = full.sort_values("valid_acc").head(1)
    note = L.halving_note(L.compare_halving(full, worst, train_images=64), 4)
    assert "ended with the full grid's number" in note and "dropped the best region" in note
