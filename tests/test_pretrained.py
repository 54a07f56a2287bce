"""ImageNet AlexNet weights: torchvision equivalence, the Caffe network against an independent
TensorFlow-layout forward pass, safe .npy reading, the three label numberings, the CLI."""
from __future__ import annotations

import io
import os
import pickle
import shlex
import shutil
import struct
import subprocess
import sys
import tomllib
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from numpy.lib import format as npformat
from scipy.io import savemat

from course_utils import pretrained
from course_utils.config import CourseError
from course_utils.imagenet_labels import (ImageNetLabels, LabelError, imagenet_categories,
                                          imagenet_wnids, read_meta_mat)
from course_utils.layers import LocalResponseNorm
from course_utils.pretrained import (CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD, CaffeAlexNet,
                                     ImageNetWeightsError, TorchvisionAlexNet,
                                     load_imagenet_alexnet, read_bvlc_npy)

ROOT = Path(__file__).resolve().parent.parent


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {lines}"
    return lines[0]


# --------------------------------------------------------------------------- torchvision

@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory):
    """A randomly initialised torchvision AlexNet, saved the way torchvision's file is."""
    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None).eval()
    path = tmp_path_factory.mktemp("tv") / pretrained.TORCHVISION_FILE
    torch.save(net.state_dict(), path)
    return net, path


@pytest.mark.parametrize("side", [224, 227])
def test_torchvision_weights_compute_torchvisions_function(torchvision_file, side):
    net, path = torchvision_file
    model = load_imagenet_alexnet(path)
    assert isinstance(model, TorchvisionAlexNet) and not model.training
    x = torch.rand(3, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(torchvision.transforms.functional.normalize(x, IMAGENET_MEAN, IMAGENET_STD))
        got = model(x)  # RGB in [0, 1]: the normalisation is inside
    diff = (got - expected).abs().max().item()
    print(f"torchvision {side}x{side}: max |logit difference| {diff:.3g} "
          f"(logits up to {expected.abs().max().item():.3g})")
    assert got.shape == (3, 1000)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_torchvision_model_is_the_course_alexnet_with_conv1_padded(torchvision_file):
    model = load_imagenet_alexnet(torchvision_file[1])
    assert model.features.conv1.padding == (2, 2) and model.features.conv2.padding == (2, 2)
    filters = [getattr(model.features, f"conv{i}").out_channels for i in range(1, 6)]
    assert filters == [64, 192, 384, 256, 256]
    assert not any(isinstance(m, LocalResponseNorm) for m in model.modules())


def test_preprocess_is_torchvisions_resize_and_crop():
    from PIL import Image
    from skimage.data import chelsea

    pil = Image.fromarray(chelsea())
    ours = pretrained.preprocess(pil)
    theirs = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.transforms()(pil)
    assert ours.shape == (3, 224, 224) and 0.0 <= ours.min() and ours.max() <= 1.0
    normalised = pretrained.ImageNetNormalize()(ours[None])[0]
    torch.testing.assert_close(normalised, theirs, rtol=0, atol=1e-6)
    assert torch.equal(pretrained.preprocess(chelsea()), ours)  # numpy in, same result
    assert pretrained.preprocess(pil, crop=227).shape == (3, 227, 227)


# ---------------------------------------------------------------------- bvlc, against TF's layout

#: A scaled-down but consistent two-tower AlexNet: all filter counts even, fc 64 wide.
SMALL = dict(channels=(12, 16, 24, 20, 16), hidden=64, classes=1000)


def fake_bvlc_layers(channels=SMALL["channels"], hidden=SMALL["hidden"], classes=SMALL["classes"],
                     seed=0) -> dict:
    """Random [W, b] per layer in the TF port's layouts: conv HWIO (grouped: half the
    inputs), fc (in, out), fc6's rows in (height, width, channel) order."""
    rng = np.random.default_rng(seed)
    c1, c2, c3, c4, c5 = channels
    shapes = {"conv1": (11, 11, 3, c1), "conv2": (5, 5, c1 // 2, c2), "conv3": (3, 3, c2, c3),
              "conv4": (3, 3, c3 // 2, c4), "conv5": (3, 3, c4 // 2, c5),
              "fc6": (36 * c5, hidden), "fc7": (hidden, hidden), "fc8": (hidden, classes)}
    layers = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[:-1]))
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32)
        b = rng.normal(0.0, 0.5, size=shape[-1]).astype(np.float32)
        layers[name] = [w, b]
    return layers


def save_npy(path: Path, obj) -> Path:
    np.save(path, obj, allow_pickle=True)
    return path


def _tf_geometry(size, k, s, padding):
    """TensorFlow's output size and (before, after) padding for one spatial axis."""
    if padding == "VALID":
        return (size - k) // s + 1, 0, 0
    out = -(-size // s)  # ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def tf_conv2d(x, w, b, stride, padding, groups=1):
    """tf.nn.conv2d + bias_add on NHWC input and HWIO weights, written as a sum over the
    kernel's taps; groups as the TF port does them: split input and kernel, concatenate."""
    if groups > 1:
        outs = [tf_conv2d(xi, wi, bi, stride, padding) for xi, wi, bi in
                zip(x.chunk(groups, 3), w.chunk(groups, 3), b.chunk(groups))]
        return torch.cat(outs, 3)
    n, h, wd, c = x.shape
    kh, kw, cin, cout = w.shape
    assert cin == c
    oh, top, bottom = _tf_geometry(h, kh, stride, padding)
    ow, left, right = _tf_geometry(wd, kw, stride, padding)
    x = F.pad(x, (0, 0, left, right, top, bottom))
    out = x.new_zeros(n, oh, ow, cout)
    for i in range(kh):
        for j in range(kw):
            taps = x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
            out += taps @ w[i, j]
    return out + b


def tf_max_pool(x, k=3, s=2):
    """tf.nn.max_pool, VALID, NHWC."""
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    taps = [x[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :]
            for i in range(k) for j in range(k)]
    return torch.stack(taps).amax(0)


def tf_lrn(x, depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75):
    """tf.nn.local_response_normalization: x / (bias + alpha * sum of squares over
    channels d - r .. d + r) ** beta, channels last."""
    c = x.shape[-1]
    squares = F.pad(x * x, (depth_radius, depth_radius))
    window = sum(squares[..., k:k + c] for k in range(2 * depth_radius + 1))
    return x / (bias + alpha * window) ** beta


def tf_reference_forward(layers, images, conv1_padding="VALID"):
    """The TF port's AlexNet (kratzert's graph; conv1 VALID as in Caffe), float64."""
    L = {k: (torch.from_numpy(w).double(), torch.from_numpy(b).double())
         for k, (w, b) in layers.items()}
    x = images.double().permute(0, 2, 3, 1)  # NHWC, RGB in [0, 1]
    x = x.flip(-1) * 255.0 - torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float64)  # BGR - mean pixel
    x = tf_max_pool(tf_lrn(torch.relu(tf_conv2d(x, *L["conv1"], 4, conv1_padding))))
    x = tf_max_pool(tf_lrn(torch.relu(tf_conv2d(x, *L["conv2"], 1, "SAME", groups=2))))
    x = torch.relu(tf_conv2d(x, *L["conv3"], 1, "SAME"))
    x = torch.relu(tf_conv2d(x, *L["conv4"], 1, "SAME", groups=2))
    x = tf_max_pool(torch.relu(tf_conv2d(x, *L["conv5"], 1, "SAME", groups=2)))
    x = x.reshape(x.shape[0], -1)  # TF flattens (height, width, channel)
    x = torch.relu(x @ L["fc6"][0] + L["fc6"][1])
    x = torch.relu(x @ L["fc7"][0] + L["fc7"][1])
    return x @ L["fc8"][0] + L["fc8"][1]


@pytest.fixture(scope="module")
def bvlc_file(tmp_path_factory):
    layers = fake_bvlc_layers()
    return layers, save_npy(tmp_path_factory.mktemp("bvlc") / pretrained.BVLC_FILE, layers)


def test_bvlc_weights_match_an_independent_tensorflow_layout_forward(bvlc_file):
    layers, path = bvlc_file
    model = load_imagenet_alexnet(path)
    assert isinstance(model, CaffeAlexNet) and not model.training
    images = torch.rand(2, 3, 227, 227, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = model(images)
    expected = tf_reference_forward(layers, images)
    diff = (got.double() - expected).abs().max().item()
    scale = expected.abs().max().item()
    print(f"bvlc vs TF-layout reference: max |logit difference| {diff:.3g} "
          f"(logits up to {scale:.3g})")
    assert got.shape == (2, 1000)
    assert diff <= 1e-4 * scale
    # The reference is sensitive to what the model must get right: the TF port's "SAME"
    # conv1 (57x57 instead of Caffe's 55x55) gives other logits.
    same = tf_reference_forward(layers, images, conv1_padding="SAME")
    assert (same - expected).abs().max().item() > 100 * max(diff, 1e-3 * scale)


def test_bvlc_model_is_the_two_tower_network_with_caffes_lrn(bvlc_file):
    model = load_imagenet_alexnet(bvlc_file[1])
    f = model.features
    assert [getattr(f, f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
    pads = [getattr(f, f"conv{i}").padding for i in range(1, 6)]
    assert pads == [(0, 0), (2, 2), (1, 1), (1, 1), (1, 1)]
    names = list(f._modules)
    for i in (1, 2):
        lrn = getattr(f, f"norm{i}")
        assert (lrn.size, lrn.alpha, lrn.beta, lrn.k, lrn.convention) == (
            5, 1e-4, 0.75, 1.0, "caffe")
        assert names.index(f"act{i}") < names.index(f"norm{i}") < names.index(f"pool{i}")
    assert model.classifier.fc6.in_features == 36 * SMALL["channels"][-1]
    assert model.classifier.fc7.in_features == SMALL["hidden"]
    with pytest.raises(CourseError, match="227x227") as err:
        model(torch.rand(1, 3, 224, 224))
    _one_line(str(err.value))


def test_caffe_input_is_bgr_255_minus_the_mean_pixel():
    pixel = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)  # R, G, B
    out = pretrained.CaffeInput()(pixel).flatten().tolist()
    assert out == [0.0 - 104.0, 127.5 - 117.0, 255.0 - 123.0]  # B, G, R


@pytest.mark.parametrize("stage", [pretrained.CaffeInput, pretrained.ImageNetNormalize])
def test_grey_input_is_the_same_value_in_r_g_and_b(stage):
    grey = torch.rand(2, 1, 5, 5)
    assert torch.equal(stage()(grey), stage()(grey.repeat(1, 3, 1, 1)))


def _py2_style_npy(path: Path, layers: dict) -> Path:
    """An .npy as Python 2 wrote bvlc_alexnet.npy: pickle protocol 2, byte strings
    (keys, array data) as py2 ``str``, NumPy 1's module names."""

    class Py2Pickler(pickle._Pickler):
        dispatch = dict(pickle._Pickler.dispatch)

        def save_py2_str(self, obj):
            n = len(obj)
            head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else \
                pickle.BINSTRING + struct.pack("<i", n)
            self.write(head + obj)
            self.memoize(obj)

        dispatch[bytes] = save_py2_str

    buf = io.BytesIO()
    data = {name.encode(): list(value) for name, value in layers.items()}
    Py2Pickler(buf, protocol=2).dump(np.array(data, dtype=object))
    raw = buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n_reconstruct" in raw and pickle.BINUNICODE not in raw[:40]
    with open(path, "wb") as f:
        npformat.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        f.write(raw)
    return path


def test_a_python2_era_npy_loads(tmp_path, bvlc_file):
    layers = bvlc_file[0]
    loaded = read_bvlc_npy(_py2_style_npy(tmp_path / "py2.npy", layers))
    assert list(loaded) == list(layers)
    for name, (w, b) in layers.items():
        assert np.array_equal(loaded[name][0], w) and np.array_equal(loaded[name][1], b)


# ---------------------------------------------------------------------- nothing runs from a file

class Payload:
    """Pickles as a call of ``func(*args)``: what a malicious file would hold."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class Plain:
    """An ordinary class instance, not an array."""


def _payloads(marker: Path):
    return {"builtins.open": Payload(open, str(marker), "w"),
            "os.system": Payload(os.system, f"touch {shlex.quote(str(marker))}")}


@pytest.mark.parametrize("kind", ["builtins.open", "os.system"])
def test_npy_with_code_is_refused_and_never_run(tmp_path, kind):
    # Control: NumPy's own loader with allow_pickle=True does run this payload.
    control = tmp_path / "control-ran"
    save_npy(tmp_path / "control.npy", {"conv1": [_payloads(control)[kind]]})
    np.load(tmp_path / "control.npy", allow_pickle=True)
    assert control.exists()

    marker = tmp_path / "payload-ran"
    layers = fake_bvlc_layers(channels=(2, 2, 2, 2, 2), hidden=2, classes=2)
    layers["conv1"] = [_payloads(marker)[kind], layers["conv1"][1]]
    path = save_npy(tmp_path / pretrained.BVLC_FILE, layers)
    with pytest.raises(ImageNetWeightsError) as err:
        load_imagenet_alexnet(path)
    message = _one_line(str(err.value))
    assert "refused" in message and kind.split(".")[-1] in message
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["builtins.open", "os.system", "Plain"])
def test_pth_with_code_is_refused_plainly_and_never_run(tmp_path, kind):
    """A malicious .pth was refused with "is the file complete?", as if it were damaged."""
    marker = tmp_path / "payload-ran"
    payload = Plain() if kind == "Plain" else _payloads(marker)[kind]
    path = tmp_path / pretrained.TORCHVISION_FILE
    torch.save({"features.0.weight": torch.zeros(2), "features.0.bias": payload}, path)
    with pytest.raises(ImageNetWeightsError) as err:
        load_imagenet_alexnet(path)
    message = _one_line(str(err.value))
    assert "refused to load" in message and "Do not use it" in message, message
    assert kind.split(".")[-1] in message and "complete" not in message
    assert not marker.exists()


def test_damaged_pth_is_not_called_malicious(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"features.0.weight": torch.zeros(2)}, good)
    raw = good.read_bytes()
    for name, data in (("cut.pth", raw[:len(raw) // 2]),
                       ("garbled.pth",
                        raw.replace(b"features", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageNetWeightsError) as err:
            load_imagenet_alexnet(tmp_path / name)
        message = _one_line(str(err.value))
        assert "refused" not in message and "Do not use it" not in message, message


def test_npy_with_a_class_instance_is_refused(tmp_path):
    path = save_npy(tmp_path / "obj.npy", {"conv1": [Plain(), Plain()]})
    with pytest.raises(ImageNetWeightsError, match=r"refused to load .*Plain"):
        read_bvlc_npy(path)


# --------------------------------------------------------------------------- wrong files

def _wrong_files(tmp: Path):
    layers = fake_bvlc_layers(channels=(2, 2, 2, 2, 2), hidden=2, classes=2)
    no_fc8 = {k: v for k, v in layers.items() if k != "fc8"}
    bad_conv2 = dict(layers, conv2=[np.zeros((5, 5, 2, 2), np.float32), np.zeros(2, np.float32)])
    (tmp / "notes.txt").write_text("hello")
    torch.save({"conv.weight": torch.zeros(2)}, tmp / "other.pth")
    return {
        "missing.npy": (tmp / "missing.npy", "no weights file"),
        "text": (tmp / "notes.txt", "neither"),
        "array": (save_npy(tmp / "array.npy", np.zeros((3, 3), np.float32)),
                  "not the pickled dict"),
        "no fc8": (save_npy(tmp / "nofc8.npy", no_fc8), "missing fc8"),
        "conv2": (save_npy(tmp / "conv2.npy", bad_conv2), "conv2 weight has shape (5, 5, 2, 2)"),
        "truncated": (None, "cannot be read"),
        "other pth": (tmp / "other.pth", "not torchvision's AlexNet"),
    }


@pytest.mark.parametrize("case", ["missing.npy", "text", "array", "no fc8", "conv2", "truncated",
                                  "other pth"])
def test_wrong_files_give_one_clear_line(tmp_path, bvlc_file, case):
    path, expected = _wrong_files(tmp_path)[case]
    if case == "truncated":
        path = tmp_path / "cut.npy"
        path.write_bytes(bvlc_file[1].read_bytes()[:5000])
    with pytest.raises(ImageNetWeightsError) as err:
        load_imagenet_alexnet(path)
    assert expected in _one_line(str(err.value))
    assert str(tmp_path) not in str(err.value)  # no absolute paths in messages


# --------------------------------------------------------------------------- finding files

def test_weights_are_found_in_the_documented_places(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(tmp_path / "mine"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert pretrained.weights_dirs() == [tmp_path / "mine",
                                         pretrained.REPO_ROOT / "data" / "weights",
                                         tmp_path / "torch" / "hub" / "checkpoints"]
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / pretrained.TORCHVISION_FILE).write_bytes(b"x")
    (hub / pretrained.BVLC_FILE).write_bytes(b"x")  # torch hub: torchvision's file only
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / pretrained.BVLC_FILE).write_bytes(b"x")
    found = [(k, p) for k, p in pretrained.find_imagenet_weights()
             if not p.is_relative_to(pretrained.REPO_ROOT)]
    assert found[0] == ("bvlc", tmp_path / "mine" / pretrained.BVLC_FILE)
    assert ("torchvision", hub / pretrained.TORCHVISION_FILE) in found
    assert ("bvlc", hub / pretrained.BVLC_FILE) not in found


def test_display_path_never_shows_an_absolute_path(monkeypatch, tmp_path):
    from course_utils.config import REPO_ROOT, display_path

    assert display_path(REPO_ROOT / "data" / "weights" / "a.pth") == "data/weights/a.pth"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(pretrained.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert display_path(tmp_path / ".cache" / "a.pth") == "~/.cache/a.pth"
    assert display_path("/somewhere/else/a.pth") == ".../a.pth"
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, "/somewhere")
    assert display_path("/somewhere/else/a.pth") == "$COURSE_WEIGHTS_DIR/else/a.pth"
    monkeypatch.setenv("COURSE_DATA_DIR", "/data/fm")
    assert display_path("/data/fm/train.gz") == "$COURSE_DATA_DIR/train.gz"


# --------------------------------------------------------------------------- labels

def test_the_shipped_wnids_are_the_sorted_1000_in_torchvisions_order():
    wnids = imagenet_wnids()
    assert len(wnids) == len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)
    names = imagenet_categories()
    labels = ImageNetLabels()
    for index, wnid, name in [(0, "n01440764", "tench"), (278, "n02119789", "kit fox"),
                              (281, "n02123045", "tabby"), (999, "n15075141", "toilet tissue")]:
        assert (labels.wnid(index), labels.name(index), names[index]) == (wnid, name, name)
        assert labels.index_of_wnid(wnid) == index


def test_wnids_file_is_package_data():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "imagenet_wnids.txt" in meta["tool"]["setuptools"]["package-data"]["course_utils"]
    import importlib.resources
    assert importlib.resources.files("course_utils").joinpath("imagenet_wnids.txt").is_file()


def write_meta_mat(path: Path, rows) -> Path:
    """A hand-made meta.mat in the devkit's layout: a (N, 1) struct array ``synsets``."""
    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
              "wordnet_height", "num_train_images"]
    synsets = np.zeros((len(rows), 1), dtype=[(f, object) for f in fields])
    for k, (ident, wnid, words, children) in enumerate(rows):
        synsets[k, 0] = (np.float64(ident), wnid, words, f"gloss of {words}",
                         np.float64(len(children)), np.array(children, dtype=np.float64),
                         np.float64(0 if not children else 1), np.float64(1300))
    savemat(path, {"synsets": synsets})
    return path


#: Leaf synsets with their devkit IDs (1-3: the devkit's first three), and one inner node.
META_ROWS = [(1, "n02119789", "kit fox, Vulpes macrotis", []),
             (2, "n02100735", "English setter", []),
             (3, "n02110185", "Siberian husky", []),
             (449, "n01440764", "tench, Tinca tinca", []),
             (1001, "n02084071", "dog, domestic dog, Canis familiaris", [2, 3])]


def test_three_numberings_from_a_hand_made_meta_mat(tmp_path):
    path = write_meta_mat(tmp_path / "meta.mat", META_ROWS)
    assert read_meta_mat(path) == {1: "n02119789", 2: "n02100735", 3: "n02110185", 449: "n01440764"}
    labels = ImageNetLabels.from_meta_mat(path)
    assert labels.index_of_ilsvrc_id(1) == 278 and labels.name(278) == "kit fox"
    assert labels.index_of_ilsvrc_id(449) == 0 and labels.ilsvrc_id(0) == 449
    assert labels.ilsvrc_id(1) is None  # goldfish: not in this small file
    # ILSVRC2012_IDs are not in sorted-WNID order: ID 1 comes after ID 449 in the outputs
    assert labels.index_of_ilsvrc_id(1) > labels.index_of_ilsvrc_id(449)
    table = labels.table([278, 0])
    assert table.to_dict("records") == [
        {"output index": 278, "WNID": "n02119789", "ILSVRC2012_ID": 1, "name": "kit fox"},
        {"output index": 0, "WNID": "n01440764", "ILSVRC2012_ID": 449, "name": "tench"}]
    probs = torch.zeros(1000)
    probs[[278, 212, 0]] = torch.tensor([0.5, 0.3, 0.2])
    top = labels.top_k(probs, 3)
    assert top["output index"].tolist() == [278, 212, 0]
    assert top["ILSVRC2012_ID"].tolist() == [1, 2, 449]


def test_label_errors_are_one_line(tmp_path):
    labels = ImageNetLabels.from_meta_mat(write_meta_mat(tmp_path / "meta.mat", META_ROWS))
    for call, expected in [(lambda: labels.index_of_ilsvrc_id(5), "not in the loaded meta.mat"),
                           (lambda: labels.name(1000), "outside 0-999"),
                           (lambda: labels.index_of_wnid("n00000000"), "not one of the 1000")]:
        with pytest.raises(LabelError) as err:
            call()
        assert expected in _one_line(str(err.value))
    savemat(tmp_path / "other.mat", {"x": np.zeros(3)})
    bad_leaf = write_meta_mat(tmp_path / "bad.mat", [(7, "n99999999", "nothing", [])])
    (tmp_path / "text.mat").write_text("not a mat file")
    for path, expected in [(tmp_path / "other.mat", "no 'synsets'"),
                           (bad_leaf, "not one of the 1000"),
                           (tmp_path / "text.mat", "cannot be read")]:
        with pytest.raises(LabelError) as err:
            read_meta_mat(path)
        assert expected in _one_line(str(err.value))


# --------------------------------------------------------------------------- command line

@pytest.mark.parametrize("argv, expected", [
    (["--download", "alexnet"], "invalid choice"),
    ([], "one of the arguments --download --check is required"),
    (["--download", "bvlc", "--check", "x"], "not allowed with"),
])
def test_cli_argument_errors_are_one_line(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_:
        pretrained.main(argv)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    line = _one_line(err)
    assert line.startswith("error: ") and expected in line and not out


def test_cli_failed_download_is_one_line_with_the_timeout_set(tmp_path, capsys, monkeypatch):
    seen = {}

    def offline(url, target, hash_prefix):
        import socket
        seen["timeout"] = socket.getdefaulttimeout()
        target.write_bytes(b"partial")
        raise urllib.error.URLError("timed out")

    monkeypatch.setattr(pretrained, "_fetch", offline)
    code = pretrained.main(["--download", "bvlc", "--dest", str(tmp_path), "--timeout", "7"])
    out, err = capsys.readouterr()
    line = _one_line(err)
    assert code == 2 and not out
    assert line.startswith("error: download of http") and "timed out" in line
    assert seen["timeout"] == 7.0
    import socket
    assert socket.getdefaulttimeout() != 7.0  # restored
    assert not any(tmp_path.iterdir())  # no partial file left


def test_cli_download_checks_what_it_fetched(tmp_path, capsys, monkeypatch, bvlc_file):
    monkeypatch.setattr(pretrained, "_fetch", lambda url, target, h: target.write_bytes(b"<html>"))
    assert pretrained.main(["--download", "bvlc", "--dest", str(tmp_path / "a")]) == 2
    assert "does not load" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "a" / pretrained.BVLC_FILE).exists()

    monkeypatch.setattr(pretrained, "_fetch",
                        lambda url, target, h: shutil.copy(bvlc_file[1], target))
    assert pretrained.main(["--download", "bvlc", "--dest", str(tmp_path / "b")]) == 0
    assert pretrained.BVLC_FILE in _one_line(capsys.readouterr().out)
    assert pretrained.main(["--check", str(tmp_path / "b" / pretrained.BVLC_FILE)]) == 0
    assert "bvlc AlexNet" in capsys.readouterr().out


def test_cli_runs_as_a_module_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "course_utils.pretrained", "--check",
                           "nowhere.npy"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert _one_line(proc.stderr).startswith("error: no weights file at")
