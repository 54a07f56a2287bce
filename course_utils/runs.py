"""Small, budgeted training runs for notebooks 08-12: subset the splits, fit, score.

Each of those notebooks trains several models, so each has a table of sizes per
profile (``RUNS`` in its own module). :func:`budget_splits` cuts the course
splits down to those sizes (stratified, seeded) and :func:`fit_and_score`
trains one model with :func:`course_utils.training.make_classifier` and returns
the figures a results table needs.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from .config import CourseError
from .data import Splits, stratified_indices
from .training import accuracy, make_classifier, train_seconds


def budget_splits(splits: Splits, train: int | None = None, valid: int | None = None,
                  test: int | None = None, seed: int = 0, **_ignored) -> Splits:
    """A stratified subset of ``splits`` with at most ``train``/``valid``/``test`` images
    (``None`` keeps a split whole). Extra keys (``epochs``...) are ignored, so a
    budget dict can be passed with ``**``."""
    def cut(X, y, n):
        idx = stratified_indices(y, n, seed)
        return X[idx], y[idx]

    X_train, y_train = cut(splits.X_train, splits.y_train, train)
    X_valid, y_valid = cut(splits.X_valid, splits.y_valid, valid)
    X_test, y_test = cut(splits.X_test, splits.y_test, test)
    return replace(splits, X_train=X_train, y_train=y_train, X_valid=X_valid, y_valid=y_valid,
                   X_test=X_test, y_test=y_test)


def fit_and_score(module, splits: Splits, epochs: int, *, seed: int = 0, name: str = "",
                  **kwargs) -> dict:
    """Train ``module`` on ``splits`` for ``epochs`` and measure it.

    ``kwargs`` go to :func:`make_classifier` (``module__dropout=0.0``, ``lr=...``).
    Returns a dict with the fitted ``net`` and ``train_acc`` (last epoch, on the
    training batches), ``valid_acc`` (best), ``test_acc``, ``epochs`` run,
    ``train_s`` and ``test_s`` (seconds).
    """
    if epochs < 1:
        raise CourseError(f"epochs must be at least 1, got {epochs}")
    kwargs.setdefault("patience", None)
    kwargs.setdefault("verbose", 0)
    net = make_classifier(module, valid=(splits.X_valid, splits.y_valid), max_epochs=epochs,
                          seed=seed, **kwargs)
    net.fit(splits.X_train, splits.y_train)
    t0 = time.perf_counter()
    test_acc = accuracy(net, splits.X_test, splits.y_test)
    test_s = time.perf_counter() - t0
    hist = net.history
    return {
        "name": name, "net": net,
        "train_acc": float(hist[-1, "train_acc"]) if "train_acc" in hist[-1] else float("nan"),
        "valid_acc": float(np.max(hist[:, "valid_acc"])),
        "test_acc": test_acc, "epochs": len(hist),
        "train_s": train_seconds(net), "test_s": test_s,
    }


def results_frame(runs: list[dict], columns=("name", "train_acc", "valid_acc", "test_acc",
                                              "epochs", "train_s")):
    """A pandas table of :func:`fit_and_score` results (the ``net`` left out)."""
    import pandas as pd

    return pd.DataFrame([{c: r[c] for c in columns} for r in runs]).round(3)


def history_frame(net) -> "object":
    """skorch's history as a pandas table (epoch, losses, accuracies, seconds)."""
    import pandas as pd

    keys = [k for k in ("epoch", "train_loss", "valid_loss", "train_acc", "valid_acc", "dur")
            if k in net.history[0]]
    return pd.DataFrame({k: net.history[:, k] for k in keys})


@torch.no_grad()
def batched_softmax(module: torch.nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax outputs of ``module`` for ``X``, in batches, on the module's device, in
    whatever mode (train or eval) the module is in: MC dropout relies on that."""
    dev = next(module.parameters()).device
    return torch.cat([torch.softmax(module(X[i:i + batch_size].to(dev)), 1).cpu()
                      for i in range(0, len(X), batch_size)])


def predict_proba(module: torch.nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax outputs of a plain module in eval mode for ``X``."""
    module.eval()
    return batched_softmax(module, X, batch_size)


def plot_curves(runs: list[dict], key: str = "valid_acc", title: str | None = None,
                ylabel: str | None = None):
    """One line per run of ``key`` from its history against the epoch."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in runs:
        h = r["net"].history
        ax.plot(h[:, "epoch"], h[:, key], marker="o", label=r["name"])
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or key.replace("_", " "))
    ax.set_title(title or key.replace("_", " "))
    ax.legend()
    fig.tight_layout()
    return fig
