"""The one run layer: train a variant, measure it the same way everywhere, compare fairly.

The notebooks' claim experiments train through :func:`train_variant`, which returns
one :class:`RunResult` with one definition of each metric:

``train_acc``
    eval-mode accuracy (dropout off, no augmentation) on a fixed sample of the
    training images (the first ``train_eval_size``);
``valid_acc``, ``test_acc``
    eval-mode accuracy on the validation and test images;
``gap``
    ``train_acc - valid_acc``: how much the net overfits;
``epochs_run``, ``best_epoch``
    epochs trained, and the epoch with the best validation accuracy;
``train_seconds``
    skorch's wall time of all epochs (validation included).

The caller chooses which model is scored: ``select="last"`` (a fixed budget: the
last epoch) or ``select="best"`` (the best validation epoch, restored from the
checkpoint).

To compare variants, :func:`run_variants` trains each variant on the same seeds,
:func:`summarize_runs` gives mean +- std per variant and :func:`paired_differences`
the difference to a baseline seed by seed, with a verdict from a two-sided paired
t-test at 95% (:func:`paired_test`; :func:`unpaired_test` is its Welch twin for
samples that share no seeds). Verdict sentences come from :func:`verdict_verb`,
:func:`difference_text` and :func:`gap_reading` (which side of a train - valid gap
moved), never from word tables of their own.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats

from .config import BUILD_DIR, STARTED, CourseError, Profile, get_device, get_profile
from .data import Splits
from .models import AlexNetSmall
from .training import accuracy, best_epoch, make_classifier, train_seconds

__all__ = ["ALPHA", "RESULT_FIELDS", "RESULT_PREFIX", "SELECTIONS", "VERDICTS", "ExperimentError",
           "RunResult", "bound_table", "check_bounds", "claim_table", "course_result",
           "difference_text", "format_diff", "format_mean_std", "format_p", "gap_reading",
           "mean_curves",
           "mean_std", "paired_differences", "paired_table", "paired_test", "results_frame",
           "run_variants", "summarize_runs", "train_variant", "unpaired_test", "verdict_verb"]

SELECTIONS = ("last", "best")


class ExperimentError(CourseError, ValueError):
    """An experiment set up in a way that cannot give a fair comparison."""


@dataclass
class RunResult:
    """What one training run measured (see the module docstring for each metric).

    ``net`` (the fitted skorch net) is kept only when asked for; it is not part of
    :meth:`as_dict`. Fields can also be read as ``result["test_acc"]``.
    """

    variant: str
    seed: int
    select: str
    train_acc: float
    valid_acc: float
    test_acc: float | None
    gap: float
    epochs_run: int
    best_epoch: int
    train_seconds: float
    final_train_loss: float
    test_seconds: float | None = None
    net: Any = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The record without the net: what tables and the search's files hold."""
        return {k: getattr(self, k) for k in RESULT_FIELDS}

    def __getitem__(self, key: str) -> Any:
        if key not in RESULT_FIELDS and key != "net":
            raise KeyError(f"{key!r}: a run result has {', '.join(RESULT_FIELDS)}")
        return getattr(self, key)

    @property
    def sec_per_epoch(self) -> float:
        return self.train_seconds / max(self.epochs_run, 1)


#: The fields of a :class:`RunResult` record, in table order.
RESULT_FIELDS = ("variant", "seed", "select", "train_acc", "valid_acc", "test_acc", "gap",
                 "epochs_run", "best_epoch", "train_seconds", "final_train_loss",
                 "test_seconds")


def train_variant(splits: Splits, module=AlexNetSmall, *, epochs: int, seed: int = 0,
                  select: str = "last", variant: str = "", train_eval_size: int | None = 5_000,
                  test: bool = True, keep_net: bool = False,
                  make: Callable[..., Any] = make_classifier, **kwargs: Any) -> RunResult:
    """Train ``module`` on ``splits`` for ``epochs`` and measure it.

    Parameters
    ----------
    splits : Splits
        Training, validation (and test) images; the validation split is skorch's
        fixed ``predefined_split``.
    module : type or nn.Module
        The network; its parameters go in ``kwargs`` as ``module__NAME``.
    epochs : int
        The budget (early stopping is off unless ``patience`` is given).
    seed : int
        Seeds the weights, the shuffling and dropout.
    select : {"last", "best"}
        Score the last epoch's model, or the best validation epoch's (restored
        from a checkpoint, which is deleted afterwards).
    variant : str
        A name for tables.
    train_eval_size : int or None
        Training images scored for ``train_acc`` (the first ones); None: all.
    test : bool
        Score the test split too (when ``splits`` has one).
    keep_net : bool
        Keep the fitted net in the result (``result.net``).
    make : callable
        The classifier factory (tests pass a cheaper one).
    **kwargs
        Passed to ``make``: ``lr``, ``batch_size``, ``optimizer``, ``module__...``,
        ``callbacks``, ``verbose`` (0 by default), ...
    """
    if select not in SELECTIONS:
        raise ExperimentError(f"select must be one of {SELECTIONS}, got {select!r}")
    if int(epochs) < 1:
        raise ExperimentError(f"epochs must be at least 1, got {epochs}")
    kwargs.setdefault("patience", None)
    kwargs.setdefault("verbose", 0)
    kwargs["checkpoint"] = select == "best"
    net = make(module, valid=(splits.X_valid, splits.y_valid), max_epochs=int(epochs),
               seed=seed, **kwargs)
    net.fit(splits.X_train, splits.y_train)
    n_eval = len(splits.y_train) if train_eval_size is None else min(int(train_eval_size),
                                                                     len(splits.y_train))
    train_acc = accuracy(net, splits.X_train[:n_eval], splits.y_train[:n_eval])
    valid_acc = accuracy(net, splits.X_valid, splits.y_valid)
    test_acc = test_s = None
    if test and getattr(splits, "X_test", None) is not None and len(splits.y_test):
        t0 = time.perf_counter()
        test_acc = accuracy(net, splits.X_test, splits.y_test)
        test_s = time.perf_counter() - t0
    best, _ = best_epoch(net)
    return RunResult(
        variant=variant, seed=int(seed), select=select, train_acc=train_acc,
        valid_acc=valid_acc, test_acc=test_acc, gap=train_acc - valid_acc,
        epochs_run=len(net.history), best_epoch=best, train_seconds=train_seconds(net),
        final_train_loss=float(net.history[-1, "train_loss"]), test_seconds=test_s,
        net=net if keep_net else None)


# --------------------------------------------------------------------------- several runs

def _seed_list(seeds: int | Sequence[int] | None, profile: Profile) -> list[int]:
    if seeds is None:
        seeds = profile.seeds
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ExperimentError(f"seeds must be at least 1, got {seeds}")
        return list(range(int(seeds)))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ExperimentError("seeds is empty: give a count (e.g. 3) or a list of seeds")
    if len(set(seeds)) != len(seeds):
        raise ExperimentError(f"seeds repeat: {seeds}; every run needs its own seed")
    return seeds


def _check_variants(variants: Mapping[str, Mapping[str, Any]]) -> None:
    if not isinstance(variants, Mapping) or not variants:
        raise ExperimentError("variants must be a non-empty dict: name -> make_classifier "
                              "keyword arguments, e.g. {'LRN': {'module__lrn': True}}")
    for name, kwargs in variants.items():
        if not isinstance(kwargs, Mapping):
            raise ExperimentError(f"variant {name!r}: expected a dict of keyword arguments, "
                                  f"got {type(kwargs).__name__}")
        budget = {"max_epochs", "epochs", "batch_size", "lr", "optimizer"} & set(kwargs)
        if budget:
            raise ExperimentError(f"variant {name!r} sets {sorted(budget)}: the budget must be "
                                  "the same for every variant; pass it to run_variants instead")


class _SharedNets(dict):
    """The nets of :func:`run_variants`, in ``table.attrs``. pandas deep-copies
    ``attrs`` on every operation (``.round()``, a column selection...); this dict
    is shared instead, so that no operation copies every trained net."""

    def __deepcopy__(self, memo):
        return self


def run_variants(variants: Mapping[str, Mapping[str, Any]], splits, *,
                 seeds: int | Sequence[int] | None = None, epochs: int | None = None,
                 select: str = "last", module=AlexNetSmall,
                 on_run: Callable[[dict], None] | None = None, keep_nets: bool = False,
                 **common: Any) -> pd.DataFrame:
    """Train every variant with every seed at the same budget; one row per run,
    the variants interleaved seed by seed.

    ``variants`` maps a name to the keyword arguments that differ
    (``{"LRN": {"module__lrn": True}}``); it may not change the budget. ``common``
    holds what every variant shares (``module__channels=...``, ``lr=...``) and
    :func:`train_variant`'s options. ``seeds`` and ``epochs`` default to the
    profile's. With ``keep_nets`` the nets are in ``table.attrs["nets"]``, keyed
    by ``(variant, seed)``.

    Returns a DataFrame with :data:`RESULT_FIELDS` and ``sec_per_epoch``.
    """
    _check_variants(variants)
    profile = get_profile()
    seed_list = _seed_list(seeds, profile)
    epochs = profile.epochs if epochs is None else int(epochs)
    rows, nets = [], _SharedNets()
    # seed-major (A B A B ...): the variants interleave, so a machine that slows
    # down part-way slows every variant alike and their seconds stay comparable
    for seed in seed_list:
        for name, kwargs in variants.items():
            result = train_variant(splits, module, epochs=epochs, seed=seed, select=select,
                                   variant=name, keep_net=keep_nets, **{**common, **kwargs})
            row = {**result.as_dict(), "sec_per_epoch": result.sec_per_epoch}
            rows.append(row)
            if keep_nets:
                nets[(name, seed)] = result.net
            if on_run is not None:
                on_run(row)
    table = pd.DataFrame(rows, columns=[*RESULT_FIELDS, "sec_per_epoch"])
    table.attrs["nets"] = nets
    return table


def results_frame(results: Sequence[RunResult | Mapping[str, Any]],
                  columns: Sequence[str] = ("variant", "seed", "train_acc", "valid_acc",
                                            "test_acc", "gap", "epochs_run", "best_epoch",
                                            "train_seconds")) -> pd.DataFrame:
    """A table of run results (the nets left out)."""
    rows = [r.as_dict() if isinstance(r, RunResult) else dict(r) for r in results]
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows]).round(4)


def summarize_runs(runs: pd.DataFrame, metrics: Sequence[str] = ("test_acc", "valid_acc",
                                                                  "train_acc", "gap")
                   ) -> pd.DataFrame:
    """One row per variant (in the order first seen): runs, mean and std of each metric,
    and seconds per epoch. The std is the sample std (ddof=1): NaN for one seed."""
    missing = {"variant", *metrics} - set(runs.columns)
    if missing:
        raise ExperimentError(f"runs lacks columns {sorted(missing)}: pass run_variants' table")
    if runs.empty:
        raise ExperimentError("runs is empty: nothing to summarise")
    order = list(dict.fromkeys(runs["variant"]))
    g = runs.groupby("variant", sort=False)
    cols: dict[str, Any] = {"runs": g.size()}
    for m in metrics:
        cols[f"{m}_mean"] = g[m].mean()
        cols[f"{m}_std"] = g[m].std(ddof=1)
    if "sec_per_epoch" in runs.columns:
        cols["sec_per_epoch"] = g["sec_per_epoch"].mean()
    out = pd.DataFrame(cols).loc[order]
    out.index.name = "variant"
    return out


#: The level of every verdict in the course: a two-sided test at 95%.
ALPHA = 0.05
#: What a verdict can say: the first variant's mean is higher, lower, or not told apart.
VERDICTS = ("higher", "lower", "inside the noise")


def _verdict(mean: float, p: float, alpha: float) -> str:
    if not np.isfinite(p) or p >= alpha:
        return "inside the noise"
    return "higher" if mean > 0 else "lower"


def paired_test(a, b, alpha: float = ALPHA) -> dict[str, Any]:
    """``a - b`` pair by pair (seed by seed), with a two-sided paired t-test.

    Parameters
    ----------
    a, b : sequence of float
        Paired values (the same seeds, in the same order).
    alpha : float
        The test's level: "higher" or "lower" only when ``p < alpha``.

    Returns
    -------
    dict
        ``mean`` and ``std`` (sample std) of the differences, ``seeds``, the t statistic
        ``t`` and its two-sided ``p`` (both NaN with fewer than 2 pairs, or when every
        difference is the same), ``paired`` (True) and the ``verdict``: "higher",
        "lower" or "inside the noise" (always so with fewer than 2 pairs).
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ExperimentError(f"paired values need the same count: {a.size} and {b.size}")
    d = a - b
    n = int(d.size)
    mean = float(d.mean()) if n else float("nan")
    std = float(d.std(ddof=1)) if n > 1 else float("nan")
    t = p = float("nan")
    if n > 1:
        if std > 0:
            t = mean / (std / math.sqrt(n))
            p = float(2 * stats.t.sf(abs(t), df=n - 1))
        elif mean != 0:  # every seed moved by the same amount: no spread to doubt it
            t, p = math.copysign(math.inf, mean), 0.0
    return {"mean": mean, "std": std, "seeds": n, "t": t, "p": p, "paired": True,
            "verdict": _verdict(mean, p, alpha)}


def unpaired_test(a, b, alpha: float = ALPHA) -> dict[str, Any]:
    """``mean(a) - mean(b)`` for samples that share no pairing, with Welch's two-sided
    t-test (unequal variances). The twin of :func:`paired_test`, and it says so:
    ``paired`` is False. ``std`` is the standard error of the difference of means;
    ``seeds`` the smaller sample's size."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    mean = float(a.mean() - b.mean()) if a.size and b.size else float("nan")
    t = p = se = float("nan")
    if a.size > 1 and b.size > 1:
        se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        if se > 0:
            res = stats.ttest_ind(a, b, equal_var=False)
            t, p = float(res.statistic), float(res.pvalue)
    return {"mean": mean, "std": se, "seeds": int(min(a.size, b.size)), "t": t, "p": p,
            "paired": False, "verdict": _verdict(mean, p, alpha)}


def paired_differences(runs: pd.DataFrame, baseline: str, metric: str = "test_acc",
                       alpha: float = ALPHA) -> pd.DataFrame:
    """Each variant minus ``baseline`` on ``metric``, seed by seed (:func:`paired_test`).

    Returns one row per other variant: the number of paired seeds, the mean and
    std of the differences, ``t``, ``p`` and the verdict: "higher" or "lower" when a
    two-sided paired t-test rejects no difference at level ``alpha``, else "inside
    the noise" (also with fewer than two seeds, where no spread can be measured).
    """
    if baseline not in set(runs["variant"]):
        raise ExperimentError(f"no variant {baseline!r} in the runs: have "
                              f"{', '.join(dict.fromkeys(runs['variant']))}")
    base = runs[runs["variant"] == baseline].set_index("seed")[metric]
    rows = []
    for name in dict.fromkeys(runs["variant"]):
        if name == baseline:
            continue
        other = runs[runs["variant"] == name].set_index("seed")[metric]
        common = base.index.intersection(other.index)
        if len(common) == 0:
            raise ExperimentError(f"variant {name!r} shares no seed with {baseline!r}: "
                                  "run both on the same seeds")
        d = paired_test(other.loc[common].values, base.loc[common].values, alpha)
        rows.append({"variant": name, "baseline": baseline, "metric": metric,
                     "seeds": d["seeds"], "diff_mean": d["mean"], "diff_std": d["std"],
                     "t": d["t"], "p": d["p"], "verdict": d["verdict"]})
    return pd.DataFrame(rows).set_index("variant")


def paired_table(runs: pd.DataFrame, baseline: str, metrics: Sequence[str] = ("test_acc", "gap"),
                 alpha: float = ALPHA) -> pd.DataFrame:
    """:func:`paired_differences` for several metrics, stacked.

    Parameters
    ----------
    runs : DataFrame
        :func:`run_variants`' table.
    baseline : str
        The variant every other one is compared with, seed by seed.
    metrics : sequence of str
        Columns of ``runs`` to compare.
    alpha : float
        The paired t-test's level.

    Returns
    -------
    DataFrame
        Indexed by ``(metric, variant)``: paired seeds, mean and std of the
        differences, t, p and the verdict.
    """
    parts = [paired_differences(runs, baseline, m, alpha).reset_index() for m in metrics]
    return pd.concat(parts, ignore_index=True).set_index(["metric", "variant"])


def bound_table(summary: pd.DataFrame, bounds: Mapping[str, Any],
                metrics: Sequence[str] = ("test_acc",),
                variants: Sequence[str] | None = None) -> pd.DataFrame:
    """The budget's lower bounds checked against each variant's mean.

    Parameters
    ----------
    summary : DataFrame
        :func:`summarize_runs` of the runs (``METRIC_mean`` columns).
    bounds : mapping
        The budget's bounds (``b.bounds``); a metric without a bound is skipped.
    metrics : sequence of str
        The metrics to check: each variant's mean must reach ``bounds[metric]``.
    variants : sequence of str, optional
        Check only these variants (default: all).

    Returns
    -------
    DataFrame
        One row per ``(metric, variant)``: ``mean``, ``bound`` and ``ok``.
    """
    names = list(summary.index) if variants is None else list(variants)
    rows = [{"metric": m, "variant": v, "mean": float(summary.loc[v, f"{m}_mean"]),
             "bound": float(bounds[m]), "ok": bool(summary.loc[v, f"{m}_mean"] >= bounds[m])}
            for m in metrics if bounds.get(m) is not None for v in names]
    if not rows:
        raise ExperimentError(f"the budget bounds none of {list(metrics)}: nothing to check")
    return pd.DataFrame(rows).set_index(["metric", "variant"])


def check_bounds(checks: Sequence[tuple[bool, str]] | pd.DataFrame, what: str = "the run",
                 error: type[Exception] = ExperimentError) -> str:
    """The one bounds check: every ``(ok, description)`` must hold, else one
    :class:`ExperimentError` that lists those that failed. A :func:`bound_table` works
    too. ``error``: the exception class raised (a lesson's own subclass of
    :class:`ExperimentError` or :class:`CourseError`). Returns one ``ok: description``
    line per bound, or that there was none."""
    if isinstance(checks, pd.DataFrame):
        checks = [(bool(r["ok"]), f"{m} of {v}: {r['mean']:.4f} >= {r['bound']:.4f}")
                  for (m, v), r in checks.iterrows()]
    checks = list(checks)
    failed = [text for ok, text in checks if not ok]
    if failed:
        raise error(f"{what} is outside the budget's bounds: " + "; ".join(failed))
    return "\n".join(f"ok: {text}" for _, text in checks) or f"{what}: no bound to check"


def mean_curves(nets: Mapping[tuple[str, int], Any], keys: Sequence[str]) -> pd.DataFrame:
    """Per-epoch history values averaged over seeds, one column per ``(key, variant)``.

    Parameters
    ----------
    nets : mapping
        ``(variant, seed) -> fitted net``, as in ``run_variants(..., keep_nets=True)``.
    keys : sequence of str
        History columns (``"valid_acc"``, ``"train_acc_eval"``...).

    Returns
    -------
    DataFrame
        Indexed by epoch (1-based); columns ``(key, variant)`` with the mean over
        the variant's seeds (runs of different lengths are cut to the shortest).
    """
    cols = {}
    for key in keys:
        by_variant: dict[str, list] = {}
        for (variant, _seed), net in nets.items():
            by_variant.setdefault(variant, []).append(list(net.history[:, key]))
        for variant, curves in by_variant.items():
            n = min(len(c) for c in curves)
            cols[(key, variant)] = np.mean([c[:n] for c in curves], axis=0)
    n = min(len(v) for v in cols.values())
    return pd.DataFrame({k: v[:n] for k, v in cols.items()},
                        index=pd.RangeIndex(1, n + 1, name="epoch"))


# --------------------------------------------------------------------------- reporting

def format_mean_std(mean: float, std: float, digits: int = 3) -> str:
    """``"0.871 ± 0.004"``; ``"0.871"`` when std is NaN (one seed)."""
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_diff(mean: float, std: float, scale: float = 100.0, digits: int = 1,
                unit: str = "points") -> str:
    """A signed difference with its spread: ``"+1.2 ± 0.4 points"`` (``scale=100`` turns
    accuracies into points); no ``±`` part when std is NaN (one seed)."""
    text = f"{scale * mean:+.{digits}f}"
    if std is not None and np.isfinite(std):
        text += f" ± {scale * std:.{digits}f}"
    return f"{text} {unit}".rstrip()


def verdict_verb(verdict: str, up: str, down: str, plural: bool = False,
                 same: str | None = None) -> str:
    """The verb of a verdict for prose: ``up``/``down`` ("raise", "lower") for
    "higher"/"lower", in the third person singular unless ``plural``; inside the noise
    ``same`` as given, else "does not change" ("do not change")."""
    if verdict not in VERDICTS:
        raise ExperimentError(f"verdict {verdict!r}: expected one of {VERDICTS}")
    if verdict == "inside the noise":
        if same is not None:
            return same
        return "do not change" if plural else "does not change"
    word = up if verdict == "higher" else down
    return word if plural else word + "s"


def format_p(p: float) -> str:
    """``"p = 0.012"``, ``"p < 0.001"``, or ``"p n/a"`` where no test could be made."""
    if not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def difference_text(d: Mapping[str, Any], scale: float = 100.0, digits: int = 1,
                    unit: str = "points", count: str = "seed(s)") -> str:
    """A test's result for prose: ``"+1.2 ± 0.4 points, p = 0.012 over 3 seeds, higher"``.

    ``d`` is a :func:`paired_test` / :func:`unpaired_test` result or a row of
    :func:`paired_differences` (``diff_mean``/``diff_std``); an unpaired one says so.
    ``count`` names what was paired or sampled (seeds, filters, folds)."""
    mean = d["mean"] if "mean" in d else d["diff_mean"]
    std = d["std"] if "std" in d else d["diff_std"]
    kind = "" if d.get("paired", True) else " (unpaired, Welch)"
    return (f"{format_diff(mean, std, scale, digits, unit)}, {format_p(d.get('p', float('nan')))}"
            f" over {int(d['seeds'])} {count}{kind}, {d['verdict']}")


def gap_reading(gap: Mapping[str, Any], valid: Mapping[str, Any]) -> str:
    """What a change in the train - valid gap means, read with validation accuracy.

    ``gap`` and ``valid`` are test results (``verdict`` keys) of the same comparison
    on the gap and on validation accuracy. A narrower gap counts as less overfitting
    only where validation accuracy rose; where it did not, training accuracy fell:
    "lower training accuracy (underfitting)". Likewise for a wider gap."""
    g, v = gap["verdict"], valid["verdict"]
    if g == "inside the noise":
        return "no measurable change in overfitting"
    if g == "lower":
        return ("less overfitting: the gap narrowed and validation accuracy rose"
                if v == "higher" else
                "lower training accuracy (underfitting): the gap narrowed, but validation "
                "accuracy did not rise")
    return ("more overfitting: the gap widened and validation accuracy fell"
            if v == "lower" else
            "higher training accuracy: the gap widened, but validation accuracy did not fall")


def claim_table(rows: Sequence[Mapping[str, Any]], profile: Profile | str | None = None,
                device=None) -> pd.DataFrame:
    """The table every claim gets: what the paper reports, what we got, and the
    profile and device ours was measured on. ``rows``: dicts with at least
    ``"claim"``, ``"paper"`` and ``"ours"``."""
    if not rows:
        raise ExperimentError("claim_table needs at least one row")
    name = profile.name if isinstance(profile, Profile) else (profile or get_profile().name)
    device = str(device if device is not None else get_device())
    table = []
    for row in rows:
        missing = {"claim", "paper", "ours"} - set(row)
        if missing:
            raise ExperimentError(f"claim row lacks {sorted(missing)}: {dict(row)}")
        table.append({**row, "profile": name, "device": device})
    return pd.DataFrame(table).set_index("claim")


# --------------------------------------------------------------------------- the result line

#: Each notebook's last output line starts with this, then one JSON object.
RESULT_PREFIX = "COURSE-RESULT"


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    return value


def course_result(notebook: str | int, *, seeds: int, device=None, write: bool = True,
                  **headline: Any) -> dict[str, Any]:
    """Print the notebook's ``COURSE-RESULT {json}`` line and save it in
    ``build/results/NN-PROFILE.json`` (so the results of several sittings can be put
    together). ``headline``: its numbers, named ``test_acc``/``valid_acc``, per variant
    as ``{"mean": ..., "std": ...}`` where there are variants. ``seconds`` is the wall
    time since ``course_utils`` was imported (the notebook's first cell)."""
    nb = f"{int(notebook):02d}" if str(notebook).isdigit() else str(notebook)
    record = {"notebook": nb, "profile": get_profile().name,
              "device": str(device if device is not None else get_device()),
              "threads": torch.get_num_threads(), "seconds": round(time.time() - STARTED, 1),
              "seeds": int(seeds), **_plain(headline)}
    if write:
        out = BUILD_DIR / "results"
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{nb}-{record['profile']}.json").write_text(json.dumps(record) + "\n")
        except OSError as exc:  # a read-only checkout still prints its line
            print(f"(could not save the result in build/results: {exc.strerror})")
    print(f"{RESULT_PREFIX} {json.dumps(record)}")
    return record


def mean_std(values) -> dict[str, float]:
    """``{"mean": ..., "std": ...}`` of ``values`` (sample std; NaN for one value, both NaN
    for none)."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:  # e.g. the seeds that reached a target, when none did
        return {"mean": float("nan"), "std": float("nan")}
    return {"mean": float(arr.mean()),
            "std": float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")}
