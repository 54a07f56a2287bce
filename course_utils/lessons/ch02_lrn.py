"""Notebook 02: Local Response Normalization (Krizhevsky et al., 2012, sec. 3.3).

The layer itself is :class:`course_utils.layers.LocalResponseNorm`; this module
holds what the notebook shows about it:

* :func:`lrn_by_hand`: the paper's formula as plain loops, for the worked example;
* :func:`check_against_torch`: the course layer against ``nn.LocalResponseNorm``
  under both conventions;
* :func:`convention_table`: the same LRN in the paper, Caffe, TensorFlow and PyTorch;
* :func:`lateral_inhibition`, :func:`plot_lateral_inhibition`: what LRN does;
* :func:`input_scale`, :func:`course_alpha` (their home is :mod:`course_utils.layers`):
  the paper's alpha carried from its raw-pixel inputs to the course's normalised ones;
* :func:`conv1_activations`, :func:`denominator`, :func:`denominator_stats`,
  :func:`divisor_table`, :func:`divisor_sentences`, :func:`plot_divisor_histograms`,
  :func:`lrn_inputs`: the divisor LRN applies, at initialisation and in trained nets;
* :func:`lrn_variants`, :func:`lrn_claims`, :func:`lrn_verdict`:
  the variants of the experiment and what is said about them, from the runs.

The experiment's budget and bounds are row "02" of :mod:`course_utils.budgets`.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import seed_everything
from ..experiment import (difference_text, format_mean_std, gap_reading, paired_differences,
                          verdict_verb)
from ..layers import PAPER_LRN_ALPHA, LocalResponseNorm, LRNError, course_alpha, input_scale
from ..training import capture_outputs

__all__ = ["BASELINE", "BATCHNORM", "PAPER_LRN", "THRESHOLD", "WITH_LRN", "LRNError",
           "check_against_torch", "conv1_activations", "convention_table", "course_alpha",
           "denominator", "denominator_stats", "divisor_sentences", "divisor_table",
           "input_scale", "lateral_inhibition", "lrn_by_hand", "lrn_claims", "lrn_inputs",
           "lrn_variants", "lrn_verdict", "plot_divisor_histograms",
           "plot_feature_maps", "plot_lateral_inhibition"]

#: The paper's hyper-parameters: n, alpha, beta, k.
PAPER_LRN = {"size": 5, "alpha": PAPER_LRN_ALPHA, "beta": 0.75, "k": 2.0}
#: The experiment's variants: the one the others are compared with, LRN, BatchNorm.
BASELINE, WITH_LRN, BATCHNORM = "none", "LRN", "BatchNorm"
#: A position "is normalised" when its divisor exceeds this multiple of the constant k**beta.
THRESHOLD = 1.1


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


# --------------------------------------------------------------------------- the divisor

def denominator(a: torch.Tensor, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                k: float = 2.0) -> torch.Tensor:
    """The LRN divisor at every position (paper convention): ``a / LRN(a)``.

    Parameters
    ----------
    a : Tensor
        Activations shaped (N, C, ...).
    size, alpha, beta, k : number
        LRN's n, alpha, beta and k (alpha not divided by n).

    Returns
    -------
    Tensor
        ``(k + alpha * sum of the squares in the window) ** beta``, shaped like ``a``.
    """
    if a.dim() < 3:
        raise LRNError(f"expected (N, C, ...) activations, got shape {tuple(a.shape)}")
    return LocalResponseNorm(size, alpha, beta, k, convention="paper").divisor(a)


def _divisor_row(a: torch.Tensor, alpha: float, threshold: float, lrn: dict) -> dict:
    params = {**PAPER_LRN, **lrn, "alpha": float(alpha)}
    constant = params["k"] ** params["beta"]
    d = denominator(a, **params).detach().cpu().flatten().double().numpy()
    q = np.quantile(d, [0.5, 0.9, 0.99])
    return {"alpha": float(alpha), "mean activation": float(a.float().abs().mean()),
            "min": float(d.min()), "median": float(q[0]), "90th pct": float(q[1]),
            "99th pct": float(q[2]), "max": float(d.max()),
            f"share > {threshold:g} k^beta": float((d > threshold * constant).mean())}


def divisor_table(cases: Mapping, threshold: float = THRESHOLD, **lrn) -> pd.DataFrame:
    """Quantiles of the LRN divisor, one row per (activations, alpha) case.

    Parameters
    ----------
    cases : mapping
        ``label -> (activations, alpha)``; labels that are tuples give a
        MultiIndex (``("conv1", "alpha 1e-4")``).
    threshold : float
        The last column is the share of positions whose divisor exceeds
        ``threshold * k ** beta``, the divisor of a silent neighbourhood.
    **lrn
        size, beta, k (the paper's unless given).

    Returns
    -------
    DataFrame
        Columns: alpha, mean activation, min, median, 90th pct, 99th pct, max,
        share > threshold k^beta. The quantiles are exact (all positions).
    """
    if not cases:
        raise LRNError("divisor_table needs at least one case")
    if "alpha" in lrn:
        raise LRNError("give each case its own alpha: {label: (activations, alpha)}")
    rows = {label: _divisor_row(a, alpha, threshold, lrn) for label, (a, alpha) in cases.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    if isinstance(table.index, pd.MultiIndex) and table.index.nlevels == 2:
        table.index.names = ["layer", "case"]
    return table


def denominator_stats(named_acts: Mapping[str, torch.Tensor], threshold: float = THRESHOLD,
                      **lrn) -> pd.DataFrame:
    """Quantiles of the LRN divisor on each named activation tensor, one alpha for all.

    With activations near 1 and the paper's alpha the divisor is k ** beta = 1.68
    everywhere: LRN is then a constant rescaling.

    Parameters
    ----------
    named_acts : mapping
        ``name -> activations`` (N, C, ...).
    threshold : float
        See :func:`divisor_table`.
    **lrn
        size, alpha, beta, k (the paper's unless given).

    Returns
    -------
    DataFrame
        :func:`divisor_table`'s columns, one row per name.
    """
    params = {**PAPER_LRN, **lrn}
    alpha = params.pop("alpha")
    return divisor_table({name: (a, alpha) for name, a in named_acts.items()}, threshold,
                         **params)


def divisor_sentences(table: pd.DataFrame, threshold: float = THRESHOLD, acts: float = 0.05,
                      **lrn) -> list[str]:
    """One sentence per row of :func:`divisor_table`, saying whether LRN acts there.

    Parameters
    ----------
    table : DataFrame
        :func:`divisor_table` or :func:`denominator_stats` (same ``threshold``).
    threshold : float
        The multiple of k ** beta that counts as normalised.
    acts : float
        LRN "acts" when at least this share of positions is normalised; below,
        it "hardly acts", or is "the constant k^beta" when even the largest
        divisor is within 1% of it.
    **lrn
        beta, k (the paper's unless given).

    Returns
    -------
    list of str
    """
    params = {**PAPER_LRN, **lrn}
    constant = params["k"] ** params["beta"]
    share_col = f"share > {threshold:g} k^beta"
    lines = []
    for label, row in table.iterrows():
        where = ", ".join(map(str, label)) if isinstance(label, tuple) else str(label)
        share = row[share_col]
        if share >= acts:
            verdict = "LRN acts"
        elif row["max"] <= 1.01 * constant:
            verdict = "the constant k^beta: LRN cannot act"
        else:
            verdict = "LRN hardly acts"
        lines.append(f"{where}: {share:.1%} of positions divided by more than {threshold:g} x "
                     f"k^beta = {threshold * constant:.3f} (median {row['median']:.3f}, "
                     f"99th percentile {row['99th pct']:.3f}): {verdict}.")
    return lines


def plot_divisor_histograms(acts: Mapping[str, torch.Tensor], alphas: Mapping[str, float],
                            threshold: float = THRESHOLD, bins: int = 60, **lrn):
    """Histograms of the LRN divisor (log x and y), one panel per layer, one line per alpha.

    Parameters
    ----------
    acts : mapping
        ``layer -> activations`` (what the LRN layer receives).
    alphas : mapping
        ``label -> alpha``.
    threshold : float
        Marked with a dashed line at ``threshold * k ** beta``.
    bins : int
        Log-spaced bins between k ** beta and the largest divisor.
    **lrn
        size, beta, k (the paper's unless given).

    Returns
    -------
    Figure
    """
    params = {**PAPER_LRN, **lrn}
    params.pop("alpha")
    constant = params["k"] ** params["beta"]
    fig, axes = plt.subplots(1, len(acts), figsize=(5.5 * len(acts), 3.8), squeeze=False)
    for ax, (layer, a) in zip(axes[0], acts.items()):
        divisors = {label: denominator(a, alpha=alpha, **params).detach().cpu().flatten()
                    .double().numpy() for label, alpha in alphas.items()}
        top = max(float(d.max()) for d in divisors.values())
        edges = np.geomspace(constant * 0.99, max(top, constant * 1.2) * 1.01, bins + 1)
        for label, d in divisors.items():
            ax.hist(d, bins=edges, weights=np.full(d.shape, 1.0 / d.size), histtype="step",
                    linewidth=1.8, label=label)
        ax.axvline(constant, color="grey", linewidth=1, label=f"k^beta = {constant:.3f}")
        ax.axvline(threshold * constant, color="grey", linestyle="--", linewidth=1,
                   label=f"{threshold:g} x k^beta")
        ax.set(xscale="log", yscale="log", title=f"{layer}: what LRN divides each position by",
               xlabel="divisor (k + alpha * sum a_j^2) ** beta",
               ylabel="share of positions (log scale)")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def conv1_activations(images: torch.Tensor, pixels: str = "paper", init: str = "paper",
                      seed: int = 0) -> torch.Tensor:
    """conv1 + ReLU of a freshly initialised full-size AlexNet (227x227, one channel).

    Parameters
    ----------
    images : Tensor
        uint8 images, (H, W), (N, H, W) or (N, 1, H, W).
    pixels : {"paper", "normalised"}
        The paper's raw pixels minus the mean pixel, or the course's normalised ones
        (:func:`input_scale` times smaller).
    init : {"paper", "he"}
        N(0, 0.01) weights (the paper's) or He. conv1's bias is 0 in both, so with the
        same ``seed`` the two pixel scales give activations in the ratio
        :func:`input_scale`.
    seed : int
        Seeds the weights.

    Returns
    -------
    Tensor
        (N, 96, 55, 55) activations, what the paper's first LRN receives.
    """
    from ..models import AlexNet

    x = images.reshape(-1, 1, *images.shape[-2:])
    seed_everything(seed)
    net = AlexNet(in_channels=1, pixels=pixels, init=init).eval()
    with torch.no_grad():
        return net.features.act1(net.features.conv1(net.prep(x).contiguous()))


def plot_feature_maps(before: torch.Tensor, after: torch.Tensor, channels=(0, 1, 2, 3),
                      title: str = "conv1 feature maps before and after LRN"):
    """Maps before and after LRN, and what each position was divided by.

    Parameters
    ----------
    before, after : Tensor
        (1, C, H, W) activations and LRN of them.
    channels : sequence of int
        One column per channel.
    title : str

    Returns
    -------
    Figure
        Three rows: before LRN, after LRN (each with its own colour scale), and
        ``before / after`` (blank where the unit is 0).
    """
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


def lrn_inputs(nets, X: torch.Tensor, layers: Mapping[str, str] | None = None,
               batch_size: int = 256) -> dict[str, torch.Tensor]:
    """What the LRN layers of trained nets receive on a batch of images.

    Parameters
    ----------
    nets : net or iterable of nets
        skorch nets (their ``module_``) or modules with ``features.norm1/norm2``;
        the inputs of several nets are concatenated along the batch.
    X : Tensor
        Images as the nets take them (uint8 (N, 1, 28, 28)).
    layers : mapping, optional
        ``label -> layer name in features``; ``{"conv1": "norm1", "conv2": "norm2"}``.
    batch_size : int

    Returns
    -------
    dict
        ``label -> float32 CPU tensor`` (N * nets, C, H, W), the ReLU outputs the
        LRN layers divide.
    """
    layers = dict(layers or {"conv1": "norm1", "conv2": "norm2"})
    if hasattr(nets, "module_") or isinstance(nets, nn.Module):
        nets = [nets]
    nets = list(nets)
    if not nets:
        raise LRNError("lrn_inputs needs at least one net")
    out: dict[str, list] = {label: [] for label in layers}
    for net in nets:
        module = getattr(net, "module_", net)
        missing = [n for n in layers.values() if not hasattr(module.features, n)]
        if missing:
            raise LRNError(f"the net has no features.{', features.'.join(missing)}: "
                           "train it with lrn=True (or batchnorm=True)")
        caught = capture_outputs(module, X, {label: f"features.{name}"
                                             for label, name in layers.items()},
                                 batch_size, inputs=True)
        for label, value in caught.items():
            out[label].append(value)
    return {label: torch.cat(parts) for label, parts in out.items()}


# --------------------------------------------------------------------------- the experiment

def lrn_variants(alpha: float | None = None) -> dict[str, dict]:
    """``run_variants`` variants: no normalisation, LRN, BatchNorm (after conv1 and conv2).

    Parameters
    ----------
    alpha : float, optional
        LRN's alpha; :func:`course_alpha` (the paper's alpha at the course's
        input scale) by default.

    Returns
    -------
    dict
        ``{BASELINE: {}, WITH_LRN: {...}, BATCHNORM: {...}}``.
    """
    alpha = course_alpha() if alpha is None else float(alpha)
    return {BASELINE: {}, WITH_LRN: {"module__lrn": True, "module__lrn_alpha": alpha},
            BATCHNORM: {"module__batchnorm": True}}


def _change(runs: pd.DataFrame, name: str, metric: str = "test_acc") -> dict:
    """``name`` minus the baseline on ``metric``: a :func:`paired_differences` row."""
    return paired_differences(runs, BASELINE, metric).loc[name]


def lrn_claims(runs: pd.DataFrame) -> list[dict]:
    """Rows for :func:`course_utils.experiment.claim_table`: the paper against our runs.

    Parameters
    ----------
    runs : DataFrame
        :func:`course_utils.experiment.run_variants` of :func:`lrn_variants`.

    Returns
    -------
    list of dict
        ``claim``, ``paper``, ``ours``: test error without / with LRN, the change in
        test accuracy from LRN and from BatchNorm, and in the train-valid gap from LRN,
        each as the mean ± std of the seed-by-seed differences with its verdict.
    """
    err = runs.groupby("variant", sort=False)["test_acc"].agg(["mean", "std"])
    missing = {BASELINE, WITH_LRN, BATCHNORM} - set(err.index)
    if missing:
        raise LRNError(f"runs lack variant(s) {sorted(missing)}: run lrn_variants()")

    def error(name):
        return format_mean_std((1 - err.loc[name, "mean"]) * 100, err.loc[name, "std"] * 100, 1)

    def change(name, metric="test_acc"):
        return difference_text(_change(runs, name, metric), digits=2)

    return [
        {"claim": "test error (%) without / with LRN",
         "paper": "CIFAR-10: 13 / 11",
         "ours": f"{error(BASELINE)} / {error(WITH_LRN)}"},
        {"claim": "test accuracy change from LRN (points, seed by seed)",
         "paper": "ImageNet: +1.4 top-1, +1.2 top-5 (error cut by 1.4 / 1.2 points); "
                  "CIFAR-10: +2",
         "ours": change(WITH_LRN)},
        {"claim": "train-valid gap change from LRN (points, seed by seed)",
         "paper": "LRN 'aids generalization' (no gap given)",
         "ours": change(WITH_LRN, "gap")},
        {"claim": "test accuracy change from BatchNorm instead (points, seed by seed)",
         "paper": "n/a (BatchNorm is from 2015)",
         "ours": change(BATCHNORM)},
    ]


def lrn_verdict(runs: pd.DataFrame) -> str:
    """What the runs say about LRN (and BatchNorm), in sentences built from the numbers.

    Parameters
    ----------
    runs : DataFrame
        :func:`course_utils.experiment.run_variants` of :func:`lrn_variants`.

    Returns
    -------
    str
        "LRN raises / lowers / does not change test accuracy (...)", the same for
        BatchNorm, and what the gap's change means (:func:`gap_reading`).
    """
    lines = []
    for name in (WITH_LRN, BATCHNORM):
        d = _change(runs, name)
        lines.append(f"{name} {verdict_verb(d['verdict'], 'raise', 'lower')} test "
                     f"accuracy against no normalisation ({difference_text(d, digits=2)}).")
    gap, valid = _change(runs, WITH_LRN, "gap"), _change(runs, WITH_LRN, "valid_acc")
    lines.append(f"LRN's change in the train-valid gap ({difference_text(gap, digits=2)}): "
                 f"{gap_reading(gap, valid)}.")
    return "\n".join(lines)
