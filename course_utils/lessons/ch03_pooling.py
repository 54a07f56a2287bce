"""Notebook 03: overlapping pooling (Krizhevsky et al., 2012, sec. 3.4).

* output-size arithmetic, ``floor((n + 2p - z) / s) + 1``, with AlexNet's own
  numbers (:func:`alexnet_shape_table`) and the 227-versus-224 question
  (:func:`conv1_size_table`);
* what a pooled unit sees: the windows of neighbouring pooled units overlap
  for z=3, s=2 and tile the map for z=2, s=2 (:func:`pooling_windows`,
  :func:`plot_pooling_windows`, :func:`receptive_field_table`);
* the variants of the experiment (:data:`POOLINGS`, :func:`pooling_variants`)
  and the claim rows from the run layer's tables (:func:`pooling_claims`).

The experiment's budget and bounds are row "03" of :mod:`course_utils.budgets`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..config import CourseError
from ..experiment import format_mean_std, paired_differences
from ..models import CONV_GEOMETRY, geometry, output_size

__all__ = ["PAPER_TOP1_GAIN", "PAPER_TOP5_GAIN", "POOLINGS", "PoolingError",
           "alexnet_shape_table", "conv1_size_table", "plot_pooling_windows", "pooling_claims",
           "pooling_variants", "pooling_windows", "receptive_field_table", "side_chain",
           "window_output"]

#: The two poolings the paper compares: name -> AlexNet keyword arguments.
POOLINGS = {
    "overlapping (z=3, s=2)": {"pool_kernel": 3, "pool_stride": 2},
    "non-overlapping (z=2, s=2)": {"pool_kernel": 2, "pool_stride": 2},
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


def alexnet_shape_table(input_size: int = 227, pool_kernel: int = 3, pool_stride: int = 2
                        ) -> pd.DataFrame:
    """Layer by layer arithmetic (:func:`window_output`) of AlexNet's conv1..pool5,
    walked by :func:`course_utils.models.geometry`."""
    try:
        layers = geometry(input_size, pool_kernel, pool_stride)
    except ValueError as exc:
        raise PoolingError(str(exc)) from None
    rows = [{"layer": g["layer"], **window_output(g["in"], g["kernel"], g["stride"],
                                                  g["padding"])} for g in layers]
    return pd.DataFrame(rows).set_index("layer")


def side_chain(input_size: int = 227, pool_kernel: int = 3, pool_stride: int = 2) -> str:
    """``"227 -> 55 -> 27 -> 13 -> 6"``: the input, conv1 and the three poolings."""
    t = alexnet_shape_table(input_size, pool_kernel, pool_stride)
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


def pooling_windows(n: int, kernel: int, stride: int) -> np.ndarray:
    """How many pooling windows cover each cell of an ``n`` x ``n`` map (int array).

    0 marks cells that no window reaches; above 1, windows overlap there.
    """
    _check(n, kernel, stride)
    cover = np.zeros((n, n), dtype=int)
    m = output_size(n, kernel, stride)
    for i in range(m):
        for j in range(m):
            cover[i * stride:i * stride + kernel, j * stride:j * stride + kernel] += 1
    return cover


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


def pooling_variants() -> dict[str, dict]:
    """``run_variants`` variants for the experiment (``module__`` prefixed)."""
    return {name: {f"module__{k}": v for k, v in kw.items()} for name, kw in POOLINGS.items()}


def pooling_claims(summary: pd.DataFrame, runs: pd.DataFrame | None = None) -> list[dict]:
    """Rows for :func:`course_utils.experiment.claim_table`.

    Parameters
    ----------
    summary : DataFrame
        :func:`course_utils.experiment.summarize_runs` of the :func:`pooling_variants` runs.
    runs : DataFrame, optional
        The runs themselves (:func:`course_utils.experiment.run_variants`): adds the
        seed-by-seed difference (:func:`course_utils.experiment.paired_differences`)
        and whether it is inside the noise.
    """
    over, tile = list(POOLINGS)
    acc = summary["test_acc_mean"]
    std = summary["test_acc_std"]
    gap = summary["gap_mean"]
    change = f"{(acc[tile] - acc[over]) * 100:+.2f}"
    if runs is not None:
        d = paired_differences(runs, baseline=tile).loc[over]
        verdict = {"higher": "overlapping pooling more accurate",
                   "lower": "overlapping pooling less accurate"}.get(d["verdict"], d["verdict"])
        points = format_mean_std(-d["diff_mean"] * 100, d["diff_std"] * 100, 2)
        change += f" (seed by seed: {points} over {int(d['seeds'])} seed(s); {verdict})"
    return [
        {"claim": "test error, overlapping vs non-overlapping",
         "paper": f"top-1 error {PAPER_TOP1_GAIN * 100:.1f} points lower (top-5: "
                  f"{PAPER_TOP5_GAIN * 100:.1f}) with z=3, s=2 (ImageNet)",
         "ours": f"{1 - acc[over]:.1%} vs {1 - acc[tile]:.1%} (accuracy "
                 f"{format_mean_std(acc[over], std[over])} vs "
                 f"{format_mean_std(acc[tile], std[tile])})"},
        {"claim": "error change from overlapping pooling (points)",
         "paper": f"{-PAPER_TOP1_GAIN * 100:+.1f} (top-1)",
         "ours": change},
        {"claim": "train-valid accuracy gap, overlapping vs non-overlapping",
         "paper": "overlapping is 'slightly more difficult to overfit'",
         "ours": f"{gap[over]:+.3f} vs {gap[tile]:+.3f}"},
    ]
