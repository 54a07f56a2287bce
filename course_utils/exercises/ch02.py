"""Notebook 02's exercises (Local Response Normalization): their cases and reference
solutions."""
from __future__ import annotations

import torch

from .judge import Exercise, generator, number, register, tensor_function

__all__ = ["EXERCISES", "lrn", "lrn_divisor", "pytorch_alpha"]


# --------------------------------------------------------------------------- reference solutions

def pytorch_alpha():
    from course_utils.layers import LocalResponseNorm

    paper = LocalResponseNorm(size=7, alpha=1e-4, convention="paper")
    # nn.LocalResponseNorm multiplies the sum of squares by alpha / size,
    # so it needs size times the factor the paper uses
    return paper.effective_alpha * paper.size


def lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    C = a.shape[1]
    out = torch.empty_like(a)
    for i in range(C):
        # the channels max(0, i - n/2) .. min(C - 1, i + n/2) that exist
        lo, hi = max(0, i - n // 2), min(C - 1, i + n // 2)
        window = (a[:, lo:hi + 1] ** 2).sum(dim=1)
        out[:, i] = a[:, i] / (k + alpha * window) ** beta  # alpha not divided by n
    return out


def lrn_divisor():
    import torch

    from course_utils.layers import LocalResponseNorm

    a = torch.full((1, 5, 1, 1), 100.0)  # five channels, activity 100 in each
    lrn = LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0, convention="paper")
    # LRN divides by the divisor, so divisor = a / lrn(a); the middle channel's
    # window holds all five channels
    return (a / lrn(a))[0, 2, 0, 0].item()


# --------------------------------------------------------------------------- test inputs

def _params(kwargs):
    return {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75, **kwargs}


def _lrn_cases(reference):
    from ..layers import LocalResponseNorm

    cases = []
    for shown, a, params in (
            ("a random (2, 8, 4, 4) batch x 50, default parameters",
             50 * torch.randn(2, 8, 4, 4, generator=generator(6)), {}),
            ("a random (3, 7, 5, 5) batch x 100, default parameters",
             100 * torch.randn(3, 7, 5, 5, generator=generator(7)), {}),
            ("a random (2, 6, 3, 3) batch x 20 with n=3, k=1.0, alpha=1e-3, beta=0.5",
             20 * torch.randn(2, 6, 3, 3, generator=generator(8)),
             {"n": 3, "k": 1.0, "alpha": 1e-3, "beta": 0.5})):
        p = _params(params)  # the course's layer, not the reference's loop
        layer = LocalResponseNorm(p["n"], p["alpha"], p["beta"], p["k"], convention="paper")
        cases.append((shown, (a,), params, layer(a)))
    return cases


def _lrn_mistakes(args, kwargs):
    from ..layers import LocalResponseNorm

    p = _params(kwargs)
    caffe = LocalResponseNorm(p["n"], p["alpha"], p["beta"], p["k"], convention="caffe")
    return [(caffe(args[0]), ("your function divides alpha by n (PyTorch's and Caffe's "
                              "convention); the paper's formula does not"))]


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "02-1", "PyTorch's alpha for nn.LocalResponseNorm(size=7) equal to the paper's "
        "formula with alpha = 1e-4 and a 7-channel window", "a number",
        pytorch_alpha,
        number(rel=1e-6, mistakes=lambda: [
            (1e-4, "that is the paper's alpha; nn.LocalResponseNorm divides its alpha by size"),
            (5e-4, "that is the answer for the paper's window of 5: the window here is 7"),
            (1e-4 / 7, ("nn.LocalResponseNorm divides alpha by size itself: which alpha, once "
                        "divided, gives the paper's?"))])),
    Exercise(
        "02-2", "the paper's LRN (alpha not divided by n) on an (N, C, H, W) tensor",
        "a function lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75)",
        lrn, tensor_function("lrn", _lrn_cases, atol=1e-4, rtol=1e-4, mistakes=_lrn_mistakes),
        write_it=True),
    Exercise(
        "02-3", "LRN's divisor (k + alpha * sum of squares)^beta, paper's constants, for a unit "
        "whose 5-channel window holds activity 100 in each channel", "a number",
        lrn_divisor,
        number(rel=1e-3, mistakes=lambda: [
            (2 + 1e-4 * 5 * 100 ** 2, "that is k + alpha * sum; raise it to the power beta"),
            ((2 + 1e-4 * 100 ** 2) ** 0.75, ("the sum of squares runs over all five channels of "
                                             "the window, and the paper does not divide alpha "
                                             "by n"))])),
)
