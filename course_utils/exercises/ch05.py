"""Notebook 05's exercises (training with skorch): their cases and reference solutions."""
from __future__ import annotations

import math

import torch

from .judge import Exercise, generator, number, register, tensor_function

__all__ = ["EXERCISES", "cosine_lr", "smoothed_ce", "steps_per_epoch"]


# --------------------------------------------------------------------------- reference solutions

def steps_per_epoch():
    import torch

    from course_utils.training.fastpath import TensorBatches

    # the course's batches are cut exactly like skorch's DataLoader (drop_last=False)
    batches = TensorBatches(torch.zeros(50_000, 1), torch.zeros(50_000), batch_size=128)
    return len(batches)


def smoothed_ce(logits, target, eps):
    logp = torch.log_softmax(logits, dim=1)
    nll = -logp.gather(1, target[:, None])[:, 0]  # -log p of the true class
    uniform = -logp.mean(dim=1)  # -log p averaged over all K classes
    return ((1 - eps) * nll + eps * uniform).mean()


def cosine_lr():
    import torch

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)
    for epoch in range(3):  # LRScheduler steps once at the end of each epoch
        opt.step()
        sched.step()
    return opt.param_groups[0]["lr"]  # 1e-3 * (1 + cos(pi * 3 / 8)) / 2


# --------------------------------------------------------------------------- test inputs

def _smoothing_cases(reference):
    g = generator(5)
    logits = torch.randn(6, 10, generator=g, dtype=torch.float64) * 3
    target = torch.randint(0, 10, (6,), generator=g)
    few = torch.randn(4, 3, generator=g, dtype=torch.float64)
    few_target = torch.tensor([0, 2, 1, 2])
    F = torch.nn.functional  # PyTorch's own loss, not the reference's formula
    return [(f"6 images, 10 classes, eps={eps}", (logits, target, eps), {},
             F.cross_entropy(logits, target, label_smoothing=eps)) for eps in (0.1, 0.3)] + [
        ("4 images, 3 classes, eps=0.2", (few, few_target, 0.2), {},
         F.cross_entropy(few, few_target, label_smoothing=0.2))]


def _smoothing_mistakes(args, kwargs):
    logits, target, eps = args
    logp = torch.log_softmax(logits, dim=1)
    k = logits.shape[1]
    nll = -logp.gather(1, target[:, None])[:, 0]
    others = (-logp.sum(1) - nll) / (k - 1)  # eps spread over the other k - 1 classes only
    return [(((1 - eps) * nll + eps * others).mean(),
             ("the paper-style eps/(K-1) on the wrong classes is not PyTorch's: PyTorch "
              "spreads eps over all K classes, the right one included")),
            (nll.mean(), ("that is the plain cross-entropy: mix in eps times the mean of "
                          "-log p over all classes")),
            (((1 - eps) * nll + eps * (-logp.sum(1))).mean(),
             "eps multiplies the *mean* of -log p over the K classes, not their sum")]


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "05-1", "how many optimizer steps one epoch makes on 50,000 training images at "
        "batch_size=128 (skorch keeps the last, smaller batch)", "an int",
        steps_per_epoch,
        number(abs_=0.0, mistakes=lambda: [
            (50_000 // 128, ("the images left over after the full batches make one more, "
                             "smaller batch: it is a step too")),
            (50_000 / 128, ("a step takes a whole batch: count the batches, the last one "
                            "smaller"))])),
    Exercise(
        "05-2", "the loss of nn.CrossEntropyLoss(label_smoothing=eps), written by hand",
        "a function smoothed_ce(logits, target, eps) returning the mean loss",
        smoothed_ce,
        tensor_function("smoothed_ce", _smoothing_cases, atol=1e-6, rtol=1e-6,
                        mistakes=_smoothing_mistakes),
        write_it=True),
    Exercise(
        "05-3", "the learning rate in epoch 3 (counting from 0) of a cosine schedule that "
        "starts at lr=1e-3 with T_max=8, as skorch's LRScheduler sets it", "a number",
        cosine_lr,
        number(rel=1e-6, mistakes=lambda: [
            (1e-3 * (1 + math.cos(math.pi * 4 / 8)) / 2,
             "that is epoch 4's rate: epoch 0 runs at the full 1e-3"),
            (1e-3 * (1 + math.cos(math.pi * 2 / 8)) / 2,
             "that is epoch 2's rate: the schedule steps once after each epoch")])),
)
