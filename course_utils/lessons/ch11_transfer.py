"""Transfer learning: reuse what a network learned on some classes for others.

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
ever downloaded here.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..config import CourseError
from ..data import Splits, stratified_indices
from ..experiments import claim_table
from ..models import V2_CHANNELS, AlexNet, AlexNetSmall

SOURCE_CLASSES = (0, 1, 2, 3, 4)  # T-shirt/top, Trouser, Pullover, Dress, Coat
TARGET_CLASSES = (5, 6, 7, 8, 9)  # Sandal, Shirt, Sneaker, Bag, Ankle boot
MODES = ("frozen", "finetune", "scratch")

#: torchvision's file name for its ImageNet AlexNet weights (the "one weird trick" net).
TORCHVISION_FILE = "alexnet-owt-7be5be79.pth"
#: torchvision's layer names -> the course's.
TORCHVISION_KEYS = {
    "features.0": "features.conv1", "features.3": "features.conv2",
    "features.6": "features.conv3", "features.8": "features.conv4",
    "features.10": "features.conv5", "classifier.1": "classifier.fc6",
    "classifier.4": "classifier.fc7", "classifier.6": "classifier.fc8",
}

#: Budget for notebook 11: pretraining images and epochs, labelled target images per
#: class ("shots") and fine-tuning epochs, test images per task.
RUNS = {
    "smoke": dict(pretrain=300, pretrain_epochs=2, shots=10, epochs=3, test=300, valid=100,
                  batch_size=32),
    "quick": dict(pretrain=1_500, pretrain_epochs=4, shots=20, epochs=30, test=1_000, valid=250,
                  batch_size=32),
    "full": dict(pretrain=None, pretrain_epochs=20, shots=20, epochs=40, test=None, valid=5_000,
                 batch_size=128),
}
#: Lowest target-task test accuracy accepted for each mode (five classes: chance is 0.2).
BOUNDS = {"smoke": 0.1, "quick": 0.25, "full": 0.6}  # full: an estimate, not measured


class PretrainedWeightsError(CourseError):
    """A weights file is missing, unreadable or does not fit the model."""


class MissingWeightsError(PretrainedWeightsError, FileNotFoundError):
    """No file at the given path."""


# --------------------------------------------------------------------------- data

def class_subset(X: torch.Tensor, y: torch.Tensor, classes, size: int | None = None,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of ``classes`` only, labels renumbered 0..len(classes)-1, optionally a
    stratified subset of ``size`` of them."""
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
    """``splits`` restricted to ``classes`` (relabelled), cut to the given sizes."""
    X_tr, y_tr = class_subset(splits.X_train, splits.y_train, classes, train, seed)
    X_va, y_va = class_subset(splits.X_valid, splits.y_valid, classes, valid, seed)
    X_te, y_te = class_subset(splits.X_test, splits.y_test, classes, test, seed)
    names = tuple(splits.classes[c] for c in classes)
    return replace(splits, X_train=X_tr, y_train=y_tr, X_valid=X_va, y_valid=y_va,
                   X_test=X_te, y_test=y_te, classes=names)


def transfer_tasks(splits: Splits, budget: dict, seed: int = 0) -> tuple[Splits, Splits]:
    """The source task (pretraining) and the few-shot target task for ``budget``
    (one of :data:`RUNS`)."""
    source = task_splits(splits, SOURCE_CLASSES, budget["pretrain"], budget["valid"],
                         budget["test"], seed)
    shots = budget["shots"] * len(TARGET_CLASSES)
    target = task_splits(splits, TARGET_CLASSES, shots, budget["valid"], budget["test"], seed)
    return source, target


# --------------------------------------------------------------------------- models

def transfer_model(source: nn.Module | None, mode: str, num_classes: int = len(TARGET_CLASSES),
                   seed: int = 0, **model_kwargs) -> AlexNetSmall:
    """A new AlexNetSmall for the target task, set up for ``mode`` (see :data:`MODES`).

    ``source`` is the pretrained network (ignored for ``"scratch"``). Its
    convolutions and fc6/fc7 are copied; fc8 is new, sized ``num_classes``.
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
    """Stop gradients into the convolutional part (``model.features``)."""
    for p in model.features.parameters():
        p.requires_grad_(False)
    return model


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- weights files

def save_weights(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model``'s ``state_dict`` to ``path`` (folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def default_torchvision_path() -> Path:
    """Where torchvision keeps its AlexNet weights once downloaded (``$TORCH_HOME``, else
    ``~/.cache/torch``). This only computes the path; it never downloads."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def from_torchvision(state: dict) -> "OrderedDict[str, torch.Tensor]":
    """torchvision AlexNet layer names (``features.0.weight``...) -> the course's
    (``features.conv1.weight``...). Course names pass through unchanged."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in state.items():
        layer, _, param = key.rpartition(".")
        out[f"{TORCHVISION_KEYS.get(layer, layer)}.{param}"] = value
    return out


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


def transfer_table(runs: list[dict], paper: dict | None = None, profile: str = "",
                   device: str = ""):
    """Results of the three modes as a pandas table."""
    import pandas as pd

    rows = [{"mode": r["name"], "test accuracy (5 target classes)": round(r["test_acc"], 4),
             "trainable parameters": r.get("trainable", None), "epochs": r["epochs"],
             "train seconds": round(r["train_s"], 1), "profile": profile, "device": device}
            for r in runs]
    return pd.DataFrame(rows)


def paper_table(runs: list[dict], profile: str = "", device: str = ""):
    """The paper's pretrain-then-fine-tune result (Table 2) next to ours."""
    by = {r["name"]: r["test_acc"] for r in runs}
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
    # one row per claim: paper against ours, with profile and device
    return claim_table(rows, profile, device).reset_index()
