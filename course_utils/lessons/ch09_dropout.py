"""Dropout (section 4.2 of the paper), measured: the train-valid gap, the convergence cost,
and why PyTorch needs no x0.5 at test time.

The paper sets "to zero the output of each hidden neuron with probability 0.5"
in fc6 and fc7 and, at test time, uses all neurons but "multiplies their
outputs by 0.5". PyTorch's :class:`torch.nn.Dropout` is *inverted* dropout: it
divides the kept outputs by ``1 - p`` during training instead, so the expected
activation is already right and evaluation uses the layer as is.
:class:`PaperDropout` is the paper's version, for comparison.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..config import CourseError
from ..experiments import claim_table
from ..training import batched_softmax
from ..training import accuracy

#: Training budget for notebook 09 and the dropout rates it compares.
RUNS = {
    "smoke": dict(train=200, epochs=2, test=200, valid=100, batch_size=32, rates=(0.0, 0.5)),
    "quick": dict(train=500, epochs=8, test=1_000, valid=300, batch_size=32,
                  rates=(0.0, 0.25, 0.5)),
    "full": dict(train=5_000, epochs=40, test=None, valid=10_000, batch_size=128,
                 rates=(0.0, 0.25, 0.5, 0.75)),  # full: not measured here (no GPU)
}
#: Lowest test accuracy accepted for every rate in notebook 09.
BOUNDS = {"smoke": 0.1, "quick": 0.2, "full": 0.7}  # full: an estimate, not measured


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Dropout, PaperDropout))]


@torch.no_grad()
def mean_output(layer: nn.Module, x: torch.Tensor, training: bool, passes: int = 200) -> float:
    """Mean output of ``layer`` for ``x`` in training mode (averaged over ``passes``
    random masks) or in eval mode."""
    layer.train(training)
    n = passes if training else 1
    total = sum(float(layer(x).mean()) for _ in range(n)) / n
    layer.eval()
    return total


def expectation_table(p: float = 0.5, seed: int = 0, passes: int = 200):
    """Training-mode average vs test-time output for inverted and paper dropout on the
    same positive activations: only matching columns give the network at test time the
    inputs it was trained on."""
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
    """Eval-mode softmax with every dropout layer's output multiplied by ``scale``: what
    happens if one applies the paper's x0.5 to a net trained with inverted dropout."""
    module.eval()
    hooks = [m.register_forward_hook(lambda mod, i, o: o * scale) for m in dropout_layers(module)]
    try:
        return batched_softmax(module, X)
    finally:
        for h in hooks:
            h.remove()


def mc_probabilities(module: nn.Module, X: torch.Tensor, passes: int = 20, seed: int = 0
                     ) -> torch.Tensor:
    """Average softmax over ``passes`` forward passes with dropout switched *on*
    (the rest of the net in eval mode): the average the paper's x0.5 approximates."""
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
    """Test accuracy and loss of a net trained with inverted dropout, evaluated three ways."""
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


def convergence_table(runs: list[dict], n_train: int, batch_size: int):
    """Iterations each run needs to reach the training loss that the run without dropout
    (``runs[0]``) has at half its epochs: the paper's "roughly doubles the number of
    iterations required to converge", measured on our budget."""
    import pandas as pd

    base = runs[0]
    if base["rate"] != 0.0:
        raise CourseError("the first run must be the one without dropout (rate 0.0)")
    losses0 = list(base["net"].history[:, "train_loss"])
    half = max(1, len(losses0) // 2)
    target = float(losses0[half - 1])
    per_epoch = -(-n_train // batch_size)
    rows = []
    for r in runs:
        e = epochs_to_reach(r["net"].history[:, "train_loss"], target)
        rows.append({"dropout rate": r["rate"], "epochs to reach target": e,
                     "iterations": e * per_epoch if not math.isnan(e) else math.nan,
                     "x iterations of no dropout": (round(e / half, 2) if not math.isnan(e)
                                                    else math.nan),
                     "reached within budget": not math.isnan(e)})
    table = pd.DataFrame(rows)
    table.attrs["target_loss"] = target
    table.attrs["max_ratio"] = round(len(losses0) / half, 2)
    return table


def gap_table(runs: list[dict], data) -> "object":
    """Clean train accuracy (eval mode, whole training subset), validation and test
    accuracy and the train-valid gap for each dropout rate."""
    import pandas as pd

    rows = []
    for r in runs:
        train = accuracy(r["net"], data.X_train, data.y_train)
        valid = accuracy(r["net"], data.X_valid, data.y_valid)
        rows.append({"dropout rate": r["rate"], "train acc": round(train, 3),
                     "valid acc": round(valid, 3), "train - valid gap": round(train - valid, 3),
                     "test acc": round(r["test_acc"], 3)})
    return pd.DataFrame(rows)


def paper_table(gaps, conv, scaling, profile: str = "", device: str = ""):
    """The paper's three dropout statements next to our measurements."""
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
    # one row per claim: paper against ours, with profile and device
    return claim_table(rows, profile, device).reset_index()
