"""Dropout helpers: the paper's dropout, test-time scaling and the convergence measure."""
import math

import pytest
import torch
from torch import nn

from course_utils.config import PROFILES, CourseError
from course_utils.layers import PaperDropout
from course_utils.lessons.ch09_dropout import (epochs_to_reach, expectation_table,
                                               mc_probabilities, scaled_probabilities,
                                               scaling_table)
from course_utils.models import AlexNetSmall


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


def test_expectation_table_shows_which_rule_matches_training():
    t = expectation_table(p=0.5, passes=100).set_index("dropout")
    inv, paper = t.loc["inverted (torch.nn.Dropout)"], t.loc["paper (PaperDropout)"]
    # inverted: the training average equals the input, and eval passes it through
    assert inv["training: mean output"] == pytest.approx(inv["input mean"], rel=0.02)
    assert inv["test: output as is"] == pytest.approx(inv["input mean"], abs=2e-3)
    # paper: both halve, so training and test agree too
    assert paper["training: mean output"] == pytest.approx(paper["input mean"] / 2, rel=0.02)
    assert paper["test: output as is"] == pytest.approx(paper["input mean"] / 2, abs=2e-3)


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


def _runs(acc_change, gap_change, valid_change=0.0):
    import pandas as pd

    rows = []
    for seed, noise in zip(range(3), (-0.002, 0.0, 0.002)):
        rows.append({"variant": "dropout 0", "seed": seed, "test_acc": 0.85 + noise,
                     "valid_acc": 0.85, "train_acc": 0.99, "gap": 0.14 + noise})
        rows.append({"variant": "dropout 0.5", "seed": seed,
                     "test_acc": 0.85 + acc_change + 2 * noise,
                     "valid_acc": 0.85 + valid_change + noise,
                     "train_acc": 0.99, "gap": 0.14 + gap_change})
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
    rises = dropout_verdict(_runs(0.02, -0.05, valid_change=0.02), _conv([2.0, 1.9, 2.1]), 0.5)
    assert "less overfitting: the gap narrowed and validation accuracy rose" in rises
    none = dropout_verdict(_runs(0.0, 0.0), _conv([1.0, 1.1, float("nan")]), 0.5)
    assert "does not change test accuracy" in none and "inside the noise" in none
    assert "more than 4.0x" in none and "1 of 3 seeds" in none
    mc = pd.DataFrame({"seed": [0, 0, 0], "test-time rule": ["as is", "x0.5", "average of 50"],
                       "accuracy": [0.85, 0.84, 0.851]})
    table = paper_table(_runs(0.02, -0.05), _conv([1.2, 1.3, 1.1]), mc, 0.5, "quick", "cpu")
    ours = list(table["ours"])
    assert ours[0].startswith("train - valid gap (eval mode, points): p=0 14.0")
    assert "underfitting" in ours[0]  # validation did not rise with the narrower gap
    assert ours[1].startswith("test accuracy change (points), p=0.5 minus p=0: +2.0")
    assert "p = " in ours[1] and ours[1].endswith("higher")
    assert ours[2].startswith("1.20 ± 0.10x")
    assert "as is 0.850" in ours[3] and "MC average 0.851" in ours[3]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_budget_09_has_what_the_notebook_reads(profile):
    from course_utils.budgets import budget

    b = budget("09", profile)
    assert b["rates"][0] == 0.0 and 0.5 in b["rates"] and b.variants == len(b["rates"])
    assert b["scaling_test"] <= (b.test or 10_000) and b["mc_passes"] >= 1
    assert b.bounds["test_acc"] > 0.1 and 0 < b.bounds["mc_agreement"] < 0.5
    assert {"channels", "hidden", "eval_images", "target_fraction", "select"} <= set(b.settings)
    if profile != "smoke":  # the claim needs seeds to measure spread, and nets that overfit
        assert b.seeds >= 3 and b.bounds["gap"] > 0.05 and b["mc_passes"] >= 50
