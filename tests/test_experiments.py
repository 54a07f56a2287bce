"""course_utils.experiment: one run layer, one definition of each metric, fair comparisons."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from skorch.history import History
from torch import nn

from course_utils.config import CourseError, get_profile
from course_utils.experiment import (RESULT_FIELDS, ExperimentError, RunResult, claim_table,
                                     format_mean_std, paired_differences, results_frame,
                                     run_variants, summarize_runs, train_variant)
from course_utils.training import accuracy


# --------------------------------------------------------------------------- fixtures

def _bands(n, g, shift=0):
    """``n`` images of 3 classes: class c is bright in row band c. ``shift`` relabels
    the images (label = band + shift, mod 3)."""
    band = torch.arange(n) % 3
    X = torch.randint(0, 40, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for c in range(3):
        X[band == c, :, 9 * c:9 * c + 9, :] += 200
    return X, (band + shift) % 3


@pytest.fixture(scope="module")
def splits():
    g = torch.Generator().manual_seed(0)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = _bands(96, g), _bands(48, g), _bands(60, g)
    return SimpleNamespace(X_train=Xtr, y_train=ytr, X_valid=Xva, y_valid=yva,
                           X_test=Xte, y_test=yte)


class Tiny(nn.Module):
    """A linear classifier on 28x28 uint8 images; ``hidden`` adds a ReLU layer."""

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


def _band_means(x):
    x = x.float() / 255.0
    return torch.stack([x[:, 0, 9 * c:9 * c + 9].mean(dim=(1, 2)) for c in range(3)], 1)


class DroppedOracle(nn.Module):
    """Reads the bright band: right every time in eval mode. In training mode a
    heavy dropout hides the band means, so the training-mode accuracy is poor."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.9)
        self.bias = nn.Parameter(torch.zeros(3))  # something for the optimiser

    def forward(self, x):
        return 10 * self.drop(_band_means(x)) + self.bias


class Unlearner(nn.Module):
    """Starts as the band oracle (valid accuracy 1 after the first epoch's few steps);
    the training labels are shifted, so every further epoch unlearns it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(3) * 3.0)
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(_band_means(x))


def _common():
    return dict(lr=0.05, optimizer=torch.optim.SGD, batch_size=32, progress=False,
                device="cpu")


# --------------------------------------------------------------------------- train_variant

def test_train_variant_measures_every_field(splits):
    r = train_variant(splits, Tiny, epochs=2, seed=3, variant="linear", **_common())
    assert isinstance(r, RunResult) and r.variant == "linear" and r.seed == 3
    assert r.select == "last" and r.epochs_run == 2  # a fixed budget: no early stopping
    assert r.gap == pytest.approx(r.train_acc - r.valid_acc)
    assert 0 <= r.test_acc <= 1 and r.test_acc > 0.6  # the task is easy: it trained
    assert r.train_seconds > 0 and r.sec_per_epoch == pytest.approx(r.train_seconds / 2)
    assert np.isfinite(r.final_train_loss) and r.test_seconds >= 0
    assert r.net is None and "net" not in r.as_dict()
    assert list(r.as_dict()) == list(RESULT_FIELDS)
    assert r["valid_acc"] == r.valid_acc
    with pytest.raises(KeyError, match="a run result has"):
        r["accuracy"]


def test_train_acc_is_eval_mode_so_dropout_does_not_lower_it(splits):
    r = train_variant(splits, DroppedOracle, epochs=1, keep_net=True, **_common())
    history_train_acc = r.net.history[-1, "train_acc"]  # scored with dropout on
    assert r.train_acc == 1.0 and r.valid_acc == 1.0 and r.gap == 0.0
    assert history_train_acc < 0.8
    # the definition: eval-mode accuracy on the first train_eval_size training images
    small = train_variant(splits, DroppedOracle, epochs=1, train_eval_size=10, keep_net=True,
                          **_common())
    assert small.train_acc == accuracy(small.net, splits.X_train[:10], splits.y_train[:10])


def test_train_acc_counts_only_the_first_train_eval_size_images(splits):
    # the first 12 training labels are wrong for the oracle, the rest right
    wrong = SimpleNamespace(**vars(splits))
    wrong.y_train = splits.y_train.clone()
    wrong.y_train[:12] = (wrong.y_train[:12] + 1) % 3
    kw = dict(epochs=1, lr=0.0, optimizer=torch.optim.SGD, batch_size=32, progress=False,
              device="cpu")
    assert train_variant(wrong, DroppedOracle, train_eval_size=12, **kw).train_acc == 0.0
    assert train_variant(wrong, DroppedOracle, train_eval_size=None, **kw).train_acc == \
        pytest.approx(84 / 96)


def test_select_best_restores_the_best_epoch_and_last_keeps_the_last(splits):
    shifted = SimpleNamespace(**vars(splits))
    shifted.y_train = (splits.y_train + 1) % 3  # training unlearns the oracle
    kw = dict(epochs=4, lr=1.75, optimizer=torch.optim.SGD, batch_size=32, progress=False,
              device="cpu", keep_net=True)
    last = train_variant(shifted, Unlearner, select="last", **kw)
    best = train_variant(shifted, Unlearner, select="best", **kw)
    accs = list(best.net.history[:, "valid_acc"])
    assert accs == list(last.net.history[:, "valid_acc"])  # the same seed, the same run
    assert accs[0] > accs[-1]  # it really got worse
    assert best.best_epoch == 1 + int(np.argmax(accs)) == last.best_epoch
    assert best.valid_acc == pytest.approx(max(accs))
    assert last.valid_acc == pytest.approx(accs[-1])
    assert best.epochs_run == last.epochs_run == 4


def test_train_variant_passes_its_settings_to_make(splits):
    seen = {}

    class Net:
        def __init__(self):
            self.history = History()

        def fit(self, X, y):
            for epoch in (1, 2):
                self.history.new_epoch()
                self.history.record("epoch", epoch)
                self.history.record("valid_acc", 0.5)
                self.history.record("train_loss", 1.0 / epoch)
                self.history.record("dur", 0.25)
            return self

        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    def make(module, **kwargs):
        seen.update(kwargs, module=module)
        return Net()

    r = train_variant(splits, "M", epochs=2, seed=7, select="best", make=make, lr=0.1,
                      test=False)
    assert seen["module"] == "M" and seen["max_epochs"] == 2 and seen["seed"] == 7
    assert seen["checkpoint"] is True and seen["patience"] is None and seen["verbose"] == 0
    assert seen["lr"] == 0.1 and seen["valid"][0] is splits.X_valid
    assert r.test_acc is None and r.test_seconds is None  # test=False
    assert r.final_train_loss == 0.5 and r.train_seconds == 0.5 and r.best_epoch == 1
    train_variant(splits, "M", epochs=2, make=make)
    assert seen["checkpoint"] is False  # select="last" needs no checkpoint


@pytest.mark.parametrize("kwargs", [{"select": "first"}, {"epochs": 0}])
def test_train_variant_rejects_bad_settings(splits, kwargs):
    with pytest.raises(ExperimentError):
        train_variant(splits, Tiny, **{"epochs": 1, **kwargs})


# --------------------------------------------------------------------------- run_variants

def test_run_variants_one_row_per_run(splits):
    seen = []
    runs = run_variants({"linear": {}, "hidden": {"module__hidden": 8}}, splits, seeds=[3, 5],
                        epochs=2, module=Tiny, on_run=seen.append, keep_nets=True,
                        **_common())
    assert list(runs.columns) == [*RESULT_FIELDS, "sec_per_epoch"]
    assert list(runs["variant"]) == ["linear", "hidden", "linear", "hidden"]  # interleaved
    assert list(runs["seed"]) == [3, 3, 5, 5] and len(seen) == 4
    assert (runs["epochs_run"] == 2).all() and (runs["select"] == "last").all()
    assert runs["test_acc"].mean() > 0.6
    np.testing.assert_allclose(runs["gap"], runs["train_acc"] - runs["valid_acc"])
    assert set(runs.attrs["nets"]) == {("linear", 3), ("linear", 5), ("hidden", 3),
                                       ("hidden", 5)}


def test_same_seed_same_result_and_seeds_differ(splits):
    a = run_variants({"h": {"module__hidden": 8}}, splits, seeds=[0, 1], epochs=1, module=Tiny,
                     **_common())
    b = run_variants({"h": {"module__hidden": 8}}, splits, seeds=[0], epochs=1, module=Tiny,
                     **_common())
    assert a.loc[0, "final_train_loss"] == pytest.approx(b.loc[0, "final_train_loss"])
    assert a.loc[0, "final_train_loss"] != a.loc[1, "final_train_loss"]


@pytest.mark.parametrize("variants", [{}, None, {"a": 3}, {"a": {"max_epochs": 5}},
                                      {"a": {"epochs": 5}}, {"a": {"lr": 0.1}}])
def test_bad_variants_rejected(splits, variants):
    with pytest.raises(ExperimentError):
        run_variants(variants, splits, seeds=1, epochs=1, module=Tiny, **_common())


@pytest.mark.parametrize("seeds", [0, [], [1, 1]])
def test_bad_seeds_rejected(splits, seeds):
    with pytest.raises(CourseError):
        run_variants({"a": {}}, splits, seeds=seeds, epochs=1, module=Tiny, **_common())


# --------------------------------------------------------------------------- tables

def _runs(values: dict) -> pd.DataFrame:
    """A run table: ``{variant: [test_acc of seed 0, seed 1, ...]}``."""
    rows = [{"variant": v, "seed": s, "test_acc": a, "valid_acc": a - 0.01,
             "train_acc": a + 0.05, "gap": 0.06, "sec_per_epoch": 2.0}
            for v, accs in values.items() for s, a in enumerate(accs)]
    return pd.DataFrame(rows)


def test_summarize_runs_mean_std_and_order():
    runs = _runs({"b": [0.80, 0.82, 0.84], "a": [0.5, 0.7, 0.6]})
    table = summarize_runs(runs)
    assert list(table.index) == ["b", "a"]  # the order first seen
    assert (table["runs"] == 3).all()
    assert table.loc["b", "test_acc_mean"] == pytest.approx(0.82)
    assert table.loc["a", "test_acc_std"] == pytest.approx(np.std([0.5, 0.7, 0.6], ddof=1))
    assert table.loc["a", "gap_mean"] == pytest.approx(0.06)
    assert table.loc["a", "sec_per_epoch"] == 2.0
    assert {"valid_acc_mean", "train_acc_std"} <= set(table.columns)


def test_single_seed_std_is_nan():
    table = summarize_runs(_runs({"a": [0.5]}))
    assert np.isnan(table.loc["a", "test_acc_std"])
    assert format_mean_std(0.5, float("nan")) == "0.500"
    assert format_mean_std(0.87123, 0.0041) == "0.871 ± 0.004"


def test_summarize_rejects_wrong_tables():
    with pytest.raises(ExperimentError, match="lacks columns"):
        summarize_runs(pd.DataFrame({"variant": ["a"]}))
    with pytest.raises(ExperimentError, match="empty"):
        summarize_runs(_runs({}).reindex(columns=["variant", "test_acc", "valid_acc",
                                                  "train_acc", "gap"]))


@pytest.mark.parametrize("other,verdict", [
    ([0.85, 0.86, 0.87], "higher"),  # +0.05 every seed
    ([0.75, 0.76, 0.77], "lower"),
    ([0.81, 0.80, 0.83], "inside the noise"),  # +0.01, -0.01, +0.01
])
def test_paired_differences_verdicts(other, verdict):
    runs = _runs({"base": [0.80, 0.81, 0.82], "other": other})
    d = paired_differences(runs, baseline="base")
    assert list(d.index) == ["other"] and d.loc["other", "seeds"] == 3
    diffs = np.array(other) - np.array([0.80, 0.81, 0.82])
    assert d.loc["other", "diff_mean"] == pytest.approx(diffs.mean())
    assert d.loc["other", "diff_std"] == pytest.approx(diffs.std(ddof=1))
    assert d.loc["other", "verdict"] == verdict


def test_paired_differences_pairs_by_seed_and_needs_two_for_a_verdict():
    runs = _runs({"base": [0.80, 0.81], "other": [0.90, 0.91]})
    runs = runs[~((runs["variant"] == "other") & (runs["seed"] == 1))]  # seed 1 missing
    d = paired_differences(runs, baseline="base")
    assert d.loc["other", "seeds"] == 1 and d.loc["other", "diff_mean"] == pytest.approx(0.10)
    assert np.isnan(d.loc["other", "diff_std"])
    assert d.loc["other", "verdict"] == "inside the noise"  # one seed: no spread measured


def test_paired_differences_rejects_what_cannot_be_paired():
    runs = _runs({"base": [0.8, 0.9]})
    with pytest.raises(ExperimentError, match="no variant"):
        paired_differences(runs, baseline="other")
    other = _runs({"other": [0.8]}).assign(seed=7)
    with pytest.raises(ExperimentError, match="shares no seed"):
        paired_differences(pd.concat([runs, other]), baseline="base")


def test_results_frame_leaves_the_net_out(splits):
    r = train_variant(splits, Tiny, epochs=1, keep_net=True, variant="x", **_common())
    table = results_frame([r, r.as_dict()])
    assert list(table["variant"]) == ["x", "x"] and "net" not in table.columns


def test_claim_table_adds_profile_and_device():
    t = claim_table([{"claim": "x", "paper": "1%", "ours": "2%"}], device="cpu")
    assert t.loc["x", "profile"] == get_profile().name
    assert t.loc["x", "device"] == "cpu"
    with pytest.raises(ExperimentError):
        claim_table([{"claim": "x", "paper": "1%"}])
    with pytest.raises(ExperimentError):
        claim_table([])


def test_kept_nets_are_shared_not_copied_by_table_operations():
    import pandas as pd
    from course_utils.experiment import _SharedNets

    nets = _SharedNets({("a", 0): object()})
    table = pd.DataFrame({"test_acc": [0.8123]})
    table.attrs["nets"] = nets
    assert table.round(2).attrs["nets"] is nets
    assert table[["test_acc"]].attrs["nets"][("a", 0)] is nets[("a", 0)]


# --------------------------------------------------------------------------- several metrics

def _two_variant_runs():
    return pd.DataFrame({"variant": ["a", "b"] * 3, "seed": [0, 0, 1, 1, 2, 2],
                         "test_acc": [0.80, 0.85, 0.81, 0.86, 0.79, 0.84],
                         "gap": [0.10, 0.10, 0.12, 0.09, 0.11, 0.13]})


def test_paired_table_stacks_each_metric_with_its_own_verdict():
    from course_utils.experiment import paired_table

    t = paired_table(_two_variant_runs(), "a", ("test_acc", "gap"))
    assert list(t.index) == [("test_acc", "b"), ("gap", "b")]
    assert t.loc[("test_acc", "b"), "diff_mean"] == pytest.approx(0.05)
    assert t.loc[("test_acc", "b"), "verdict"] == "higher"
    assert t.loc[("gap", "b"), "verdict"] == "inside the noise"


def test_bound_table_checks_each_variants_mean_and_skips_unbounded_metrics():
    from course_utils.experiment import bound_table

    summary = summarize_runs(_two_variant_runs(), ("test_acc", "gap"))
    t = bound_table(summary, {"test_acc": 0.82, "gap": None}, ("test_acc", "gap"))
    assert list(t.index) == [("test_acc", "a"), ("test_acc", "b")]
    assert list(t["ok"]) == [False, True]
    only_b = bound_table(summary, {"test_acc": 0.82}, variants=["b"])
    assert bool(only_b["ok"].all())
    with pytest.raises(ExperimentError, match="bounds none"):
        bound_table(summary, {}, ("gap",))


def test_mean_curves_average_the_seeds_per_variant():
    from course_utils.experiment import mean_curves

    def net(values):
        h = History()
        for v in values:
            h.new_epoch()
            h.record("valid_acc", v)
        return SimpleNamespace(history=h)

    nets = {("a", 0): net([0.1, 0.3, 0.5]), ("a", 1): net([0.3, 0.5, 0.7]),
            ("b", 0): net([0.2, 0.2])}
    c = mean_curves(nets, ("valid_acc",))
    assert list(c.index) == [1, 2] and c.index.name == "epoch"  # cut to the shortest
    assert list(c[("valid_acc", "a")]) == pytest.approx([0.2, 0.4])
    assert list(c[("valid_acc", "b")]) == pytest.approx([0.2, 0.2])


def test_format_diff_signs_scales_and_omits_a_missing_spread():
    from course_utils.experiment import format_diff

    assert format_diff(0.0123, 0.004) == "+1.2 ± 0.4 points"
    assert format_diff(-0.0123, float("nan")) == "-1.2 points"
    assert format_diff(0.5, 0.25, scale=1, digits=2, unit="x") == "+0.50 ± 0.25 x"


# --------------------------------------------------------------------------- the t-test rule

def test_paired_test_is_scipys_two_sided_paired_t_test():
    from scipy import stats

    from course_utils.experiment import paired_test

    a, b = [0.84, 0.86, 0.83, 0.88, 0.85], [0.82, 0.85, 0.83, 0.85, 0.84]
    d = paired_test(a, b)
    ref = stats.ttest_rel(a, b)
    assert d["t"] == pytest.approx(ref.statistic) and d["p"] == pytest.approx(ref.pvalue)
    assert d["paired"] is True and d["seeds"] == 5


def test_two_standard_errors_are_not_enough_with_three_seeds():
    """t = 2.4 on 3 seeds (p = 0.14): the old two-standard-error rule called it higher."""
    from course_utils.experiment import paired_test

    diffs = np.array([0.004, 0.012, 0.020]) - 0.001
    d = paired_test(0.8 + diffs, np.full(3, 0.8))
    assert 2 < d["t"] < 4.30 and d["p"] > 0.05
    assert d["verdict"] == "inside the noise"
    assert paired_test([0.9, 0.91, 0.92], [0.8, 0.81, 0.82])["verdict"] == "higher"


def test_paired_test_edge_cases():
    from course_utils.experiment import ExperimentError, paired_test

    one = paired_test([0.9], [0.8])
    assert one["verdict"] == "inside the noise" and np.isnan(one["p"])
    same = paired_test([0.9, 0.8], [0.9, 0.8])
    assert same["verdict"] == "inside the noise"
    shifted = paired_test([3.0, 2.0, 1.0], [2.0, 1.0, 0.0])  # every seed +1: no doubt
    assert shifted["verdict"] == "higher" and shifted["p"] == 0.0
    with pytest.raises(ExperimentError, match="same count"):
        paired_test([1, 2], [1])


def test_unpaired_test_is_welch_and_says_so():
    from scipy import stats

    from course_utils.experiment import difference_text, unpaired_test

    a, b = [0.81, 0.84, 0.83, 0.80], [0.74, 0.77, 0.79]
    d = unpaired_test(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert d["p"] == pytest.approx(ref.pvalue) and d["paired"] is False
    assert d["verdict"] == "higher"
    assert "unpaired" in difference_text(d)


def test_paired_differences_reports_t_and_p():
    d = paired_differences(_runs({"base": [0.80, 0.81, 0.82], "other": [0.85, 0.87, 0.86]}),
                           baseline="base")
    assert {"t", "p"} <= set(d.columns) and d.loc["other", "p"] < 0.05


@pytest.mark.parametrize("gap,valid,words", [
    ("lower", "higher", "less overfitting"),
    ("lower", "inside the noise", "underfitting"),
    ("lower", "lower", "underfitting"),
    ("higher", "lower", "more overfitting"),
    ("higher", "inside the noise", "higher training accuracy"),
    ("inside the noise", "higher", "no measurable change"),
])
def test_gap_reading_says_which_side_moved(gap, valid, words):
    from course_utils.experiment import gap_reading

    assert words in gap_reading({"verdict": gap}, {"verdict": valid})


def test_difference_text_and_verdict_verb():
    from course_utils.experiment import ExperimentError, difference_text, paired_test, verdict_verb

    d = paired_test([0.9, 0.91, 0.92], [0.8, 0.81, 0.82])
    text = difference_text(d)
    assert text.startswith("+10.0") and "3 seed(s)" in text and text.endswith("higher")
    assert verdict_verb("lower", "raise", "lower") == "lowers"
    assert verdict_verb("inside the noise", "raise", "lower", plural=True) == "do not change"
    with pytest.raises(ExperimentError):
        verdict_verb("maybe", "raise", "lower")


def test_check_bounds_lists_what_failed():
    from course_utils.experiment import ExperimentError, bound_table, check_bounds

    assert check_bounds([(True, "a"), (True, "b")]) == "ok: a\nok: b"
    assert check_bounds([], "x") == "x: no bound to check"
    with pytest.raises(ExperimentError, match="b is low"):
        check_bounds([(True, "a"), (False, "b is low")])
    summary = summarize_runs(_two_variant_runs(), ("test_acc",))
    with pytest.raises(ExperimentError, match="test_acc of a"):
        check_bounds(bound_table(summary, {"test_acc": 0.82}))
