"""AlexNet (227x227) and the small AlexNet (67x67) the course trains on a CPU.

Both share one definition: five convolutions with max-pooling after the first,
second and fifth, then three fully connected layers. Options switch on the
paper's ingredients one at a time (LRN, the two-tower grouping, overlapping
pooling, its initialisation), so each notebook can test one claim.
:class:`ClassifierOnly` is the classifier alone (fc6-fc8 on the pixels), where notebook 09
tests dropout.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from .layers import PAPER_LRN_ALPHA, BatchAugment, InputAdapter, LocalResponseNorm, course_alpha

__all__ = ["ACTIVATIONS", "AlexNet", "AlexNetSmall", "AugmentedAlexNetSmall", "CONV_GEOMETRY",
           "ClassifierOnly", "INITS", "PAPER_CHANNELS", "PIXEL_SCALES", "POOL_AFTER",
           "SMALL_CNN_INITS", "SmallCNN", "V2_CHANNELS", "count_parameters", "feature_side",
           "geometry", "initialize", "layer_parameters", "model_flops", "output_size"]

#: Filters per convolution in the paper (both towers together).
PAPER_CHANNELS = (96, 256, 384, 384, 256)
#: Filters of the single-tower "One weird trick" variant (Krizhevsky, 2014).
V2_CHANNELS = (64, 192, 384, 384, 256)

#: Kernel, stride and padding of conv1..conv5 (the paper's geometry).
CONV_GEOMETRY = ((11, 4, 0), (5, 1, 2), (3, 1, 1), (3, 1, 1), (3, 1, 1))
#: The convolutions followed by max-pooling.
POOL_AFTER = frozenset({1, 2, 5})
_GROUPED = {2, 4, 5}  # conv3 talks to both towers; conv2, conv4, conv5 do not
_BIAS_ONE = {"conv2", "conv4", "conv5", "fc6", "fc7"}  # the paper's bias-1 layers

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
INITS = ("he", "paper")
#: Input scales of :class:`AlexNet` (``pixels=``).
PIXEL_SCALES = ("normalised", "paper")
#: Initialisations of :class:`SmallCNN` (notebook 01 compares them).
SMALL_CNN_INITS = ("xavier", "he", "paper", "default")


def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Side of a conv or pooling output: floor((n + 2p - k) / s) + 1."""
    return (n + 2 * padding - kernel) // stride + 1


def geometry(input_size: int, pool_kernel: int = 3, pool_stride: int = 2,
             conv1_padding: int | None = None, pool_padding: int = 0) -> list[dict]:
    """Walk a square input through AlexNet's convolutions and poolings.

    Parameters
    ----------
    input_size : int
        Side of the input in pixels (227 for the paper, 67 for the small net).
    pool_kernel, pool_stride : int
        The max-pooling window and step (3, 2: the paper's overlapping pooling).
    conv1_padding : int, optional
        Replaces conv1's padding (0), e.g. 2 for torchvision's 224-pixel input.
    pool_padding : int
        Padding of every max-pooling (0: the paper's). With 1, a 3x3 stride-2 pooling
        on an even side ``n`` gives ``n / 2`` and its windows reach every cell, where
        without padding they miss the last row and column (notebook 03).

    Returns
    -------
    list of dict
        One row per convolution and pooling, in order: ``layer`` (conv1, pool1,
        ..., pool5), ``in`` and ``out`` (the sides), ``kernel``, ``stride``, ``padding``.

    Raises
    ------
    ValueError
        When the input is too small: the feature map vanishes at some layer.
    """
    rows, n = [], int(input_size)
    for i, (k, s, p) in enumerate(CONV_GEOMETRY, start=1):
        if i == 1 and conv1_padding is not None:
            p = int(conv1_padding)
        layers = [(f"conv{i}", k, s, p)]
        if i in POOL_AFTER:
            layers.append((f"pool{i}", pool_kernel, pool_stride, pool_padding))
        for name, kernel, stride, pad in layers:
            out = output_size(n, kernel, stride, pad)
            if out < 1:
                raise ValueError(f"input {input_size}x{input_size} is too small for AlexNet's "
                                 f"geometry (the feature map vanishes at {name})")
            rows.append({"layer": name, "in": n, "kernel": kernel, "stride": stride,
                         "padding": pad, "out": out})
            n = out
    return rows


def feature_side(input_size: int, pool_kernel: int = 3, pool_stride: int = 2,
                 pool_padding: int = 0) -> int:
    """Side of the last feature map (after pool5) for an input of ``input_size`` pixels."""
    return geometry(input_size, pool_kernel, pool_stride, pool_padding=pool_padding)[-1]["out"]


class AlexNet(nn.Module):
    """AlexNet for ``input_size`` x ``input_size`` images (227 by default).

    Args:
        in_channels: 1 for Fashion-MNIST, 3 for colour images.
        num_classes: size of the output layer.
        dropout: dropout rate after fc6 and fc7 (the paper's 0.5).
        lrn: Local Response Normalization after conv1 and conv2 (paper convention).
        lrn_alpha: LRN's alpha. None (the default) picks the one for ``pixels``:
            the paper's 1e-4 for its raw-pixel inputs (``"paper"``), and for the
            course's normalised inputs, about 90 times smaller, the same layer's
            ``layers.course_alpha()`` = 1e-4 * (255 * STD)**2, about 0.8 (notebooks
            02 and 04): with 1e-4 there, LRN divides every activation by k**beta and
            does nothing a weight cannot absorb.
        two_tower: the original two-GPU net: conv2, conv4 and conv5 grouped in two.
        batchnorm: BatchNorm after conv1 and conv2 instead (the modern replacement).
        pool_kernel, pool_stride: 3, 2 is the paper's overlapping pooling.
        pool_padding: padding of every max-pooling (0, the paper's; at most half the
            window, as nn.MaxPool2d requires). 1 lets a 3x3 stride-2 pooling reach every
            cell of an even-sided map (notebook 03 compares it with 2x2 stride-2 there).
        channels: filters of conv1..conv5.
        activation: "relu" (the paper), "tanh" or "sigmoid".
        init: "he" (He for convolutions, Xavier for linear layers, zero biases)
            or "paper" (N(0, 0.01) weights, bias 1 in conv2, conv4, conv5, fc6, fc7).
        head_std: if given, the output layer (fc8) starts from N(0, head_std) weights
            and a zero bias instead: with a small value (0.01) every logit starts near
            0, so the first loss is near ln(num_classes) (notebook 07). None: the
            ``init`` scheme's.
        input_size, hidden: image side and width of fc6/fc7.
        pixels: "normalised" (mean 0, std 1: the course's default) or "paper"
            (raw 0-255 pixels minus the mean pixel, the scale the paper trained on).

    The first stage, an :class:`InputAdapter`, accepts raw uint8 images of any
    size (Fashion-MNIST's 28x28) and resizes them to ``input_size`` per batch.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5,
                 lrn: bool = False, two_tower: bool = False, batchnorm: bool = False,
                 pool_kernel: int = 3, pool_stride: int = 2, pool_padding: int = 0,
                 channels: Sequence[int] = PAPER_CHANNELS, activation: str = "relu",
                 init: str = "he", input_size: int = 227, hidden: int = 4096,
                 pixels: str = "normalised", lrn_alpha: float | None = None,
                 head_std: float | None = None):
        super().__init__()
        if pixels not in PIXEL_SCALES:
            raise ValueError(f"pixels must be one of {PIXEL_SCALES}, got {pixels!r}")
        if lrn and batchnorm:
            raise ValueError("choose lrn or batchnorm, not both")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if len(channels) != 5:
            raise ValueError(f"channels needs five filter counts, got {len(channels)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if head_std is not None and (isinstance(head_std, bool)
                                     or not isinstance(head_std, (int, float))
                                     or not 0.0 < head_std < float("inf")):
            raise ValueError(f"head_std must be a positive number or None, got {head_std!r}")
        if not 0 <= pool_padding <= pool_kernel // 2:
            raise ValueError(f"pool_padding must be between 0 and half the window "
                             f"({pool_kernel // 2} for pool_kernel={pool_kernel}), "
                             f"got {pool_padding}")
        groups = 2 if two_tower else 1
        if two_tower and any(c % 2 for c in channels):
            raise ValueError("two_tower needs an even number of filters in every convolution")
        self.input_size = int(input_size)
        side = feature_side(self.input_size, pool_kernel, pool_stride, pool_padding)
        act = ACTIVATIONS[activation]

        # "paper": raw pixels (0-255) minus the mean pixel, as the paper fed its net;
        # "normalised": (pixel/255 - mean) / std, about 90 times smaller
        self.prep = (InputAdapter(self.input_size) if pixels == "normalised"
                     else InputAdapter(self.input_size, std=1 / 255))
        if lrn_alpha is None:
            lrn_alpha = course_alpha() if pixels == "normalised" else PAPER_LRN_ALPHA
        layers: "OrderedDict[str, nn.Module]" = OrderedDict()
        c_in = in_channels
        for i, ((k, s, p), c_out) in enumerate(zip(CONV_GEOMETRY, channels), start=1):
            layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, k, s, p,
                                           groups=groups if i in _GROUPED else 1)
            layers[f"act{i}"] = act()
            if i <= 2 and lrn:
                layers[f"norm{i}"] = LocalResponseNorm(5, lrn_alpha, 0.75, 2.0,
                                                           convention="paper")
            if i <= 2 and batchnorm:
                layers[f"norm{i}"] = nn.BatchNorm2d(c_out)
            if i in POOL_AFTER:
                layers[f"pool{i}"] = nn.MaxPool2d(pool_kernel, pool_stride, pool_padding)
            c_in = c_out
        self.features = nn.Sequential(layers)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(c_in * side * side, hidden)), ("act6", act()),
            ("drop6", nn.Dropout(dropout)),
            ("fc7", nn.Linear(hidden, hidden)), ("act7", act()),
            ("drop7", nn.Dropout(dropout)),
            ("fc8", nn.Linear(hidden, num_classes)),  # plain linear logits
        ]))
        initialize(self, init, head_std=head_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(self.prep(x))))


class AlexNetSmall(AlexNet):
    """The same five convolutions on 67x67 input (the smallest the geometry allows:
    67 -> 15 -> 7 -> 3 -> 1), with a 256 -> 128 -> 128 -> classes classifier.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5,
                 input_size: int = 67, hidden: int = 128, **kwargs):
        super().__init__(in_channels=in_channels, num_classes=num_classes, dropout=dropout,
                         input_size=input_size, hidden=hidden, **kwargs)


class ClassifierOnly(nn.Module):
    """AlexNet's classifier alone, on the pixels: fc6 - ReLU - dropout - fc7 - ReLU - dropout
    - fc8, with fc6 reading the 28 x 28 = 784 normalised pixel values.

    The paper's fc6 reads 9,216 values (pool5's 6 x 6 x 256) and holds most of the net's
    parameters; the small AlexNet's fc6 reads pool5's 1 x 1 x 64 (or 256). Notebook 09
    trains this net to test dropout where the paper put it: in fully connected layers
    that read many inputs and can learn a few thousand images by heart. The layers are
    named as in :class:`AlexNet` (``classifier.fc6`` ... ``classifier.fc8``) and start
    from its ``"he"`` initialisation (Xavier-uniform weights, zero biases).

    Args:
        hidden: width of fc6 and fc7 (the paper's 4096).
        dropout: dropout rate after fc6 and fc7 (the paper's 0.5).
        num_classes: size of the output layer.
        input_size: side of the square input (28 for Fashion-MNIST); fc6 reads its square.
    """

    def __init__(self, hidden: int = 4096, dropout: float = 0.5, num_classes: int = 10,
                 input_size: int = 28):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        pixels = int(input_size) ** 2
        self.prep = InputAdapter(int(input_size), channels_last=False)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(pixels, hidden)), ("act6", nn.ReLU()),
            ("drop6", nn.Dropout(dropout)),
            ("fc7", nn.Linear(hidden, hidden)), ("act7", nn.ReLU()),
            ("drop7", nn.Dropout(dropout)),
            ("fc8", nn.Linear(hidden, num_classes)),
        ]))
        initialize(self, "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.prep(x)))


def initialize(model: nn.Module, scheme: str = "he", head_std: float | None = None
               ) -> nn.Module:
    """(Re-)initialise ``model``'s conv and linear layers in place.

    ``"he"``: Kaiming-normal convolutions, Xavier-uniform linear layers, zero biases.
    ``"paper"``: N(0, 0.01) weights; bias 1 in conv2, conv4, conv5, fc6 and fc7, else 0.
    ``head_std``: then the output layer (the last linear layer, fc8) is drawn again from
    N(0, head_std), with a zero bias (:class:`AlexNet`'s ``head_std``; notebook 07).
    """
    if scheme not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {scheme!r}")
    head = None
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(module, nn.Conv2d):
            if scheme == "he":
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.normal_(module.weight, 0.0, 0.01)
        elif isinstance(module, nn.Linear):
            if scheme == "he":
                nn.init.xavier_uniform_(module.weight)
            else:
                nn.init.normal_(module.weight, 0.0, 0.01)
            head = module
        else:
            continue
        if module.bias is not None:
            nn.init.constant_(module.bias, 1.0 if scheme == "paper" and leaf in _BIAS_ONE else 0.0)
    if head_std is not None and head is not None:
        nn.init.normal_(head.weight, 0.0, float(head_std))
        if head.bias is not None:
            nn.init.zeros_(head.bias)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def layer_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters of each conv and linear layer, by its short name (conv1 ... fc8)."""
    return {name.rsplit(".", 1)[-1]: sum(p.numel() for p in m.parameters())
            for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


class AugmentedAlexNetSmall(AlexNetSmall):
    """:class:`AlexNetSmall` that augments each training batch before its input adapter.

    The augmentation has no parameters, so the weights (``state_dict``) are the
    same as a plain AlexNetSmall's. With skorch::

        make_classifier(AugmentedAlexNetSmall, module__augment_padding=2,
                        module__augment_flip=True, module__augment_lighting=0.1)
    """

    def __init__(self, augment_padding: int = 2, augment_flip: bool = True,
                 augment_lighting: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.augment = BatchAugment(augment_padding, augment_flip, augment_lighting)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.augment(x))


class SmallCNN(nn.Module):
    """A small CNN on 28x28 Fashion-MNIST with one activation everywhere.

    ``depth`` convolutions (3x3 after a 5x5 first one), max-pooling after the
    first two, then one linear layer: ``depth=3`` is a four-layer net like the
    paper's Figure 1 CIFAR-10 net. All layers get the same ``init``
    (``"xavier"``: Glorot-uniform weights; ``"he"``: Kaiming-normal; ``"paper"``:
    N(0, 0.01); zero biases), whatever the activation.
    """

    def __init__(self, activation: str = "relu", depth: int = 3, width: int = 32,
                 num_classes: int = 10, init: str = "xavier"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        act = ACTIVATIONS[activation]
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        if init not in SMALL_CNN_INITS:
            raise ValueError(f"init must be one of {SMALL_CNN_INITS}, got {init!r}")
        self.prep = InputAdapter(28, channels_last=False)
        layers: "OrderedDict[str, nn.Module]" = OrderedDict()
        c_in = 1
        for i in range(1, depth + 1):
            c_out = width // 2 if i == 1 else width
            k = 5 if i == 1 else 3
            layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, k, padding=k // 2)
            layers[f"act{i}"] = act()
            if i <= 2:
                layers[f"pool{i}"] = nn.MaxPool2d(2)
            c_in = c_out
        self.features = nn.Sequential(layers)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c_in * 7 * 7, num_classes)
        if init != "default":
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    if init == "xavier":
                        nn.init.xavier_uniform_(m.weight)
                    elif init == "paper":  # the paper's N(0, 0.01), whatever the layer
                        nn.init.normal_(m.weight, 0.0, 0.01)
                    else:
                        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.features(self.prep(x))))


def model_flops(model: nn.Module, image_shape=(1, 28, 28)) -> dict:
    """Floating-point operations per image of ``model`` (conv and linear layers,
    counting a multiply-add as two).

    ``train`` is forward + gradient of the weights (as much again) + gradient of
    the inputs (as much again, except for the first layer, whose input, the
    image, needs none).
    """
    layers: list[tuple[str, int]] = []

    def hook(module, _inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_out = (module.in_channels // module.groups) * kh * kw
            layers.append((name_of[module], 2 * output.numel() * per_out))
        else:
            layers.append((name_of[module], 2 * output.numel() * module.in_features))

    name_of = {m: n.rsplit(".", 1)[-1] for n, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))}
    handles = [m.register_forward_hook(hook) for m in name_of]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        x = torch.zeros((1, *image_shape), dtype=torch.uint8, device=param.device)
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    forward = sum(f for _, f in layers)
    first = layers[0][1] if layers else 0
    return {"forward": forward, "train": 3 * forward - first, "layers": dict(layers)}
