"""The two recipes of notebook 07, its budget rows and the throughput records."""
import math
from dataclasses import replace

import pytest
import torch
from skorch.callbacks import Callback
from skorch.history import History

from course_helpers import random_batch
from course_utils.budgets import budget
from course_utils.config import CourseError
from course_utils.lessons.ch07_full_alexnet import (RECIPES, RecipeError, chance_note,
                                                    check_budget, check_full_result,
                                                    check_pipeline, check_results,
                                                    first_steps_note, initial_losses,
                                                    learning_rates, make_recipe, plan_note,
                                                    plot_first_steps, recipe_table,
                                                    results_table, step_losses)
from course_utils.models import AlexNetSmall
from course_utils.training import images_per_second


def _budget(profile="smoke", **changes):
    """Notebook 07's row, with sizes or settings changed for a test."""
    b = budget("07", profile)
    sizes = {k: v for k, v in changes.items() if k in ("train", "valid", "test", "epochs",
                                                        "batch_size")}
    settings = {k: v for k, v in changes.items() if k not in sizes}
    return replace(b, **sizes, settings={**b.settings, **settings})


def test_full_training_needs_cuda():
    full = budget("07", "full")
    assert full["full_training"] and full.train is None and full.epochs >= 10
    with pytest.raises(RecipeError, match="needs a CUDA GPU"):
        check_budget(full, "cpu")
    check_budget(full, torch.device("cuda"))  # planning only, nothing runs on it
    assert "Full training" in plan_note(full, "cuda")


def test_a_rehearsal_of_full_training_runs_on_the_cpu(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "0.001")
    dry = budget("07", "full")
    assert dry.rehearsal and dry["full_training"] and dry.train < 100
    check_budget(dry, "cpu")
    assert "Rehearsal of the full profile" in plan_note(dry, "cpu")
    assert "pipeline check" in check_full_result({"paper": 0.1}, dry)  # the smoke bounds


def test_smoke_plans_a_pipeline_check_and_says_so():
    b = budget("07", "smoke")
    assert not b["full_training"] and b.train <= 128 and b.epochs <= 2 and not b.bounds
    check_budget(b, "cpu")
    note = plan_note(b, "cpu")
    assert "full training needs a GPU" in note
    assert f"{math.ceil(b.train / b.batch_size) * b.epochs} training steps" in note


def test_quick_trains_for_real_on_the_cpu_and_says_the_real_run_needs_a_gpu():
    b = budget("07", "quick")
    assert not b["full_training"] and b.bounds["test_acc"] > 0.3  # well above chance (0.10)
    check_budget(b, "cpu")
    note = plan_note(b, "cpu")
    assert note.startswith("A short real training on the CPU")
    assert f"{math.ceil(b.train / b.batch_size) * b.epochs} steps on {b.train:,}" in note
    assert "needs a GPU" in note and f"{len(b['recipes'])} recipe(s) x {b.seeds} seed(s)" in note
    assert f"0.8000 >= {b.bounds['test_acc']}" in check_full_result({("paper", 0): 0.8}, b)
    with pytest.raises(RecipeError, match="best mean test accuracy"):
        check_full_result({("paper", 0): b.bounds["test_acc"] - 0.01}, b)


def test_recipes_are_the_papers_and_adam_cosine():
    smoke = budget("07", "smoke")
    paper = make_recipe("paper", random_batch(8), smoke, module=AlexNetSmall)
    assert paper.optimizer is torch.optim.SGD and paper.lr == 0.01
    assert paper.optimizer__momentum == 0.9 and paper.optimizer__weight_decay == 5e-4
    assert paper.max_epochs == smoke.epochs and paper.batch_size == smoke.batch_size
    names = dict(paper.callbacks)
    assert "lr_schedule" not in names
    assert names["lr_plateau"].policy is torch.optim.lr_scheduler.ReduceLROnPlateau
    assert names["lr_plateau"].monitor == "valid_acc"
    adam = make_recipe("adam_cosine", random_batch(8), smoke, module=AlexNetSmall)
    assert adam.optimizer is torch.optim.Adam and adam.lr == RECIPES["adam_cosine"].lr
    assert "lr_schedule" in dict(adam.callbacks) and "lr_plateau" not in dict(adam.callbacks)
    table = recipe_table()
    assert table.loc["paper", "optimizer"] == "SGD" and table.loc["paper", "momentum"] == 0.9
    assert table.loc["adam_cosine", "optimizer"] == "Adam"
    with pytest.raises(RecipeError, match="unknown recipe"):
        make_recipe("rmsprop", random_batch(8), smoke)


def test_paper_recipe_divides_lr_by_ten_when_validation_stalls():
    # A learning rate so small that nothing changes: valid_acc stalls at once.
    b = _budget(train=32, epochs=3, batch_size=16, plateau_patience=0, warmup_steps=0)
    X, y = random_batch(32)
    net = make_recipe("paper", random_batch(16, seed=1), b, module=AlexNetSmall, lr=1e-7,
                      verbose=0, progress=False)
    net.fit(X, y)
    assert learning_rates(net) == pytest.approx([1e-7, 1e-7, 1e-8])
    check_pipeline(net, b)
    assert net.history[:, "train_images"] == [32, 32, 32]
    assert images_per_second(net) > 0
    assert "pipeline check passed for paper" in check_results({"paper": net}, {"paper": 0.1}, b)
    table = results_table({"paper": net}, {"paper": 0.1}, b, "cpu")
    row = table.iloc[0]
    assert row["epochs run"] == 3 and row["test acc"] == 0.1 and row["run"] == "pipeline check"
    accs = net.history[:, "valid_acc"]
    assert row["valid acc"] == round(max(accs), 4)
    assert row["best epoch"] == 1 + accs.index(max(accs))  # the first best, as best_epoch


class _LrRecorder(Callback):
    def on_train_begin(self, net, **kwargs):
        self.lrs = []

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.lrs.append(net.optimizer_.param_groups[0]["lr"])


def test_paper_recipe_warms_up_then_holds_the_learning_rate():
    b = _budget(train=64, epochs=1, batch_size=16, plateau_patience=5, warmup_steps=3)
    recorder = _LrRecorder()
    net = make_recipe("paper", random_batch(16, seed=1), b, module=AlexNetSmall, verbose=0,
                      progress=False, callbacks=[("lr_record", recorder)])
    assert [n for n, _ in net.callbacks][-3:] == ["lr_warmup", "lr_plateau", "lr_record"]
    net.fit(*random_batch(64))
    assert recorder.lrs == pytest.approx([0.01 / 3, 0.02 / 3, 0.01, 0.01])
    full = make_recipe("paper", random_batch(16), budget("07", "full"), module=AlexNetSmall)
    assert dict(full.callbacks)["lr_warmup"].steps == 200
    assert dict(full.callbacks)["early_stopping"].patience == 6


def test_check_results_asks_each_run_for_a_loss_below_a_uniform_guess():
    b = _budget("quick", train=16, epochs=1, batch_size=16)
    b = replace(b, bounds={"test_acc": 0.5, "loss_drop": 0.5})
    net = make_recipe("adam_cosine", random_batch(16, seed=1), b, module=AlexNetSmall, verbose=0,
                      progress=False, module__head_std=0.001)
    net.fit(*random_batch(16))
    net.history.record("train_loss", math.log(10) - 0.6)
    report = check_results({("adam_cosine", 0): net}, {("adam_cosine", 0): 0.7}, b)
    assert "ok: adam_cosine (seed 0)'s last training loss 1.703 is at least 0.5 below" in report
    net.history.record("train_loss", math.log(10) - 0.4)  # fell, but not by the margin
    with pytest.raises(RecipeError, match="last training loss 1.903"):
        check_results({("adam_cosine", 0): net}, {("adam_cosine", 0): 0.7}, b)


def test_check_pipeline_catches_a_nan_loss():
    b = _budget(train=16, epochs=1, batch_size=16)
    net = make_recipe("adam_cosine", random_batch(16, seed=1), b, module=AlexNetSmall, verbose=0,
                      progress=False)
    net.fit(*random_batch(16))
    check_pipeline(net, b)
    net.history.record("train_loss", math.nan)
    with pytest.raises(RecipeError, match="not finite"):
        check_pipeline(net, b)
    with pytest.raises(RecipeError, match="training steps"):
        check_pipeline(net, _budget(train=64, epochs=1, batch_size=16))


class _Net:
    def __init__(self, history):
        self.history = history


def test_images_per_second_skips_the_warm_up_epoch():
    h = History()
    for images, seconds in ((100, 10.0), (100, 2.0), (300, 3.0)):
        h.new_epoch()
        h.record("train_images", images)
        h.record("train_seconds", seconds)
    assert images_per_second(_Net(h)) == pytest.approx(400 / 5)
    assert images_per_second(_Net(h), skip_first=False) == pytest.approx(500 / 15)
    with pytest.raises(CourseError, match="fit it first"):
        images_per_second(_Net(History()))


def test_images_per_second_without_training_time_is_one_clear_error():
    h = History()
    for _ in range(2):
        h.new_epoch()
        h.record("train_images", 100)
        h.record("train_seconds", 0.0)
    with pytest.raises(RecipeError, match="no training time in the history"):
        images_per_second(_Net(h))


def test_images_per_second_falls_back_to_skorch_batch_sizes():
    h = History()
    h.new_epoch()
    h.record("dur", 4.0)
    for size in (32, 32, 8):
        h.new_batch()
        h.record_batch("train_batch_size", size)
    assert images_per_second(_Net(h)) == pytest.approx(72 / 4)


def test_full_result_bounds():
    full = budget("07", "full")
    assert (full.bounds["test_acc"], full.bounds["test_acc_floor"]) == (0.93, 0.85)
    assert "0.9400" in check_full_result({"paper": 0.94, "adam_cosine": 0.91}, full)
    with pytest.raises(RecipeError, match="best mean test accuracy"):
        check_full_result({"paper": 0.925, "adam_cosine": 0.92}, full)
    with pytest.raises(RecipeError, match="floor"):
        check_full_result({"paper": 0.94, "adam_cosine": 0.5}, full)
    assert "pipeline check" in check_full_result({"paper": 0.1}, budget("07", "smoke"))
    assert "0.9400" in check_results({}, {"paper": 0.94}, full)
    # with seeds, each recipe is judged on its mean
    seeds = {("paper", 0): 0.95, ("paper", 1): 0.93, ("adam_cosine", 0): 0.90,
             ("adam_cosine", 1): 0.86}
    assert "0.9400" in check_full_result(seeds, full)
    with pytest.raises(RecipeError, match="floor"):
        check_full_result({**seeds, ("adam_cosine", 1): 0.70}, full)


def test_the_first_loss_is_near_ln_10_with_a_small_output_layer():
    X, y = random_batch(32, seed=3)
    table = initial_losses(X, y, head_stds=(None, 0.001), seed=0, input_size=67, hidden=512)
    default, small = table.iloc[0], table.iloc[1]
    assert small["loss (dropout on)"] == pytest.approx(math.log(10), abs=0.02)
    assert small["logit std"] < 0.1 < default["logit std"]
    assert default["loss (dropout on)"] > small["loss (dropout on)"] + 0.1
    assert (table["ln(classes)"] == math.log(10)).all()


def test_step_losses_are_every_training_step_in_order():
    smoke = budget("07", "smoke")
    X, y = random_batch(40, seed=1)
    net = make_recipe("paper", (X[:8], y[:8]), replace(smoke, epochs=2, batch_size=16),
                      module=AlexNetSmall, seed=0, verbose=0, module__head_std=0.001)
    net.fit(X[8:], y[8:])
    losses = step_losses(net)
    assert len(losses) == 2 * 2  # 32 images in batches of 16, two epochs
    assert losses[0] == pytest.approx(math.log(10), abs=0.05)
    assert net.history[0, "train_loss"] == pytest.approx(sum(losses[:2]) / 2)


def test_plots_keep_their_legends_off_the_curves():
    import matplotlib.pyplot as plt

    fig = plot_first_steps({"a": [2.3, 2.2, 2.0], "b": [4.0, 3.0, 2.5]}, steps=2)
    ax = fig.axes[0]
    assert ax.get_legend() is None and len(fig.legends) == 1
    assert [len(line.get_xdata()) for line in ax.lines[:2]] == [2, 2]
    legend_box = fig.legends[0].get_window_extent(fig.canvas.get_renderer())
    assert legend_box.y1 <= ax.get_window_extent().y0  # under the axes, not on them
    plt.close(fig)


def test_chance_note_is_a_binomial_test_against_a_guesser():
    from scipy import stats

    assert chance_note(0.1, 1000).endswith("not distinguishable from chance")
    assert chance_note(0.6, 2000).endswith(": above chance")
    # 115 of 1,000 right: p = 0.06, not enough; 125 of 1,000: p = 0.005
    assert stats.binomtest(115, 1000, 0.1, alternative="greater").pvalue > 0.05
    assert chance_note(0.115, 1000).endswith("not distinguishable from chance")
    note = chance_note(0.125, 1000)
    assert "p = 0.00" in note and note.endswith(": above chance")




def test_first_steps_note_compares_the_runs_and_copes_with_short_ones():
    small, default = [2.3, 2.2, 2.0, 1.8], [6.0, 4.0, 2.5, 2.2]
    note = first_steps_note({"small": small, "default": default}, steps=4, window=2)
    assert "small: first loss 2.30 (-0.00 against ln 10), mean of steps 3-4: 1.90" in note
    assert note.endswith("by step 4 the default init is still 0.45 behind")
    close = first_steps_note({"small": small, "default": [6.0, 4.0, 2.0, 1.85]}, 4, window=2)
    assert "within 0.03 of each other" in close
    ahead = first_steps_note({"small": small, "default": [6.0, 4.0, 1.5, 1.4]}, 4, window=2)
    assert "default init is 0.45 ahead" in ahead
    # a rehearsal's runs can be shorter than the steps asked for
    assert "mean of steps 1-2" in first_steps_note({"a": [2.3, 2.0], "b": [5.0, 3.0]}, 50)
