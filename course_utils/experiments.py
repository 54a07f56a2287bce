"""Compare model variants fairly: same data, same budget, several seeds.

The paper's claims are of the form "ingredient X lowers the error by Y". To
test one, train the network with and without X at the *same* budget (epochs,
optimiser, learning rate, data) and repeat over seeds, because one run on a
small budget can differ from the next by more than the effect itself.

    from course_utils.experiments import compare_variants
    table = compare_variants(
        {"no LRN": {}, "LRN": {"module__lrn": True}},
        splits, seeds=3, max_epochs=10, module__channels=(24, 64, 96, 96, 64))

Two layers, so that notebooks can show both:

* :func:`run_variants` trains every (variant, seed) pair and returns one row
  per run (test accuracy, train and valid accuracy, seconds per epoch...);
* :func:`summarize_runs` turns those rows into one row per variant with
  mean and std; :func:`compare_variants` does both.

Every run is a :func:`course_utils.training.make_classifier` with early stopping
and the checkpoint switched off (a fixed budget: the last epoch is the model
that is scored), unless the caller asks otherwise.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import CourseError, Profile, get_device, get_profile
from .training import accuracy, make_classifier, train_seconds

#: Columns of the table :func:`run_variants` returns.
RUN_COLUMNS = ("variant", "seed", "epochs", "test_acc", "train_acc", "valid_acc", "gap",
               "sec_per_epoch", "final_train_loss")

#: Columns of the table :func:`summarize_runs` returns (besides ``variant``).
SUMMARY_COLUMNS = ("runs", "test_acc_mean", "test_acc_std", "train_acc_mean", "valid_acc_mean",
                   "gap_mean", "gap_std", "sec_per_epoch")


class ExperimentError(CourseError, ValueError):
    """An experiment was set up in a way that cannot give a fair comparison."""


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
        budget = {"max_epochs", "batch_size", "lr", "optimizer"} & set(kwargs)
        if budget:
            raise ExperimentError(f"variant {name!r} sets {sorted(budget)}: the budget must be "
                                  "the same for every variant; pass it to run_variants instead")


def run_variants(variants: Mapping[str, Mapping[str, Any]], splits, *,
                 seeds: int | Sequence[int] | None = None, max_epochs: int | None = None,
                 train_eval_size: int | None = 5_000,
                 make: Callable[..., Any] = make_classifier,
                 on_run: Callable[[dict], None] | None = None,
                 **common: Any) -> pd.DataFrame:
    """Train every variant with every seed at the same budget; one row per run.

    Args:
        variants: ``{name: kwargs}``; each ``kwargs`` is passed to ``make`` on top
            of ``common`` and says what differs (``{"module__lrn": True}``). It may
            not change the budget (epochs, batch size, lr, optimiser).
        splits: a :class:`course_utils.data.Splits` (or anything with
            ``X_train, y_train, X_valid, y_valid, X_test, y_test``).
        seeds: a count (seeds 0..n-1) or a list; ``None`` takes the profile's.
        max_epochs: the budget; ``None`` takes the profile's.
        train_eval_size: training images scored (in eval mode, after training)
            for the train accuracy and the train-valid gap; ``None`` for all.
        make: the classifier factory (``make_classifier``; tests pass a cheaper one).
        on_run: called with each finished row (e.g. ``print``), for progress.
        **common: keyword arguments shared by every variant, e.g.
            ``module__channels=...``, ``optimizer=torch.optim.SGD``, ``lr=0.01``.
            Early stopping, the checkpoint and skorch's per-epoch log are off
            unless given here (``verbose=1`` brings the log back).

    Returns:
        A DataFrame with :data:`RUN_COLUMNS`: ``gap`` is train minus valid
        accuracy (both measured in eval mode on the final model), and
        ``sec_per_epoch`` is skorch's training time per epoch (validation included).
    """
    _check_variants(variants)
    profile = get_profile()
    seed_list = _seed_list(seeds, profile)
    max_epochs = profile.epochs if max_epochs is None else int(max_epochs)
    if max_epochs < 1:
        raise ExperimentError(f"max_epochs must be at least 1, got {max_epochs}")
    common = {"patience": None, "checkpoint": False, "verbose": 0, **common}
    n_eval = len(splits.y_train) if train_eval_size is None else min(train_eval_size,
                                                                     len(splits.y_train))
    X_tr_eval, y_tr_eval = splits.X_train[:n_eval], splits.y_train[:n_eval]
    rows = []
    for name, kwargs in variants.items():
        for seed in seed_list:
            net = make(valid=(splits.X_valid, splits.y_valid), max_epochs=max_epochs,
                       seed=seed, **{**common, **kwargs})
            net.fit(splits.X_train, splits.y_train)
            epochs = len(net.history)
            train_acc = accuracy(net, X_tr_eval, y_tr_eval)
            valid_acc = accuracy(net, splits.X_valid, splits.y_valid)
            row = {
                "variant": name, "seed": seed, "epochs": epochs,
                "test_acc": accuracy(net, splits.X_test, splits.y_test),
                "train_acc": train_acc, "valid_acc": valid_acc, "gap": train_acc - valid_acc,
                "sec_per_epoch": train_seconds(net) / max(epochs, 1),
                "final_train_loss": float(net.history[-1, "train_loss"]),
            }
            rows.append(row)
            if on_run is not None:
                on_run(row)
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def summarize_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per variant (in the order first seen): mean and std over seeds.

    The std is the sample std (ddof=1); with a single seed it is NaN, shown
    as such rather than as a misleading 0.
    """
    missing = set(RUN_COLUMNS) - set(runs.columns)
    if missing:
        raise ExperimentError(f"runs lacks columns {sorted(missing)}: pass run_variants' table")
    if runs.empty:
        raise ExperimentError("runs is empty: nothing to summarise")
    order = list(dict.fromkeys(runs["variant"]))
    g = runs.groupby("variant", sort=False)
    out = pd.DataFrame({
        "runs": g.size(),
        "test_acc_mean": g["test_acc"].mean(), "test_acc_std": g["test_acc"].std(ddof=1),
        "train_acc_mean": g["train_acc"].mean(), "valid_acc_mean": g["valid_acc"].mean(),
        "gap_mean": g["gap"].mean(), "gap_std": g["gap"].std(ddof=1),
        "sec_per_epoch": g["sec_per_epoch"].mean(),
    }).loc[order]
    out.index.name = "variant"
    return out


def compare_variants(variants: Mapping[str, Mapping[str, Any]], splits, **kwargs
                     ) -> pd.DataFrame:
    """:func:`run_variants` then :func:`summarize_runs`; the per-run table is kept
    in ``result.attrs["runs"]``. Takes the same arguments as :func:`run_variants`.
    """
    runs = run_variants(variants, splits, **kwargs)
    summary = summarize_runs(runs)
    summary.attrs["runs"] = runs
    return summary


def format_mean_std(mean: float, std: float, digits: int = 3) -> str:
    """``"0.871 ± 0.004"``; ``"0.871"`` when std is NaN (one seed)."""
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def claim_table(rows: Sequence[Mapping[str, Any]], profile: Profile | str | None = None,
                device=None) -> pd.DataFrame:
    """The small table every claim gets: what the paper reports, what we got,
    and the profile and device ours was measured on.

    ``rows``: dicts with at least ``"claim"``, ``"paper"`` and ``"ours"``.
    """
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


# --------------------------------------------------------------------------- budgets

#: A quarter of the paper's filters: the small AlexNet that trains in minutes on a CPU.
NARROW_CHANNELS = (24, 64, 96, 96, 64)

#: Budget of the small-AlexNet comparisons (notebooks 02, 03) per profile:
#: filters of conv1..conv5, epochs, seeds. Full uses the paper's filters.
SMALL_ALEXNET_BUDGETS = {
    "smoke": {"channels": NARROW_CHANNELS, "epochs": 2, "seeds": 1},
    "quick": {"channels": NARROW_CHANNELS, "epochs": 6, "seeds": 2},
    "full": {"channels": (96, 256, 384, 384, 256), "epochs": 30, "seeds": 3},
}


def small_alexnet_budget(profile: Profile | str | None = None) -> dict[str, Any]:
    """``run_variants`` keyword arguments for the profile's budget:
    ``max_epochs``, ``seeds`` and ``module__channels``.

    Smoke and quick use :data:`NARROW_CHANNELS` so that three variants times
    two seeds train in a couple of minutes on two CPU cores; full uses the
    paper's filter counts and its 3 seeds.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    b = SMALL_ALEXNET_BUDGETS[prof.name]
    return {"max_epochs": b["epochs"], "seeds": b["seeds"], "module__channels": b["channels"]}
