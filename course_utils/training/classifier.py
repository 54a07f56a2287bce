"""Training with skorch: one factory that gives every notebook the same sound defaults.

``make_classifier`` returns a :class:`skorch.NeuralNetClassifier` with the
course's callbacks (progress bar when interactive, cosine learning-rate
schedule, early stopping on ``valid_acc``, train accuracy, a best-model
checkpoint in a directory of its own), the fixed validation split and the
device from :func:`course_utils.config.get_device`.

The fast path is on by default and needs nothing from the caller:

* in-memory tensors (or NumPy arrays) are cut into mini-batches by slicing
  (:class:`TensorBatches`), not image by image through a ``DataLoader``; the
  batches, and the random numbers drawn for shuffling, are the same as with
  skorch's ``DataLoader``, so seeded results do not change;
* weights and activations are channels-last;
* the forward pass runs under bf16 autocast (``amp="auto"``) on a CUDA GPU and on
  a CPU that computes bf16 natively (AVX512-BF16 or AMX: about 30% faster
  here); elsewhere, and with ``amp="off"``, it stays float32;
* on CUDA: the whole uint8 dataset is copied to the GPU once and batches are
  indexed there, ``cudnn.benchmark`` is on, and batch losses are read back once per epoch
  instead of once per step (no host sync per step). ``compile=True`` (skorch's
  own switch) adds ``torch.compile``.

``python -m course_utils.tools.bench`` measures it against a per-image PIL pipeline.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterable

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import ProgressBar
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from torch.utils.data import DataLoader

from ..config import CourseError, cpu_supports_bf16, get_device, get_profile, seed_everything
from ..models import AlexNetSmall
from .callbacks import course_callbacks
from .fastpath import TensorBatches, tensor_source

__all__ = ["AMP_CHOICES", "AMP_ENV", "EVAL_BATCH_SIZE", "AmpError", "CourseClassifier", "accuracy",
           "best_epoch", "make_classifier", "train_seconds"]

#: Evaluation (validation, predict) runs in batches of at least this many images:
#: fewer, larger batches infer faster (measured: about 2x on the course's 2 CPU
#: cores at 512 against 128), and without gradients they need little memory.
EVAL_BATCH_SIZE = 512


# --------------------------------------------------------------------------- fast path

#: ``amp`` values: "auto" is bf16 on a CUDA GPU or CPU that supports it natively, else full
#: precision.
AMP_CHOICES = ("auto", "bf16", "off")
#: ``COURSE_AMP=off`` makes ``amp="auto"`` train in float32 (the path of CPUs without
#: native bf16), ``bf16`` forces bf16; unset, ``auto`` decides by the device.
AMP_ENV = "COURSE_AMP"


class AmpError(CourseError, ValueError):
    """Unknown mixed-precision setting."""


# Device copies of the datasets a net has iterated over, keyed by the CPU

class CourseClassifier(NeuralNetClassifier):
    """``NeuralNetClassifier`` with the course's fast path.

    * seeds itself before initialising (``seed=None`` to skip);
    * keeps 4-D weights channels-last, the faster layout for convolutions on
      both CPU and GPU;
    * ``tensor_batches=True``: slices batches out of in-memory tensors
      (:class:`TensorBatches`) whenever the iterator is skorch's default
      ``DataLoader`` with no options beyond batch size, shuffle and drop_last;
    * ``amp="auto"``: bf16 autocast for the forward pass on CUDA and on CPUs
      with native bf16 (``"bf16"`` forces it on any device, ``"off"`` disables
      it); outputs come back as float32 either way;
    * on CUDA, turns ``cudnn.benchmark`` on (unless cuDNN was made
      deterministic) and does not synchronise with the GPU per step.
    """

    def __init__(self, *args, seed=0, amp="auto", tensor_batches=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed = seed
        self.amp = amp
        self.tensor_batches = tensor_batches

    # -- set-up
    def initialize(self):
        if self.seed is not None:
            seed_everything(self.seed)
        self.amp_dtype_ = self._amp_dtype()
        if self._on_cuda() and not torch.backends.cudnn.deterministic:
            torch.backends.cudnn.benchmark = True
        return super().initialize()

    def initialize_module(self):
        super().initialize_module()
        self.module_.to(memory_format=torch.channels_last)
        return self

    def _on_cuda(self) -> bool:
        return torch.device(self.device or "cpu").type == "cuda"

    def _amp_dtype(self):
        amp = "off" if self.amp in (None, False) else str(self.amp).lower()
        if amp not in AMP_CHOICES:
            raise AmpError(f"amp must be one of {AMP_CHOICES}, got {self.amp!r}")
        env = os.environ.get(AMP_ENV, "").strip().lower()
        if amp == "auto" and env:
            if env not in AMP_CHOICES:
                raise AmpError(f"{AMP_ENV}={env!r}: set it to one of {', '.join(AMP_CHOICES)}, "
                               "or unset it")
            amp = env
        if amp == "bf16":
            return torch.bfloat16
        if amp == "auto":
            kind = torch.device(self.device or "cpu").type
            if kind == "cuda" and torch.cuda.is_bf16_supported():
                return torch.bfloat16
            if kind == "cpu" and cpu_supports_bf16():
                return torch.bfloat16
        return None

    def autocast(self):
        """The autocast context the forward pass runs in (a no-op without amp)."""
        dtype = getattr(self, "amp_dtype_", None)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device or "cpu").type, dtype=dtype)

    # -- steps
    def infer(self, x, **fit_params):
        with self.autocast():
            y = super().infer(x, **fit_params)
        if isinstance(y, torch.Tensor) and y.is_floating_point() and y.dtype != torch.float32:
            y = y.float()  # the loss and the scores in full precision
        return y

    def get_iterator(self, dataset, training=False):
        prefix = "iterator_train" if training else "iterator_valid"
        iterator = getattr(self, prefix)
        kwargs = self.get_params_for(prefix)
        simple = set(kwargs) <= {"batch_size", "shuffle", "drop_last"}
        source = (tensor_source(dataset) if self.tensor_batches and simple
                  and iterator is DataLoader else None)
        if source is None:
            return super().get_iterator(dataset, training=training)
        batch_size = kwargs.get("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = len(dataset)
        return TensorBatches(*source, batch_size=batch_size,
                             shuffle=bool(kwargs.get("shuffle", False)),
                             drop_last=bool(kwargs.get("drop_last", False)),
                             device=self.device or "cpu")

    def _defer_loss_sync(self) -> bool:
        if not self._on_cuda():
            return False
        # The progress bar shows each batch's loss, so it has to read it.
        return not any(isinstance(cb, ProgressBar) for _, cb in getattr(self, "callbacks_", []))

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's loop, except that on CUDA the batch losses stay on the GPU
        until the epoch ends (one host sync per epoch instead of one per step)."""
        if iterator is None or not self._defer_loss_sync():
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        key = prefix + "_loss"
        pending = []
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            loss = step["loss"].detach()
            self.history.record_batch(key, loss)
            pending.append((self.history[-1, "batches", -1], loss))
            batch_size = (len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch))
            self.history.record_batch(prefix + "_batch_size", batch_size)
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        if pending:
            values = torch.stack([loss.float() for _, loss in pending]).tolist()
            for (row, _), value in zip(pending, values):
                row[key] = value
        self.history.record(prefix + "_batch_count", batch_count)



def make_classifier(module=AlexNetSmall, valid: tuple | None = None, *,
                    max_epochs: int | None = None, lr: float = 1e-3,
                    batch_size: int | None = None, optimizer=torch.optim.Adam,
                    device: str | None = None, seed: int | None = 0,
                    cosine: bool = True, patience: int | None = 5, checkpoint: bool = True,
                    checkpoint_root=None, keep_checkpoint: bool = False, train_acc: bool = True,
                    progress: bool | None = None, callbacks: Iterable = (),
                    verbose: int = 1, **kwargs) -> CourseClassifier:
    """A skorch classifier set up the course's way.

    Args:
        module: the network class (or instance); parameters go in as ``module__NAME``.
        valid: ``(X_valid, y_valid)``, the fixed validation split. ``None`` turns
            validation off, and with it early stopping and the checkpoint.
        max_epochs, batch_size: default to the profile's. Validation and
            ``predict`` use batches of ``max(batch_size, EVAL_BATCH_SIZE)``
            unless ``iterator_valid__batch_size`` says otherwise.
        device: ``None`` picks CUDA, then MPS, then CPU.
        cosine, patience, checkpoint, train_acc, progress: switch the course
            callbacks (``patience=None`` disables early stopping).
        keep_checkpoint: keep the checkpoint's folder after training (by default
            it is deleted once the best weights are loaded).
        callbacks: extra ``(name, callback)`` pairs.
        **kwargs: anything skorch takes, e.g. ``module__dropout=0.3``,
            ``optimizer__momentum=0.9``, ``optimizer__weight_decay=5e-4``,
            ``compile=True`` (``torch.compile``), and :class:`CourseClassifier`'s
            ``amp`` (``"auto"``: bf16 on CUDA and native-bf16 CPUs; ``"off"``: float32) and
            ``tensor_batches`` (``True``).
    """
    profile = get_profile()
    max_epochs = profile.epochs if max_epochs is None else max_epochs
    batch_size = profile.batch_size if batch_size is None else batch_size
    if valid is None:
        train_split, patience, checkpoint = None, None, False
    else:
        train_split = predefined_split(Dataset(*valid))
    cbs = course_callbacks(max_epochs, cosine=cosine, patience=patience, checkpoint=checkpoint,
                           checkpoint_root=checkpoint_root, keep_checkpoint=keep_checkpoint,
                           train_acc=train_acc,
                           progress=progress)
    cbs.extend(callbacks)
    if batch_size > 0:
        kwargs.setdefault("iterator_valid__batch_size", max(batch_size, EVAL_BATCH_SIZE))
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
