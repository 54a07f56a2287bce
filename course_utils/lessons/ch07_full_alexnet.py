"""Two ways to train the full 227x227 AlexNet (notebook 07).

- ``"paper"``: the recipe of Krizhevsky et al. (2012, sec. 5): SGD with momentum
  0.9, weight decay 5e-4, learning rate 0.01 divided by 10 whenever the
  validation accuracy stops improving (skorch's ``LRScheduler`` with
  ``ReduceLROnPlateau``). One addition: a linear warm-up of the learning rate
  over the first steps (:class:`LinearWarmup`). Measured on the CPU, with the
  course's He initialisation and with the paper's N(0, 0.01) one alike, lr 0.01
  with momentum 0.9 from the first step sent the loss from 5.5 to 32 and left
  the net predicting one or two classes at chance level 40 steps later; with
  30 warm-up steps the same run learned.
- ``"adam_cosine"``: Adam with a cosine learning-rate schedule, the course's default.

Both are built on :func:`course_utils.training.make_classifier`, so they get the
course callbacks, the fixed validation split, the device choice and whatever
CUDA fast path that factory sets up. :class:`Throughput` records images per
second in the history.

On a CPU the full AlexNet trains at about 8 images per second, so there a run
is a *pipeline check*: a few steps on a small subset (:func:`run_plan`). Full
training needs a GPU.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from skorch.callbacks import Callback, LRScheduler

from ..config import CourseError, Profile, get_device, get_profile
from ..models import AlexNet
from ..training import LinearWarmup, Throughput, images_per_second, make_classifier


class RecipeError(CourseError, ValueError):
    """An unknown recipe, or a run that cannot give the figures asked of it."""


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    optimizer: type
    lr: float
    optimizer_kwargs: dict
    schedule: str  # "plateau" or "cosine"


RECIPES: dict[str, Recipe] = {
    "paper": Recipe("paper", "SGD, momentum 0.9, weight decay 5e-4, lr 0.01 / 10 on plateau "
                    "(after a warm-up)",
                    torch.optim.SGD, 0.01, {"momentum": 0.9, "weight_decay": 5e-4}, "plateau"),
    "adam_cosine": Recipe("adam_cosine", "Adam, lr 1e-4, cosine schedule",
                          torch.optim.Adam, 1e-4, {}, "cosine"),
}

#: Test accuracy the full-profile run must reach with its better recipe (GPU only).
TEST_BOUND_FULL = 0.93
#: ... and each recipe on its own, a sanity floor.
TEST_FLOOR_FULL = 0.85


def recipe_table() -> pd.DataFrame:
    """The recipes side by side."""
    rows = [{"recipe": r.name, "optimizer": r.optimizer.__name__, "start lr": r.lr,
             "momentum": r.optimizer_kwargs.get("momentum", "-"),
             "weight decay": r.optimizer_kwargs.get("weight_decay", 0),
             "schedule": {"plateau": "linear warm-up, then lr / 10 when valid_acc stalls",
                          "cosine": "cosine annealing over the epochs"}[r.schedule]}
            for r in RECIPES.values()]
    return pd.DataFrame(rows).set_index("recipe")


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise RecipeError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


# --------------------------------------------------------------------------- plans

@dataclass(frozen=True)
class RunPlan:
    """How much 07 trains: everything on a GPU in the full profile, a pipeline
    check of a few steps on the CPU."""

    profile: str
    device: str
    full_training: bool
    train_size: int | None
    valid_size: int
    test_size: int | None
    max_epochs: int
    batch_size: int
    plateau_patience: int
    early_stopping_patience: int | None
    warmup_steps: int = 0

    @property
    def note(self) -> str:
        if self.full_training:
            return (f"Full training: {self.max_epochs} epochs on all training images, "
                    f"batch {self.batch_size}, on {self.device}.")
        steps = math.ceil(self.train_size / self.batch_size) * self.max_epochs
        return (f"Pipeline check only: {steps} training steps on {self.train_size} images "
                f"({self.max_epochs} epoch(s), batch {self.batch_size}) on {self.device}. "
                "The accuracies below mean nothing; full training needs a GPU "
                "(COURSE_PROFILE=full on a CUDA machine).")


#: The CPU pipeline checks: (train, valid, test) images, epochs, batch size.
CPU_PLANS = {
    "smoke": dict(train_size=32, valid_size=32, test_size=32, max_epochs=1, batch_size=16,
                  warmup_steps=1),
    "quick": dict(train_size=128, valid_size=64, test_size=64, max_epochs=2, batch_size=32,
                  warmup_steps=2),
}


def run_plan(profile: Profile | str | None = None, device: str | torch.device | None = None
             ) -> RunPlan:
    """What 07 trains for ``profile`` on ``device``.

    The full profile trains for real and needs CUDA; smoke and quick train a
    few steps on a small subset wherever they run.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    dev = torch.device(device) if device is not None else get_device()
    if prof.name == "full":
        if dev.type != "cuda":
            raise RecipeError(
                "07 in the full profile trains the 227x227 AlexNet for real and needs a "
                f"CUDA GPU (this run would use {dev.type}): run it on a GPU machine, or set "
                "COURSE_PROFILE=quick for the CPU pipeline check")
        return RunPlan(prof.name, str(dev), True, prof.train_size, prof.valid_size,
                       prof.test_size, prof.epochs, prof.batch_size, plateau_patience=2,
                       early_stopping_patience=6, warmup_steps=200)
    cfg = CPU_PLANS.get(prof.name)
    if cfg is None:
        raise RecipeError(f"no plan for profile {prof.name!r}")
    return RunPlan(prof.name, str(dev), False, plateau_patience=1,
                   early_stopping_patience=None, **cfg)


def plan_profile(plan: RunPlan) -> Profile:
    """The profile whose sizes :func:`course_utils.data.course_splits` should use."""
    return get_profile(plan.profile).with_(train_size=plan.train_size,
                                           valid_size=plan.valid_size,
                                           test_size=plan.test_size)


# --------------------------------------------------------------------------- classifiers

def make_recipe(name: str, valid: tuple, plan: RunPlan, module=AlexNet, lr: float | None = None,
                callbacks=(), **kwargs):
    """A classifier for recipe ``name``, sized by ``plan``; ``lr`` replaces the
    recipe's starting learning rate; ``kwargs`` go to
    :func:`course_utils.training.make_classifier` (e.g. ``module__dropout``)."""
    recipe = get_recipe(name)
    extra = list(callbacks)
    callbacks = [("throughput", Throughput())]
    if recipe.schedule == "plateau":
        if plan.warmup_steps:
            callbacks.append(("lr_warmup", LinearWarmup(plan.warmup_steps)))
        callbacks.append(("lr_plateau", LRScheduler(
            policy="ReduceLROnPlateau", monitor="valid_acc", mode="max", factor=0.1,
            patience=plan.plateau_patience)))
    callbacks.extend(extra)
    opt_kwargs = {f"optimizer__{k}": v for k, v in recipe.optimizer_kwargs.items()}
    return make_classifier(
        module, valid=valid, max_epochs=plan.max_epochs, lr=recipe.lr if lr is None else lr,
        batch_size=plan.batch_size, optimizer=recipe.optimizer,
        cosine=recipe.schedule == "cosine", patience=plan.early_stopping_patience,
        callbacks=callbacks, **opt_kwargs, **kwargs)


def learning_rates(net) -> list[float]:
    """The learning rate in force during each epoch."""
    return [float(g) for g in (r.get("event_lr", np.nan) for r in net.history)]


def check_pipeline(net, plan: RunPlan) -> None:
    """The CPU check: every planned step ran and every loss is finite."""
    steps = sum(len([b for b in r["batches"] if "train_loss" in b]) for r in net.history)
    expected = math.ceil(plan.train_size / plan.batch_size) * len(net.history)
    if len(net.history) == 0 or steps != expected:
        raise RecipeError(f"expected {expected} training steps, the history has {steps}")
    losses = list(net.history[:, "train_loss"]) + list(net.history[:, "valid_loss"])
    if not all(math.isfinite(v) for v in losses):
        raise RecipeError(f"a loss is not finite: {losses}")


def results_table(nets: dict, test_accs: dict, plan: RunPlan) -> pd.DataFrame:
    """One row per recipe: best validation epoch and accuracy, test accuracy,
    epochs run, final learning rate, images per second, training time."""
    rows = []
    for name, net in nets.items():
        accs = net.history[:, "valid_acc"]
        best = int(np.argmax(accs))
        rows.append({
            "recipe": get_recipe(name).title,
            "epochs run": len(net.history),
            "best epoch": int(net.history[best, "epoch"]),
            "valid acc": round(float(accs[best]), 4),
            "test acc": round(float(test_accs[name]), 4),
            "last lr": learning_rates(net)[-1],
            "images/s": round(images_per_second(net), 1),
            "train time (s)": round(float(sum(net.history[:, "dur"])), 1),
            "profile": plan.profile, "device": plan.device,
            "run": "full training" if plan.full_training else "pipeline check",
        })
    return pd.DataFrame(rows).set_index("recipe")


def check_full_result(test_accs: dict, plan: RunPlan) -> str:
    """In the full profile, the better recipe reaches :data:`TEST_BOUND_FULL` and
    each reaches :data:`TEST_FLOOR_FULL`; elsewhere there is nothing to check."""
    if not plan.full_training:
        return "pipeline check: no accuracy bound (full training needs a GPU)"
    best = max(test_accs.values())
    if best < TEST_BOUND_FULL:
        raise RecipeError(f"best test accuracy {best:.4f} < {TEST_BOUND_FULL}")
    low = {k: v for k, v in test_accs.items() if v < TEST_FLOOR_FULL}
    if low:
        raise RecipeError(f"below the floor {TEST_FLOOR_FULL}: {low}")
    return f"best test accuracy {best:.4f} >= {TEST_BOUND_FULL}"


def check_results(nets: dict, test_accs: dict, plan: RunPlan) -> str:
    """07's regression check: on the GPU the accuracy bounds of
    :func:`check_full_result`; on the CPU that every planned step ran with
    finite losses (:func:`check_pipeline`)."""
    if plan.full_training:
        return check_full_result(test_accs, plan)
    for net in nets.values():
        check_pipeline(net, plan)
    return (f"pipeline check passed for {', '.join(nets)}: every planned step ran and every "
            "loss is finite. Full training needs a GPU.")


def plot_recipes(nets: dict, title: str = "The paper's recipe against Adam + cosine"):
    """Validation accuracy and learning rate per epoch, one line per recipe."""
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_lr) = plt.subplots(1, 2, figsize=(11, 4))
    for name, net in nets.items():
        epochs = net.history[:, "epoch"]
        ax_acc.plot(epochs, net.history[:, "valid_acc"], "-o", label=get_recipe(name).title)
        ax_lr.plot(epochs, learning_rates(net), "-o", label=get_recipe(name).title)
    ax_acc.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy")
    ax_lr.set(title="Learning rate", xlabel="epoch", ylabel="learning rate", yscale="log")
    for ax in (ax_acc, ax_lr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
