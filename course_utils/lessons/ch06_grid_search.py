"""Notebook 06 (grid search): the grid it runs per profile, the rule that brackets the
optimum and the grids that extend it, the two searches compared, the best two on more seeds.

The grid, its sizes and the notebook's bounds are row "06" of the budget table
(:func:`course_utils.budgets.budget`); the search itself is :mod:`course_utils.search`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..budgets import budget
from ..config import Profile, get_profile
from ..experiment import RESULT_FIELDS
from ..search import GRID_DIR, GridSpec, load_grid, train_config
from ..search.report import format_params, param_columns

__all__ = ["agreement", "edge_axes", "extension_grids", "notebook_grid", "repeat_best",
           "sklearn_results"]


def notebook_grid(profile: Profile | str | None = None) -> GridSpec:
    """The grid notebook 06 runs in ``profile`` (default: the current one).

    The budget row names the grid file (smoke, quick or reference). Where the row
    gives ``configurations`` (smoke, full), or ``$COURSE_SCALE`` shrinks the budget,
    the grid is cut to the row's configurations, epochs, training and validation
    images and ``params`` (the first values of each axis: in full, the reference grid's
    learning rates and batch sizes at its first dropout rate); otherwise the grid file
    runs as it is.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    b = budget("06", prof)
    spec = load_grid(GRID_DIR / f"{b.settings['grid']}.yaml", profile=prof)
    if "configurations" in b.settings or b.scale < 1:
        spec = spec.reduced(configurations=b.settings.get("configurations", spec.size),
                            max_epochs=b.epochs, train_size=b.train, valid_size=b.valid,
                            params=b.settings.get("params"))
    return spec


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
    """GridSearchCV's table beside the search tool's, configuration by configuration
    (GridSearchCV may have searched a few of the tool's configurations only).

    Returns
    -------
    table : pandas.DataFrame
        The parameters, each search's ``valid_acc`` and rank (the tool's among all its
        configurations), and their difference.
    verdict : str
        Whether both scored every configuration GridSearchCV trained alike, and else
        whether they still put them in the same order.
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
    if missing:
        verdict = (f"the searches differ: {missing} configuration(s) of GridSearchCV's grid "
                   "are missing from the tool's results")
    elif worst == 0.0:
        verdict = (f"both searches agree: the same validation accuracy for each of the "
                   f"{len(table)} configurations both trained (same seed, same images, same "
                   "net)")
    else:
        order = table.sort_values("GridSearchCV rank", kind="stable")["search tool rank"]
        same_order = bool(order.is_monotonic_increasing)
        verdict = (f"the searches differ by up to {worst:.4f} in validation accuracy; "
                   + ("they still put the configurations in the same order" if same_order
                      else "they put the configurations in different orders"))
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


# --------------------------------------------------------------------------- bracketing

def edge_axes(summary: pd.DataFrame, params: dict, limits: dict | None = None) -> dict:
    """The numeric axes of ``params`` whose best value (the first row of ``summary`` that
    finished) is the lowest or the highest searched, each with the value one step beyond:
    the ratio of the two outermost values once more (whole numbers stay whole), or None
    where that step leaves ``limits`` (axis -> (low, high)). An axis of one value, or of
    values that are not positive numbers, is not searched and never listed.

    The notebook writes the same rule in a cell and asserts that both agree.
    """
    limits = limits or {}
    best = summary[summary["status"] == "ok"].iloc[0]
    edges = {}
    for axis, values in params.items():
        values = sorted(values)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                      for v in values)
        if len(values) < 2 or not numeric:
            continue  # one value, or not a positive number: nothing to bracket
        if best[axis] == values[0]:  # the lowest: one step lower
            step = values[0] * values[0] / values[1]
        elif best[axis] == values[-1]:  # the highest: one step higher
            step = values[-1] * values[-1] / values[-2]
        else:
            continue  # inside: bracketed on this axis
        step = round(step) if all(isinstance(v, int) for v in values) else float(f"{step:.2g}")
        low, high = limits.get(axis, (0, math.inf))
        edges[axis] = step if low <= step <= high else None
    return edges


def extension_grids(spec: GridSpec, new_values: dict, name: str) -> list[GridSpec]:
    """The configurations that extending ``spec``'s axes by ``new_values`` (axis -> values)
    adds, as rectangular grids of their own, none of ``spec``'s configurations among them.

    Axis by axis in grid order, an extended axis gives one grid: its new values, the axes
    before it at their old values, those after it at their extended ones. Together they
    hold every configuration of the extended grid that ``spec`` lacks, each once; each
    runs in a search folder of its own (named ``{name}-1``, ``{name}-2``, ...), so what
    ``spec``'s search trained is not trained again.
    """
    unknown = set(new_values) - set(spec.params)
    if unknown:
        raise ValueError(f"{sorted(unknown)} are not axes of the grid {spec.name!r}: "
                         f"extend {list(spec.params)}")
    new = {axis: [v for v in new_values.get(axis, []) if v not in values]
           for axis, values in spec.params.items()}
    grids = []
    axes = list(spec.params)
    for i, axis in enumerate(axes):
        if not new[axis]:
            continue
        params = {other: (list(spec.params[other]) if j < i else new[axis] if j == i
                          else [*spec.params[other], *new[other]])
                  for j, other in enumerate(axes)}
        grids.append(spec.with_(name=f"{name}-{len(grids) + 1}", params=params))
    return grids
