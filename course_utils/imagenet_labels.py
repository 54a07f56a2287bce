"""ImageNet's three class numberings, and the names that go with them.

A student meets three numbers for one ILSVRC-2012 class:

* the **output index** 0-999: the position of the network's logit. It is the line
  of Caffe's ``synset_words.txt``, which lists the WordNet IDs sorted; torchvision,
  Caffe and the TensorFlow port all use it;
* the **WNID**, WordNet's ID (``n02119789`` is the kit fox);
* the **ILSVRC2012_ID** 1-1000 of the devkit's ``data/meta.mat`` and its validation
  ground truth. IDs 1-1000 are the leaf synsets, but *not* in sorted-WNID order:
  ID 1 is the kit fox, output index 278.

The 1000 WNIDs in output order ship with the course (``imagenet_wnids.txt``, the
first column of ``synset_words.txt``); the names are torchvision's
``AlexNet_Weights.IMAGENET1K_V1.meta["categories"]`` (offline). ILSVRC2012_IDs come
from a ``meta.mat`` you have (:func:`read_meta_mat`): the devkit needs an
image-net.org login, so the course does not ship it.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from .config import CourseError

__all__ = ["NUM_CLASSES", "WNIDS_FILE", "ImageNetLabels", "LabelError", "imagenet_categories",
           "imagenet_wnids", "read_meta_mat"]

NUM_CLASSES = 1000
#: The 1000 WNIDs, one a line, line i = output index i.
WNIDS_FILE = Path(__file__).with_name("imagenet_wnids.txt")
#: Fields of the devkit's ``synsets`` struct that the course reads.
META_FIELDS = ("ILSVRC2012_ID", "WNID", "num_children")


class LabelError(CourseError):
    """A class number, WNID or meta.mat that does not fit ILSVRC-2012."""


@functools.lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ILSVRC-2012 WNIDs in the networks' output order (sorted)."""
    wnids = tuple(WNIDS_FILE.read_text().split())
    if len(wnids) != NUM_CLASSES or list(wnids) != sorted(set(wnids)):
        raise LabelError(f"{WNIDS_FILE.name} must hold 1000 sorted, distinct WNIDs; "
                         "reinstall the course")
    return wnids


@functools.lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """torchvision's 1000 class names, in output order (no download)."""
    from torchvision.models import AlexNet_Weights

    return tuple(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def read_meta_mat(path: str | os.PathLike) -> dict[int, str]:
    """ILSVRC2012_ID -> WNID for the leaf synsets of a devkit ``meta.mat``.

    Parameters
    ----------
    path : str or os.PathLike
        ``ILSVRC2012_devkit_t12/data/meta.mat``: a struct array ``synsets`` with
        fields ILSVRC2012_ID, WNID, words, gloss, num_children, children, ...

    Returns
    -------
    dict
        For every synset without children (the 1000 classes; a hand-made file may
        hold fewer): its ILSVRC2012_ID (1-1000) -> its WNID.
    """
    from scipy.io import loadmat

    path = Path(path).expanduser()
    if not path.is_file():
        raise LabelError(f"no meta.mat at {path.name}: it is data/meta.mat in the ILSVRC2012 "
                         "devkit")
    try:
        mat = loadmat(path, squeeze_me=True)
    except Exception as exc:  # scipy raises several kinds for a non-MAT file
        raise LabelError(f"{path.name} cannot be read as a MATLAB file "
                         f"({type(exc).__name__})") from None
    if "synsets" not in mat:
        raise LabelError(f"{path.name} has no 'synsets' struct: is it the devkit's data/meta.mat?")
    synsets = np.atleast_1d(mat["synsets"])
    missing = [f for f in META_FIELDS if f not in (synsets.dtype.names or ())]
    if missing:
        raise LabelError(f"{path.name}: synsets lacks the field(s) {', '.join(missing)}")
    known = set(imagenet_wnids())
    out: dict[int, str] = {}
    for entry in synsets:
        if int(entry["num_children"]) != 0:
            continue  # an inner node of the WordNet tree (IDs above 1000)
        ident, wnid = int(entry["ILSVRC2012_ID"]), str(entry["WNID"])
        if not 1 <= ident <= NUM_CLASSES:
            raise LabelError(f"{path.name}: leaf synset {wnid} has ILSVRC2012_ID {ident}, "
                             "outside 1-1000")
        if wnid not in known:
            raise LabelError(f"{path.name}: {wnid} is not one of the 1000 ILSVRC-2012 classes")
        if ident in out or wnid in out.values():
            raise LabelError(f"{path.name}: ILSVRC2012_ID {ident} or {wnid} appears twice")
        out[ident] = wnid
    if not out:
        raise LabelError(f"{path.name} holds no leaf synsets (num_children == 0)")
    return dict(sorted(out.items()))


class ImageNetLabels:
    """Maps between output index, WNID, ILSVRC2012_ID and name.

    Parameters
    ----------
    ilsvrc_ids : mapping, optional
        ILSVRC2012_ID -> WNID (from :func:`read_meta_mat`). Without it, only the
        output index, WNID and name are known.
    """

    def __init__(self, ilsvrc_ids: Mapping[int, str] | None = None):
        self.wnids = imagenet_wnids()
        self.names = imagenet_categories()
        self._index = {w: i for i, w in enumerate(self.wnids)}
        self.ilsvrc_ids = dict(ilsvrc_ids or {})
        unknown = [w for w in self.ilsvrc_ids.values() if w not in self._index]
        if unknown:
            raise LabelError(f"not ILSVRC-2012 classes: {', '.join(unknown[:3])}")
        self._id_of = {w: i for i, w in self.ilsvrc_ids.items()}

    @classmethod
    def from_meta_mat(cls, path: str | os.PathLike) -> "ImageNetLabels":
        """Labels with the ILSVRC2012_IDs of a devkit ``meta.mat``."""
        return cls(read_meta_mat(path))

    def _check_index(self, index) -> int:
        index = int(index)
        if not 0 <= index < NUM_CLASSES:
            raise LabelError(f"output index {index} is outside 0-999")
        return index

    def name(self, index: int) -> str:
        """The class name of output ``index``."""
        return self.names[self._check_index(index)]

    def wnid(self, index: int) -> str:
        """The WNID of output ``index``."""
        return self.wnids[self._check_index(index)]

    def index_of_wnid(self, wnid: str) -> int:
        """The output index of ``wnid``."""
        try:
            return self._index[wnid]
        except KeyError:
            raise LabelError(f"{wnid!r} is not one of the 1000 ILSVRC-2012 WNIDs") from None

    def ilsvrc_id(self, index: int) -> int | None:
        """The devkit's ILSVRC2012_ID of output ``index`` (None if the meta.mat lacks it)."""
        return self._id_of.get(self.wnid(index))

    def index_of_ilsvrc_id(self, ilsvrc_id: int) -> int:
        """The output index of the devkit's ``ilsvrc_id``."""
        try:
            return self._index[self.ilsvrc_ids[int(ilsvrc_id)]]
        except KeyError:
            have = len(self.ilsvrc_ids)
            raise LabelError(f"ILSVRC2012_ID {ilsvrc_id} is not in the loaded meta.mat "
                             f"({have} leaf synsets"
                             f"{'' if have else ': load one with from_meta_mat'})"
                             ) from None

    def row(self, index: int) -> dict:
        """The three numberings and the name of output ``index``."""
        index = self._check_index(index)
        return {"output index": index, "WNID": self.wnids[index],
                "ILSVRC2012_ID": self.ilsvrc_id(index), "name": self.names[index]}

    def table(self, indices):
        """:meth:`row` for each of ``indices``, as a pandas table."""
        import pandas as pd

        table = pd.DataFrame([self.row(int(i)) for i in indices])
        return table.astype({"ILSVRC2012_ID": "Int64"})  # whole numbers, <NA> where unknown

    def top_k(self, probs, k: int = 5):
        """The ``k`` most probable classes of one probability vector (1000,), as a table."""
        import pandas as pd
        import torch

        probs = torch.as_tensor(probs).flatten()
        if probs.numel() != NUM_CLASSES:
            raise LabelError(f"expected 1000 probabilities, got {probs.numel()}")
        values, indices = probs.topk(k)
        rows = [{"rank": r + 1, **self.row(int(i)), "probability": round(float(v), 4)}
                for r, (v, i) in enumerate(zip(values, indices))]
        return pd.DataFrame(rows).astype({"ILSVRC2012_ID": "Int64"})
