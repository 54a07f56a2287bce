"""Notebook 08: data augmentation the AlexNet way, on whole batches of tensors (section 4.1).

The paper enlarged its training set 2048-fold with two cheap, label-preserving
transformations computed on the CPU while the GPU trained:

1. **random crops and horizontal flips**: 224x224 patches cut at random from the
   256x256 images, each mirrored with probability 1/2. Scaled to Fashion-MNIST:
   28x28 patches cut from the image padded to 32x32;
2. **"fancy PCA" colour augmentation**: add to every pixel of an image a
   multiple of the principal components of the RGB pixel values, with
   magnitudes proportional to the eigenvalues times a random
   ``alpha ~ N(0, 0.1)`` drawn once per image (:class:`FancyPCA`). With one
   grey channel there is one component, and the same recipe becomes a random
   brightness shift proportional to the pixels' spread.

Notebook 08 writes the crop, the flip and the fancy PCA in its cells and asserts
that they agree with the package's copies: :func:`course_utils.layers.random_crop`,
:func:`~course_utils.layers.random_flip` and :func:`~course_utils.layers.gray_lighting`
(which :class:`course_utils.models.AugmentedAlexNetSmall` applies to each training batch)
and :class:`FancyPCA` here, for colour photos. This module keeps the rest of the
lesson's plumbing: the comparisons and their verdicts (:func:`augmentation_differences`,
:func:`curve_changes`, :func:`augmentation_verdict`, :func:`paper_table`) and the
figures. The budget, the variants compared and the bounds are
``course_utils.budgets.budget("08")``.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from ..experiment import (claim_table, difference_text, format_diff, format_mean_std,
                          gap_reading, paired_table, paired_test, summarize_runs, verdict_verb)
from ..layers import PAPER_ALPHA_STD, AugmentError, check_batch, to_float

__all__ = ["COMPARISONS", "VARIANT_NAMES", "FancyPCA", "augmentation_differences",
           "augmentation_verdict", "curve_changes", "distinct_patches", "paper_table",
           "plot_augmentations", "plot_fancy_pca"]

#: The comparisons of the experiment: (variant, baseline it is paired with). Each
#: ingredient is compared with the variant without it, as the paper added lighting on top
#: of crops and flips.
COMPARISONS = (("crops + flips", "none"), ("crops + flips + lighting", "crops + flips"))
#: The variants the budget's ``augmentations`` setting may name.
VARIANT_NAMES = ("none", "crops + flips", "crops + flips + lighting")


class FancyPCA:
    """The paper's colour augmentation: to every pixel ``[R, G, B]`` of an image add

    ``[p1, p2, p3] @ [a1 * s1, a2 * s2, a3 * s3]``

    where ``p_i`` are the eigenvectors of the 3x3 covariance of RGB pixel values
    over the training set, ``a_i ~ N(0, alpha_std)`` is drawn once per image per
    training pass, and ``s_i`` is the size of the component.

    The paper writes ``s_i = lambda_i`` (the eigenvalue, a variance). Its
    magnitude then depends on whether pixels are 0-255 or 0-1, so common
    implementations (Caffe ports, fb.resnet.torch) use ``sqrt(lambda_i)``, the
    standard deviation along the component, which is in pixel units whatever the
    scale. ``scale="std"`` (default) does that, ``scale="eigenvalue"`` is the literal
    formula.

    Pixels are floats in [0, 1] (uint8 is converted); the result is clipped to [0, 1].

    Parameters
    ----------
    eigenvalues : array-like, shape (C,)
        Variances along the principal components, largest first.
    eigenvectors : array-like, shape (C, C)
        The components, one per column.
    alpha_std : float
        Standard deviation of the random coefficients (the paper: 0.1).
    scale : {"std", "eigenvalue"}
        ``s_i`` as ``sqrt(lambda_i)`` or as ``lambda_i``.
    """

    def __init__(self, eigenvalues, eigenvectors, alpha_std: float = PAPER_ALPHA_STD,
                 scale: str = "std"):
        if scale not in ("std", "eigenvalue"):
            raise AugmentError(f"scale must be 'std' or 'eigenvalue', got {scale!r}")
        self.eigenvalues = torch.as_tensor(eigenvalues, dtype=torch.float32)
        self.eigenvectors = torch.as_tensor(eigenvectors, dtype=torch.float32)
        c = self.eigenvalues.numel()
        if self.eigenvectors.shape != (c, c):
            raise AugmentError(f"need a {c}x{c} eigenvector matrix for {c} eigenvalues, "
                               f"got {tuple(self.eigenvectors.shape)}")
        self.alpha_std = float(alpha_std)
        self.scale = scale

    @classmethod
    def fit(cls, images, alpha_std: float = PAPER_ALPHA_STD, scale: str = "std",
            max_pixels: int = 1_000_000, seed: int = 0) -> "FancyPCA":
        """Fit the PCA to the pixel values of ``images``.

        Parameters
        ----------
        images : array-like or torch.Tensor
            A batch (N, C, H, W), or one image (H, W, C) as NumPy/skimage gives it.
        alpha_std, scale
            As for the constructor.
        max_pixels : int
            At most this many pixels, drawn at random with ``seed``, are used.
        seed : int
            Seed of that draw.

        Returns
        -------
        FancyPCA
        """
        x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
        if x.dim() == 3 and x.shape[-1] in (1, 3) and x.shape[0] not in (1, 3):
            x = x.permute(2, 0, 1)[None]  # one H x W x C image
        elif x.dim() == 3:
            x = x[None]
        check_batch(x)
        pixels = to_float(x).permute(1, 0, 2, 3).reshape(x.shape[1], -1).double()
        if pixels.shape[1] > max_pixels:
            g = torch.Generator().manual_seed(seed)
            pixels = pixels[:, torch.randperm(pixels.shape[1], generator=g)[:max_pixels]]
        if pixels.shape[1] < 2:
            raise AugmentError("need at least two pixels to estimate a covariance")
        cov = torch.atleast_2d(torch.cov(pixels))
        vals, vecs = torch.linalg.eigh(cov)  # ascending
        order = torch.argsort(vals, descending=True)
        return cls(vals[order].clamp_min(0).float(), vecs[:, order].float(), alpha_std, scale)

    @property
    def channels(self) -> int:
        """Number of colour channels (components)."""
        return self.eigenvalues.numel()

    def magnitudes(self) -> torch.Tensor:
        """``s_i``: sqrt(eigenvalue) or the eigenvalue, depending on ``scale``."""
        return self.eigenvalues.sqrt() if self.scale == "std" else self.eigenvalues

    def shift(self, alphas: torch.Tensor) -> torch.Tensor:
        """The per-image colour offset (N, C) for coefficients ``alphas`` (N, C)."""
        dev = alphas.device
        return (alphas * self.magnitudes().to(dev)) @ self.eigenvectors.to(dev).T

    def __call__(self, x: torch.Tensor, alphas: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Shift the colours of every image of ``x``.

        Parameters
        ----------
        x : torch.Tensor, shape (N, C, H, W)
            uint8 or float pixels.
        alphas : torch.Tensor, shape (N, C), optional
            The coefficients; drawn from ``N(0, alpha_std)`` when not given.
        generator : torch.Generator, optional
            Source of the random draws.

        Returns
        -------
        torch.Tensor
            Float images in [0, 1].
        """
        check_batch(x)
        if x.shape[1] != self.channels:
            raise AugmentError(f"this PCA was fitted on {self.channels}-channel pixels, "
                               f"the batch has {x.shape[1]} channels")
        x = to_float(x)
        if alphas is None:
            alphas = torch.randn(x.shape[0], self.channels, generator=generator) * self.alpha_std
        alphas = torch.as_tensor(alphas, dtype=x.dtype).to(x.device)
        return (x + self.shift(alphas)[:, :, None, None]).clamp_(0.0, 1.0)

    def __repr__(self) -> str:
        vals = ", ".join(f"{v:.4g}" for v in self.eigenvalues.tolist())
        return f"FancyPCA(eigenvalues=[{vals}], alpha_std={self.alpha_std}, scale={self.scale!r})"


def distinct_patches(side: int, crop_side: int, flips: bool = True) -> int:
    """How many different training patches one image yields: positions x mirrors.

    Parameters
    ----------
    side, crop_side : int
        Side of the (padded) image and of the patch.
    flips : bool
        Count each patch's mirror image too.
    """
    return (side - crop_side + 1) ** 2 * (2 if flips else 1)


def _comparisons(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """The :data:`COMPARISONS` whose two variants are both in ``runs``."""
    have = set(runs["variant"])
    return [(v, b) for v, b in COMPARISONS if v in have and b in have]


def augmentation_differences(runs: pd.DataFrame) -> pd.DataFrame:
    """Each ingredient against the variant without it, seed by seed.

    Crops and flips are compared with no augmentation; lighting with crops and
    flips alone (it is added on top of them, as in the paper); a comparison whose
    variants were not both run is left out. Validation accuracy, test accuracy and the
    train - valid gap are each judged by the course's two-sided paired t-test
    (:func:`course_utils.experiment.paired_differences` through
    :func:`~course_utils.experiment.paired_table`).

    Parameters
    ----------
    runs : DataFrame
        :func:`course_utils.experiment.run_variants` over the budget's variants.

    Returns
    -------
    DataFrame
        Indexed by ``(metric, variant)``, with the ``baseline`` each variant is
        paired with, the mean and std of the per-seed differences (fractions:
        x100 for points), t, p and the verdict.
    """
    parts = []
    for variant, baseline in _comparisons(runs):
        pair = runs[runs["variant"].isin([variant, baseline])]
        parts.append(paired_table(pair, baseline, ("valid_acc", "test_acc", "gap")))
    if not parts:
        raise AugmentError("the runs hold no pair of variants to compare: run two of "
                           + ", ".join(f"{v!r} and {b!r}" for v, b in COMPARISONS))
    return pd.concat(parts).sort_index(level=0, sort_remaining=False)


def curve_changes(nets: Mapping[tuple[str, int], Any], last: int = 10,
                  keys=("valid_acc", "train_acc_eval")) -> pd.DataFrame:
    """How much each history curve moved over the last ``last`` epochs, seed by seed.

    For every run, the value at the last epoch minus the value ``last`` epochs
    earlier (fewer when the run is shorter); per variant the mean and std over seeds
    and a two-sided paired t-test of "no change" (:func:`course_utils.experiment.paired_test`).
    A verdict of "higher" says the curve was still rising at the end of training.

    Parameters
    ----------
    nets : mapping
        ``(variant, seed) -> fitted net``, as in ``run_variants(..., keep_nets=True)``.
    last : int
        The window, in epochs.
    keys : sequence of str
        History columns.

    Returns
    -------
    DataFrame
        Indexed by ``(key, variant)``: ``epochs`` (the window used), ``seeds``,
        ``change_mean``, ``change_std`` (fractions), ``t``, ``p``, ``verdict``.
    """
    if int(last) < 1:
        raise AugmentError(f"last must be at least 1 epoch, got {last}")
    rows = []
    for key in keys:
        ends: dict[str, list] = {}
        for (variant, _seed), net in nets.items():
            curve = [float(v) for v in net.history[:, key]]
            window = min(int(last), len(curve) - 1)
            if window < 1:
                raise AugmentError(f"{variant!r}: a run of one epoch has no change to measure")
            ends.setdefault(variant, []).append((curve[-1], curve[-1 - window], window))
        for variant, pairs in ends.items():
            end, start, windows = zip(*pairs)
            d = paired_test(end, start)
            rows.append({"key": key, "variant": variant, "epochs": min(windows),
                         "seeds": d["seeds"], "change_mean": d["mean"], "change_std": d["std"],
                         "t": d["t"], "p": d["p"], "verdict": d["verdict"]})
    return pd.DataFrame(rows).set_index(["key", "variant"])


def _diff(diffs: pd.DataFrame, metric: str, variant: str) -> str:
    return difference_text(diffs.loc[(metric, variant)])


def paper_table(runs: pd.DataFrame, profile: str = "", device: str = ""):
    """The paper's augmentation claims next to our runs (mean ± std over seeds).

    Every "ours" figure names its unit and sign: accuracies and gaps in points,
    changes as the variant minus the one without the ingredient (a cut in error
    is a rise in accuracy). Claims about a variant that was not run are left out.

    Parameters
    ----------
    runs : DataFrame
        :func:`course_utils.experiment.run_variants` over the budget's variants.
    profile, device : str
        Where ours was measured; empty: the current profile and device.

    Returns
    -------
    pandas.DataFrame
        One row per claim: claim, paper, ours, profile, device.
    """
    summary = summarize_runs(runs)
    diffs = augmentation_differences(runs)
    pairs = dict(_comparisons(runs))
    gap = lambda v: format_mean_std(100 * summary.loc[v, "gap_mean"],  # noqa: E731
                                    100 * summary.loc[v, "gap_std"], 1)
    rows = []
    if "crops + flips" in pairs:
        rows += [
            {"claim": "without augmentation the net overfits substantially",
             "paper": "qualitative ('substantial overfitting')",
             "ours": f"train - valid gap (eval mode, points): none {gap('none')}, "
                     f"crops + flips {gap('crops + flips')}; "
                     f"change {_diff(diffs, 'gap', 'crops + flips')}: "
                     + gap_reading(diffs.loc[("gap", "crops + flips")],
                                   diffs.loc[("valid_acc", "crops + flips")])},
            {"claim": "crops and flips improve accuracy on new images",
             "paper": "needed for the reported results (no figure without them)",
             "ours": "change (points), crops + flips minus none: validation "
                     + _diff(diffs, "valid_acc", "crops + flips") + "; test "
                     + _diff(diffs, "test_acc", "crops + flips")}]
    if "crops + flips + lighting" in pairs:
        rows.append(
            {"claim": "fancy PCA lighting lowers top-1 error",
             "paper": "by over 1 point (ImageNet, colour): +1 point or more of accuracy",
             "ours": "change (points), lighting on top of crops + flips: validation "
                     + _diff(diffs, "valid_acc", "crops + flips + lighting") + "; test "
                     + _diff(diffs, "test_acc", "crops + flips + lighting")
                     + " (grayscale analogue)"})
    return claim_table(rows, profile, device).reset_index()


def _convergence_text(changes: pd.DataFrame) -> str:
    """One sentence on whether the validation curves had flattened."""
    valid = changes.loc["valid_acc"]
    window = int(valid["epochs"].min())
    moves = "; ".join(f"{v} {format_diff(r['change_mean'], r['change_std'])}"
                      for v, r in valid.iterrows())
    rising = [v for v, r in valid.iterrows() if r["verdict"] == "higher"]
    text = f"Over the last {window} epochs validation accuracy changed by {moves}"
    if rising:
        return (text + f": still rising for {', '.join(rising)} (paired t-test), so these "
                "nets had not converged and a longer budget could change the verdicts.")
    return text + ": no curve was still rising measurably (paired t-test), so the nets had " \
        "converged as far as the seeds can tell."


def augmentation_verdict(runs: pd.DataFrame, gap_bound: float | None = None,
                         changes: pd.DataFrame | None = None) -> str:
    """The experiment's conclusion in sentences, chosen from the runs' values.

    Parameters
    ----------
    runs : DataFrame
        :func:`course_utils.experiment.run_variants` over the budget's variants.
    gap_bound : float, optional
        The budget's overfitting bound: the baseline's mean gap must reach it for
        the regime to count as overfitting.
    changes : DataFrame, optional
        :func:`curve_changes` of the runs' nets: adds whether the curves had flattened.

    Returns
    -------
    str
    """
    summary = summarize_runs(runs)
    diffs = augmentation_differences(runs)
    pairs = dict(_comparisons(runs))
    lines = []
    if "none" in summary.index:
        plain = summary.loc["none"]
        base_gap = float(plain["gap_mean"])
        overfits = gap_bound is not None and base_gap >= gap_bound
        lines.append(
            f"Without augmentation the nets reach {100 * plain['train_acc_mean']:.1f}% "
            f"training accuracy (eval mode) against {100 * plain['valid_acc_mean']:.1f}% "
            f"validation: a gap of {100 * base_gap:.1f} points"
            + (", so they overfit, the regime augmentation addresses." if overfits else
               (". That is below this profile's overfitting bound, so the regime is not "
                "one where augmentation can show." if gap_bound is not None else ".")))
    for variant, baseline in pairs.items():
        plural = baseline == "none"  # "crops and flips raise", "lighting raises"
        what = "Crops and flips" if plural else "Lighting, added to crops and flips,"
        valid, acc, gap = (diffs.loc[(m, variant)] for m in ("valid_acc", "test_acc", "gap"))
        lines.append(
            f"{what} {verdict_verb(valid['verdict'], 'raise', 'lower', plural)} validation "
            f"accuracy ({difference_text(valid)}) and "
            f"{verdict_verb(acc['verdict'], 'raise', 'lower', plural)} test accuracy "
            f"({difference_text(acc)}); the train - valid gap changes by "
            f"{difference_text(gap)}: {gap_reading(gap, valid)}.")
    if "crops + flips" in pairs:
        gains = [diffs.loc[(m, "crops + flips"), "verdict"] == "higher"
                 for m in ("valid_acc", "test_acc")]
        if all(gains):
            lines.append("Crops and flips pay here: validation and test accuracy both rose.")
        else:
            lines.append("At this budget the gain augmentation is meant to bring does not show "
                         "on " + ("validation accuracy" if gains[1] else
                                  "test accuracy" if gains[0] else
                                  "validation or test accuracy") + ".")
    if "crops + flips + lighting" in pairs:
        light = diffs.loc[("test_acc", "crops + flips + lighting")]
        if light["verdict"] == "higher" and 100 * light["diff_mean"] >= 1.0:
            lines.append("The lighting gain reaches the paper's 'over 1 point'.")
        elif light["verdict"] == "higher":
            lines.append("The lighting gain is real here but smaller than the paper's 1 point.")
        else:
            lines.append("The paper's 1-point lighting gain does not show here: with one grey "
                         "channel the lighting is a brightness shift only, with no colour axes.")
    if changes is not None:
        lines.append(_convergence_text(changes))
    return "\n".join(lines)


# --------------------------------------------------------------------------- plots

def plot_augmentations(examples: torch.Tensor, originals: torch.Tensor | None = None,
                       row_labels=None, title: str = "Random crops and flips"):
    """A grid: one row per image, the original first, then its augmented versions.

    Parameters
    ----------
    examples : torch.Tensor, shape (M, n, H, W)
        Each image's augmented versions, floats in [0, 1].
    originals : torch.Tensor, shape (M, 1, H, W), optional
        Shown in a first column.
    row_labels : sequence of str, optional
        One label per row.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    rows, cols = examples.shape[:2]
    extra = originals is not None
    fig, axes = plt.subplots(rows, cols + extra, figsize=(1.2 * (cols + extra), 1.3 * rows),
                             squeeze=False)
    for r in range(rows):
        imgs = ([to_float(originals[r])[0]] if extra else []) + list(examples[r])
        for c, img in enumerate(imgs):
            ax = axes[r, c]
            ax.imshow(img.cpu().numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title("original" if extra and c == 0 else f"pass {c + 1 - extra}",
                             fontsize=8)
        if row_labels is not None:
            axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_fancy_pca(image, pca: FancyPCA, alphas, title: str = "Fancy PCA colour augmentation"):
    """One colour photo under several PCA coefficient vectors.

    Parameters
    ----------
    image : array-like, shape (H, W, 3), uint8
        The photo.
    pca : FancyPCA
        Fitted on colour pixels.
    alphas : array-like, shape (K, 3)
        One row of coefficients per panel (``[0, 0, 0]``: the original).
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    x = torch.as_tensor(np.asarray(image)).permute(2, 0, 1)[None]
    alphas = torch.as_tensor(np.asarray(alphas, dtype=np.float32))
    out = pca(x.expand(len(alphas), -1, -1, -1), alphas=alphas)
    fig, axes = plt.subplots(1, len(alphas), figsize=(2.4 * len(alphas), 2.8), squeeze=False)
    for ax, img, a in zip(axes[0], out, alphas):
        ax.imshow(img.permute(1, 2, 0).numpy())
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlabel("alpha = [" + ", ".join(f"{v:+.2f}" for v in a.tolist()) + "]", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
