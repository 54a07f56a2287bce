"""Notebook 07's exercise (the full AlexNet): the paper's initialisation, written by hand."""
from __future__ import annotations

import math

import torch
from torch import nn

from .judge import Exercise, call_answer, describe, register

__all__ = ["EXERCISES", "init_paper"]


# --------------------------------------------------------------------------- reference solutions

def init_paper(model):
    # section 5: weights from a zero-mean Gaussian with standard deviation 0.01; biases
    # of 1 in conv2, conv4, conv5 and the fully connected hidden layers, 0 elsewhere
    bias_one = {"conv2", "conv4", "conv5", "fc6", "fc7"}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(module.weight, mean=0.0, std=0.01)
            layer = name.rsplit(".", 1)[-1]  # "features.conv2" -> "conv2"
            nn.init.constant_(module.bias, 1.0 if layer in bias_one else 0.0)
    return model


# --------------------------------------------------------------------------- the judge

#: The weights' standard deviation in the paper, and how far a layer's sample std may
#: stray from it (relative): a layer has at least 1,280 weights, whose sample std has a
#: relative standard error of at most 2%.
STD, STD_TOLERANCE = 0.01, 0.10
#: A sample mean within this many standard errors (std / sqrt(n)) of 0 is 0.
MEAN_ERRORS = 6.0
#: A Gaussian's kurtosis is 3, a uniform distribution's 1.8; below this, not Gaussian.
KURTOSIS_FLOOR = 2.4


def _nets():
    """Freshly built nets (the course's He/Xavier init, zero biases) to initialise."""
    from ..models import AlexNet, AlexNetSmall

    return [("a fresh AlexNetSmall()", AlexNetSmall),
            ("a fresh AlexNetSmall(lrn=True, two_tower=True, hidden=256)",
             lambda: AlexNetSmall(lrn=True, two_tower=True, hidden=256)),
            ("a fresh 227x227 AlexNet(hidden=256)", lambda: AlexNet(hidden=256))]


def _layers(model) -> dict[str, nn.Module]:
    """The conv and linear layers by their short names (conv1 ... fc8)."""
    return {name.rsplit(".", 1)[-1]: m for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))}


def _kurtosis(w: torch.Tensor) -> float:
    z = (w - w.mean()) / w.std()
    return float((z ** 4).mean())


def _names(layers) -> str:
    return ", ".join(layers)


def _weight_problem(layers, before) -> str | None:
    """What is wrong with the weights, the common mistakes first; None when right."""
    kept = [n for n, m in layers.items() if torch.equal(m.weight.detach(), before[n])]
    convs = [n for n, m in layers.items() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in layers.items() if isinstance(m, nn.Linear)]
    if set(kept) == set(layers):
        return ("every layer kept the weights it had: initialise them in place, with "
                "nn.init.normal_ on each nn.Conv2d and nn.Linear")
    if set(kept) == set(convs):
        return ("the convolutions (nn.Conv2d: conv1 ... conv5) kept their old weights: the "
                "paper draws theirs from N(0, 0.01) too")
    if set(kept) == set(linears):
        return ("the fully connected layers (nn.Linear: fc6, fc7, fc8) kept their old weights: "
                "the paper draws theirs from N(0, 0.01) too")
    if kept:
        return f"{_names(kept)} kept the weights it had: initialise every conv and linear layer"
    weights = {n: m.weight.detach().double() for n, m in layers.items()}
    stats = {n: (float(w.mean()), float(w.std()), w.numel()) for n, w in weights.items()}
    if all(abs(s / (10 * STD) - 1) < STD_TOLERANCE for _, s, _ in stats.values()):
        return ("your weights have a standard deviation of about 0.1: the paper's 0.01 is the "
                "standard deviation (std=0.01), not the variance")
    shifted = [n for n, (mean, std, count) in stats.items()
               if abs(mean) > MEAN_ERRORS * std / math.sqrt(count)]
    if shifted:
        mean = stats[shifted[0]][0]
        if math.isclose(mean, STD, rel_tol=0.2):
            return ("the weights are centred on 0.01: nn.init.normal_(w, 0.01) sets the *mean* "
                    "(its arguments are mean, then std); pass mean=0.0, std=0.01")
        return (f"the weights of {_names(shifted)} are not centred on 0 (mean {mean:.3g} in "
                f"{shifted[0]}): the paper's Gaussian has mean 0")
    off = [n for n, (_, std, _) in stats.items() if abs(std / STD - 1) >= STD_TOLERANCE]
    if off == linears[-1:]:
        return (f"the output layer {off[0]} has a standard deviation of {stats[off[0]][1]:.3g}: "
                "the paper draws it from N(0, 0.01) like every other layer (a smaller one, "
                "as the course's head_std, is the course's change, not the paper's)")
    if off:
        std = stats[off[0]][1]
        return (f"the weights of {_names(off)} have the wrong spread ({off[0]}: standard "
                f"deviation {std:.3g}): the paper's is 0.01 in every layer")
    flat = [n for n, w in weights.items() if _kurtosis(w) < KURTOSIS_FLOOR]
    if flat:
        return (f"the weights of {_names(flat)} are not Gaussian (too few far from 0, as from "
                "a uniform distribution): draw them with nn.init.normal_")
    return None


def _bias_problem(layers, expected) -> str | None:
    """What is wrong with the biases; None when each is the reference's constant."""
    got = {}
    for name, m in layers.items():
        values = m.bias.detach()
        got[name] = float(values[0]) if torch.all(values == values[0]) else None
    if got == expected:
        return None
    constant = set(got.values())
    if constant == {1.0}:
        return ("every bias is 1: the paper gives a bias of 1 only to conv2, conv4, conv5 and "
                "the hidden fully connected layers fc6 and fc7; conv1, conv3 and the output "
                "layer fc8 start at 0")
    if constant == {0.0}:
        return ("every bias is 0: the paper starts the biases of conv2, conv4, conv5, fc6 and "
                "fc7 at 1, so that their ReLUs start with positive inputs")
    mixed = [n for n, v in got.items() if v is None]
    if mixed:
        return (f"the biases of {_names(mixed)} are not one constant: set each layer's with "
                "nn.init.constant_")
    wrong = [f"{n} ({got[n]:g}, should be {expected[n]:g})" for n in expected
             if got[n] != expected[n]]
    return f"wrong biases: {'; '.join(wrong)}"


def _paper_init(answer, reference):
    if not callable(answer):
        return f"expected a function init_paper(model), got {describe(answer)}"
    init = reference()
    for seed, (shown, build) in enumerate(_nets()):
        torch.manual_seed(seed)
        expected = {n: float(m.bias.detach()[0]) for n, m in _layers(init(build())).items()}
        torch.manual_seed(seed)
        net = build()
        before = {n: m.weight.detach().clone() for n, m in _layers(net).items()}
        with torch.no_grad():
            out, error = call_answer(answer, (net,), {}, f"init_paper({shown})")
        if error:
            return error
        model = out if isinstance(out, nn.Module) else net
        layers = _layers(model)
        if set(layers) != set(before):
            return f"init_paper({shown}) returned another network: initialise the one it gets"
        problem = _weight_problem(layers, before) or _bias_problem(layers, expected)
        if problem:
            return f"on {shown}: {problem}"
    return None


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "07-1", "the paper's initialisation of AlexNet, written by hand: every conv and linear "
        "layer's weights from N(0, 0.01) (std 0.01), biases of 1 in conv2, conv4, conv5, fc6 "
        "and fc7 and 0 in conv1, conv3 and fc8", "a function init_paper(model) that "
        "initialises the model in place",
        init_paper, _paper_init, write_it=True),
)
