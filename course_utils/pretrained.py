"""AlexNet trained on ImageNet: torchvision's weights and the original Caffe network.

Two weights files are in common use, and each belongs to a slightly different network:

* ``alexnet-owt-7be5be79.pth`` (torchvision): the single-tower "one weird trick"
  AlexNet (64-192-384-256-256 filters, no LRN), 224x224 input with conv1 padded
  by 2, ImageNet mean/std normalisation.
* ``bvlc_alexnet.npy`` (the TensorFlow port of Caffe's ``bvlc_alexnet``): the
  paper's two-tower network (96-256-384-384-256 filters, conv2/4/5 grouped, LRN),
  227x227 input, BGR pixels in 0-255 minus the mean pixel. A pickled dict of
  ``[W, b]`` per layer in TensorFlow's layouts.

:func:`load_imagenet_alexnet` reads either file (nothing in it is executed) and
returns a module that takes RGB floats in [0, 1] and applies the file's own
preprocessing inside. :func:`preprocess` is torchvision's resize-and-crop.
``python -m course_utils.pretrained --download torchvision|bvlc`` fetches a file.
"""
from __future__ import annotations

import argparse
import os
import pickle
import socket
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import FOLDER_ENVS, REPO_ROOT, CourseError, display_path, seed_everything
from .layers import LocalResponseNorm
from .models import PAPER_CHANNELS, AlexNet, feature_side

__all__ = [
    "BVLC_FILE", "CAFFE_MEAN_BGR", "IMAGENET_MEAN", "IMAGENET_STD", "KINDS", "TORCHVISION_FILE",
    "TORCHVISION_KEYS", "URLS", "WEIGHTS_DIR_ENV", "CaffeAlexNet", "CaffeInput", "from_torchvision",
    "ImageNetNormalize", "ImageNetWeightsError", "MissingImageNetWeightsError",
    "TorchvisionAlexNet", "build_imagenet_alexnet", "download",
    "find_imagenet_weights", "load_imagenet_alexnet", "main", "preprocess", "read_bvlc_npy",
    "weights_dirs", "weights_kind",
]

#: Environment variable naming the folder searched first for weights files.
WEIGHTS_DIR_ENV = FOLDER_ENVS[0]
#: torchvision's file name for its ImageNet AlexNet weights.
TORCHVISION_FILE = "alexnet-owt-7be5be79.pth"
#: The TensorFlow port's file name for Caffe's bvlc_alexnet weights.
BVLC_FILE = "bvlc_alexnet.npy"
KINDS = ("torchvision", "bvlc")
FILES = {"torchvision": TORCHVISION_FILE, "bvlc": BVLC_FILE}
#: Where each file can be downloaded (torchvision's model zoo; the TF port's README).
URLS = {
    "torchvision": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "bvlc": "http://www.cs.toronto.edu/~guerzhoy/tf_alexnet/bvlc_alexnet.npy",
}
_HASH_PREFIX = {"torchvision": "7be5be79", "bvlc": None}  # sha256 prefix in torchvision's name

#: torchvision's per-channel normalisation (RGB, for pixels in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Caffe's mean pixel, in B, G, R order, for pixels in 0-255.
CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)
#: Filters of torchvision's AlexNet (conv4 has 256, not the 384 of the "weird trick" paper).
TORCHVISION_CHANNELS = (64, 192, 384, 256, 256)
#: torchvision's layer names -> the course's.
TORCHVISION_KEYS = {
    "features.0": "features.conv1", "features.3": "features.conv2",
    "features.6": "features.conv3", "features.8": "features.conv4",
    "features.10": "features.conv5", "classifier.1": "classifier.fc6",
    "classifier.4": "classifier.fc7", "classifier.6": "classifier.fc8",
}
_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
_KERNELS = (11, 5, 3, 3, 3)
_GROUPED = ("conv2", "conv4", "conv5")


class ImageNetWeightsError(CourseError):
    """A weights file is unreadable, refused, or not an ImageNet AlexNet."""


class MissingImageNetWeightsError(ImageNetWeightsError, FileNotFoundError):
    """No file at the given path."""


# --------------------------------------------------------------------------- preprocessing

def _rgb(x: torch.Tensor) -> torch.Tensor:
    """Grey (N, 1, H, W) -> the same value in R, G and B; RGB passes through."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class ImageNetNormalize(nn.Module):
    """torchvision's input step: ``(x - mean) / std`` per RGB channel, x in [0, 1]
    (grey input is repeated into the three channels)."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (_rgb(x) - self.mean) / self.std


class CaffeInput(nn.Module):
    """Caffe's input step: RGB in [0, 1] -> BGR, scaled to 0-255, minus the mean pixel
    (B, G, R) = (104, 117, 123) (grey input is repeated into the three channels)."""

    def __init__(self, mean_bgr=CAFFE_MEAN_BGR):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean_bgr).view(3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _rgb(x).flip(1) * 255.0 - self.mean


def preprocess(image, crop: int = 224, resize: int = 256) -> torch.Tensor:
    """torchvision's ImageNet resize and crop, without the normalisation.

    Parameters
    ----------
    image : PIL.Image.Image, numpy.ndarray or torch.Tensor
        An RGB image: PIL, uint8 (H, W, 3) array, or uint8 (3, H, W) tensor.
    crop : int
        Side of the centre crop (224 for torchvision's weights, 227 for Caffe's).
    resize : int
        The shorter side is resized to this first (bilinear, antialiased).

    Returns
    -------
    torch.Tensor
        (3, crop, crop) floats in [0, 1]; the models normalise inside.
    """
    import torchvision.transforms.functional as TF
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image))
    elif isinstance(image, torch.Tensor):
        image = TF.to_pil_image(image)
    if not isinstance(image, Image.Image):
        raise CourseError("expected a PIL image, a uint8 array or a tensor, "
                          f"got {type(image).__name__}")
    image = image.convert("RGB")
    image = TF.resize(image, resize, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    image = TF.center_crop(image, crop)
    return TF.convert_image_dtype(TF.pil_to_tensor(image), torch.float)


# --------------------------------------------------------------------------- the two networks

class TorchvisionAlexNet(AlexNet):
    """torchvision's AlexNet from the course's pieces: computes ``torchvision.models.alexnet()``.

    The course's :class:`~course_utils.models.AlexNet` with conv1 padded by 2 (so a
    224 crop gives conv1 the same 55x55 output as an unpadded 227), ImageNet mean/std
    normalisation as its first stage (``prep``), and torchvision's adaptive average
    pooling to 6x6 before fc6. Dropout sits after the ReLUs instead of before the
    linear layers: the same function in eval mode.

    Parameters
    ----------
    channels : sequence of int
        Filters of conv1..conv5.
    hidden, num_classes : int
        Width of fc6/fc7 and of the output.
    """

    weights_kind = "torchvision"

    def __init__(self, channels=TORCHVISION_CHANNELS, hidden: int = 4096, num_classes: int = 1000):
        super().__init__(in_channels=3, num_classes=num_classes, channels=channels,
                         input_size=227, hidden=hidden)
        self.input_size = 224
        self.prep = ImageNetNormalize()
        self.features.conv1.padding = (2, 2)
        self.flatten = nn.Sequential(nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten())


class CaffeAlexNet(AlexNet):
    """The original two-tower AlexNet, as Caffe's ``bvlc_alexnet`` computes it.

    conv1 (11x11, stride 4, unpadded) - ReLU - LRN - max-pool 3/2; conv2 (5x5, pad 2,
    two groups) - ReLU - LRN - pool; conv3 (pad 1); conv4 and conv5 (pad 1, two groups),
    pool; fc6, fc7 with ReLU; fc8. LRN: size 5, alpha 1e-4 in Caffe's convention
    (alpha / size multiplies the sum: TensorFlow's depth_radius 2, alpha 2e-5),
    beta 0.75, k 1. The first stage (``prep``) is :class:`CaffeInput`.

    The TensorFlow port that ships ``bvlc_alexnet.npy`` (myalexnet_forward.py) pads
    conv1 "SAME" (57x57 output at 227); Caffe does not (55x55). This class follows
    Caffe, the network the weights were trained in.

    Parameters
    ----------
    channels : sequence of int
        Filters of conv1..conv5 (both towers together; all even).
    hidden, num_classes : int
        Width of fc6/fc7 and of the output.
    """

    weights_kind = "bvlc"

    def __init__(self, channels=PAPER_CHANNELS, hidden: int = 4096, num_classes: int = 1000):
        super().__init__(in_channels=3, num_classes=num_classes, channels=channels,
                         lrn=True, two_tower=True, input_size=227, hidden=hidden)
        for name in ("norm1", "norm2"):
            setattr(self.features, name, LocalResponseNorm(5, 1e-4, 0.75, 1.0, convention="caffe"))
        self.prep = CaffeInput()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sides = tuple(x.shape[-2:])
        try:
            ok = all(feature_side(s) == 6 for s in sides)
        except ValueError:
            ok = False
        if not ok:
            raise CourseError(f"the original AlexNet takes 227x227 crops (conv1 is unpadded, and "
                              f"fc6 needs a 6x6 map after pool5); got {sides[0]}x{sides[1]}")
        return super().forward(x)


def build_imagenet_alexnet(kind: str = "torchvision", seed: int = 0) -> AlexNet:
    """A randomly initialised ImageNet AlexNet of either kind, in eval mode.

    Parameters
    ----------
    kind : {"torchvision", "bvlc"}
    seed : int
        Seed for the initial weights.
    """
    if kind not in KINDS:
        raise CourseError(f"kind must be one of {KINDS}, got {kind!r}")
    seed_everything(seed)
    model = TorchvisionAlexNet() if kind == "torchvision" else CaffeAlexNet()
    return model.eval()


# --------------------------------------------------------------------------- reading files

def weights_kind(path: str | os.PathLike) -> str:
    """``"bvlc"`` for a .npy file, ``"torchvision"`` for a PyTorch file, judged by content."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingImageNetWeightsError(f"no weights file at {display_path(path)}")
    with open(path, "rb") as f:
        head = f.read(6)
    if head == b"\x93NUMPY":
        return "bvlc"
    if head[:4] == b"PK\x03\x04" or head[:2] == b"\x80\x02":  # torch zip / legacy torch.save
        return "torchvision"
    raise ImageNetWeightsError(f"{display_path(path)} is neither torchvision's {TORCHVISION_FILE} "
                               f"nor a {BVLC_FILE}: its first bytes are {head!r}")


class _ArrayUnpickler(pickle.Unpickler):
    """Builds NumPy arrays, dicts and lists, and nothing else: every other global is refused."""

    def __init__(self, file, label: str):
        super().__init__(file, encoding="latin1")  # Python 2's str -> str (the file is from 2016)
        self.label = label
        reconstruct = np.empty(0).__reduce__()[0]  # numpy's array rebuilder, whatever its module
        self.allowed = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,  # NumPy 1 names
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,  # NumPy 2 names
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise ImageNetWeightsError(
                f"{self.label}: refused to load {module}.{name}: a weights file holds only "
                "NumPy arrays, and this one asks to run other code. Do not use it") from None

    def persistent_load(self, pid):
        raise ImageNetWeightsError(f"{self.label}: refused a persistent id in the pickle")


def read_bvlc_npy(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The layers of a ``bvlc_alexnet.npy`` file, read without running any code from it.

    The file is ``np.save`` of a dict: an .npy header (dtype object, shape ()) and a
    pickle. The header is parsed with :mod:`numpy.lib.format`; the pickle with an
    unpickler that admits only NumPy's array reconstruction, ``ndarray`` and ``dtype``.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        Layer name (conv1..conv5, fc6..fc8) -> (W, b) as float32 arrays, TF layouts.
    """
    from numpy.lib import format as npformat

    path = Path(path).expanduser()
    label = display_path(path)
    if not path.is_file():
        raise MissingImageNetWeightsError(f"no weights file at {label}")
    with open(path, "rb") as f:
        try:
            version = npformat.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = npformat.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = npformat.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version}")
        except ValueError as exc:
            raise ImageNetWeightsError(f"{label} is not a readable .npy file ({exc})") from None
        if dtype != np.dtype(object) or shape != ():
            raise ImageNetWeightsError(f"{label} holds a {dtype} array of shape {shape}, not the "
                                       f"pickled dict of layers that {BVLC_FILE} holds")
        try:
            obj = _ArrayUnpickler(f, label).load()
        except ImageNetWeightsError:
            raise
        except Exception as exc:  # truncated, corrupt: any of pickle's many errors
            raise ImageNetWeightsError(f"{label}: its pickled data cannot be read "
                                       f"({type(exc).__name__}): is the file complete?") from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise ImageNetWeightsError(f"{label} holds a {type(obj).__name__}, not a dict of layers")
    layers = {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}
    missing = [k for k in _LAYERS if k not in layers]
    extra = sorted(k for k in layers if k not in _LAYERS)
    if missing or extra:
        raise ImageNetWeightsError(
            f"{label} is not an AlexNet: layers {', '.join(_LAYERS)} expected"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(extra[:5])}" if extra else ""))
    out = {}
    for name in _LAYERS:
        value = layers[name]
        ok = (isinstance(value, (list, tuple)) and len(value) == 2
              and all(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in value))
        if not ok:
            raise ImageNetWeightsError(f"{label}: {name} must be [W, b], two float arrays")
        out[name] = (value[0].astype(np.float32, copy=False),
                     value[1].astype(np.float32, copy=False))
    _check_bvlc_shapes(out, label)
    return out


def _shape_error(label, layer, what, got, expected, note=""):
    return ImageNetWeightsError(f"{label}: {layer} {what} has shape {tuple(got)}, expected "
                                f"{tuple(expected)}{note}")


def _check_bvlc_shapes(layers: dict, label: str) -> None:
    """conv W (kh, kw, in/groups, out), fc W (in, out), b (out,), consistent across layers."""
    for name, (w, _) in layers.items():
        ndim = 4 if name.startswith("conv") else 2
        if w.ndim != ndim:
            raise ImageNetWeightsError(f"{label}: {name} weight has {w.ndim} dimensions, "
                                       f"expected {ndim} (TensorFlow layout)")
    c = [layers[f"conv{i}"][0].shape[3] for i in range(1, 6)]
    hidden, classes = layers["fc6"][0].shape[1], layers["fc8"][0].shape[1]
    if any(n % 2 for n in c):
        raise ImageNetWeightsError(f"{label}: two towers need even filter counts, got {tuple(c)}")
    expected = {
        "conv1": (11, 11, 3, c[0]), "conv2": (5, 5, c[0] // 2, c[1]),
        "conv3": (3, 3, c[1], c[2]), "conv4": (3, 3, c[2] // 2, c[3]),
        "conv5": (3, 3, c[3] // 2, c[4]), "fc6": (6 * 6 * c[4], hidden),
        "fc7": (hidden, hidden), "fc8": (hidden, classes),
    }
    for name, shape in expected.items():
        w, b = layers[name]
        note = " (grouped: half the input channels)" if name in _GROUPED else ""
        if w.shape != shape:
            raise _shape_error(label, name, "weight", w.shape, shape, note)
        if b.shape != (shape[-1],):
            raise _shape_error(label, name, "bias", b.shape, (shape[-1],))


def _bvlc_state(layers: dict) -> "OrderedDict[str, torch.Tensor]":
    """TF layouts -> the course's names and PyTorch layouts."""
    state: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for i in range(1, 6):
        w, b = layers[f"conv{i}"]
        oihw = np.ascontiguousarray(w.transpose(3, 2, 0, 1))  # HWIO -> OIHW
        state[f"features.conv{i}.weight"] = torch.from_numpy(oihw)
        state[f"features.conv{i}.bias"] = torch.from_numpy(b.copy())
    w6, b6 = layers["fc6"]
    c5, hidden = layers["conv5"][0].shape[3], w6.shape[1]
    # fc6's rows follow TF's (height, width, channel) flattening; PyTorch flattens (C, H, W).
    w6 = w6.reshape(6, 6, c5, hidden).transpose(3, 2, 0, 1).reshape(hidden, c5 * 36)
    state["classifier.fc6.weight"] = torch.from_numpy(np.ascontiguousarray(w6))
    state["classifier.fc6.bias"] = torch.from_numpy(b6.copy())
    for name in ("fc7", "fc8"):
        w, b = layers[name]
        state[f"classifier.{name}.weight"] = torch.from_numpy(np.ascontiguousarray(w.T))
        state[f"classifier.{name}.bias"] = torch.from_numpy(b.copy())
    return state


def from_torchvision(state: dict) -> "OrderedDict[str, torch.Tensor]":
    """torchvision AlexNet layer names (``features.0.weight``...) -> the course's
    (``features.conv1.weight``...). Course names pass through unchanged."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in state.items():
        layer, _, param = key.rpartition(".")
        out[f"{TORCHVISION_KEYS.get(layer, layer)}.{param}"] = value
    return out


def _refused_by_weights_only(message: str) -> str | None:
    """What torch's weights-only unpickler refused to build or call (a global's name, or a
    description), read from its error; None where the error is a damaged pickle."""
    import re

    named = re.search(r"GLOBAL (\S+)", message)
    if named:
        return named.group(1)
    for pattern in (r"reduce for unrecognized function ([^\n]+)",
                    r"Can only (?:build|create new object)[^\n]*?but got ([^\n]+)",
                    r"(persistent[ _]\w+ [^\n]*)"):
        found = re.search(pattern, message)
        if found:
            return found.group(1).strip().rstrip(".")[:120]
    return None


def _torchvision_state(path: Path) -> "OrderedDict[str, torch.Tensor]":
    label = display_path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _refused_by_weights_only(str(exc))
        if refused is None:  # a damaged pickle inside the archive
            raise ImageNetWeightsError(f"could not read {label} as PyTorch weights "
                                       f"(UnpicklingError): is the file complete?") from None
        raise ImageNetWeightsError(
            f"{label}: refused to load {refused}: a weights file holds only tensors, and "
            "this one asks to run other code. Do not use it") from None
    except Exception as exc:  # truncated zip, not a torch file...
        raise ImageNetWeightsError(f"could not read {label} as PyTorch weights "
                                   f"({type(exc).__name__}): is the file complete?") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ImageNetWeightsError(f"{label} holds no state_dict of tensors")
    wanted = [f"{k}.{p}" for k in TORCHVISION_KEYS for p in ("weight", "bias")]
    missing = [k for k in wanted if k not in state]
    extra = [k for k in state if k not in wanted]
    if missing or extra:
        raise ImageNetWeightsError(
            f"{label} is not torchvision's AlexNet"
            + (f"; missing {', '.join(missing[:4])}" if missing else "")
            + (f"; unexpected {', '.join(extra[:4])}" if extra else ""))
    renamed = from_torchvision({k: state[k] for k in wanted})
    out = OrderedDict((k, v.float()) for k, v in renamed.items())
    c = [out[f"features.conv{i}.weight"].shape[0] for i in range(1, 6)]
    hidden, classes = out["classifier.fc6.weight"].shape[0], out["classifier.fc8.weight"].shape[0]
    c_in = (3,) + tuple(c[:4])
    expected = {f"features.conv{i}.weight": (c[i - 1], c_in[i - 1], k, k)
                for i, k in enumerate(_KERNELS, start=1)}
    expected.update({"classifier.fc6.weight": (hidden, c[4] * 36),
                     "classifier.fc7.weight": (hidden, hidden),
                     "classifier.fc8.weight": (classes, hidden)})
    for key, shape in expected.items():
        got = tuple(out[key].shape)
        bias = tuple(out[key[:-len("weight")] + "bias"].shape)
        if got != shape or bias != (shape[0],):
            raise ImageNetWeightsError(f"{label}: {key} has shape {got} (bias {bias}), expected "
                                       f"{shape} for torchvision's AlexNet layout")
    return out


def load_imagenet_alexnet(path: str | os.PathLike) -> AlexNet:
    """The ImageNet AlexNet in ``path``, with its own preprocessing inside, in eval mode.

    Parameters
    ----------
    path : str or os.PathLike
        torchvision's ``alexnet-owt-7be5be79.pth`` or the TF port's ``bvlc_alexnet.npy``
        (recognised by content; layer sizes are read from the file). Nothing in the
        file is executed.

    Returns
    -------
    TorchvisionAlexNet or CaffeAlexNet
        Takes RGB floats in [0, 1], shape (N, 3, H, W), already cropped (224 for
        torchvision's weights, 227 for the original); returns logits (1000 for ImageNet).
    """
    path = Path(path).expanduser()
    kind = weights_kind(path)
    if kind == "bvlc":
        layers = read_bvlc_npy(path)
        state = _bvlc_state(layers)
        channels = [layers[f"conv{i}"][0].shape[3] for i in range(1, 6)]
        cls = CaffeAlexNet
    else:
        state = _torchvision_state(path)
        channels = [state[f"features.conv{i}.weight"].shape[0] for i in range(1, 6)]
        cls = TorchvisionAlexNet
    hidden = state["classifier.fc6.weight"].shape[0]
    classes = state["classifier.fc8.weight"].shape[0]
    with torch.device("meta"):  # no time spent initialising weights that are overwritten
        model = cls(channels=channels, hidden=hidden, num_classes=classes)
    model.load_state_dict(state, assign=True)
    model.prep = type(model.prep)()  # its constants are buffers outside the state_dict
    return model.eval()


# --------------------------------------------------------------------------- finding files

def weights_dirs() -> list[Path]:
    """Folders searched for weights files, in order: ``$COURSE_WEIGHTS_DIR`` (if set),
    ``data/weights/`` in the repository, torch hub's checkpoint folder."""
    dirs = []
    env = os.environ.get(WEIGHTS_DIR_ENV, "").strip()
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(REPO_ROOT / "data" / "weights")
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def find_imagenet_weights() -> list[tuple[str, Path]]:
    """Every weights file found, as ``(kind, path)``, best first: in each folder of
    :func:`weights_dirs`, the original network's file before torchvision's (torch hub's
    folder: only torchvision's)."""
    found = []
    dirs = weights_dirs()
    for folder in dirs:
        for kind in ("torchvision",) if folder == dirs[-1] else ("bvlc", "torchvision"):
            path = folder / FILES[kind]
            if path.is_file() and (kind, path) not in found:
                found.append((kind, path))
    return found


# --------------------------------------------------------------------------- download

def _fetch(url: str, target: Path, hash_prefix: str | None) -> None:
    torch.hub.download_url_to_file(url, str(target), hash_prefix=hash_prefix,
                                   progress=sys.stderr.isatty())


def download(kind: str, dest: str | os.PathLike | None = None, timeout: float = 60.0) -> Path:
    """Download one weights file (for machines with internet) and check that it loads.

    Parameters
    ----------
    kind : {"torchvision", "bvlc"}
    dest : path, optional
        Folder to save into; default ``$COURSE_WEIGHTS_DIR``, else ``data/weights/``.
    timeout : float
        Seconds any single network wait may take.

    Returns
    -------
    pathlib.Path
        The file (left as it is when it already exists).
    """
    if kind not in KINDS:
        raise CourseError(f"kind must be one of {KINDS}, got {kind!r}")
    folder = Path(dest).expanduser() if dest else weights_dirs()[0]
    target = folder / FILES[kind]
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # urllib's connect and every read under torch.hub
    try:
        _fetch(URLS[kind], target, _HASH_PREFIX[kind])
    except Exception as exc:  # URLError, timeouts, a wrong hash, a full disk ...
        target.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise ImageNetWeightsError(f"download of {URLS[kind]} failed ({reason}); check the "
                                   "connection, or copy the file from a machine with internet "
                                   f"into {display_path(folder)}") from None
    finally:
        socket.setdefaulttimeout(old)
    try:
        load_imagenet_alexnet(target)
    except CourseError as exc:
        target.unlink(missing_ok=True)
        raise ImageNetWeightsError(
            f"the downloaded file does not load ({exc}); deleted it") from None
    return target


# --------------------------------------------------------------------------- command line

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m course_utils.pretrained",
                description="Fetch or check ImageNet AlexNet weights (torchvision's or the "
                            "original Caffe network's).")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--download", choices=KINDS, help="download this file")
    what.add_argument("--check", metavar="FILE", help="load FILE and describe it")
    p.add_argument("--dest", metavar="DIR",
                   help=f"folder for --download (default: ${WEIGHTS_DIR_ENV}, else data/weights/)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds any network wait may take (default 60)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m course_utils.pretrained``: one ``error:`` line and exit 2 on failure."""
    args = build_parser().parse_args(argv)
    try:
        if args.download:
            if args.timeout <= 0:
                raise CourseError("--timeout must be positive")
            path = download(args.download, args.dest, args.timeout)
            print(f"{args.download} weights: {display_path(path)}")
        else:
            model = load_imagenet_alexnet(args.check)
            n = sum(p.numel() for p in model.parameters())
            print(f"{display_path(args.check)}: {model.weights_kind} AlexNet, {n:,} parameters, "
                  f"{model.input_size}x{model.input_size} input")
        return 0
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
