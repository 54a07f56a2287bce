"""Notebook 08's exercises (data augmentation): their reference solutions."""
from __future__ import annotations

from .judge import Exercise, number, register

__all__ = ["EXERCISES", "distinct_patches", "lighting_shift_std"]


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


def _std() -> float:
    from ..data import STD
    return float(STD)


def _alpha() -> float:
    from ..layers import PAPER_ALPHA_STD
    return float(PAPER_ALPHA_STD)


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
)
