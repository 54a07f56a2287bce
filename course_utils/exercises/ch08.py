"""Notebook 08's exercises (data augmentation): their cases and reference solutions."""
from __future__ import annotations

import torch

from .judge import Exercise, call_answer, describe, generator, number, register

__all__ = ["EXERCISES", "batch_random_crop", "distinct_patches", "lighting_shift_std"]


# --------------------------------------------------------------------------- reference solutions

def distinct_patches():
    side, crop_side = 28 + 2 * 4, 28  # padded to 36x36, cut back to 28x28
    positions = side - crop_side + 1  # a crop can start at 0, 1, ..., 8 along each axis
    return positions ** 2 * 2  # positions along both axes, times 2 mirror images


def lighting_shift_std():
    from course_utils.data import STD  # the pixels' standard deviation, 0-1 scale
    from course_utils.layers import PAPER_ALPHA_STD  # the paper's 0.1

    # the shift is a * sigma, so its std is std(a) * sigma
    return PAPER_ALPHA_STD * STD


def batch_random_crop(x, size, generator=None):
    n, c, h, w = x.shape  # channels first: (N, C, H, W)
    # one offset per image and axis; randint's upper end is exclusive, so + 1 lets a
    # patch start at h - size (the last position, where it ends on the last row)
    top = torch.randint(0, h - size + 1, (n,), generator=generator)
    left = torch.randint(0, w - size + 1, (n,), generator=generator)
    rows = (top[:, None] + torch.arange(size))[:, None, :, None]  # (n, 1, size, 1)
    cols = (left[:, None] + torch.arange(size))[:, None, None, :]  # (n, 1, 1, size)
    images = torch.arange(n)[:, None, None, None]
    channels = torch.arange(c)[None, :, None, None]
    return x[images, channels, rows, cols]  # indexing makes a new tensor: x is unchanged


def _std() -> float:
    from ..data import STD
    return float(STD)


def _alpha() -> float:
    from ..layers import PAPER_ALPHA_STD
    return float(PAPER_ALPHA_STD)


# --------------------------------------------------------------------------- 08-3's judge

def _crop_cases():
    """``(description, x, size)``: batches to crop, each image's values distinct."""
    g = generator(8)
    return [
        ("64 random 1x12x12 images, size 8", torch.rand(64, 1, 12, 12, generator=g), 8),
        ("64 random 3x12x12 images, size 8", torch.rand(64, 3, 12, 12, generator=g), 8),
        ("400 random 2x10x13 images, size 8", torch.rand(400, 2, 10, 13, generator=g), 8),
        ("300 random 1x5x5 images, size 1", torch.rand(300, 1, 5, 5, generator=g), 1),
        ("5 uint8 1x28x28 images, size 28",
         torch.randint(0, 256, (5, 1, 28, 28), generator=g, dtype=torch.uint8), 28),
        ("one random 3x9x7 image, size 4", torch.rand(1, 3, 9, 7, generator=g), 4),
    ]


def _patch_offsets(x: torch.Tensor, out: torch.Tensor, size: int):
    """``(top, left)`` of each output image's patch in its own input image (-1 where the
    output image is no patch of its input), and whether a missing one is a patch of
    another image of the batch."""
    windows = x.unfold(2, size, 1).unfold(3, size, 1)  # (N, C, H-s+1, W-s+1, s, s)
    match = (windows == out[:, :, None, None]).flatten(4).all(-1).all(1)  # (N, P, Q)
    n, _, q = match.shape
    found = match.flatten(1).float().argmax(1)
    ok = match.flatten(1).any(1)
    top = torch.where(ok, found // q, -1)
    left = torch.where(ok, found % q, -1)
    elsewhere = False
    if not ok.all():
        i = int((~ok).nonzero()[0])
        elsewhere = bool((windows == out[i][None, :, None, None]).flatten(4).all(-1).all(1).any())
    return top, left, elsewhere


def _crop_judge(answer, reference):
    if not callable(answer):
        return f"expected a function batch_random_crop(x, size, generator), got {describe(answer)}"
    for k, (shown, x, size) in enumerate(_crop_cases()):
        n, c, h, w = x.shape
        arg = x.clone()
        out, error = call_answer(answer, (arg, size, generator(k)), {},
                                 f"your function, on {shown},")
        if error:
            last, _ = call_answer(answer, (x.permute(0, 2, 3, 1).clone(), size, generator(k)),
                                  {}, "")
            if isinstance(last, torch.Tensor) and tuple(last.shape) == (n, size, size, c):
                return (f"on {shown}, your function reads x as (N, H, W, C), channels last: the "
                        "batches are (N, C, H, W), channels first, so the rows and columns are "
                        "x.shape[2] and x.shape[3]")
            return error
        if not torch.equal(arg, x):
            return (f"on {shown}, your function changed its input x: build the patches in a "
                    "new tensor and leave x as it was (no in-place writes to x)")
        if not isinstance(out, torch.Tensor):
            return f"on {shown}, your function returned {describe(out)}, expected a tensor"
        if tuple(out.shape) != (n, c, size, size):
            hint = ("the channels belong in dimension 1, before the rows and columns "
                    "(channels first)" if tuple(out.shape) in ((n, size, size, c),)
                    and c != size else
                    "each output image is a size x size patch, with all C channels")
            return (f"on {shown}, your function returned shape {tuple(out.shape)}, expected "
                    f"{(n, c, size, size)}: {hint}")
        if out.dtype != x.dtype:
            return (f"on {shown}, your function returned {out.dtype} values from {x.dtype} "
                    "images: keep the input's dtype")
        top, left, elsewhere = _patch_offsets(x, out, size)
        if (top < 0).any():
            i = int((top < 0).nonzero()[0])
            if elsewhere:
                return (f"on {shown}, output image {i} is a patch of another image of the "
                        "batch: cut image i's patch from image i")
            return (f"on {shown}, output image {i} is not a patch of input image {i}: "
                    f"rows top..top+{size - 1} and columns left..left+{size - 1} of every "
                    "channel, as they are")
        positions = (h - size + 1) * (w - size + 1)
        if n >= 64 and positions > 1:
            if len(set(zip(top.tolist(), left.tolist()))) == 1:
                return (f"on {shown}, every image was cut at the same place: draw an offset "
                        "per image (n tops and n lefts), not one for the whole batch")
            if h - size > 0 and len(set(top.tolist())) == 1:
                return (f"on {shown}, every image starts at the same row: draw a top offset "
                        "per image too")
            if w - size > 0 and len(set(left.tolist())) == 1:
                return (f"on {shown}, every image starts at the same column: draw a left offset "
                        "per image too")
            if h - size > 0 and w - size > 0 and torch.equal(top, left) and h == w:
                return (f"on {shown}, every patch has top == left: the rows and the columns "
                        "need offsets of their own")
        if n >= 300:
            for name, offs, last, axis in (("top", top, h - size, "H"),
                                           ("left", left, w - size, "W")):
                if int(offs.min()) > 0:
                    return (f"on {shown}, no patch starts at {name} = 0: offsets run from 0 to "
                            f"{axis} - size")
                if int(offs.max()) < last:
                    other = h - size if name == "left" else w - size
                    if int(offs.max()) == other and other != last:
                        return (f"on {shown}, the {name} offsets never reach {axis} - size: "
                                f"take their range from {axis} "
                                f"(x.shape[{2 if axis == 'H' else 3}]), not the other side")
                    return (f"on {shown}, no patch starts at the last position ({name} = "
                            f"{axis} - size): torch.randint(low, high) never draws high, so "
                            f"draw from 0 to {axis} - size + 1")
                counts = torch.bincount(offs, minlength=last + 1).double()
                if counts.min() < 0.4 * counts.mean():
                    return (f"on {shown}, the {name} offsets are not spread evenly over 0.."
                            f"{axis} - size: draw each with equal chance")
        again, error = call_answer(answer, (x.clone(), size, generator(k)), {},
                                   f"your function, on {shown} a second time,")
        if error:
            return error
        if not (isinstance(again, torch.Tensor) and torch.equal(again, out)):
            return (f"on {shown}, the same generator seed gave other patches: draw the "
                    "offsets from `generator` (torch.randint(..., generator=generator))")
    return None


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "08-1", "how many different 28x28 training patches (positions x mirrors) one image "
        "gives when it is padded by 4 pixels on each side", "an int",
        distinct_patches,
        number(abs_=0.0, mistakes=lambda: [
            (81, "each position gives its mirror image too: count both"),
            (128, "a crop can start at 0, 1, ..., 8: that is 9 positions per side, not 8"),
            (50, "that is padding 2's count; the question pads by 4")])),
    Exercise(
        "08-2", "the standard deviation of the grayscale lighting's brightness shift a*sigma, "
        "with a ~ N(0, 0.1) and sigma Fashion-MNIST's pixel std (0-1 scale)", "a number",
        lighting_shift_std,
        number(rel=1e-3, mistakes=lambda: [
            (_alpha() * _std() ** 2, ("that uses the eigenvalue (the variance, sigma squared): "
                                      "the course's lighting multiplies by sigma itself")),
            (_std(), "the shift is a * sigma, and a has a standard deviation of 0.1")])),
    Exercise(
        "08-3", "a size x size patch cut at a random place from every image of an (N, C, H, W) "
        "batch, each image at its own offsets drawn from a generator",
        "a function batch_random_crop(x, size, generator) returning an (N, C, size, size) tensor",
        batch_random_crop, _crop_judge, write_it=True),
)
