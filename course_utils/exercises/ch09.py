"""Notebook 09's exercises (dropout): their reference solutions, and the judge of the
write-it exercise 09-3 (the paper's dropout), which reads a random function statistically."""
from __future__ import annotations

import math

import torch

from .judge import Exercise, call_answer, describe, number, register

__all__ = ["EXERCISES", "dropout_scale", "iterations", "paper_dropout"]


# --------------------------------------------------------------------------- reference solutions

def dropout_scale():
    import torch
    from torch import nn

    out = nn.Dropout(p=0.2).train()(torch.ones(1000))
    # inverted dropout: the kept units (about 800 of the 1000) are divided by 1 - p
    return float(out[out > 0][0])


def iterations():
    import torch

    from course_utils.training.fastpath import TensorBatches

    per_epoch = len(TensorBatches(torch.zeros(4_000, 1), torch.zeros(4_000),
                                  batch_size=128))  # 31 full batches + 1 smaller
    return 40 * per_epoch


def paper_dropout(x, p, training):
    if not training:
        return x * (1 - p)  # test time: every unit, its output times the keep probability
    keep = torch.rand_like(x) >= p  # True with probability 1 - p
    return x * keep  # training: a dropped unit outputs 0, a kept one passes unchanged


# --------------------------------------------------------------------------- its judge
# Dropout is random: the judge reads what the answer does on many values (the share it
# keeps, the factor on what it keeps, the test-time factor), with the global seed set
# inside check()'s forked random state, so a verdict is the same every time.

#: How far the measured keep rate may be from 1 - p: over 60,000 values its standard
#: deviation is at most 0.002.
KEEP_TOLERANCE = 0.015


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a.double(), b.double(), rtol=1e-5, atol=1e-6)


def _tensor_out(answer, x, p, training, shown):
    out, error = call_answer(answer, (x.clone(), p, training), {}, f"your function, on {shown},")
    if error:
        return None, error
    if not isinstance(out, torch.Tensor):
        return None, f"on {shown} your function returned {describe(out)}, expected a tensor"
    if out.shape != x.shape:
        return None, (f"on {shown} your function returned shape {tuple(out.shape)}, "
                      f"expected {tuple(x.shape)}")
    return out.detach(), None


def _training_verdict(out, x, p, shown) -> str | None:
    kept = out != 0
    if kept.any():
        ratio = float((out[kept].double() / x[kept].double()).median())
        if not _close(out[kept], x[kept]):
            for factor, hint in ((1 / (1 - p), "that is inverted dropout (PyTorch's): the paper "
                                               "leaves the kept units unchanged in training and "
                                               "scales at test time instead"),
                                 (p, "in training the paper does not scale the kept units, "
                                     "by p or by anything"),
                                 (1 - p, "in training the kept units pass unchanged: the "
                                         "factor 1 - p belongs to test time")):
                if math.isclose(ratio, factor, rel_tol=1e-4):
                    return f"on {shown}: {hint}"
            return (f"on {shown}: in training a kept unit should pass unchanged and a dropped "
                    "one be 0; some outputs are neither")
    rate = float(kept.double().mean())
    if rate == 1:
        return f"on {shown}: nothing was dropped in training"
    if rate == 0:
        return f"on {shown}: everything was dropped in training"
    flat = kept.reshape(len(kept), -1).double()  # one row per example
    rows, cols = flat.mean(1), flat.mean(0)
    if bool(((rows == 0) | (rows == 1)).all()) or bool(((cols == 0) | (cols == 1)).all()):
        return (f"on {shown}: every row (or column) is kept or dropped whole: draw one random "
                "number per value, so that each unit is dropped on its own")
    if abs(rate - (1 - p)) <= KEEP_TOLERANCE:
        return None
    if abs(rate - p) <= KEEP_TOLERANCE:
        return (f"on {shown}: your mask keeps a unit with probability p; p is the "
                "probability of dropping it, so keep with probability 1 - p")
    if (x < 0).any() and not kept[x < 0].any():
        return (f"on {shown}: every negative value came out 0: the mask must not depend on "
                "the values (and dropout applies no ReLU)")
    return (f"on {shown}: your function kept {100 * rate:.1f}% of the values; dropout at rate "
            "p keeps about 1 - p of them")


def _test_verdict(out, x, p, shown) -> str | None:
    if _close(out, x * (1 - p)):
        return None
    if (out == 0).any():
        return f"on {shown}: at test time no unit is dropped: the net uses all of them"
    for wrong, hint in ((x, "at test time the paper multiplies every output by 1 - p (0.5 for "
                            "p = 0.5); unscaled outputs are inverted dropout's test time"),
                        (x * p, "at test time multiply by the keep probability 1 - p, not by p"),
                        (x / (1 - p), "at test time multiply by 1 - p, do not divide by it")):
        if _close(out, wrong):
            return f"on {shown}: {hint}"
    return f"on {shown}: at test time the output should be x times (1 - p)"


def _paper_dropout_judge(answer, reference) -> str | None:
    if not callable(answer):
        return f"expected a function paper_dropout(x, p, training), got {describe(answer)}"
    g = torch.Generator().manual_seed(9)
    positive = torch.rand(200, 300, generator=g) + 0.5  # no zeros: a zero output was dropped
    signed = torch.randn(4, 5, 60, 50, generator=g)
    signed[signed == 0] = 1.0
    cases = [("a (200, 300) tensor with p=0.3", positive, 0.3),
             ("a (200, 300) tensor with p=0.5", positive, 0.5),
             ("a (4, 5, 60, 50) tensor with p=0.8", signed, 0.8),
             ("a (200, 300) tensor with p=0.1", positive, 0.1)]
    torch.manual_seed(0)  # the student's masks come from the global generator
    for shown, x, p in cases:
        out, error = _tensor_out(answer, x, p, True, f"{shown}, training=True")
        if error:
            return error
        verdict = _training_verdict(out, x, p, f"{shown}, training=True")
        if verdict:
            return verdict
        again, error = _tensor_out(answer, x, p, True, f"{shown}, training=True")
        if error:
            return error
        if torch.equal(again != 0, out != 0):
            return (f"on {shown}, training=True: two calls dropped the same units: draw a new "
                    "random mask on every call")
        out, error = _tensor_out(answer, x, p, False, f"{shown}, training=False")
        if error:
            return error
        verdict = _test_verdict(out, x, p, f"{shown}, training=False")
        if verdict:
            return verdict
    for training in (True, False):  # p = 0: no dropout at all, in either mode
        shown = f"a (4, 5, 60, 50) tensor with p=0, training={training}"
        out, error = _tensor_out(answer, signed, 0.0, training, shown)
        if error:
            return error
        if not _close(out, signed):
            return f"on {shown}: with p = 0 nothing is dropped or scaled: the output is x"
    return None


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "09-1", "the factor by which nn.Dropout(p=0.2) multiplies the activations it keeps in "
        "training mode", "a number",
        dropout_scale,
        number(rel=1e-6, mistakes=lambda: [
            (0.8, ("that is the paper's test-time factor 1 - p; PyTorch divides by 1 - p in "
                   "training instead")),
            (0.2, "p is the share dropped; the kept units are scaled by 1 / (1 - p)")])),
    Exercise(
        "09-2", "how many iterations (optimizer steps) 40 epochs of 4,000 training images at "
        "batch_size=128 make (skorch keeps the last, smaller batch)", "an int",
        iterations,
        number(abs_=0.0, mistakes=lambda: [
            (40 * (4_000 // 128), ("the images left over after the full batches make one more, "
                                   "smaller batch each epoch")),
            (40 * 4_000 / 128, ("a step takes a whole batch: count batches, the last one "
                                "smaller"))])),
    Exercise(
        "09-3", "the paper's dropout as a function: in training zero each value with "
        "probability p and leave the others unchanged; at test time keep every value and "
        "multiply it by 1 - p", "a function paper_dropout(x, p, training) returning a tensor "
        "shaped like x",
        paper_dropout, _paper_dropout_judge, write_it=True),
)
