"""Filters, their spectra, feature maps, neighbours and t-SNE (notebook 12)."""
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.config import PROFILES, CourseError  # noqa: E402
from course_utils.data import CLASSES  # noqa: E402
from course_utils.lessons import ch12_what_it_learned as L  # noqa: E402
from course_utils.lessons.ch12_what_it_learned import (LayerError, activations, conv1_filters,  # noqa: E402
                                                       feature_maps, nearest_neighbours,
                                                       neighbour_agreement, penultimate_features,
                                                       plot_conv1_filters, plot_embedding,
                                                       plot_neighbours, tsne_embedding)
from course_utils.models import AlexNetSmall  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AlexNetSmall().eval()


def _grating(kx, ky, side=11, phase=0.0):
    x = torch.arange(side, dtype=torch.float64)
    return torch.cos(2 * math.pi * (kx * x[None, :] + ky * x[:, None]) / side + phase)


def _blob(side=11, sx=2.0, sy=2.0):
    x = torch.arange(side, dtype=torch.float64) - side // 2
    return torch.exp(-(x[None, :] ** 2 / (2 * sx ** 2) + x[:, None] ** 2 / (2 * sy ** 2)))


# --------------------------------------------------------------------------- the filters

def test_conv1_filters_have_the_papers_shape(model):
    w = conv1_filters(model)
    assert w.shape == (96, 1, 11, 11)
    assert torch.equal(w, model.features.conv1.weight.detach())
    fig = plot_conv1_filters(model)
    assert len([ax for ax in fig.axes if ax.images]) == 96


@pytest.mark.parametrize("k", [(2, 0), (0, 3), (1, 1), (3, -2), (4, 1)])
def test_a_pure_grating_has_orientation_index_one(k):
    g = _grating(*k, phase=0.7)
    assert L.orientation_index(g).item() == pytest.approx(1.0, abs=1e-9)
    # the same with a channel dimension and an offset: the mean (DC) is removed first
    assert L.orientation_index((g + 3.0)[None, None]).item() == pytest.approx(1.0, abs=1e-9)


def test_orientation_index_of_noise_is_low_and_of_round_blobs_zero():
    g = torch.Generator().manual_seed(0)
    noise = L.orientation_index(torch.randn(500, 1, 11, 11, generator=g))
    assert noise.shape == (500,)
    assert 0.05 < noise.mean().item() < 0.2 and noise.max().item() < 0.5
    assert L.orientation_index(_blob()).item() == pytest.approx(0.0, abs=1e-9)
    # an elongated blob prefers one orientation, less purely than a grating
    assert 0.5 < L.orientation_index(_blob(sx=3.0, sy=0.8)).item() < 1.0
    assert L.orientation_index(torch.ones(11, 11)).item() == 0.0  # no power at all
    with pytest.raises(CourseError):
        L.orientation_index(torch.zeros(2, 2, 2, 11, 11))


def test_low_frequency_share_counts_the_power_below_the_cutoff():
    # white noise: the share of the 120 non-DC frequency bins at |f| <= 0.25 (20 of them)
    f = torch.fft.fftfreq(11)
    bins = int(((f[:, None] ** 2 + f[None, :] ** 2).sqrt() <= L.LOW_FREQUENCY).sum()) - 1
    g = torch.Generator().manual_seed(1)
    noise = L.low_frequency_share(torch.randn(3000, 11, 11, generator=g))
    assert noise.mean().item() == pytest.approx(bins / 120, abs=0.01)
    assert L.low_frequency_share(_blob()).item() > 0.99
    assert L.low_frequency_share(_grating(1, 1)).item() == pytest.approx(1.0)  # |f| = 0.13
    assert L.low_frequency_share(_grating(3, 2)).item() == pytest.approx(0.0, abs=1e-9)


def _table(trained, initial):
    return L.filter_table(trained, initial)


def test_filter_table_and_verdict_say_more_oriented_when_filters_are_gratings():
    g = torch.Generator().manual_seed(2)
    w0 = 0.1 * torch.randn(96, 1, 11, 11, generator=g, dtype=torch.float64)
    grat = torch.stack([_grating(1 + i % 2, i % 3 - 1) for i in range(96)])[:, None]
    w = w0 + 0.3 * grat  # training added smooth oriented patterns
    table = _table(w, w0)
    assert list(table.index.get_level_values("kernels")[:3]) == ["trained W", "change W - W0",
                                                                 "initial W0"]
    o = table.xs("orientation index")
    assert o.loc["trained W", "verdict"] == "higher" and o.loc["change W - W0", "mean"] > 0.99
    assert o.loc["trained W", "above init p95"] > 50 and o.loc["initial W0", "above init p95"] <= 5
    assert table.loc[("low-frequency share", "change W - W0"), "verdict"] == "higher"
    assert o.loc["trained W", "p"] < 0.05 and o.loc["trained W", "t"] > 0
    text = L.filter_verdict(table)
    lines = text.splitlines()
    assert len(lines) == 5
    assert all("over 96 filters (unpaired, Welch), higher" in x for x in lines[:4])
    assert lines[0].startswith("Orientation index of the trained conv1 filters")
    assert lines[1].startswith("Orientation index of what training changed (W - W0)")
    assert "(smoothness) of the trained conv1 filters" in lines[2]
    assert lines[4].startswith("So conv1 formed oriented filters in this run")


def test_filter_verdict_says_when_the_change_is_oriented_but_w_is_still_noise():
    g = torch.Generator().manual_seed(5)
    w0 = torch.randn(96, 1, 11, 11, generator=g, dtype=torch.float64)
    grat = torch.stack([_grating(1 + i % 2, i % 3 - 1) for i in range(96)])[:, None]
    change = 0.02 * grat + 0.002 * torch.randn(w0.shape, generator=g, dtype=torch.float64)
    table = _table(w0 + change, w0)  # a small oriented change on a large random start
    o = table.xs("orientation index")
    assert o.loc["change W - W0", "verdict"] == "higher"
    assert o.loc["trained W", "verdict"] == "inside the noise"
    assert L.filter_verdict(table).splitlines()[-1].startswith(
        "So conv1 did not form filters that show in W")


def test_filter_verdict_says_no_more_oriented_than_noise_for_noise():
    g = torch.Generator().manual_seed(3)
    w0 = torch.randn(96, 1, 11, 11, generator=g)
    w = w0 + 0.05 * torch.randn(96, 1, 11, 11, generator=g)  # only noise added
    table = _table(w, w0)
    assert set(table["verdict"]) <= {"inside the noise", "(reference)"}
    text = L.filter_verdict(table)
    lines = text.splitlines()
    assert all(line.endswith("inside the noise).") or "inside the noise;" in line
               for line in lines[:4])
    assert "higher" not in text and "lower" not in text
    assert lines[4].startswith("So conv1 did not form oriented filters in this run")


# --------------------------------------------------------------------------- feature maps

def test_feature_maps_match_a_manual_forward_pass(model):
    x = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    maps = feature_maps(model, x, "act1")
    assert maps.shape == (96, 15, 15)  # 67 -> (67 - 11) / 4 + 1
    with torch.no_grad():
        manual = model.features.act1(model.features.conv1(model.prep(x[None])))[0]
    assert torch.allclose(maps, manual, atol=1e-5)
    assert (maps >= 0).all()  # after the ReLU
    with pytest.raises(LayerError, match="conv1"):
        feature_maps(model, x, "conv9")
    with pytest.raises(CourseError):
        feature_maps(model, x[None], "act1")


def test_penultimate_features_are_fc7_after_relu(model):
    x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    f = penultimate_features(model, x, batch_size=2)
    assert f.shape == (5, 128) and (f >= 0).all()
    with torch.no_grad():
        logits = model(x)
    assert torch.allclose(model.classifier.fc8(f), logits, atol=1e-4)
    assert torch.allclose(activations(model, x, "classifier.act7"), f, atol=1e-5)
    assert not model.training  # capture_outputs restores the mode it found


# --------------------------------------------------------------------------- neighbours

def test_nearest_neighbours_find_the_closest_rows():
    gallery = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [1.0, 1.0]])
    queries = torch.tensor([[0.2, 0.1], [9.0, 1.0]])
    idx = nearest_neighbours(queries, gallery, k=2)
    assert idx.tolist() == [[0, 3], [1, 3]]
    assert nearest_neighbours(queries, gallery, k=2, chunk=1).tolist() == idx.tolist()
    y_g = torch.tensor([0, 1, 2, 0])
    assert neighbour_agreement(idx, torch.tensor([0, 1]), y_g) == pytest.approx(0.75)
    with pytest.raises(CourseError):
        nearest_neighbours(queries, gallery, k=5)
    with pytest.raises(CourseError):
        nearest_neighbours(torch.zeros(1, 3), gallery)


def _neighbour_case(p_good, p_bad, n=1000, k=4, seed=0):
    """Neighbours that share the query's class with probability p_good ("fc7") and p_bad
    ("pixel"), on a gallery holding every class."""
    g = torch.Generator().manual_seed(seed)
    y_gallery = torch.arange(100) % 10
    y_query = torch.randint(0, 10, (n,), generator=g)

    def pick(p):
        same = torch.rand(n, k, generator=g) < p
        cls = torch.where(same, y_query[:, None], (y_query[:, None] + 1) % 10)
        return cls + 10 * torch.randint(0, 10, (n, k), generator=g)  # an index of that class

    return {"fc7": pick(p_good), "pixel": pick(p_bad)}, y_query, y_gallery


def test_agreement_folds_are_disjoint_and_average_to_the_whole():
    neighbours, y_q, y_g = _neighbour_case(0.9, 0.7, n=1003)
    folds = L.agreement_folds(neighbours, y_q, y_g, folds=5, seed=1)
    assert list(folds.columns) == ["variant", "fold", "queries", "agreement"]
    assert folds.groupby("variant")["queries"].sum().tolist() == [1003, 1003]
    for space, idx in neighbours.items():
        part = folds[folds["variant"] == space]
        whole = neighbour_agreement(idx, y_q, y_g)
        assert np.average(part["agreement"], weights=part["queries"]) == pytest.approx(whole)
        assert part["agreement"].std() > 0
    with pytest.raises(CourseError):
        L.agreement_folds(neighbours, y_q, y_g, folds=1)


@pytest.mark.parametrize("p_fc7, p_pixels, verdict, words", [
    (0.9, 0.7, "higher", "Fc7 distance raises the share"),
    (0.6, 0.8, "lower", "Fc7 distance lowers the share"),
    (0.8, 0.8, "inside the noise", "Fc7 distance does not change the share"),
])
def test_neighbour_summary_and_verdict_follow_the_numbers(p_fc7, p_pixels, verdict, words):
    neighbours, y_q, y_g = _neighbour_case(p_fc7, p_pixels, n=5000, seed=2)
    folds = L.agreement_folds(neighbours, y_q, y_g, folds=5, seed=0)
    summary = L.neighbour_summary(folds)
    assert list(summary.index) == ["fc7", "pixel"]
    assert summary.loc["fc7", "mean"] == pytest.approx(p_fc7, abs=0.02)
    assert summary.loc["fc7", "std"] > 0 and summary.loc["fc7", "folds"] == 5
    diff = folds[folds.variant == "fc7"]["agreement"].to_numpy() - \
        folds[folds.variant == "pixel"]["agreement"].to_numpy()
    assert summary.loc["fc7", "diff_mean"] == pytest.approx(diff.mean())
    assert summary.loc["fc7", "diff_std"] == pytest.approx(diff.std(ddof=1))
    assert summary.loc["fc7", "verdict"] == verdict
    assert pd.isna(summary.loc["pixel", "verdict"])
    assert (summary.loc["fc7", "p"] < 0.05) == (verdict != "inside the noise")
    text = L.neighbour_verdict(summary)
    assert text.startswith(words) and "±" in text and "over 5 folds" in text
    assert text.endswith(f"{verdict}, as the paper's Figure 4 suggests." if verdict == "higher"
                         else f"{verdict}.")


def test_paper_table_shows_the_measured_claims():
    g = torch.Generator().manual_seed(4)
    w0 = torch.randn(96, 1, 11, 11, generator=g)
    filters = L.filter_table(w0 + 0.01 * torch.randn(96, 1, 11, 11, generator=g), w0)
    neighbours, y_q, y_g = _neighbour_case(0.9, 0.7, n=2000)
    summary = L.neighbour_summary(L.agreement_folds(neighbours, y_q, y_g))
    out = L.paper_table(filters, summary, k=4, gallery=100, profile="smoke", device="cpu")
    assert len(out) == 3 and set(out["profile"]) == {"smoke"}
    assert "correlates" not in out.loc[0, "ours"]
    with_r = L.paper_table(filters, summary, k=4, gallery=100, profile="smoke", device="cpu",
                           r_init=0.98765)
    assert with_r.loc[0, "ours"].endswith("W correlates 0.988 with its initial values W0")
    fc7, pix = summary.loc["fc7"], summary.loc["pixel"]
    assert f"{fc7['mean']:.3f} ± {fc7['std']:.3f}" in out.loc[1, "ours"]
    assert f"{pix['mean']:.3f} ± {pix['std']:.3f}" in out.loc[2, "ours"]
    assert out.loc[2, "ours"].endswith("over 5 folds, higher")
    assert "inside the noise" in out.loc[0, "ours"]


# --------------------------------------------------------------------------- plots

def test_tsne_separates_two_well_separated_clusters():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 20, generator=g)
    b = torch.randn(40, 20, generator=g) + 20
    emb = tsne_embedding(torch.cat([a, b]), perplexity=10)
    assert emb.shape == (80, 2)
    ca, cb = emb[:40].mean(0), emb[40:].mean(0)
    spread = max(emb[:40].std(0).max(), emb[40:].std(0).max())
    assert np.linalg.norm(ca - cb) > 3 * spread


def test_the_embedding_legend_shows_every_class_name_whole_inside_the_figure():
    g = np.random.default_rng(0)
    emb = g.normal(size=(200, 2))
    fig = plot_embedding(emb, np.arange(200) % 10, CLASSES)
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list(CLASSES)
    assert "T-shirt/top" in CLASSES and "Ankle boot" in CLASSES
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box, page = legend.get_window_extent(renderer), fig.bbox
    assert box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1
    assert box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1
    axes = fig.axes[0].get_window_extent(renderer)
    assert box.y1 <= axes.y0  # below the axes, covering no points


def test_plot_neighbours_titles_show_full_class_names_and_mark_other_classes():
    imgs = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    idx = torch.tensor([[1, 2], [0, 3]])
    fig = plot_neighbours(imgs[:2], imgs, idx, classes=CLASSES, y_query=[0, 9],
                          y_gallery=[0, 9, 0, 3])
    titles = [ax.title.get_text() for ax in fig.axes]
    assert titles == ["T-shirt/top", "Ankle boot", "T-shirt/top", "Ankle boot", "T-shirt/top",
                      "Dress"]
    colors = [ax.title.get_color() for ax in fig.axes]
    assert colors == ["black", "red", "black", "black", "red", "red"]


def test_plot_conv1_filters_scales_symmetrically():
    w = torch.zeros(8, 1, 11, 11)
    w[0, 0, 0, 0], w[1, 0, 0, 0] = 2.0, -0.5
    fig = plot_conv1_filters(w, scale="shared")
    limits = {img.get_clim() for ax in fig.axes for img in ax.images}
    assert limits == {(-2.0, 2.0)}
    fig = plot_conv1_filters(w, scale="per-filter")
    first, second = (ax.images[0].get_clim() for ax in fig.axes[:2])
    assert first == (-2.0, 2.0) and second == (-0.5, 0.5)
    assert {img.get_clim() for ax in plot_conv1_filters(w, limit=4.0).axes
            for img in ax.images} == {(-4.0, 4.0)}
    with pytest.raises(CourseError):
        plot_conv1_filters(w, scale="own")


def test_plot_conv1_filters_draws_two_sets_side_by_side():
    import matplotlib.pyplot as plt

    w = torch.randn(8, 1, 11, 11, generator=torch.Generator().manual_seed(0))
    fig = plt.figure(layout="constrained")
    left, right = fig.subfigures(1, 2)
    assert plot_conv1_filters(w, fig=left, cols=4) is left
    plot_conv1_filters(2 * w, fig=right, cols=4)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 16
    assert {ax.images[0].get_clim()[1] for ax in drawn} == {
        float(w.abs().max()), float(2 * w.abs().max())}
    plt.close(fig)


# --------------------------------------------------------------------------- the budget

@pytest.mark.parametrize("profile", list(PROFILES))
def test_budget_12_has_what_the_notebook_reads(profile):
    from course_utils.budgets import budget
    from course_utils.experiment import SELECTIONS

    b = budget("12", profile)
    assert b["gallery"] <= (b.train or 50_000) and b["tsne"] <= b["gallery"]
    assert 2 <= b["folds"] <= (b.test or 10_000) and b["select"] in SELECTIONS
    assert b.bounds["test_acc"] > 0.1 and b.bounds["agree"] > 0.1
    assert b.model == ("AlexNetSmall", {})  # the paper's 96 conv1 filters
    # the training recipe: floats, so that a rehearsal ($COURSE_SCALE) keeps them as they are
    assert b["optimizer"] in ("sgd", "adam", "adamw")
    for key in ("lr", "momentum", "weight_decay", "conv1_lr", "conv1_weight_decay", "warmup"):
        assert isinstance(b[key], float), key
    assert b["lr"] > 0 and b["conv1_lr"] > 0
    assert b["weight_decay"] >= 0 and b["conv1_weight_decay"] >= 0
    assert 0 <= b["warmup"] <= 1 and 0 <= b["momentum"] < 1
