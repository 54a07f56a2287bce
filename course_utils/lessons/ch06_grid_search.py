"""Notebook 06 (grid search): the grid it runs per profile, and full grid against halving.

The grid, its sizes and the notebook's bounds are row "06" of the budget table
(:func:`course_utils.budgets.budget`); the search itself is :mod:`course_utils.search`.
"""
from __future__ import annotations

from ..budgets import budget
from ..config import Profile, get_profile
from ..search import GRID_DIR, GridSpec, load_grid
from ..search.report import format_params, param_columns

__all__ = ["compare_halving", "notebook_grid"]


def notebook_grid(profile: Profile | str | None = None) -> GridSpec:
    """The grid notebook 06 runs in ``profile`` (default: the current one).

    The budget row names the grid file (smoke, quick or reference). Where the row
    gives ``configurations`` (smoke), or ``$COURSE_SCALE`` shrinks the budget, the
    grid is cut to the row's configurations, epochs, training and validation images
    and ``params``; otherwise the grid file runs as it is.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    b = budget("06", prof)
    spec = load_grid(GRID_DIR / f"{b.settings['grid']}.yaml", profile=prof)
    if "configurations" in b.settings or b.scale < 1:
        spec = spec.reduced(configurations=b.settings.get("configurations", spec.size),
                            max_epochs=b.epochs, train_size=b.train, valid_size=b.valid,
                            params=b.settings.get("params"))
    return spec


def compare_halving(full, halving):
    """Full grid against successive halving: the best configuration of each, where the
    halving winner ranks in the full grid, and the compute each used (epochs run,
    train seconds).

    Parameters
    ----------
    full, halving : pandas.DataFrame
        What :func:`course_utils.search.run_search` returned for each.

    Returns
    -------
    pandas.DataFrame
        One row per search.
    """
    import pandas as pd

    def best_of(df):
        ok = df[df["status"] == "ok"]
        top = ok[ok["epochs"] == ok["epochs"].max()]
        return top.sort_values("valid_acc", ascending=False, kind="stable").iloc[0]

    params = param_columns(full)
    fb, hb = best_of(full), best_of(halving)
    ranked = full[full["status"] == "ok"].sort_values("valid_acc", ascending=False,
                                                      kind="stable").reset_index(drop=True)
    match = ranked[(ranked[params] == hb[params]).all(axis=1)]
    rank = int(match.index[0]) + 1 if len(match) else None
    full_epochs = float(full["epochs_run"].fillna(0).sum())
    full_secs = float(full["train_seconds"].fillna(0).sum())
    rows = []
    for label, df, b in (("full grid", full, fb), ("successive halving", halving, hb)):
        epochs = float(df["epochs_run"].fillna(0).sum())
        secs = float(df["train_seconds"].fillna(0).sum())
        rows.append({"search": label, "runs": len(df),
                     "best": format_params({p: b[p] for p in params}),
                     "best valid_acc": round(float(b["valid_acc"]), 4),
                     "rank in full grid": 1 if label == "full grid" else rank,
                     "epochs trained": int(epochs), "train seconds": round(secs, 1),
                     "compute (epochs) vs full":
                         round(epochs / full_epochs, 3) if full_epochs else None,
                     "compute (seconds) vs full":
                         round(secs / full_secs, 3) if full_secs else None})
    return pd.DataFrame(rows).set_index("search")
