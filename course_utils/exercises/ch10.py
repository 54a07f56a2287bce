"""Notebook 10's exercises (test-time augmentation): their reference solutions, with
torchvision's ten_crop (the notebook's ten views, in torchvision's order), and the
test cases of the ten-view average the student writes (10-3)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .judge import Exercise, call_answer, describe, number, register

__all__ = ["EXERCISES", "corner_shift", "ten_crop_passes", "ten_view_average"]


# --------------------------------------------------------------------------- reference solutions

def ten_crop_passes():
    import torch
    import torch.nn.functional as F
    from torchvision.transforms.v2.functional import ten_crop

    padded = F.pad(torch.zeros(1, 1, 28, 28), (2, 2, 2, 2))  # 32x32
    views = ten_crop(padded, [28, 28])  # 4 corners + centre, and their mirror images
    return 10_000 * len(views)  # every view of every image is one pass


def corner_shift():
    import torch
    import torch.nn.functional as F
    from torchvision.transforms.v2.functional import ten_crop

    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 10, 10] = 1  # a marker pixel
    # torchvision's order: top-left, top-right, bottom-left, bottom-right, centre, then mirrored
    views = ten_crop(F.pad(x, (2, 2, 2, 2)), [28, 28])
    top_left, centre = views[0], views[4]

    def where(v):
        return (v[0, 0] == 1).nonzero()[0]  # (row, column) of the marker

    shift = where(top_left) - where(centre)
    return int(shift[0])  # the same along both axes


def ten_view_average(model, x, crop):
    import torch
    import torch.nn.functional as F

    model.eval()  # dropout off: the same prediction every time
    h, w = x.shape[-2:]
    # (top, left) of the centre and the four corners: the paper's 224 crops of a 256 image
    corners = [((h - crop) // 2, (w - crop) // 2), (0, 0), (0, w - crop), (h - crop, 0),
               (h - crop, w - crop)]
    views = [x[..., top:top + crop, left:left + crop] for top, left in corners]
    views += [torch.flip(v, dims=[-1]) for v in views]  # their horizontal reflections
    with torch.no_grad():
        probs = torch.stack([F.softmax(model(v), dim=1) for v in views])  # (10, N, classes)
    return probs.mean(0)  # average the softmax over the ten views


# --------------------------------------------------------------------------- test inputs

#: 10-3's test inputs: (shown, images, channels, height, width, crop).
_TEN_VIEW_INPUTS = (
    ("8 random 1x12x12 images, crop=8", 8, 1, 12, 12, 8),
    ("3 random 3x10x14 images (wider than tall), crop=6", 3, 3, 10, 14, 6),
    ("one random 1x9x9 image, crop=5", 1, 1, 9, 9, 5),
    ("4 random 1x8x8 images, crop=8 (the whole image)", 4, 1, 8, 8, 8),
)


def _tiny_model(channels: int, crop: int, seed: int) -> nn.Module:
    """A small classifier of crop x crop inputs, 5 classes, with dropout, in training mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(channels * crop * crop, 16), nn.ReLU(),
                             nn.Dropout(0.5), nn.Linear(16, 5)).train()


def _views(x, crop, corners, flip_dims=(-1,)):
    views = [x[..., top:top + crop, left:left + crop] for top, left in corners]
    return views + [torch.flip(v, dims=list(flip_dims)) for v in views]


def _ten_view_mistakes(model, x, crop) -> list[tuple[torch.Tensor, str]]:
    """10-3's common mistakes on one input, with a hint each (the model in eval mode)."""
    import torch.nn.functional as F

    model = copy.deepcopy(model).eval()
    h, w = x.shape[-2:]
    c = ((h - crop) // 2, (w - crop) // 2)
    right = [c, (0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop)]
    off = [c, (0, 0), (0, w - crop - 1), (h - crop - 1, 0), (h - crop - 1, w - crop - 1)]

    def run(views):
        with torch.no_grad():
            return torch.stack([model(v) for v in views])  # logits (views, N, classes)

    def mean_softmax(views):
        return F.softmax(run(views), dim=-1).mean(0)

    logits = run(_views(x, crop, right))
    found = [
        (mean_softmax(_views(x, crop, right)[:5]),
         "you forgot the flips: the paper averages ten views, the five crops and their "
         "horizontal reflections"),
        (mean_softmax(_views(x, crop, right, flip_dims=(-2,))),
         "mirror the crops left to right (flip the last axis, the width), not upside down"),
        (F.softmax(logits.mean(0), dim=-1),
         "average the softmax probabilities of the ten views, not their logits"),
        (logits.mean(0), "return probabilities: a softmax of each view's output, then the mean"),
        (F.softmax(logits[0], dim=-1), "that is the centre crop alone: average all ten views"),
    ]
    if min(h, w) - crop >= 1:
        found.append((mean_softmax(_views(x, crop, off)),
                      "wrong corner offsets: the bottom and right crops start at H - crop and "
                      "W - crop, so that they end at the image's edge"))
    return found


def _ten_view_judge(answer, reference):
    """10-3: the answer's output matches the reference's on every test input, and stays
    the same from call to call (the model in eval mode)."""
    if not callable(answer):
        return f"expected a function ten_view_average(model, x, crop), got {describe(answer)}"
    ref = reference()
    g = torch.Generator().manual_seed(10)
    for k, (shown, n, ch, h, w, crop) in enumerate(_TEN_VIEW_INPUTS):
        x = torch.randn(n, ch, h, w, generator=g)
        expected = ref(_tiny_model(ch, crop, k), x.clone(), crop)
        outs = []
        for _ in range(2):  # twice, each time on a fresh model in training mode
            out, error = call_answer(answer, (_tiny_model(ch, crop, k), x.clone(), crop), {},
                                     f"your function, on {shown},")
            if error:
                return error
            if not isinstance(out, torch.Tensor):
                return (f"on {shown} your function returned {describe(out)}, expected a "
                        "tensor of probabilities")
            outs.append(out.detach().double())
        out = outs[0]
        if out.shape != expected.shape:
            if out.numel() == 10 * expected.numel():
                return (f"on {shown} your function returned shape {tuple(out.shape)}: average "
                        f"over the ten views, one row of probabilities per image "
                        f"{tuple(expected.shape)}")
            return (f"on {shown} your function returned shape {tuple(out.shape)}, expected "
                    f"{tuple(expected.shape)} (images, classes)")
        if not torch.allclose(outs[0], outs[1], atol=1e-6):
            return (f"on {shown} two calls gave different outputs: put the model in eval mode "
                    "(model.eval()), so that dropout is off")
        if not torch.allclose(out, expected.double(), atol=1e-5):
            for wrong, hint in _ten_view_mistakes(_tiny_model(ch, crop, k), x.clone(), crop):
                if wrong.shape == out.shape and torch.allclose(out, wrong.double(), atol=1e-5):
                    return f"on {shown}: {hint}"
            largest = (out - expected.double()).abs().max().item()
            return (f"on {shown}, the probabilities differ by up to {largest:.3g} "
                    "(tolerance 1e-05)")
    return None


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "10-1", "how many single-image forward passes the 10-crop test of the 10,000 test "
        "images makes (one image-view is one pass)", "an int",
        ten_crop_passes,
        number(abs_=0.0, mistakes=lambda: [
            (50_000, "the five crops are mirrored too: ten views per image"),
            (10, "that is per image; the test set has 10,000 images"),
            (10_000, "that is one view per image, the plain centre crop")])),
    Exercise(
        "10-2", "by how many pixels, along each axis, the top-left view is shifted from the "
        "centre view when the 28x28 image is padded by 2", "an int",
        corner_shift,
        number(abs_=0.0, mistakes=lambda: [
            (4, ("the padding adds 2 pixels on each side; the corner crop moves by one "
                 "padding's width from the centre")),
            (0, "the corner crop starts at the padded image's corner, not at the image's")])),
    Exercise(
        "10-3", "the paper's 10-crop test without padding: the softmax of a classifier averaged "
        "over the centre crop, the four corner crops and their horizontal reflections, each "
        "crop x crop, of (N, C, H, W) images (H - crop and W - crop even)",
        "a function ten_view_average(model, x, crop) returning (N, classes) probabilities",
        ten_view_average, _ten_view_judge, write_it=True),
)
