"""course_utils.lessons.ch03_pooling: the arithmetic and pictures of notebook 03."""
import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from course_utils.budgets import budget  # noqa: E402
from course_utils.config import PROFILES  # noqa: E402
from course_utils.experiment import run_variants  # noqa: E402
from course_utils.lessons import ch03_pooling as P  # noqa: E402
from course_utils.models import AlexNetSmall, feature_side, geometry  # noqa: E402

OVER, TILE = list(P.POOLINGS)


def test_alexnet_chain_227():
    assert P.side_chain(227) == "227 -> 55 -> 27 -> 13 -> 6"
    t = P.alexnet_shape_table(227)
    assert t.loc["conv1", "exact"] and t.loc["conv1", "unused pixels"] == 0
    assert list(t.index) == ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5",
                             "pool5"]


@pytest.mark.parametrize("n", [67, 227])
def test_non_overlapping_gives_the_same_sides_for_odd_maps(n):
    a = P.alexnet_shape_table(n, 3, 2)["out"]
    b = P.alexnet_shape_table(n, 2, 2)["out"]
    assert list(a) == list(b)


def test_table_agrees_with_torch():
    for n, k, s, p in [(227, 11, 4, 0), (224, 11, 4, 2), (55, 3, 2, 0), (55, 2, 2, 0)]:
        out = nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, n, n)).shape[-1] if k == 11 else \
            nn.MaxPool2d(k, s)(torch.zeros(1, 1, n, n)).shape[-1]
        assert P.window_output(n, k, s, p)["out"] == out


def test_224_needs_padding():
    t = P.conv1_size_table()
    assert t.loc[(224, 0), "out"] == 54
    assert t.loc[(227, 0), "out"] == 55 and t.loc[(227, 0), "exact"]
    assert t.loc[(224, 2), "out"] == 55 and not t.loc[(224, 2), "exact"]
    assert not t.xs(224, level="in")["exact"].any()  # 224 never tiles exactly


def test_window_errors():
    with pytest.raises(P.PoolingError):
        P.window_output(2, 3, 2)
    with pytest.raises(P.PoolingError):
        P.window_output(10, 3, 0)


def test_pooling_windows_coverage():
    over = P.pooling_windows(9, 3, 2)
    tile = P.pooling_windows(9, 2, 2)
    assert over.max() == 4 and over.min() == 1  # overlaps, covers everything
    assert tile.max() == 1
    assert tile[-1].sum() == 0 and tile[:, -1].sum() == 0  # last row/column never seen
    assert over.sum() == 4 * 4 * 9 and tile.sum() == 4 * 4 * 4


def test_receptive_fields():
    t = P.receptive_field_table()
    assert t.loc["z=3, s=2", "receptive field (input px)"] == 19
    assert t.loc["z=2, s=2", "receptive field (input px)"] == 15
    assert t.loc["z=3, s=2", "shared with neighbour (input px)"] == 11
    assert t.loc["z=2, s=2", "shared with neighbour (conv1 units)"] == 0


def test_variants_build_working_models():
    for kwargs in P.pooling_variants().values():
        m = AlexNetSmall(channels=(8, 8, 8, 8, 8),
                         **{k.removeprefix("module__"): v for k, v in kwargs.items()})
        assert m(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)).shape == (2, 10)


def test_shape_table_is_the_models_geometry():
    t = P.alexnet_shape_table(67)
    walk = geometry(67)
    assert list(t.index) == [g["layer"] for g in walk]
    assert list(t["out"]) == [g["out"] for g in walk]
    assert t.loc["pool5", "out"] == feature_side(67) == 1
    with pytest.raises(P.PoolingError, match="too small"):
        P.alexnet_shape_table(40)


def test_padding_lets_windows_start_before_the_map():
    over = P.pooling_windows(8, 3, 2, 1)
    assert over.min() == 1 and over.max() == 4  # every cell reached, windows overlap
    assert over[0, 0] == 1 and over[1, 1] == 4  # the first window holds cells -1, 0, 1
    assert P.rows_dropped(8, 3, 2) == 1 and P.rows_dropped(8, 3, 2, 1) == 0
    assert P.rows_dropped(9, 2, 2) == 1 and P.rows_dropped(8, 2, 2) == 0
    assert P.rows_dropped(7, 2, 3) == 3  # stride above the window: cells 2, 5 and 6 missed
    with pytest.raises(P.PoolingError):
        P.pooling_windows(1, 4, 2, 1)


@pytest.mark.parametrize("n", [5, 8, 9, 16])
@pytest.mark.parametrize("z,s,p", [(3, 2, 0), (3, 2, 1), (2, 2, 0), (2, 3, 0)])
def test_rows_dropped_are_the_rows_max_pooling_ignores(n, z, s, p):
    """A row no window reaches is one whose values never change MaxPool2d's output."""
    x = torch.randn(1, 1, n, n)
    ignored = 0
    for r in range(n):
        poked = x.clone()
        poked[..., r, :] = 100.0
        ignored += torch.equal(nn.MaxPool2d(z, s, p)(poked), nn.MaxPool2d(z, s, p)(x))
    assert P.rows_dropped(n, z, s, p) == ignored


def test_model_pool_padding_option():
    net = AlexNetSmall(channels=(4, 4, 4, 4, 4), input_size=71, pool_padding=1)
    pools = [m for m in net.features if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3 and all(m.padding == 1 for m in pools)
    assert net(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)).shape == (2, 10)
    sides = {g["layer"]: g["out"] for g in geometry(71, 3, 2, pool_padding=1)}
    assert (sides["pool1"], sides["pool2"], sides["pool5"]) == (8, 4, 2)
    assert feature_side(71, 3, 2, 1) == 2 and feature_side(71) == 1  # unpadded: 1x1
    assert AlexNetSmall(channels=(4,) * 5).features.pool1.padding == 0  # the paper's default
    with pytest.raises(ValueError, match="pool_padding"):
        AlexNetSmall(channels=(4,) * 5, pool_kernel=2, pool_stride=2, pool_padding=2)


def test_last_map_at_67_is_one_pixel_and_at_99_two_by_two():
    t = P.last_map_table((67, 99))
    assert t.loc[(67, "z=3, s=2"), "sides"] == "67 -> 15 -> 7 -> 3 -> 1"
    assert t.loc[(99, "z=3, s=2"), "sides"] == t.loc[(99, "z=2, s=2"), "sides"] \
        == "99 -> 23 -> 11 -> 5 -> 2"
    assert list(t["last map"]) == [1, 1, 2, 2]
    assert list(t["conv5 map"]) == [3, 3, 5, 5]
    # at 67 the last pooling sees the whole 3x3 map with z=3, its top-left 2x2 with z=2
    assert t.loc[(67, "z=3, s=2"), "conv5 cells pooled"] == "9 of 9"
    assert t.loc[(67, "z=2, s=2"), "conv5 cells pooled"] == "4 of 9"
    assert t.loc[(67, "z=3, s=2"), "most windows on a cell"] == 1  # one window: no overlap
    # at 99 the four z=3 windows overlap on conv5's middle row and column
    assert t.loc[(99, "z=3, s=2"), "most windows on a cell"] == 4
    assert t.loc[(99, "z=2, s=2"), "share pooled"] == pytest.approx(16 / 25)
    # z=2 drops the last row and column of every odd map it pools; z=3 drops none there
    assert t.loc[(99, "z=2, s=2"), "rows dropped (pool1, pool2, pool5)"] == "1, 1, 1"
    assert t.loc[(99, "z=3, s=2"), "rows dropped (pool1, pool2, pool5)"] == "0, 0, 0"
    for n in (67, 99):
        for z in (3, 2):
            assert t.loc[(n, f"z={z}, s=2"), "last map"] == feature_side(n, z, 2)
    with pytest.raises(P.PoolingError):
        P.last_map_table((40,))


@pytest.mark.parametrize("name", list(PROFILES))
def test_the_budget_input_is_pooled_whole_by_both_schemes(name):
    """At the budget's input both poolings reach every cell of every map they pool, give
    the same sides and end in a last map larger than one pixel: only the overlap differs."""
    b = budget("03", name)
    n = b["input_size"]
    t = P.last_map_table((n,), P.pooling_schemes())
    assert (t["share pooled"] == 1).all()
    assert set(t["rows dropped (pool1, pool2, pool5)"]) == {"0, 0, 0"}
    assert t["sides"].nunique() == 1 and (t["last map"] >= 2).all()
    over, tile = (t.loc[(n, P._label(*zsp))] for zsp in P.pooling_schemes())
    assert over["most windows on a cell"] > 1 and tile["most windows on a cell"] == 1
    for z, s, p in P.pooling_schemes():
        assert feature_side(n, z, s, p) >= 2
    assert b["dropout"] == 0.0 and b.model[1]["input_size"] == n


def test_the_experiments_variants_are_the_schemes():
    assert P.pooling_schemes() == [(3, 2, 1), (2, 2, 0)]
    for name, kwargs in P.pooling_variants().items():
        z, s, p = (kwargs[f"module__pool_{k}"] for k in ("kernel", "stride", "padding"))
        assert f"z={z}, s={s}" in name and (p == 0 or f"p={p}" in name)


def _runs(test, gap):
    """Runs of both poolings: ``test`` and ``gap`` map a variant to its per-seed values
    (validation accuracy moves with test accuracy)."""
    return pd.DataFrame([{"variant": v, "seed": s, "test_acc": a, "valid_acc": a,
                          "train_acc": a + g, "gap": g}
                         for s in range(len(test[OVER])) for v in (OVER, TILE)
                         for a, g in [(test[v][s], gap[v][s])]])


# overlapping: 1, 2 and 1.5 points more accurate, gaps 0.02, 0.01, 0.015 smaller, seed by seed
BETTER = _runs({OVER: [0.82, 0.85, 0.84], TILE: [0.81, 0.83, 0.825]},
               {OVER: [0.06, 0.09, 0.07], TILE: [0.08, 0.10, 0.085]})
# +1 and -1 point, gaps +0.01 and -0.01: inside the noise
NOISY = _runs({OVER: [0.82, 0.82], TILE: [0.81, 0.83]},
              {OVER: [0.05, 0.05], TILE: [0.04, 0.06]})


def test_paired_differences_on_test_and_valid_accuracy_and_gap():
    d = P.pooling_differences(BETTER)
    assert list(d.index) == [("test_acc", OVER), ("valid_acc", OVER), ("gap", OVER)]
    assert (d["baseline"] == TILE).all() and (d["seeds"] == 3).all()
    assert d.loc[("test_acc", OVER), "diff_mean"] == pytest.approx(0.015)
    assert d.loc[("gap", OVER), "diff_mean"] == pytest.approx(-0.015)
    assert d.loc[("test_acc", OVER), "verdict"] == "higher"  # t = 5.2 on 3 seeds, p = 0.035
    assert d.loc[("gap", OVER), "verdict"] == "lower"
    assert set(P.pooling_differences(NOISY)["verdict"]) == {"inside the noise"}
    two = BETTER[BETTER["seed"] < 2]  # +1 and +2 points on 2 seeds: t = 3, p = 0.2
    assert P.pooling_differences(two).loc[("test_acc", OVER), "verdict"] == "inside the noise"


def test_claims_from_paired_differences():
    rows = {r["claim"]: r for r in P.pooling_claims(BETTER, gap_bound=0.03)}
    error, gap, regime = rows.values()
    assert "-0.4" in error["paper"] and "-0.3" in error["paper"]
    # error is 1 - accuracy: 1.5 points more accurate is 1.5 points less error
    assert error["ours"] == ("-1.50 ± 0.50 points of test error, -1.50 ± 0.50 points of "
                             "validation error (3 paired seed(s))")
    assert error["verdict"].startswith("overlapping pooling raises test accuracy (p = 0.03")
    assert "and raises validation accuracy (p = 0.03" in error["verdict"]
    assert gap["ours"] == "-1.50 ± 0.50 points (3 paired seed(s))"
    assert gap["verdict"].startswith("less overfitting")
    assert regime["verdict"] == "every mean gap >= 0.03: the nets overfit"
    worse = {r["claim"]: r for r in P.pooling_claims(BETTER.assign(
        test_acc=BETTER["test_acc"][::-1].values, valid_acc=BETTER["test_acc"][::-1].values,
        gap=BETTER["gap"][::-1].values), 0.5)}
    error, gap, regime = worse.values()
    assert error["verdict"].startswith("overlapping pooling lowers test accuracy")
    assert gap["verdict"].startswith("more overfitting")
    assert regime["verdict"] == "some mean gap < 0.5: not clearly overfitting"
    # a narrower gap where validation accuracy does not move is underfitting
    flat = {r["claim"]: r for r in P.pooling_claims(BETTER.assign(valid_acc=0.8))}
    assert "underfitting" in flat["train - valid gap change from overlapping pooling"]["verdict"]
    assert "does not change validation accuracy" in \
        flat["error change from overlapping pooling (points)"]["verdict"]
    assert "underfitting" in P.pooling_verdict(BETTER.assign(valid_acc=0.8)).splitlines()[2]
    noisy = P.pooling_claims(NOISY)
    assert noisy[0]["verdict"].startswith("overlapping pooling does not change test accuracy")
    assert noisy[1]["verdict"] == "no measurable change in overfitting"
    assert noisy[2]["verdict"] == "no overfitting bound in this profile"


def test_verdict_covers_every_outcome():
    text = P.pooling_verdict(BETTER, gap_bound=0.03)
    regime, acc, gap = text.splitlines()
    assert "0.073" in regime and "0.088" in regime and "the nets overfit" in regime
    assert acc.startswith("Overlapping pooling raises test accuracy")
    assert "+1.50 ± 0.50 points, p = 0.03" in acc and "over 3 seed(s)" in acc
    assert "and raises validation accuracy" in acc
    assert "-1.50 ± 0.50 points" in gap and "less overfitting" in gap
    regime, acc, gap = P.pooling_verdict(NOISY).splitlines()
    assert "no overfitting bound" in regime
    assert "does not change" in acc and "no measurable change in overfitting" in gap
    assert "hardly overfit" in P.pooling_verdict(NOISY, gap_bound=0.06).splitlines()[0]
    one_seed = BETTER[BETTER["seed"] == 0]
    _, acc, _ = P.pooling_verdict(one_seed).splitlines()
    assert "+1.00 points, p n/a over 1 seed(s)" in acc and "inside the noise" in acc


def _bands(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    X = torch.randint(0, 40, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    X[y == 1, :, :14] += 200
    return X, y


def test_learning_curves_from_real_runs_at_the_budgets_input():
    from types import SimpleNamespace

    (Xtr, ytr), (Xva, yva) = _bands(48, 0), _bands(32, 1)
    splits = SimpleNamespace(X_train=Xtr, y_train=ytr, X_valid=Xva, y_valid=yva,
                             X_test=Xva, y_test=yva)
    runs = run_variants(P.pooling_variants(), splits, seeds=[0], epochs=2, batch_size=16,
                        keep_nets=True, module__channels=(4, 4, 4, 4, 4),
                        module__input_size=budget("03", "smoke")["input_size"],
                        module__dropout=0.0, module__num_classes=2,
                        train_acc=True)
    nets = runs.attrs.pop("nets")
    for (variant, _), net in nets.items():  # the experiment's nets end in a 2x2 map
        m = net.module_
        assert m.features(m.prep(Xtr[:1].to(next(m.parameters()).device))).shape[-2:] == (2, 2)
    curves = P.learning_curves(nets)
    assert list(curves.columns) == ["variant", "seed", "epoch", "train_acc", "valid_acc", "gap"]
    assert len(curves) == 4 and list(curves["epoch"]) == [1, 2, 1, 2]
    assert set(curves["variant"]) == {OVER, TILE}
    assert (curves["gap"] == curves["train_acc"] - curves["valid_acc"]).all()
    h = nets[(OVER, 0)].history
    assert list(curves.query("variant == @OVER")["valid_acc"]) == list(h[:, "valid_acc"])
    with pytest.raises(P.PoolingError, match="keep_nets"):
        P.learning_curves({})


def test_plot_learning_curves():
    curves = pd.DataFrame([{"variant": v, "seed": s, "epoch": e, "train_acc": 0.5 + 0.1 * e,
                            "valid_acc": 0.5 + 0.05 * e, "gap": 0.05 * e}
                           for s in (0, 1) for v in (OVER, TILE) for e in (1, 2, 3)])
    fig = P.plot_learning_curves(curves)
    axes = fig.axes
    assert [ax.get_title() for ax in axes[:2]] == [OVER, TILE]
    assert len(axes) == 3
    assert len(axes[0].lines) == 4  # train and valid for each of two seeds
    assert len(axes[2].lines) == 2 * 2 + 2 + 1  # a thin line per seed, the means, zero
    import matplotlib.pyplot as plt

    plt.close(fig)
