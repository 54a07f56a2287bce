"""Notebook 10: test-time augmentation, the paper's 10-crop test (section 4.1).

"At test time, the network makes a prediction by extracting five 224x224
patches (the four corner patches and the center patch) as well as their
horizontal reflections (hence ten patches in all), and averaging the
predictions made by the network's softmax layer on the ten patches."

Scaled to Fashion-MNIST as in notebook 08: the model is trained on random 28x28
crops of the image padded to 32x32, so the *centre* crop is the plain image and
the four corner crops are the image shifted by ``padding`` pixels diagonally.
A plain-trained baseline (the same net and seeds, no crops or flips in training)
shows what the training augmentation costs at this budget and how much of it the ten
views win back (:func:`training_pairs`, :func:`baseline_verdict`). The budget and
bounds are ``course_utils.budgets.budget("10")``.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from scipy import stats

from ..experiment import (ALPHA, claim_table, difference_text, format_mean_std, mean_std,
                          paired_differences, verdict_verb)
from ..layers import AugmentError, crop
from ..training import accuracy_from_scores, batched_softmax, predict_proba

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AUGMENTED", "CENTRE", "PLAIN", "PLAIN_CENTRE", "TEN", "VIEWS", "allowed_loss",
           "baseline_verdict", "paper_table", "plot_ten_crops", "seed_tables", "ten_crop_gains",
           "ten_crop_verdict", "ten_crops", "training_pairs", "tta_accuracies", "tta_table",
           "view_probabilities"]

#: The ten views, in the order :func:`ten_crops` returns them.
VIEWS = ("centre", "top-left", "top-right", "bottom-left", "bottom-right",
         "centre flipped", "top-left flipped", "top-right flipped", "bottom-left flipped",
         "bottom-right flipped")


def ten_crops(x: torch.Tensor, padding: int = 2, size: int | None = None) -> torch.Tensor:
    """The ten views of every image of ``x``.

    The batch is zero-padded by ``padding`` and ``size`` x ``size`` patches are cut
    at the four corners and the centre, then mirrored.

    Parameters
    ----------
    x : torch.Tensor, shape (N, C, H, W)
        Images, any dtype.
    padding : int
    size : int, optional
        Side of the patches; default: the original side.

    Returns
    -------
    torch.Tensor, shape (10, N, C, size, size)
        In :data:`VIEWS` order.
    """
    if x.dim() != 4:
        raise AugmentError(f"expected a batch shaped (N, C, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    size = h if size is None else int(size)
    if padding:
        x = F.pad(x, (padding,) * 4)
    hp, wp = h + 2 * padding, w + 2 * padding
    if size > min(hp, wp) or size < 1:
        raise AugmentError(f"crop of {size} does not fit in {hp}x{wp} (padded) images")
    if (hp - size) % 2 or (wp - size) % 2:
        raise AugmentError("the centre crop needs an even margin: pick size with "
                           "(side + 2 * padding - size) even")
    ct, cl = (hp - size) // 2, (wp - size) // 2
    corners = [(ct, cl), (0, 0), (0, wp - size), (hp - size, 0), (hp - size, wp - size)]
    views = [crop(x, top, left, size) for top, left in corners]
    views += [v.flip(-1) for v in views]
    return torch.stack(views)


@torch.no_grad()
def view_probabilities(module: torch.nn.Module, X: torch.Tensor, padding: int = 2,
                       batch_size: int = 256) -> tuple[torch.Tensor, float]:
    """Softmax outputs of ``module`` (in eval mode) for all ten views of every image.

    Parameters
    ----------
    module : torch.nn.Module
        The trained network (``net.module_``).
    X : torch.Tensor, shape (N, C, H, W)
        Images.
    padding : int
        Padding of the crops, as in training.
    batch_size : int
        Images per forward pass; each brings its ten views (``10 * batch_size``
        inputs per pass).

    Returns
    -------
    probabilities : torch.Tensor, shape (10, N, classes)
        In :data:`VIEWS` order.
    seconds : float
        Time to cut the views and run them.
    """
    module.eval()
    t0 = time.perf_counter()
    views = ten_crops(X, padding)
    v, n = views.shape[:2]
    probs = batched_softmax(module, views.flatten(0, 1), batch_size * v)
    return probs.view(v, n, -1), time.perf_counter() - t0


def tta_accuracies(views: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Accuracy of each way of combining the views.

    Parameters
    ----------
    views : torch.Tensor, shape (10, N, classes)
        From :func:`view_probabilities`.
    y : torch.Tensor
        Labels.

    Returns
    -------
    dict
        centre crop, centre + flip, 5 crops, 10 crops -> accuracy.
    """
    acc = lambda p: accuracy_from_scores(p, y)  # noqa: E731
    return {
        "centre crop (1 view)": acc(views[0]),
        "centre + flip (2 views)": acc(views[[0, 5]].mean(0)),
        "5 crops (5 views)": acc(views[:5].mean(0)),
        "10 crops (10 views)": acc(views.mean(0)),
    }


def tta_table(module: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, padding: int = 2,
              profile: str = "", device: str = ""):
    """Accuracy and cost of single-crop against 10-crop testing.

    Parameters
    ----------
    module : torch.nn.Module
        The trained network.
    X, y : torch.Tensor
        Test images and labels.
    padding : int
    profile, device : str
        Written into the table.

    Returns
    -------
    pandas.DataFrame
        One row per way of combining views; ``attrs["seconds"]`` holds the time of
        one view, of ten, and their ratio.
    """
    import pandas as pd

    t0 = time.perf_counter()
    with torch.no_grad():
        predict_proba(module, X)  # the plain image (the centre crop), in eval mode
    t_one = time.perf_counter() - t0
    views, t_ten = view_probabilities(module, X, padding)
    accs = tta_accuracies(views, y)
    n_views = {"centre crop (1 view)": 1, "centre + flip (2 views)": 2,
               "5 crops (5 views)": 5, "10 crops (10 views)": 10}
    rows = [{"test": k, "accuracy": round(v, 4), "forward passes per image": n_views[k],
             "gain vs centre (points)": round(100 * (v - accs["centre crop (1 view)"]), 2)}
            for k, v in accs.items()]
    table = pd.DataFrame(rows)
    table.attrs["seconds"] = {"centre": t_one, "ten": t_ten, "ratio": t_ten / max(t_one, 1e-9)}
    table["profile"], table["device"] = profile, device
    return table


def plot_ten_crops(image: torch.Tensor, padding: int = 2, title: str = "The ten test views"):
    """The ten views of one image (1, H, W) in two rows: crops, then their mirrors.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    views = ten_crops(image[None].float(), padding)[:, 0, 0]
    fig, axes = plt.subplots(2, 5, figsize=(8, 3.6))
    for ax, v, name in zip(axes.flat, views, VIEWS):
        ax.imshow(v.numpy(), cmap="gray_r")
        ax.set_title(name, fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def seed_tables(nets, X: torch.Tensor, y: torch.Tensor, padding: int = 2,
                variant: str | None = None):
    """:func:`tta_table` for every seed's net, in one table.

    Parameters
    ----------
    nets : mapping
        ``(variant, seed) -> net`` from ``run_variants(..., keep_nets=True)``.
    X, y : torch.Tensor
        Test images and labels.
    padding : int
        Padding of the crops (the corners' shift; 2 as in notebook 08's training).
    variant : str, optional
        Only the nets of this variant (default: all, which must then be one per seed).

    Returns
    -------
    pandas.DataFrame
        One row per (seed, way of combining views): accuracy, forward passes per
        image, gain over the centre crop (points), and the seconds of one view and
        of ten for that seed (``centre s``, ``ten s``).
    """
    import pandas as pd

    parts = []
    for (name, seed), net in nets.items():
        if variant is not None and name != variant:
            continue
        t = tta_table(net.module_, X, y, padding)
        t.insert(0, "seed", seed)
        t["centre s"], t["ten s"] = t.attrs["seconds"]["centre"], t.attrs["seconds"]["ten"]
        parts.append(t.drop(columns=["profile", "device"]))
    if not parts:
        raise ValueError(f"no net of variant {variant!r}: have "
                         f"{sorted({name for name, _ in nets})}")
    table = pd.concat(parts, ignore_index=True)
    if table.duplicated(["seed", "test"]).any():
        raise ValueError("several nets per seed: pick one training with variant=...")
    return table


TEN, CENTRE = "10 crops (10 views)", "centre crop (1 view)"


def ten_crop_gains(per_seed) -> "pd.Series":
    """The 10-crop test's accuracy minus the centre crop's, per seed (a fraction)."""
    acc = per_seed.pivot(index="seed", columns="test", values="accuracy")
    return acc[TEN] - acc[CENTRE]


def allowed_loss(per_seed, bound: float | None = None, alpha: float = ALPHA) -> float:
    """How much the ten views may lose to the centre crop before it counts.

    ``bound`` where the budget gives one (a pipeline check in smoke); otherwise the
    measured noise: the half-width of the two-sided ``1 - alpha`` t interval of the mean
    per-seed gain (``t.ppf(1 - alpha / 2, n - 1)`` standard errors), so a mean loss
    larger than it is what the course's paired t-test calls "lower" (0 with one seed,
    where no spread is measured).
    """
    if bound is not None:
        return float(bound)
    g = ten_crop_gains(per_seed)
    if len(g) < 2:
        return 0.0
    t = float(stats.t.ppf(1 - alpha / 2, len(g) - 1))
    return float(t * g.std(ddof=1) / math.sqrt(len(g)))


def paper_table(per_seed, profile: str = "", device: str = ""):
    """The paper's 10-crop test next to ours (mean ± std over seeds).

    Parameters
    ----------
    per_seed : pandas.DataFrame
        From :func:`seed_tables`.
    profile, device : str
        Where ours was measured; empty: the current profile and device.

    Returns
    -------
    pandas.DataFrame
        One row per claim.
    """
    pair = _pairs(per_seed)
    diff = paired_differences(pair, "centre", "accuracy").loc["ten"]
    acc = per_seed.groupby("test", sort=False)["accuracy"]
    ms = lambda k: format_mean_std(**mean_std(acc.get_group(k)), digits=4)  # noqa: E731
    secs = per_seed.drop_duplicates("seed")  # one row per seed: its two timings
    ratio = secs["ten s"] / secs["centre s"]
    rows = [
        {"claim": "average the softmax of 10 patches at test time",
         "paper": "used for every reported result; no single-crop figure given",
         "ours": f"test accuracy: 10 crops {ms(TEN)}, centre {ms(CENTRE)}; gain "
                 f"{difference_text(diff, digits=2)}"},
        {"claim": "extra cost", "paper": "10 forward passes per image",
         "ours": f"{format_mean_std(**mean_std(ratio), digits=1)}x the time of one "
                 f"view ({secs['ten s'].mean():.1f} s against {secs['centre s'].mean():.2f} s "
                 f"for {_n_images(per_seed)} test images)"},
    ]
    return claim_table(rows, profile, device).reset_index()


def _n_images(per_seed) -> str:
    n = per_seed.attrs.get("images")
    return f"{n:,}" if n else "the"


def _pairs(per_seed):
    """run_variants-shaped rows: variant "centre" / "ten", one per seed."""
    import pandas as pd

    keep = per_seed[per_seed["test"].isin([TEN, CENTRE])]
    return pd.DataFrame({"variant": keep["test"].map({TEN: "ten", CENTRE: "centre"}),
                         "seed": keep["seed"], "accuracy": keep["accuracy"]})


def ten_crop_verdict(per_seed) -> str:
    """The conclusion in one sentence, from the per-seed values (paired t-test)."""
    diff = paired_differences(_pairs(per_seed), "centre", "accuracy").loc["ten"]
    return (f"Averaging the ten views {verdict_verb(diff['verdict'], 'raise', 'lower')} test "
            f"accuracy against the centre crop alone: {difference_text(diff, digits=2)}.")


# --------------------------------------------------------------------------- the plain baseline
#: The two trainings of notebook 10: notebook 08's crops and flips, and none.
AUGMENTED, PLAIN = "crops + flips", "plain"
#: The baseline every (training, test) is compared with: the plain nets' single view.
PLAIN_CENTRE = f"{PLAIN}, centre"
_SHORT = {CENTRE: "centre", TEN: "10 crops"}


def training_pairs(tables) -> "pd.DataFrame":
    """run_variants-shaped rows for :func:`~course_utils.experiment.paired_differences`.

    Parameters
    ----------
    tables : mapping
        training name -> :func:`seed_tables` of its nets (the same seeds).

    Returns
    -------
    pandas.DataFrame
        ``variant`` ("plain, centre", "crops + flips, 10 crops", ...), ``seed`` and
        ``accuracy``: the centre crop and the ten views of every training, seed by seed.
    """
    import pandas as pd

    parts = []
    for training, per_seed in tables.items():
        keep = per_seed[per_seed["test"].isin(list(_SHORT))]
        parts.append(pd.DataFrame({"variant": f"{training}, " + keep["test"].map(_SHORT),
                                   "seed": keep["seed"], "accuracy": keep["accuracy"]}))
    return pd.concat(parts, ignore_index=True)


def baseline_verdict(diffs) -> str:
    """What training augmentation costs and what the ten views win back, in three sentences.

    ``diffs``: ``paired_differences(training_pairs(...), PLAIN_CENTRE, "accuracy")``,
    with the rows "crops + flips, centre", "crops + flips, 10 crops" and "plain, 10 crops".
    """
    cost = diffs.loc[f"{AUGMENTED}, centre"]
    back = diffs.loc[f"{AUGMENTED}, 10 crops"]
    plain_ten = diffs.loc[f"{PLAIN}, 10 crops"]
    first = (f"Training with crops and flips {verdict_verb(cost['verdict'], 'raise', 'lower')} "
             f"centre-crop test accuracy against plain training: "
             f"{difference_text(cost, digits=2)}.")
    if cost["verdict"] == "lower":
        loss, gain = -cost["diff_mean"], back["diff_mean"] - cost["diff_mean"]
        share = (f"the ten views win back {100 * gain / loss:.0f}% of what the training "
                 "augmentation cost" if gain > 0 else
                 "the ten views win none of what the training augmentation cost back")
        level = {"lower": "still below", "inside the noise": "level with",
                 "higher": "above"}[back["verdict"]]
        second = (f"With ten views the augmented nets are {level} the plain nets' single view "
                  f"({difference_text(back, digits=2)}): {share}.")
    else:
        second = (f"Against the plain nets' single view, the augmented nets' ten views "
                  f"{verdict_verb(back['verdict'], 'raise', 'lower', plural=True)} test "
                  f"accuracy: {difference_text(back, digits=2)}.")
    third = (f"On the plain nets, which never saw a shifted or mirrored image, the ten views "
             f"{verdict_verb(plain_ten['verdict'], 'raise', 'lower', plural=True)} test "
             f"accuracy against their centre crop: {difference_text(plain_ten, digits=2)}.")
    return "\n".join([first, second, third])
