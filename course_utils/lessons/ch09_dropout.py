"""Notebook 09: dropout (section 4.2 of the paper), measured: the train-valid gap, the
convergence cost, and why PyTorch needs no x0.5 at test time.

The paper sets "to zero the output of each hidden neuron with probability 0.5"
in fc6 and fc7 and, at test time, uses all neurons but "multiplies their
outputs by 0.5". PyTorch's :class:`torch.nn.Dropout` is *inverted* dropout: it
divides the kept outputs by ``1 - p`` during training instead, so the expected
activation is already right and evaluation uses the layer as is.
:class:`course_utils.layers.PaperDropout` is the paper's version, for comparison.

The runs are :class:`course_utils.experiment.RunResult` objects keyed by their
dropout rate (``{0.0: run, 0.5: run}``); the budget, the rates and the bounds
are ``course_utils.budgets.budget("09")``.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch
from torch import nn

from ..config import CourseError
from ..experiment import RunResult, claim_table
from ..layers import PaperDropout
from ..training import batched_softmax

__all__ = ["convergence_table", "dropout_layers", "epochs_to_reach", "expectation_table",
           "gap_table", "mc_probabilities", "mean_output", "paper_table",
           "scaled_probabilities", "scaling_table"]


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
        Seed of the activations and the masks.
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
        torch.manual_seed(seed)
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
        Seed of the masks.

    Returns
    -------
    torch.Tensor, shape (N, classes)
    """
    module.eval()
    for m in dropout_layers(module):
        m.train()
    torch.manual_seed(seed)
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
        f"x{1 - p:g} at test as in the paper (scaled twice)": scaled_probabilities(module, X, 1 - p),
        f"average of {passes} passes with dropout on": mc_probabilities(module, X, passes),
    }
    rows = []
    for name, probs in variants.items():
        nll = float(-torch.log(probs[torch.arange(len(y)), y].clamp_min(1e-12)).mean())
        rows.append({"test-time rule": name, "accuracy": round(float((probs.argmax(1) == y)
                                                                     .float().mean()), 4),
                     "log loss": round(nll, 4),
                     "mean top probability": round(float(probs.max(1).values.mean()), 3)})
    return pd.DataFrame(rows)


def epochs_to_reach(losses, target: float) -> float:
    """First epoch (1-based) whose loss is at or below ``target``; NaN if none."""
    for i, loss in enumerate(losses, start=1):
        if loss <= target:
            return float(i)
    return math.nan


def convergence_table(runs: Mapping[float, RunResult], n_train: int, batch_size: int):
    """Iterations each run needs to reach a fixed training loss.

    The target is the training loss that the run without dropout (``runs[0.0]``)
    has at half its epochs: the paper's "roughly doubles the number of iterations
    required to converge", measured on our budget.

    Parameters
    ----------
    runs : mapping of float to RunResult
        Dropout rate -> run, with the nets kept (``keep_net=True``); must hold rate 0.0.
    n_train, batch_size : int
        Training images and batch size, to turn epochs into iterations.

    Returns
    -------
    pandas.DataFrame
        One row per rate; ``attrs["target_loss"]`` and ``attrs["max_ratio"]`` (the
        largest ratio the budget can show).
    """
    import pandas as pd

    if 0.0 not in runs:
        raise CourseError("convergence_table needs the run without dropout (rate 0.0)")
    losses0 = list(runs[0.0].net.history[:, "train_loss"])
    half = max(1, len(losses0) // 2)
    target = float(losses0[half - 1])
    per_epoch = -(-n_train // batch_size)
    rows = []
    for rate, r in runs.items():
        e = epochs_to_reach(r.net.history[:, "train_loss"], target)
        rows.append({"dropout rate": rate, "epochs to reach target": e,
                     "iterations": e * per_epoch if not math.isnan(e) else math.nan,
                     "x iterations of no dropout": (round(e / half, 2) if not math.isnan(e)
                                                    else math.nan),
                     "reached within budget": not math.isnan(e)})
    table = pd.DataFrame(rows)
    table.attrs["target_loss"] = target
    table.attrs["max_ratio"] = round(len(losses0) / half, 2)
    return table


def gap_table(runs: Mapping[float, RunResult]):
    """Train, validation and test accuracy and the train-valid gap per dropout rate.

    ``train_acc`` is :func:`~course_utils.experiment.train_variant`'s: eval mode
    (dropout off) on the training images, so it compares fairly with validation.

    Parameters
    ----------
    runs : mapping of float to RunResult
        Dropout rate -> run.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    return pd.DataFrame([{"dropout rate": rate, "train acc": round(r.train_acc, 3),
                          "valid acc": round(r.valid_acc, 3),
                          "train - valid gap": round(r.gap, 3),
                          "test acc": round(r.test_acc, 3)} for rate, r in runs.items()])


def paper_table(gaps, conv, scaling, profile: str = "", device: str = ""):
    """The paper's three dropout statements next to our measurements.

    Parameters
    ----------
    gaps, conv, scaling : pandas.DataFrame
        From :func:`gap_table`, :func:`convergence_table` and :func:`scaling_table`.
    profile, device : str
        Where ours was measured; empty: the current profile and device.

    Returns
    -------
    pandas.DataFrame
        One row per claim.
    """
    g = gaps.set_index("dropout rate")["train - valid gap"]
    half = conv.set_index("dropout rate")["x iterations of no dropout"]
    p_half = 0.5 if 0.5 in half.index else half.index[-1]
    ratio = half.get(p_half, np.nan)
    acc = scaling["accuracy"].tolist()
    rows = [
        {"claim": "without dropout the net overfits substantially", "paper": "qualitative",
         "ours": f"train-valid gap {g.iloc[0]:+.3f} at p=0, {g.get(p_half, np.nan):+.3f} at p={p_half}"},
        {"claim": "dropout roughly doubles the iterations to converge", "paper": "about 2x",
         "ours": (f"{ratio:.2f}x at p={p_half}" if not np.isnan(ratio)
                  else f"more than {conv.attrs.get('max_ratio', 2)}x (not reached in the budget)")},
        {"claim": "multiply outputs by 0.5 at test time", "paper": "x0.5 (no rescaling in training)",
         "ours": f"inverted dropout: as is {acc[0]:.3f}, extra x0.5 {acc[1]:.3f}, "
                 f"MC average {acc[2]:.3f}"},
    ]
    return claim_table(rows, profile, device).reset_index()
