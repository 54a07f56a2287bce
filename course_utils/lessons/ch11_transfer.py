"""Notebook 11: transfer learning, reusing what a network learned on some classes for others.

Notebook 11 pretrains the small AlexNet on five Fashion-MNIST classes
(:data:`SOURCE_CLASSES`), then learns the other five (:data:`TARGET_CLASSES`)
from a few labelled images each, three ways (:data:`MODES`):

* ``"frozen"``: keep the pretrained convolutions fixed, train only the classifier
  (fc6 and fc7 start from the pretrained weights, fc8 is new);
* ``"finetune"``: start from all pretrained weights (new fc8), train everything;
* ``"scratch"``: the same network from a random initialisation.

:func:`load_pretrained` reads weights from a local file: the course's own
``state_dict`` files, or torchvision's ImageNet AlexNet
(``alexnet-owt-7be5be79.pth``), whose layer names it translates. Nothing is
ever downloaded here. The budget (``pretrain``, ``pretrain_epochs``, ``shots``...)
and bounds are ``course_utils.budgets.budget("11")``.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from ..config import REPO_ROOT, CourseError, display_path
from ..pretrained import TORCHVISION_FILE, TORCHVISION_KEYS, from_torchvision  # their one home
from ..data import Splits, stratified_indices
from ..experiment import RunResult, claim_table
from ..models import AlexNet, AlexNetSmall

__all__ = ["MODES", "MissingWeightsError", "PretrainedWeightsError", "SOURCE_CLASSES",
           "TARGET_CLASSES", "TORCHVISION_FILE", "TORCHVISION_KEYS", "check_imagenet_transfer",
           "class_subset", "default_torchvision_path", "display_path", "freeze_features",
           "from_torchvision", "imagenet_transfer_model", "load_pretrained", "model_for",
           "paper_table", "save_weights", "task_splits", "trainable_parameters",
           "transfer_model", "transfer_table", "transfer_tasks"]

SOURCE_CLASSES = (0, 1, 2, 3, 4)  # T-shirt/top, Trouser, Pullover, Dress, Coat
TARGET_CLASSES = (5, 6, 7, 8, 9)  # Sandal, Shirt, Sneaker, Bag, Ankle boot
MODES = ("frozen", "finetune", "scratch")

class PretrainedWeightsError(CourseError):
    """A weights file is missing, unreadable or does not fit the model."""


class MissingWeightsError(PretrainedWeightsError, FileNotFoundError):
    """No file at the given path."""


# --------------------------------------------------------------------------- data

def class_subset(X: torch.Tensor, y: torch.Tensor, classes, size: int | None = None,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of ``classes`` only, labels renumbered ``0..len(classes)-1``.

    Parameters
    ----------
    X, y : torch.Tensor
        Images and labels.
    classes : sequence of int
        The classes kept, in their new order.
    size : int, optional
        A stratified subset of this many images; None: all of them.
    seed : int
        Seed of the subset.

    Returns
    -------
    X, y : torch.Tensor
    """
    classes = list(classes)
    keep = torch.isin(y, torch.tensor(classes))
    X, y = X[keep], y[keep]
    remap = torch.full((int(max(classes)) + 1,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    y = remap[y]
    if size is not None:
        idx = stratified_indices(y, size, seed)
        X, y = X[idx], y[idx]
    return X, y


def task_splits(splits: Splits, classes, train: int | None, valid: int | None,
                test: int | None, seed: int = 0) -> Splits:
    """``splits`` restricted to ``classes`` (relabelled), cut to the given sizes.

    Parameters
    ----------
    splits : Splits
    classes : sequence of int
    train, valid, test : int or None
        Images per split (None: all of those classes).
    seed : int
        Seed of the subsets.

    Returns
    -------
    Splits
        With ``classes`` holding the kept classes' names.
    """
    X_tr, y_tr = class_subset(splits.X_train, splits.y_train, classes, train, seed)
    X_va, y_va = class_subset(splits.X_valid, splits.y_valid, classes, valid, seed)
    X_te, y_te = class_subset(splits.X_test, splits.y_test, classes, test, seed)
    names = tuple(splits.classes[c] for c in classes)
    return replace(splits, X_train=X_tr, y_train=y_tr, X_valid=X_va, y_valid=y_va,
                   X_test=X_te, y_test=y_te, classes=names)


def transfer_tasks(splits: Splits, budget: Mapping, seed: int = 0) -> tuple[Splits, Splits]:
    """The source task (pretraining) and the few-shot target task.

    Parameters
    ----------
    splits : Splits
        The course splits, all ten classes.
    budget : mapping
        ``budget("11")`` or a dict with ``pretrain`` (source training images, None:
        all), ``shots`` (labelled target images per class), ``valid`` and ``test``.
    seed : int
        Seed of the subsets.

    Returns
    -------
    source, target : Splits
        :data:`SOURCE_CLASSES` and :data:`TARGET_CLASSES`, each relabelled 0-4.
    """
    source = task_splits(splits, SOURCE_CLASSES, budget["pretrain"], budget["valid"],
                         budget["test"], seed)
    shots = budget["shots"] * len(TARGET_CLASSES)
    target = task_splits(splits, TARGET_CLASSES, shots, budget["valid"], budget["test"], seed)
    return source, target


# --------------------------------------------------------------------------- models

def transfer_model(source: nn.Module | None, mode: str, num_classes: int = len(TARGET_CLASSES),
                   seed: int = 0, **model_kwargs) -> AlexNetSmall:
    """A new AlexNetSmall for the target task, set up for ``mode``.

    Parameters
    ----------
    source : nn.Module or None
        The pretrained network (ignored for ``"scratch"``). Its convolutions and
        fc6/fc7 are copied; fc8 is new, sized ``num_classes``.
    mode : {"frozen", "finetune", "scratch"}
        See :data:`MODES`.
    num_classes : int
    seed : int
        Seed of the new weights.
    **model_kwargs
        Passed to :class:`~course_utils.models.AlexNetSmall`.

    Returns
    -------
    AlexNetSmall
    """
    if mode not in MODES:
        raise CourseError(f"mode must be one of {MODES}, got {mode!r}")
    torch.manual_seed(seed)
    model = AlexNetSmall(num_classes=num_classes, **model_kwargs)
    if mode == "scratch":
        return model
    if source is None:
        raise CourseError(f"mode {mode!r} needs the pretrained source network")
    weights = {k: v for k, v in source.state_dict().items() if not k.startswith("classifier.fc8")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not k.startswith("classifier.fc8") for k in missing):
        raise PretrainedWeightsError("the source network does not match AlexNetSmall: "
                                     f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    if mode == "frozen":
        freeze_features(model)
    return model


def freeze_features(model: nn.Module) -> nn.Module:
    """Stop gradients into the convolutional part (``model.features``); returns ``model``."""
    for p in model.features.parameters():
        p.requires_grad_(False)
    return model


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters that receive gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- weights files

def save_weights(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model``'s ``state_dict`` to ``path`` (folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def default_torchvision_path() -> Path:
    """Where torchvision keeps its AlexNet weights once downloaded (``$TORCH_HOME``, else
    ``~/.cache/torch``). This only computes the path; it never downloads."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def model_for(state: dict) -> AlexNet:
    """An :class:`AlexNet` whose layer sizes fit ``state`` (course names), e.g. torchvision's
    ImageNet net: 3 input channels, 64-192-384-256-256 filters, 4096 hidden, 1000 classes."""
    try:
        w1, w8 = state["features.conv1.weight"], state["classifier.fc8.weight"]
        channels = tuple(state[f"features.conv{i}.weight"].shape[0] for i in range(1, 6))
        hidden = state["classifier.fc6.weight"].shape[0]
    except KeyError as exc:
        raise PretrainedWeightsError(
            f"these weights are not an AlexNet: no {exc.args[0]!r} in the file") from None
    fc6_in = state["classifier.fc6.weight"].shape[1]
    side = round((fc6_in / channels[-1]) ** 0.5)
    input_size = 227 if side == 6 else 67 if side == 1 else None
    if input_size is None:
        raise PretrainedWeightsError(f"fc6 takes {fc6_in} inputs, which fits neither the "
                                     "227x227 AlexNet nor the 67x67 AlexNetSmall")
    return AlexNet(in_channels=w1.shape[1], num_classes=w8.shape[0], channels=channels,
                   input_size=input_size, hidden=hidden)


def load_pretrained(path: str | os.PathLike, model: nn.Module | None = None) -> nn.Module:
    """Load AlexNet weights from the local file ``path`` into ``model`` and return it.

    ``path`` may hold a course ``state_dict`` (:func:`save_weights`) or torchvision's
    ImageNet AlexNet (``alexnet-owt-7be5be79.pth``). With ``model=None`` a fitting
    :class:`AlexNet` is built (for torchvision's file: 3 channels, V2 filters, 1000
    classes). Raises :class:`MissingWeightsError` when there is no file and
    :class:`PretrainedWeightsError` when it is unreadable or does not fit ``model``.
    Nothing is downloaded.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(
            f"no weights file at {path}. Nothing is downloaded here: copy the file there "
            f"(for torchvision's ImageNet AlexNet, {TORCHVISION_FILE} from "
            "https://download.pytorch.org/models/ on a machine with internet), or pass "
            "the right path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, not a torch file at all...
        raise PretrainedWeightsError(f"could not read {path} as PyTorch weights "
                                     f"({type(exc).__name__}): is the file complete?") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedWeightsError(f"{path} holds no state_dict of tensors")
    state = from_torchvision(state)
    if model is None:
        model = model_for(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{name}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                 for name, items in (("missing", missing), ("unexpected", unexpected),
                                     ("wrong shape (file vs model)", wrong)) if items]
        raise PretrainedWeightsError(f"{path.name} does not fit this model; "
                                     + "; ".join(parts)
                                     + ". Build the model with matching sizes, or pass model=None")
    model.load_state_dict(state)
    return model


def transfer_table(runs: Sequence[RunResult], trainable: Mapping[str, int] | None = None,
                   profile: str = "", device: str = ""):
    """Results of the three modes as a table.

    Parameters
    ----------
    runs : sequence of RunResult
        One per mode, named by ``variant``.
    trainable : mapping of str to int, optional
        Trainable parameters per mode.
    profile, device : str
        Written into the table.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    trainable = trainable or {}
    rows = [{"mode": r.variant, "test accuracy (5 target classes)": round(r.test_acc, 4),
             "trainable parameters": trainable.get(r.variant), "epochs": r.epochs_run,
             "train seconds": round(r.train_seconds, 1), "profile": profile, "device": device}
            for r in runs]
    return pd.DataFrame(rows)


def paper_table(runs: Sequence[RunResult], profile: str = "", device: str = ""):
    """The paper's pretrain-then-fine-tune result (Table 2) next to ours.

    Parameters
    ----------
    runs : sequence of RunResult
        One per mode of :data:`MODES`, named by ``variant``.
    profile, device : str
        Where ours was measured; empty: the current profile and device.

    Returns
    -------
    pandas.DataFrame
        One row per claim.
    """
    by = {r.variant: r.test_acc for r in runs}
    rows = [
        {"claim": "pretraining on more data, then fine-tuning, beats training on the task alone",
         "paper": "top-1 error 40.7% -> 39.0% (1 CNN vs 1 CNN* pretrained on ImageNet Fall 2011)",
         "ours": f"fine-tune {by.get('finetune', float('nan')):.3f} vs scratch "
                 f"{by.get('scratch', float('nan')):.3f} accuracy "
                 f"({100 * (by.get('finetune', 0) - by.get('scratch', 0)):+.1f} points)"},
        {"claim": "frozen features transfer (not in the paper; Donahue et al. 2014, DeCAF)",
         "paper": "-",
         "ours": f"frozen convolutions {by.get('frozen', float('nan')):.3f} accuracy"},
    ]
    return claim_table(rows, profile, device).reset_index()


def imagenet_transfer_model(path, num_classes: int) -> nn.Module:
    """The reference answer to notebook 11's ImageNet exercise: the ImageNet AlexNet in
    ``path`` (torchvision's or the original file) with frozen convolutions and a new fc8
    for ``num_classes``, fed Fashion-MNIST's uint8 images (grey becomes RGB inside)."""
    from ..layers import InputAdapter
    from ..pretrained import load_imagenet_alexnet

    net = freeze_features(load_imagenet_alexnet(path))
    net.classifier.fc8 = nn.Linear(net.classifier.fc8.in_features, num_classes)
    return nn.Sequential(InputAdapter(net.input_size, mean=0.0, std=1.0), net)


def check_imagenet_transfer(model: nn.Module, num_classes: int) -> str:
    """Check an answer to the ImageNet exercise; raise :class:`CourseError` saying what
    is wrong, else return a one-line confirmation."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not convs or not linears:
        raise CourseError("that is not an AlexNet: build it with load_imagenet_alexnet(path)")
    if any(p.requires_grad for m in convs for p in m.parameters()):
        raise CourseError("the convolutions still learn: freeze them (freeze_features)")
    if linears[-1].out_features != num_classes:
        raise CourseError(f"the last layer has {linears[-1].out_features} outputs: replace fc8 "
                          f"by nn.Linear(4096, {num_classes})")
    if not linears[-1].weight.requires_grad:
        raise CourseError("the new fc8 does not learn: give it requires_grad=True")
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    model.eval()
    with torch.no_grad():
        out = model(x)
    if tuple(out.shape) != (2, num_classes):
        raise CourseError(f"Fashion-MNIST images give outputs of shape {tuple(out.shape)}, "
                          f"not (2, {num_classes}): put an InputAdapter in front")
    return (f"correct: frozen ImageNet convolutions, a new {num_classes}-class fc8, "
            f"{trainable_parameters(model):,} trainable parameters")
