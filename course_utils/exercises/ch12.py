"""Notebook 12's exercises (what AlexNet learned): their cases and reference solutions."""
from __future__ import annotations

import math

import torch

from .judge import Exercise, generator, number, register, tensor_function

__all__ = ["EXERCISES", "agreement", "low_frequency_share", "orientation_index"]


# --------------------------------------------------------------------------- reference solutions

def low_frequency_share():
    import torch

    cutoff = 0.25  # cycles per pixel: the notebook's LOW_FREQUENCY
    f = torch.fft.fftfreq(11)  # an 11-point FFT's frequencies, in cycles per pixel
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()  # |f| of each 2-D bin
    # white noise spreads its power evenly over the bins, so the share is the share
    # of bins at low frequency; the DC bin (f = 0) is removed with the mean
    low = int((radius <= cutoff).sum()) - 1
    return low / (11 * 11 - 1)


def orientation_index(w):
    w = w - w.mean()  # the DC term has no orientation
    power = torch.fft.fft2(w).abs() ** 2  # P(f)
    fy = torch.fft.fftfreq(w.shape[0], dtype=w.dtype)[:, None]  # cycles/pixel
    fx = torch.fft.fftfreq(w.shape[1], dtype=w.dtype)[None, :]
    theta = torch.atan2(fy, fx)  # the direction of each frequency
    # 2 theta: f and -f carry the same power and point along the same line
    z = (power * torch.exp(2j * theta)).sum()
    return (z.abs() / power.sum()).item()


def agreement(idx, y_query, y_gallery):
    # idx: (queries, k) gallery indices; the labels of the neighbours, row by row
    neighbour_labels = y_gallery[idx]
    same = neighbour_labels == y_query[:, None]  # compare with each row's query
    return same.float().mean().item()


# --------------------------------------------------------------------------- test inputs

def _orientation_cases(reference) -> list[tuple[str, tuple, dict, torch.Tensor]]:
    """Exercise 12-2's test filters, each with the reference's value."""
    g = generator(12)
    x, y = torch.arange(11, dtype=torch.float64), torch.arange(11, dtype=torch.float64)[:, None]
    blob_x = torch.arange(11, dtype=torch.float64) - 5
    filters = [
        ("a grating along x, 2 cycles, plus 3", torch.cos(2 * math.pi * 2 * x / 11)
         .expand(11, 11) + 3.0),
        ("an oblique grating", torch.sin(2 * math.pi * (x + 2 * y) / 11)),
        ("an elongated blob", torch.exp(-(blob_x[None, :] ** 2 / 18 + blob_x[:, None] ** 2 / 1.3))),
        ("a random 11x11 filter", torch.randn(11, 11, generator=g, dtype=torch.float64)),
        ("a random 7x9 filter", torch.randn(7, 9, generator=g, dtype=torch.float64) + 1.0),
    ]
    return [(shown, (w.clone(),), {}, torch.tensor(reference(w.clone()), dtype=torch.float64))
            for shown, w in filters]


def _orientation_mistakes(args, kwargs) -> list[tuple[torch.Tensor, str]]:
    """Exercise 12-2's common mistakes on one test filter, with a hint each."""
    w = torch.as_tensor(args[0]).double()
    h, wd = w.shape
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(wd, dtype=torch.float64)[None, :]
    theta = torch.atan2(fy, fx)

    def index(p, doubled=True):
        z = (p * torch.exp((2j if doubled else 1j) * theta)).sum()
        return (z.abs() / p.sum()).real

    power = torch.fft.fft2(w - w.mean()).abs() ** 2
    return [(index(torch.fft.fft2(w).abs() ** 2),
             "remove the filter's mean first: its power sits at f = 0 and has no orientation"),
            (index(power, doubled=False),
             ("use exp(2i theta): f and -f carry the same power, and with exp(i theta) they "
              "cancel")),
            (index(torch.fft.fft2(w - w.mean()).abs()),
             "weight each frequency by its power |F(f)|^2, not by the amplitude |F(f)|")]


def _agreement_cases(reference) -> list[tuple[str, tuple, dict, torch.Tensor]]:
    """Exercise 12-3's test neighbours, each with the reference's value."""
    g = generator(12)
    cases = []
    for shown, q, k, n in (("20 queries, 6 neighbours, a gallery of 50", 20, 6, 50),
                           ("7 queries, 3 neighbours, a gallery of 9", 7, 3, 9),
                           ("100 queries, 1 neighbour, a gallery of 30", 100, 1, 30)):
        y_gallery = torch.randint(0, 4, (n,), generator=g)
        y_query = torch.randint(0, 4, (q,), generator=g)
        idx = torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(q)])
        cases.append((shown, (idx, y_query, y_gallery), {},
                      torch.tensor(reference(idx, y_query, y_gallery), dtype=torch.float64)))
    return cases


def _agreement_mistakes(args, kwargs) -> list[tuple[torch.Tensor, str]]:
    """Exercise 12-3's common mistakes, with a hint each."""
    idx, y_query, y_gallery = args
    same = (y_gallery[idx] == y_query[:, None]).double()
    return [(same[:, 0].mean(), "count all k neighbours of each query, not only the nearest"),
            ((same.mean(1) > 0.5).double().mean(),
             ("give the share of neighbours in the query's class, not the share of queries "
              "whose majority is"))]


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "12-1", "the share of its power that a white-noise 11x11 kernel has, on average, at "
        "spatial frequencies up to 0.25 cycles/pixel, its mean (the DC term) removed",
        "a number between 0 and 1",
        low_frequency_share,
        number(rel=1e-3, share=True, mistakes=lambda: [
            (21 / 121, ("the DC bin (f = 0) holds the mean, which is removed: leave it out of "
                        "both counts")),
            (math.pi * 0.25 ** 2, ("that is the disc's share of the area of the frequency "
                                   "square; count the FFT's bins on the 11x11 grid instead"))])),
    Exercise(
        "12-2", "the orientation index |sum P(f) exp(2i theta(f))| / sum P(f) of one 2-D filter, "
        "P its power spectrum with the mean removed", "a function orientation_index(w) of an "
        "(H, W) tensor, returning a number",
        orientation_index,
        tensor_function("orientation_index", _orientation_cases, atol=1e-5,
                        mistakes=_orientation_mistakes),
        write_it=True),
    Exercise(
        "12-3", "the share of the nearest neighbours (all k of every query) that share their "
        "query's class", "a function agreement(idx, y_query, y_gallery) returning a number",
        agreement,
        tensor_function("agreement", _agreement_cases, atol=1e-6, mistakes=_agreement_mistakes),
        write_it=True),
)
