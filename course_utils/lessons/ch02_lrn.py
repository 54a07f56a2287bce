"""Notebook 02: Local Response Normalization (Krizhevsky et al., 2012, sec. 3.3).

The layer itself is :class:`course_utils.layers.LocalResponseNorm`; this module
holds what the notebook shows about it:

* :func:`lrn_by_hand`: the paper's formula as plain loops, for the worked example;
* :func:`check_against_torch`: the course layer against ``nn.LocalResponseNorm``
  under both conventions;
* :func:`convention_table`: the same LRN in the paper, Caffe, TensorFlow and PyTorch;
* :func:`lateral_inhibition`, :func:`denominator_stats`, plots: what LRN does;
* :func:`lrn_variants`, :func:`lrn_claims`: the variants of the experiment and the
  claim rows from the run layer's tables.

The experiment's budget and bounds are row "02" of :mod:`course_utils.budgets`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import CourseError
from ..experiment import format_mean_std, paired_differences
from ..layers import LocalResponseNorm

__all__ = ["BASELINE", "PAPER_LRN", "LRNError", "check_against_torch", "conv1_activations",
           "convention_table", "denominator", "denominator_stats", "lateral_inhibition",
           "lrn_by_hand", "lrn_claims", "lrn_variants", "plot_feature_maps",
           "plot_lateral_inhibition"]

#: The paper's hyper-parameters: n, alpha, beta, k.
PAPER_LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
#: The variant the others are compared with.
BASELINE = "no normalisation"


class LRNError(CourseError, ValueError):
    """Bad argument for an LRN helper."""


def lrn_by_hand(a, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
                ) -> np.ndarray:
    """The paper's formula, one channel at a time, on an array shaped (C, ...) or (N, C, ...).

    b[i] = a[i] / (k + alpha * sum_{j = i - size//2}^{i + (size-1)//2} a[j]^2) ** beta,
    the sum over the channels that exist (paper convention: alpha not divided by size).
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim < 1 or size < 1:
        raise LRNError("lrn_by_hand needs an array with a channel axis and size >= 1")
    batched = a.ndim >= 3 and a.ndim != 1
    x = a if batched else a[None]
    channels = x.shape[1]
    out = np.empty_like(x)
    for i in range(channels):
        lo, hi = max(0, i - size // 2), min(channels - 1, i + (size - 1) // 2)
        s = sum(x[:, j] ** 2 for j in range(lo, hi + 1))
        out[:, i] = x[:, i] / (k + alpha * s) ** beta
    return out if batched else out[0]


def check_against_torch(x: torch.Tensor, size: int = 5, alpha: float = 1e-4,
                        beta: float = 0.75, k: float = 2.0) -> pd.DataFrame:
    """Max |difference| between the course layer and ``nn.LocalResponseNorm``:
    the Caffe convention takes alpha as is; the paper's needs ``alpha * size``."""
    rows = []
    for convention, torch_alpha in (("caffe", alpha), ("paper", alpha * size)):
        ours = LocalResponseNorm(size, alpha, beta, k, convention=convention)(x)
        ref = nn.LocalResponseNorm(size, torch_alpha, beta, k)(x)
        rows.append({"convention": convention,
                     "course layer": f"LocalResponseNorm({size}, {alpha:g}, {beta:g}, {k:g}, "
                                     f"convention={convention!r})",
                     "nn.LocalResponseNorm": f"({size}, alpha={torch_alpha:g}, beta={beta:g}, "
                                             f"k={k:g})",
                     "max |difference|": float((ours - ref).abs().max()),
                     "match": bool(torch.allclose(ours, ref, rtol=1e-5, atol=1e-6))})
    return pd.DataFrame(rows).set_index("convention")


def convention_table(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
                     ) -> pd.DataFrame:
    """The paper's LRN written in each library's parameters.

    The paper and TensorFlow multiply the plain sum of squares by alpha; Caffe
    and PyTorch by alpha / n, so they need alpha * n to give the same layer.
    TensorFlow names the window by its radius, (n - 1) / 2.
    """
    if size < 1 or size % 2 == 0:
        raise LRNError(f"size must be an odd window (n = 2 * radius + 1), got {size}")
    radius = (size - 1) // 2
    rows = [
        ("paper (sec. 3.3)", "n", size, "alpha", alpha, "k", k, "alpha * sum"),
        ("Caffe LRN layer", "local_size", size, "alpha", alpha * size, "k", k,
         "alpha / n * sum"),
        ("TensorFlow tf.nn.lrn", "depth_radius", radius, "alpha", alpha, "bias", k,
         "alpha * sum"),
        ("PyTorch nn.LocalResponseNorm", "size", size, "alpha", alpha * size, "k", k,
         "alpha / size * sum"),
        ("course LocalResponseNorm(convention='paper')", "size", size, "alpha", alpha, "k", k,
         "alpha * sum"),
    ]
    table = pd.DataFrame(rows, columns=["where", "window parameter", "window value",
                                        "alpha parameter", "alpha value", "k parameter",
                                        "k value", "what multiplies the sum of squares"])
    table["beta"] = beta
    return table.set_index("where")


def lateral_inhibition(channels: int = 9, strong: int = 4, base: float = 30.0,
                       peak: float = 300.0, **lrn) -> pd.DataFrame:
    """One pixel, ``channels`` channels all at ``base`` except one at ``peak``:
    each channel before and after LRN (paper parameters unless given), and the
    factor it was divided by. Neighbours of the strong channel are divided more."""
    if not 0 <= strong < channels:
        raise LRNError(f"strong must be a channel index in 0..{channels - 1}, got {strong}")
    params = {**PAPER_LRN, **lrn}
    a = torch.full((1, channels, 1, 1), float(base))
    a[0, strong] = float(peak)
    b = LocalResponseNorm(**params, convention="paper")(a)
    before, after = a.flatten().numpy(), b.flatten().numpy()
    out = pd.DataFrame({"before": before, "after": after, "divided by": before / after})
    out.index.name = "channel"
    return out


def plot_lateral_inhibition(table: pd.DataFrame):
    """Two panels from :func:`lateral_inhibition`: each channel before and after
    LRN (log scale), and what each was divided by."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    x = table.index.to_numpy()
    ax1.bar(x - 0.2, table["before"], 0.4, label="before LRN")
    ax1.bar(x + 0.2, table["after"], 0.4, label="after LRN")
    ax1.set(title="One pixel across channels", xlabel="channel", ylabel="activation",
            yscale="log")
    ax1.legend()
    ax2.bar(x, table["divided by"], color="tab:red", label="LRN denominator")
    ax2.set(title="Each channel is divided by its neighbourhood's energy", xlabel="channel",
            ylabel="(k + alpha * sum a_j^2) ** beta")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def denominator(a: torch.Tensor, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                k: float = 2.0) -> torch.Tensor:
    """The LRN denominator at every position (paper convention): a / LRN(a)."""
    layer = LocalResponseNorm(size, alpha, beta, k, convention="paper")
    squares = a * a
    before, after = size // 2, (size - 1) // 2
    pad = [0, 0] * (a.dim() - 2) + [before, after]
    padded = torch.nn.functional.pad(squares, pad)
    window = sum(padded[:, j:j + a.shape[1]] for j in range(size))
    return (layer.k + layer.effective_alpha * window).pow(beta)


def denominator_stats(named_acts: dict, **lrn) -> pd.DataFrame:
    """Quantiles of the LRN denominator on each named activation tensor; with
    activations near 1 it is about k ** beta = 1.68 everywhere, i.e. LRN is then
    little more than a constant rescaling."""
    params = {**PAPER_LRN, **lrn}
    rows = {}
    for name, a in named_acts.items():
        d = denominator(a, **params).flatten().double()
        q = torch.quantile(d[torch.randperm(len(d))[:200_000]] if len(d) > 200_000 else d,
                           torch.tensor([0.5, 0.99], dtype=torch.float64))
        rows[name] = {"mean |activation|": float(a.abs().mean()),
                      "denominator min": float(d.min()), "median": float(q[0]),
                      "99th percentile": float(q[1]), "max": float(d.max())}
    return pd.DataFrame(rows).T


def conv1_activations(image: torch.Tensor, pixel_scale: float = 1.0, seed: int = 0
                      ) -> torch.Tensor:
    """conv1 + ReLU of a freshly initialised (He) full-size AlexNet on one image.

    ``pixel_scale=255`` feeds the normalised image multiplied by 255, the
    scale of the mean-subtracted raw pixels the paper trained on.
    """
    from ..models import AlexNet

    torch.manual_seed(seed)
    net = AlexNet(in_channels=1)
    with torch.no_grad():
        x = net.prep(image.reshape(1, 1, *image.shape[-2:])) * pixel_scale
        return net.features.act1(net.features.conv1(x.contiguous()))


def plot_feature_maps(before: torch.Tensor, after: torch.Tensor, channels=(0, 1, 2, 3),
                      title: str = "conv1 feature maps before and after LRN"):
    """Three rows, one column per channel: the map before LRN, after LRN (each
    with its own colour scale), and what each position was divided by
    (before / after; blank where the unit is 0)."""
    ratio = torch.where(after != 0, before / after.where(after != 0, torch.ones_like(after)),
                        torch.full_like(after, float("nan")))
    rows = ((before, "before LRN", "viridis"), (after, "after LRN", "viridis"),
            (ratio, "divided by", "magma"))
    fig, axes = plt.subplots(3, len(channels), figsize=(2.7 * len(channels), 7.8),
                             squeeze=False)
    for col, c in enumerate(channels):
        for row, (t, label, cmap) in enumerate(rows):
            ax = axes[row, col]
            im = ax.imshow(t[0, c].numpy(), cmap=cmap)
            finite = t[0, c][torch.isfinite(t[0, c])]
            top = float(finite.max()) if finite.numel() else float("nan")
            ax.set_title(f"channel {c}, {label}\nmax {top:.3g}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def lrn_variants() -> dict[str, dict]:
    """``run_variants`` variants: no normalisation, LRN (paper), BatchNorm."""
    return {BASELINE: {}, "LRN (paper)": {"module__lrn": True},
            "BatchNorm": {"module__batchnorm": True}}


def _seed_by_seed(runs: pd.DataFrame, name: str) -> str:
    """`` (seed by seed: -0.20 ± 0.40 over 2 seed(s); inside the noise)``: the error
    change of ``name`` against the baseline, from paired test accuracies."""
    d = paired_differences(runs, baseline=BASELINE).loc[name]
    verdict = {"higher": f"{name} more accurate",
               "lower": f"{name} less accurate"}.get(d["verdict"], d["verdict"])
    change = format_mean_std(-d["diff_mean"] * 100, d["diff_std"] * 100, 2)
    return f" (seed by seed: {change} over {int(d['seeds'])} seed(s); {verdict})"


def lrn_claims(summary: pd.DataFrame, runs: pd.DataFrame | None = None) -> list[dict]:
    """Rows for :func:`course_utils.experiment.claim_table`.

    Parameters
    ----------
    summary : DataFrame
        :func:`course_utils.experiment.summarize_runs` of the :func:`lrn_variants` runs.
    runs : DataFrame, optional
        The runs themselves (:func:`course_utils.experiment.run_variants`): adds each
        error change seed by seed (:func:`course_utils.experiment.paired_differences`)
        and whether it is inside the noise.
    """
    def err(name):
        return 1 - summary.loc[name, "test_acc_mean"]

    def change(name):
        text = f"{(err(name) - err(BASELINE)) * 100:+.2f}"
        return text + (_seed_by_seed(runs, name) if runs is not None else "")

    none, with_lrn, bn = BASELINE, "LRN (paper)", "BatchNorm"
    acc, std = summary["test_acc_mean"], summary["test_acc_std"]
    return [
        {"claim": "test error without / with LRN",
         "paper": "CIFAR-10: 13% / 11%; ImageNet top-1 cut by 1.4 points, top-5 by 1.2",
         "ours": f"{err(none):.1%} / {err(with_lrn):.1%} "
                 f"(accuracy {format_mean_std(acc[none], std[none])}"
                 f" / {format_mean_std(acc[with_lrn], std[with_lrn])})"},
        {"claim": "error change from LRN (points)", "paper": "-2.0 (CIFAR-10), -1.4 (top-1)",
         "ours": change(with_lrn)},
        {"claim": "error change from BatchNorm instead (points)", "paper": "n/a (2015)",
         "ours": change(bn)},
        {"claim": "seconds per epoch: none / LRN / BatchNorm", "paper": "n/a",
         "ours": " / ".join(f"{summary.loc[n, 'sec_per_epoch']:.2f}"
                            for n in (none, with_lrn, bn))},
    ]
