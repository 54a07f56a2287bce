"""The two recipes of notebook 07, the CPU/GPU run plans and the throughput records."""
import math

import pytest
import torch
from skorch.callbacks import Callback
from skorch.history import History

from conftest import random_batch
from course_utils.models import AlexNetSmall
from course_utils.lessons.ch07_full_alexnet import (CPU_PLANS, RECIPES, RecipeError, RunPlan,
                                  check_full_result, check_pipeline, check_results,
                                  recipe_table, images_per_second,
                                  learning_rates, make_recipe, plan_profile, results_table,
                                  run_plan)



def test_full_profile_needs_cuda():
    with pytest.raises(RecipeError, match="needs a CUDA GPU"):
        run_plan("full", "cpu")
    plan = run_plan("full", torch.device("cuda"))  # planning only, nothing runs on it
    assert plan.full_training and plan.train_size is None and plan.max_epochs == 30
    assert "Full training" in plan.note


@pytest.mark.parametrize("name", ["smoke", "quick"])
def test_cpu_profiles_plan_a_pipeline_check_and_say_so(name):
    plan = run_plan(name, "cpu")
    assert not plan.full_training
    assert plan.train_size == CPU_PLANS[name]["train_size"]
    assert "full training needs a GPU" in plan.note
    sized = plan_profile(plan)
    assert (sized.train_size, sized.valid_size, sized.test_size) == (
        plan.train_size, plan.valid_size, plan.test_size)


def test_recipes_are_the_papers_and_adam_cosine():
    paper = make_recipe("paper", random_batch(8), run_plan("smoke", "cpu"), module=AlexNetSmall)
    assert paper.optimizer is torch.optim.SGD and paper.lr == 0.01
    assert paper.optimizer__momentum == 0.9 and paper.optimizer__weight_decay == 5e-4
    names = dict(paper.callbacks)
    assert "lr_schedule" not in names
    assert names["lr_plateau"].policy == "ReduceLROnPlateau"
    assert names["lr_plateau"].monitor == "valid_acc"
    adam = make_recipe("adam_cosine", random_batch(8), run_plan("smoke", "cpu"), module=AlexNetSmall)
    assert adam.optimizer is torch.optim.Adam and adam.lr == RECIPES["adam_cosine"].lr
    assert "lr_schedule" in dict(adam.callbacks) and "lr_plateau" not in dict(adam.callbacks)
    table = recipe_table()
    assert table.loc["paper", "optimizer"] == "SGD" and table.loc["paper", "momentum"] == 0.9
    assert table.loc["adam_cosine", "optimizer"] == "Adam"
    with pytest.raises(RecipeError, match="unknown recipe"):
        make_recipe("rmsprop", random_batch(8), run_plan("smoke", "cpu"))


def test_paper_recipe_divides_lr_by_ten_when_validation_stalls():
    # A learning rate so small that nothing changes: valid_acc stalls at once.
    plan = RunPlan("smoke", "cpu", False, 32, 16, 16, max_epochs=3, batch_size=16,
                   plateau_patience=0, early_stopping_patience=None)
    X, y = random_batch(32)
    net = make_recipe("paper", random_batch(16, seed=1), plan, module=AlexNetSmall, lr=1e-7,
                      verbose=0, progress=False)
    net.fit(X, y)
    assert learning_rates(net) == pytest.approx([1e-7, 1e-7, 1e-8])
    check_pipeline(net, plan)
    assert net.history[:, "train_images"] == [32, 32, 32]
    assert images_per_second(net) > 0
    assert "pipeline check passed for paper" in check_results({"paper": net}, {"paper": 0.1}, plan)
    table = results_table({"paper": net}, {"paper": 0.1}, plan)
    row = table.iloc[0]
    assert row["epochs run"] == 3 and row["test acc"] == 0.1 and row["run"] == "pipeline check"


class _LrRecorder(Callback):
    def on_train_begin(self, net, **kwargs):
        self.lrs = []

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.lrs.append(net.optimizer_.param_groups[0]["lr"])


def test_paper_recipe_warms_up_then_holds_the_learning_rate():
    plan = RunPlan("smoke", "cpu", False, 64, 16, 16, max_epochs=1, batch_size=16,
                   plateau_patience=5, early_stopping_patience=None, warmup_steps=3)
    recorder = _LrRecorder()
    net = make_recipe("paper", random_batch(16, seed=1), plan, module=AlexNetSmall, verbose=0,
                      progress=False, callbacks=[("lr_record", recorder)])
    assert [n for n, _ in net.callbacks][-3:] == ["lr_warmup", "lr_plateau", "lr_record"]
    net.fit(*random_batch(64))
    assert recorder.lrs == pytest.approx([0.01 / 3, 0.02 / 3, 0.01, 0.01])
    full = make_recipe("paper", random_batch(16), run_plan("full", torch.device("cuda")),
                            module=AlexNetSmall)
    assert dict(full.callbacks)["lr_warmup"].steps == 200


def test_check_pipeline_catches_a_nan_loss():
    plan = RunPlan("smoke", "cpu", False, 16, 16, 16, 1, 16, 1, None)
    net = make_recipe("adam_cosine", random_batch(16, seed=1), plan, module=AlexNetSmall, verbose=0,
                      progress=False)
    net.fit(*random_batch(16))
    check_pipeline(net, plan)
    net.history.record("train_loss", math.nan)
    with pytest.raises(RecipeError, match="not finite"):
        check_pipeline(net, plan)
    with pytest.raises(RecipeError, match="training steps"):
        check_pipeline(net, RunPlan("smoke", "cpu", False, 64, 16, 16, 1, 16, 1, None))


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


def test_images_per_second_falls_back_to_skorch_batch_sizes():
    h = History()
    h.new_epoch()
    h.record("dur", 4.0)
    for size in (32, 32, 8):
        h.new_batch()
        h.record_batch("train_batch_size", size)
    assert images_per_second(_Net(h)) == pytest.approx(72 / 4)


def test_full_result_bounds():
    full = run_plan("full", torch.device("cuda"))
    assert "0.9400" in check_full_result({"paper": 0.94, "adam_cosine": 0.91}, full)
    with pytest.raises(RecipeError, match="best test accuracy"):
        check_full_result({"paper": 0.925, "adam_cosine": 0.92}, full)
    with pytest.raises(RecipeError, match="floor"):
        check_full_result({"paper": 0.94, "adam_cosine": 0.5}, full)
    assert "pipeline check" in check_full_result({"paper": 0.1}, run_plan("smoke", "cpu"))
    assert "0.9400" in check_results({}, {"paper": 0.94}, full)

