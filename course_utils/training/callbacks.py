"""The course's skorch callbacks: progress bar, schedules, checkpoint, throughput."""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
from skorch.callbacks import (Callback, Checkpoint, EarlyStopping, EpochScoring, LRScheduler,
                              ProgressBar)

from ..config import BUILD_DIR, CourseError
from .predict import accuracy_from_scores

__all__ = ["CHECKPOINT_ENV", "PROGRESS_ENV", "EvalModeTrainScore", "LinearWarmup", "RecipeError",
           "RunCheckpoint", "Throughput", "course_callbacks", "default_checkpoint_root",
           "images_per_second", "progress_enabled", "remove_dead_runs"]

PROGRESS_ENV = "COURSE_PROGRESS"
CHECKPOINT_ENV = "COURSE_CHECKPOINT_DIR"


class RecipeError(CourseError, ValueError):
    """An unknown recipe, or a run that cannot give the figures asked of it (notebook 07)."""


def default_checkpoint_root() -> Path:
    env = os.environ.get(CHECKPOINT_ENV, "").strip()
    return Path(env) if env else BUILD_DIR / "checkpoints"


def progress_enabled() -> bool:
    """Show a progress bar? ``$COURSE_PROGRESS`` decides (0/1); otherwise only when
    a person is watching: a terminal, or a Jupyter kernel.

    ``make run`` and ``make test`` set ``COURSE_PROGRESS=0``: inside nbval's
    kernel skorch's bar would become a notebook widget.
    """
    env = os.environ.get(PROGRESS_ENV)
    if env is not None and env.strip():
        value = env.strip().lower()
        if value in {"1", "true", "yes", "on"}:
            return True
        if value in {"0", "false", "no", "off"}:
            return False
        raise CourseError(f"{PROGRESS_ENV}={env!r}: set it to 1 (show progress bars) or 0 "
                          "(hide them), or unset it")
    if "ipykernel" in sys.modules:
        return True
    return sys.stderr.isatty()


#: In each run's checkpoint folder while the run trains: who owns it (host, pid, start).
OWNER_FILE = ".owner"


def _process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, from /proc), to tell a reused PID
    from the run's own; None where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _owner() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}


def _owner_is_dead(owner: dict) -> bool:
    """True only when the process that owns a run folder is surely gone: same host, and
    its PID is free or now belongs to a process that started at another time."""
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False  # another machine's run (a shared folder): cannot tell
    pid, start = owner.get("pid"), owner.get("start")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    now = _process_start(pid)
    return isinstance(start, int) and now is not None and now != start


def remove_dead_runs(root: str | os.PathLike) -> list[Path]:
    """Delete the ``run-*`` folders under ``root`` whose run was killed (its owner file
    names a process of this host that is gone); returns them.

    A folder without a readable owner file is left alone: a run writes the file right
    after creating its folder, and a kept checkpoint (``keep=True``) has it removed
    once training ends. Links are never followed.
    """
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith("run-") or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            fd = os.open(os.path.join(entry.path, OWNER_FILE),
                         os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "r", encoding="utf-8") as fh:
                owner = json.loads(fh.read(4096))
        except (OSError, ValueError):
            continue
        if _owner_is_dead(owner):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


class RunCheckpoint(Checkpoint):
    """A :class:`skorch.callbacks.Checkpoint` that writes into a fresh directory
    under ``root`` each time the net is initialised.

    Runs in parallel, or clones made by a grid search, therefore never
    overwrite each other's files (skorch issue #848). Only the parameters are
    saved: that is all ``load_best`` needs. Once training ends and the best
    weights are loaded, the directory is deleted unless ``keep=True``.

    A run killed mid-way cannot delete its folder: each folder holds an owner file
    (host, PID, process start) while its run trains, and the next run under the same
    root deletes the folders of runs that are gone (:func:`remove_dead_runs`).
    """

    def __init__(self, root=None, monitor="valid_acc_best", load_best=True,
                 f_params="params.pt", f_optimizer=None, f_criterion=None, f_history=None,
                 keep=False, **kwargs):
        kwargs.pop("dirname", None)  # always chosen afresh in initialize()
        self.root = root
        self.keep = keep
        super().__init__(monitor=monitor, f_params=f_params, f_optimizer=f_optimizer,
                         f_criterion=f_criterion, f_history=f_history, dirname="",
                         load_best=load_best, **kwargs)

    def _get_param_names(self):
        # skorch callbacks expose every attribute as a parameter; the directory
        # must not be one, or clones would share it.
        return [name for name in super()._get_param_names() if name != "dirname"]

    def initialize(self):
        root = Path(self.root) if self.root else default_checkpoint_root()
        root.mkdir(parents=True, exist_ok=True)
        remove_dead_runs(root)
        self.dirname = tempfile.mkdtemp(prefix="run-", dir=root)
        with open(os.path.join(self.dirname, OWNER_FILE), "x", encoding="utf-8") as fh:
            json.dump(_owner(), fh)
        return super().initialize()

    def on_train_end(self, net, **kwargs):
        try:
            super().on_train_end(net, **kwargs)
        finally:
            if not self.keep and self.dirname:
                # only the folder this callback made (run-XXXX under its root)
                path = Path(self.dirname)
                if path.name.startswith("run-") and path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
            elif self.dirname:  # kept: no longer a run in progress, never swept
                Path(self.dirname, OWNER_FILE).unlink(missing_ok=True)



def course_callbacks(max_epochs: int, *, cosine: bool = True, patience: int | None = 5,
                     checkpoint: bool = True, checkpoint_root=None, keep_checkpoint: bool = False,
                     train_acc: bool = True,
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
        cbs.append(("checkpoint", RunCheckpoint(root=checkpoint_root, keep=keep_checkpoint)))
    return cbs





class Throughput(Callback):
    """Records, per epoch, the training images and the seconds spent on the
    training pass (validation excluded) as ``train_images``, ``train_seconds``
    and ``train_img_s``.

    The clock runs from the first training batch to the first validation batch
    (or the end of the epoch). On CUDA, where the course's classifier does not
    wait for the GPU after each step, it synchronises before reading the clock,
    so all queued GPU work is counted.
    """

    def on_epoch_begin(self, net, **kwargs):
        self._images = 0
        self._start = self._stop = None

    def _stop_clock(self, net):
        if self._start is not None and self._stop is None:
            if torch.device(net.device or "cpu").type == "cuda":
                torch.cuda.synchronize()
            self._stop = time.perf_counter()

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            if self._start is None:
                self._start = time.perf_counter()
            self._images += len(batch[0])
        else:
            self._stop_clock(net)

    def on_epoch_end(self, net, **kwargs):
        self._stop_clock(net)
        seconds = (self._stop - self._start) if self._start is not None else 0.0
        net.history.record("train_images", int(self._images))
        net.history.record("train_seconds", float(seconds))
        net.history.record("train_img_s", self._images / seconds if seconds else float("nan"))


class EvalModeTrainScore(Callback):
    """Records, per epoch, the loss and accuracy on the first ``images`` training
    images *in eval mode* (dropout and augmentation off) as ``train_loss_eval`` and
    ``train_acc_eval``.

    skorch's ``train_loss`` is the mean over the epoch's training batches, measured
    with dropout (and any augmentation) on: a regulariser inflates it. This is the
    same quantity the run layer's ``train_acc`` measures after training
    (:func:`course_utils.experiment.train_variant`), by epoch, so that curves of
    nets with and without a regulariser compare fairly.

    Parameters
    ----------
    images : int
        Training images scored each epoch (the first ones; all if fewer).
    """

    def __init__(self, images: int = 2_000):
        self.images = int(images)

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        if dataset_train is None or not hasattr(dataset_train, "X"):
            raise CourseError("EvalModeTrainScore needs the training data as in-memory "
                              "tensors (skorch's Dataset(X, y))")
        X, y = dataset_train.X[:self.images], dataset_train.y[:self.images]
        logits = net.forward(X, training=False).float().cpu()
        y = torch.as_tensor(y).long().cpu()
        net.history.record("train_loss_eval",
                           float(torch.nn.functional.cross_entropy(logits, y)))
        net.history.record("train_acc_eval", accuracy_from_scores(logits, y))


class LinearWarmup(Callback):
    """Raises the learning rate linearly from ``lr / steps`` to ``lr`` over the
    first ``steps`` training steps, then leaves it alone (a plateau schedule
    takes over). Keep ``steps`` within the first epoch."""

    def __init__(self, steps: int):
        self.steps = int(steps)

    def on_train_begin(self, net, **kwargs):
        self.step_ = 0
        self.base_lrs_ = [g["lr"] for g in net.optimizer_.param_groups]

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training or self.step_ >= self.steps:
            return
        self.step_ += 1
        for group, base in zip(net.optimizer_.param_groups, self.base_lrs_):
            group["lr"] = base * self.step_ / self.steps


def images_per_second(net, skip_first: bool = True) -> float:
    """Training images per second over the run, from the history.

    Uses :class:`Throughput`'s records when present (training batches only),
    else skorch's ``train_batch_size`` and the epoch ``dur`` (which includes
    validation). The first epoch, which pays for warm-up (cuDNN autotuning,
    allocator growth), is left out when there is more than one.
    """
    history = net.history
    if len(history) == 0:
        raise CourseError("the net has no history yet: fit it first")
    rows = list(history)
    if skip_first and len(rows) > 1:
        rows = rows[1:]
    if all("train_seconds" in r for r in rows):
        images = sum(r["train_images"] for r in rows)
        seconds = sum(r["train_seconds"] for r in rows)
    else:
        images = sum(sum(b.get("train_batch_size", 0) for b in r["batches"]) for r in rows)
        seconds = sum(r["dur"] for r in rows)
    if seconds <= 0:
        raise RecipeError("no training time in the history")
    return images / seconds


