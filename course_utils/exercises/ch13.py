"""Notebook 13's exercise (AlexNet on ImageNet photos): the paper's top-k error rate, its
reference solution and test cases."""
from __future__ import annotations

import torch

from .judge import Exercise, generator, register, tensor_function

__all__ = ["EXERCISES", "top_k_error"]


# --------------------------------------------------------------------------- reference solutions

def top_k_error(logits, labels, k=5):
    import torch

    # the k most probable classes of each image (softmax keeps the order of the logits)
    top = torch.topk(logits, k, dim=1).indices  # (N, k)
    hit = (top == labels[:, None]).any(dim=1)  # is the true label among them?
    return 1.0 - hit.float().mean().item()  # the share of images where it is not


# --------------------------------------------------------------------------- test inputs

def _cases(reference) -> list[tuple[str, tuple, dict, torch.Tensor]]:
    """13-1's test logits and labels, each with the reference's error rate."""
    g = generator(13)
    cases = []
    for shown, n, classes, kwargs in (
            ("200 images, 20 classes, k=5", 200, 20, {}),
            ("50 images, 1000 classes, k=5", 50, 1000, {"k": 5}),
            ("300 images, 10 classes, k=1 (the top-1 error)", 300, 10, {"k": 1}),
            ("100 images, 8 classes, k=3", 100, 8, {"k": 3}),
            ("20 images, 6 classes, k=6 (every class)", 20, 6, {"k": 6})):
        logits = 3 * torch.randn(n, classes, generator=g)
        labels = torch.randint(0, classes, (n,), generator=g)
        # a few images whose label is the second most probable class: top-1 and top-k differ
        second = torch.topk(logits, 2, dim=1).indices[:, 1]
        labels[: n // 4] = second[: n // 4]
        error = reference(logits.clone(), labels.clone(), **kwargs)
        cases.append((shown, (logits, labels), kwargs, torch.tensor(float(error))))
    return cases


def _mistakes(args, kwargs) -> list[tuple[torch.Tensor, str]]:
    """13-1's common mistakes, with a hint each."""
    logits, labels = args
    k = kwargs.get("k", 5)
    top = torch.topk(logits, k, dim=1).indices
    hit = (top == labels[:, None]).any(dim=1).double().mean()
    top1 = (logits.argmax(1) == labels).double().mean()
    kth = (top[:, -1] == labels).double().mean()
    low = (torch.topk(logits, k, dim=1, largest=False).indices == labels[:, None]).any(1)
    return [(hit, "that is the top-k accuracy: the error is the share of images where the "
                  "label is not among the k"),
            (1 - top1, "that is the top-1 error: count an image as right when its label is "
                       "any of the k most probable classes"),
            (1 - kth, "compare the label with all k classes, not only the k-th"),
            (1 - low.double().mean(), "take the k largest scores (torch.topk's default), "
                                      "not the smallest"),
            (100 * (1 - hit), "give a share between 0 and 1, not a percentage")]


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "13-1", "the paper's top-k error rate: the share of images whose true label is not "
        "among the k classes the network finds most probable", "a function "
        "top_k_error(logits, labels, k=5) of (N, classes) scores and N labels, returning a "
        "number", top_k_error,
        tensor_function("top_k_error", _cases, atol=1e-6, mistakes=_mistakes),
        write_it=True),
)
