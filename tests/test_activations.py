"""course_utils.lessons.ch01_activations: the pieces of notebook 01."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from course_utils.budgets import budget
from course_utils.experiment import ExperimentError
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
    with pytest.raises(ValueError, match="no Sigmoid layers"):
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


def test_budget_rows_grow_with_the_profile():
    rows = [budget("01", p) for p in ("smoke", "quick", "full")]
    assert [r.epochs for r in rows] == sorted(r.epochs for r in rows)
    assert [r.train_images for r in rows] == sorted(r.train_images for r in rows)
    for r in rows:
        assert {"width", "depths", "inits", "target_error", "lrs", "sweep_epochs", "bad_lr",
                "dead_epochs", "grad_depth", "batch"} <= set(r)
        assert r.seeds >= 3 and len(r["lrs"]) >= 2
        assert r.variants == 3 * len(r["depths"]) * len(r["inits"])
        # a real check in every profile: ReLU's error well under chance (0.9), dead ReLUs
        # more common at the bad learning rate
        assert r.bounds["relu_final_error"] < 0.9 and r.bounds["dead_margin"] >= 0.0
    # the quick target is stricter than the paper's 25%
    assert rows[1]["target_error"] < A.PAPER_TARGET_ERROR


def test_lr_sweep_picks_each_activations_fastest_rate():
    X, y = _tiny_problem()
    sweep = A.lr_sweep(X, y, (0.001, 0.05), 3, activations=("relu", "sigmoid"),
                       module__width=8, batch_size=20, progress=False, device="cpu")
    assert list(sweep.columns[:4]) == ["activation", "depth", "init", "lr"] and len(sweep) == 4
    best = A.best_learning_rates(sweep)
    for name, rows in sweep.groupby("activation"):
        assert best[name] == rows.loc[rows["final_train_error"].idxmin(), "lr"]
    # a diverged run (NaN) never wins; ties go to the smaller rate
    fake = pd.DataFrame({"activation": ["relu"] * 3, "lr": [0.01, 0.1, 1.0],
                         "final_train_error": [0.3, 0.3, float("nan")]})
    assert A.best_learning_rates(fake) == {"relu": 0.01}


def _runs(relu_epochs, tanh_epochs, depth=3):
    rows = []
    for seed, (r, t) in enumerate(zip(relu_epochs, tanh_epochs)):
        for name, ep in (("relu", r), ("tanh", t), ("sigmoid", float("nan"))):
            rows.append({"depth": depth, "init": "xavier", "activation": name, "seed": seed,
                         "lr": 0.03, "epochs_to_target": ep, "seconds_to_target": 2 * ep,
                         "final_train_error": 0.1 if name != "sigmoid" else 0.9,
                         "train_loss_drop": 1.0, "test_acc": 0.87 if name != "sigmoid" else 0.1,
                         "errors": [0.5, 0.1], "seconds": [1.0, 2.0]})
    return pd.DataFrame(rows)


def test_slowdown_is_paired_by_seed_with_a_noise_verdict():
    slow = A.slowdown_table(_runs([2.0, 2.2, 2.4], [6.0, 6.5, 7.4]))
    tanh = slow.loc[(3, "xavier", "tanh")]
    assert tanh["ratio_mean"] == pytest.approx(np.mean([3.0, 6.5 / 2.2, 7.4 / 2.4]))
    assert tanh["verdict"] == "slower" and tanh["paired seeds"] == 3
    assert slow.loc[(3, "xavier", "sigmoid"), "verdict"] == "never reached"
    same = A.slowdown_table(_runs([2.0, 3.0, 2.5], [2.4, 2.6, 2.6])).loc[(3, "xavier", "tanh")]
    assert same["verdict"] == "inside the noise"
    fast = A.slowdown_table(_runs([4.0, 4.2, 4.4], [2.0, 2.1, 2.3])).loc[(3, "xavier", "tanh")]
    assert fast["verdict"] == "faster"
    text = A.figure1_verdict(_runs([2.0, 2.2, 2.4], [6.0, 6.5, 7.4]), 0.12)
    assert "ReLU is faster" in text or "paper's factor" in text
    assert "tanh is faster" in A.figure1_verdict(_runs([4.0, 4.2, 4.4], [2.0, 2.1, 2.3]), 0.12)
    claims = A.figure1_claims(_runs([2.0, 2.2, 2.4], [6.0, 6.5, 7.4]), 0.12)
    assert [c["paper"].startswith("6x") for c in claims] == [True, False]
    assert "over 3 seeds (slower, p = 0.0" in claims[0]["ours"]
    assert "never reached" in claims[1]["ours"]
    # +1 epoch on 2 seeds and +2 on the third: t = 4.0 < 4.30, p = 0.057
    close = A.slowdown_table(_runs([2.0, 2.0, 2.0], [3.0, 3.0, 4.0])).loc[(3, "xavier", "tanh")]
    assert close["verdict"] == "inside the noise" and 0.05 < close["p"] < 0.06


def test_speed_summary_averages_the_seeds_that_reached_the_target():
    runs = _runs([2.0, float("nan"), 4.0], [3.0, 3.0, 3.0])
    summary = A.speed_summary(runs)
    relu = summary.loc[(3, "xavier", "relu")]
    assert relu["reached"] == "2/3" and relu["epochs_to_target_mean"] == pytest.approx(3.0)
    assert summary.loc[(3, "xavier", "sigmoid"), "reached"] == "0/3"


def test_figure1_runs_and_their_bounds():
    X, y = _tiny_problem()
    runs = A.figure1_runs(X, y, X[:40], y[:40], {"relu": 0.05, "sigmoid": 0.05}, 3, [0, 1],
                          target=0.9, init="matched", module__width=8, batch_size=20,
                          progress=False, device="cpu")
    assert len(runs) == 4 and list(runs["seed"]) == [0, 0, 1, 1]  # interleaved by seed
    assert all(len(e) == 3 and len(s) == 3 for e, s in zip(runs["errors"], runs["seconds"]))
    relu = runs[runs["activation"] == "relu"]
    worst = relu["final_train_error"].max()
    text = A.check_figure1(runs, {"relu_final_error": worst, "relu_loss_drop": -10.0,
                                  "best_final_error": 1.0, "test_acc": 0.0})
    assert text.count("ok: ") == 4
    with pytest.raises(ExperimentError, match="final training error"):
        A.check_figure1(runs, {"relu_final_error": worst - 0.01})
    with pytest.raises(ExperimentError, match="loss fell"):
        A.check_figure1(runs, {"relu_loss_drop": 10.0})
    with pytest.raises(ExperimentError, match="test accuracy"):
        A.check_figure1(runs, {"test_acc": 1.01})
    assert A.check_figure1(runs, {}).endswith("no bound to check")
    other = runs.assign(init="paper")  # only the bounded initialisation is checked
    assert A.check_figure1(pd.concat([runs, other.assign(final_train_error=0.99)]),
                           {"relu_final_error": worst}).startswith("ok: ")
    with pytest.raises(A.ActivationError, match="no runs"):
        A.check_figure1(other, {})
    fig = A.plot_figure1(runs, 0.9)
    assert len(fig.axes) == 2


def test_check_dead_relus_reports_and_raises():
    dead = pd.DataFrame({"all": [0.0, 0.5]}, index=["lr=0.01", "lr=0.5"])
    assert "0.500 > 0.2" in A.check_dead_relus(dead, {"dead_margin": 0.2})
    with pytest.raises(ExperimentError, match="dead share"):
        A.check_dead_relus(dead, {"dead_margin": 0.5})


def test_matched_init_gives_each_activation_its_own_scheme():
    assert A.init_for("relu", "matched") == "he"
    assert A.init_for("tanh", "matched") == A.init_for("sigmoid", "matched") == "xavier"
    assert A.init_for("relu", "paper") == "paper"
    with pytest.raises(A.ActivationError):
        A.init_for("swish", "matched")


def test_the_loops_take_the_notebooks_factory_and_keep_the_nets():
    """lr_sweep, figure1_runs and dead_relu_experiment build every net with ``make``, with
    the matched init resolved per activation; the dead-unit table can keep its nets."""
    X, y = _tiny_problem()
    calls = []

    def make(activation, lr, max_epochs, seed=0, depth=3, **kwargs):
        calls.append((activation, kwargs["module__init"]))
        return A.make_activation_net(activation, lr, max_epochs, seed=seed, depth=depth,
                                     **kwargs)

    common = dict(module__width=8, batch_size=20, progress=False, device="cpu")
    A.lr_sweep(X, y, (0.05,), 1, activations=("relu", "tanh"), init="matched", make=make,
               **common)
    assert calls == [("relu", "he"), ("tanh", "xavier")]
    dead = A.dead_relu_experiment(X, y, X[:40], [0.05], 1, make=make, keep_nets=True,
                                  module__init="he", **common)
    net = dead.loc["lr=0.05", "net"]
    assert net.module_.features.conv1.weight.shape[0] == 4  # width 8: conv1 has 4 filters
    shares = A.dead_unit_share(net.module_, X[:40])
    assert dead.loc["lr=0.05", "all"] == pytest.approx(shares["all"])
    assert "net" not in A.dead_relu_experiment(X, y, X[:40], [0.05], 1, **common).columns
