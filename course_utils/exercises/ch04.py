"""Notebook 04's exercises (AlexNet's architecture): their cases and reference solutions."""
from __future__ import annotations

from .judge import Exercise, number, register, whole_numbers

__all__ = ["EXERCISES", "fc_parameter_share", "tiling_sizes", "two_tower_cost"]


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
)
