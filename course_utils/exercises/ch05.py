"""Notebook 05's exercises (training with skorch): their cases and reference solutions."""
from __future__ import annotations

import functools
import types

import torch
from torch import nn

from .judge import (DeferredExercise, Exercise, describe, generator, package_function,
                    register, tensor_function)

__all__ = ["EXERCISES", "smoothed_ce", "stop_at_accuracy"]


# --------------------------------------------------------------------------- reference solutions

def stop_at_accuracy():
    """05-1's reference, the class ``StopAtAccuracy``: it subclasses skorch's Callback, so
    its module (and skorch) is imported on first use."""
    from .ch05_callback import StopAtAccuracy

    return StopAtAccuracy


def smoothed_ce(logits, target, eps):
    logp = torch.log_softmax(logits, dim=1)
    nll = -logp.gather(1, target[:, None])[:, 0]  # -log p of the true class
    uniform = -logp.mean(dim=1)  # -log p averaged over all K classes
    return ((1 - eps) * nll + eps * uniform).mean()


# --------------------------------------------------------------------------- 05-1: a callback
# The student's callback trains a tiny net (a hidden layer of 32 on 20 random features, 3
# classes) on 300 points and is validated on 100, on the CPU in a fraction of a second. A
# run without the callback gives the accuracy curves; the targets are chosen on them, so
# the number of epochs the callback must allow is known, and a mistake shows in that number.

EPOCHS = 12  # the tiny runs' max_epochs
_NAME = "StopAtAccuracy"


class _TinyNet(nn.Module):
    def __init__(self, features=20, hidden=32, classes=3):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(),
                                    nn.Linear(hidden, classes))

    def forward(self, x):
        return self.layers(x)


def _tiny_data():
    """300 training and 100 validation points: 20 Gaussian features, the label the largest
    of 3 random linear scores, 10% of the labels drawn at random."""
    g = generator(5)
    X = torch.randn(400, 20, generator=g)
    y = (X @ torch.randn(20, 3, generator=g)).argmax(dim=1)
    noisy = torch.rand(400, generator=g) < 0.1
    y[noisy] = torch.randint(0, 3, (int(noisy.sum()),), generator=g)
    return X[:300], y[:300], X[300:], y[300:]


def _tiny_net(callback=None):
    """The tiny net, skorch's NeuralNetClassifier, with ``callback`` as ``"stop"``."""
    from skorch import NeuralNetClassifier
    from skorch.callbacks import EpochScoring
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    _, _, X_valid, y_valid = _tiny_data()
    callbacks = [("train_acc", EpochScoring("accuracy", on_train=True, name="train_acc",
                                            lower_is_better=False))]
    if callback is not None:
        callbacks.append(("stop", callback))
    return NeuralNetClassifier(_TinyNet, criterion=nn.CrossEntropyLoss,
                               optimizer=torch.optim.Adam, lr=0.01, batch_size=32,
                               max_epochs=EPOCHS, iterator_train__shuffle=True,
                               train_split=predefined_split(Dataset(X_valid, y_valid)),
                               callbacks=callbacks, device="cpu", verbose=0)


def _fit(net):
    """Fit ``net`` on the tiny data, seeded: every run makes the same epochs until it stops."""
    X_train, y_train, _, _ = _tiny_data()
    torch.manual_seed(0)
    return net.fit(X_train, y_train)


@functools.cache
def _curves() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The validation and training accuracy of each epoch of the tiny run without a callback."""
    with torch.random.fork_rng(devices=[]):
        history = _fit(_tiny_net()).history
    return tuple(history[:, "valid_acc"]), tuple(history[:, "train_acc"])


def _first(curve, target) -> int | None:
    """The first epoch (from 1) whose accuracy reaches ``target``, else None."""
    return next((epoch for epoch, acc in enumerate(curve, start=1) if acc >= target), None)


def _targets() -> list[tuple[str, float]]:
    """The cases: ``(what the target is, target)``."""
    valid, train = _curves()
    # epochs 2 to EPOCHS - 1 that set a new best validation accuracy
    records = [k for k in range(2, EPOCHS) if valid[k - 1] > max(valid[:k - 1])]
    if not records:
        raise RuntimeError("the tiny run's validation accuracy never improved")
    between = [(k, (max(valid[:k - 1]) + valid[k - 1]) / 2) for k in records]

    def apart(k, target):  # the training accuracy reaches it in another epoch
        return _first(train, target) not in (None, k, k + 1)
    k, mid = next((c for c in between if apart(*c)), between[0])
    exact = next((valid[j - 1] for j in records if j != k), valid[k - 1])
    return [(f"a target of {mid:.3f}, between two validation accuracies", mid),
            (f"a target of {exact:g}, a validation accuracy the net reaches", exact),
            (f"a target of {max(valid) + 0.005:.3f}, which the net never reaches",
             max(valid) + 0.005),
            ("a target of 0", 0.0)]


def _run_hint(epochs: int, target: float, shown: str) -> str | None:
    """What is wrong when the callback let the run train ``epochs`` epochs, else None."""
    valid, train = _curves()
    expected = _first(valid, target) or EPOCHS
    if epochs == expected:
        return None
    said = f"on {shown}, the run trained {epochs} epochs, where {expected} were due"
    if epochs == _first(train, target):
        return (f"{said}: your callback reads the training accuracy; the target is on the "
                "validation accuracy")
    above = next((k for k, acc in enumerate(valid, start=1) if acc > target), EPOCHS)
    if epochs == above:
        return (f"{said}: it waits for the validation accuracy to exceed the target; "
                "reaching it is enough")
    if epochs == expected + 1:
        return (f"{said}: it stops one epoch late. Decide in on_epoch_end, on the epoch that "
                "just ended (the history's last row)")
    if epochs == EPOCHS:
        return (f"{said}: it never stops training. Raise KeyboardInterrupt in on_epoch_end: "
                "skorch's fit catches it and ends training, as EarlyStopping does")
    if epochs < expected:
        return f"{said}: it stops while the validation accuracy is still under the target"
    return said


def _callback_judge(answer, reference):
    from skorch.callbacks import Callback

    if isinstance(answer, Callback):
        return f"give the class itself (answer = {_NAME}), not an instance of it"
    if not isinstance(answer, type):
        return f"expected a class {_NAME}(target), got {describe(answer)}"
    if answer is not reference():  # check() looked at the class, this at its methods
        own = [c for c in answer.__mro__ if c.__module__.split(".")[0] not in ("skorch",
                                                                                "builtins")]
        for method in (m for c in own for m in vars(c).values()):
            function = getattr(method, "__func__", method)  # a staticmethod's, classmethod's
            borrowed = (package_function(function) if isinstance(function, types.FunctionType)
                        else None)
            if borrowed:
                return (f"your answer uses {borrowed} from the course's package: write the "
                        "callback yourself")
    try:
        probe = answer(0.5)
    except Exception as exc:  # noqa: BLE001 (the student's code may raise anything)
        return f"{_NAME}(0.5) raised {type(exc).__name__}: {exc}"
    if not isinstance(probe, Callback):
        return (f"{_NAME} must subclass skorch.callbacks.Callback: skorch calls every hook of "
                "a callback (on_train_begin ... on_batch_end) and its initialize, get_params "
                "and set_params, which Callback provides")
    if getattr(probe, "get_params", lambda: {})().get("target") != 0.5:
        return ("keep the argument as self.target: skorch, like scikit-learn, finds a "
                "callback's parameters by their names (get_params, and set_params as in "
                "net.set_params(callbacks__stop__target=0.9))")
    for i, (shown, target) in enumerate(_targets()):
        try:
            net = _tiny_net(answer(target))
        except Exception as exc:  # noqa: BLE001 (the student's code may raise anything)
            return f"{_NAME}({target:g}) raised {type(exc).__name__}: {exc}"
        epochs = []
        for _ in range(2 if i == 0 else 1):  # the first case fits the same net twice
            try:
                epochs.append(len(_fit(net).history))
            except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 (any is wrong here)
                said = f"on {shown}, training with your callback raised {type(exc).__name__}"
                if isinstance(exc, KeyError):
                    said += ' (the validation accuracy is the history\'s "valid_acc")'
                elif isinstance(exc, KeyboardInterrupt):
                    said += ": skorch catches it only in the epochs, so raise it in on_epoch_end"
                elif isinstance(exc, TypeError) and "keyword argument" in str(exc):
                    said += (" (skorch passes a hook keyword arguments: def on_epoch_end(self, "
                             "net, **kwargs))")
                elif isinstance(exc, StopIteration):
                    said += ": end training with KeyboardInterrupt, which skorch's fit catches"
                said += f": {exc}" if str(exc) else ""
                return said
        hint = _run_hint(epochs[0], target, shown)
        if hint:
            return hint
        if len(epochs) == 2 and epochs[1] != epochs[0]:
            return (f"on {shown}, the first fit ran {epochs[0]} epochs, a second fit of the same "
                    f"net {epochs[1]}: your callback keeps state from the first fit. skorch "
                    "calls initialize() at the start of every fit: reset the state there (and "
                    "return self)")
    return None


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
    DeferredExercise(
        "05-1", "a skorch callback that stops training once the validation accuracy reaches "
        "a target", f"a class {_NAME}(target), a subclass of skorch.callbacks.Callback",
        stop_at_accuracy, _callback_judge, write_it=True),
    Exercise(
        "05-2", "the loss of nn.CrossEntropyLoss(label_smoothing=eps), written by hand",
        "a function smoothed_ce(logits, target, eps) returning the mean loss",
        smoothed_ce,
        tensor_function("smoothed_ce", _smoothing_cases, atol=1e-6, rtol=1e-6,
                        mistakes=_smoothing_mistakes),
        write_it=True),
)
