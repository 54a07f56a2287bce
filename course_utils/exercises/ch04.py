"""Notebook 04's exercises (AlexNet's architecture): their cases and reference solutions."""
from __future__ import annotations

import inspect

from .judge import (Exercise, call_answer, describe, generator, number, package_function, register,
                    whole_numbers)

__all__ = ["EXERCISES", "fc_parameter_share", "feature_extractor", "tiling_sizes",
           "two_tower_cost"]


# --------------------------------------------------------------------------- reference solutions

def two_tower_cost():
    import torch
    from torch import nn

    from course_utils.models import AlexNet

    def mult_adds(net):
        # a convolution uses each weight and bias once per output position,
        # a linear layer once per image
        total = []

        def count(layer, inputs, out):
            positions = out.shape[-2] * out.shape[-1] if isinstance(layer, nn.Conv2d) else 1
            total.append(sum(p.numel() for p in layer.parameters()) * positions)

        hooks = [m.register_forward_hook(count) for m in net.modules()
                 if isinstance(m, (nn.Conv2d, nn.Linear))]
        with torch.no_grad():
            net.eval()(torch.zeros(1, 1, net.input_size, net.input_size))
        for hook in hooks:
            hook.remove()
        return sum(total)

    return mult_adds(AlexNet(two_tower=True)) / mult_adds(AlexNet())


def tiling_sizes():
    # conv1 (11x11, stride 4, no padding) tiles an n x n input exactly when its
    # windows end on the last pixel: (n - 11) / 4 is a whole number
    return [n for n in range(220, 232) if (n - 11) % 4 == 0]


def fc_parameter_share():
    from torch import nn

    from course_utils.models import AlexNet

    net = AlexNet(hidden=1024)
    fc = sum(p.numel() for m in net.modules() if isinstance(m, nn.Linear)
             for p in m.parameters())
    return fc / sum(p.numel() for p in net.parameters())


def feature_extractor(channels=(96, 256, 384, 384, 256), in_channels=1):
    from torch import nn

    c1, c2, c3, c4, c5 = channels
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, kernel_size=11, stride=4), nn.ReLU(),  # 67 -> 15
        nn.MaxPool2d(kernel_size=3, stride=2),                            # -> 7
        nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(),           # 7
        nn.MaxPool2d(kernel_size=3, stride=2),                            # -> 3
        nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(),           # 3
        nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(),           # 3
        nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(),           # 3
        nn.MaxPool2d(kernel_size=3, stride=2),                            # -> 1
    )


# --------------------------------------------------------------------------- judges

def _tiling_sizes(answer, reference):
    values, error = whole_numbers(None, "a list of input sizes")(answer)
    if error:
        return error
    outside = [v for v in values if not 220 <= v <= 231]
    if outside:
        return f"{outside[0]} is outside 220-231"
    if values != sorted(set(values)):
        return "list each size once, in ascending order"
    ref = set(reference())
    extra, missing = set(values) - ref, ref - set(values)
    parts = []
    if extra:
        parts.append(f"{len(extra)} of your sizes do not tile exactly")
    if missing:
        parts.append(f"{len(missing)} size(s) that tile exactly are missing")
    return "; ".join(parts) or None


#: The feature extractor's cases: (keyword arguments, batch shape); the second asks for
#: the ``channels`` and ``in_channels`` given, not the paper's.
_FEATURE_CASES = (({}, (2, 1, 67, 67)),
                  ({"channels": (8, 12, 16, 16, 10), "in_channels": 3}, (3, 3, 67, 67)))


def _borrowed_in_class(answer):
    """What the methods of the student's own class (and its own bases) use from the
    course's package; ``check`` itself looks at functions and instances only."""
    if not isinstance(answer, type):
        return None
    for cls in answer.__mro__:
        if cls.__module__.split(".")[0] in ("torch", "builtins"):
            continue
        for value in vars(cls).values():
            function = getattr(value, "__func__", value)
            if inspect.isfunction(function):
                borrowed = package_function(function)
                if borrowed:
                    return borrowed
    return None


def _run_recorded(net, x):
    """Run ``net`` on ``x``; returns (output or None, error or None, the Conv2d and
    MaxPool2d layers in the order they ran, each with its output side)."""
    import torch
    from torch import nn

    ran = []
    hooks = [m.register_forward_hook(lambda m, i, out: ran.append((m, out.shape[-1])))
             for m in net.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    try:
        with torch.no_grad():
            out, error = call_answer(net, (x,), {}, "your module, on a (N, C, 67, 67) batch,")
    finally:
        for hook in hooks:
            hook.remove()
    return out, error, ran


def _layer_hint(net, ran, expected):
    """The first conv or pooling layer that differs from the reference's, as a hint.
    Layers written with torch.nn.functional leave no trace here: the outputs judge them."""
    from torch import nn

    convs = [(m, side) for m, side in ran if isinstance(m, nn.Conv2d)]
    pools = [m for m, _ in ran if isinstance(m, nn.MaxPool2d)]
    ref_convs = [(m, side) for m, side in expected if isinstance(m, nn.Conv2d)]
    for (m, side), (r, ref_side), i in zip(convs, ref_convs, range(1, 6)):
        if (m.in_channels, m.out_channels) != (r.in_channels, r.out_channels):
            return (f"conv{i} maps {m.in_channels} channels to {m.out_channels}: conv1 takes "
                    "in_channels channels, and conv k gives channels[k - 1] maps")
        if m.groups != 1:
            return f"conv{i} is grouped (groups={m.groups}): write the single-tower net"
        if (m.kernel_size, m.stride, m.padding) != (r.kernel_size, r.stride, r.padding):
            return (f"conv{i}'s kernel, stride or padding is not the paper's: it gives "
                    f"{side}x{side} maps, the reference {ref_side}x{ref_side}")
        if (m.bias is None) != (r.bias is None):
            return f"conv{i} has no bias: the paper's convolutions have one"
    if any(m.kernel_size in (2, (2, 2)) for m in pools):
        return "AlexNet's pooling overlaps: 3x3 windows with stride 2, not 2x2"
    if convs and len(convs) != 5:
        return f"your module ran {len(convs)} nn.Conv2d layers: AlexNet has five convolutions"
    if pools and len(pools) != 3:
        return (f"your module ran {len(pools)} max-poolings: AlexNet pools after conv1, conv2 "
                "and conv5")
    extra = sorted({type(m).__name__ for m in net.modules() if not list(m.children())
                    and not isinstance(m, (nn.Conv2d, nn.ReLU, nn.MaxPool2d))})
    if extra:
        return (f"your module also holds {', '.join(extra)}: the feature extractor is "
                "convolutions, ReLUs and max-poolings only")
    return None


def _feature_extractor(answer, reference):
    import torch
    from torch import nn

    if isinstance(answer, nn.Module):
        return ("give the function or class that builds the module (answer = Features), "
                "not a module built from it (Features())")
    if not callable(answer):
        return f"expected a function or class that builds an nn.Module, got {describe(answer)}"
    borrowed = _borrowed_in_class(answer)
    if borrowed:
        return (f"your answer uses {borrowed} from the course's package: write the layers "
                "yourself, with torch.nn")
    for k, (kwargs, shape) in enumerate(_FEATURE_CASES):
        arguments = ", ".join(f"{a}={v}" for a, v in kwargs.items())
        shown = f"{getattr(answer, '__name__', 'answer')}({arguments})"
        net, error = call_answer(answer, (), dict(kwargs), shown)
        if error:
            return error
        if not isinstance(net, nn.Module):
            return f"{shown} returned {describe(net)}, expected an nn.Module"
        ref = reference()(**kwargs).eval()
        net.eval()
        x = torch.randn(shape, generator=generator(k))
        expected_out, _, expected = _run_recorded(ref, x)
        out, error, ran = _run_recorded(net, x)
        hint = _layer_hint(net, ran, expected)
        if error:
            return f"{shown} fails on a {tuple(shape)} batch: {hint}" if hint else error
        if not isinstance(out, torch.Tensor):
            return f"{shown} on a batch returned {describe(out)}, expected a tensor"
        if out.shape != expected_out.shape:
            return (f"{shown} turns a {tuple(shape)} batch into {tuple(out.shape)}, expected "
                    f"{tuple(expected_out.shape)}" + (f": {hint}" if hint else ""))
        params = [p for p in net.parameters()]
        ref_params = list(ref.parameters())
        count, ref_count = sum(p.numel() for p in params), sum(p.numel() for p in ref_params)
        if count != ref_count:
            word = "more" if count > ref_count else "fewer"
            return (f"{shown} has {abs(count - ref_count):,} {word} parameters than the reference"
                    + (f": {hint}" if hint else ": look at each layer's channels and kernel"))
        if hint:
            return f"{shown}: {hint}"
        # the same weights in the same order must give the same outputs
        if [p.shape for p in params] != [p.shape for p in ref_params]:
            return f"{shown} holds its weights in an order other than conv1 ... conv5"
        with torch.no_grad():
            for p, q in zip(params, ref_params):
                p.copy_(q)
        out, error, _ = _run_recorded(net, x)
        if error:
            return error
        if not torch.allclose(out, expected_out, rtol=1e-4, atol=1e-5):
            if (out < 0).any():
                return (f"{shown} gives negative outputs: a ReLU is missing after conv5 "
                        "(before the last pooling)")
            return (f"{shown} has the right weights, but given the reference's it computes "
                    "other outputs: a ReLU after each of the five convolutions? 3x3 max-pooling "
                    "with stride 2 after conv1, conv2 and conv5, and nothing else?")
    return None


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "04-1", "the total multiply-adds of AlexNet(two_tower=True) divided by those of "
        "AlexNet()", "a number",
        two_tower_cost,
        number(rel=1e-3, mistakes=lambda: [
            (0.5, "grouping halves conv2, conv4 and conv5 only, not the whole net")])),
    Exercise(
        "04-2", "the input sizes from 220 to 231 at which conv1 (11x11, stride 4, no padding) "
        "tiles the image exactly", "a list of ints, ascending",
        tiling_sizes, _tiling_sizes),
    Exercise(
        "04-3", "the share (0-1) of all parameters held by the fully connected layers of "
        "AlexNet(hidden=1024)", "a number between 0 and 1",
        fc_parameter_share, number(abs_=0.005, share=True)),
    Exercise(
        "04-4", "AlexNet's feature extractor (five convolutions with ReLU and max-pooling) "
        "for 67x67 images with in_channels channels and channels[k] filters in conv k + 1",
        "a function or class feature_extractor(channels=(96, 256, 384, 384, 256), "
        "in_channels=1) that builds an nn.Module",
        feature_extractor, _feature_extractor, write_it=True),
)
