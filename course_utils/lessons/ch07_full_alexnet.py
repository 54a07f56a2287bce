"""Two ways to train the full 227x227 AlexNet (notebook 07).

- ``"paper"``: the optimiser and schedule of Krizhevsky et al. (2012, sec. 5): SGD
  with momentum 0.9, weight decay 5e-4, learning rate 0.01 divided by 10 whenever the
  validation accuracy stops improving (skorch's ``LRScheduler`` with
  ``ReduceLROnPlateau``), after a linear warm-up of the learning rate over the first
  steps (:class:`course_utils.training.LinearWarmup`, an addition to the paper). The
  network keeps the course's initialisation (He and Xavier, zero biases) with the
  output layer drawn from N(0, ``head_std``): notebook 07 writes this recipe out in
  plain skorch and asserts that it equals :func:`make_recipe`'s.
- ``"adam_cosine"``: Adam with a cosine learning-rate schedule, the course's default.

Both are built on :func:`course_utils.training.make_classifier`, so they get the
course callbacks, the fixed validation split, the device choice and whatever
CUDA fast path that factory sets up; :class:`course_utils.training.Throughput`
records images per second in the history.

How much 07 trains is row "07" of :mod:`course_utils.budgets`. Its setting
``full_training`` says whether the run is the real experiment (it needs a CUDA
GPU) or a CPU run: a short real training on a subset (quick), or a pipeline
check of a few steps (smoke).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from scipy import stats
from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..budgets import budget
from ..config import seed_everything
from ..experiment import ALPHA, check_bounds, format_p
from ..models import AlexNet
from ..training import (LinearWarmup, RecipeError, Throughput, best_epoch, images_per_second,
                        make_classifier, train_seconds)

__all__ = ["RECIPES", "Recipe", "RecipeError", "chance_note", "check_budget",
           "check_full_result", "check_pipeline", "check_results", "first_steps_note", "get_recipe",
           "initial_losses", "learning_rates", "make_recipe", "plan_note", "plot_first_steps",
           "plot_recipes", "recipe_runs", "recipe_table", "results_table", "step_losses"]


@dataclass(frozen=True)
class Recipe:
    """An optimiser, its starting learning rate and settings, and a schedule."""

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
    """The recipe called ``name`` ("paper" or "adam_cosine")."""
    if name not in RECIPES:
        raise RecipeError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


# --------------------------------------------------------------------------- the budget

def check_budget(b, device: str | torch.device) -> None:
    """Refuse full training (``b["full_training"]``) anywhere but on a CUDA GPU,
    unless the row is a rehearsal (``$COURSE_SCALE`` < 1: ``make test-gpu-dry``).

    Parameters
    ----------
    b : Budget
        Notebook 07's row, ``course_utils.budgets.budget("07")``.
    device : str or torch.device
        Where the run would train.
    """
    dev = torch.device(device)
    if b["full_training"] and dev.type != "cuda" and not b.rehearsal:
        raise RecipeError(
            f"07 in the {b.profile} profile trains the 227x227 AlexNet for real and needs a "
            f"CUDA GPU (this run would use {dev.type}): run it on a GPU machine, or set "
            "COURSE_PROFILE=quick for the CPU pipeline check")


def plan_note(b, device: str | torch.device) -> str:
    """What this run trains, in one or two sentences: full training, or a pipeline
    check whose accuracies mean nothing."""
    steps = math.ceil(b.train_images / b.batch_size) * b.epochs
    if b.rehearsal:
        return (f"Rehearsal of the {b.profile} profile (COURSE_SCALE={b.scale:g}): {steps} "
                f"training steps on {b.train_images:,} images on {device}; a pipeline check.")
    if b["full_training"]:
        train = "all training images" if b.train is None else f"{b.train:,} training images"
        return (f"Full training: {b.epochs} epochs on {train}, batch {b.batch_size}, "
                f"on {device}.")
    if "test_acc" in b.bounds:
        full = budget("07", "full")
        return (f"A short real training on the CPU: {steps} steps on {b.train_images:,} "
                f"images ({b.epochs} epoch(s), batch {b.batch_size}) per run, "
                f"{len(b['recipes'])} recipe(s) x {b.seeds} seed(s), on {device}: enough to "
                f"learn well above chance, far from trained. The real run (all 50,000 images, "
                f"{len(full['recipes'])} recipes x {full.seeds} seeds) needs a GPU: "
                "COURSE_PROFILE=full on a CUDA machine.")
    return (f"Pipeline check only: {steps} training steps on {b.train_images:,} images "
            f"({b.epochs} epoch(s), batch {b.batch_size}) on {device}. "
            "The accuracies below mean nothing; full training needs a GPU "
            "(COURSE_PROFILE=full on a CUDA machine).")


# --------------------------------------------------------------------------- classifiers

def make_recipe(name: str, valid: tuple, b, module=AlexNet, lr: float | None = None,
                callbacks=(), **kwargs):
    """A classifier for recipe ``name``, sized by the budget ``b``.

    Parameters
    ----------
    name : str
        "paper" or "adam_cosine".
    valid : tuple
        ``(X_valid, y_valid)``, the fixed validation split.
    b : Budget
        Notebook 07's row: ``epochs``, ``batch_size`` and the settings
        ``warmup_steps``, ``plateau_patience``, ``early_stopping_patience``.
    module : type
        The network (tests pass the small AlexNet).
    lr : float, optional
        Replaces the recipe's starting learning rate.
    callbacks : sequence
        Extra ``(name, callback)`` pairs, after the recipe's own.
    **kwargs
        Passed to :func:`course_utils.training.make_classifier` (``seed``,
        ``module__head_std``, ``max_epochs`` instead of ``b.epochs``, ...).
    """
    recipe = get_recipe(name)
    extra = list(callbacks)
    callbacks = [("throughput", Throughput())]
    if recipe.schedule == "plateau":
        if b["warmup_steps"]:
            callbacks.append(("lr_warmup", LinearWarmup(b["warmup_steps"])))
        callbacks.append(("lr_plateau", LRScheduler(
            policy=ReduceLROnPlateau, monitor="valid_acc", mode="max", factor=0.1,
            patience=b["plateau_patience"])))
    callbacks.extend(extra)
    opt_kwargs = {f"optimizer__{k}": v for k, v in recipe.optimizer_kwargs.items()}
    return make_classifier(
        module, valid=valid, max_epochs=kwargs.pop("max_epochs", b.epochs),
        lr=recipe.lr if lr is None else lr,
        batch_size=b.batch_size, optimizer=recipe.optimizer,
        cosine=recipe.schedule == "cosine", patience=b["early_stopping_patience"],
        callbacks=callbacks, **opt_kwargs, **kwargs)


def learning_rates(net) -> list[float]:
    """The learning rate in force during each epoch (NaN where none was recorded)."""
    return [float(r.get("event_lr", math.nan)) for r in net.history]


def check_pipeline(net, b) -> None:
    """The CPU check: every planned step ran and every loss is finite.

    Parameters
    ----------
    net : CourseClassifier
        A fitted recipe.
    b : Budget
        Its budget: ``b.train`` images (None: all 50,000) in batches of ``b.batch_size``.
    """
    steps = sum(len([x for x in r["batches"] if "train_loss" in x]) for r in net.history)
    expected = math.ceil(b.train_images / b.batch_size) * len(net.history)
    if len(net.history) == 0 or steps != expected:
        raise RecipeError(f"expected {expected} training steps, the history has {steps}")
    losses = list(net.history[:, "train_loss"]) + list(net.history[:, "valid_loss"])
    if not all(math.isfinite(v) for v in losses):
        raise RecipeError(f"a loss is not finite: {losses}")


def _recipe_seed(key) -> tuple[str, int | None]:
    """A run's key, ``(recipe, seed)`` or a recipe name alone, as ``(recipe, seed)``."""
    return (key[0], int(key[1])) if isinstance(key, tuple) else (key, None)


def results_table(nets: dict, test_accs: dict, b, device: str | torch.device
                  ) -> pd.DataFrame:
    """One row per run (``nets`` keyed by ``(recipe, seed)`` or by recipe): best
    validation epoch and its accuracy (:func:`course_utils.training.best_epoch`), test
    accuracy, epochs run, final learning rate, images per second, training time."""
    rows = []
    for key, net in nets.items():
        name, seed = _recipe_seed(key)
        epoch, valid_acc = best_epoch(net)
        rows.append({
            "recipe": get_recipe(name).title,
            "seed": seed,
            "epochs run": len(net.history),
            "best epoch": epoch,
            "valid acc": round(valid_acc, 4),
            "test acc": round(float(test_accs[key]), 4),
            "last lr": learning_rates(net)[-1],
            "images/s": round(images_per_second(net), 1),
            "train time (s)": round(train_seconds(net), 1),
            "profile": b.profile, "device": str(device),
            "run": ("rehearsal" if b.rehearsal else
                    "full training" if b["full_training"] else
                    "short CPU training" if "test_acc" in b.bounds else "pipeline check"),
        })
    return pd.DataFrame(rows).set_index("recipe")


def recipe_runs(nets: dict, test_accs: dict) -> pd.DataFrame:
    """The runs as the run layer's table (``variant`` = recipe, ``seed``, ``test_acc``,
    ``valid_acc``), for :func:`course_utils.experiment.summarize_runs` and
    :func:`course_utils.experiment.paired_differences`."""
    rows = []
    for key, net in nets.items():
        name, seed = _recipe_seed(key)
        rows.append({"variant": name, "seed": seed, "test_acc": float(test_accs[key]),
                     "valid_acc": best_epoch(net)[1]})
    return pd.DataFrame(rows)


def _per_recipe(test_accs: dict) -> dict[str, float]:
    """Mean test accuracy per recipe (keys ``(recipe, seed)`` or recipe names)."""
    by: dict[str, list[float]] = {}
    for key, acc in test_accs.items():
        by.setdefault(_recipe_seed(key)[0], []).append(float(acc))
    return {k: sum(v) / len(v) for k, v in by.items()}


def _accuracy_checks(test_accs: dict, b) -> list[tuple[bool, str]]:
    """The better recipe reaches ``b.bounds["test_acc"]`` and each recipe
    ``b.bounds["test_acc_floor"]`` (where set), on its mean over the seeds."""
    bound, floor = b.bounds["test_acc"], b.bounds.get("test_acc_floor")
    test_accs = _per_recipe(test_accs)
    best = max(test_accs.values())
    checks = [(best >= bound, f"best mean test accuracy {best:.4f} >= {bound}")]
    if floor is not None:
        checks += [(acc >= floor, f"{name}'s mean test accuracy {acc:.4f} >= the floor {floor}")
                   for name, acc in test_accs.items()]
    return checks


def check_full_result(test_accs: dict, b) -> str:
    """The accuracy bounds, where the budget sets them (quick and full): the better
    recipe reaches ``b.bounds["test_acc"]`` and each ``b.bounds["test_acc_floor"]``,
    on its mean over the seeds (``test_accs`` keyed by ``(recipe, seed)`` or recipe)."""
    if "test_acc" not in b.bounds:
        return "pipeline check: no accuracy bound (full training needs a GPU)"
    return check_bounds(_accuracy_checks(test_accs, b), "notebook 07's recipes", RecipeError)


def check_results(nets: dict, test_accs: dict, b, classes: int = 10) -> str:
    """07's regression check: every planned step ran with finite losses
    (:func:`check_pipeline`); where the budget sets them, the accuracy bounds of
    :func:`check_full_result` and ``b.bounds["loss_drop"]``: each run's last-epoch
    training loss at least that far below ln(``classes``), a uniform guess's loss."""
    for net in nets.values():
        check_pipeline(net, b)
    if "test_acc" not in b.bounds:
        runs = ", ".join(name if seed is None else f"{name} (seed {seed})"
                         for name, seed in map(_recipe_seed, nets))
        return (f"pipeline check passed for {runs}: every planned step ran and every "
                "loss is finite. Full training needs a GPU.")
    checks = _accuracy_checks(test_accs, b)
    drop = b.bounds.get("loss_drop")
    if drop is not None:
        ln = math.log(classes)
        for key, net in nets.items():
            name, seed = _recipe_seed(key)
            last = float(net.history[-1, "train_loss"])
            label = name if seed is None else f"{name} (seed {seed})"
            checks.append((ln - last >= drop, f"{label}'s last training loss {last:.3f} is "
                           f"at least {drop} below ln {classes} = {ln:.3f}"))
    return check_bounds(checks, "notebook 07's recipes", RecipeError)


def plot_recipes(nets: dict, title: str = "The paper's recipe against Adam + cosine"):
    """Validation accuracy and learning rate per epoch, one line per recipe."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_acc, ax_lr) = plt.subplots(1, 2, figsize=(11, 4))
    for key, net in nets.items():
        name, seed = _recipe_seed(key)
        label = get_recipe(name).title + ("" if seed is None else f", seed {seed}")
        epochs = net.history[:, "epoch"]
        ax_acc.plot(epochs, net.history[:, "valid_acc"], "-o", label=label)
        ax_lr.plot(epochs, learning_rates(net), "-o", label=label)
    ax_acc.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy")
    ax_lr.set(title="Learning rate", xlabel="epoch", ylabel="learning rate", yscale="log")
    for ax in (ax_acc, ax_lr):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    _legend_below(fig, ax_acc)
    return fig


def _legend_below(fig, ax) -> None:
    """One legend for the figure, in its own strip under the axes: it covers no curve."""
    handles, labels = ax.get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 2), fontsize=8,
               frameon=False)


# --------------------------------------------------------------------------- the first loss

def initial_losses(X, y, head_stds=(None, 0.01), seed: int = 0, **module_kwargs
                   ) -> pd.DataFrame:
    """The loss of the untrained AlexNet on one batch, for each output-layer init.

    Parameters
    ----------
    X, y : torch.Tensor
        One batch of images (uint8) and labels.
    head_stds : sequence
        ``AlexNet(head_std=...)`` values; None is the course's default init.
    seed : int
        Seeds the weights (the same for every row) and the dropout masks.
    **module_kwargs
        More ``AlexNet`` arguments.

    Returns
    -------
    pandas.DataFrame
        Per init: the cross-entropy with dropout on (as the first training step sees
        it) and off, the std of the logits, and ln(classes), the loss of a uniform
        guess.
    """
    rows = []
    for std in head_stds:
        seed_everything(seed)
        model = AlexNet(head_std=std, **module_kwargs)
        classes = model.classifier.fc8.out_features
        row = {"output layer (fc8) init": ("the course's default (Xavier)" if std is None
                                           else f"N(0, {std:g})")}
        with torch.no_grad():
            for mode in ("train", "eval"):
                model.train(mode == "train")
                seed_everything(seed)  # the same dropout masks for every init
                logits = model(X).float()
                loss = torch.nn.functional.cross_entropy(logits, y).item()
                row[f"loss ({'dropout on' if mode == 'train' else 'dropout off'})"] = loss
                if mode == "train":
                    row["logit std"] = logits.std().item()
        row["ln(classes)"] = math.log(classes)
        rows.append(row)
    return pd.DataFrame(rows).set_index("output layer (fc8) init")


def step_losses(net) -> list[float]:
    """The training loss of every step, in order, from skorch's batch history."""
    return [float(b["train_loss"]) for row in net.history for b in row["batches"]
            if "train_loss" in b]


def plot_first_steps(curves: dict, classes: int = 10, steps: int | None = None,
                     title: str = "The loss over the first training steps"):
    """Per-step training loss of each run (``{label: losses}``), the first ``steps``
    of each, with ln(classes), the loss of a uniform guess, as a dashed line."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for label, losses in curves.items():
        shown = losses if steps is None else losses[:steps]
        ax.plot(range(1, len(shown) + 1), shown, "-o", ms=3, label=label)
    ax.axhline(math.log(classes), color="k", ls="--", lw=1,
               label=f"ln {classes} = {math.log(classes):.2f}: a uniform guess")
    ax.set(xlabel="training step", ylabel="training loss (one batch)", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    return fig


def first_steps_note(curves: dict, steps: int, classes: int = 10, window: int = 5) -> str:
    """Each run's first loss against ln(classes), and how far apart the runs are over the
    last ``window`` of the first ``steps`` steps (fewer where a run is shorter;
    ``curves``: ``{label: losses}``, the small-output-layer run first)."""
    ln = math.log(classes)
    lines, tails = [], []
    steps = min([steps, *(len(losses) for losses in curves.values())])
    if steps < 1:
        raise RecipeError("first_steps_note needs at least one step of each run")
    for label, losses in curves.items():
        tail = losses[max(0, steps - window):steps]
        tails.append(sum(tail) / len(tail))
        lines.append(f"{label}: first loss {losses[0]:.2f} ({losses[0] - ln:+.2f} against "
                     f"ln {classes}), mean of steps {steps - len(tail) + 1}-{steps}: "
                     f"{tails[-1]:.2f}")
    if len(tails) == 2:
        gap = tails[1] - tails[0]
        if abs(gap) < 0.1:
            lines.append(f"by step {steps} the two are within {abs(gap):.2f} of each other: "
                         "the bad start cost nothing lasting")
        elif gap > 0:
            lines.append(f"by step {steps} the default init is still {gap:.2f} behind")
        else:
            lines.append(f"by step {steps} the default init is {-gap:.2f} ahead: the bad "
                         "start cost nothing lasting here")
    return "\n".join(lines)


def chance_note(test_acc: float, n_test: int, classes: int = 10) -> str:
    """Is a test accuracy above chance? A one-sided binomial test of the correct answers
    on ``n_test`` images against a guesser's 1 / ``classes``, at the course's level."""
    chance = 1 / classes
    correct = int(round(test_acc * n_test))
    p = stats.binomtest(correct, n_test, chance, alternative="greater").pvalue
    verdict = "above chance" if p < ALPHA else "not distinguishable from chance"
    return (f"test accuracy {test_acc:.4f} on {n_test:,} images; chance is {chance:.2f}; "
            f"a binomial test gives {format_p(p)}: {verdict}")
