"""Notebook 12: what AlexNet learned (section 6.1 of the paper): filters, feature maps,
neighbours, t-SNE.

The notebook trains its own net (the recipe is the budget row's) and writes the code it
teaches: the callback that keeps conv1's initial kernels W0, the orientation index, the
forward hook that reads fc7, the nearest neighbours and their agreement. This module keeps
the tested copies the notebook checks its code against, and the plumbing:

* conv1's kernels (:func:`conv1_filters`) and what their power spectra show:
  :func:`orientation_index` (0 for an isotropic kernel, 1 for a single orientation) and
  :func:`low_frequency_share`; :func:`filter_table` compares the trained kernels W and the
  change W - W0 with the initial kernels, and :func:`filter_verdict` words the result from
  the numbers. :func:`plot_conv1_filters` draws kernels on one symmetric colour scale.
* Any layer's output through a forward hook (:func:`course_utils.training.capture_outputs`):
  :func:`activations`, :func:`feature_maps`, :func:`plot_feature_maps`, and
  :func:`penultimate_features` (fc7 after its ReLU: Figure 4's feature space).
* Figure 4's neighbours: :func:`nearest_neighbours` (Euclidean, as in the paper),
  :func:`neighbour_agreement`, :func:`plot_neighbours`; :func:`agreement_folds` measures the
  agreement on disjoint folds of the test queries, for fc7 and for raw pixels, so that
  :func:`neighbour_summary` and :func:`neighbour_verdict` can give a spread and a paired
  difference.
* A 2-D map of the same features with t-SNE (scikit-learn): :func:`tsne_embedding`,
  :func:`plot_embedding`; and the claim table, :func:`paper_table`.

The budget (the training recipe, ``gallery``, ``tsne``, ``folds``) and bounds are
``course_utils.budgets.budget("12")``; its images come from :func:`course_utils.data.splits_for`.
Verdicts: :func:`course_utils.experiment.unpaired_test` for the filters (trained and initial
kernels are two samples), :func:`course_utils.experiment.paired_differences` for the folds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import CourseError
from ..experiment import (ALPHA, claim_table, difference_text, format_mean_std,
                          paired_differences, unpaired_test, verdict_verb)
from ..training import capture_outputs, find_layer

__all__ = ["LOW_FREQUENCY", "LayerError", "activations", "agreement_folds",
           "conv1_filters", "feature_maps", "filter_table", "filter_verdict",
           "low_frequency_share", "nearest_neighbours", "neighbour_agreement",
           "neighbour_summary", "neighbour_verdict", "orientation_index", "paper_table",
           "penultimate_features", "plot_conv1_filters", "plot_embedding", "plot_feature_maps",
           "plot_neighbours", "tsne_embedding"]

#: Spatial frequencies at most this many cycles per pixel count as "low" (half of the
#: Nyquist frequency, 0.5). Fashion-MNIST's 28 pixels are stretched to 67 before conv1,
#: so the images themselves hold almost nothing above 0.5 * 28 / 67 = 0.21.
LOW_FREQUENCY = 0.25


class LayerError(CourseError, KeyError):
    """No layer of that name in the model."""

    def __str__(self):  # KeyError would quote the message
        return self.args[0]


def _layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (full dotted name or its last part):
    :func:`course_utils.training.find_layer`, with this notebook's error."""
    try:
        return find_layer(model, name)
    except ValueError as exc:
        raise LayerError(str(exc)) from None


def conv1_filters(model: nn.Module) -> torch.Tensor:
    """The first convolution's kernels, shape (filters, channels, 11, 11), on the CPU."""
    return _layer(model, "conv1").weight.detach().cpu().float().contiguous().clone()


# --------------------------------------------------------------------------- filter spectra

def _power(filters) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Power spectra (mean removed, DC set to 0) of ``filters`` (H, W), (N, H, W) or
    (N, C, H, W), summed over channels; and the frequencies (cycles per pixel)."""
    w = torch.as_tensor(filters).detach().double().cpu()
    if w.dim() == 2:
        w = w[None, None]
    elif w.dim() == 3:
        w = w[:, None]
    if w.dim() != 4:
        raise CourseError(f"expected filters shaped (H, W), (N, H, W) or (N, C, H, W), "
                          f"got {tuple(w.shape)}")
    h, wd = w.shape[-2:]
    w = w - w.mean(dim=(-2, -1), keepdim=True)
    power = (torch.fft.fft2(w).abs() ** 2).sum(dim=1)
    power[:, 0, 0] = 0.0
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None].expand(h, wd)
    fx = torch.fft.fftfreq(wd, dtype=torch.float64)[None, :].expand(h, wd)
    return power, fx, fy


def orientation_index(filters) -> torch.Tensor:
    """How strongly each filter prefers one orientation, from its power spectrum.

    With P(f) the power at spatial frequency f = (fx, fy) (mean removed) and theta(f)
    its direction, the index is ``|sum P(f) exp(2i theta(f))| / sum P(f)``: 0 when the
    power is spread evenly over orientations (a round blob; white noise comes out
    low, not 0), 1 when it all lies along one direction (a pure grating). The angle
    is doubled because f and -f carry the same power for a real filter.

    Parameters
    ----------
    filters : tensor, shape (H, W), (N, H, W) or (N, C, H, W)

    Returns
    -------
    torch.Tensor, shape (N,), float64
        0 for a constant filter (no power at all).
    """
    power, fx, fy = _power(filters)
    theta = torch.atan2(fy, fx)
    total = power.sum(dim=(-2, -1))
    re = (power * torch.cos(2 * theta)).sum(dim=(-2, -1))
    im = (power * torch.sin(2 * theta)).sum(dim=(-2, -1))
    return torch.where(total > 0, torch.hypot(re, im) / total.clamp_min(1e-300),
                       torch.zeros_like(total))


def low_frequency_share(filters, cutoff: float = LOW_FREQUENCY) -> torch.Tensor:
    """Share of each filter's power (mean removed) at spatial frequencies ``|f| <= cutoff``
    cycles per pixel. White noise on an 11x11 kernel gives the share of frequency bins
    below the cutoff (0.167 at 0.25); a smooth kernel comes close to 1.

    Returns
    -------
    torch.Tensor, shape (N,), float64
    """
    power, fx, fy = _power(filters)
    low = (torch.hypot(fx, fy) <= cutoff).double()
    total = power.sum(dim=(-2, -1))
    return torch.where(total > 0, (power * low).sum(dim=(-2, -1)) / total.clamp_min(1e-300),
                       torch.zeros_like(total))


_MEASURES = {"orientation index": orientation_index, "low-frequency share": low_frequency_share}


def filter_table(trained: torch.Tensor, initial: torch.Tensor, alpha: float = ALPHA
                 ) -> pd.DataFrame:
    """The orientation index and low-frequency share of the trained kernels, of the
    initial ones, and of the change ``trained - initial``, compared with the initial.

    Parameters
    ----------
    trained, initial : torch.Tensor, shape (N, C, H, W)
        conv1's kernels after training (W), and at initialisation (W0).
    alpha : float
        Level of the two-sided Welch t-test (:func:`course_utils.experiment.unpaired_test`:
        the trained and initial kernels are two samples) that says "higher" or "lower"
        (else "inside the noise").

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(measure, kernels)`` with kernels "trained W", "change W - W0" and
        "initial W0": the mean and std over the filters, the difference of means to the
        initial kernels with its standard error, t, p and verdict, and how many filters
        lie above the initial kernels' 95th percentile (``above init p95``; about 5% of
        the filters by chance).
    """
    sets = {"trained W": trained, "change W - W0": trained - initial, "initial W0": initial}
    rows = []
    for measure, fn in _MEASURES.items():
        ref = fn(initial).numpy()
        p95 = float(np.percentile(ref, 95))
        for name, w in sets.items():
            v = fn(w).numpy()
            d = unpaired_test(v, ref, alpha)
            rows.append({"measure": measure, "kernels": name, "filters": len(v),
                         "mean": float(v.mean()), "std": float(v.std(ddof=1)),
                         "diff vs init": d["mean"], "se": d["std"], "t": d["t"], "p": d["p"],
                         "verdict": "(reference)" if name == "initial W0" else d["verdict"],
                         "above init p95": int((v > p95).sum())})
    return pd.DataFrame(rows).set_index(["measure", "kernels"])


def _difference(row: pd.Series, diff: str, spread: str, n: str) -> str:
    """:func:`course_utils.experiment.difference_text` of a table row whose ``mean`` is not
    the difference, counting ``n`` (filters, folds) where it counts seeds."""
    d = {"mean": row[diff], "std": row[spread], "seeds": row[n], "p": row["p"],
         "verdict": row["verdict"], "paired": n == "folds"}
    return difference_text(d, scale=100 if n == "folds" else 1,
                           digits=1 if n == "folds" else 3,
                           unit="points" if n == "folds" else "", count=n)


def filter_verdict(table: pd.DataFrame) -> str:
    """What the conv1 figure shows, in sentences chosen from :func:`filter_table`'s values.

    Returns
    -------
    str
        One line on orientation and one on smoothness, for the trained kernels and for
        what training changed, then one line that says whether conv1 formed oriented
        filters.
    """
    def ms(measure, kernels):
        row = table.loc[(measure, kernels)]
        return format_mean_std(row["mean"], row["std"], 3)

    def above(measure, kernels):
        row = table.loc[(measure, kernels)]
        return f"{int(row['above init p95'])} of {int(row['filters'])}"

    lines = []
    o, lf = "orientation index", "low-frequency share"
    kinds = ("trained W", "change W - W0")
    subjects = ("the trained conv1 filters", "what training changed (W - W0)")
    for kernels, subject in zip(kinds, subjects):
        lines.append(f"Orientation index of {subject} against the initial filters (noise): "
                     f"{ms(o, kernels)} against {ms(o, 'initial W0')} "
                     f"({_difference(table.loc[(o, kernels)], 'diff vs init', 'se', 'filters')}; "
                     f"{above(o, kernels)} filters above the initial filters' 95th percentile, "
                     "about 5% by chance).")
    for kernels, subject in zip(kinds, subjects):
        lines.append(f"Share of the power at spatial frequencies up to {LOW_FREQUENCY} "
                     f"cycles/pixel (smoothness) of {subject}: {ms(lf, kernels)} against "
                     f"{ms(lf, 'initial W0')} at initialisation "
                     f"({_difference(table.loc[(lf, kernels)], 'diff vs init', 'se', 'filters')}).")
    if table.loc[(o, "trained W"), "verdict"] == "higher":
        lines.append("So conv1 formed oriented filters in this run: the trained kernels W "
                     "themselves are more oriented than their random start.")
    elif table.loc[(o, "change W - W0"), "verdict"] == "higher":
        lines.append("So conv1 did not form filters that show in W: what training added "
                     "(W - W0) is oriented, but W is no more oriented than its random start, "
                     "which it still carries.")
    else:
        lines.append("So conv1 did not form oriented filters in this run: neither W nor what "
                     "training added (W - W0) is more oriented than noise.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- feature maps

def activations(model: nn.Module, X: torch.Tensor, layer: str,
                batch_size: int = 256) -> torch.Tensor:
    """The output of one layer for every image of ``X``, in eval mode, caught by
    :func:`course_utils.training.capture_outputs` (a forward hook while the model runs
    batch by batch; the model's mode is restored after).

    Parameters
    ----------
    model : nn.Module
        The network (``net.module_``).
    X : torch.Tensor
        Images.
    layer : str
        A layer name such as ``"act1"``, ``"pool2"`` or ``"act7"`` (or its full
        dotted name).
    batch_size : int

    Returns
    -------
    torch.Tensor
        float32, on the CPU, one row per image.
    """
    return capture_outputs(model, X, {layer: _layer(model, layer)}, batch_size)[layer]


def feature_maps(model: nn.Module, image: torch.Tensor, layer: str = "act1") -> torch.Tensor:
    """The maps that ``layer`` produces for one image.

    Parameters
    ----------
    model : nn.Module
    image : torch.Tensor, shape (1, 28, 28)
    layer : str
        As for :func:`activations`.

    Returns
    -------
    torch.Tensor, shape (channels, H, W)
    """
    if image.dim() != 3:
        raise CourseError(f"expected one image shaped (C, H, W), got {tuple(image.shape)}")
    return activations(model, image[None], layer)[0]


def penultimate_features(model: nn.Module, X: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The last hidden layer (fc7 after its ReLU): the paper's Figure 4 feature space.

    Returns
    -------
    torch.Tensor, shape (N, hidden)
    """
    return activations(model, X, "act7", batch_size)


# --------------------------------------------------------------------------- neighbours

def nearest_neighbours(queries: torch.Tensor, gallery: torch.Tensor, k: int = 5,
                       chunk: int = 1024) -> torch.Tensor:
    """The ``k`` gallery rows closest to each query row (Euclidean).

    Parameters
    ----------
    queries, gallery : torch.Tensor
        Feature vectors or whole images (flattened here), one per row.
    k : int
    chunk : int
        Queries per distance matrix (bounds the memory).

    Returns
    -------
    torch.Tensor, shape (Q, k)
        Gallery indices, nearest first.
    """
    q, g = queries.flatten(1).float(), gallery.flatten(1).float()
    if q.shape[1] != g.shape[1]:
        raise CourseError(f"queries have {q.shape[1]} values per row, the gallery {g.shape[1]}")
    if not 1 <= k <= len(g):
        raise CourseError(f"k must be between 1 and the gallery size {len(g)}, got {k}")
    return torch.cat([torch.cdist(q[i:i + chunk], g).topk(k, largest=False).indices
                      for i in range(0, len(q), chunk)])


def neighbour_agreement(idx: torch.Tensor, y_query: torch.Tensor, y_gallery: torch.Tensor) -> float:
    """Share of the neighbours whose label equals their query's.

    Parameters
    ----------
    idx : torch.Tensor, shape (Q, k)
        From :func:`nearest_neighbours`.
    y_query, y_gallery : torch.Tensor
        Labels.

    Returns
    -------
    float
    """
    return float((torch.as_tensor(y_gallery)[idx] == torch.as_tensor(y_query)[:, None])
                 .float().mean())


def agreement_folds(neighbours: dict, y_query, y_gallery, folds: int = 5,
                    seed: int = 0) -> pd.DataFrame:
    """:func:`neighbour_agreement` of each feature space on disjoint folds of the queries.

    The queries are shuffled once (``seed``) and cut into ``folds`` parts of equal size
    (up to one); every space is scored on the same folds, so the folds pair up.

    Parameters
    ----------
    neighbours : dict
        Space name (``"fc7"``, ``"pixel"``) -> :func:`nearest_neighbours` indices.
    y_query, y_gallery : torch.Tensor
        Labels.
    folds : int
    seed : int

    Returns
    -------
    pandas.DataFrame
        One row per (space, fold): ``variant`` (the space), ``fold``, ``queries``,
        ``agreement``.
    """
    y_query = torch.as_tensor(y_query)
    n = len(y_query)
    if not 2 <= folds <= n:
        raise CourseError(f"folds must be between 2 and the {n} queries, got {folds}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    parts = torch.tensor_split(order, folds)
    rows = [{"variant": name, "fold": f, "queries": len(part),
             "agreement": neighbour_agreement(idx[part], y_query[part], y_gallery)}
            for name, idx in neighbours.items() for f, part in enumerate(parts)]
    return pd.DataFrame(rows)


def neighbour_summary(folds: pd.DataFrame, baseline: str = "pixel",
                      alpha: float = ALPHA) -> pd.DataFrame:
    """Mean and std over the folds of each space's agreement, and its paired difference
    to ``baseline`` fold by fold with the course's paired t-test at level ``alpha``
    (:func:`course_utils.experiment.paired_differences`).

    Returns
    -------
    pandas.DataFrame
        One row per space: ``folds``, ``mean``, ``std``, ``diff_mean``, ``diff_std``,
        ``t``, ``p``, ``verdict`` (the baseline's difference columns are empty).
    """
    g = folds.groupby("variant", sort=False)["agreement"]
    out = pd.DataFrame({"folds": g.size(), "mean": g.mean(), "std": g.std(ddof=1)})
    runs = folds.rename(columns={"fold": "seed"})
    diff = paired_differences(runs, baseline, "agreement", alpha)
    out = out.join(diff[["diff_mean", "diff_std", "t", "p", "verdict"]])
    out.index.name = "space"
    return out


def neighbour_verdict(summary: pd.DataFrame, space: str = "fc7", baseline: str = "pixel") -> str:
    """Which neighbours share the query's class more often, in one sentence chosen from
    :func:`neighbour_summary`'s values."""
    row, base = summary.loc[space], summary.loc[baseline]
    return (f"{space.capitalize()} distance {verdict_verb(row['verdict'], 'raise', 'lower')} the "
            f"share of neighbours in the query's class over {baseline} distance: "
            f"{format_mean_std(row['mean'], row['std'])} of the {space} neighbours against "
            f"{format_mean_std(base['mean'], base['std'])} of the {baseline} neighbours; "
            f"{space} - {baseline} on folds of the test queries: "
            f"{_difference(row, 'diff_mean', 'diff_std', 'folds')}"
            + (", as the paper's Figure 4 suggests." if row["verdict"] == "higher" else "."))


def tsne_embedding(features: torch.Tensor, seed: int = 0, perplexity: float = 30.0,
                   threads: int | None = 1) -> np.ndarray:
    """A 2-D t-SNE map of ``features`` (scikit-learn, PCA initialisation).

    Parameters
    ----------
    features : torch.Tensor, shape (N, ...)
    seed : int
    perplexity : float
        Capped at a third of the points.
    threads : int or None
        OpenMP/BLAS threads scikit-learn may use (None: its default). One by default:
        on the course's busy 2-core CPU, next to PyTorch's own OpenMP threads, two made
        t-SNE of 200 points take 39 s instead of 0.6 s (measured).

    Returns
    -------
    numpy.ndarray, shape (N, 2)
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = features.flatten(1).numpy().astype(np.float32)
    perplexity = min(perplexity, max(2.0, (len(x) - 1) / 3))
    with threadpool_limits(limits=threads):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                    learning_rate="auto").fit_transform(x)


# --------------------------------------------------------------------------- plots

def plot_conv1_filters(filters, title: str = "conv1 filters (as in the paper's Figure 3)",
                       scale: str = "shared", limit: float | None = None,
                       cols: int | None = None, fig=None):
    """Every conv1 kernel as a small image, on a symmetric diverging colour scale
    (white 0, red positive, blue negative).

    Parameters
    ----------
    filters : nn.Module or torch.Tensor, shape (N, C, H, W)
        A model (its conv1 is shown) or the kernels themselves (e.g. W - W0).
    title : str
    scale : {"shared", "per-filter"}
        ``"shared"``: one scale for all kernels, saturating at the largest |w| of
        all of them, so that kernels can be compared; ``"per-filter"``: each kernel
        saturates at its own largest |w|, so that weak kernels show their pattern.
    limit : float, optional
        The shared scale's saturation (default: the largest |w|); give two figures the
        same limit to compare them.
    cols : int, optional
        Kernels per row (default 12 when it divides N, else 8).
    fig : matplotlib Figure or SubFigure, optional
        Where to draw (``fig.subfigures(1, 2)`` puts two sets of kernels side by side);
        default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure or SubFigure
    """
    import matplotlib.pyplot as plt

    if scale not in ("shared", "per-filter"):
        raise CourseError(f"scale must be 'shared' or 'per-filter', got {scale!r}")
    w = conv1_filters(filters) if isinstance(filters, nn.Module) else \
        torch.as_tensor(filters).detach().float().cpu()
    if w.dim() == 3:
        w = w[:, None]
    n = len(w)
    cols = cols or (12 if n % 12 == 0 else 8)
    rows = -(-n // cols)
    own = fig is None
    if own:
        fig = plt.figure(figsize=(cols * 0.75, rows * 0.8 + 0.7))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
    shared = float(limit) if limit else (float(w.abs().max()) or 1.0)
    image = None
    for ax, k in zip(axes.flat, w):
        limit = shared if scale == "shared" else (float(k.abs().max()) or 1.0)
        pic = k.mean(0) if k.shape[0] != 3 else k.permute(1, 2, 0)
        if k.shape[0] == 3:  # colour kernels as in the paper: 0 maps to mid-grey
            ax.imshow((pic / (2 * limit) + 0.5).clamp(0, 1).numpy())
        else:
            image = ax.imshow(pic.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    how = (f"one colour scale for all, ±{shared:.3g}" if scale == "shared"
           else "each kernel on its own symmetric scale")
    fig.suptitle(f"{title}\n({how}; white = 0)", fontsize=10)
    if own:
        fig.tight_layout()
    if image is not None and scale == "shared":
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, pad=0.01)
    return fig


def plot_feature_maps(maps: torch.Tensor, n: int = 16, title: str = "Feature maps",
                      image: torch.Tensor | None = None):
    """The first ``n`` maps (channels, H, W), after the input ``image`` if given."""
    import matplotlib.pyplot as plt

    n = min(n, len(maps))
    extra = image is not None
    cols = 8
    rows = -(-(n + extra) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.2 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    panels = ([("input", image[0].float())] if extra else []) + \
             [(f"channel {i}", maps[i]) for i in range(n)]
    for ax, (name, m) in zip(axes.flat, panels):
        ax.imshow(m.numpy(), cmap="gray_r" if name == "input" else "viridis")
        ax.set_title(name, fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_neighbours(queries: torch.Tensor, gallery: torch.Tensor, idx: torch.Tensor,
                    classes=None, y_query=None, y_gallery=None,
                    title: str = "Nearest neighbours in fc7 space (as in Figure 4)"):
    """Each row: a query image, then its neighbours ``idx`` from ``gallery``, each titled
    with its class name in full. Neighbours of another class get a red title."""
    import matplotlib.pyplot as plt

    q, k = idx.shape
    fig, axes = plt.subplots(q, k + 1, figsize=(1.3 * (k + 1), 1.4 * q + 0.5), squeeze=False)
    for r in range(q):
        imgs = [queries[r]] + [gallery[j] for j in idx[r]]
        labels = ([y_query[r]] + [y_gallery[j] for j in idx[r]]) if y_query is not None else None
        for c, img in enumerate(imgs):
            ax = axes[r, c]
            ax.imshow(img[0].numpy(), cmap="gray_r")
            ax.set_xticks([]), ax.set_yticks([])
            if labels is not None and classes is not None:
                same = int(labels[c]) == int(labels[0])
                ax.set_title(classes[int(labels[c])], fontsize=8,
                             color="black" if same else "red")
        axes[r, 0].set_ylabel("query", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_embedding(embedding: np.ndarray, y, classes, title: str = "t-SNE of fc7 features"):
    """Scatter plot of a 2-D embedding coloured by class, with a legend of the full class
    names in columns below the axes (inside the figure)."""
    import matplotlib.pyplot as plt

    y = np.asarray(y)
    fig, ax = plt.subplots(figsize=(7.5, 6.5), layout="constrained")
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(classes):
        pts = embedding[y == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, color=cmap(c % 10), label=name, alpha=0.8)
    ax.set_title(title)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center",
               ncol=min(5, max(1, len(classes))), markerscale=2, fontsize=9, frameon=False)
    return fig


# --------------------------------------------------------------------------- the claims

def paper_table(filters: pd.DataFrame, neighbours: pd.DataFrame, k: int, gallery: int,
                profile: str = "", device: str = "", r_init: float | None = None):
    """The paper's section 6.1, measured.

    Parameters
    ----------
    filters : pandas.DataFrame
        :func:`filter_table` of the net's conv1 kernels.
    neighbours : pandas.DataFrame
        :func:`neighbour_summary` (spaces "fc7" and "pixel").
    k : int
        Neighbours per query.
    gallery : int
        Training images searched.
    profile, device : str
        Where ours was measured; empty: the current profile and device.
    r_init : float, optional
        The correlation of the trained kernels W with their initial values W0.

    Returns
    -------
    pandas.DataFrame
        One row per claim.
    """
    o = filters.xs("orientation index")
    lf = filters.xs("low-frequency share")
    fc7, pix = neighbours.loc["fc7"], neighbours.loc["pixel"]
    rows = [
        {"claim": "conv1 learns frequency- and orientation-selective kernels",
         "paper": "Figure 3: 96 kernels, oriented edges and gratings, colour blobs (qualitative)",
         "ours": ("orientation index "
                  f"{format_mean_std(o.loc['trained W', 'mean'], o.loc['trained W', 'std'])}"
                  " trained vs "
                  f"{format_mean_std(o.loc['initial W0', 'mean'], o.loc['initial W0', 'std'])}"
                  f" at init ({o.loc['trained W', 'verdict']}); low-frequency share "
                  f"{lf.loc['trained W', 'mean']:.3f} vs {lf.loc['initial W0', 'mean']:.3f} "
                  f"({lf.loc['trained W', 'verdict']})"
                  + ("" if r_init is None else
                     f"; W correlates {r_init:.3f} with its initial values W0"))},
        {"claim": "images close in the last hidden layer share the query's class",
         "paper": "Figure 4: the 6 nearest training images share the query's class (qualitative)",
         "ours": (f"{format_mean_std(fc7['mean'], fc7['std'])} of the {k} nearest of "
                  f"{gallery:,} training images in fc7 space ({int(fc7['folds'])} folds)")},
        {"claim": "those neighbours are often not close in pixel (L2) space",
         "paper": "qualitative ('not close in L2')",
         "ours": (f"{format_mean_std(pix['mean'], pix['std'])} in pixel space; fc7 - pixel "
                  f"{_difference(fc7, 'diff_mean', 'diff_std', 'folds')}")},
    ]
    return claim_table(rows, profile, device).reset_index()
