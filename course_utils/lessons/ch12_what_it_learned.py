"""Notebook 12: what AlexNet learned (section 6.1 of the paper): filters, feature maps,
neighbours, t-SNE.

* Figure 3 shows the 96 conv1 kernels: :func:`plot_conv1_filters`.
* Feature maps of one image at any layer: :func:`feature_maps`, :func:`plot_feature_maps`.
* Figure 4 finds, for test images, the training images whose last hidden layer
  (fc7, 4096 values in the paper, 128 in the small net) is closest in Euclidean
  distance: :func:`penultimate_features`, :func:`nearest_neighbours`,
  :func:`plot_neighbours`. :func:`neighbour_agreement` puts a number on the
  paper's observation that those neighbours share the query's class even when
  their pixels differ.
* A 2-D map of the same features with t-SNE (scikit-learn): :func:`tsne_embedding`.

The budget (with ``gallery`` and ``tsne`` sizes) and bounds are
``course_utils.budgets.budget("12")``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import CourseError
from ..experiment import claim_table
from ..training import batched_outputs

__all__ = ["LayerError", "activations", "conv1_filters", "feature_maps", "nearest_neighbours",
           "neighbour_agreement", "paper_table", "penultimate_features", "plot_conv1_filters",
           "plot_embedding", "plot_feature_maps", "plot_neighbours", "tsne_embedding"]


class LayerError(CourseError, KeyError):
    """No layer of that name in the model."""

    def __str__(self):  # KeyError would quote the message
        return self.args[0]


def _layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (full dotted name or its last part)."""
    modules = dict(model.named_modules())
    short = {n.rsplit(".", 1)[-1]: m for n, m in modules.items() if n}
    if name in modules and name:
        return modules[name]
    if name in short:
        return short[name]
    names = [n.rsplit(".", 1)[-1] for n in modules if n.startswith(("features.", "classifier."))]
    raise LayerError(f"no layer {name!r} in this model; choose one of {', '.join(names)}")


def conv1_filters(model: nn.Module) -> torch.Tensor:
    """The first convolution's kernels, shape (filters, channels, 11, 11), on the CPU."""
    return _layer(model, "conv1").weight.detach().cpu().clone()


@torch.no_grad()
def activations(model: nn.Module, X: torch.Tensor, layer: str,
                batch_size: int = 256) -> torch.Tensor:
    """The output of one layer for every image of ``X``, in eval mode.

    A forward hook catches the layer's output while
    :func:`course_utils.training.batched_outputs` runs the model batch by batch.

    Parameters
    ----------
    model : nn.Module
        The network (``net.module_``); left in eval mode.
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
    module = _layer(model, layer)
    model.eval()
    caught: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, i, o: caught.append(o.detach()))
    try:
        return batched_outputs(model, X, batch_size, fn=lambda _logits: caught.pop())
    finally:
        handle.remove()


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


def nearest_neighbours(queries: torch.Tensor, gallery: torch.Tensor, k: int = 5) -> torch.Tensor:
    """The ``k`` gallery rows closest to each query row (Euclidean).

    Parameters
    ----------
    queries, gallery : torch.Tensor
        Feature vectors or whole images (flattened here), one per row.
    k : int

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
    return torch.cdist(q, g).topk(k, largest=False).indices


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


def tsne_embedding(features: torch.Tensor, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """A 2-D t-SNE map of ``features`` (scikit-learn, PCA initialisation).

    Parameters
    ----------
    features : torch.Tensor, shape (N, ...)
    seed : int
    perplexity : float
        Capped at a third of the points.

    Returns
    -------
    numpy.ndarray, shape (N, 2)
    """
    from sklearn.manifold import TSNE

    x = features.flatten(1).numpy().astype(np.float32)
    perplexity = min(perplexity, max(2.0, (len(x) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto").fit_transform(x)


# --------------------------------------------------------------------------- plots

def plot_conv1_filters(model: nn.Module, title: str = "conv1 filters (as in the paper's Figure 3)"):
    """Every conv1 kernel as a small image, each scaled to its own range."""
    import matplotlib.pyplot as plt

    w = conv1_filters(model)
    n = len(w)
    cols = 12 if n % 12 == 0 else 8
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.75, rows * 0.8 + 0.5))
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    for ax, k in zip(axes.flat, w):
        k = (k - k.min()) / (k.max() - k.min() + 1e-12)
        if k.shape[0] == 3:
            ax.imshow(k.permute(1, 2, 0).numpy())
        else:
            ax.imshow(k[0].numpy(), cmap="gray")
    fig.suptitle(title)
    fig.tight_layout()
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
    """Each row: a query image, then its neighbours ``idx`` from ``gallery``.
    Neighbours of another class get a red title."""
    import matplotlib.pyplot as plt

    q, k = idx.shape
    fig, axes = plt.subplots(q, k + 1, figsize=(1.1 * (k + 1), 1.25 * q + 0.4), squeeze=False)
    for r in range(q):
        imgs = [queries[r]] + [gallery[j] for j in idx[r]]
        labels = ([y_query[r]] + [y_gallery[j] for j in idx[r]]) if y_query is not None else None
        for c, img in enumerate(imgs):
            ax = axes[r, c]
            ax.imshow(img[0].numpy(), cmap="gray_r")
            ax.set_xticks([]), ax.set_yticks([])
            if labels is not None and classes is not None:
                same = int(labels[c]) == int(labels[0])
                ax.set_title(classes[int(labels[c])][:9], fontsize=7,
                             color="black" if same else "red")
        axes[r, 0].set_ylabel("query", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_embedding(embedding: np.ndarray, y, classes, title: str = "t-SNE of fc7 features"):
    """Scatter plot of a 2-D embedding coloured by class, with a legend."""
    import matplotlib.pyplot as plt

    y = np.asarray(y)
    fig, ax = plt.subplots(figsize=(7, 5.5))
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(classes):
        pts = embedding[y == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, color=cmap(c % 10), label=name, alpha=0.8)
    ax.set_title(title)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.legend(markerscale=2, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def paper_table(agree_features: float, agree_pixels: float, k: int, profile: str = "",
                device: str = ""):
    """Figure 4's observation, measured: neighbours in fc7 space share the query's class
    more often than neighbours in pixel space.

    Parameters
    ----------
    agree_features, agree_pixels : float
        From :func:`neighbour_agreement`.
    k : int
        Neighbours per query.
    profile, device : str
        Where ours was measured; empty: the current profile and device.

    Returns
    -------
    pandas.DataFrame
        One row per claim.
    """
    rows = [
        {"claim": "images close in the last hidden layer are similar to the network",
         "paper": "Figure 4: the 6 nearest training images share the query's class (qualitative)",
         "ours": f"{agree_features:.3f} of the {k} nearest in fc7 space share the class"},
        {"claim": "those neighbours are often not close in pixel (L2) space",
         "paper": "qualitative ('not close in L2')",
         "ours": f"{agree_pixels:.3f} of the {k} nearest in pixel space share the class"},
    ]
    return claim_table(rows, profile, device).reset_index()
