"""Notebook 01's exercises (ReLU against sigmoid): their cases and reference solutions."""
from __future__ import annotations

import torch

from .judge import Exercise, generator, int_function, number, register, tensor_function

__all__ = ["EXERCISES", "dead_channels", "eight_sigmoid_layers", "tanh_prime"]


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


def dead_channels(acts):
    # a dead channel is 0 for every image (dim 0) and position (dims 2, 3)
    return int(acts.eq(0).all(dim=(0, 2, 3)).sum())


# --------------------------------------------------------------------------- test inputs

def _tanh_cases(reference):
    cases = []
    for shown, z in (("torch.linspace(-6, 6, 101)", torch.linspace(-6, 6, 101)),
                     ("a random (4, 5) tensor", 3 * torch.randn(4, 5, generator=generator(1)))):
        leaf = z.clone().requires_grad_(True)
        torch.tanh(leaf).sum().backward()  # autograd's tanh', not the reference's formula
        cases.append((shown, (z,), {}, leaf.grad))
    return cases


def _dead_channel_cases(reference):
    def acts(shape, seed, dead=(), almost=(), one_image=()):
        a = torch.relu(torch.randn(*shape, generator=generator(seed)))
        a[:, list(dead)] = 0
        for c in almost:  # zero except one position of one image: not dead
            a[:, c] = 0
            a[-1, c, 0, 0] = 1.0
        for c in one_image:  # zero in the first image only: not dead
            a[0, c] = 0
        return a

    batches = [
        ("a (8, 6, 5, 5) batch", acts((8, 6, 5, 5), 2, dead=(1, 4))),
        ("a (4, 10, 3, 3) batch with channels that are zero almost everywhere",
         acts((4, 10, 3, 3), 3, dead=(0, 2, 3, 9), almost=(5,), one_image=(7,))),
        ("a (2, 3, 4, 4) batch", acts((2, 3, 4, 4), 4)),
        ("a (3, 4, 2, 2) batch", acts((3, 4, 2, 2), 5, dead=(0, 1, 2, 3))),
    ]
    return [(f"dead_channels({shown})", (a,), {}, int(reference(a.clone())))
            for shown, a in batches]


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
        "01-3", "how many channels of a post-ReLU activation tensor (N, C, H, W) are zero for "
        "every image and position", "a function dead_channels(acts) returning an int",
        dead_channels, int_function("dead_channels", _dead_channel_cases), write_it=True),
)
