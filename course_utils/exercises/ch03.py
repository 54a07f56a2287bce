"""Notebook 03's exercises (overlapping pooling): their cases and reference solutions."""
from __future__ import annotations

import torch

from .judge import Exercise, as_int, describe, generator, register, tensor_function, whole_numbers

__all__ = ["EXERCISES", "pooled_sides", "smallest_side", "window_count"]


# --------------------------------------------------------------------------- reference solutions

def pooled_sides():
    import torch
    from torch import nn

    x = torch.zeros(1, 1, 28, 28)
    return (nn.MaxPool2d(3, stride=2)(x).shape[-1],
            nn.MaxPool2d(3, stride=2, padding=1)(x).shape[-1])


def window_count(n, z, s, p=0):
    counts = [0] * n
    windows = (n + 2 * p - z) // s + 1  # the output side
    for i in range(windows):
        start = i * s - p  # where window i starts, in the map's own cells
        for cell in range(max(start, 0), min(start + z, n)):
            counts[cell] += 1  # the padding cells (before 0, from n on) are not counted
    return counts


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


def _torch_count(n, z, s, p=0):
    """PyTorch's own answer: each window adds 1 to the gradient of each cell it sums."""
    x = torch.ones(1, 1, n, requires_grad=True)
    (z * torch.nn.functional.avg_pool1d(x, z, s, p)).sum().backward()
    return x.grad[0, 0].round().long()


def _window_count_cases(reference):
    fixed = [(9, 3, 2, 0), (9, 2, 2, 0), (8, 3, 2, 1), (8, 3, 2, 0), (7, 2, 3, 0), (3, 3, 2, 0),
             (5, 1, 1, 0), (13, 5, 2, 2), (6, 2, 2, 1)]
    g = generator(3)
    randoms = []
    while len(randoms) < 12:
        z, s = (int(v) for v in torch.randint(1, 6, (2,), generator=g))
        p = int(torch.randint(0, z // 2 + 1, (1,), generator=g))
        n = int(torch.randint(max(1, z - 2 * p), 30, (1,), generator=g))
        randoms.append((n, z, s, p))
    return [(f"window_count({n}, {z}, {s}, {p})" if p else f"window_count({n}, {z}, {s})",
             (n, z, s) if p == 0 else (n, z, s, p), {}, _torch_count(n, z, s, p))
            for n, z, s, p in fixed + randoms]


def _count(n, starts, z):
    counts = torch.zeros(n, dtype=torch.long)
    for start in starts:
        counts[max(start, 0):max(min(start + z, n), 0)] += 1
    return counts


def _window_count_mistakes(args, kwargs):
    n, z, s, p = (*args, 0)[:4]
    windows = (n + 2 * p - z) // s + 1
    right = _count(n, [i * s - p for i in range(windows)], z)
    return [
        (_count(n, [i * s for i in range((n - z) // s + 1)], z),
         "with padding p the first window starts p cells before the map's first cell, "
         "and there are more windows"),
        (_count(n, [i * s for i in range(windows)], z),
         "with padding p the first window starts p cells before the map's first cell "
         "(cell -p), not at cell 0"),
        (_count(n, [i * s - p for i in range(windows - 1)], z),
         "one window too few: count the windows with the output side (the last window "
         "ends on or before the last padded cell)"),
        (_count(n, [i * s - p for i in range(windows + 1)], z),
         "one window too many: a window that would run past the padded map is not taken "
         "(the output side rounds down)"),
        (_count(n, [i * s - p for i in range(windows)], z + 1),
         "each window covers z cells, start .. start + z - 1, not z + 1"),
        ((right > 0).long(), "count the windows on each cell, not only whether one reaches it"),
    ]


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
        "03-2", "how many pooling windows (window z, stride s, padding p) cover each cell "
        "along one side of n cells", "a function window_count(n, z, s, p=0) returning n "
        "counts (a list or a 1-D tensor)",
        window_count, tensor_function("window_count", _window_count_cases, atol=0,
                                      mistakes=_window_count_mistakes), write_it=True),
    Exercise(
        "03-3", "the smallest input side >= 67 at which the small AlexNet (z=3, s=2) ends in a "
        "last map of at least 2x2", "an int",
        smallest_side, _smallest_side),
)
