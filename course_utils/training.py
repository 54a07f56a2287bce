"""Training with skorch: one factory that gives every notebook the same sound defaults.

``make_classifier`` returns a :class:`skorch.NeuralNetClassifier` with the
course's callbacks (progress bar when interactive, cosine learning-rate
schedule, early stopping on ``valid_acc``, train accuracy, a best-model
checkpoint in a directory of its own), the fixed validation split and the
device from :func:`course_utils.config.get_device`.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import (Checkpoint, EarlyStopping, EpochScoring, LRScheduler,
                              ProgressBar)
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from .config import get_device, get_profile, seed_everything
from .models import AlexNetSmall

PROGRESS_ENV = "COURSE_PROGRESS"
CHECKPOINT_ENV = "COURSE_CHECKPOINT_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_checkpoint_root() -> Path:
    env = os.environ.get(CHECKPOINT_ENV, "").strip()
    return Path(env) if env else REPO_ROOT / "build" / "checkpoints"


def progress_enabled() -> bool:
    """Show a progress bar? ``$COURSE_PROGRESS`` decides (0/1); otherwise only when
    a person is watching: a terminal, or a Jupyter kernel.

    ``make run`` and ``make test`` set ``COURSE_PROGRESS=0``: inside nbval's
    kernel skorch's bar would become a notebook widget.
    """
    env = os.environ.get(PROGRESS_ENV)
    if env is not None and env.strip():
        return env.strip().lower() in {"1", "true", "yes", "on"}
    if "ipykernel" in sys.modules:
        return True
    return sys.stderr.isatty()


class RunCheckpoint(Checkpoint):
    """A :class:`skorch.callbacks.Checkpoint` that writes into a fresh directory
    under ``root`` each time the net is initialised.

    Runs in parallel, or clones made by a grid search, therefore never
    overwrite each other's files (skorch issue #848). Only the parameters are
    saved: that is all ``load_best`` needs.
    """

    def __init__(self, root=None, monitor="valid_acc_best", load_best=True,
                 f_params="params.pt", f_optimizer=None, f_criterion=None, f_history=None,
                 event_name="event_cp"):
        self.root = root
        super().__init__(monitor=monitor, f_params=f_params, f_optimizer=f_optimizer,
                         f_criterion=f_criterion, f_history=f_history, dirname="",
                         load_best=load_best, event_name=event_name)

    def initialize(self):
        root = Path(self.root) if self.root else default_checkpoint_root()
        root.mkdir(parents=True, exist_ok=True)
        self.dirname = tempfile.mkdtemp(prefix="run-", dir=root)
        return super().initialize()


class CourseClassifier(NeuralNetClassifier):
    """``NeuralNetClassifier`` that seeds itself before initialising (``seed=None``
    to skip) and keeps 4-D weights channels-last, the faster layout for
    convolutions on both CPU and GPU.
    """

    def __init__(self, *args, seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed = seed

    def initialize(self):
        if self.seed is not None:
            seed_everything(self.seed)
        return super().initialize()

    def initialize_module(self):
        super().initialize_module()
        self.module_.to(memory_format=torch.channels_last)
        return self


def course_callbacks(max_epochs: int, *, cosine: bool = True, patience: int | None = 5,
                     checkpoint: bool = True, checkpoint_root=None, train_acc: bool = True,
                     progress: bool | None = None) -> list[tuple[str, object]]:
    """The course's callbacks, named so they can be tuned with ``callbacks__NAME__PARAM``."""
    cbs: list[tuple[str, object]] = []
    if progress if progress is not None else progress_enabled():
        # detect_notebook=False: plain text bar, no ipywidgets needed.
        cbs.append(("progress", ProgressBar(detect_notebook=False)))
    if train_acc:
        cbs.append(("train_acc", EpochScoring("accuracy", on_train=True, name="train_acc",
                                              lower_is_better=False)))
    if cosine:
        cbs.append(("lr_schedule", LRScheduler(policy="CosineAnnealingLR",
                                               T_max=max(1, max_epochs))))
    if patience is not None:
        cbs.append(("early_stopping", EarlyStopping(monitor="valid_acc", patience=patience,
                                                    lower_is_better=False)))
    if checkpoint:
        cbs.append(("checkpoint", RunCheckpoint(root=checkpoint_root)))
    return cbs


def make_classifier(module=AlexNetSmall, valid: tuple | None = None, *,
                    max_epochs: int | None = None, lr: float = 1e-3,
                    batch_size: int | None = None, optimizer=torch.optim.Adam,
                    device: str | None = None, seed: int | None = 0,
                    cosine: bool = True, patience: int | None = 5, checkpoint: bool = True,
                    checkpoint_root=None, train_acc: bool = True,
                    progress: bool | None = None, callbacks: Iterable = (),
                    verbose: int = 1, **kwargs) -> CourseClassifier:
    """A skorch classifier set up the course's way.

    Args:
        module: the network class (or instance); parameters go in as ``module__NAME``.
        valid: ``(X_valid, y_valid)``, the fixed validation split. ``None`` turns
            validation off, and with it early stopping and the checkpoint.
        max_epochs, batch_size: default to the profile's.
        device: ``None`` picks CUDA, then MPS, then CPU.
        cosine, patience, checkpoint, train_acc, progress: switch the course
            callbacks (``patience=None`` disables early stopping).
        callbacks: extra ``(name, callback)`` pairs.
        **kwargs: anything skorch takes, e.g. ``module__dropout=0.3``,
            ``optimizer__momentum=0.9``, ``optimizer__weight_decay=5e-4``.
    """
    profile = get_profile()
    max_epochs = profile.epochs if max_epochs is None else max_epochs
    batch_size = profile.batch_size if batch_size is None else batch_size
    if valid is None:
        train_split, patience, checkpoint = None, None, False
    else:
        train_split = predefined_split(Dataset(*valid))
    cbs = course_callbacks(max_epochs, cosine=cosine, patience=patience, checkpoint=checkpoint,
                           checkpoint_root=checkpoint_root, train_acc=train_acc,
                           progress=progress)
    cbs.extend(callbacks)
    return CourseClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=optimizer,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        train_split=train_split,
        callbacks=cbs,
        device=str(device if device is not None else get_device()),
        iterator_train__shuffle=True,
        verbose=verbose,
        seed=seed,
        **kwargs,
    )


def accuracy(net, X, y) -> float:
    """Share of ``X`` that ``net`` classifies as ``y``."""
    y = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return float((net.predict(X) == y).mean())


def best_epoch(net) -> tuple[int, float]:
    """The epoch with the best ``valid_acc`` and that accuracy."""
    accs = net.history[:, "valid_acc"]
    i = int(np.argmax(accs))
    return int(net.history[i, "epoch"]), float(accs[i])


def train_seconds(net) -> float:
    """Wall time of all epochs so far, from skorch's history."""
    return float(sum(net.history[:, "dur"]))
