"""Notebook 01's exercises (ReLU against sigmoid): their cases and reference solutions."""
from __future__ import annotations

import torch

from torch import nn

from .judge import Exercise, generator, module_class, number, register, tensor_function

__all__ = ["EXERCISES", "LeakyReLU", "eight_sigmoid_layers", "tanh_prime"]


# --------------------------------------------------------------------------- reference solutions

def tanh_prime(z):
    return 1 - torch.tanh(z) ** 2  # tanh'(z) = 1 - tanh(z)^2


def eight_sigmoid_layers():
    import torch

    # sigmoid'(z) = s(1 - s): measure its largest value with autograd on a grid
    z = torch.linspace(-10, 10, 2001, requires_grad=True)
    torch.sigmoid(z).sum().backward()
    largest = z.grad.max().item()  # at z = 0
    return largest ** 8  # the chain rule multiplies the eight local gradients


class LeakyReLU(nn.Module):
    def __init__(self, slope=0.01):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        return torch.where(x > 0, x, self.slope * x)  # a small slope below zero


# --------------------------------------------------------------------------- test inputs

def _tanh_cases(reference):
    cases = []
    for shown, z in (("torch.linspace(-6, 6, 101)", torch.linspace(-6, 6, 101)),
                     ("a random (4, 5) tensor", 3 * torch.randn(4, 5, generator=generator(1)))):
        leaf = z.clone().requires_grad_(True)
        torch.tanh(leaf).sum().backward()  # autograd's tanh', not the reference's formula
        cases.append((shown, (z,), {}, leaf.grad))
    return cases


def _leaky_cases(reference):
    cases = []
    for seed, (args, shape) in enumerate((((0.01,), (4, 6)), ((0.2,), (2, 3, 5, 5)),
                                           ((0.5,), (7,)), ((0.0,), (3, 4)))):
        x = 3 * torch.randn(*shape, generator=generator(10 + seed))
        x.view(-1)[0] = 0.0  # zero is not negative: 0 either way
        cases.append((f"a random {tuple(shape)} tensor", args, x, reference(*args)(x)))
    return cases


def _leaky_mistakes(args, x):
    slope = args[0]
    return [
        (torch.relu(x), "negative inputs give 0: that is a plain ReLU, the slope is missing"),
        (torch.where(x > 0, slope * x, x), "the slope goes on the negative side, not the "
                                            "positive one"),
        (torch.where(x > 0, x, 0.01 * x), "your module ignores the slope it is given: keep "
                                           "it in __init__ (self.slope) and use it in forward"),
        (torch.where(x > 0, x, slope * x.abs()), "a negative input must stay negative: "
                                                 "slope * x, not slope * |x|"),
    ]


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "01-1", "tanh's derivative as a function of a tensor z", "a function of a tensor z",
        tanh_prime, tensor_function("f", _tanh_cases, atol=1e-5), write_it=True),
    Exercise(
        "01-2", "the largest factor by which eight stacked sigmoid layers can scale a gradient "
        "through their local gradients alone", "a number",
        eight_sigmoid_layers,
        number(rel=1e-3, mistakes=lambda: [
            (0.25, ("that is one layer's largest local gradient; the chain rule multiplies "
                    "eight of them")),
            (0.25 * 8, ("the chain rule multiplies the layers' local gradients, it does not "
                        "add them"))])),
    Exercise(
        "01-3", "a leaky ReLU as an nn.Module: x where x > 0, slope * x elsewhere",
        "an nn.Module class LeakyReLU(slope)",
        LeakyReLU, module_class("LeakyReLU", _leaky_cases, atol=1e-6, mistakes=_leaky_mistakes,
                                forbidden=("leaky_relu", "LeakyReLU", "rrelu")),
        write_it=True),
)
