"""Per-layer counts of AlexNet: checked against the counts derived from the paper's Figure 2,
torchvision and hand arithmetic; and notebook 04's written-out AlexNet against AlexNet."""
import ast
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from course_utils.lessons.ch04_architecture import (FIGURE2_COLUMN, PAPER_LAYER_PARAMS,
                                       TORCHVISION_ALEXNET_PARAMS, TORCHVISION_CHANNELS,
                                       ArchitectureError, cost_split,
                                       count_neurons, geometry, grouping_table,
                                       input_size_table, layer_table, paper_alexnet,
                                       paper_claims, paper_comparison, summarize,
                                       torchvision_alexnet_parameters)
from course_utils.models import (AlexNet, AlexNetSmall, count_parameters, feature_side,
                                 layer_parameters)
from course_utils.models import geometry as walk


@pytest.fixture(scope="module")
def two_tower():
    return paper_alexnet(two_tower=True)


@pytest.fixture(scope="module")
def single():
    return paper_alexnet(two_tower=False)


@pytest.fixture(scope="module")
def table(two_tower):
    return layer_table(two_tower)


def test_two_tower_net_has_the_per_layer_counts_derived_from_figure_2(two_tower, single):
    cmp = paper_comparison(two_tower, single)
    assert FIGURE2_COLUMN == "derived from the paper's Figure 2"
    assert list(cmp.columns[:3]) == [FIGURE2_COLUMN, "ours, two towers", "ours, one tower"]
    assert "paper" not in cmp.columns
    assert cmp.loc[list(PAPER_LAYER_PARAMS), "matches Figure 2"].all()
    assert cmp.loc["total", "ours, two towers"] == sum(PAPER_LAYER_PARAMS.values()) == 60_965_224
    assert cmp.loc["total", "ours, one tower"] == count_parameters(single)


def test_grouping_halves_weights_of_conv2_4_5_but_not_biases(two_tower, single):
    g = grouping_table()
    assert list(g["groups"]) == [1, 2, 1, 2, 2]
    # the arithmetic agrees with the real modules
    assert dict(g["parameters, two towers"]) == {
        k: v for k, v in layer_parameters(two_tower).items() if k.startswith("conv")}
    assert dict(g["parameters, one tower"]) == {k: v for k, v in layer_parameters(single).items()
                                                if k.startswith("conv")}
    for layer in ("conv2", "conv4", "conv5"):
        row = g.loc[layer]
        assert row["weights, two towers"] * 2 == row["weights, one tower"]
        assert row["parameters, two towers"] * 2 - row["biases"] == row["parameters, one tower"]
        assert 0.5 < row["ratio"] < 0.501
    assert (g.loc[["conv1", "conv3"], "ratio"] == 1).all()


def test_grouping_rejects_channels_that_do_not_split():
    with pytest.raises(ArchitectureError, match="two towers"):
        grouping_table(channels=(96, 255, 384, 384, 256))


def test_layer_table_shapes_and_mult_adds_match_hand_arithmetic(table, two_tower):
    assert table.loc["conv1", "output shape"] == "96x55x55"
    assert table.loc["pool5", "output shape"] == "256x6x6"
    assert table.loc["fc8", "output shape"] == "1000"
    convs = {n: m for n, m in two_tower.named_modules() if isinstance(m, nn.Conv2d)}
    sides = {"conv1": 55, "conv2": 27, "conv3": 13, "conv4": 13, "conv5": 13}
    for name, side in sides.items():
        conv = convs[f"features.{name}"]
        per_pixel = conv.weight.numel() + conv.bias.numel()
        assert table.loc[name, "mult-adds"] == per_pixel * side * side
    assert table.loc["fc6", "mult-adds"] == 9216 * 4096 + 4096
    assert table["parameters"].sum() == count_parameters(two_tower)
    assert table["% parameters"].sum() == pytest.approx(100, abs=0.05)


def test_convolutions_do_the_compute_and_fc_layers_hold_the_parameters(table):
    split = cost_split(table)
    assert 90 <= split.loc["convolutions", "% mult-adds"] <= 95
    assert split.loc["fully connected", "% parameters"] > 95
    assert split.loc["convolutions", "parameters"] + split.loc["fully connected", "parameters"] \
        == 60_965_224


def test_neuron_count_matches_the_layer_sides(two_tower):
    by_hand = (96 * 55 * 55 + 256 * 27 * 27 + 384 * 13 * 13 * 2 + 256 * 13 * 13
               + 4096 * 2 + 1000)
    assert count_neurons(two_tower) == by_hand == 659_272


def test_paper_claims_table(table):
    claims = paper_claims(table, 659_272, "smoke", "cpu")
    # the paper's own figures are the totals; no per-layer count is quoted as the paper's
    assert claims.loc["parameters (2012, sec. 1)", "paper"] == "60 million"
    assert claims.loc["neurons (2012, sec. 1)", "paper"] == "650,000"
    assert not any(layer in claim for claim in claims.index for layer in PAPER_LAYER_PARAMS)
    assert claims.loc["parameters (2012, sec. 1)", "ours"] == "60,965,224"
    assert "conv3" in claims.loc["largest conv layer's share of parameters (2012, sec. 1)", "ours"]
    assert set(claims["profile"]) == {"smoke"} and set(claims["device"]) == {"cpu"}


def test_227_tiles_and_224_does_not():
    t = input_size_table()
    rows = t.reset_index().set_index(["input", "conv1 padding"])
    assert rows.loc[("227x227", 0), "conv1 tiles exactly"]
    assert rows.loc[("227x227", 0), "fc6 inputs"] == 9216
    assert not rows.loc[("224x224", 0), "conv1 tiles exactly"]
    assert rows.loc[("224x224", 0), "pool5"] == 5
    assert rows.loc[("224x224", 0), "fc6 inputs"] == 6400
    assert rows.loc[("224x224", 2), "conv1"] == 55
    assert rows.loc[("224x224", 2), "fc6 inputs"] == 9216


def test_geometry_agrees_with_a_built_224_net():
    net = AlexNetSmall(input_size=224, hidden=8)
    assert net.classifier.fc6.in_features == geometry(224)["fc6 inputs"]
    with pytest.raises(ArchitectureError, match="too small"):
        geometry(40)


@pytest.mark.parametrize("size,pool", [(227, (3, 2)), (67, (3, 2)), (67, (2, 2)), (100, (3, 2))])
def test_one_geometry_walk_agrees_with_the_built_layers(size, pool):
    net = AlexNetSmall(input_size=size, hidden=8, pool_kernel=pool[0], pool_stride=pool[1])
    x = torch.zeros(1, 1, size, size)
    sides = {}
    for name, layer in net.features.named_children():
        x = layer(x)
        sides[name] = x.shape[-1]
    rows = walk(size, *pool)
    assert [r["layer"] for r in rows] == [n for n in sides if n[:4] in ("conv", "pool")]
    assert all(r["out"] == sides[r["layer"]] for r in rows)
    assert rows[0]["in"] == size and feature_side(size, *pool) == rows[-1]["out"]
    assert geometry(size)["sides"]["pool5"] == walk(size)[-1]["out"]


def test_geometry_walk_with_conv1_padding():
    rows = walk(224, conv1_padding=2)
    assert rows[0] == {"layer": "conv1", "in": 224, "kernel": 11, "stride": 4, "padding": 2,
                       "out": 55}
    with pytest.raises(ValueError, match="vanishes at pool5"):
        walk(40)


def test_torchvision_alexnet_has_its_own_filters():
    assert torchvision_alexnet_parameters() == TORCHVISION_ALEXNET_PARAMS
    ours = paper_alexnet(two_tower=False, channels=TORCHVISION_CHANNELS)
    assert count_parameters(ours) == TORCHVISION_ALEXNET_PARAMS


def test_v2_trick_cuts_conv_compute_not_fc_parameters():
    from course_utils.lessons.ch04_architecture import v1_v2_table

    v = v1_v2_table()
    assert v.loc["V2, one tower", "filters"] == "64, 192, 384, 384, 256"
    assert v.loc["V2, one tower", "fc parameters"] == v.loc["V1, one tower", "fc parameters"]
    mult_adds = "conv mult-adds (M)"
    assert v.loc["V2, one tower", mult_adds] < v.loc["V1, one tower", mult_adds]
    assert v.loc["V1, two towers", "total parameters"] == 60_965_224
    assert v.loc["torchvision alexnet()", "total parameters"] == TORCHVISION_ALEXNET_PARAMS


def test_summarize_wants_a_course_alexnet():
    assert "Conv2d (conv1)" in str(summarize(AlexNetSmall()))
    with pytest.raises(ArchitectureError, match="course AlexNet"):
        summarize(nn.Linear(3, 4))


# ------------------------------------------------------------ notebook 04's written-out AlexNet

NOTEBOOK_04 = Path(__file__).resolve().parent.parent / "notebooks" / "04_alexnet_architecture.ipynb"
WRITTEN_OUT = "# AlexNet, written out"


def _written_out_alexnet() -> nn.Module:
    """Run notebook 04's "AlexNet, written out" cell after the imports of the cells above it."""
    code = ["".join(c["source"]) for c in json.loads(NOTEBOOK_04.read_text())["cells"]
            if c["cell_type"] == "code"]
    found = [i for i, src in enumerate(code) if src.startswith(WRITTEN_OUT)]
    assert len(found) == 1, f"{NOTEBOOK_04.name}: {len(found)} cells start with {WRITTEN_OUT!r}"
    namespace: dict = {}
    for src in code[:found[0]]:
        imports = [n for n in ast.parse(src).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(imports, type_ignores=[]), NOTEBOOK_04.name, "exec"), namespace)
    exec(compile(code[found[0]], NOTEBOOK_04.name, "exec"), namespace)
    return namespace["alexnet_seq"]


def _leaves(model: nn.Module) -> list[str]:
    return [repr(m) for m in model.modules() if not list(m.children())]


def test_notebook_04_writes_out_the_same_alexnet():
    seq = _written_out_alexnet()
    # AlexNet() leaves LRN out by default; the paper's Figure 2 net (and the cell) has it.
    # LRN has no parameters, so the counts are the same.
    ref = AlexNet(lrn=True)
    assert type(seq) is nn.Sequential
    assert count_parameters(seq) == count_parameters(ref) == count_parameters(AlexNet())
    assert [p.shape for p in seq.parameters()] == [p.shape for p in ref.parameters()]
    # the same layers with the same settings, in the same order (also those without weights)
    assert _leaves(seq) == _leaves(ref)
    seq.load_state_dict(dict(zip(seq.state_dict(), ref.state_dict().values())))
    seq.eval(), ref.eval()
    images = torch.randint(0, 256, (2, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        out, expected = seq(images), ref(images)
    assert out.shape == (2, 10)
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-6)
