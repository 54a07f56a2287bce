"""Notebook 11's exercises (transfer learning): their cases and reference solutions, and
the check of the open ImageNet exercise (:func:`check_imagenet_transfer`)."""
from __future__ import annotations

import torch
from torch import nn

from ..config import CourseError
from .judge import (Exercise, call_answer, describe, generator, number, register,
                    tensor_function)

__all__ = ["EXERCISES", "check_imagenet_transfer", "dead_units", "freeze", "frozen_share",
           "imagenet_transfer_model", "target_steps"]

CHANNELS = (24, 64, 96, 96, 64)  # the quick profile's narrow net


# --------------------------------------------------------------------------- reference solutions

def frozen_share():
    from course_utils.models import AlexNetSmall

    channels = (24, 64, 96, 96, 64)  # the narrow net: a quarter of the paper's filters
    # transfer_model(source, "frozen") copies the source's weights (the sizes do not
    # change), gives it a new 5-class fc8 and freezes the convolutions
    frozen = AlexNetSmall(num_classes=5, channels=channels)
    for p in frozen.features.parameters():
        p.requires_grad_(False)
    trainable = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
    total = sum(p.numel() for p in frozen.parameters())
    return trainable / total  # fc6, fc7 and the new fc8


def target_steps():
    import torch

    from course_utils.training.fastpath import TensorBatches

    images = 20 * 5  # shots per class x target classes
    # the course's batches are cut exactly like skorch's DataLoader (drop_last=False)
    per_epoch = len(TensorBatches(torch.zeros(images, 1), torch.zeros(images),
                                  batch_size=32))
    return per_epoch * 30


def dead_units(acts, tol=0.99):
    zero = (acts == 0).double().mean(dim=0)  # per unit: the share of images at 0
    return zero >= tol  # True for a dead unit, one value per unit


def freeze(net, prefixes=("features",)):
    for name, p in net.named_parameters():
        if name.startswith(tuple(prefixes)):  # weights and biases alike
            p.requires_grad_(False)
    return [name for name, p in net.named_parameters() if p.requires_grad]


# --------------------------------------------------------------------------- test inputs

def _fc8_share() -> float:
    from ..models import AlexNetSmall

    net = AlexNetSmall(num_classes=5, channels=CHANNELS)
    return (sum(p.numel() for p in net.classifier.fc8.parameters())
            / sum(p.numel() for p in net.parameters()))


def _dead_units_cases(reference):
    def acts(n, units, seed, dead=(), nearly=(), half=()):
        a = torch.relu(torch.randn(n, units, generator=generator(seed)))
        for u in (*dead, *nearly, *half):
            a[:, u] = 0
        for u in nearly:  # active for one image only: dead at tol=0.99 when n >= 100
            a[0, u] = 1.0
        for u in half:  # active for half the images: alive
            a[: n // 2, u] = 1.0
        return a

    cases = [("a (200, 10) tensor with 2 dead units", acts(200, 10, 11, dead=(1, 7)), {}),
             ("a (200, 8) tensor with units zero for all but one image",
              acts(200, 8, 12, dead=(0,), nearly=(3, 5), half=(6,)), {}),
             ("the same tensor with tol=1.0",
              acts(200, 8, 12, dead=(0,), nearly=(3, 5), half=(6,)), {"tol": 1.0}),
             ("a (50, 6) tensor with tol=0.75", acts(50, 6, 13, dead=(2,), half=(4,)),
              {"tol": 0.75}),
             ("a (4, 6) tensor with tol=0.5, units zero on exactly half the images",
              acts(4, 6, 15, dead=(0,), half=(1, 3)), {"tol": 0.5}),
             ("a (30, 5) tensor without dead units", acts(30, 5, 14), {})]
    return [(shown, (a,), kw, reference(a.clone(), **kw)) for shown, a, kw in cases]


def _dead_units_mistakes(args, kwargs):
    a = args[0]
    tol = kwargs.get("tol", 0.99)
    zero = (a == 0).double().mean(dim=0)
    return [((a == 0).all(dim=0),
             ("a unit active for only a few images counts as dead too: compare the share of "
              "images where it is 0 with tol")),
            (zero > tol, "a unit at 0 on exactly a share tol of the images is dead too (>=)"),
            (zero < tol, "that marks the live units: True for the dead ones")]


# --------------------------------------------------------------------------- freeze

def _freeze_nets():
    """The fresh networks :func:`freeze` is checked on: (shown, build, prefixes)."""
    from ..models import AlexNetSmall

    def alexnet():
        return AlexNetSmall(num_classes=5, channels=(4, 8, 8, 8, 8), hidden=16)

    def mlp():
        return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))

    net = "a fresh AlexNetSmall"
    return [(f"{net} with prefixes=('features',)", alexnet, ("features",)),
            (f"{net} with prefixes=('features', 'classifier.fc6')", alexnet,
             ("features", "classifier.fc6")),
            (f"{net} with prefixes=('classifier.fc8',)", alexnet, ("classifier.fc8",)),
            (f"{net} with prefixes=()", alexnet, ()),
            ("nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)) with "
             "prefixes=('0',)", mlp, ("0",))]


def _frozen_names(net) -> set[str]:
    return {name for name, p in net.named_parameters() if not p.requires_grad}


def _freezing_hint(frozen: set[str], expected: set[str]) -> str:
    """What is wrong with the parameters the student's function froze."""
    extra, missing = sorted(frozen - expected), sorted(expected - frozen)
    if expected and not frozen:
        return ("nothing was frozen: the parameters whose names start with a prefix still "
                "require gradients")
    if extra:
        return (f"you froze {len(extra)} parameter(s) that no prefix names, e.g. {extra[0]}: "
                "the head (and every part not named) must keep training")
    if all(name.endswith("bias") for name in missing):
        return (f"the biases still learn, e.g. {missing[0]}: a layer's bias is a parameter "
                "too, freeze every parameter whose name starts with a prefix")
    return (f"{len(missing)} parameter(s) whose names start with a prefix still learn, e.g. "
            f"{missing[0]}")


def _freeze_judge(answer, reference):
    if isinstance(answer, nn.Module) or not callable(answer):
        return f"expected a function freeze(net, prefixes), got {describe(answer)}"
    for shown, build, prefixes in _freeze_nets():
        net, ref_net = build(), build()
        expected = reference()(ref_net, prefixes)
        out, error = call_answer(answer, (net, prefixes), {}, f"your function, on {shown},")
        if error:
            return error
        if _frozen_names(net) != _frozen_names(ref_net):
            return f"on {shown}: {_freezing_hint(_frozen_names(net), _frozen_names(ref_net))}"
        if isinstance(out, nn.Module) or not isinstance(out, (list, tuple)) \
                or not all(isinstance(n, str) for n in out):
            got = "the network" if isinstance(out, nn.Module) else describe(out)
            return (f"on {shown} your function returned {got}: return a list of the names of "
                    "the parameters that still train")
        if sorted(out) != sorted(expected):
            every = [name for name, _ in net.named_parameters()]
            if sorted(out) == sorted(every):
                return (f"on {shown} you returned every parameter's name: return only those "
                        "that still train (requires_grad)")
            if set(out) == _frozen_names(net):
                return (f"on {shown} you returned the frozen parameters' names: return those "
                        "that still train")
            return (f"on {shown} your function froze the right parameters but returned "
                    f"{len(out)} name(s) where {len(expected)} parameters still train")
    return None


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "11-1", "the share (0-1) of its parameters that still train in the quick profile's "
        "frozen model: transfer_model(source, 'frozen', channels=(24, 64, 96, 96, 64)) from a "
        "5-class AlexNetSmall of those filters", "a number between 0 and 1",
        frozen_share,
        number(rel=1e-3, share=True, mistakes=lambda: [
            (1 - frozen_share(), ("that is the share of the frozen convolutions; the question "
                                  "asks for the share that still trains")),
            (_fc8_share(), ("only the convolutions are frozen: fc6 and fc7 train too, not "
                            "just the new fc8"))])),
    Exercise(
        "11-2", "how many optimizer steps one target run makes in the quick profile: 20 "
        "labelled images for each of 5 classes, batch_size=32, 30 epochs (skorch keeps the "
        "last, smaller batch)", "an int",
        target_steps,
        number(abs_=0.0, mistakes=lambda: [
            ((100 // 32) * 30, ("the 4 images left over after the full batches make one more, "
                                "smaller batch each epoch: it is a step too")),
            (100 / 32 * 30, ("a step takes a whole batch: count the batches per epoch, the "
                             "last one smaller, then multiply by the epochs")),
            (4, "that is one epoch's steps: the run trains 30 epochs")])),
    Exercise(
        "11-3", "which units of an (N, units) tensor of post-ReLU activations are dead: "
        "exactly 0 for at least a share tol of the N images",
        "a function dead_units(acts, tol=0.99) returning a boolean tensor of shape (units,)",
        dead_units,
        tensor_function("dead_units", _dead_units_cases, atol=0.0,
                        mistakes=_dead_units_mistakes),
        write_it=True),
    Exercise(
        "11-4", "freeze every parameter of net whose name starts with one of prefixes "
        "(weights and biases), and return the names of the parameters that still train",
        "a function freeze(net, prefixes=('features',)) returning a list of names",
        freeze, _freeze_judge, write_it=True),
)


# --------------------------------------------------------------------------- the ImageNet exercise

def imagenet_transfer_model(path, num_classes: int) -> nn.Module:
    """The reference answer to notebook 11's open ImageNet exercise: the ImageNet AlexNet
    in ``path`` (torchvision's or the original file) with frozen convolutions and a new
    fc8 for ``num_classes``, fed Fashion-MNIST's uint8 images (grey becomes RGB inside)."""
    from ..layers import InputAdapter
    from ..pretrained import load_imagenet_alexnet

    net = load_imagenet_alexnet(path)
    for p in net.features.parameters():  # frozen convolutions
        p.requires_grad_(False)
    net.classifier.fc8 = nn.Linear(net.classifier.fc8.in_features, num_classes)
    return nn.Sequential(InputAdapter(net.input_size, mean=0.0, std=1.0), net)


def check_imagenet_transfer(model: nn.Module, num_classes: int) -> str:
    """Check an answer to the ImageNet exercise; raise :class:`CourseError` saying what
    is wrong, else return a one-line confirmation."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not convs or not linears:
        raise CourseError("that is not an AlexNet: build it with load_imagenet_alexnet(path)")
    if any(p.requires_grad for m in convs for p in m.parameters()):
        raise CourseError("the convolutions still learn: freeze them "
                          "(net.features.requires_grad_(False))")
    if linears[-1].out_features != num_classes:
        raise CourseError(f"the last layer has {linears[-1].out_features} outputs: replace fc8 "
                          f"by nn.Linear(4096, {num_classes})")
    if not linears[-1].weight.requires_grad:
        raise CourseError("the new fc8 does not learn: give it requires_grad=True")
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    model.eval()
    with torch.no_grad():
        out = model(x)
    if tuple(out.shape) != (2, num_classes):
        raise CourseError(f"Fashion-MNIST images give outputs of shape {tuple(out.shape)}, "
                          f"not (2, {num_classes}): put an InputAdapter in front")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return (f"correct: frozen ImageNet convolutions, a new {num_classes}-class fc8, "
            f"{trainable:,} trainable parameters")
