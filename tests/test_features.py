"""Filters, feature maps, neighbours and t-SNE (no training)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.config import PROFILES, CourseError  # noqa: E402
from course_utils.lessons.ch12_what_it_learned import (LayerError, activations, conv1_filters,  # noqa: E402
                                   feature_maps, nearest_neighbours, neighbour_agreement,
                                   penultimate_features, plot_conv1_filters, plot_embedding,
                                   plot_neighbours, tsne_embedding)
from course_utils.models import AlexNetSmall  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AlexNetSmall().eval()


def test_conv1_filters_have_the_papers_shape(model):
    w = conv1_filters(model)
    assert w.shape == (96, 1, 11, 11)
    assert torch.equal(w, model.features.conv1.weight.detach())
    fig = plot_conv1_filters(model)
    assert len([ax for ax in fig.axes if ax.images]) == 96


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


def test_nearest_neighbours_find_the_closest_rows():
    gallery = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [1.0, 1.0]])
    queries = torch.tensor([[0.2, 0.1], [9.0, 1.0]])
    idx = nearest_neighbours(queries, gallery, k=2)
    assert idx.tolist() == [[0, 3], [1, 3]]
    y_g = torch.tensor([0, 1, 2, 0])
    assert neighbour_agreement(idx, torch.tensor([0, 1]), y_g) == pytest.approx(0.75)
    with pytest.raises(CourseError):
        nearest_neighbours(queries, gallery, k=5)
    with pytest.raises(CourseError):
        nearest_neighbours(torch.zeros(1, 3), gallery)


def test_tsne_separates_two_well_separated_clusters():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 20, generator=g)
    b = torch.randn(40, 20, generator=g) + 20
    emb = tsne_embedding(torch.cat([a, b]), perplexity=10)
    assert emb.shape == (80, 2)
    ca, cb = emb[:40].mean(0), emb[40:].mean(0)
    spread = max(emb[:40].std(0).max(), emb[40:].std(0).max())
    assert np.linalg.norm(ca - cb) > 3 * spread
    fig = plot_embedding(emb, [0] * 40 + [1] * 40, ["a", "b"])
    assert fig.axes[0].get_legend() is not None


def test_plot_neighbours_marks_other_classes(model):
    imgs = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    idx = torch.tensor([[1, 2], [0, 3]])
    fig = plot_neighbours(imgs[:2], imgs, idx, classes=["x", "y"], y_query=[0, 1],
                          y_gallery=[0, 1, 0, 0])
    colors = [ax.title.get_color() for ax in fig.axes]
    assert "red" in colors and "black" in colors


def test_paper_table_shows_both_agreements():
    from course_utils.lessons.ch12_what_it_learned import paper_table
    out = paper_table(0.9, 0.6, 5, "smoke", "cpu")
    assert "0.900" in out.loc[0, "ours"] and "0.600" in out.loc[1, "ours"]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_budget_12_has_what_the_notebook_reads(profile):
    from course_utils.budgets import budget

    b = budget("12", profile)
    assert b["gallery"] <= (b.train or 50_000) and b["tsne"] <= b["gallery"]
    assert b.bounds["test_acc"] > 0.1 and b.bounds["agree"] > 0.1
