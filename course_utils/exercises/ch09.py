"""Notebook 09's exercises (dropout): their reference solutions."""
from __future__ import annotations

from .judge import Exercise, number, register

__all__ = ["EXERCISES", "dropout_scale", "iterations"]


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
)
