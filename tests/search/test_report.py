"""course_utils.search.report on the tiny search."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from search_helpers import lines, read_only

from course_utils import search as S


def test_report_is_sorted_with_the_best_and_a_heatmap(jobs1):
    out, _, _ = jobs1
    recs = lines(out)
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["valid_acc"]) == sorted(summary["valid_acc"], reverse=True)
    assert list(summary.columns[:3]) == ["rank", "lr", "batch_size"]
    assert {"train_acc", "gap", "status"} <= set(summary.columns)
    best = json.loads((out / "best.json").read_text())
    assert best["valid_acc"] == max(r["valid_acc"] for r in recs)
    assert best["params"] in [r["params"] for r in recs if r["valid_acc"] == best["valid_acc"]]
    assert best["configurations"] == 4 and best["failed"] == 0
    assert (out / "heatmap.png").stat().st_size > 1000
    assert S.best_result(out) == best and len(S.load_summary(out)) == 4


def test_heatmap_axes_follow_the_grid():
    df = pd.DataFrame({"lr": [1, 1, 2, 2], "batch_size": [8, 16, 8, 16], "drop": [0.5] * 4,
                       "valid_acc": [0.1, 0.2, 0.3, 0.4], "status": ["ok"] * 4})
    assert S.heatmap_axes(df, spec_params=["lr", "batch_size", "drop"]) == (
        "batch_size", "lr", None)
    assert S.heatmap_axes(df, {"x": "lr", "y": "batch_size"}) == ("lr", "batch_size", None)


def test_report_into_a_read_only_folder_is_one_clear_error(jobs1, tmp_path):
    out, _, _ = jobs1
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for name in S.REPORT_FILES:
        (copy / name).unlink()
    with read_only(copy):
        with pytest.raises(S.OutputFolderError, match="cannot write .*Permission denied"
                                                      ) as info:
            S.write_report(copy)
    assert "\n" not in str(info.value)
    assert not any((copy / name).exists() for name in S.REPORT_FILES)


def test_report_needs_a_search_folder(tmp_path):
    with pytest.raises(S.ResultsError, match="does not exist"):
        S.write_report(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(S.ResultsError, match="no results.jsonl"):
        S.write_report(tmp_path / "empty")
