"""course_utils.lessons.ch03_pooling: the arithmetic and pictures of notebook 03."""
import pandas as pd
import pytest
import torch
from torch import nn

from course_utils.lessons import ch03_pooling as P
from course_utils.experiment import summarize_runs
from course_utils.models import AlexNetSmall, feature_side, geometry


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


def test_claims_from_the_run_layer_tables():
    over, tile = list(P.POOLINGS)
    runs = pd.DataFrame([{"variant": v, "seed": s, "test_acc": a, "valid_acc": a - 0.01,
                          "train_acc": a + g, "gap": g + 0.01}
                         for v, accs, g in ((over, (0.80, 0.84), 0.02), (tile, (0.81, 0.86), 0.03))
                         for s, a in enumerate(accs)])
    summary = summarize_runs(runs)
    rows = {r["claim"]: r["ours"] for r in P.pooling_claims(summary)}
    assert rows["error change from overlapping pooling (points)"] == "+1.50"
    assert rows["train-valid accuracy gap, overlapping vs non-overlapping"] == "+0.030 vs +0.040"
    assert rows["test error, overlapping vs non-overlapping"].startswith("18.0% vs 16.5%")
    paired = {r["claim"]: r["ours"] for r in P.pooling_claims(summary, runs)}
    change = paired["error change from overlapping pooling (points)"]
    # seed by seed +1 and +2 points: the mean, 1.5, is more than two standard errors (0.5)
    assert change == ("+1.50 (seed by seed: 1.50 ± 0.71 over 2 seed(s); "
                      "overlapping pooling less accurate)")
    noisy = runs.assign(test_acc=[0.80, 0.84, 0.81, 0.83])  # +1 and -1 point
    change = {r["claim"]: r["ours"] for r in P.pooling_claims(summarize_runs(noisy), noisy)}
    assert change["error change from overlapping pooling (points)"].endswith("inside the noise)")
