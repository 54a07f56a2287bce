"""Notebook 06's exercises (grid search): their reference solutions."""
from __future__ import annotations

import math

from .judge import Exercise, number, register

__all__ = ["EXERCISES", "halving_share", "scaled_lr"]


# --------------------------------------------------------------------------- reference solutions

def scaled_lr():
    base_lr, base_batch, batch = 1e-3, 128, 512

    # k times the batch: k times fewer steps per epoch, each averaging k times
    # more images; the rule takes k times larger steps to cover the same ground
    return base_lr * batch / base_batch


def halving_share():
    import math

    from course_utils.search import halving_schedule

    configs, max_epochs, factor = 45, 20, 3
    rungs = halving_schedule(max_epochs, factor=factor, min_epochs=2)  # [2, 6, 20]
    epochs, alive = 0, configs
    for rung_epochs in rungs:  # every survivor trains the rung's epochs from scratch
        epochs += alive * rung_epochs
        alive = math.ceil(alive / factor)
    return epochs / (configs * max_epochs)  # images = epochs x training images


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "06-1", "the learning rate the linear scaling rule gives at batch_size=512 for a net "
        "tuned to lr=1e-3 at batch_size=128", "a number",
        scaled_lr,
        number(rel=1e-6, mistakes=lambda: [
            (1e-3 * math.sqrt(512 / 128), ("that is the square-root rule; the linear rule "
                                           "multiplies by the batch ratio itself")),
            (1e-3 * 128 / 512, ("a larger batch gets a larger learning rate, not a smaller "
                                "one: it takes fewer steps"))])),
    Exercise(
        "06-2", "the share (0-1) of the full grid's images that successive halving processes "
        "on the reference grid (45 configurations, 20 epochs, factor 3, min_epochs 2), "
        "when no run stops early", "a number between 0 and 1",
        halving_share,
        number(abs_=0.005, share=True, mistakes=lambda: [
            ((45 * 2 + 15 * 4 + 5 * 14) / 900, ("each rung trains its survivors from the start, "
                                                 "not on from the previous rung's epochs")),
            (45 * 2 / 900, ("that is the first rung alone: the survivors' longer runs "
                            "count too"))])),
)
