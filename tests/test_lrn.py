"""course_utils.lessons.ch02_lrn: the helpers of notebook 02, and the notebook's written-out LRN."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data import STD
from course_utils.experiment import _SharedNets, paired_differences, paired_table
from course_utils.layers import LocalResponseNorm
from course_utils.lessons import ch02_lrn as L
from course_utils.models import AlexNetSmall

NOTEBOOK_02 = (Path(__file__).resolve().parent.parent / "notebooks"
               / "02_local_response_normalization.ipynb")
WRITTEN_OUT = "# LRN, written out"


def test_by_hand_matches_layer():
    torch.manual_seed(0)
    x = torch.randn(2, 7, 3, 3) * 40
    ours = LocalResponseNorm(5, 1e-4, 0.75, 2.0, convention="paper")(x).double().numpy()
    np.testing.assert_allclose(L.lrn_by_hand(x.numpy()), ours, rtol=1e-5)
    # unbatched (C,) vector, worked out by hand for channel 0: window = channels 0..2
    a = np.array([10.0, 20.0, 30.0, 40.0])
    b = L.lrn_by_hand(a, size=5, alpha=1e-3, beta=1.0, k=1.0)
    assert b[0] == pytest.approx(10 / (1 + 1e-3 * (100 + 400 + 900)))


def test_check_against_torch_both_conventions():
    x = torch.rand(2, 8, 4, 4) * 50
    t = L.check_against_torch(x)
    assert t["match"].all()
    assert (t["max |difference|"] < 1e-5).all()


def test_convention_table_reproduces_the_same_layer():
    t = L.convention_table()
    x = torch.rand(1, 9, 3, 3) * 100
    paper = LocalResponseNorm(5, 1e-4, 0.75, 2.0, convention="paper")(x)
    row = t.loc["PyTorch nn.LocalResponseNorm"]
    torch_layer = nn.LocalResponseNorm(int(row["window value"]), row["alpha value"],
                                       row["beta"], row["k value"])
    assert torch.allclose(torch_layer(x), paper, rtol=1e-5)
    assert t.loc["TensorFlow tf.nn.lrn", "window value"] == 2  # (5 - 1) / 2
    assert t.loc["Caffe LRN layer", "alpha value"] == pytest.approx(5e-4)
    with pytest.raises(L.LRNError):
        L.convention_table(size=4)


def test_lateral_inhibition_hits_neighbours():
    t = L.lateral_inhibition(channels=9, strong=4)
    d = t["divided by"]
    assert d[2] == pytest.approx(d[6]) and d[2] > 2 * d[0]  # 2 and 6 in the window, 0 not
    assert d[0] == pytest.approx(d[8])
    with pytest.raises(L.LRNError):
        L.lateral_inhibition(channels=3, strong=5)


# --------------------------------------------------------------------------- scale

def test_course_alpha_is_the_paper_alpha_times_the_scale_squared():
    assert L.input_scale() == pytest.approx(255 * STD)
    assert L.course_alpha() == pytest.approx(1e-4 * (255 * STD) ** 2)
    assert 0.7 < L.course_alpha() < 0.9  # Fashion-MNIST's std 0.353: about 90 ** 2 * 1e-4
    assert L.course_alpha(2e-4, scale=10.0) == pytest.approx(2e-2)
    with pytest.raises(L.LRNError):
        L.course_alpha(scale=0.0)


@pytest.mark.parametrize("alpha,c", [(1e-4, None), (1e-3, 7.0)])
def test_lrn_on_scaled_inputs_equals_lrn_with_alpha_times_c_squared(alpha, c):
    """LRN_alpha(c x) = c LRN_{alpha c^2}(x): the derivation in notebook 02."""
    c = L.input_scale() if c is None else c
    torch.manual_seed(0)
    x = torch.rand(2, 12, 5, 5) * 3
    loud = LocalResponseNorm(5, alpha, 0.75, 2.0)(c * x)
    quiet = LocalResponseNorm(5, L.course_alpha(alpha, scale=c), 0.75, 2.0)(x)
    assert torch.allclose(loud, c * quiet, rtol=1e-5, atol=1e-5)
    assert torch.allclose(L.denominator(c * x, alpha=alpha),
                          L.denominator(x, alpha=L.course_alpha(alpha, scale=c)), rtol=1e-5)
    # and the divisor really varies here, so the identity is not a constant's
    assert L.denominator(c * x, alpha=alpha).max() > 1.5 * 2 ** 0.75


def test_conv1_activations_scale_with_the_pixels():
    image = torch.randint(0, 256, (28, 28), dtype=torch.uint8)
    paper = L.conv1_activations(image, pixels="paper", init="paper", seed=3)
    course = L.conv1_activations(image, pixels="normalised", init="paper", seed=3)
    assert paper.shape == (1, 96, 55, 55) and (paper >= 0).all()
    # conv1's bias is 0: the same weights give activations in the ratio of the inputs
    assert torch.allclose(paper, L.input_scale() * course, rtol=1e-4, atol=1e-3)
    assert torch.allclose(L.denominator(paper), L.denominator(course, alpha=L.course_alpha()),
                          rtol=1e-4)
    he = L.conv1_activations(image[None], pixels="paper", init="he", seed=3)
    assert he.abs().mean() > 5 * paper.abs().mean()  # He's weights are ~13x N(0, 0.01)'s


# --------------------------------------------------------------------------- the divisor

def test_denominator_is_k_to_beta_for_small_activations():
    a = torch.full((1, 6, 2, 2), 1e-3)
    d = L.denominator(a)
    assert torch.allclose(d, torch.full_like(d, 2.0 ** 0.75), rtol=1e-6)
    x = torch.rand(1, 6, 2, 2) * 100
    assert torch.allclose(x / L.denominator(x),
                          LocalResponseNorm(convention="paper")(x), rtol=1e-5)
    s = L.denominator_stats({"small": a})
    assert s.loc["small", "median"] == pytest.approx(2 ** 0.75, rel=1e-5)
    assert s.loc["small", "share > 1.1 k^beta"] == 0.0
    with pytest.raises(L.LRNError):
        L.denominator(torch.ones(4, 4))


def test_divisor_table_where_the_divisor_varies():
    torch.manual_seed(0)
    a = torch.rand(4, 10, 6, 6) * torch.linspace(0, 200, 10).reshape(1, 10, 1, 1)
    d = L.denominator(a, alpha=1e-4).flatten().double().numpy()
    t = L.divisor_table({"loud": (a, 1e-4), "quiet": (a / 100, 1e-4)})
    assert list(t.columns) == ["alpha", "mean activation", "min", "median", "90th pct",
                               "99th pct", "max", "share > 1.1 k^beta"]
    row = t.loc["loud"]
    assert row["min"] == pytest.approx(d.min()) and row["max"] == pytest.approx(d.max())
    for col, q in (("median", 0.5), ("90th pct", 0.9), ("99th pct", 0.99)):
        assert row[col] == pytest.approx(np.quantile(d, q), rel=1e-6)
    assert row["share > 1.1 k^beta"] == pytest.approx((d > 1.1 * 2 ** 0.75).mean())
    assert 0.2 < row["share > 1.1 k^beta"] < 1  # it varies: some positions, not all
    assert t.loc["quiet", "99th pct"] < 1.01 * 2 ** 0.75
    assert row["mean activation"] == pytest.approx(float(a.mean()), rel=1e-5)
    # a larger alpha divides more; tuple labels give (layer, case) rows
    two = L.divisor_table({("conv1", "1e-4"): (a, 1e-4), ("conv1", "1e-3"): (a, 1e-3)})
    assert two.index.names == ["layer", "case"]
    assert two.loc[("conv1", "1e-3"), "median"] > two.loc[("conv1", "1e-4"), "median"]
    # denominator_stats is the one-alpha case
    s = L.denominator_stats({"loud": a}, alpha=1e-4)
    pd.testing.assert_frame_equal(s, t.loc[["loud"]])
    with pytest.raises(L.LRNError):
        L.divisor_table({})
    with pytest.raises(L.LRNError):
        L.divisor_table({"x": (a, 1e-4)}, alpha=1e-3)


def test_divisor_sentences_say_whether_lrn_acts():
    torch.manual_seed(0)
    loud = torch.rand(2, 8, 5, 5) * 200
    quiet = torch.rand(2, 8, 5, 5)
    sparse = torch.zeros(2, 8, 10, 10)
    sparse[0, 0, 0, :3] = 60.0  # a few loud positions: the largest divisor moves, 5% do not
    t = L.divisor_table({"loud": (loud, 1e-4), "quiet": (quiet, 1e-4),
                         "sparse": (sparse, 1e-4)})
    lines = L.divisor_sentences(t)
    assert lines[0].startswith("loud: ") and lines[0].endswith("LRN acts.")
    assert f"{t.loc['loud', 'share > 1.1 k^beta']:.1%}" in lines[0]
    assert lines[1].endswith("the constant k^beta: LRN cannot act.")
    assert "median 1.682" in lines[1]
    assert lines[2].endswith("LRN hardly acts."), lines[2]
    two = L.divisor_table({("conv2", "x"): (loud, 1e-4)})
    assert L.divisor_sentences(two)[0].startswith("conv2, x: ")


def test_plot_divisor_histograms():
    import matplotlib
    matplotlib.use("Agg")
    acts = {"conv1": torch.rand(2, 8, 5, 5) * 100, "conv2": torch.rand(2, 6, 3, 3) * 10}
    fig = L.plot_divisor_histograms(acts, {"big": 1.0, "paper": 1e-4})
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == 2 and all(ax.get_xscale() == "log" for ax in axes)
    assert axes[0].get_title().startswith("conv1")
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert labels[:2] == ["big", "paper"]


def test_plot_feature_maps_has_three_rows():
    import matplotlib
    matplotlib.use("Agg")
    x = torch.rand(1, 4, 6, 6) * 300
    x[0, :, 0, 0] = 0.0
    fig = L.plot_feature_maps(x, LocalResponseNorm()(x), channels=(0, 1))
    maps = [ax for ax in fig.axes if ax.get_title()]
    assert len(maps) == 6 and "divided by" in maps[4].get_title()
    ratio = maps[4].get_images()[0].get_array()
    assert not np.isfinite(np.ma.filled(ratio.astype(float), np.nan)[0, 0])  # zero unit: blank


class _SkorchLike:
    """What lrn_inputs needs of a skorch net: ``module_``."""

    def __init__(self, module):
        self.module_ = module


def test_lrn_inputs_hooks_what_the_lrn_layers_receive():
    torch.manual_seed(0)
    channels = (8, 12, 16, 16, 8)
    net = AlexNetSmall(lrn=True, lrn_alpha=0.5, channels=channels).train()
    X = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    got = L.lrn_inputs(net, X, batch_size=2)
    assert set(got) == {"conv1", "conv2"}
    assert got["conv1"].shape == (5, 8, 15, 15) and got["conv2"].shape == (5, 12, 7, 7)
    f = net.features
    with torch.no_grad():
        expected = f.act1(f.conv1(net.prep(X)))
        assert torch.allclose(got["conv1"], expected, atol=1e-5)
        expected2 = f.act2(f.conv2(f.pool1(f.norm1(expected))))
        assert torch.allclose(got["conv2"], expected2, atol=1e-4)
    assert net.training  # its mode is restored
    assert not f.norm1._forward_hooks and not f.norm2._forward_hooks  # hooks removed
    # several nets (skorch nets have module_): concatenated along the batch
    other = AlexNetSmall(lrn=True, channels=channels)
    both = L.lrn_inputs([_SkorchLike(net), _SkorchLike(other)], X)
    assert both["conv1"].shape == (10, 8, 15, 15)
    assert torch.allclose(both["conv1"][:5], got["conv1"])
    with pytest.raises(L.LRNError):
        L.lrn_inputs(AlexNetSmall(channels=channels), X)
    with pytest.raises(L.LRNError):
        L.lrn_inputs([], X)


# --------------------------------------------------------------------------- the experiment

def test_variants():
    v = L.lrn_variants()
    assert list(v) == [L.BASELINE, L.WITH_LRN, L.BATCHNORM] == ["none", "LRN", "BatchNorm"]
    assert v[L.WITH_LRN] == {"module__lrn": True, "module__lrn_alpha": L.course_alpha()}
    assert v[L.BATCHNORM] == {"module__batchnorm": True}
    assert L.lrn_variants(1e-4)[L.WITH_LRN]["module__lrn_alpha"] == 1e-4
    net = AlexNetSmall(**{k.removeprefix("module__"): a for k, a in v[L.WITH_LRN].items()})
    assert net.features.norm1.alpha == pytest.approx(L.course_alpha())


class _NoCopy:
    """A stand-in for a kept net: fails the test if pandas deep-copies it."""

    def __deepcopy__(self, memo):
        raise AssertionError("the nets in runs.attrs were deep-copied")


def _runs(accs: dict, gaps: dict | None = None, nets: bool = True) -> pd.DataFrame:
    """A run table: ``{variant: [test_acc of seed 0, 1, ...]}``, seed-major like
    run_variants, optionally with (un-copyable) nets in attrs, held as run_variants
    holds them."""
    gaps = gaps or {}
    seeds = range(len(next(iter(accs.values()))))
    runs = pd.DataFrame([{"variant": v, "seed": s, "test_acc": accs[v][s], "valid_acc": accs[v][s],
                          "train_acc": accs[v][s] + 0.02,
                          "gap": gaps.get(v, [0.02] * len(accs[v]))[s], "sec_per_epoch": 1.5}
                         for s in seeds for v in accs])
    if nets:
        runs.attrs["nets"] = _SharedNets({(v, s): _NoCopy() for s in seeds for v in accs})
    return runs


def test_the_notebooks_paired_table_keeps_the_runs_nets():
    runs = _runs({"none": [0.80, 0.82, 0.81], "LRN": [0.81, 0.83, 0.82],
                  "BatchNorm": [0.85, 0.86, 0.84]},
                 gaps={"none": [0.05, 0.04, 0.05], "LRN": [0.03, 0.02, 0.04]})
    t = paired_table(runs, L.BASELINE, ("test_acc", "valid_acc", "gap"))
    assert list(t.index) == [("test_acc", "LRN"), ("test_acc", "BatchNorm"),
                             ("valid_acc", "LRN"), ("valid_acc", "BatchNorm"),
                             ("gap", "LRN"), ("gap", "BatchNorm")]
    assert {"t", "p"} <= set(t.columns)
    plain = _runs({"none": [0.80, 0.82, 0.81], "LRN": [0.81, 0.83, 0.82],
                   "BatchNorm": [0.85, 0.86, 0.84]},
                  gaps={"none": [0.05, 0.04, 0.05], "LRN": [0.03, 0.02, 0.04]}, nets=False)
    ref = paired_differences(plain, "none", "gap")
    assert t.loc[("gap", "LRN"), "diff_mean"] == pytest.approx(ref.loc["LRN", "diff_mean"])
    assert t.loc[("test_acc", "LRN"), "verdict"] == "higher"  # +0.01 on every seed
    assert t.loc[("gap", "LRN"), "verdict"] == "lower"
    assert "nets" in runs.attrs  # the caller's table keeps its nets


def test_claims_from_paired_runs():
    runs = _runs({"none": [0.80, 0.82], "LRN": [0.81, 0.83], "BatchNorm": [0.85, 0.86]})
    rows = {r["claim"]: r for r in L.lrn_claims(runs)}
    assert rows["test error (%) without / with LRN"]["ours"] == "19.0 ± 1.4 / 18.0 ± 1.4"
    assert rows["test error (%) without / with LRN"]["paper"] == "CIFAR-10: 13 / 11"
    lrn_row = rows["test accuracy change from LRN (points, seed by seed)"]
    assert "1.4" in lrn_row["paper"] and "1.2" in lrn_row["paper"] and "+2" in lrn_row["paper"]
    assert lrn_row["ours"].startswith("+1.00") and lrn_row["ours"].endswith("higher")
    bn = rows["test accuracy change from BatchNorm instead (points, seed by seed)"]["ours"]
    # t = 9 on 2 seeds is p = 0.07: two standard errors would have called it, the t-test does not
    assert bn.startswith("+4.50 ± 0.71 points, p = 0.07") and bn.endswith("inside the noise")
    assert rows["train-valid gap change from LRN (points, seed by seed)"]["ours"].endswith(
        "inside the noise")
    with pytest.raises(L.LRNError):
        L.lrn_claims(_runs({"none": [0.8], "LRN": [0.8]}))


def test_verdict_is_built_from_the_runs():
    noisy = _runs({"none": [0.80, 0.82, 0.81], "LRN": [0.82, 0.81, 0.815],
                   "BatchNorm": [0.85, 0.87, 0.86]})
    text = L.lrn_verdict(noisy).splitlines()
    assert text[0].startswith("LRN does not change test accuracy against no normalisation (+0.50")
    assert text[1].startswith("BatchNorm raises test accuracy against no normalisation (+5.00")
    assert text[2].startswith("LRN's change in the train-valid gap (+0.00")
    assert text[2].endswith("no measurable change in overfitting.")
    worse = _runs({"none": [0.80, 0.82, 0.81], "LRN": [0.78, 0.80, 0.785],
                   "BatchNorm": [0.80, 0.82, 0.81]},
                  gaps={"none": [0.02] * 3, "LRN": [0.05, 0.06, 0.05]}, nets=False)
    text = L.lrn_verdict(worse).splitlines()
    assert text[0].startswith("LRN lowers test accuracy against no normalisation (-2.17 ± 0.29")
    assert text[2].endswith("more overfitting: the gap widened and validation accuracy fell.")
    # a narrower gap with validation no better is underfitting, not less overfitting
    under = _runs({"none": [0.80, 0.82, 0.81], "LRN": [0.80, 0.82, 0.81],
                   "BatchNorm": [0.80, 0.82, 0.81]},
                  gaps={"none": [0.05, 0.06, 0.05], "LRN": [0.02, 0.025, 0.02]}, nets=False)
    assert "underfitting" in L.lrn_verdict(under).splitlines()[2]


# ----------------------------------------------------------------- notebook 02's written-out LRN

def _written_out_cell() -> str:
    code = ["".join(c["source"]) for c in json.loads(NOTEBOOK_02.read_text())["cells"]
            if c["cell_type"] == "code"]
    found = [src for src in code if src.startswith(WRITTEN_OUT)]
    assert len(found) == 1, f"{NOTEBOOK_02.name}: {len(found)} cells start with {WRITTEN_OUT!r}"
    return found[0]


@pytest.mark.parametrize("n,k,alpha,beta,scale", [(5, 2.0, 1e-4, 0.75, 300.0),
                                                  (3, 1.0, 1e-2, 0.5, 30.0)])
def test_notebook_02_writes_out_the_same_lrn(n, k, alpha, beta, scale):
    torch.manual_seed(n)
    a = torch.rand(3, 9, 4, 5) * scale  # large enough for the divisor to vary
    namespace = {"torch": torch, "F": F, "a": a.clone(), "n": n, "k": k, "alpha": alpha,
                 "beta": beta}
    exec(compile(_written_out_cell(), NOTEBOOK_02.name, "exec"), namespace)
    # the cell uses the variables set before it and does not change them
    assert torch.equal(namespace["a"], a)
    assert (namespace["n"], namespace["k"], namespace["alpha"], namespace["beta"]) == (
        n, k, alpha, beta)
    b = namespace["b"]
    divisor = a / b
    assert divisor.max() > 1.3 * divisor.min()  # LRN acts on this input: not a constant
    course = LocalResponseNorm(n, alpha, beta, k, convention="paper")(a)
    pytorch = nn.LocalResponseNorm(n, alpha * n, beta, k)(a)
    assert b.shape == a.shape
    assert torch.allclose(b, course, rtol=1e-5, atol=1e-6)
    assert torch.allclose(b, pytorch, rtol=1e-5, atol=1e-6)
