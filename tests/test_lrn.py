"""course_utils.lessons.ch02_lrn: the helpers of notebook 02."""
import numpy as np
import pytest
import torch
from torch import nn

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
