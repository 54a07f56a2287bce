"""course_utils.experiments: fair multi-seed comparisons of model variants."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from course_utils.config import CourseError, get_profile
from course_utils.experiments import (NARROW_CHANNELS, RUN_COLUMNS, SUMMARY_COLUMNS,
                                      ExperimentError, claim_table, compare_variants,
                                      format_mean_std, run_variants, small_alexnet_budget,
                                      summarize_runs)


class Tiny(nn.Module):
    """A linear classifier on 28x28 uint8 images; ``hidden=0`` means no hidden layer."""

    def __init__(self, hidden=0):
        super().__init__()
        layers = [nn.Flatten()]
        if hidden:
            layers += [nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 3)]
        else:
            layers += [nn.Linear(784, 3)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.float() / 255.0)


@pytest.fixture(scope="module")
def splits():
    g = torch.Generator().manual_seed(0)

    def part(n):
        y = torch.arange(n) % 3
        # class c is bright in row band c: learnable in a few steps
        X = torch.randint(0, 40, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
        for c in range(3):
            X[y == c, :, 9 * c:9 * c + 9, :] += 200
        return X, y

    (Xtr, ytr), (Xva, yva), (Xte, yte) = part(96), part(48), part(60)
    return SimpleNamespace(X_train=Xtr, y_train=ytr, X_valid=Xva, y_valid=yva,
                           X_test=Xte, y_test=yte)


def _common():
    return dict(module=Tiny, lr=0.05, optimizer=torch.optim.SGD, batch_size=32,
                progress=False, verbose=0, device="cpu")


def test_run_variants_one_row_per_run(splits):
    runs = run_variants({"linear": {}, "hidden": {"module__hidden": 8}}, splits,
                        seeds=[3, 5], max_epochs=2, **_common())
    assert list(runs.columns) == list(RUN_COLUMNS)
    assert list(runs["variant"]) == ["linear", "linear", "hidden", "hidden"]
    assert list(runs["seed"]) == [3, 5, 3, 5]
    assert (runs["epochs"] == 2).all()  # fixed budget: no early stopping
    assert runs["test_acc"].between(0, 1).all()
    assert runs["test_acc"].mean() > 0.6  # the task is easy: it really trained
    np.testing.assert_allclose(runs["gap"], runs["train_acc"] - runs["valid_acc"])
    assert (runs["sec_per_epoch"] > 0).all()


def test_same_seed_same_result_and_seeds_differ(splits):
    a = run_variants({"h": {"module__hidden": 8}}, splits, seeds=[0, 1], max_epochs=1,
                     **_common())
    b = run_variants({"h": {"module__hidden": 8}}, splits, seeds=[0], max_epochs=1,
                     **_common())
    assert a.loc[0, "final_train_loss"] == pytest.approx(b.loc[0, "final_train_loss"])
    assert a.loc[0, "final_train_loss"] != a.loc[1, "final_train_loss"]


def test_summarize_and_compare(splits):
    table = compare_variants({"linear": {}, "hidden": {"module__hidden": 8}}, splits,
                             seeds=2, max_epochs=1, **_common())
    assert list(table.index) == ["linear", "hidden"]
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    runs = table.attrs["runs"]
    lin = runs[runs["variant"] == "linear"]
    assert table.loc["linear", "test_acc_mean"] == pytest.approx(lin["test_acc"].mean())
    assert table.loc["linear", "test_acc_std"] == pytest.approx(lin["test_acc"].std(ddof=1))
    assert (table["runs"] == 2).all()


def test_single_seed_std_is_nan():
    runs = pd.DataFrame([dict(zip(RUN_COLUMNS, ("a", 0, 1, 0.5, 0.6, 0.5, 0.1, 1.0, 1.0)))])
    table = summarize_runs(runs)
    assert np.isnan(table.loc["a", "test_acc_std"])
    assert format_mean_std(0.5, float("nan")) == "0.500"
    assert format_mean_std(0.87123, 0.0041) == "0.871 ± 0.004"


@pytest.mark.parametrize("variants", [{}, None, {"a": 3}, {"a": {"max_epochs": 5}},
                                      {"a": {"lr": 0.1}}])
def test_bad_variants_rejected(splits, variants):
    with pytest.raises(ExperimentError):
        run_variants(variants, splits, seeds=1, max_epochs=1, **_common())


@pytest.mark.parametrize("seeds", [0, [], [1, 1]])
def test_bad_seeds_rejected(splits, seeds):
    with pytest.raises(CourseError):
        run_variants({"a": {}}, splits, seeds=seeds, max_epochs=1, **_common())


def test_summarize_rejects_wrong_table():
    with pytest.raises(ExperimentError):
        summarize_runs(pd.DataFrame({"variant": ["a"]}))


def test_claim_table_adds_profile_and_device():
    t = claim_table([{"claim": "x", "paper": "1%", "ours": "2%"}], device="cpu")
    assert t.loc["x", "profile"] == get_profile().name
    assert t.loc["x", "device"] == "cpu"
    with pytest.raises(ExperimentError):
        claim_table([{"claim": "x", "paper": "1%"}])


def test_budget_follows_profile():
    smoke, full = small_alexnet_budget("smoke"), small_alexnet_budget("full")
    assert smoke["module__channels"] == NARROW_CHANNELS
    assert full["module__channels"] == (96, 256, 384, 384, 256)
    assert full["seeds"] >= 3  # the issue asks for at least 3 seeds in full
    assert smoke["max_epochs"] <= full["max_epochs"]
