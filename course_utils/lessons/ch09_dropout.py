"""Notebook 09: dropout (section 4.2 of the paper), measured: the train-valid gap, the
convergence cost, and why PyTorch needs no x0.5 at test time.

The paper sets "to zero the output of each hidden neuron with probability 0.5"
in fc6 and fc7 and, at test time, uses all neurons but "multiplies their
outputs by 0.5". PyTorch's :class:`torch.nn.Dropout` is *inverted* dropout: it
divides the kept outputs by ``1 - p`` during training instead, so the expected
activation is already right and evaluation uses the layer as is.
:class:`course_utils.layers.PaperDropout` is the paper's version, for comparison.
The notebook writes the dropout layer and the net it tests (AlexNet's classifier
alone, :class:`course_utils.models.ClassifierOnly`) in its cells; this module keeps
the plumbing.

The runs come from :func:`course_utils.experiment.run_variants` over
:func:`rate_variants` (one variant per rate, named by :func:`variant_name`), the nets
trained with :class:`course_utils.training.EvalModeTrainScore` so that convergence is
read on a loss dropout does not inflate; the budget, the rates and the bounds are
``course_utils.budgets.budget("09")``.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ..config import CourseError, seed_everything
from ..experiment import (claim_table, difference_text, format_mean_std, gap_reading, mean_std,
                          paired_table, summarize_runs, verdict_verb)
from ..layers import PaperDropout
from ..training import accuracy_from_scores, batched_softmax

__all__ = ["convergence_table", "dropout_layers", "dropout_verdict", "epochs_to_reach",
           "mc_agreement", "mc_probabilities", "paper_table", "rate_variants",
           "scaled_probabilities", "scaling_table", "variant_name"]


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """Every ``nn.Dropout`` and :class:`~course_utils.layers.PaperDropout` of ``model``."""
    return [m for m in model.modules() if isinstance(m, (nn.Dropout, PaperDropout))]


def scaled_probabilities(module: nn.Module, X: torch.Tensor, scale: float) -> torch.Tensor:
    """Eval-mode softmax with every dropout layer's output multiplied by ``scale``.

    With ``scale=0.5`` on a net trained with inverted dropout: what happens if one
    applies the paper's x0.5 on top.

    Parameters
    ----------
    module : nn.Module
        The trained network (``net.module_``).
    X : torch.Tensor
        Images.
    scale : float

    Returns
    -------
    torch.Tensor, shape (N, classes)
    """
    module.eval()
    hooks = [m.register_forward_hook(lambda mod, i, o: o * scale) for m in dropout_layers(module)]
    try:
        return batched_softmax(module, X)
    finally:
        for h in hooks:
            h.remove()


def mc_probabilities(module: nn.Module, X: torch.Tensor, passes: int = 20, seed: int = 0
                     ) -> torch.Tensor:
    """Average softmax over ``passes`` forward passes with dropout switched *on*.

    The rest of the net is in eval mode: this is the average the paper's x0.5
    approximates.

    Parameters
    ----------
    module : nn.Module
        The trained network; back in eval mode afterwards.
    X : torch.Tensor
        Images.
    passes : int
        Dropout masks averaged.
    seed : int
        Seed of the masks (:func:`course_utils.config.seed_everything`: ``nn.Dropout``
        takes no generator).

    Returns
    -------
    torch.Tensor, shape (N, classes)
    """
    module.eval()
    for m in dropout_layers(module):
        m.train()
    seed_everything(seed)
    try:
        return torch.stack([batched_softmax(module, X) for _ in range(passes)]).mean(0)
    finally:
        module.eval()


def scaling_table(module: nn.Module, X: torch.Tensor, y: torch.Tensor, p: float,
                  passes: int = 20):
    """Test accuracy and loss of a net trained with inverted dropout, evaluated three ways.

    As is, with the paper's extra ``x(1 - p)``, and as the average of ``passes``
    passes with dropout on (:func:`mc_probabilities`).

    Parameters
    ----------
    module : nn.Module
        The trained network.
    X, y : torch.Tensor
        Test images and labels.
    p : float
        The dropout rate it was trained with.
    passes : int

    Returns
    -------
    pandas.DataFrame
        One row per rule: accuracy, log loss, mean top probability.
    """
    import pandas as pd

    y = torch.as_tensor(y)
    variants = {
        "as is (inverted dropout: no scaling)": scaled_probabilities(module, X, 1.0),
        f"x{1 - p:g} at test as in the paper (scaled twice)":
            scaled_probabilities(module, X, 1 - p),
        f"average of {passes} passes with dropout on": mc_probabilities(module, X, passes),
    }
    rows = []
    for name, probs in variants.items():
        nll = float(-torch.log(probs[torch.arange(len(y)), y].clamp_min(1e-12)).mean())
        rows.append({"test-time rule": name, "accuracy": round(accuracy_from_scores(probs, y), 4),
                     "log loss": round(nll, 4),
                     "mean top probability": round(float(probs.max(1).values.mean()), 3)})
    return pd.DataFrame(rows)


def epochs_to_reach(losses, target: float) -> float:
    """First epoch (1-based) whose loss is at or below ``target``; NaN if none."""
    for i, loss in enumerate(losses, start=1):
        if loss <= target:
            return float(i)
    return math.nan


def rate_variants(rates) -> dict[str, dict]:
    """``run_variants`` variants, one per dropout rate: ``"dropout 0.5"`` ->
    ``{"module__dropout": 0.5}``."""
    return {variant_name(r): {"module__dropout": float(r)} for r in rates}


def variant_name(rate: float) -> str:
    """The name of the variant with dropout rate ``rate``: ``"dropout 0.5"``."""
    return f"dropout {float(rate):g}"


def convergence_table(nets: Mapping, n_train: int, batch_size: int, fraction: float = 0.25,
                      key: str = "train_loss_eval"):
    """Iterations each run needs to reach a fixed training loss, seed by seed.

    The loss is measured in eval mode (:class:`course_utils.training.EvalModeTrainScore`),
    on which dropout puts no noise: skorch's ``train_loss`` is measured with dropout
    on and would make a net with dropout look slower by its noise alone. For each
    seed the target is the eval-mode training loss that the run without dropout has
    after ``fraction`` of its epochs; the paper's "roughly doubles the number of
    iterations required to converge" predicts about twice as many iterations with
    p = 0.5.

    Parameters
    ----------
    nets : mapping
        ``(variant, seed) -> net`` from ``run_variants(rate_variants(...), keep_nets=True)``,
        trained with ``EvalModeTrainScore``; must hold ``"dropout 0"`` for every seed.
    n_train, batch_size : int
        Training images and batch size, to turn epochs into iterations.
    fraction : float
        Where in the no-dropout run the target is read (0.25: a quarter of the
        budget, so ratios up to 4 can show).
    key : str
        The history column.

    Returns
    -------
    pandas.DataFrame
        One row per run: variant, seed, target loss, epochs and iterations to reach
        it, and the ratio to the run without dropout (NaN where the budget ended
        first); ``attrs["max_ratio"]`` is the largest ratio the budget can show.
    """
    import pandas as pd

    base = variant_name(0.0)
    per_epoch = -(-int(n_train) // int(batch_size))
    rows, max_ratio = [], math.nan
    for (variant, seed), net in nets.items():
        ref = nets.get((base, seed))
        if ref is None:
            raise CourseError(f"convergence_table needs the run without dropout ({base!r}) "
                              f"for seed {seed}")
        ref_losses = list(ref.history[:, key])
        at = max(1, math.ceil(len(ref_losses) * fraction))
        target = float(ref_losses[at - 1])
        e = epochs_to_reach(net.history[:, key], target)
        e0 = epochs_to_reach(ref_losses, target)
        max_ratio = len(ref_losses) / e0
        rows.append({"variant": variant, "seed": seed, "target loss": target,
                     "epochs to reach": e, "iterations": e * per_epoch,
                     "x iterations of no dropout": e / e0})
    table = pd.DataFrame(rows)
    table.attrs["max_ratio"] = max_ratio
    return table


def mc_agreement(nets: Mapping, X: torch.Tensor, y: torch.Tensor, rate: float, passes: int):
    """:func:`scaling_table` for every seed's net trained at ``rate``, in one table.

    Returns
    -------
    pandas.DataFrame
        One row per (seed, test-time rule), and a column ``"|as is - MC|"`` on
        the MC rows: how far the deterministic pass is from the average of
        ``passes`` dropout passes, in accuracy.
    """
    import pandas as pd

    parts = []
    for (variant, seed), net in nets.items():
        if variant != variant_name(rate):
            continue
        t = scaling_table(net.module_, X, y, p=rate, passes=passes)
        t.insert(0, "seed", seed)
        t["|as is - MC|"] = (t["accuracy"] - t["accuracy"].iloc[0]).abs().where(
            t["test-time rule"].str.startswith("average"))
        parts.append(t)
    if not parts:
        raise CourseError(f"no net trained with dropout {rate} in the runs")
    return pd.concat(parts, ignore_index=True)


def _ratio_text(conv, rate: float) -> str:
    r = conv[conv["variant"] == variant_name(rate)]["x iterations of no dropout"]
    reached = r.dropna()
    if reached.empty:
        return f"not reached within the budget (more than {conv.attrs['max_ratio']:.1f}x)"
    text = format_mean_std(**mean_std(reached), digits=2)
    missed = len(r) - len(reached)
    return f"{text}x" + (f" ({missed} seed(s) did not reach it)" if missed else "")


#: The run metrics compared seed by seed, p = rate minus p = 0: the eval-mode gap, then
#: its two sides' validation half (accuracy and loss), then test accuracy.
COMPARED = ("gap", "valid_acc", "valid_loss", "test_acc")


def _compare(runs, rate: float):
    """Summary and paired differences (p = ``rate`` minus p = 0) of one experiment's runs;
    ``runs`` needs a ``valid_loss`` column (the notebook adds it from skorch's history)."""
    base, name = variant_name(0.0), variant_name(rate)
    if "valid_loss" not in runs.columns:
        raise CourseError("the runs need a valid_loss column: add the scored epoch's "
                          "valid_loss from each net's history")
    pair = runs[runs["variant"].isin([base, name])]
    summary = summarize_runs(pair, ("test_acc", "valid_acc", "valid_loss", "train_acc", "gap"))
    diffs = paired_table(pair, base, COMPARED)
    return summary, {m: diffs.loc[(m, name)] for m in COMPARED}


def _loss_text(d) -> str:
    return difference_text(d, scale=1.0, digits=3, unit="")


def _points(summary, variant: str, metric: str) -> str:
    return format_mean_std(100 * summary.loc[variant, f"{metric}_mean"],
                           100 * summary.loc[variant, f"{metric}_std"], 1)


def paper_table(runs, conv, mc, contrast=None, rate: float = 0.5, profile: str = "",
                device: str = "", contrast_fc6: int | None = None):
    """The paper's dropout statements next to our measurements (mean ± std over seeds).

    Parameters
    ----------
    runs : pandas.DataFrame
        ``run_variants(rate_variants(...))``'s table for AlexNet's classifier alone, with
        a ``valid_loss`` column.
    conv : pandas.DataFrame
        From :func:`convergence_table`.
    mc : pandas.DataFrame
        From :func:`mc_agreement`.
    contrast : pandas.DataFrame, optional
        The same table for today's small AlexNet (also with ``valid_loss``).
    rate : float
        The paper's rate, compared with no dropout.
    profile, device : str
        Where ours was measured; empty: the current profile and device.
    contrast_fc6 : int, optional
        How many values the contrast net's fc6 reads.

    Returns
    -------
    pandas.DataFrame
        One row per claim.
    """
    base, name = variant_name(0.0), variant_name(rate)
    summary, d = _compare(runs, rate)
    rules = mc.groupby("test-time rule", sort=False)["accuracy"]
    acc = {k: format_mean_std(**mean_std(v)) for k, v in rules}
    as_is, scaled, mc_rule = list(acc)
    vl = {v: format_mean_std(summary.loc[v, "valid_loss_mean"], summary.loc[v, "valid_loss_std"])
          for v in (base, name)}
    rows = [
        {"claim": "without dropout the net overfits substantially", "paper": "qualitative",
         "ours": f"classifier alone, p=0: train - valid gap {_points(summary, base, 'gap')} "
                 f"points (eval mode), validation loss {vl[base]}"},
        {"claim": "dropout in fc6 and fc7 reduces overfitting",
         "paper": "needed against substantial overfitting",
         "ours": f"p={rate:g} minus p=0: gap {difference_text(d['gap'])}; validation accuracy "
                 f"{difference_text(d['valid_acc'])}; validation loss "
                 f"{_loss_text(d['valid_loss'])} ({vl[base]} -> {vl[name]}): "
                 + gap_reading(d["gap"], d["valid_acc"])},
        {"claim": "dropout improves test accuracy", "paper": "needed for the reported results",
         "ours": f"test accuracy change (points), p={rate:g} minus p=0: "
                 f"{difference_text(d['test_acc'])}"},
        {"claim": "dropout roughly doubles the iterations to converge", "paper": "about 2x",
         "ours": f"{_ratio_text(conv, rate)} the iterations of p=0 to reach its eval-mode "
                 "training loss at a quarter of the budget"},
        {"claim": "multiply outputs by 0.5 at test time",
         "paper": "x0.5 (no rescaling in training)",
         "ours": f"inverted dropout, test accuracy: as is {acc[as_is]}, extra x{1 - rate:g} "
                 f"{acc[scaled]}, MC average {acc[mc_rule]}"},
    ]
    if contrast is not None:
        c_summary, c = _compare(contrast, rate)
        reads = f"fc6 reads {contrast_fc6} values" if contrast_fc6 else "the small AlexNet"
        rows.append({
            "claim": f"(contrast) the same dropout in today's small AlexNet ({reads})",
            "paper": "fc6 reads 9,216 values",
            "ours": "eval-mode training accuracy (%): "
                    f"p=0 {_points(c_summary, base, 'train_acc')}, "
                    f"p={rate:g} {_points(c_summary, name, 'train_acc')}; gap "
                    f"{difference_text(c['gap'])}; validation accuracy "
                    f"{difference_text(c['valid_acc'])}: {gap_reading(c['gap'], c['valid_acc'])}"})
    return claim_table(rows, profile, device).reset_index()


def dropout_verdict(runs, conv, rate: float = 0.5, gap_bound: float | None = None,
                    contrast=None, contrast_fc6: int | None = None) -> str:
    """The experiment's conclusion in sentences, chosen from the runs' values.

    Parameters
    ----------
    runs, conv, contrast : pandas.DataFrame
        As for :func:`paper_table`.
    rate : float
    gap_bound : float, optional
        The budget's overfitting bound for the run without dropout.
    contrast_fc6 : int, optional
        How many values the contrast net's fc6 reads.

    Returns
    -------
    str
    """
    base, name = variant_name(0.0), variant_name(rate)
    summary, d = _compare(runs, rate)
    g0 = float(summary.loc[base, "gap_mean"])
    lines = [f"AlexNet's classifier alone, without dropout: train - valid gap {100 * g0:.1f} "
             "points (eval mode)"
             + (", so the nets overfit." if gap_bound is not None and g0 >= gap_bound else ".")]
    gap, valid, loss, acc = (d[m] for m in COMPARED)
    lines.append(f"Dropout at p={rate:g}, minus none: the gap {difference_text(gap)}; validation "
                 f"accuracy {difference_text(valid)}; validation loss {_loss_text(loss)}. "
                 f"So: {gap_reading(gap, valid)}.")
    lines.append(f"It {verdict_verb(acc['verdict'], 'raise', 'lower')} test "
                 f"accuracy ({difference_text(acc)}).")
    r = conv[conv["variant"] == name]["x iterations of no dropout"]
    if r.isna().any():
        lines.append(f"It needs more than {conv.attrs['max_ratio']:.1f}x the iterations of the "
                     "net without dropout to reach the same eval-mode training loss on "
                     f"{int(r.isna().sum())} of {len(r)} seeds: slower than the paper's 2x.")
    else:
        m = float(r.mean())
        where = ("about the paper's 2x" if 1.5 <= m <= 2.5 else
                 "less than the paper's 2x" if m < 1.5 else "more than the paper's 2x")
        lines.append(f"It needs {m:.2f}x the iterations to reach the same eval-mode training "
                     f"loss: {where}.")
    if contrast is not None:
        c_summary, c = _compare(contrast, rate)
        reads = f" (fc6 reads {contrast_fc6} values)" if contrast_fc6 else ""
        t0, t1 = (float(c_summary.loc[v, "train_acc_mean"]) for v in (base, name))
        lines.append(f"In today's small AlexNet{reads}, the same dropout minus none: the gap "
                     f"{difference_text(c['gap'])}; validation accuracy "
                     f"{difference_text(c['valid_acc'])}. So: "
                     f"{gap_reading(c['gap'], c['valid_acc'])}; eval-mode training accuracy is "
                     f"{t0:.3f} without dropout and {t1:.3f} with it.")
    return "\n".join(lines)
