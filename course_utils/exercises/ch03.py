"""Notebook 03's exercises (overlapping pooling): their cases and reference solutions."""
from __future__ import annotations

from .judge import Exercise, as_int, describe, int_function, register, whole_numbers

__all__ = ["EXERCISES", "pool_out", "pooled_sides", "smallest_side"]


# --------------------------------------------------------------------------- reference solutions

def pooled_sides():
    import torch
    from torch import nn

    x = torch.zeros(1, 1, 28, 28)
    return (nn.MaxPool2d(3, stride=2)(x).shape[-1],
            nn.MaxPool2d(3, stride=2, padding=1)(x).shape[-1])


def pool_out(n, z, s, p=0):
    return (n + 2 * p - z) // s + 1  # floor((n + 2p - z) / s) + 1


def smallest_side():
    from course_utils.models import feature_side

    # feature_side walks AlexNet's convolutions and poolings (z=3, s=2)
    # and returns the side of the last map, after pool5
    return next(n for n in range(67, 1000) if feature_side(n) >= 2)


# --------------------------------------------------------------------------- judges and cases

def _pool_sides(answer, reference):
    values, error = whole_numbers(2, "a tuple of two sides: (without padding, with padding 1)"
                                  )(answer)
    if error:
        return error
    labels = ("without padding", "with padding 1")
    wrong = [f"the side {label} {'is too large' if v > r else 'is too small'}"
             for label, v, r in zip(labels, values, reference()) if v != r]
    return "; ".join(wrong) + " (floor((n + 2p - z) / s) + 1)" if wrong else None


def _pool_out_cases(reference):
    from ..models import output_size  # the course's geometry, not the reference

    cases = []
    for n in range(1, 40):
        for z in range(1, 6):
            for s in range(1, 5):
                for p in range(z // 2 + 1):
                    if n + 2 * p < z:
                        continue
                    args = (n, z, s) if p == 0 else (n, z, s, p)
                    shown = f"pool_out({', '.join(map(str, args))})"
                    cases.append((shown, args, {}, output_size(n, z, s, p)))
    return cases


def _smallest_side(answer, reference):
    from ..models import feature_side

    n = as_int(answer)
    if n is None:
        return f"expected a whole number (an input side), got {describe(answer)}"
    if n < 67:
        return f"the question asks for a side of at least 67, got {n}"
    if n == reference():
        return None
    side = feature_side(n)
    if side < 2:
        return f"at {n}x{n} the last map is still {side}x{side}: the input must be larger"
    return f"at {n}x{n} the last map is {side}x{side}, but a smaller input also ends in 2x2"


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "03-1", "the output side of 3x3 stride-2 max-pooling on a 28x28 map, without padding "
        "and with padding 1", "a tuple (without padding, with padding 1)",
        pooled_sides, _pool_sides),
    Exercise(
        "03-2", "a pooling's output side for input side n, window z, stride s, padding p",
        "a function pool_out(n, z, s, p=0) returning an int",
        pool_out, int_function("pool_out", _pool_out_cases), write_it=True),
    Exercise(
        "03-3", "the smallest input side >= 67 at which the small AlexNet (z=3, s=2) ends in a "
        "last map of at least 2x2", "an int",
        smallest_side, _smallest_side),
)
