"""Notebook 03: overlapping pooling (Krizhevsky et al., 2012, sec. 3.4).

* output-size arithmetic, ``floor((n + 2p - z) / s) + 1``, with AlexNet's own
  numbers (:func:`alexnet_shape_table`) and the 227-versus-224 question
  (:func:`conv1_size_table`);
* what a pooled unit sees: the windows of neighbouring pooled units overlap
  for z=3, s=2 and tile the map for z=2, s=2 (:func:`pooling_windows`,
  :func:`plot_pooling_windows`, :func:`receptive_field_table`);
* why the experiment needs an input whose last map is larger than 1x1 and whose
  maps both poolings cover entirely: what each pooling sees at each input side
  (:func:`last_map_table`, :func:`rows_dropped`);
* the variants of the experiment (:data:`POOLINGS`, :func:`pooling_variants`), the
  seed-by-seed differences on test accuracy and on the train - valid gap
  (:func:`pooling_differences`), the claim rows and the verdict built from them
  (:func:`pooling_claims`, :func:`pooling_verdict`) and the learning curves
  (:func:`learning_curves`, :func:`plot_learning_curves`).

The experiment's budget and bounds are row "03" of :mod:`course_utils.budgets`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd

from ..config import CourseError
from ..experiment import (difference_text, format_diff, format_mean_std, format_p, gap_reading,
                          paired_table, summarize_runs, verdict_verb)
from ..models import CONV_GEOMETRY, geometry, output_size

__all__ = ["PAPER_TOP1_GAIN", "PAPER_TOP5_GAIN", "POOLINGS", "PoolingError",
           "alexnet_shape_table", "conv1_size_table", "last_map_table",
           "learning_curves", "plot_learning_curves", "plot_pooling_windows", "pooling_claims",
           "pooling_differences", "pooling_schemes", "pooling_variants", "pooling_verdict",
           "pooling_windows", "receptive_field_table", "rows_dropped", "side_chain",
           "window_output"]

#: The two poolings the experiment compares: name -> AlexNet keyword arguments. On the
#: even-sided maps of the budget's input, 2x2 stride-2 windows tile every map and 3x3
#: stride-2 windows padded by 1 reach every cell too, with the same output side: the
#: comparison is about overlap alone (the paper's unpadded 3x3 would miss the last row
#: and column of an even map, as 2x2 misses them on the paper's odd maps).
POOLINGS = {
    "overlapping (z=3, s=2, p=1)": {"pool_kernel": 3, "pool_stride": 2, "pool_padding": 1},
    "non-overlapping (z=2, s=2)": {"pool_kernel": 2, "pool_stride": 2, "pool_padding": 0},
}
#: The paper's figures: overlapping pooling lowers top-1 / top-5 error by these (ImageNet).
PAPER_TOP1_GAIN, PAPER_TOP5_GAIN = 0.004, 0.003


class PoolingError(CourseError, ValueError):
    """Bad geometry: a window larger than the map, a stride of zero..."""


def _check(n: int, kernel: int, stride: int, padding: int = 0) -> None:
    if kernel < 1 or stride < 1 or padding < 0:
        raise PoolingError(f"kernel and stride must be >= 1 and padding >= 0, got "
                           f"kernel={kernel}, stride={stride}, padding={padding}")
    if n + 2 * padding < kernel:
        raise PoolingError(f"a {kernel}-wide window does not fit in {n} pixels "
                           f"(padding {padding}): use a larger input or more padding")


def window_output(n: int, kernel: int, stride: int, padding: int = 0) -> dict:
    """The arithmetic of one conv or pooling layer on an ``n``-pixel side:
    output side, whether the windows land exactly on the last pixel, and how
    many pixels at the end no window reaches."""
    _check(n, kernel, stride, padding)
    span = n + 2 * padding - kernel
    out = output_size(n, kernel, stride, padding)
    return {"in": n, "kernel": kernel, "stride": stride, "padding": padding,
            "(n+2p-z)/s": span / stride, "out": out, "exact": span % stride == 0,
            "unused pixels": span % stride}


def alexnet_shape_table(input_size: int = 227, pool_kernel: int = 3, pool_stride: int = 2,
                        pool_padding: int = 0) -> pd.DataFrame:
    """Layer by layer arithmetic (:func:`window_output`) of AlexNet's conv1..pool5,
    walked by :func:`course_utils.models.geometry`."""
    try:
        layers = geometry(input_size, pool_kernel, pool_stride, pool_padding=pool_padding)
    except ValueError as exc:
        raise PoolingError(str(exc)) from None
    rows = [{"layer": g["layer"], **window_output(g["in"], g["kernel"], g["stride"],
                                                  g["padding"])} for g in layers]
    return pd.DataFrame(rows).set_index("layer")


def side_chain(input_size: int = 227, pool_kernel: int = 3, pool_stride: int = 2,
               pool_padding: int = 0) -> str:
    """``"227 -> 55 -> 27 -> 13 -> 6"``: the input, conv1 and the three poolings."""
    t = alexnet_shape_table(input_size, pool_kernel, pool_stride, pool_padding)
    sides = [input_size, t.loc["conv1", "out"]] + [t.loc[f"pool{i}", "out"] for i in (1, 2, 5)]
    return " -> ".join(str(int(s)) for s in sides)


def conv1_size_table(sizes=(224, 227), paddings=(0, 1, 2, 3)) -> pd.DataFrame:
    """conv1 (11x11, stride 4) on each input side and padding: does it give 55,
    and do the windows end exactly on the last pixel?"""
    k, s, _ = CONV_GEOMETRY[0]
    rows = [window_output(n, k, s, p) for n in sizes for p in paddings]
    return pd.DataFrame(rows).drop(columns=["kernel", "stride"]).set_index(["in", "padding"])


def receptive_field_table(poolings=((3, 2), (2, 2))) -> pd.DataFrame:
    """For a unit of pool1 (after conv1's 11x11 stride-4 windows): its window on
    the conv1 map, the overlap with its neighbour's, and the same in input pixels."""
    k1, s1, _ = CONV_GEOMETRY[0]
    rows = []
    for z, s in poolings:
        if z < 1 or s < 1:
            raise PoolingError(f"kernel and stride must be >= 1, got z={z}, s={s}")
        rf = k1 + (z - 1) * s1  # input pixels seen by one pooled unit
        jump = s * s1  # input pixels between neighbouring pooled units
        rows.append({"pooling": f"z={z}, s={s}", "window on conv1 map": z,
                     "shared with neighbour (conv1 units)": max(z - s, 0),
                     "share of window shared": max(z - s, 0) / z,
                     "receptive field (input px)": rf, "step (input px)": jump,
                     "shared with neighbour (input px)": max(rf - jump, 0)})
    return pd.DataFrame(rows).set_index("pooling")


def pooling_windows(n: int, kernel: int, stride: int, padding: int = 0) -> np.ndarray:
    """How many pooling windows cover each cell of an ``n`` x ``n`` map (int array).

    0 marks cells that no window reaches; above 1, windows overlap there. With
    ``padding`` the windows start ``padding`` cells before the map (the padded
    cells themselves are not counted).
    """
    side = _side_cover(n, kernel, stride, padding)
    return np.outer(side, side)


def _side_cover(n: int, kernel: int, stride: int, padding: int = 0) -> np.ndarray:
    """How many windows cover each of the ``n`` cells along one side."""
    _check(n, kernel, stride, padding)
    side = np.zeros(n, dtype=int)
    for i in range(output_size(n, kernel, stride, padding)):
        start = i * stride - padding
        side[max(start, 0):max(start + kernel, 0)] += 1
    return side


def rows_dropped(n: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Rows (and as many columns) of an ``n``-sided map that no pooling window reaches."""
    return int((_side_cover(n, kernel, stride, padding) == 0).sum())


def plot_pooling_windows(n: int = 9, poolings=((3, 2), (2, 2)), show: int = 2):
    """One panel per pooling: the coverage count of every cell of an n x n map,
    with the windows of the first ``show`` x ``show`` pooled units outlined."""
    fig, axes = plt.subplots(1, len(poolings), figsize=(5.2 * len(poolings), 5), squeeze=False)
    colors = plt.cm.tab10.colors
    vmax = max(pooling_windows(n, z, s).max() for z, s in poolings)
    for ax, (z, s) in zip(axes[0], poolings):
        cover = pooling_windows(n, z, s)
        im = ax.imshow(cover, cmap="Blues", vmin=0, vmax=vmax)
        for (r, c), v in np.ndenumerate(cover):
            ax.text(c, r, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > vmax / 2 else "black")
        for idx, (i, j) in enumerate((i, j) for i in range(show) for j in range(show)):
            off = 0.08 * idx
            ax.add_patch(plt.Rectangle((j * s - 0.5 + off, i * s - 0.5 + off), z - 2 * off,
                                       z - 2 * off, fill=False, lw=2.5,
                                       edgecolor=colors[idx % 10],
                                       label=f"pooled unit ({i}, {j})"))
        out = output_size(n, z, s)
        ax.set(title=f"z={z}, s={s}: {n}x{n} -> {out}x{out}", xlabel="column of the input map",
               ylabel="row of the input map")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.7, label="windows covering the cell")
    fig.suptitle("Which cells each pooled unit sees (numbers: how many windows cover a cell)")
    return fig


def pooling_schemes() -> list[tuple[int, int, int]]:
    """``(z, s, p)`` of the experiment's poolings, in the order of :data:`POOLINGS`."""
    return [(kw["pool_kernel"], kw["pool_stride"], kw["pool_padding"])
            for kw in POOLINGS.values()]


def _label(z: int, s: int, p: int = 0) -> str:
    return f"z={z}, s={s}" + (f", p={p}" if p else "")


def pooling_variants() -> dict[str, dict]:
    """``run_variants`` variants for the experiment (``module__`` prefixed)."""
    return {name: {f"module__{k}": v for k, v in kw.items()} for name, kw in POOLINGS.items()}


def last_map_table(sizes=(67, 99), poolings=((3, 2), (2, 2))) -> pd.DataFrame:
    """What the poolings see at each input side, for each pooling: the last (pool5)
    in detail, and the rows every pooling leaves out.

    Parameters
    ----------
    sizes : sequence of int
        Input sides of the small AlexNet.
    poolings : sequence of (int, int) or (int, int, int)
        ``(z, s)`` or ``(z, s, p)``: window, stride and padding of every max-pooling
        layer (:func:`pooling_schemes` gives the experiment's).

    Returns
    -------
    DataFrame
        One row per ``(input, pooling)``: ``sides`` (the chain input -> conv1 -> pool1
        -> pool2 -> pool5, :func:`side_chain`), ``conv5 map`` (the side pool5 pools),
        ``last map`` (pool5's output side), ``conv5 cells pooled`` (cells of the conv5
        map that some pool5 window reaches, out of ``conv5 map`` squared), ``share
        pooled``, ``most windows on a cell`` (above 1: the windows overlap) and ``rows
        dropped (pool1, pool2, pool5)`` (:func:`rows_dropped` of each pooling's input map).

    Raises
    ------
    PoolingError
        When an input is too small for AlexNet's geometry.
    """
    rows = []
    for n in sizes:
        for z, s, *pad in poolings:
            p = pad[0] if pad else 0
            t = alexnet_shape_table(n, z, s, p)
            side = int(t.loc["pool5", "in"])
            cover = pooling_windows(side, z, s, p)
            seen = int((cover > 0).sum())
            dropped = [rows_dropped(int(t.loc[f"pool{i}", "in"]), z, s, p) for i in (1, 2, 5)]
            rows.append({"input": int(n), "pooling": _label(z, s, p),
                         "sides": side_chain(n, z, s, p), "conv5 map": side,
                         "last map": int(t.loc["pool5", "out"]),
                         "conv5 cells pooled": f"{seen} of {side * side}",
                         "share pooled": seen / (side * side),
                         "most windows on a cell": int(cover.max()),
                         "rows dropped (pool1, pool2, pool5)": ", ".join(map(str, dropped))})
    return pd.DataFrame(rows).set_index(["input", "pooling"])


def _names() -> tuple[str, str]:
    """(overlapping, non-overlapping): the variant and the baseline of the experiment."""
    over, tile = list(POOLINGS)
    return over, tile


def pooling_differences(runs: pd.DataFrame, metrics=("test_acc", "valid_acc", "gap")
                        ) -> pd.DataFrame:
    """Each pooling minus the non-overlapping baseline (z=2, s=2), seed by seed: the run
    layer's :func:`course_utils.experiment.paired_table` (t-test verdicts) against this
    notebook's baseline."""
    return paired_table(runs, _names()[1], metrics)


def _gap_regime(summary: pd.DataFrame, gap_bound: float | None) -> str:
    gaps = summary["gap_mean"]
    if gap_bound is None:
        return "no overfitting bound in this profile"
    if (gaps >= gap_bound).all():
        return f"every mean gap >= {gap_bound}: the nets overfit"
    return f"some mean gap < {gap_bound}: not clearly overfitting"


def pooling_claims(runs: pd.DataFrame, gap_bound: float | None = None) -> list[dict]:
    """Rows for :func:`course_utils.experiment.claim_table`: the paper's claims of
    section 3.4 against the seed-by-seed differences of this run.

    Parameters
    ----------
    runs : DataFrame
        :func:`course_utils.experiment.run_variants` of the :func:`pooling_variants`
        (both poolings trained on the same seeds).
    gap_bound : float, optional
        The budget's overfitting bound (``b.bounds.get("gap")``): the mean train -
        valid gap above which a variant counts as overfitting.

    Returns
    -------
    list of dict
        ``claim``, ``paper``, ``ours`` and ``verdict`` for: the error change from
        overlapping pooling (points, overlapping minus non-overlapping) on the test
        and on the validation images, the change of the train - valid gap (read by
        :func:`course_utils.experiment.gap_reading`), and whether the nets overfit at all.
    """
    over, tile = _names()
    summary = summarize_runs(runs)
    d = pooling_differences(runs)
    acc, gap = d.loc[("test_acc", over)], d.loc[("gap", over)]
    valid = d.loc[("valid_acc", over)]
    n = int(acc["seeds"])
    gaps = summary["gap_mean"]
    gap_std = summary["gap_std"]
    return [
        {"claim": "error change from overlapping pooling (points)",
         "paper": f"top-1 {-PAPER_TOP1_GAIN * 100:+.1f}, top-5 {-PAPER_TOP5_GAIN * 100:+.1f} "
                  "(ImageNet)",
         # error = 1 - accuracy: the error change is minus the accuracy change
         "ours": f"{format_diff(-acc['diff_mean'], acc['diff_std'], digits=2)} of test error, "
                 f"{format_diff(-valid['diff_mean'], valid['diff_std'], digits=2)} of "
                 f"validation error ({n} paired seed(s))",
         "verdict": f"overlapping pooling {verdict_verb(acc['verdict'], 'raise', 'lower')} "
                    f"test accuracy ({format_p(acc['p'])}) and "
                    f"{verdict_verb(valid['verdict'], 'raise', 'lower')}"
                    f" validation accuracy ({format_p(valid['p'])})"},
        {"claim": "train - valid gap change from overlapping pooling",
         "paper": "'slightly more difficult to overfit' (a smaller gap; no figure)",
         "ours": f"{format_diff(gap['diff_mean'], gap['diff_std'], digits=2)} "
                 f"({n} paired seed(s))",
         "verdict": gap_reading(gap, valid)},
        {"claim": "train - valid gap without dropout, overlapping / non-overlapping",
         "paper": "'substantial overfitting' without dropout (sec. 4.2)",
         "ours": f"{format_mean_std(gaps[over], gap_std[over])} / "
                 f"{format_mean_std(gaps[tile], gap_std[tile])}",
         "verdict": _gap_regime(summary, gap_bound)},
    ]


def pooling_verdict(runs: pd.DataFrame, gap_bound: float | None = None) -> str:
    """The experiment's conclusion in sentences, built from the runs.

    Parameters
    ----------
    runs : DataFrame
        :func:`course_utils.experiment.run_variants` of the :func:`pooling_variants`.
    gap_bound : float, optional
        The mean train - valid gap above which a net counts as overfitting (the
        budget's ``gap`` bound); None when the profile sets none.

    Returns
    -------
    str
        Three lines: whether the nets overfit (so that the overfitting claim can
        show at all), the test-accuracy difference and the gap difference, each
        with its verdict and what it means for the paper's claim.
    """
    over, tile = _names()
    summary = summarize_runs(runs)
    d = pooling_differences(runs)
    gaps = summary["gap_mean"]
    lines = []
    regime = (f"Mean train - valid gap: {over} {gaps[over]:.3f}, {tile} {gaps[tile]:.3f}. ")
    if gap_bound is None:
        regime += ("This profile sets no overfitting bound: with its short training the nets "
                   "may not overfit yet, so the gap comparison says little.")
    elif (gaps >= gap_bound).all():
        regime += (f"Both are at least {gap_bound}: the nets overfit, so the paper's "
                   "overfitting claim can show here.")
    else:
        regime += (f"Not both reach {gap_bound}: the nets hardly overfit, so the overfitting "
                   "claim cannot show here.")
    lines.append(regime)

    acc, valid = d.loc[("test_acc", over)], d.loc[("valid_acc", over)]
    lines.append(f"Overlapping pooling {verdict_verb(acc['verdict'], 'raise', 'lower')} test "
                 f"accuracy against non-overlapping pooling ({difference_text(acc, digits=2)}) "
                 f"and {verdict_verb(valid['verdict'], 'raise', 'lower')}"
                 f" validation accuracy ({difference_text(valid, digits=2)}); the paper "
                 f"reports {PAPER_TOP1_GAIN * 100:.1f} points less top-1 error on ImageNet.")
    gap = d.loc[("gap", over)]
    lines.append(f"Train - valid gap, overlapping minus non-overlapping "
                 f"({difference_text(gap, digits=2)}): {gap_reading(gap, valid)}; the paper "
                 "says overlapping pooling is 'slightly more difficult to overfit'.")
    return "\n".join(lines)


def learning_curves(nets) -> pd.DataFrame:
    """Training and validation accuracy by epoch, from the nets' skorch histories.

    Parameters
    ----------
    nets : mapping
        ``{(variant, seed): fitted net}``, e.g. ``runs.attrs["nets"]`` of
        :func:`course_utils.experiment.run_variants` with ``keep_nets=True``.

    Returns
    -------
    DataFrame
        Columns ``variant``, ``seed``, ``epoch``, ``train_acc`` (accuracy on the
        training batches as they were trained, skorch's running score), ``valid_acc``
        and ``gap`` (their difference).
    """
    if not nets:
        raise PoolingError("no nets: run the variants with keep_nets=True")
    rows = []
    for (variant, seed), net in nets.items():
        h = net.history
        for epoch, tr, va in zip(h[:, "epoch"], h[:, "train_acc"], h[:, "valid_acc"]):
            rows.append({"variant": variant, "seed": int(seed), "epoch": int(epoch),
                         "train_acc": float(tr), "valid_acc": float(va),
                         "gap": float(tr) - float(va)})
    return pd.DataFrame(rows)


def plot_learning_curves(curves: pd.DataFrame):
    """One panel per variant (training accuracy solid, validation dashed, one line per
    seed) and a last panel with the train - valid gap of every variant by epoch.

    Parameters
    ----------
    curves : DataFrame
        :func:`learning_curves`.

    Returns
    -------
    Figure
    """
    variants = list(dict.fromkeys(curves["variant"]))
    fig, axes = plt.subplots(1, len(variants) + 1, figsize=(4.6 * (len(variants) + 1), 4))
    colors = plt.cm.tab10.colors
    for k, (ax, name) in enumerate(zip(axes, variants)):
        for j, (_, c) in enumerate(curves[curves["variant"] == name].groupby("seed")):
            label = j == 0
            ax.plot(c["epoch"], c["train_acc"], color=colors[k], alpha=0.8,
                    label="train" if label else None)
            ax.plot(c["epoch"], c["valid_acc"], color=colors[k], ls="--", alpha=0.8,
                    label="valid" if label else None)
        ax.set(title=name, xlabel="epoch", ylabel="accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="lower right")
    lo = min(curves["valid_acc"].min(), curves["train_acc"].min())
    for ax in axes[:-1]:
        ax.set_ylim(lo - 0.02, 1.0)
    gap_ax = axes[-1]
    for k, name in enumerate(variants):
        c = curves[curves["variant"] == name]
        for _, one in c.groupby("seed"):
            gap_ax.plot(one["epoch"], one["gap"], color=colors[k], alpha=0.35, lw=1)
        mean = c.groupby("epoch")["gap"].mean()
        gap_ax.plot(mean.index, mean.values, color=colors[k], lw=2.5, label=f"{name} (mean)")
    gap_ax.axhline(0, color="grey", lw=0.8)
    gap_ax.set(title="train - valid gap (thin: one seed)", xlabel="epoch",
               ylabel="accuracy gap")
    gap_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    gap_ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("Learning curves, one line per seed: the gap opening up is overfitting")
    fig.tight_layout()
    return fig
