"""Training the small AlexNet with skorch and looking at the result (notebook 05).

What this adds to :mod:`course_utils.training` and :mod:`course_utils.plots`: the
budget's sizes and bounds in words (:func:`budget_note`, :func:`check_test_accuracy`),
the trained net measured with the run layer's definitions (:func:`measure`), a
table of the callbacks a net runs, sklearn's ``classification_report`` as a
table, and the figure of a single image's prediction. The notebook writes the
``save_params`` / ``load_params`` round trip and that prediction itself.

How much 05 trains, and its bounds, are row "05" of :mod:`course_utils.budgets`.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..config import CourseError
from ..experiment import (RunResult, check_bounds, difference_text, paired_differences,
                          train_variant, verdict_verb)
from ..plots import as_numpy, format_probability, most_confident_mistakes
from ..search import GRID_DIR, read_results

__all__ = ["AccuracyBoundError", "EvaluationError", "RECIPE_GRID", "budget_note",
           "callback_table", "recipe_ablation", "recipe_note",
           "check_learning", "check_test_accuracy", "classification_table", "confusion_note",
           "gallery_note", "measure", "plot_prediction", "top_confusions"]


class AccuracyBoundError(CourseError, AssertionError):
    """A trained net missed its budget's bound."""


class EvaluationError(CourseError, ValueError):
    """Bad input to one of the evaluation helpers."""


def budget_note(b) -> str:
    """One line on what 05 trains: images, epochs and the test-accuracy bound.

    Parameters
    ----------
    b : Budget
        Notebook 05's row, ``course_utils.budgets.budget("05")``.
    """
    train = "all 50,000" if b.train is None else f"{b.train:,}"
    valid = "all" if b.valid is None else f"{b.valid:,}"
    return (f"profile {b.profile}: {train} training images, {valid} validation, up to "
            f"{b.epochs} epochs; test-accuracy bound {b.bounds['test_acc']}")


class _Fitted:
    """A fitted net handed to :func:`course_utils.experiment.train_variant`: its
    ``fit`` trains nothing, everything else is the net's own."""

    def __init__(self, net):
        self._net = net

    def fit(self, X, y):
        return self

    def __getattr__(self, name):
        return getattr(self._net, name)


def measure(net, splits, *, seed: int = 0, variant: str = "small AlexNet", test: bool = True,
            select: str = "best", **options) -> RunResult:
    """A net fitted here, measured by the run layer itself
    (:func:`course_utils.experiment.train_variant`), so with its definitions.

    ``train_acc`` is the eval-mode accuracy (dropout off) on the first 5,000
    training images, ``valid_acc`` and ``test_acc`` (with ``test``; else None) on
    the validation and test images, and ``gap = train_acc - valid_acc``.
    ``select`` records which model ``net`` holds ("best": the checkpoint restored
    the best validation epoch); ``options`` go to ``train_variant``
    (``train_eval_size``).
    """
    if not getattr(net, "history", None):
        raise EvaluationError("the net has no history: fit it first")
    return train_variant(splits, type(net.module_), epochs=len(net.history), seed=seed,
                         select=select, variant=variant, test=test,
                         make=lambda module, **kwargs: _Fitted(net), **options)


def check_test_accuracy(acc: float, b) -> str:
    """Raise :class:`AccuracyBoundError` when ``acc`` is under ``b.bounds["test_acc"]``.

    Parameters
    ----------
    acc : float
        The test accuracy.
    b : Budget
        Notebook 05's row.
    """
    bound = b.bounds["test_acc"]
    return check_bounds([(acc >= bound, f"test accuracy {acc:.4f} >= the {b.profile} profile's "
                                        f"bound {bound}")], "notebook 05's net", AccuracyBoundError)


def check_learning(net, bounds: Mapping) -> str:
    """The pipeline check: the validation loss fell below its first epoch's by at
    least ``bounds["valid_loss_drop"]`` (when the budget sets it), and every loss
    is finite. Raises :class:`AccuracyBoundError` otherwise."""
    losses = [float(v) for v in net.history[:, "valid_loss"]]
    finite = all(math.isfinite(v) for v in losses + list(net.history[:, "train_loss"]))
    checks = [(finite, f"every loss is finite (valid losses {[round(v, 4) for v in losses]})")]
    drop = bounds.get("valid_loss_drop")
    if drop is not None and finite:
        fell = losses[0] - min(losses)
        checks.append((fell >= drop, f"the validation loss fell by {fell:.3f} >= {drop} from "
                                     f"the first epoch's {losses[0]:.3f}"))
    return check_bounds(checks, "notebook 05's training", AccuracyBoundError)


def callback_table(net) -> pd.DataFrame:
    """The callbacks a skorch net runs, in order, with their main settings.

    An unfitted ``net`` is left alone: the table comes from an initialised clone.
    """
    if not hasattr(net, "callbacks_"):
        from sklearn.base import clone

        net = clone(net).initialize_callbacks()
    keys = ("monitor", "patience", "policy", "T_max", "lower_is_better", "load_best",
            "scoring", "on_train")
    rows = []
    for name, cb in net.callbacks_:
        params = cb.get_params(deep=False) if hasattr(cb, "get_params") else {}
        shown = {k: params[k] for k in keys if k in params and params[k] is not None}
        policy = shown.get("policy")
        if policy is not None and not isinstance(policy, str):
            shown["policy"] = getattr(policy, "__name__", str(policy))
        if policy is not None and shown["policy"] != "ReduceLROnPlateau":
            shown.pop("monitor", None)  # only a plateau schedule watches a score
        rows.append({"name": name, "callback": type(cb).__name__,
                     "settings": ", ".join(f"{k}={v}" for k, v in shown.items())})
    return pd.DataFrame(rows).set_index("name")


def classification_table(y_true, y_pred, classes) -> pd.DataFrame:
    """sklearn's ``classification_report`` as a DataFrame: precision, recall,
    F1 and support per class, then accuracy and the averages."""
    from sklearn.metrics import classification_report

    y_true = as_numpy(y_true)
    y_pred = as_numpy(y_pred)
    if len(y_true) != len(y_pred):
        raise EvaluationError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    report = classification_report(y_true, y_pred, labels=range(len(classes)),
                                   target_names=list(classes), output_dict=True,
                                   zero_division=0)
    acc = report.pop("accuracy")
    table = pd.DataFrame(report).T
    table.loc["accuracy"] = [np.nan, np.nan, acc, len(y_true)]
    table = table.round(3)
    table["support"] = table["support"].astype(int)
    return table


def top_confusions(y_true, y_pred, classes, n: int = 5) -> pd.DataFrame:
    """The ``n`` most frequent mistakes, as (true class, predicted class) pairs.

    Columns: ``count`` (test images), ``share of the true class`` (the pair's
    count over the true class's images) and ``share of all mistakes``.
    """
    y_true, y_pred = as_numpy(y_true), as_numpy(y_pred)
    if len(y_true) != len(y_pred):
        raise EvaluationError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    from sklearn.metrics import confusion_matrix

    k = len(classes)
    counts = confusion_matrix(y_true, y_pred, labels=range(k))  # as plot_confusion_matrix
    np.fill_diagonal(counts, 0)
    total_wrong = max(int(counts.sum()), 1)
    per_class = np.bincount(y_true, minlength=k)
    order = np.argsort(-counts, axis=None, kind="stable")[:n]
    rows = []
    for flat in order:
        t, p = divmod(int(flat), k)
        if counts[t, p] == 0:
            break
        rows.append({"true": classes[t], "predicted as": classes[p], "count": int(counts[t, p]),
                     "share of the true class": round(counts[t, p] / max(per_class[t], 1), 3),
                     "share of all mistakes": round(counts[t, p] / total_wrong, 3)})
    return pd.DataFrame(rows, columns=["true", "predicted as", "count", "share of the true class",
                                       "share of all mistakes"])


def confusion_note(table: pd.DataFrame, n: int = 3) -> str:
    """The top rows of :func:`top_confusions` in words, with their figures."""
    if table.empty:
        return "no test image was misclassified"
    parts = [f"{r['true']} taken for {r['predicted as']} ({r['count']} images, "
             f"{r['share of the true class']:.1%} of the {r['true']} images)"
             for _, r in table.head(n).iterrows()]
    share = table.head(n)["share of all mistakes"].sum()
    return (f"the {len(parts)} most frequent mistakes: " + "; ".join(parts)
            + f". Together they are {share:.1%} of all mistakes.")


def gallery_note(y_true, y_pred, proba, classes, n: int = 12) -> str:
    """What the gallery of :func:`course_utils.plots.plot_misclassified` shows:
    the (true -> predicted) pairs among its ``n`` most confident mistakes, counted."""
    y_true, y_pred, proba = as_numpy(y_true), as_numpy(y_pred), as_numpy(proba)
    wrong = most_confident_mistakes(y_true, y_pred, proba, n)
    if len(wrong) == 0:
        return "the gallery is empty: no test image was misclassified"
    pairs = Counter((classes[y_true[i]], classes[y_pred[i]]) for i in wrong)
    listed = ", ".join(f"{t} -> {p}" + (f" x{c}" if c > 1 else "")
                       for (t, p), c in pairs.most_common())
    lowest = format_probability(proba[wrong, y_pred[wrong]].min())
    return (f"the gallery's {len(wrong)} mistakes (true -> predicted): {listed}; the net gave "
            f"each wrong class a probability of at least {lowest}")


def plot_prediction(image, proba_table: pd.DataFrame, true_class: str | None = None,
                    title: str = "One test image and the net's prediction"):
    """The image beside a bar chart of its top class probabilities."""
    import matplotlib.pyplot as plt

    img = as_numpy(image)
    img = img[0] if img.ndim == 3 else img
    fig, (ax_img, ax_bar) = plt.subplots(1, 2, figsize=(8, 3),
                                         gridspec_kw={"width_ratios": [1, 2]})
    ax_img.imshow(img, cmap="gray_r")
    ax_img.set(title=f"true: {true_class}" if true_class else "input", xticks=[], yticks=[])
    ax_bar.barh(proba_table["class"][::-1], proba_table["probability"][::-1],
                label="predicted probability")
    ax_bar.set(title="Top classes", xlabel="probability", ylabel="class", xlim=(0, 1))
    ax_bar.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the recipe

#: The measured search behind "what the recipe's ingredients buy": grids/recipe05.yaml run
#: with ``make grid GRID=grids/recipe05.yaml OUT=grids/measured/recipe05``.
RECIPE_GRID = GRID_DIR / "measured" / "recipe05"

_INGREDIENTS = {(0.0, 0): "plain", (0.1, 0): "label smoothing 0.1",
                (0.0, 2): "shifts up to 2 px", (0.1, 2): "both"}


def recipe_ablation(folder: str | Path = RECIPE_GRID) -> pd.DataFrame:
    """The recipe search's runs as the run layer's table: ``variant`` (plain, label
    smoothing 0.1, shifts up to 2 px, both), ``seed``, ``valid_acc``, ``train_acc``,
    ``gap`` and ``train_seconds``, one row per finished run.

    Parameters
    ----------
    folder : path
        The output folder of ``grids/recipe05.yaml`` (its ``results.jsonl``).
    """
    rows = []
    for rec in read_results(Path(folder)):
        if rec.get("status") != "ok":
            continue
        p = rec["params"]
        key = (float(p["criterion__label_smoothing"]), int(p["module__augment_padding"]))
        if key not in _INGREDIENTS:
            raise EvaluationError(f"{folder}: a run with {p} is not one of the recipe's "
                                  "four variants: run grids/recipe05.yaml as it is")
        rows.append({"variant": _INGREDIENTS[key], "seed": int(p["seed"]),
                     "valid_acc": rec["valid_acc"], "train_acc": rec["train_acc"],
                     "gap": rec["gap"], "train_seconds": rec["train_seconds"]})
    if not rows:
        raise EvaluationError(f"{folder} holds no finished run: make grid "
                              "GRID=grids/recipe05.yaml OUT=grids/measured/recipe05")
    order = list(_INGREDIENTS.values())
    table = pd.DataFrame(rows)
    table["variant"] = pd.Categorical(table["variant"], order, ordered=True)
    table = table.sort_values(["variant", "seed"], kind="stable").reset_index(drop=True)
    table["variant"] = table["variant"].astype(str)
    return table


def recipe_note(runs: pd.DataFrame) -> str:
    """What each ingredient buys over the plain recipe in validation accuracy, seed by
    seed: the paired difference in points and its verdict, one line each."""
    diffs = paired_differences(runs, baseline="plain", metric="valid_acc")
    lines = []
    for name, row in diffs.iterrows():
        lines.append(f"{name} {verdict_verb(row['verdict'], 'raise', 'lower')} validation "
                     f"accuracy against plain ({difference_text(row, digits=2)})")
    return "\n".join(lines)
