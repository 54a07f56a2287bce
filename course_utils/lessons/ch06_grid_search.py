"""Notebook 06 (grid search): the grid it runs per profile, the two searches compared,
the best configurations on more seeds, and the full grid against halving.

The grid, its sizes and the notebook's bounds are row "06" of the budget table
(:func:`course_utils.budgets.budget`); the search itself is :mod:`course_utils.search`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..budgets import budget
from ..config import Profile, get_profile
from ..experiment import (RESULT_FIELDS, difference_text, format_mean_std, paired_differences,
                          summarize_runs, verdict_verb)
from ..search import GRID_DIR, GridSpec, load_grid, train_config
from ..search.report import format_params, param_columns

__all__ = ["agreement", "compare_halving", "halving_note", "notebook_grid", "ranking_note",
           "repeat_best", "sklearn_results", "updates_table"]


def notebook_grid(profile: Profile | str | None = None) -> GridSpec:
    """The grid notebook 06 runs in ``profile`` (default: the current one).

    The budget row names the grid file (smoke, quick or reference). Where the row
    gives ``configurations`` (smoke, full), or ``$COURSE_SCALE`` shrinks the budget,
    the grid is cut to the row's configurations, epochs, training and validation
    images and ``params``; otherwise the grid file runs as it is.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    b = budget("06", prof)
    spec = load_grid(GRID_DIR / f"{b.settings['grid']}.yaml", profile=prof)
    if "configurations" in b.settings or b.scale < 1:
        spec = spec.reduced(configurations=b.settings.get("configurations", spec.size),
                            max_epochs=b.epochs, train_size=b.train, valid_size=b.valid,
                            params=b.settings.get("params"))
    return spec


def updates_table(spec: GridSpec, train_images: int) -> pd.DataFrame:
    """Optimizer steps per epoch and in all for each batch size of ``spec``, at its
    ``max_epochs``: a step per batch, the last (smaller) batch included."""
    sizes = spec.params.get("batch_size") or [spec.fixed.get("batch_size")]
    rows = []
    for bs in sizes:
        steps = math.ceil(train_images / int(bs))
        rows.append({"batch_size": int(bs), "images per epoch": train_images,
                     "steps per epoch": steps, "epochs": spec.max_epochs,
                     "updates in all": steps * spec.max_epochs})
    return pd.DataFrame(rows).set_index("batch_size")


def sklearn_results(search) -> pd.DataFrame:
    """A fitted ``GridSearchCV``'s ``cv_results_`` as the course's table: one column per
    parameter, ``valid_acc`` (the score on the one validation fold), fit seconds and rank,
    best first."""
    res = search.cv_results_
    rows = [{**params, "valid_acc": float(score), "fit_seconds": float(fit),
             "rank": int(rank)}
            for params, score, fit, rank in zip(res["params"], res["mean_test_score"],
                                                res["mean_fit_time"], res["rank_test_score"])]
    return (pd.DataFrame(rows).sort_values(["rank"], kind="stable").reset_index(drop=True))


def _key(row, params) -> tuple:
    return tuple(float(row[p]) if isinstance(row[p], (int, float, np.number)) else row[p]
                 for p in params)


def agreement(sk: pd.DataFrame, tool: pd.DataFrame, params: list[str]):
    """GridSearchCV's table beside the search tool's, configuration by configuration.

    Returns
    -------
    table : pandas.DataFrame
        The parameters, each search's ``valid_acc`` and rank, and their difference.
    verdict : str
        Whether both scored every configuration alike and picked the same best.
    """
    ok = tool[tool["status"] == "ok"].sort_values("valid_acc", ascending=False, kind="stable")
    ours = {_key(r, params): (float(r["valid_acc"]), i + 1)
            for i, (_, r) in enumerate(ok.iterrows())}
    rows = []
    for (_, r), values in zip(sk.iterrows(), sk[params].to_dict("records")):
        k = _key(r, params)
        tool_acc, tool_rank = ours.get(k, (float("nan"), None))
        rows.append({**values, "GridSearchCV valid_acc": r["valid_acc"],
                     "search tool valid_acc": tool_acc,
                     "difference": tool_acc - float(r["valid_acc"]),
                     "GridSearchCV rank": int(r["rank"]), "search tool rank": tool_rank})
    table = pd.DataFrame(rows)
    missing = int(table["search tool valid_acc"].isna().sum())
    worst = float(table["difference"].abs().max()) if len(table) else float("nan")
    same_best = bool(len(table)) and table.iloc[0]["search tool rank"] == 1
    if missing:
        verdict = (f"the searches differ: {missing} configuration(s) of GridSearchCV's grid "
                   "are missing from the tool's results")
    elif worst == 0.0:
        verdict = (f"both searches agree: the same validation accuracy for all {len(table)} "
                   "configurations (same seed, same data, same net), so the same best "
                   "configuration")
    else:
        verdict = (f"the searches differ by up to {worst:.4f} in validation accuracy; "
                   + ("they still pick the same best configuration" if same_best
                      else "they pick different best configurations"))
    return table, verdict


def repeat_best(spec: GridSpec, summary: pd.DataFrame, splits, seeds) -> pd.DataFrame:
    """The grid's best and runner-up configurations on more seeds.

    The best is trained again on every seed in ``seeds`` (seed 0 repeats its grid
    run, and it is scored once on the test set: the one use of the test set); the
    runner-up on the seeds after the grid's, its grid run standing for that seed.
    Both are scored like the grid: the best validation epoch.

    Parameters
    ----------
    spec : GridSpec
        The grid (its fixed values, epochs and seed).
    summary : pandas.DataFrame
        The search tool's summary, best first (:func:`course_utils.search.load_summary`).
    splits : Splits
        The grid's images (:func:`course_utils.search.grid_splits`) with a test split.
    seeds : sequence of int
        Seeds for the best; the runner-up runs on those other than the grid's seed.

    Returns
    -------
    pandas.DataFrame
        One row per run: :data:`~course_utils.experiment.RESULT_FIELDS`, the
        configuration (``params``) and ``source`` ("trained" or "grid run").
    """
    params = param_columns(summary, list(spec.params))
    ok = summary[summary["status"] == "ok"]
    ok = ok[ok["epochs"] == ok["epochs"].max()].reset_index(drop=True)
    if len(ok) < 2:
        raise ValueError("repeat_best needs at least two finished configurations")
    rows = []
    for variant, rec in (("best", ok.iloc[0]), ("runner-up", ok.iloc[1])):
        config = {p: _plain(rec[p]) for p in params}
        for seed in seeds:
            if variant == "runner-up" and seed == spec.seed_for(config):
                row = {k: rec.get(k) for k in RESULT_FIELDS if k in rec}
                row.update(variant=variant, seed=int(seed), select="best", test_acc=None,
                           source="grid run")
            else:
                result = train_config(spec, config, splits, seed=int(seed), variant=variant,
                                      test=variant == "best", progress=None)
                row = {**result.as_dict(), "source": "trained"}
            rows.append({**row, "params": format_params(config)})
    return pd.DataFrame(rows, columns=[*RESULT_FIELDS, "params", "source"])


def _plain(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def ranking_note(runs: pd.DataFrame) -> str:
    """Best against runner-up over the seeds both ran: means, and whether the grid's
    order holds up under the course's paired t-test or is inside the noise."""
    summ = summarize_runs(runs, metrics=("valid_acc",))
    diff = paired_differences(runs, baseline="runner-up", metric="valid_acc").loc["best"]
    b, r = summ.loc["best"], summ.loc["runner-up"]
    head = (f"valid_acc over {int(diff['seeds'])} seeds: best "
            f"{format_mean_std(b['valid_acc_mean'], b['valid_acc_std'], 4)}, runner-up "
            f"{format_mean_std(r['valid_acc_mean'], r['valid_acc_std'], 4)}; best minus "
            f"runner-up {difference_text(diff, digits=2)}")
    verb = verdict_verb(diff["verdict"], "beat", "trail", same="cannot be told apart from")
    return f"{head}\nover the seeds, the grid's best {verb} the runner-up"


def compare_halving(full, halving, train_images: int):
    """Full grid against successive halving: the best configuration of each, where the
    halving winner ranks in the full grid, and the compute each used (images processed,
    epochs run, train seconds).

    Parameters
    ----------
    full, halving : pandas.DataFrame
        What :func:`course_utils.search.run_search` returned for each.
    train_images : int
        Training images per epoch.

    Returns
    -------
    pandas.DataFrame
        One row per search.
    """
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
                     "best": format_params({p: _plain(b[p]) for p in params}),
                     "best valid_acc": round(float(b["valid_acc"]), 4),
                     "rank in full grid": 1 if label == "full grid" else rank,
                     "images processed": int(epochs * train_images),
                     "compute (images) vs full":
                         round(epochs / full_epochs, 3) if full_epochs else None,
                     "train seconds": round(secs, 1),
                     "compute (seconds) vs full":
                         round(secs / full_secs, 3) if full_secs else None})
    return pd.DataFrame(rows).set_index("search")


def halving_note(table: pd.DataFrame, configurations: int) -> str:
    """What the comparison says, from its numbers: where halving's winner ranks in the
    full grid and at what share of the images processed."""
    h = table.loc["successive halving"]
    share = h["compute (images) vs full"]
    rank = h["rank in full grid"]
    cost = (f"{share:.0%} of the full grid's images processed"
            if share is not None and share < 1 else "as many images as the full grid")
    if rank == 1:
        found = "found the full grid's best configuration"
    elif rank is not None and rank <= max(2, math.ceil(configurations / 4)):
        found = (f"found the full grid's number {rank} of {configurations}: the same best "
                 "region, not the same winner")
    else:
        found = (f"ended with the full grid's number {rank} of {configurations}: its short "
                 "first rung dropped the best region")
    return f"successive halving {found}, with {cost}"
