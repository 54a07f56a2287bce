"""Dropout helpers: the paper's dropout, test-time scaling and the convergence measure."""
import math

import pytest
import torch
from torch import nn

from course_utils.config import PROFILES, CourseError
from course_utils.layers import PaperDropout
from course_utils.lessons.ch09_dropout import (epochs_to_reach, mc_probabilities,
                                               scaled_probabilities, scaling_table)
from course_utils.models import AlexNetSmall, ClassifierOnly, model_flops


def test_paper_dropout_zeroes_without_rescaling_and_scales_at_test():
    torch.manual_seed(0)
    layer = PaperDropout(0.5).train()
    x = torch.ones(10_000)
    out = layer(x)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert float(out.mean()) == pytest.approx(0.5, abs=0.02)
    assert torch.equal(layer.eval()(x), torch.full_like(x, 0.5))
    with pytest.raises(CourseError):
        PaperDropout(1.0)


def test_paper_and_inverted_dropout_agree_in_expectation_with_their_test_time_rule():
    torch.manual_seed(0)
    x = torch.rand(256, 128) * 2
    for layer, factor in ((nn.Dropout(0.5), 1.0), (PaperDropout(0.5), 0.5)):
        train_mean = float(torch.stack([layer.train()(x).mean() for _ in range(100)]).mean())
        assert train_mean == pytest.approx(factor * float(x.mean()), rel=0.02)
        assert float(layer.eval()(x).mean()) == pytest.approx(factor * float(x.mean()),
                                                               rel=1e-5)


def test_classifier_only_is_alexnets_classifier_on_the_pixels():
    torch.manual_seed(0)
    net = ClassifierOnly(hidden=32, dropout=0.5)
    fc = [net.classifier.fc6, net.classifier.fc7, net.classifier.fc8]
    assert [(m.in_features, m.out_features) for m in fc] == [(784, 32), (32, 32), (32, 10)]
    assert [net.classifier.drop6.p, net.classifier.drop7.p] == [0.5, 0.5]
    assert all(not m.bias.detach().any() for m in fc)  # AlexNet's "he" init: zero biases
    x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x)) and net(x).shape == (5, 10)
        assert torch.equal(net(x), net(x[:, 0]))  # (N, 28, 28) works too
    assert model_flops(net)["layers"] == {"fc6": 2 * 784 * 32, "fc7": 2 * 32 * 32,
                                          "fc8": 2 * 32 * 10}
    with pytest.raises(ValueError):
        ClassifierOnly(dropout=1.0)


def test_scaled_probabilities_touch_only_the_dropout_outputs():
    torch.manual_seed(0)
    model = AlexNetSmall().eval()
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        plain = torch.softmax(model(x), 1)
    assert torch.allclose(scaled_probabilities(model, x, 1.0), plain, atol=1e-6)
    assert not torch.allclose(scaled_probabilities(model, x, 0.5), plain, atol=1e-4)
    with torch.no_grad():  # the hooks were removed
        assert torch.allclose(torch.softmax(model(x), 1), plain, atol=1e-6)
    mc = mc_probabilities(model, x, passes=3)
    assert mc.shape == plain.shape and not model.training
    assert not any(m.training for m in model.modules() if isinstance(m, nn.Dropout))


def test_scaling_table_rows():
    torch.manual_seed(0)
    model = AlexNetSmall(dropout=0.5)
    x = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    t = scaling_table(model, x, torch.arange(6) % 10, p=0.5, passes=2)
    assert len(t) == 3 and t["accuracy"].between(0, 1).all() and (t["log loss"] > 0).all()


def test_epochs_to_reach():
    assert epochs_to_reach([1.0, 0.8, 0.5, 0.4], 0.6) == 3
    assert math.isnan(epochs_to_reach([1.0, 0.9], 0.5))


class FakeNet:
    """Just a skorch history of eval-mode training losses."""

    def __init__(self, losses):
        from skorch.history import History

        self.history = History()
        for i, loss in enumerate(losses, 1):
            self.history.new_epoch()
            self.history.record("epoch", i)
            self.history.record("train_loss_eval", loss)
            self.history.record("train_loss", loss + 0.5)  # dropout-noisy: must not be used


def test_convergence_is_read_per_seed_on_the_eval_mode_loss():
    from course_utils.lessons.ch09_dropout import convergence_table

    nets = {("dropout 0", 0): FakeNet([2.0, 1.5, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1]),
            ("dropout 0.5", 0): FakeNet([2.2, 1.9, 1.6, 1.4, 1.0, 0.9, 0.8, 0.7]),
            ("dropout 0", 1): FakeNet([2.0, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5]),
            ("dropout 0.5", 1): FakeNet([2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.3])}
    conv = convergence_table(nets, n_train=100, batch_size=32, fraction=0.25)
    by = conv.set_index(["variant", "seed"])
    assert by.loc[("dropout 0", 0), "target loss"] == 1.5  # p=0 after 2 of its 8 epochs
    assert by.loc[("dropout 0.5", 0), "epochs to reach"] == 4.0
    assert by.loc[("dropout 0.5", 0), "x iterations of no dropout"] == 2.0
    assert by.loc[("dropout 0.5", 0), "iterations"] == 16.0  # 4 batches an epoch
    assert by.loc[("dropout 0", 1), "target loss"] == 1.2
    assert math.isnan(by.loc[("dropout 0.5", 1), "x iterations of no dropout"])  # never reached
    assert conv.attrs["max_ratio"] == 4.0
    with pytest.raises(CourseError):
        convergence_table({("dropout 0.5", 0): nets[("dropout 0.5", 0)]}, 100, 32)


def _runs(acc_change, gap_change, valid_change=0.0, loss_change=0.0):
    import pandas as pd

    rows = []
    for seed, noise in zip(range(3), (-0.002, 0.0, 0.002)):
        rows.append({"variant": "dropout 0", "seed": seed, "test_acc": 0.85 + noise,
                     "valid_acc": 0.85, "train_acc": 0.99, "gap": 0.14 + noise,
                     "valid_loss": 1.0 + noise})
        rows.append({"variant": "dropout 0.5", "seed": seed,
                     "test_acc": 0.85 + acc_change + 2 * noise,
                     "valid_acc": 0.85 + valid_change + noise,
                     "train_acc": 0.99, "gap": 0.14 + gap_change,
                     "valid_loss": 1.0 + loss_change + 2 * noise})
    return pd.DataFrame(rows)


def _conv(ratios):
    import pandas as pd

    t = pd.DataFrame({"variant": ["dropout 0.5"] * len(ratios), "seed": range(len(ratios)),
                      "x iterations of no dropout": ratios})
    t.attrs["max_ratio"] = 4.0
    return t


def test_the_verdict_and_the_claim_table_follow_the_numbers():
    import pandas as pd

    from course_utils.lessons.ch09_dropout import dropout_verdict, paper_table

    helps = dropout_verdict(_runs(0.02, -0.05), _conv([2.0, 1.9, 2.1]), 0.5, gap_bound=0.08)
    assert "so the nets overfit" in helps and "raises test accuracy" in helps
    assert "about the paper's 2x" in helps
    # the gap narrowed on every seed but validation accuracy did not rise: underfitting
    assert "lower training accuracy (underfitting)" in helps and "less overfitting" not in helps
    rises = dropout_verdict(_runs(0.02, -0.05, valid_change=0.02, loss_change=-0.4),
                            _conv([2.0, 1.9, 2.1]), 0.5)
    assert "less overfitting: the gap narrowed and validation accuracy rose" in rises
    assert "validation loss -0.400" in rises and "lower. So: less overfitting" in rises
    none = dropout_verdict(_runs(0.0, 0.0), _conv([1.0, 1.1, float("nan")]), 0.5)
    assert "does not change test accuracy" in none and "inside the noise" in none
    assert "more than 4.0x" in none and "1 of 3 seeds" in none
    assert "small AlexNet" not in none
    contrast = dropout_verdict(_runs(0.02, -0.05), _conv([2.0]), 0.5,
                               contrast=_runs(0.0, 0.0), contrast_fc6=64)
    assert "small AlexNet (fc6 reads 64 values)" in contrast
    assert "no measurable change in overfitting" in contrast.splitlines()[-1]
    assert "0.990 without dropout and 0.990 with it" in contrast
    mc = pd.DataFrame({"seed": [0, 0, 0], "test-time rule": ["as is", "x0.5", "average of 50"],
                       "accuracy": [0.85, 0.84, 0.851]})
    table = paper_table(_runs(0.02, -0.05, loss_change=-0.3), _conv([1.2, 1.3, 1.1]), mc,
                        _runs(0.0, 0.0), 0.5, "quick", "cpu", contrast_fc6=64)
    ours = list(table["ours"])
    assert ours[0].startswith("classifier alone, p=0: train - valid gap 14.0")
    assert "validation loss 1.000" in ours[0]
    assert ours[1].startswith("p=0.5 minus p=0: gap -5.0") and "underfitting" in ours[1]
    assert "validation loss -0.300" in ours[1] and "(1.000 ± 0.002 -> 0.700" in ours[1]
    assert ours[2].startswith("test accuracy change (points), p=0.5 minus p=0: +2.0")
    assert "p = " in ours[2] and ours[2].endswith("higher")
    assert ours[3].startswith("1.20 ± 0.10x")
    assert "as is 0.850" in ours[4] and "MC average 0.851" in ours[4]
    assert "fc6 reads 64 values" in table["claim"].iloc[5]
    assert ours[5].startswith("eval-mode training accuracy (%): p=0 99.0")
    assert len(paper_table(_runs(0.0, 0.0), _conv([1.0]), mc)) == 5  # no contrast row
    with pytest.raises(CourseError, match="valid_loss"):
        dropout_verdict(_runs(0.0, 0.0).drop(columns="valid_loss"), _conv([1.0]))


@pytest.mark.parametrize("profile", list(PROFILES))
def test_budget_09_has_what_the_notebook_reads(profile):
    from course_utils.budgets import budget

    b = budget("09", profile)
    assert b["rates"] == (0.0, 0.5) and b.variants == len(b["rates"])
    assert b["scaling_test"] <= (b.test or 10_000) and b["mc_passes"] >= 1
    assert b.bounds["test_acc"] > 0.1 and 0 < b.bounds["mc_agreement"] < 0.5
    assert b.bounds["alexnet_test_acc"] > 0.1
    assert {"hidden", "lr", "momentum", "weight_decay", "eval_images", "target_fraction",
            "select", "channels", "alexnet_hidden", "alexnet_epochs", "alexnet_seeds"} <= set(
        b.settings)
    assert b.model == ("ClassifierOnly", {"hidden": b["hidden"]})
    # the contrast's stage in the cost table is what the notebook trains
    (stage,) = b.extra
    assert stage["model"] == ("AlexNetSmall", {"channels": b["channels"],
                                               "hidden": b["alexnet_hidden"]})
    assert (stage["runs"], stage["epochs"], stage["train"]) == (
        b["alexnet_seeds"] * len(b["rates"]), b["alexnet_epochs"], b.train)
    assert b["alexnet_seeds"] <= b.seeds
    if profile != "smoke":  # the claim needs seeds to measure spread, and nets that overfit
        assert b.seeds >= 5 and b.bounds["gap"] > 0.05 and b["mc_passes"] >= 50
        assert b["alexnet_seeds"] >= 3
