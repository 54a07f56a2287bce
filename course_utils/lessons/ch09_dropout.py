"""Notebook 09: dropout (section 4.2 of the paper), measured: the train-valid gap, the
convergence cost, and why PyTorch needs no x0.5 at test time.

The paper sets "to zero the output of each hidden neuron with probability 0.5"
in fc6 and fc7 and, at test time, uses all neurons but "multiplies their
outputs by 0.5". PyTorch's :class:`torch.nn.Dropout` is *inverted* dropout: it
divides the kept outputs by ``1 - p`` during training instead, so the expected
activation is already right and evaluation uses the layer as is.
:class:`course_utils.layers.PaperDropout` is the paper's version, for comparison.

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
           "expectation_table", "mc_agreement", "mc_probabilities", "mean_output", "paper_table",
           "rate_variants", "scaled_probabilities", "scaling_table", "variant_name"]


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """Every ``nn.Dropout`` and :class:`~course_utils.layers.PaperDropout` of ``model``."""
    return [m for m in model.modules() if isinstance(m, (nn.Dropout, PaperDropout))]


@torch.no_grad()
def mean_output(layer: nn.Module, x: torch.Tensor, training: bool, passes: int = 200) -> float:
    """Mean output of ``layer`` for ``x``.

    Parameters
    ----------
    layer : nn.Module
        A dropout layer; left in eval mode afterwards.
    x : torch.Tensor
        Activations.
    training : bool
        Training mode (averaged over ``passes`` random masks) or eval mode (one pass).
    passes : int

    Returns
    -------
    float
    """
    layer.train(training)
    n = passes if training else 1
    total = sum(float(layer(x).mean()) for _ in range(n)) / n
    layer.eval()
    return total


def expectation_table(p: float = 0.5, seed: int = 0, passes: int = 200):
    """Training-mode average against test-time output, for inverted and paper dropout.

    Both see the same random positive activations; only matching columns give the
    network at test time the inputs it was trained on.

    Parameters
    ----------
    p : float
        Dropout rate.
    seed : int
        Seed of the activations (their own generator) and of the masks
        (:func:`course_utils.config.seed_everything`: ``nn.Dropout`` takes no generator).
    passes : int
        Masks averaged in training mode.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(256, 128, generator=g) * 2
    rows = []
    for name, layer in (("inverted (torch.nn.Dropout)", nn.Dropout(p)),
                        ("paper (PaperDropout)", PaperDropout(p))):
        seed_everything(seed)
        train_mean = mean_output(layer, x, True, passes)
        rows.append({"dropout": name, "input mean": round(float(x.mean()), 3),
                     "training: mean output": round(train_mean, 3),
                     "test: output as is": round(mean_output(layer, x, False), 3)})
    return pd.DataFrame(rows)


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


def paper_table(runs, conv, mc, rate: float = 0.5, profile: str = "", device: str = ""):
    """The paper's three dropout statements next to our measurements (mean ± std over seeds).

    Parameters
    ----------
    runs : pandas.DataFrame
        ``run_variants(rate_variants(...))``'s table.
    conv : pandas.DataFrame
        From :func:`convergence_table`.
    mc : pandas.DataFrame
        From :func:`mc_agreement`.
    rate : float
        The paper's rate, compared with no dropout.
    profile, device : str
        Where ours was measured; empty: the current profile and device.

    Returns
    -------
    pandas.DataFrame
        One row per claim.
    """
    base, name = variant_name(0.0), variant_name(rate)
    summary = summarize_runs(runs)
    pair = runs[runs["variant"].isin([base, name])]
    diffs = paired_table(pair, base, ("test_acc", "gap", "valid_acc"))
    gap = lambda v: format_mean_std(100 * summary.loc[v, "gap_mean"],  # noqa: E731
                                    100 * summary.loc[v, "gap_std"], 1)
    d = lambda m: difference_text(diffs.loc[(m, name)])  # noqa: E731
    rules = mc.groupby("test-time rule", sort=False)["accuracy"]
    acc = {k: format_mean_std(**mean_std(v)) for k, v in rules}
    as_is, scaled, mc_rule = list(acc)
    rows = [
        {"claim": "without dropout the net overfits substantially", "paper": "qualitative",
         "ours": f"train - valid gap (eval mode, points): p=0 {gap(base)}, p={rate:g} {gap(name)}; "
                 f"change {d('gap')}: "
                 + gap_reading(diffs.loc[("gap", name)], diffs.loc[("valid_acc", name)])},
        {"claim": "dropout improves test accuracy", "paper": "needed for the reported results",
         "ours": f"test accuracy change (points), p={rate:g} minus p=0: {d('test_acc')}"},
        {"claim": "dropout roughly doubles the iterations to converge", "paper": "about 2x",
         "ours": f"{_ratio_text(conv, rate)} the iterations of p=0 to reach its eval-mode "
                 "training loss at a quarter of the budget"},
        {"claim": "multiply outputs by 0.5 at test time",
         "paper": "x0.5 (no rescaling in training)",
         "ours": f"inverted dropout, test accuracy: as is {acc[as_is]}, extra x{1 - rate:g} "
                 f"{acc[scaled]}, MC average {acc[mc_rule]}"},
    ]
    return claim_table(rows, profile, device).reset_index()


def dropout_verdict(runs, conv, rate: float = 0.5, gap_bound: float | None = None) -> str:
    """The experiment's conclusion in sentences, chosen from the runs' values.

    Parameters
    ----------
    runs, conv : pandas.DataFrame
        As for :func:`paper_table`.
    rate : float
    gap_bound : float, optional
        The budget's overfitting bound for the run without dropout.

    Returns
    -------
    str
    """
    base, name = variant_name(0.0), variant_name(rate)
    summary = summarize_runs(runs)
    diffs = paired_table(runs[runs["variant"].isin([base, name])], base,
                         ("test_acc", "gap", "valid_acc"))
    g0 = float(summary.loc[base, "gap_mean"])
    lines = [f"Without dropout the train - valid gap is {100 * g0:.1f} points (eval mode)"
             + (", so the nets overfit." if gap_bound is not None and g0 >= gap_bound else ".")]
    acc, gap, valid = (diffs.loc[(m, name)] for m in ("test_acc", "gap", "valid_acc"))
    lines.append(f"Dropout at p={rate:g} {verdict_verb(acc['verdict'], 'raise', 'lower')} test "
                 f"accuracy ({difference_text(acc)}); the gap changes by {difference_text(gap)}, "
                 f"and validation accuracy by {difference_text(valid)}: {gap_reading(gap, valid)}.")
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
    return "\n".join(lines)
