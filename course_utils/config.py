"""Profiles, seeding and device selection: the knobs every notebook shares.

A *profile* decides how much work a notebook does, so that the same notebook runs
in a minute in CI (``smoke``), in minutes on a laptop (``quick``) and as the real
experiment on a GPU (``full``). Choose one with the ``COURSE_PROFILE`` environment
variable; notebooks never need editing.
"""
from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

__all__ = ["BUILD_DIR", "FOLDER_ENVS", "display_path", "CourseError", "DEVICE_ENV",
           "DeviceUnavailableError", "PROFILES", "PROFILE_ENV", "Profile", "ProfileError",
           "REPO_ROOT", "SEED_ENV", "STARTED",
           "cpu_supports_bf16", "cuda_available", "default_profile_name", "default_seed",
           "describe_environment", "get_device", "get_profile", "seed_everything"]

#: The repository's root (the folder holding notebooks/ and build/).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where runs write what they make: checkpoints, results, reports.
BUILD_DIR = REPO_ROOT / "build"

#: When the package was first imported: a notebook's first cell.
STARTED = time.time()

PROFILE_ENV = "COURSE_PROFILE"
DEVICE_ENV = "COURSE_DEVICE"


class CourseError(RuntimeError):
    """An error with a short message that tells the user what to do.

    In a notebook, IPython shows only the message, not a wall of traceback.
    """

    def _render_traceback_(self):  # IPython hook
        return [f"{type(self).__name__}: {self}"]


class ProfileError(CourseError, ValueError):
    """Unknown profile name."""


class DeviceUnavailableError(CourseError):
    """A device was asked for that this machine does not have."""


@dataclass(frozen=True)
class Profile:
    """How much work a notebook does.

    ``train_size`` of ``None`` means all 50,000 training images (after the
    10,000-image validation split). The three profiles' numbers live in the budget
    table (:data:`course_utils.budgets.PROFILE_DEFAULTS`); see :data:`PROFILES`.
    """

    name: str
    train_size: int | None  # images used for training (None: all)
    valid_size: int  # images held out for validation (taken from the 60k train file)
    test_size: int | None  # test images used for evaluation (None: all 10,000)
    epochs: int  # epochs for a standard training run
    seeds: int  # repeats for experiments reported as mean +- std
    batch_size: int = 128

    def with_(self, **changes) -> "Profile":
        """A copy with some fields changed (handy in exercises)."""
        return replace(self, **changes)


class _ProfileTable(Mapping):
    """The profiles by name, built on first use from the budget table
    (:data:`course_utils.budgets.PROFILE_DEFAULTS`), which holds every per-profile number."""

    @functools.cached_property
    def _profiles(self) -> dict[str, Profile]:
        from .budgets import PROFILE_DEFAULTS  # here, not at the top: budgets imports config

        return {name: Profile(name, train_size=row["train"], valid_size=row["valid"],
                              test_size=row["test"], epochs=row["epochs"], seeds=row["seeds"],
                              batch_size=row["batch_size"])
                for name, row in PROFILE_DEFAULTS.items()}

    def __getitem__(self, name: str) -> Profile:
        return self._profiles[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def __repr__(self) -> str:
        return f"PROFILES({self._profiles!r})"


#: smoke (CI), quick (a laptop's CPU) and full (a GPU): see ``PROFILE_DEFAULTS`` in budgets.py.
PROFILES: Mapping[str, Profile] = _ProfileTable()


def cuda_available() -> bool:
    return torch.cuda.is_available()


def default_profile_name() -> str:
    """``full`` where CUDA is available, ``quick`` otherwise."""
    return "full" if cuda_available() else "quick"


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``, else ``$COURSE_PROFILE``, else the default."""
    if name is None:
        name = os.environ.get(PROFILE_ENV, "").strip() or default_profile_name()
    key = name.strip().lower()
    if key not in PROFILES:
        valid = ", ".join(PROFILES)
        raise ProfileError(
            f"unknown profile {name!r}: set {PROFILE_ENV} to one of {valid}"
        )
    return PROFILES[key]


#: Folder variables that outputs name instead of the folder they point at.
FOLDER_ENVS = ("COURSE_WEIGHTS_DIR", "COURSE_DATA_DIR")


def display_path(path, bases=()) -> str:
    """``path`` as outputs show it: relative to the repository, to one of ``bases``
    (``(folder, prefix)`` pairs), to a folder variable of :data:`FOLDER_ENVS` that is set
    (``$COURSE_WEIGHTS_DIR/NAME``), or to ``~``; else ``.../NAME``. Committed notebook
    outputs never show a machine's absolute paths."""
    p = Path(path).expanduser().absolute()
    envs = [(os.environ[e].strip(), f"${e}/") for e in FOLDER_ENVS
            if os.environ.get(e, "").strip()]
    for base, prefix in [(REPO_ROOT, ""), *bases, *envs, (Path.home(), "~/")]:
        try:
            return prefix + str(p.relative_to(Path(base).expanduser().absolute()))
        except ValueError:
            continue
    return f".../{p.name}"


SEED_ENV = "COURSE_SEED"


def default_seed() -> int:
    """The seed a notebook starts from: ``$COURSE_SEED``, else 0 (``make test-seeds``
    runs the smoke notebooks under seeds 0-9)."""
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise CourseError(f"{SEED_ENV}={raw!r}: set it to a whole number (e.g. 3), or unset it")
    return int(raw)


def seed_everything(seed: int = 0, deterministic: bool = False) -> int:
    """Seed Python, NumPy and PyTorch (CPU and every GPU). Returns the seed.

    ``deterministic=True`` also asks cuDNN for deterministic kernels, at some
    cost in speed.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


@functools.lru_cache(maxsize=None)
def cpu_supports_bf16() -> bool:
    """Does this CPU compute bfloat16 natively (AVX512-BF16 or AMX)?

    Where it does, bf16 autocast trains the course's networks about 30% faster
    on the CPU (measured: small AlexNet, 800 against 610 img/s on 2 cores);
    where it does not, bf16 would be emulated and slower, so the course keeps
    float32. Read from ``/proc/cpuinfo``; ``False`` where that does not exist.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or ``$COURSE_DEVICE``) may be ``"auto"``, ``"cuda"``, ``"mps"``
    or ``"cpu"``; asking for a device this machine lacks raises a clear error
    instead of silently falling back.
    """
    if prefer is None:
        prefer = os.environ.get(DEVICE_ENV, "").strip() or "auto"
    choice = prefer.strip().lower()
    kind, _, index = choice.partition(":")
    if _ and not (index.isdigit() and kind in ("cuda", "cpu")):
        raise DeviceUnavailableError(
            f"unknown device {prefer!r}: use auto, cuda, cuda:N (N a GPU number), mps or cpu")
    if kind == "auto":
        if cuda_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda":
        if not cuda_available():
            raise DeviceUnavailableError(
                "CUDA was asked for but this machine has no usable CUDA GPU: "
                f"unset {DEVICE_ENV} (or use 'cpu'), or run on a GPU machine"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"{prefer!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                f"numbered from 0; set {DEVICE_ENV} to one of them, or to cuda")
        return torch.device(choice)
    if kind == "mps":
        if not _mps_available():
            raise DeviceUnavailableError(
                f"MPS was asked for but is not available here: unset {DEVICE_ENV} or use 'cpu'"
            )
        return torch.device("mps")
    if kind == "cpu":
        return torch.device("cpu")  # cpu:N names the same single CPU device
    raise DeviceUnavailableError(
        f"unknown device {prefer!r}: use auto, cuda, mps or cpu"
    )


def describe_environment() -> dict[str, str]:
    """Versions, device and profile: the first thing to check when something is off."""
    import platform

    import matplotlib
    import sklearn
    import skorch
    import torchvision

    device = get_device()
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
        "device": str(device),
        "profile": get_profile().name,
        "cpu threads": str(torch.get_num_threads()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
