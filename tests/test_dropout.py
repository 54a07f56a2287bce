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
    """Just a skorch history of training losses."""

    def __init__(self, losses):
        from skorch.history import History

        self.history = History()
        for i, loss in enumerate(losses, 1):
            self.history.new_epoch()
            self.history.record("epoch", i)
            self.history.record("train_loss", loss)


def fake_run(rate, losses, train=0.9, valid=0.7):
    from course_utils.experiment import RunResult

    return RunResult(variant=f"dropout {rate}", seed=0, select="best", train_acc=train,
                     valid_acc=valid, test_acc=valid - 0.01, gap=train - valid,
                     epochs_run=len(losses), best_epoch=len(losses), train_seconds=1.0,
                     final_train_loss=losses[-1], net=FakeNet(losses))


def test_gap_and_convergence_tables_read_run_results_keyed_by_rate():
    from course_utils.lessons.ch09_dropout import convergence_table, gap_table

    runs = {0.0: fake_run(0.0, [2.0, 1.5, 1.0, 0.5], 0.95, 0.7),
            0.5: fake_run(0.5, [2.2, 1.9, 1.6, 1.4], 0.8, 0.72)}
    gaps = gap_table(runs)
    assert list(gaps["dropout rate"]) == [0.0, 0.5]
    assert list(gaps["train - valid gap"]) == [0.25, 0.08]
    conv = convergence_table(runs, n_train=100, batch_size=32)
    assert conv.attrs["target_loss"] == 1.5  # rate 0 at half its 4 epochs
    assert list(conv["epochs to reach target"]) == [2.0, 4.0]
    assert list(conv["x iterations of no dropout"]) == [1.0, 2.0]
    assert list(conv["iterations"]) == [8.0, 16.0]
    with pytest.raises(CourseError):
        convergence_table({0.5: runs[0.5]}, 100, 32)


@pytest.mark.parametrize("profile", list(PROFILES))
def test_budget_09_has_what_the_notebook_reads(profile):
    from course_utils.budgets import budget

    b = budget("09", profile)
    assert b["rates"][0] == 0.0 and 0.5 in b["rates"] and b.variants == len(b["rates"])
    assert b["scaling_test"] <= (b.test or 10_000) and b["mc_passes"] >= 1
    assert b.bounds["test_acc"] > 0.1 and 0 < b.bounds["mc_agreement"] < 0.5
