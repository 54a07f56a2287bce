"""Notebook 10's exercises (test-time augmentation): their reference solutions, with
torchvision's ten_crop (the notebook's ten views, in torchvision's order)."""
from __future__ import annotations

from .judge import Exercise, number, register

__all__ = ["EXERCISES", "corner_shift", "ten_crop_passes"]


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
)
