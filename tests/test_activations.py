"""course_utils.lessons.ch01_activations: the pieces of notebook 01."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from course_utils.budgets import budget
from course_utils.lessons import ch01_activations as A
from course_utils.models import SmallCNN


def test_curves_and_derivatives_match_autograd():
    x = np.linspace(-5, 5, 11)
    c = A.activation_curves(x)
    t = torch.tensor(x, requires_grad=True)
    for name, fn in (("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("relu", torch.relu)):
        (g,) = torch.autograd.grad(fn(t).sum(), t)
        np.testing.assert_allclose(c[name], fn(t).detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(c[f"d_{name}"], g.numpy(), rtol=1e-12)
    assert c["d_sigmoid"].max() == pytest.approx(0.25)


def test_saturation_bound():
    z = A.sigmoid_saturation_bound(0.01)
    s = 1 / (1 + math.exp(-z))
    assert s * (1 - s) == pytest.approx(0.01)
    assert z == pytest.approx(4.585, abs=1e-3)
    with pytest.raises(A.ActivationError):
        A.sigmoid_saturation_bound(0.3)


def test_saturation_share_counts_saturated_units():
    model = nn.Sequential(nn.Identity(), nn.Sigmoid())
    X = torch.tensor([[-10.0, 0.0, 10.0, 1.0]])
    share = A.saturation_share(model, X)
    assert share.loc["1", "saturated share"] == pytest.approx(0.5)  # -10, 10 saturate
    assert share.loc["all", "saturated share"] == pytest.approx(0.5)
    s = torch.sigmoid(X)
    assert share.loc["1", "mean local gradient"] == pytest.approx(float((s * (1 - s)).mean()))
    with pytest.raises(A.ActivationError):
        A.saturation_share(nn.Sequential(nn.ReLU()), X)


def test_dead_unit_share_by_channel():
    conv = nn.Conv2d(1, 4, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 0.0, 0.0]).view(4, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 0.0, -1.0, 1.0]))
    model = nn.Sequential(conv, nn.ReLU())
    X = torch.rand(5, 1, 3, 3) + 0.1  # positive inputs
    share = A.dead_unit_share(model, X)
    # channel 1 (-x) and channel 2 (bias -1) never fire; 0 and 3 do
    assert share["1"] == pytest.approx(0.5)
    assert share["all"] == pytest.approx(0.5)


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_small_cnn_shapes_and_same_init(act):
    torch.manual_seed(0)
    m = SmallCNN(act, depth=4, width=8)
    torch.manual_seed(0)
    r = SmallCNN("relu", depth=4, width=8)
    x = torch.randint(0, 255, (3, 1, 28, 28), dtype=torch.uint8)
    assert m(x).shape == (3, 10)
    assert [n for n, _ in A.weight_layers(m)] == ["conv1", "conv2", "conv3", "conv4", "fc"]
    for (_, a), (_, b) in zip(A.weight_layers(m), A.weight_layers(r)):
        assert torch.equal(a.weight, b.weight)  # same init whatever the activation
    with pytest.raises(ValueError, match="activation"):
        SmallCNN("swish")
    with pytest.raises(A.ActivationError):
        A.make_activation_net("swish", lr=0.1, max_epochs=1)


def test_gradient_flow_sigmoid_vanishes_more_than_relu():
    torch.manual_seed(1)
    X = torch.randint(0, 255, (32, 1, 28, 28), dtype=torch.uint8)
    y = torch.arange(32) % 10
    g = A.gradient_flow(X, y, depth=6)
    assert list(g.columns) == ["sigmoid", "tanh", "relu"]
    assert list(g.index)[0] == "conv1" and list(g.index)[-1] == "fc"
    assert (g > 0).all().all()
    # first layer relative to last: far smaller with sigmoid than with ReLU
    ratio = g.loc["conv1"] / g.loc["fc"]
    assert ratio["sigmoid"] < ratio["relu"] / 10


def test_time_to_target_interpolates():
    assert A.time_to_target([0.5, 0.3, 0.1], [2, 2, 2], 0.3) == (2.0, 4.0)
    ep, sec = A.time_to_target([0.5, 0.3, 0.1], [2, 2, 4], 0.2)
    assert ep == pytest.approx(2.5) and sec == pytest.approx(6.0)
    assert A.time_to_target([0.1], [3], 0.2) == (1.0, 3.0)
    ep, sec = A.time_to_target([0.5, 0.4], [1, 1], 0.2)
    assert math.isnan(ep) and math.isnan(sec)
    with pytest.raises(A.ActivationError):
        A.time_to_target([0.5], [1, 2], 0.2)


def _tiny_problem():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 10
    X = torch.randint(0, 30, (120, 1, 28, 28), generator=g, dtype=torch.uint8)
    for c in range(10):  # a bright bar per class
        X[y == c, :, 2 * c:2 * c + 3, :] += 220
    return X, y


@pytest.fixture(scope="module")
def tiny_nets():
    X, y = _tiny_problem()
    return A.train_activations(X, y, ("relu", "sigmoid"), lr=0.05, max_epochs=3,
                               module__width=8, batch_size=20, progress=False, device="cpu")


def test_train_and_speed_table_on_a_tiny_problem(tiny_nets):
    nets = tiny_nets
    curves = A.training_curves(nets)
    assert curves.shape == (3, 2) and curves.index[0] == 1
    table = A.speed_table(nets, target=0.9)
    assert table.loc["relu", "slowdown_vs_relu"] == pytest.approx(1.0)
    assert set(table.columns) >= {"epochs_to_target", "seconds_to_target", "final_train_error"}
    with pytest.raises(A.ActivationError):
        A.speed_table(nets, 0.5, reference="tanh")


def test_budget_rows_grow_with_the_profile():
    rows = [budget("01", p) for p in ("smoke", "quick", "full")]
    assert [r.epochs for r in rows] == sorted(r.epochs for r in rows)
    assert [r.train for r in rows] == sorted(r.train for r in rows)
    for r in rows:
        assert {"width", "target_error", "lr", "bad_lr", "dead_epochs", "grad_depth",
                "batch"} <= set(r)
        # a real check in every profile: ReLU's error well under chance (0.9), dead ReLUs
        # more common at the bad learning rate
        assert r.bounds["relu_final_error"] < 0.9 and r.bounds["dead_margin"] >= 0.0


def test_check_figure1_and_dead_relus_report_and_raise(tiny_nets):
    nets = tiny_nets
    speed = A.speed_table(nets, target=0.9)
    err = speed.loc["relu", "final_train_error"]
    text = A.check_figure1(speed, nets, {"relu_final_error": err, "relu_loss_drop": -10.0,
                                         "best_final_error": 1.0})
    assert text.count("ok: ") == 3 and "ReLU's training loss fell" in text
    with pytest.raises(A.BoundError, match="ReLU's final training error"):
        A.check_figure1(speed, nets, {"relu_final_error": err - 0.01})
    with pytest.raises(A.BoundError, match="loss fell"):
        A.check_figure1(speed, nets, {"relu_loss_drop": 10.0})
    slow = speed.copy()
    slow.loc["relu", "epochs_to_target"] = float("nan")  # ReLU never reached the target
    slow.loc["sigmoid", "epochs_to_target"] = 2.0
    with pytest.raises(A.BoundError, match="not slower"):
        A.check_figure1(slow, nets, {"relu_not_slower_than_sigmoid": True})
    assert A.check_figure1(slow, nets, {"relu_not_slower_than_sigmoid": False}) == \
        "no bound to check"
    dead = pd.DataFrame({"all": [0.0, 0.5]}, index=["lr=0.01", "lr=0.5"])
    assert "0.500 > 0.2" in A.check_dead_relus(dead, {"dead_margin": 0.2})
    with pytest.raises(A.BoundError, match="dead share"):
        A.check_dead_relus(dead, {"dead_margin": 0.5})
