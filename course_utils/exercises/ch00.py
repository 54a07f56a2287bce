"""Notebook 00's exercise (getting started): its cases and reference solution."""
from __future__ import annotations

import torch

from .judge import Exercise, call_answer, describe, generator, register

__all__ = ["EXERCISES", "to_pixels"]


# --------------------------------------------------------------------------- reference solution

def to_pixels(x, mean, std):
    import torch

    # the input adapter computes (p / 255 - mean) / std: undo it step by step
    p = (x * std + mean) * 255                  # back to 0..255, as floats
    p = p.round().clamp(0, 255)                 # nearest pixel; values beyond 0..255 saturate
    return p.to(torch.uint8)


# --------------------------------------------------------------------------- judge

def _to_pixels_cases():
    """``(description, x, mean, std)``: normalised images to turn back into pixels."""
    from ..data import MEAN, STD

    g = generator(0)
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    return [
        ("a random normalised batch (4, 1, 28, 28)", torch.randn(4, 1, 28, 28, generator=g) * 1.5,
         MEAN, STD),
        ("every pixel value 0..255, normalised as the input adapter does",
         (pixels.float() / 255 - MEAN) / STD, MEAN, STD),
        ("one (28, 28) image", torch.randn(28, 28, generator=g), MEAN, STD),
        ("a (2, 3, 5, 5) batch with mean=0.5, std=0.25", torch.randn(2, 3, 5, 5, generator=g),
         0.5, 0.25),
    ]


def _to_pixels_hint(out, expected, x, mean, std):
    """What a wrong uint8 result ``out`` got wrong, for the usual mistakes."""
    wrong = out != expected
    inside = ((x * std + mean) >= 0) & ((x * std + mean) <= 1)  # pixels of 0..255 before
    if (out[inside] <= 1).all() and (expected[inside] > 1).any():
        return ("your pixels are 0 or 1 where they should spread over 0..255: after undoing "
                "the normalisation, scale [0, 1] to 0..255")
    swapped = ((x * mean + std) * 255).round().clamp(0, 255).to(torch.uint8)
    if torch.equal(out, swapped):
        return "mean and std are swapped: the adapter subtracted the mean, then divided by the std"
    unclamped = (x * std + mean) * 255
    outside = (unclamped < -0.5) | (unclamped > 255.5)
    if not wrong[~outside].any():
        return ("only pixels outside 0..255 are wrong: clamp to 0..255 before converting to uint8 "
                "(out-of-range values wrap around)")
    short = expected.int() - out.int()
    if ((short == 0) | (short == 1)).all():
        return ("some pixels are one too small: round to the nearest integer before converting "
                "(.to(torch.uint8) cuts the fraction off)")
    return None


def _to_pixels(answer, reference):
    if not callable(answer):
        return f"expected a function to_pixels(x, mean, std), got {describe(answer)}"
    ref = reference()
    for shown, x, mean, std in _to_pixels_cases():
        out, error = call_answer(answer, (x.clone(), mean, std), {}, f"your function, on {shown},")
        if error:
            return error
        if not isinstance(out, torch.Tensor):
            return f"on {shown} your function returned {describe(out)}, expected a tensor"
        expected = ref(x.clone(), mean, std)
        if out.shape != expected.shape:
            return (f"on {shown} your function returned shape {tuple(out.shape)}, "
                    f"expected {tuple(expected.shape)}: keep the input's shape")
        if out.dtype != torch.uint8:
            return (f"on {shown} your function returned {out.dtype} values: pixels are uint8 "
                    "(.to(torch.uint8))")
        if not torch.equal(out, expected):
            hint = _to_pixels_hint(out, expected, x, mean, std)
            count = int((out != expected).sum())
            return (f"on {shown}, {count} of {out.numel()} pixels differ"
                    + (f": {hint}" if hint else ""))
    return None


# --------------------------------------------------------------------------- the exercise

EXERCISES = register(
    Exercise(
        "00-1", "normalised images back to 0-255 uint8 pixels (the inverse of the input "
        "adapter's normalisation)", "a function to_pixels(x, mean, std) returning a uint8 tensor",
        to_pixels, _to_pixels, write_it=True),
)
