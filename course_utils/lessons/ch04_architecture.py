"""Counting AlexNet: output shapes, parameters and multiply-adds, layer by layer.

Notebook 04 uses these tables to check the paper's numbers by measurement:

- the per-layer parameter counts of the original two-tower net, derived from the
  layer shapes of the paper's Figure 2 (conv1 34,944 ... fc8 4,097,000; the paper
  itself only says "60 million"), and why grouping halves conv2, conv4 and conv5;
- "One weird trick" (Krizhevsky, 2014): the convolutions do about 90-95% of the
  compute with about 5% of the parameters, the fully connected layers the rest;
- the 224 versus 227 input size;
- AlexNet V1 (96, 256, 384, 384, 256 filters, two towers) against the
  single-tower V2 (64, 192, 384, 384, 256), the net torchvision ships.

Shapes and multiply-adds come from torchinfo (one image, on the CPU); the
parameter counts are exact, so every table here is deterministic. The side
lengths come from the one geometry walk, :func:`course_utils.models.geometry`.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
from torch import nn

from ..config import CourseError
from ..layers import LocalResponseNorm
from ..models import CONV_GEOMETRY, PAPER_CHANNELS, V2_CHANNELS, AlexNet, layer_parameters
from ..models import geometry as walk_geometry

__all__ = ["FIGURE2_COLUMN", "PAPER_LAYER_PARAMS", "TORCHVISION_ALEXNET_PARAMS",
           "TORCHVISION_CHANNELS", "ArchitectureError", "cost_split", "count_neurons",
           "geometry", "grouping_table", "input_size_table", "layer_table", "paper_alexnet",
           "paper_claims", "paper_comparison", "plot_layer_costs", "summarize",
           "torchvision_alexnet_parameters", "v1_v2_table"]

#: Parameters (weights + biases) of each layer of the original net, two towers,
#: 3 input channels, 1000 classes, 227x227 input: our arithmetic from the layer
#: shapes of the paper's Figure 2 (the paper gives only the total, "60 million").
PAPER_LAYER_PARAMS = {
    "conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936,
    "conv5": 442_624, "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000,
}
#: What torchvision's ``alexnet()`` holds (224 input, conv1 padding 2, adaptive
#: pooling to 6x6). Its filters are 64, 192, 384, 256, 256: conv4 is narrower
#: than the V2 of "One weird trick".
TORCHVISION_ALEXNET_PARAMS = 61_100_840
TORCHVISION_CHANNELS = (64, 192, 384, 256, 256)
#: The column of :func:`paper_comparison` with the counts derived from Figure 2.
FIGURE2_COLUMN = "derived from the paper's Figure 2"

_SHOWN = (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.BatchNorm2d, LocalResponseNorm)
_KIND = {nn.Conv2d: "convolution", nn.Linear: "fully connected"}


class ArchitectureError(CourseError, ValueError):
    """A table was asked for with arguments that do not describe an AlexNet."""


# --------------------------------------------------------------------------- building

def paper_alexnet(two_tower: bool = True, channels: Sequence[int] = PAPER_CHANNELS,
                  input_size: int = 227) -> AlexNet:
    """The ImageNet net of the paper: 3 colour channels in, 1000 classes out."""
    return AlexNet(in_channels=3, num_classes=1000, two_tower=two_tower, channels=channels,
                   input_size=input_size)


def _input_shape(model: nn.Module, batch_size: int = 1) -> tuple[int, int, int, int]:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    size = getattr(model, "input_size", None)
    if not convs or size is None:
        raise ArchitectureError("expected a course AlexNet (AlexNet or AlexNetSmall), got "
                                f"{type(model).__name__}")
    return (batch_size, convs[0].in_channels, int(size), int(size))


def summarize(model: nn.Module, depth: int = 3):
    """torchinfo's summary of ``model`` for one image of its input size, on the CPU.

    ``print()`` the result for the familiar table.
    """
    from torchinfo import summary

    return summary(model, input_size=_input_shape(model), device="cpu", depth=depth,
                   col_names=("output_size", "num_params", "mult_adds"),
                   row_settings=("var_names",), verbose=0)


# --------------------------------------------------------------------------- tables

def _shape(size: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in size[1:])  # drop the batch dimension


def layer_table(model: nn.Module) -> pd.DataFrame:
    """One row per convolution, pooling, normalisation and linear layer: output
    shape (channels x height x width), parameters, multiply-adds for one image,
    and each layer's share of the totals.

    Activations, dropout and the input adapter cost no parameters and are left out.
    """
    stats = summarize(model, depth=4)
    rows = []
    for info in stats.summary_list:
        if not isinstance(info.module, _SHOWN):
            continue
        rows.append({
            "layer": info.var_name,
            "type": type(info.module).__name__,
            "output shape": _shape(info.output_size),
            "parameters": int(info.num_params),
            "mult-adds": int(info.macs),
        })
    table = pd.DataFrame(rows).set_index("layer")
    table["% parameters"] = (100 * table["parameters"] / table["parameters"].sum()).round(2)
    table["% mult-adds"] = (100 * table["mult-adds"] / table["mult-adds"].sum()).round(2)
    return table


def cost_split(table: pd.DataFrame) -> pd.DataFrame:
    """Parameters and multiply-adds of the convolutions against the fully
    connected layers, from a :func:`layer_table`."""
    kind = table["type"].map({"Conv2d": "convolutions", "Linear": "fully connected"})
    grouped = table.groupby(kind.fillna("other"))[["parameters", "mult-adds"]].sum()
    grouped = grouped.loc[[k for k in ("convolutions", "fully connected", "other")
                           if k in grouped.index]]
    grouped["% parameters"] = (100 * grouped["parameters"] / grouped["parameters"].sum()).round(1)
    grouped["% mult-adds"] = (100 * grouped["mult-adds"] / grouped["mult-adds"].sum()).round(1)
    grouped.index.name = "layers"
    return grouped


def count_neurons(model: nn.Module) -> int:
    """Units in the conv and fully connected layers' outputs for one image (the
    paper's "650,000 neurons")."""
    stats = summarize(model, depth=4)
    total = 0
    for info in stats.summary_list:
        if isinstance(info.module, (nn.Conv2d, nn.Linear)):
            n = 1
            for s in info.output_size[1:]:
                n *= int(s)
            total += n
    return total


def paper_comparison(two_tower: AlexNet | None = None,
                     single: AlexNet | None = None) -> pd.DataFrame:
    """The per-layer parameter counts derived from the paper's Figure 2
    (:data:`PAPER_LAYER_PARAMS`: our arithmetic from the figure's layer shapes, not
    numbers the paper prints) against the two-tower net built here, with the
    single-tower net beside it."""
    two = layer_parameters(two_tower if two_tower is not None else paper_alexnet(True))
    one = layer_parameters(single if single is not None else paper_alexnet(False))
    table = pd.DataFrame({
        FIGURE2_COLUMN: pd.Series(PAPER_LAYER_PARAMS),
        "ours, two towers": pd.Series(two),
        "ours, one tower": pd.Series(one),
    })
    table.index.name = "layer"
    table.loc["total"] = table.sum()
    table["matches Figure 2"] = table[FIGURE2_COLUMN] == table["ours, two towers"]
    table["two / one tower"] = (table["ours, two towers"] / table["ours, one tower"]).round(3)
    return table


def grouping_table(channels: Sequence[int] = PAPER_CHANNELS, in_channels: int = 3,
                   kernels: Sequence[int] = tuple(k for k, _, _ in CONV_GEOMETRY),
                   grouped: Sequence[int] = (2, 4, 5)) -> pd.DataFrame:
    """Why two towers halve conv2, conv4 and conv5: per convolution, the input
    channels each filter sees, and weights plus biases with and without groups.

    A grouped filter only sees the channels of its own tower (half the input
    channels), so the weights halve; the biases (one per filter) do not.
    """
    if len(channels) != 5 or len(kernels) != 5:
        raise ArchitectureError("give five filter counts and five kernel sizes")
    rows = []
    c_in = in_channels
    for i, (c_out, k) in enumerate(zip(channels, kernels), start=1):
        groups = 2 if i in grouped else 1
        if c_in % groups or c_out % groups:
            raise ArchitectureError(f"conv{i}: {c_in} -> {c_out} channels cannot be split "
                                    "into two towers")
        sees = c_in // groups
        rows.append({
            "layer": f"conv{i}", "input channels": c_in, "filters": c_out,
            "kernel": f"{k}x{k}", "groups": groups, "channels each filter sees": sees,
            "weights, one tower": c_out * c_in * k * k,
            "weights, two towers": c_out * sees * k * k,
            "biases": c_out,
            "parameters, one tower": c_out * c_in * k * k + c_out,
            "parameters, two towers": c_out * sees * k * k + c_out,
        })
        c_in = c_out
    table = pd.DataFrame(rows).set_index("layer")
    table["ratio"] = (table["parameters, two towers"] / table["parameters, one tower"]).round(4)
    return table


def geometry(input_size: int, conv1_padding: int = 0, channels: int = PAPER_CHANNELS[-1]
             ) -> dict:
    """Trace an input side through AlexNet's convolutions and poolings.

    Parameters
    ----------
    input_size : int
        Side of the input in pixels.
    conv1_padding : int
        conv1's padding (the paper's is 0; torchvision pads 224 by 2).
    channels : int
        Filters of conv5, for the number of fc6 inputs.

    Returns
    -------
    dict
        ``sides`` (the side after each layer, the input first), ``conv1 tiles
        exactly`` (``(n + 2p - 11) / 4`` is a whole number) and ``fc6 inputs``.
    """
    try:
        layers = walk_geometry(input_size, conv1_padding=conv1_padding)
    except ValueError as exc:
        raise ArchitectureError(str(exc)) from None
    sides = {"input": int(input_size), **{g["layer"]: g["out"] for g in layers}}
    conv1 = layers[0]
    exact = (conv1["in"] + 2 * conv1["padding"] - conv1["kernel"]) % conv1["stride"] == 0
    n = layers[-1]["out"]
    return {"sides": sides, "conv1 tiles exactly": exact, "fc6 inputs": channels * n * n}


def input_size_table(cases: Sequence[tuple[int, int]] = ((224, 0), (227, 0), (224, 2)),
                     hidden: int = 4096) -> pd.DataFrame:
    """Sides after conv1, pool1, pool2 and pool5 for each ``(input, conv1 padding)``,
    and what that does to fc6. The paper says 224; its numbers need 227 (or 224
    with 2 pixels of padding, as torchvision does)."""
    rows = []
    for size, pad in cases:
        g = geometry(size, pad)
        s = g["sides"]
        rows.append({
            "input": f"{size}x{size}", "conv1 padding": pad,
            "(n + 2p - 11) / 4": round((size + 2 * pad - 11) / 4, 2),
            "conv1 tiles exactly": g["conv1 tiles exactly"],
            "conv1": s["conv1"], "pool1": s["pool1"], "pool2": s["pool2"],
            "pool5": s["pool5"], "fc6 inputs": g["fc6 inputs"],
            "fc6 parameters": g["fc6 inputs"] * hidden + hidden,
        })
    return pd.DataFrame(rows).set_index("input")


def v1_v2_table(input_size: int = 227) -> pd.DataFrame:
    """AlexNet V1 (one and two towers) against V2 from "One weird trick", and the
    filters torchvision's ``alexnet()`` uses: parameters and multiply-adds,
    ImageNet-sized (3 channels in, 1000 out)."""
    nets = {
        "V1, two towers": paper_alexnet(True, PAPER_CHANNELS, input_size),
        "V1, one tower": paper_alexnet(False, PAPER_CHANNELS, input_size),
        "V2, one tower": paper_alexnet(False, V2_CHANNELS, input_size),
        "torchvision alexnet()": paper_alexnet(False, TORCHVISION_CHANNELS, input_size),
    }
    rows = []
    for name, net in nets.items():
        split = cost_split(layer_table(net))
        convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
        rows.append({
            "net": name,
            "filters": ", ".join(str(c.out_channels) for c in convs),
            "conv parameters": int(split.loc["convolutions", "parameters"]),
            "fc parameters": int(split.loc["fully connected", "parameters"]),
            "total parameters": int(split["parameters"].sum()),
            "conv mult-adds (M)": round(split.loc["convolutions", "mult-adds"] / 1e6, 1),
            "total mult-adds (M)": round(split["mult-adds"].sum() / 1e6, 1),
        })
    return pd.DataFrame(rows).set_index("net")


def torchvision_alexnet_parameters() -> int:
    """Parameters of torchvision's ``alexnet()`` (built without weights)."""
    from torchvision.models import alexnet

    return sum(p.numel() for p in alexnet(weights=None).parameters())


def paper_claims(table_two_tower: pd.DataFrame, neurons: int, profile: str,
                 device: str) -> pd.DataFrame:
    """What the papers say about the architecture against our measurements, from
    the two-tower :func:`layer_table` and :func:`count_neurons`.

    Of the numbers, only "60 million" parameters and "650,000" neurons are the
    2012 paper's own figures; the shares are the papers' statements.
    """
    split = cost_split(table_two_tower)
    conv_share = table_two_tower.loc[table_two_tower["type"] == "Conv2d", "% parameters"]
    rows = [
        ("parameters (2012, sec. 1)", "60 million",
         f"{int(table_two_tower['parameters'].sum()):,}"),
        ("neurons (2012, sec. 1)", "650,000", f"{neurons:,}"),
        ("largest conv layer's share of parameters (2012, sec. 1)", "no more than 1%",
         f"{conv_share.max():.2f}% ({conv_share.idxmax()})"),
        ("convolutions' share of compute (2014, sec. 1)", "90-95%",
         f"{split.loc['convolutions', '% mult-adds']:.1f}%"),
        ("convolutions' share of parameters (2014)", "about 5%",
         f"{split.loc['convolutions', '% parameters']:.1f}%"),
        ("fully connected share of parameters (2014)", "about 95%",
         f"{split.loc['fully connected', '% parameters']:.1f}%"),
    ]
    table = pd.DataFrame(rows, columns=["claim", "paper", "ours"]).set_index("claim")
    table["profile"], table["device"] = profile, device
    return table


# --------------------------------------------------------------------------- figure

def plot_layer_costs(table: pd.DataFrame, title: str = "Where AlexNet's parameters and "
                     "compute are"):
    """Side-by-side bars per conv/linear layer: share of parameters, share of
    multiply-adds (from a :func:`layer_table`)."""
    import matplotlib.pyplot as plt
    import numpy as np

    rows = table[table["type"].isin(["Conv2d", "Linear"])]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(x - 0.2, 100 * rows["parameters"] / rows["parameters"].sum(), 0.4,
           label="parameters")
    ax.bar(x + 0.2, 100 * rows["mult-adds"] / rows["mult-adds"].sum(), 0.4,
           label="multiply-adds")
    ax.set_xticks(x, rows.index)
    ax.set(title=title, xlabel="layer", ylabel="share of the net's total (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
