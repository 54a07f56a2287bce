"""course_utils.lessons.ch02_lrn: the helpers of notebook 02."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from course_utils.experiment import summarize_runs
from course_utils.lessons import ch02_lrn as L
from course_utils.layers import LocalResponseNorm


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


def test_denominator_is_k_to_beta_for_small_activations():
    a = torch.full((1, 6, 2, 2), 1e-3)
    d = L.denominator(a)
    assert torch.allclose(d, torch.full_like(d, 2.0 ** 0.75), rtol=1e-6)
    x = torch.rand(1, 6, 2, 2) * 100
    assert torch.allclose(x / L.denominator(x),
                          LocalResponseNorm(convention="paper")(x), rtol=1e-5)
    s = L.denominator_stats({"small": a})
    assert s.loc["small", "median"] == pytest.approx(2 ** 0.75, rel=1e-5)


def test_variants():
    v = L.lrn_variants()
    assert v["LRN (paper)"] == {"module__lrn": True}
    assert v["BatchNorm"] == {"module__batchnorm": True}


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


def _runs(accs: dict) -> pd.DataFrame:
    """A run table of the three variants: ``{variant: [test_acc of seed 0, 1, ...]}``."""
    return pd.DataFrame([{"variant": v, "seed": s, "test_acc": a, "valid_acc": a,
                          "train_acc": a + 0.02, "gap": 0.02, "sec_per_epoch": 1.5}
                         for v, vals in accs.items() for s, a in enumerate(vals)])


def test_claims_from_the_run_layer_tables():
    runs = _runs({L.BASELINE: [0.80, 0.82], "LRN (paper)": [0.81, 0.83],
                  "BatchNorm": [0.85, 0.86]})
    summary = summarize_runs(runs)
    rows = {r["claim"]: r["ours"] for r in L.lrn_claims(summary)}
    assert rows["test error without / with LRN"].startswith("19.0% / 18.0%")
    assert rows["error change from LRN (points)"] == "-1.00"
    assert rows["error change from BatchNorm instead (points)"] == "-4.50"
    assert rows["seconds per epoch: none / LRN / BatchNorm"] == "1.50 / 1.50 / 1.50"
    paired = {r["claim"]: r["ours"] for r in L.lrn_claims(summary, runs)}
    # LRN: +0.01 accuracy on both seeds, no spread: outside the noise
    assert paired["error change from LRN (points)"].startswith("-1.00 (seed by seed: -1.00")
    assert paired["error change from LRN (points)"].endswith("LRN (paper) more accurate)")
    assert "over 2 seed(s)" in paired["error change from BatchNorm instead (points)"]
    noisy = _runs({L.BASELINE: [0.80, 0.82], "LRN (paper)": [0.82, 0.81],
                   "BatchNorm": [0.85, 0.86]})
    text = {r["claim"]: r["ours"] for r in L.lrn_claims(summarize_runs(noisy), noisy)}
    assert text["error change from LRN (points)"].endswith("inside the noise)")
