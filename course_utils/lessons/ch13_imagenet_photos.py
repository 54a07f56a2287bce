"""Notebook 13: AlexNet trained on ImageNet, on the colour photos that ship with scikit-image.

Helpers only this notebook needs; the weights, the preprocessing and the labels live in
:mod:`course_utils.pretrained` and :mod:`course_utils.imagenet_labels`. The notebook
writes the top-5 readout and the ten-crop average itself and checks them against
:meth:`~course_utils.imagenet_labels.ImageNetLabels.top_k` and
:func:`ten_crop_probabilities`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import BUILD_DIR, display_path
from ..imagenet_labels import ImageNetLabels
from ..pretrained import (BVLC_FILE, TORCHVISION_FILE, WEIGHTS_DIR_ENV, CaffeAlexNet,
                          TorchvisionAlexNet, build_imagenet_alexnet,
                          find_imagenet_weights, load_imagenet_alexnet, preprocess, weights_dirs)
from ..training import predict_proba
from .ch10_ten_crops import VIEWS, ten_crops

__all__ = ["EXAMPLE_META_ROWS", "PHOTOS", "choose_weights", "classify",
           "geometry_table", "load_photos", "notebook_labels", "plot_photos",
           "plot_ten_crops", "ten_crop_probabilities", "ten_crop_views"]

#: scikit-image's bundled colour photos (no download): a cat, a cup, a person, a rocket.
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
#: The devkit's first three synsets (ILSVRC2012_ID, WNID, words), for an example meta.mat.
EXAMPLE_META_ROWS = ((1, "n02119789", "kit fox, Vulpes macrotis"),
                     (2, "n02100735", "English setter"),
                     (3, "n02110185", "Siberian husky"))


def load_photos(names=PHOTOS) -> dict[str, np.ndarray]:
    """The photos as uint8 (H, W, 3) arrays, from scikit-image's own data folder."""
    import skimage.data

    return {name: getattr(skimage.data, name)() for name in names}


def plot_photos(photos: dict[str, np.ndarray]):
    """The photos side by side, with their sizes."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(photos), figsize=(3 * len(photos), 3))
    for ax, (name, img) in zip(np.atleast_1d(axes), photos.items()):
        ax.imshow(img)
        ax.set_title(f"{name} ({img.shape[1]}x{img.shape[0]})", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def _missing_message() -> str:
    places = ", ".join(f"{display_path(d)}/" for d in weights_dirs())
    return (f"No ImageNet weights found (looked in {places}): this run uses random weights, so "
            "its predictions are noise. For real ones run `python -m course_utils.pretrained "
            "--download torchvision` (or `bvlc`) on a machine with internet, or copy "
            f"{TORCHVISION_FILE} or {BVLC_FILE} into data/weights/ (or ${WEIGHTS_DIR_ENV}).")


def choose_weights(device: torch.device | str = "cpu") -> tuple[nn.Module, str, str]:
    """The best ImageNet AlexNet available: ``(model, kind, message)``.

    ``kind`` is ``"bvlc"`` or ``"torchvision"`` for a file found by
    :func:`~course_utils.pretrained.find_imagenet_weights`, else ``"random"``
    (torchvision's network, seeded random weights), with one line saying where to get
    a file.
    """
    found = find_imagenet_weights()
    if found:
        kind, path = found[0]
        model, message = load_imagenet_alexnet(path), f"{kind} weights from {display_path(path)}"
    else:
        model, kind = build_imagenet_alexnet("torchvision", seed=0), "random"
        message = _missing_message()
    return model.to(device).eval(), kind, message


def classify(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities (N, 1000) of a batch of crops (N, 3, H, W) in [0, 1], in eval
    mode (:func:`course_utils.training.predict_proba`)."""
    return predict_proba(model, images)


def ten_crop_views(image: np.ndarray, size: int) -> torch.Tensor:
    """The paper's ten test views of one photo: (10, 3, size, size) in [0, 1].

    The shorter side is resized to 256 and the centre 256x256 square kept; the four
    corner crops, the centre crop and their mirror images are cut with notebook 10's
    :func:`~course_utils.lessons.ch10_ten_crops.ten_crops`. For 227 one row and column
    are trimmed first (256 - 227 is odd, and the centre crop needs an even margin).
    """
    square = preprocess(image, crop=256, resize=256)
    if (256 - size) % 2:
        square = square[:, :255, :255]
    return ten_crops(square[None], padding=0, size=size)[:, 0]


@torch.no_grad()
def ten_crop_probabilities(model: nn.Module, image: np.ndarray, size: int) -> torch.Tensor:
    """Softmax (1000,) averaged over the ten views of :func:`ten_crop_views`."""
    return classify(model, ten_crop_views(image, size)).mean(0)


def plot_ten_crops(views: torch.Tensor, title: str = "The ten test views"):
    """The ten views of one photo (from :func:`ten_crop_views`): crops, then mirrors."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(9, 4))
    for ax, view, name in zip(axes.flat, views, VIEWS):
        ax.imshow(view.permute(1, 2, 0).numpy())
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _shapes(model: nn.Module, size: int) -> dict[str, str]:
    """Output shape of each convolution and pooling, and fc6's input, traced on the meta
    device (no memory, no arithmetic). Skips :class:`CaffeAlexNet`'s size check."""
    x = model.prep(torch.zeros(1, 3, size, size, device="meta"))
    out = {}
    for name, layer in model.features.named_children():
        x = layer(x)
        if name.startswith(("conv", "pool")):
            out[name] = "x".join(str(d) for d in x.shape[1:])
    out["fc6 input"] = f"{model.flatten(x).shape[1]} (fc6 takes {model.classifier.fc6.in_features})"
    return out


def geometry_table():
    """Layer output shapes of torchvision's network at 224 and the original at 227 and
    at 224: why the paper's "224x224" needs conv1's padding (or 227)."""
    import pandas as pd

    with torch.device("meta"):
        tv, caffe = TorchvisionAlexNet(), CaffeAlexNet()
    columns = {"torchvision, 224 (conv1 padded by 2)": _shapes(tv, 224),
               "original, 227 (conv1 unpadded)": _shapes(caffe, 227),
               "original, 224 (conv1 unpadded)": _shapes(caffe, 224)}
    return pd.DataFrame(columns)


def write_example_meta_mat(path: str | Path, rows=EXAMPLE_META_ROWS) -> Path:
    """A small meta.mat in the devkit's layout (a (N, 1) struct array ``synsets``) holding
    ``rows``: for trying :func:`~course_utils.imagenet_labels.read_meta_mat` without the devkit."""
    from scipy.io import savemat

    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
              "wordnet_height", "num_train_images"]
    synsets = np.zeros((len(rows), 1), dtype=[(f, object) for f in fields])
    for k, (ident, wnid, words) in enumerate(rows):
        synsets[k, 0] = (np.float64(ident), wnid, words, "", np.float64(0),
                         np.zeros((1, 0)), np.float64(0), np.float64(0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"synsets": synsets})
    return path


def notebook_labels(example_dir: str | Path = BUILD_DIR / "imagenet") -> tuple[ImageNetLabels, str]:
    """Labels with ILSVRC2012_IDs: from the devkit's ``meta.mat`` if it is in one of the
    weights folders, else from a three-synset example written into ``example_dir``
    (default: ``build/imagenet`` in the repository)."""
    for folder in weights_dirs():
        path = folder / "meta.mat"
        if path.is_file():
            return ImageNetLabels.from_meta_mat(path), f"the devkit's {display_path(path)}"
    path = write_example_meta_mat(Path(example_dir) / "meta_example.mat")
    return (ImageNetLabels.from_meta_mat(path),
            f"an example with the devkit's first {len(EXAMPLE_META_ROWS)} synsets "
            f"({display_path(path)}); put the devkit's data/meta.mat into data/weights/ "
            "for all 1000")
