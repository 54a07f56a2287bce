"""The report of a search: the sorted summary, the best configuration and heatmaps.

``write_report(DIR)`` writes ``summary.csv`` (one row per configuration, best
validation accuracy first), ``best.json`` (the winner, with its library versions and
device) and ``heatmap.png`` (validation accuracy over two parameters, one panel per
value of a third) into the search's own folder, each whole or not at all
(:func:`~course_utils.search.folder.write_file`). They are exports of the study: where
the folder's study is at hand (``DIR/study.db`` or ``storage``), results.jsonl is written
again from it first.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Iterable

from .errors import ResultsError
from .folder import (BEST_KEYS, DB_FILE, FRAME_KEYS, RESULTS_FILE, SearchFolder,
                     read_grid_meta, read_results, write_file, write_results)

__all__ = ["best_result", "format_params", "heatmap_axes", "load_summary", "param_columns",
           "plot_heatmaps", "records_frame", "summarize", "write_report"]


def format_params(params: dict) -> str:
    """``lr=0.001 batch_size=64``."""
    return " ".join(f"{k}={v}" for k, v in params.items())


def records_frame(records: Iterable[dict]):
    """Records as a DataFrame: one column per parameter, then :data:`~.store.FRAME_KEYS`."""
    import pandas as pd

    rows = []
    for r in records:
        row = {k: (tuple(v) if isinstance(v, list) else v) for k, v in r["params"].items()}
        for k in FRAME_KEYS:
            row[k] = r.get(k)
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(records: Iterable[dict]):
    """One row per configuration (its latest run with the most epochs), best first."""
    latest: dict[str, dict] = {}
    for r in records:
        prev = latest.get(r["id"])
        if prev is None or r["epochs"] >= prev["epochs"]:
            latest[r["id"]] = r
    df = records_frame(latest.values())
    if df.empty:
        return df
    df = df.sort_values(["epochs", "valid_acc"], ascending=[False, False],
                        na_position="last", kind="stable").reset_index(drop=True)
    df.insert(0, "rank", range(1, len(df) + 1))
    return df


def param_columns(df, spec_params: list[str] | None = None) -> list[str]:
    """The columns of ``df`` that are searched parameters (in grid order when given)."""
    cols = [c for c in df.columns if c != "rank" and c not in FRAME_KEYS]
    if spec_params:
        cols = [c for c in spec_params if c in cols] + [c for c in cols if c not in spec_params]
    return cols


def heatmap_axes(df, report: dict | None = None, spec_params: list[str] | None = None):
    """(x, y, panel): from the grid's ``report`` entry, else the searched parameters
    with more than one value, in grid order (y first, then x, then panel)."""
    report = report or {}
    cols = param_columns(df, spec_params)
    varying = [c for c in cols if df[c].nunique(dropna=False) > 1] or cols[:1]
    y = report.get("y") or (varying[0] if varying else None)
    rest = [c for c in varying if c != y]
    x = report.get("x") or (rest[0] if rest else None)
    rest = [c for c in rest if c != x]
    panel = report.get("panel") or (rest[0] if rest else None)
    return x, y, panel


def plot_heatmaps(summary, x: str | None, y: str | None, panel: str | None = None,
                  title: str | None = None):
    """Validation accuracy over (y, x), one panel per value of ``panel``. Failed
    configurations show as grey cells marked 'failed'. Returns the Figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    df = summary.copy()
    for name, col in (("x", x), ("y", y), ("panel", panel)):
        df[f"_{name}"] = "-" if col is None else df[col]
    panels = sorted(df["_panel"].unique(), key=_sort_key, reverse=True)
    xs = sorted(df["_x"].unique(), key=_sort_key)
    ys = sorted(df["_y"].unique(), key=_sort_key, reverse=True)
    ok = df[df["status"] == "ok"]["valid_acc"]
    vmin, vmax = (float(ok.min()), float(ok.max())) if len(ok) else (0.0, 1.0)
    if vmax - vmin < 1e-3:
        vmin, vmax = vmin - 0.01, vmax + 0.01
    fig, axes = plt.subplots(1, len(panels), figsize=(1.2 + 1.3 * len(xs) * len(panels) + 0.6,
                                                      1.4 + 0.6 * len(ys)),
                             squeeze=False, constrained_layout=True)
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    image = None
    for ax, pv in zip(axes[0], panels):
        sub = df[df["_panel"] == pv]
        grid = np.full((len(ys), len(xs)), np.nan)
        labels = [["" for _ in xs] for _ in ys]
        for _, row in sub.iterrows():
            i, j = ys.index(row["_y"]), xs.index(row["_x"])
            if row["status"] == "ok":
                grid[i, j] = row["valid_acc"]
                labels[i][j] = f"{row['valid_acc']:.3f}"
            else:
                labels[i][j] = str(row["status"])
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin, vmax=vmax,
                          aspect="auto")
        for i in range(len(ys)):
            for j in range(len(xs)):
                val = grid[i, j]
                light = not np.isnan(val) and (val - vmin) / (vmax - vmin) < 0.6
                ax.text(j, i, labels[i][j] or "n/a", ha="center", va="center", fontsize=8,
                        color="white" if light else "black")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set_yticks(range(len(ys)), [str(v) for v in ys])
        ax.set_xlabel(x or "")
        ax.set_ylabel(y or "")
        ax.set_title(f"{panel} = {pv}" if panel else "validation accuracy", fontsize=10)
    cbar = fig.colorbar(image, ax=axes[0].tolist(), shrink=0.9)
    cbar.set_label("best valid_acc")
    fig.suptitle(title or "Validation accuracy over the grid")
    return fig


def _sort_key(v):
    import numbers

    if isinstance(v, numbers.Number) and not isinstance(v, bool):
        return (0, float(v), "")
    return (1, 0.0, str(v))


def write_report(out: str | os.PathLike, only: list[dict] | None = None,
                 storage: str | None = None) -> dict[str, Path]:
    """Write summary.csv (sorted by valid_acc), best.json and heatmap.png into ``out``.

    Parameters
    ----------
    out : path
        A search's output folder (it holds grid.json and results.jsonl).
    only : list of dict, optional
        Report these records only (a halving search's runs).
    storage : str, optional
        The study's database URL when it is not ``DIR/study.db``.

    Returns
    -------
    dict
        ``summary``, ``best`` and ``heatmap``: the paths written.
    """
    out = Path(out)
    folder = SearchFolder(out)
    folder.check()
    if not out.is_dir():
        raise ResultsError(f"{out} does not exist: run the search first "
                           "(python -m course_utils.search GRID.yaml --out DIR)")
    if only is None and folder.owned() and (storage or (out / DB_FILE).is_file()):
        _export_from_study(folder, storage)
    folder.check(need_results=True)
    meta = read_grid_meta(out)
    spec_d = meta.get("spec", {})
    records = only if only is not None else read_results(out)
    if not records:
        raise ResultsError(f"{out / RESULTS_FILE} holds no finished configuration yet")
    param_names = list(spec_d.get("params", {}))
    summary = summarize(records)
    cols = ["rank"] + param_columns(summary, param_names) + [
        c for c in FRAME_KEYS if c in summary.columns and c != "rung"]
    summary = summary[cols]
    paths = {"summary": out / "summary.csv", "best": out / "best.json",
             "heatmap": out / "heatmap.png"}

    ok = [r for r in records if r["status"] == "ok"]
    if ok:
        top_epochs = max(r["epochs"] for r in ok)
        best = max((r for r in ok if r["epochs"] == top_epochs),
                   key=lambda r: (r["valid_acc"], -r["train_seconds"]))
        best_out = {k: best.get(k) for k in BEST_KEYS}
    else:
        best_out = {"params": None, "message": "no configuration finished successfully"}
    best_out.update(grid=meta.get("name"), fingerprint=meta.get("fingerprint"),
                    configurations=len(summary),
                    failed=int((summary["status"] != "ok").sum()))

    import matplotlib.pyplot as plt

    x, y, panel = heatmap_axes(summary, spec_d.get("report"), param_names)
    fig = plot_heatmaps(summary, x, y, panel,
                        title=f"Validation accuracy, grid {meta.get('name', out.name)!r}")
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    write_file(paths["summary"], summary.to_csv(index=False))
    write_file(paths["best"], json.dumps(best_out, indent=2, default=str) + "\n")
    write_file(paths["heatmap"], png.getvalue())
    return paths


def _export_from_study(folder: SearchFolder, storage: str | None) -> None:
    """results.jsonl written again from the folder's study."""
    from .study import all_records, storage_url

    meta = read_grid_meta(folder.out)
    write_results(folder, all_records(storage_url(folder.out, storage), str(meta.get("name")),
                                      str(meta["fingerprint"])))


def load_summary(out: str | os.PathLike):
    """The report's table for ``out`` (written if missing)."""
    import pandas as pd

    path = Path(out) / "summary.csv"
    if not path.exists():
        write_report(out)
    return pd.read_csv(path)


def best_result(out: str | os.PathLike) -> dict:
    """best.json of ``out`` as a dict (written if missing)."""
    path = Path(out) / "best.json"
    if not path.exists():
        write_report(out)
    return json.loads(path.read_text())
