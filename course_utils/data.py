"""Fashion-MNIST, offline first, kept as one uint8 tensor.

Where the data is looked for, in order:

1. ``$COURSE_DATA_DIR`` -- if set, *only* there;
2. ``data/`` in the repository;
3. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``);
4. a download with torchvision into ``data/`` (needs internet).

The IDX files are read here with gzip and NumPy, because torchvision refuses
Debian's recompressed ``.gz`` files (their MD5 sums differ from its list).

Run ``python -m course_utils.data`` to see where the data came from.
"""
from __future__ import annotations

import gzip
import os
import sys
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .config import FOLDER_ENVS, CourseError, Profile, display_path, get_profile

__all__ = ["describe_source", "CLASSES", "DATA_DIR_ENV", "DEBIAN_DATA_DIR", "DataNotFoundError",
           "DatasetError", "FILES", "FRESH_COPY", "FashionMNIST", "MISSING_HELP", "REPO_DATA_DIR",
           "Splits", "budget_splits", "candidate_dirs", "course_splits", "load_fashion_mnist",
           "splits_for", "load_from", "main", "read_idx", "stratified_indices", "train_valid_split"]

DATA_DIR_ENV = FOLDER_ENVS[1]
REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEBIAN_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")

CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# Mean and std of the 60k training images, pixel values scaled to [0, 1].
MEAN, STD = 0.2860, 0.3530

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MAGIC = {"images": 2051, "labels": 2049}  # 0x00000803, 0x00000801
_EXPECTED = {"train": 60_000, "test": 10_000}
#: The most data bytes an IDX header may promise: the 60,000-image training files.
_MAX_BYTES = {"images": max(_EXPECTED.values()) * 28 * 28, "labels": max(_EXPECTED.values())}

MISSING_HELP = (
    "Fashion-MNIST not found. Fix it one of three ways: "
    "(1) sudo apt-get install dataset-fashion-mnist; "
    "(2) export COURSE_DATA_DIR=/folder/with/the/four/idx/files; "
    "(3) connect to the internet so torchvision can download it into data/."
)
#: What to do about a damaged file.
FRESH_COPY = ("delete it and get a fresh copy (sudo apt-get install --reinstall "
              "dataset-fashion-mnist, or let torchvision download it into data/)")


def _missing_in(folder: Path, found: dict) -> str:
    names = [FILES[key] + "[.gz]" for key, path in found.items() if path is None]
    return f"{folder} lacks {', '.join(names)}"


class DatasetError(CourseError):
    """The dataset is missing, truncated or corrupt."""


class DataNotFoundError(DatasetError, FileNotFoundError):
    """No copy of Fashion-MNIST was found and none could be downloaded."""


@dataclass
class FashionMNIST:
    """The whole dataset as tensors. Images are uint8, shape (N, 28, 28)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]
    source: str  # the folder the files were read from

    def __repr__(self) -> str:
        return (f"FashionMNIST(train={len(self.train_labels)}, test={len(self.test_labels)}, "
                f"source={self.source!r})")


# --------------------------------------------------------------------------- IDX files

def read_idx(path: str | os.PathLike, kind: str) -> np.ndarray:
    """Read one IDX file (``.gz`` or not); ``kind`` is ``"images"`` or ``"labels"``.

    Checks the magic number and that the file holds exactly the bytes its header
    promises; a problem raises :class:`DatasetError` naming the file. The file is read
    as a stream: the header first, then at most the bytes it promises (and no header
    may promise more than the largest Fashion-MNIST file), so a small file that
    decompresses to gigabytes (a gzip bomb) costs no more memory than a real one.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    ndim = 3 if kind == "images" else 1
    header = 4 + 4 * ndim
    try:
        with opener(path, "rb") as fh:
            head = fh.read(header)
            if len(head) < header:
                raise DatasetError(f"{path}: truncated ({len(head)} bytes, shorter than its "
                                   f"header): {FRESH_COPY}")
            magic = int.from_bytes(head[:4], "big")
            if magic != _MAGIC[kind]:
                raise DatasetError(f"{path}: wrong magic number {magic} (expected {_MAGIC[kind]} "
                                   f"for IDX {kind}); this is not a Fashion-MNIST {kind} file: "
                                   f"{FRESH_COPY}")
            dims = [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
            expected = int(np.prod(dims, dtype=object))
            if expected > _MAX_BYTES[kind]:
                raise DatasetError(f"{path}: its header promises {expected} bytes of data for "
                                   f"shape {tuple(dims)}, more than any Fashion-MNIST {kind} "
                                   f"file holds ({_MAX_BYTES[kind]}): {FRESH_COPY}")
            raw = bytearray(expected)
            got = _read_into(fh, raw)
            if got < expected:
                raise DatasetError(f"{path}: truncated or padded: header promises {expected} "
                                   f"bytes of data for shape {tuple(dims)}, file has {got}: "
                                   f"{FRESH_COPY}")
            if fh.read(1):
                raise DatasetError(f"{path}: truncated or padded: header promises {expected} "
                                   f"bytes of data for shape {tuple(dims)}, file has more: "
                                   f"{FRESH_COPY}")
    except DatasetError:
        raise
    except PermissionError:
        raise DatasetError(f"{path}: permission denied; make it readable (chmod a+r) or "
                           f"point {DATA_DIR_ENV} at a copy you can read") from None
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path}: cannot be read ({exc}); the file is corrupt or "
                           f"truncated: {FRESH_COPY}") from None
    return np.frombuffer(raw, dtype=np.uint8).reshape(dims)


def _read_into(fh, buffer: bytearray) -> int:
    """Fill ``buffer`` from ``fh``; returns the bytes read (fewer at the end of the file)."""
    view, got = memoryview(buffer), 0
    while got < len(buffer):
        n = fh.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _find_file(folder: Path, stem: str) -> Path | None:
    for sub in (folder, folder / "FashionMNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            try:
                if (sub / name).is_file():
                    return sub / name
            except PermissionError:
                raise DatasetError(f"{sub}: permission denied; make the folder readable "
                                   f"(chmod a+rx) or point {DATA_DIR_ENV} at a copy you can "
                                   "read") from None
    return None


def _found_files(folder: Path) -> dict[str, Path | None]:
    return {key: _find_file(folder, stem) for key, stem in FILES.items()}


def _complete_set(folder: Path) -> dict[str, Path] | None:
    found = _found_files(folder)
    return found if all(found.values()) else None


def _validate(split: str, images: np.ndarray, labels: np.ndarray, files: dict) -> None:
    img_path, lbl_path = files[f"{split}_images"], files[f"{split}_labels"]
    n = _EXPECTED[split]
    if images.shape != (n, 28, 28):
        raise DatasetError(f"{img_path}: shape {images.shape}, expected ({n}, 28, 28): "
                           f"{FRESH_COPY}")
    if labels.shape != (n,):
        raise DatasetError(f"{lbl_path}: {labels.shape[0]} labels, expected {n}: {FRESH_COPY}")
    if labels.max() > 9:
        raise DatasetError(f"{lbl_path}: label {int(labels.max())} out of range 0-9: "
                           f"{FRESH_COPY}")
    counts = np.bincount(labels, minlength=10)
    if not (counts == n // 10).all():
        raise DatasetError(f"{lbl_path}: per-class counts {counts.tolist()}, "
                           f"expected {n // 10} of each class: {FRESH_COPY}")


def load_from(folder: str | os.PathLike) -> FashionMNIST:
    """Read and check the four IDX files in ``folder``."""
    folder = Path(folder)
    found = _found_files(folder)
    if not all(found.values()):
        raise DataNotFoundError(f"{_missing_in(folder, found)}: put the four Fashion-MNIST "
                                "IDX files there, or see the README's Data section")
    files = found
    arrays = {key: read_idx(path, key.split("_")[1]) for key, path in files.items()}
    for split in ("train", "test"):
        _validate(split, arrays[f"{split}_images"], arrays[f"{split}_labels"], files)
    # torch.from_numpy on a read-only buffer warns; copy once into owned memory.
    tensors = {key: torch.from_numpy(arr.copy()) for key, arr in arrays.items()}
    return FashionMNIST(
        train_images=tensors["train_images"],
        train_labels=tensors["train_labels"].long(),
        test_images=tensors["test_images"],
        test_labels=tensors["test_labels"].long(),
        classes=CLASSES,
        source=str(files["train_images"].parent),
    )


def describe_source(data: FashionMNIST) -> str:
    """Where ``data`` came from, as outputs show it (no machine's absolute path)."""
    src = Path(data.source)
    if src == DEBIAN_DATA_DIR:
        return "Debian's dataset-fashion-mnist package"
    where = display_path(src)
    if os.environ.get(DATA_DIR_ENV, "").strip():
        return f"{DATA_DIR_ENV} ({where})"
    return where


def candidate_dirs() -> list[Path]:
    """The folders searched, in order (only ``$COURSE_DATA_DIR`` when it is set)."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        return [Path(env).expanduser()]
    return [REPO_DATA_DIR, DEBIAN_DATA_DIR]


def _download(root: Path) -> None:
    """torchvision's download, for users with internet. Raises on failure."""
    from torchvision.datasets import FashionMNIST as TVFashionMNIST

    root.mkdir(parents=True, exist_ok=True)
    TVFashionMNIST(root=str(root), train=True, download=True)
    TVFashionMNIST(root=str(root), train=False, download=True)


_CACHE: dict[Path, FashionMNIST] = {}


def load_fashion_mnist(download: bool = True) -> FashionMNIST:
    """Fashion-MNIST from the first place that has it (see the module docstring).

    The result is cached per folder, so notebooks can call this freely.
    """
    dirs = candidate_dirs()
    for folder in dirs:
        if _complete_set(folder) is not None:
            key = folder.resolve()
            if key not in _CACHE:
                _CACHE[key] = load_from(folder)
            return _CACHE[key]
    if os.environ.get(DATA_DIR_ENV, "").strip():
        raise DataNotFoundError(f"{DATA_DIR_ENV}: {_missing_in(dirs[0], _found_files(dirs[0]))}; "
                                f"copy the four IDX files there, or unset {DATA_DIR_ENV} to "
                                "use data/ or Debian's package")
    if download:
        try:
            _download(REPO_DATA_DIR)
        except Exception as exc:  # no internet, proxy, disk full...
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise DataNotFoundError(f"{MISSING_HELP} (download failed: {reason})") from None
        return load_from(REPO_DATA_DIR)
    raise DataNotFoundError(MISSING_HELP)


# --------------------------------------------------------------------------- splits

def stratified_indices(labels: torch.Tensor, size: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of a class-balanced random subset of ``size`` items (all if ``None``)."""
    n = len(labels)
    if size is None or size >= n:
        return torch.arange(n)
    if size <= 0:
        raise ValueError(f"subset size must be positive, got {size}")
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(n), train_size=size, random_state=seed,
                              stratify=labels.numpy())
    return torch.from_numpy(np.sort(idx))


def train_valid_split(labels: torch.Tensor, valid_size: int = 10_000, seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded, stratified split of indices into train and validation (50k/10k by default)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train_idx, valid_idx = train_test_split(idx, test_size=valid_size, random_state=seed,
                                            stratify=labels.numpy())
    return torch.from_numpy(np.sort(train_idx)), torch.from_numpy(np.sort(valid_idx))


@dataclass
class Splits:
    """Train, validation and test tensors, images shaped (N, 1, 28, 28) uint8."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_valid: torch.Tensor
    y_valid: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    profile: str
    source: str

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test)}

    def __repr__(self) -> str:
        return f"Splits({self.sizes()}, profile={self.profile!r})"


def course_splits(profile: Profile | str | None = None, seed: int = 0,
                  data: FashionMNIST | None = None) -> Splits:
    """The splits a notebook trains on, sized by the profile.

    The validation set is a stratified hold-out of the 60k training file (the
    test file is never used for model selection); the training subset and test
    subset are stratified too, and everything depends only on ``seed``.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    data = data or load_fashion_mnist()
    train_idx, valid_idx = train_valid_split(data.train_labels, prof.valid_size, seed)
    sub = stratified_indices(data.train_labels[train_idx], prof.train_size, seed)
    train_idx = train_idx[sub]
    test_idx = stratified_indices(data.test_labels, prof.test_size, seed)
    images = lambda t, i: t[i].unsqueeze(1).contiguous()  # noqa: E731  (N, 1, 28, 28)
    return Splits(
        X_train=images(data.train_images, train_idx), y_train=data.train_labels[train_idx],
        X_valid=images(data.train_images, valid_idx), y_valid=data.train_labels[valid_idx],
        X_test=images(data.test_images, test_idx), y_test=data.test_labels[test_idx],
        classes=data.classes, profile=prof.name, source=data.source,
    )


# --------------------------------------------------------------------------- command line

def budget_splits(splits: "Splits", train: int | None = None, valid: int | None = None,
                  test: int | None = None, seed: int = 0, **_ignored) -> "Splits":
    """A stratified subset of ``splits`` with at most ``train``/``valid``/``test`` images
    (``None`` keeps a split whole). Other keys are ignored, so a notebook's budget
    (:func:`course_utils.budgets.budget`) can be passed with ``**``."""
    def cut(X, y, n):
        idx = stratified_indices(y, n, seed)
        return X[idx], y[idx]

    X_train, y_train = cut(splits.X_train, splits.y_train, train)
    X_valid, y_valid = cut(splits.X_valid, splits.y_valid, valid)
    X_test, y_test = cut(splits.X_test, splits.y_test, test)
    return replace(splits, X_train=X_train, y_train=y_train, X_valid=X_valid, y_valid=y_valid,
                   X_test=X_test, y_test=y_test)


def splits_for(b, profile: Profile | str | None = None, seed: int = 0,
               data: FashionMNIST | None = None) -> "Splits":
    """The splits of a notebook's budget row ``b`` (:func:`course_utils.budgets.budget`).

    The profile's splits are widened where the row asks for more images than the
    profile holds (e.g. all 50,000 training images in ``quick``), then cut to the
    row's sizes with :func:`budget_splits`. Where the profile already holds enough,
    the images are exactly ``budget_splits(course_splits(profile), seed=seed, **b)``.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)

    def wider(have, want):
        if have is None or want is None:
            return None  # all
        return max(int(have), int(want))

    prof = prof.with_(train_size=wider(prof.train_size, b["train"]),
                      valid_size=max(prof.valid_size, int(b["valid"] or prof.valid_size)),
                      test_size=wider(prof.test_size, b["test"]))
    return budget_splits(course_splits(prof, data=data), seed=seed, **b)


def main(argv: list[str] | None = None) -> int:
    """``python -m course_utils.data``: where the data came from, and the split sizes."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course_utils.data",
                                     description="Find Fashion-MNIST and report on it.")
    parser.add_argument("--no-download", action="store_true",
                        help="do not try torchvision's download")
    args = parser.parse_args(argv)
    try:
        data = load_fashion_mnist(download=not args.no_download)
        splits = course_splits(data=data)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Fashion-MNIST found in {data.source}")
    print(f"  files: train {len(data.train_labels)} images, test {len(data.test_labels)} images, "
          f"{len(data.classes)} classes")
    sizes = splits.sizes()
    print(f"  profile {splits.profile}: train {sizes['train']}, valid {sizes['valid']}, "
          f"test {sizes['test']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
