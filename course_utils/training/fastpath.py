"""The fast path: batches sliced out of in-memory tensors, data resident on the GPU.

:class:`TensorBatches` yields what skorch's ``DataLoader`` would for a
:class:`skorch.dataset.Dataset` of tensors (same batches, same random draws),
without calling ``__getitem__`` per image. On a non-CPU device the data is
copied there once (:func:`resident`) and indexed in place.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from skorch.dataset import Dataset
from torch.utils.data import Subset
from torch.utils.weak import WeakIdKeyDictionary

__all__ = ["TensorBatches", "resident", "same_device", "tensor_source"]

# tensor (or array) itself, so the data crosses to the GPU once, not per batch.
_RESIDENT = WeakIdKeyDictionary()


def _as_tensor(a):
    if isinstance(a, torch.Tensor):
        return a
    with warnings.catch_warnings():  # read-only arrays: we never write to them
        warnings.simplefilter("ignore", UserWarning)
        return torch.as_tensor(a)


def resident(a, device) -> torch.Tensor:
    """``a`` as a tensor on ``device``; non-CPU copies are made once and reused
    (until ``a`` is modified in place, which makes a fresh copy)."""
    device = torch.device(device)
    if device.type == "cpu":
        return _as_tensor(a)
    version = getattr(a, "_version", None)
    entry = _RESIDENT.get(a)
    if entry is not None and entry[0] == version and same_device(entry[1].device, device):
        return entry[1]
    copy = _as_tensor(a).to(device)
    _RESIDENT[a] = (version, copy)
    return copy


def same_device(have: torch.device, want: torch.device) -> bool:
    """Is a tensor on ``have`` already on ``want``? ("cuda" means the current GPU.)"""
    if have.type != want.type:
        return False
    if want.index is None and want.type == "cuda":
        return have.index == torch.cuda.current_device()
    return want.index is None or have.index == want.index


def _sliceable(a, n: int) -> bool:
    if isinstance(a, torch.Tensor):
        return a.dim() >= 1 and len(a) == n
    if isinstance(a, np.ndarray):
        return a.ndim >= 1 and len(a) == n and (a.dtype.kind in "biuf")
    return False


def tensor_source(dataset):
    """``(X, y, indices)`` when ``dataset`` is a plain :class:`skorch.dataset.Dataset`
    over a tensor or array (possibly inside ``torch.utils.data.Subset`` objects,
    as skorch's ``ValidSplit`` makes), else ``None``. ``indices`` is ``None`` for
    the whole dataset."""
    indices = None
    while isinstance(dataset, Subset):
        idx = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
        indices = idx if indices is None else idx[indices]
        dataset = dataset.dataset
    if type(dataset) is not Dataset or dataset.X_is_ndframe:
        return None
    X, y = dataset.X, dataset.y
    n = len(dataset)
    if not _sliceable(X, n) or not (y is None or _sliceable(y, n)):
        return None
    return X, y, indices


class TensorBatches:
    """Mini-batches sliced out of in-memory tensors: what skorch's ``DataLoader``
    yields for a :class:`skorch.dataset.Dataset` of tensors, without calling
    ``__getitem__`` once per image and collating.

    It draws the same numbers from torch's global generator as a single-process
    ``DataLoader`` (one for the iterator's base seed, one for the shuffle
    sampler) and shuffles with the same permutation, so a seeded fit sees the
    same batches, in the same order, and the same dropout masks. On a non-CPU
    ``device`` the data is made :func:`resident` there and indexed on the device.
    """

    def __init__(self, X, y=None, indices=None, *, batch_size: int, shuffle: bool = False,
                 drop_last: bool = False, device="cpu"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.X, self.y, self.indices = X, y, indices
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), drop_last
        self.device = torch.device(device)
        self.n = len(indices) if indices is not None else len(X)

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def __iter__(self):
        # DataLoader.__iter__ draws its base seed; RandomSampler draws its seed.
        torch.empty((), dtype=torch.int64).random_()
        order = self.indices
        if self.shuffle:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            generator = torch.Generator()
            generator.manual_seed(seed)
            perm = torch.randperm(self.n, generator=generator)
            order = perm if order is None else order[perm]
        if order is None:
            order = torch.arange(self.n)
        X = resident(self.X, self.device)
        y = None if self.y is None else resident(self.y, self.device)
        # On the CPU, gather with NumPy: torch would split each small copy
        # across its threads, and on a busy machine waiting for both threads
        # to be scheduled costs more than the copy.
        Xn, yn = _numpy_view(X), None if y is None else _numpy_view(y)
        if Xn is not None and (y is None or yn is not None):
            X, y, order = Xn, yn, order.numpy()
            wrap = torch.from_numpy
        else:
            order = order.to(X.device)
            wrap = _identity
        stop = self.n - self.n % self.batch_size if self.drop_last else self.n
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size]
            # skorch's Dataset stands in torch.Tensor([0]) for a missing y.
            yb = torch.zeros(len(idx), 1) if y is None else wrap(y[idx])
            yield wrap(X[idx]), yb


def _identity(x):
    return x


def _numpy_view(t: torch.Tensor):
    """``t``'s memory as a NumPy array, if it is a plain CPU tensor, else None."""
    if t.device.type != "cpu" or t.requires_grad:
        return None
    try:
        return t.numpy()
    except (TypeError, RuntimeError):  # bfloat16 and other types NumPy lacks
        return None


