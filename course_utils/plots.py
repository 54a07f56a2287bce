"""Figures every notebook shares. Each function returns its matplotlib Figure,
with a title, labelled axes and a legend where there is more than one line.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["as_numpy", "format_probability", "most_confident_mistakes", "plot_class_balance",
           "plot_class_samples", "plot_confusion_matrix", "plot_gap_curves",
           "plot_history", "plot_mean_curves", "plot_misclassified"]


def as_numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _image(img) -> np.ndarray:
    """(1, H, W) or (H, W) image as a 2-D array for imshow."""
    arr = as_numpy(img)
    return arr[0] if arr.ndim == 3 else arr


def plot_history(history, title: str = "Training history"):
    """Loss and accuracy per epoch, train against valid, from a skorch History
    (``net.history``) or a list of dicts with the same keys.
    """
    rows = list(history)
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label, style in (("train_loss", "train", "-o"), ("valid_loss", "valid", "-s")):
        if all(key in r for r in rows):
            ax_loss.plot(epochs, [r[key] for r in rows], style, label=label)
    for key, label, style in (("train_acc", "train", "-o"), ("valid_acc", "valid", "-s")):
        if all(key in r for r in rows):
            ax_acc.plot(epochs, [r[key] for r in rows], style, label=label)
    ax_loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(y_true, y_pred, classes: Sequence[str], normalize: bool = True,
                          title: str = "Confusion matrix"):
    """A seaborn heatmap of the confusion matrix, rows the true class."""
    import seaborn as sns
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(as_numpy(y_true), as_numpy(y_pred), labels=range(len(classes)))
    data = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig, ax = plt.subplots(figsize=(8, 6.5))
    sns.heatmap(data, annot=True, fmt=".2f" if normalize else "d", cmap="Blues",
                xticklabels=classes, yticklabels=classes, ax=ax,
                cbar_kws={"label": "share of true class" if normalize else "count"})
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    fig.tight_layout()
    return fig


def format_probability(p: float) -> str:
    """A probability with the digits that tell it apart: ``0.734``, ``0.9987``,
    ``1 - 3e-06`` and ``2e-05`` (rather than a rounded ``1.00`` and ``0.00``)."""
    p = float(p)
    if p < 0.0005:
        return f"{p:.0e}" if p > 0 else "0"
    if p >= 0.9995:
        return f"1 - {1 - p:.0e}" if p < 1 else "1"
    if p >= 0.995:
        return f"{p:.4f}"
    return f"{p:.3f}"


def most_confident_mistakes(y_true, y_pred, proba, n: int = 12) -> np.ndarray:
    """Indices of the ``n`` misclassified images whose wrong class got the highest
    probability, most confident first (ties keep the images' order)."""
    y_true, y_pred, proba = as_numpy(y_true), as_numpy(y_pred), as_numpy(proba)
    wrong = np.flatnonzero(y_true != y_pred)
    return wrong[np.argsort(-proba[wrong, y_pred[wrong]], kind="stable")][:n]


def plot_misclassified(images, y_true, y_pred, proba, classes: Sequence[str], n: int = 12,
                       cols: int = 4, title: str = "Misclassified test images"):
    """A gallery of the most confidently wrong predictions, each captioned with
    the true label and its probability, and the predicted label and its
    probability (:func:`format_probability`).
    """
    y_true, y_pred, proba = as_numpy(y_true), as_numpy(y_pred), as_numpy(proba)
    wrong = most_confident_mistakes(y_true, y_pred, proba, n)
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols, 3.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(_image(images[i]), cmap="gray_r")
        ax.set_title(f"true: {classes[y_true[i]]} (p = {format_probability(proba[i, y_true[i]])})\n"
                     f"pred: {classes[y_pred[i]]} (p = {format_probability(proba[i, y_pred[i]])})",
                     fontsize=9)
    if len(wrong) == 0:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle(f"{title} (true / predicted, with probabilities)")
    fig.tight_layout()
    return fig


def plot_class_samples(images, labels, classes: Sequence[str], per_class: int = 8,
                       title: str = "Sample images per class"):
    """A grid with one row per class and ``per_class`` examples in each."""
    labels = as_numpy(labels)
    fig, axes = plt.subplots(len(classes), per_class,
                             figsize=(per_class * 1.0, len(classes) * 1.05), squeeze=False)
    for c, name in enumerate(classes):
        idx = np.flatnonzero(labels == c)[:per_class]
        for j, ax in enumerate(axes[c]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(idx):
                ax.imshow(_image(images[idx[j]]), cmap="gray_r")
        axes[c, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_class_balance(splits: dict, classes: Sequence[str],
                       title: str = "Images per class"):
    """Grouped bars: images per class in each named split, e.g.
    ``{"train": y_train, "test": y_test}``.
    """
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(splits))
    x = np.arange(len(classes))
    for k, (name, labels) in enumerate(splits.items()):
        counts = np.bincount(as_numpy(labels), minlength=len(classes))
        ax.bar(x + k * width - 0.4 + width / 2, counts, width, label=name)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set(title=title, xlabel="class", ylabel="number of images")
    ax.legend(title="split", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_gap_curves(nets, title: str = "Eval-mode training accuracy (solid) and "
                                        "validation accuracy (dashed), mean over seeds"):
    """Training accuracy in eval mode and validation accuracy by epoch, per variant.

    Parameters
    ----------
    nets : mapping
        ``(variant, seed) -> net`` from ``run_variants(..., keep_nets=True)``, trained
        with :class:`course_utils.training.EvalModeTrainScore`.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .experiment import mean_curves

    curves = mean_curves(nets, ("train_acc_eval", "valid_acc"))
    fig, (ax, gap_ax) = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.get_cmap("tab10")
    for i, variant in enumerate(dict.fromkeys(v for _, v in curves.columns)):
        c = colours(i)
        ax.plot(curves.index, curves[("train_acc_eval", variant)], color=c, label=variant)
        ax.plot(curves.index, curves[("valid_acc", variant)], color=c, ls="--")
        gap_ax.plot(curves.index, 100 * (curves[("train_acc_eval", variant)]
                                         - curves[("valid_acc", variant)]), color=c,
                    label=variant)
    ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    gap_ax.set(xlabel="epoch", ylabel="train - valid gap (points)",
               title="the gap (eval-mode train minus valid)")
    gap_ax.axhline(0, color="grey", lw=0.5)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig

def plot_mean_curves(nets, key: str, ylabel: str, title: str | None = None):
    """One history column by epoch, averaged over seeds, one line per variant.

    Parameters
    ----------
    nets : mapping
        ``(variant, seed) -> net`` from ``run_variants(..., keep_nets=True)``.
    key : str
        A history column (``"train_loss_eval"``, ``"valid_loss"``...).
    ylabel : str
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .experiment import mean_curves

    curves = mean_curves(nets, (key,))
    fig, ax = plt.subplots(figsize=(7, 4))
    for _, variant in curves.columns:
        ax.plot(curves.index, curves[(key, variant)], label=variant)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title or f"{key}, mean over seeds")
    ax.legend()
    fig.tight_layout()
    return fig
