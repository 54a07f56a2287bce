"""Notebook 01: ReLU against tanh and sigmoid (Krizhevsky et al., 2012, sec. 3.1, Figure 1).

* the three functions and their derivatives, and how often sigmoid units sit
  where their local gradient is tiny (:func:`activation_curves`,
  :func:`saturation_share`);
* the mean |gradient| per layer at initialisation (:func:`gradient_by_layer`);
* the paper's Figure 1 experiment: the same small CNN
  (:class:`course_utils.models.SmallCNN`) trained with each activation, the same
  initialisation and the same optimiser, and the epochs and seconds each takes
  to reach a fixed training error (:func:`figure1_runs`, :func:`time_to_target`);
* dead ReLUs: units never active on a validation batch (:func:`dead_unit_share`).

How much work each step does, and the bounds the notebook asserts, are row "01"
of :mod:`course_utils.budgets` (``settings``: ``width``, ``target_error``, ``lr``,
``bad_lr``, ``dead_epochs``, ``grad_depth``, ``batch``).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import CourseError, seed_everything
from ..experiment import check_bounds, format_p, mean_std, paired_test
from ..models import ACTIVATIONS, SmallCNN
from ..training import capture_outputs, make_classifier
from ..training import dead_unit_share as dead_unit_share_of

__all__ = ["ACTIVATIONS", "MATCHED_INIT", "PAPER_SPEEDUP", "PAPER_TARGET_ERROR", "ActivationError",
           "activation_curves", "best_learning_rates", "check_dead_relus",
           "check_figure1", "dead_relu_experiment", "dead_unit_share", "figure1_claims",
           "figure1_runs", "figure1_verdict", "gradient_by_layer", "gradient_flow",
           "init_for", "lr_sweep", "make_activation_net", "plot_activation_curves", "plot_figure1",
           "plot_gradient_flow", "saturation_share",
           "sigmoid_saturation_bound", "slowdown_table", "speed_summary", "time_to_target",
           "weight_layers"]

#: The paper's Figure 1 claim: ReLU reaches 25% training error 6 times faster than tanh.
PAPER_SPEEDUP = 6.0
#: ``init="matched"``: each activation starts from the scheme designed for it, He (Kaiming)
#: for ReLU, Glorot (Xavier) for the saturating units.
MATCHED_INIT = {"relu": "he", "tanh": "xavier", "sigmoid": "xavier"}
PAPER_TARGET_ERROR = 0.25


class ActivationError(CourseError, ValueError):
    """Bad argument to one of this module's functions."""


def _check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ActivationError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return name


# --------------------------------------------------------------------------- the functions

def activation_curves(x: np.ndarray | None = None) -> pd.DataFrame:
    """Each activation and its derivative on ``x`` (default: -6..6 in 241 steps).

    Columns: ``x``, ``sigmoid``, ``d_sigmoid``, ``tanh``, ``d_tanh``, ``relu``,
    ``d_relu`` (ReLU's derivative taken as 0 at 0, as PyTorch does).
    """
    x = np.linspace(-6, 6, 241) if x is None else np.asarray(x, dtype=float)
    s = 1.0 / (1.0 + np.exp(-x))
    t = np.tanh(x)
    return pd.DataFrame({
        "x": x, "sigmoid": s, "d_sigmoid": s * (1 - s), "tanh": t, "d_tanh": 1 - t * t,
        "relu": np.maximum(x, 0.0), "d_relu": (x > 0).astype(float),
    })


def plot_activation_curves(curves: pd.DataFrame | None = None, threshold: float = 0.01):
    """Two panels: the functions, and their derivatives with the saturation threshold."""
    c = activation_curves() if curves is None else curves
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ACTIVATIONS:
        ax_f.plot(c["x"], c[name], label=name)
        ax_d.plot(c["x"], c[f"d_{name}"], label=f"{name}'")
    ax_d.axhline(threshold, color="grey", ls="--", lw=1, label=f"local gradient = {threshold}")
    ax_f.set(title="Activation functions", xlabel="pre-activation z", ylabel="f(z)",
             ylim=(-1.2, 3))
    ax_d.set(title="Their derivatives (the local gradient)", xlabel="pre-activation z",
             ylabel="f'(z)")
    for ax in (ax_f, ax_d):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def sigmoid_saturation_bound(threshold: float = 0.01) -> float:
    """|z| beyond which sigmoid'(z) < threshold (4.585 for 0.01)."""
    if not 0 < threshold < 0.25:
        raise ActivationError(f"threshold must be in (0, 0.25), sigmoid' peaks at 0.25; "
                              f"got {threshold}")
    s = (1 + np.sqrt(1 - 4 * threshold)) / 2  # s(1-s) = threshold, upper root
    return float(np.log(s / (1 - s)))


# --------------------------------------------------------------------------- the small CNN

def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers of ``model``, by short name, in order."""
    return [(name.rsplit(".", 1)[-1], m) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))]


def gradient_by_layer(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> pd.Series:
    """Mean |dLoss/dW| of each conv and linear layer's weights for one batch
    (cross-entropy loss, the model in train mode, nothing updated)."""
    model.train()
    model.zero_grad(set_to_none=True)
    device = _device_of(model)
    loss = nn.functional.cross_entropy(model(X.to(device)), y.to(device))
    loss.backward()
    grads = {name: float(m.weight.grad.abs().mean()) for name, m in weight_layers(model)}
    model.zero_grad(set_to_none=True)
    return pd.Series(grads, name="mean |grad|")


def gradient_flow(X: torch.Tensor, y: torch.Tensor, depth: int = 8, seed: int = 0,
                  activations: Iterable[str] = ("sigmoid", "tanh", "relu"),
                  init: str = "xavier") -> pd.DataFrame:
    """Mean |gradient| per layer (rows) for each activation (columns), each net
    freshly initialised with the same seed and scheme."""
    cols = {}
    for name in activations:
        seed_everything(seed)
        cols[name] = gradient_by_layer(SmallCNN(name, depth=depth, init=init), X, y)
    out = pd.DataFrame(cols)
    out.index.name = "layer"
    return out


def plot_gradient_flow(table: pd.DataFrame, title: str = "Mean |gradient| per layer at "
                       "initialisation"):
    """Grouped bars per layer, log scale (the gradient shrinks by orders of magnitude)."""
    fig, ax = plt.subplots(figsize=(10, 4))
    table.plot.bar(ax=ax, logy=True, rot=0)
    ax.set(title=title, xlabel="layer (input side on the left)",
           ylabel="mean |dLoss/dW| (log scale)")
    ax.legend(title="activation")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def _device_of(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters live (a trained skorch module may be on a GPU)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def saturation_share(model: nn.Module, X: torch.Tensor, threshold: float = 0.01) -> pd.DataFrame:
    """Per sigmoid layer (and ``"all"``): the share of unit activations on ``X``
    whose local gradient s(1 - s) is below ``threshold`` (saturated units), and
    the mean local gradient (at most 0.25: even an unsaturated sigmoid shrinks
    the gradient by 4x or more at every layer)."""
    sigmoid_saturation_bound(threshold)  # validates threshold
    outs = capture_outputs(model, X, nn.Sigmoid)
    rows = {}
    for name, s in outs.items():
        local = s * (1 - s)
        rows[name] = {"saturated share": float((local < threshold).float().mean()),
                      "mean local gradient": float(local.mean()), "units": s.numel()}
    table = pd.DataFrame(rows).T
    w = table["units"] / table["units"].sum()
    table.loc["all"] = [float((table["saturated share"] * w).sum()),
                        float((table["mean local gradient"] * w).sum()), table["units"].sum()]
    table["units"] = table["units"].astype(int)
    table.index.name = "layer"
    return table


def dead_unit_share(model: nn.Module, X: torch.Tensor) -> pd.Series:
    """Per ReLU layer, the share of units never active (output 0 for every image
    of ``X``, and every position of a feature map), and ``"all"``: the course's one
    dead-unit measure (:func:`course_utils.training.dead_unit_share`) on each layer.

    A unit is a channel of a conv layer, a neuron of a linear layer.
    """
    outs = capture_outputs(model, X, nn.ReLU)
    shares = {name: dead_unit_share_of(o) for name, o in outs.items()}
    units = {name: o.shape[1] for name, o in outs.items()}
    shares["all"] = sum(shares[n] * units[n] for n in units) / sum(units.values())
    return pd.Series(shares, name="dead share")


# --------------------------------------------------------------------------- Figure 1

def time_to_target(errors: Sequence[float], seconds: Sequence[float], target: float
                   ) -> tuple[float, float]:
    """(epochs, seconds) until the training error first reaches ``target``.

    ``errors[i]`` and ``seconds[i]`` belong to epoch ``i + 1`` (seconds is the
    duration of that epoch). Epochs are interpolated linearly between the two
    epochs that straddle the target, so 1.5 means "half way through epoch 2";
    seconds are scaled the same way. ``(nan, nan)`` if the target is never reached.
    """
    errors, seconds = np.asarray(errors, float), np.asarray(seconds, float)
    if errors.shape != seconds.shape or errors.ndim != 1 or len(errors) == 0:
        raise ActivationError("errors and seconds must be two equal-length, non-empty lists "
                              "(one value per epoch)")
    hit = np.flatnonzero(errors <= target)
    if len(hit) == 0:
        return float("nan"), float("nan")
    i = int(hit[0])
    cum = np.cumsum(seconds)
    if i == 0:
        return 1.0, float(cum[0])
    prev, cur = errors[i - 1], errors[i]
    frac = (prev - target) / (prev - cur) if prev != cur else 1.0
    return float(i + frac), float(cum[i - 1] + frac * seconds[i])


def init_for(activation: str, init: str) -> str:
    """The initialisation ``activation`` starts from: ``init``, or with ``"matched"`` the
    scheme of :data:`MATCHED_INIT`."""
    return MATCHED_INIT[_check_activation(activation)] if init == "matched" else init


def make_activation_net(activation: str, lr: float, max_epochs: int, seed: int = 0,
                        depth: int = 3, **kwargs):
    """The Figure 1 set-up as a course classifier: :class:`SmallCNN` with
    ``activation``, SGD with momentum 0.9, a constant learning rate, no early
    stopping, no checkpoint, no validation (the claim is about training error)."""
    _check_activation(activation)
    return make_classifier(SmallCNN, valid=None, max_epochs=max_epochs, lr=lr,
                           optimizer=torch.optim.SGD, optimizer__momentum=0.9,
                           cosine=False, patience=None, checkpoint=False, seed=seed,
                           module__activation=activation, module__depth=depth,
                           verbose=0, **kwargs)


def dead_relu_experiment(X, y, X_valid, lrs: Sequence[float], max_epochs: int,
                         seed: int = 0, make=make_activation_net, keep_nets: bool = False,
                         **kwargs) -> pd.DataFrame:
    """Train the ReLU :class:`SmallCNN` once per learning rate (same seed), then
    count the never-active units on ``X_valid``: one row per learning rate with
    each ReLU layer's dead share, ``all``, and the final training error (and the
    fitted net in a ``net`` column with ``keep_nets``). ``make`` builds the net
    (:func:`make_activation_net`'s signature)."""
    rows = {}
    for lr in lrs:
        net = make("relu", lr=lr, max_epochs=max_epochs, seed=seed, **kwargs)
        net.fit(X, y)
        row = dead_unit_share(net.module_, X_valid).to_dict()
        row["final train error"] = 1.0 - float(net.history[-1, "train_acc"])
        if keep_nets:
            row["net"] = net
        rows[f"lr={lr:g}"] = row
    out = pd.DataFrame(rows).T
    out.index.name = "learning rate"
    return out.astype({c: float for c in out.columns if c != "net"})


def lr_sweep(X, y, lrs: Sequence[float], max_epochs: int, seed: int = 0,
             activations: Iterable[str] = ("relu", "tanh", "sigmoid"), depth: int = 3,
             init: str = "xavier", make=make_activation_net, **kwargs) -> pd.DataFrame:
    """The paper's tuning step: train each activation once per learning rate.

    The paper chose "the learning rates for each network ... independently to make
    training as fast as possible"; here each (activation, rate) pair trains for
    ``max_epochs`` from ``seed`` and is scored by its final training error. ``init``
    may be ``"matched"`` (:func:`init_for`); ``make`` builds each net
    (:func:`make_activation_net`'s signature).

    Returns
    -------
    DataFrame
        One row per pair: ``activation``, ``depth``, ``init``, ``lr``,
        ``final_train_error`` and ``final_train_loss`` (NaN when it diverged).
    """
    rows = []
    for name in activations:
        for lr in lrs:
            net = make(name, lr=lr, max_epochs=max_epochs, seed=seed, depth=depth,
                       module__init=init_for(name, init), **kwargs).fit(X, y)
            loss = float(net.history[-1, "train_loss"])
            rows.append({"activation": name, "depth": depth, "init": init, "lr": float(lr),
                         "final_train_error": 1.0 - float(net.history[-1, "train_acc"]),
                         "final_train_loss": loss if np.isfinite(loss) else float("nan")})
    return pd.DataFrame(rows)


def best_learning_rates(sweep: pd.DataFrame) -> dict[str, float]:
    """Per activation, the rate of :func:`lr_sweep` with the lowest final training
    error (ties and diverged runs: the smaller rate wins)."""
    best = {}
    for name, rows in sweep.groupby("activation", sort=False):
        rows = rows.assign(err=rows["final_train_error"].fillna(np.inf)).sort_values(["err", "lr"])
        best[name] = float(rows["lr"].iloc[0])
    return best


def figure1_runs(X, y, X_test, y_test, lrs: Mapping[str, float], max_epochs: int,
                 seeds: Sequence[int], target: float, depth: int = 3, init: str = "xavier",
                 make=make_activation_net, **kwargs) -> pd.DataFrame:
    """The Figure 1 experiment over several seeds: one row per (seed, activation).

    Each activation trains at its own learning rate (``lrs``, from
    :func:`best_learning_rates`) for ``max_epochs`` from ``init`` (or, with
    ``"matched"``, the scheme of :func:`init_for`); the activations are interleaved seed
    by seed, so a machine that slows down slows them alike. ``make`` builds each net
    (:func:`make_activation_net`'s signature).

    Returns
    -------
    DataFrame
        ``depth``, ``init``, ``activation``, ``seed``, ``lr``, ``epochs_to_target``
        and ``seconds_to_target`` (:func:`time_to_target`; NaN: not reached),
        ``final_train_error``, ``train_loss_drop`` (first epoch's loss minus the
        last's), ``test_acc``, and the curves ``errors`` (training error per epoch)
        and ``seconds`` (cumulative seconds at each epoch's end).
    """
    rows = []
    y_test = np.asarray(y_test)
    for seed in seeds:
        for name, lr in lrs.items():
            net = make(name, lr=lr, max_epochs=max_epochs, seed=seed, depth=depth,
                       module__init=init_for(name, init), **kwargs).fit(X, y)
            errors = 1.0 - np.asarray(net.history[:, "train_acc"], float)
            secs = np.asarray(net.history[:, "dur"], float)
            loss = np.asarray(net.history[:, "train_loss"], float)
            ep, sec = time_to_target(errors, secs, target)
            rows.append({"depth": depth, "init": init, "activation": name, "seed": int(seed),
                         "lr": float(lr), "epochs_to_target": ep, "seconds_to_target": sec,
                         "final_train_error": float(errors[-1]),
                         "train_loss_drop": float(loss[0] - loss[-1]),
                         "test_acc": float((net.predict(X_test) == y_test).mean()),
                         "errors": errors.tolist(), "seconds": np.cumsum(secs).tolist()})
    return pd.DataFrame(rows)


def speed_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (depth, init, activation): its learning rate, how many seeds reached the
    target, mean and std over seeds of the epochs and seconds to the target (over
    the seeds that reached it), of the final training error and of test accuracy."""
    rows = []
    for (depth, init, name), g in runs.groupby(["depth", "init", "activation"], sort=False):
        reached = g["epochs_to_target"].notna()
        row = {"depth": depth, "init": init, "activation": name, "lr": g["lr"].iloc[0],
               "reached": f"{int(reached.sum())}/{len(g)}"}
        for col in ("epochs_to_target", "seconds_to_target", "final_train_error", "test_acc"):
            vals = g.loc[reached, col] if col.endswith("to_target") else g[col]
            stats = mean_std(vals)
            row[f"{col}_mean"], row[f"{col}_std"] = stats["mean"], stats["std"]
        rows.append(row)
    return pd.DataFrame(rows).set_index(["depth", "init", "activation"])


def slowdown_table(runs: pd.DataFrame, reference: str = "relu") -> pd.DataFrame:
    """How many times more epochs each activation needs than ``reference`` to reach
    the target, seed by seed (the paper's ratio), per depth and init.

    A seed where the activation never reached the target counts as "never"; the
    verdict is the course's paired t-test (:func:`course_utils.experiment.paired_test`)
    on the epochs of the seeds where both reached it: "slower" or "faster" when it
    rejects no difference at 95%, else "inside the noise" (so with fewer than 2
    such seeds); "never reached" when no seed reached it.
    """
    rows = []
    for (depth, init), g in runs.groupby(["depth", "init"], sort=False):
        ref = g[g["activation"] == reference].set_index("seed")["epochs_to_target"]
        for name in dict.fromkeys(g["activation"]):
            if name == reference:
                continue
            other = g[g["activation"] == name].set_index("seed")["epochs_to_target"]
            seeds = ref.index.intersection(other.index)
            r, o = ref.loc[seeds], other.loc[seeds]
            both = r.notna() & o.notna()
            ratio = (o[both] / r[both]).to_numpy()
            stats = mean_std(ratio)
            test = paired_test(o[both].to_numpy(), r[both].to_numpy())
            if o.isna().all():
                verdict = "never reached" if r.notna().any() else "neither reached"
            else:
                verdict = {"higher": "slower", "lower": "faster"}.get(test["verdict"],
                                                                     test["verdict"])
            rows.append({"depth": depth, "init": init, "activation": name,
                         "reference": reference, "paired seeds": int(both.sum()),
                         "ratio_mean": stats["mean"], "ratio_std": stats["std"],
                         "ratio per seed": ", ".join(f"{x:.2f}" for x in ratio),
                         "t": test["t"], "p": test["p"], "verdict": verdict})
    return pd.DataFrame(rows).set_index(["depth", "init", "activation"])


def plot_figure1(runs: pd.DataFrame, target: float):
    """Training error against epochs (left) and against seconds (right), one row
    of panels per (depth, init), one line per seed, one colour per activation."""
    groups = list(runs.groupby(["depth", "init"], sort=False))
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, 3.8 * len(groups)), squeeze=False)
    colours = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(runs["activation"]))}
    for (key, g), (ax_e, ax_s) in zip(groups, axes):
        depth, init = key
        for _, r in g.iterrows():
            label = r["activation"] if r["seed"] == g["seed"].min() else None
            epochs = np.arange(1, len(r["errors"]) + 1)
            ax_e.plot(epochs, r["errors"], "-", color=colours[r["activation"]], alpha=0.8,
                      label=label)
            ax_s.plot(r["seconds"], r["errors"], "-", color=colours[r["activation"]],
                      alpha=0.8, label=label)
        for ax, xlabel in ((ax_e, "epoch"), (ax_s, "seconds of training")):
            ax.axhline(target, color="grey", ls="--", lw=1, label=f"target {target:.0%}")
            ax.set(xlabel=xlabel, ylabel="training error", ylim=(0, 0.95),
                   title=f"{depth} conv layers, {init} init (one line per seed)")
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    return fig


def figure1_claims(runs: pd.DataFrame, target: float) -> list[dict]:
    """Rows for :func:`course_utils.experiment.claim_table` from :func:`figure1_runs`:
    the epochs tanh (and sigmoid) need over ReLU's, per depth and init, mean ± std
    over seeds, with the verdict of :func:`slowdown_table`."""
    rows = []
    table = slowdown_table(runs)
    for (depth, init, name), r in table.iterrows():
        paper = (f"{PAPER_SPEEDUP:g}x (CIFAR-10, 4 layers, {PAPER_TARGET_ERROR:.0%} error)"
                 if name == "tanh" else "not reported")
        if r["verdict"] in ("never reached", "neither reached"):
            ours = f"{name} never reached {target:.0%} ({r['verdict']})"
        else:
            std = "" if not np.isfinite(r["ratio_std"]) else f" ± {r['ratio_std']:.2f}"
            ours = (f"{r['ratio_mean']:.2f}x{std} over {r['paired seeds']} seeds "
                    f"({r['verdict']}, {format_p(r['p'])})")
        rows.append({"claim": f"epochs {name} / epochs ReLU to {target:.0%} training error, "
                              f"{depth} conv layers, {init} init", "paper": paper,
                     "ours": ours})
    return rows


def figure1_verdict(runs: pd.DataFrame, target: float) -> str:
    """One sentence per depth and init, computed from the runs: is ReLU faster than
    tanh here, and by how much?"""
    lines = []
    table = slowdown_table(runs)
    for (depth, init, name), r in table.iterrows():
        if name != "tanh":
            continue
        where = f"{depth} conv layers, {init} init"
        if r["verdict"] == "never reached":
            lines.append(f"{where}: tanh never reached {target:.0%} training error; ReLU did.")
        elif r["verdict"] == "neither reached":
            lines.append(f"{where}: neither reached {target:.0%} training error.")
        elif r["verdict"] == "slower":
            lines.append(f"{where}: tanh needed {r['ratio_mean']:.2f}x ReLU's epochs: ReLU is "
                         f"faster, but not {PAPER_SPEEDUP:g}x faster"
                         if r["ratio_mean"] < PAPER_SPEEDUP else
                         f"{where}: tanh needed {r['ratio_mean']:.2f}x ReLU's epochs: "
                         "as large as the paper's factor.")
        elif r["verdict"] == "faster":
            lines.append(f"{where}: tanh reached the target in {r['ratio_mean']:.2f}x ReLU's "
                         "epochs: here tanh is faster, the paper's claim does not hold.")
        else:
            lines.append(f"{where}: tanh needed {r['ratio_mean']:.2f}x ReLU's epochs, a "
                         "difference inside the noise of the seeds.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- bounds

def check_figure1(runs: pd.DataFrame, bounds: Mapping, depth: int = 3,
                  init: str = "matched") -> str:
    """Check the Figure 1 runs at ``depth`` with ``init`` against the budget's bounds
    (those it lacks are skipped). Other initialisations (the paper's N(0, 0.01),
    slow to start) are reported, not bounded.

    Parameters
    ----------
    runs : DataFrame
        :func:`figure1_runs` (one or several depths and inits).
    bounds : mapping
        ``budget("01").bounds``: ``relu_final_error`` (every ReLU seed's final
        training error at most this), ``relu_loss_drop`` (every ReLU seed's
        training loss fell by at least this), ``best_final_error`` (the best
        activation's mean final training error at most this) and ``test_acc``
        (ReLU's mean test accuracy at least this).

    Returns
    -------
    str
        What was checked (:func:`course_utils.experiment.check_bounds`, which raises
        :class:`course_utils.experiment.ExperimentError` when a bound is missed).
    """
    g = runs[(runs["depth"] == depth) & (runs["init"] == init)]
    if g.empty:
        raise ActivationError(f"no runs with depth {depth} and init {init!r} to check")
    relu = g[g["activation"] == "relu"]
    checks = []
    if "relu_final_error" in bounds:
        worst = relu["final_train_error"].max()
        checks.append((worst <= bounds["relu_final_error"],
                       f"every ReLU seed's final training error <= {bounds['relu_final_error']}"
                       f" (worst {worst:.3f})"))
    if "relu_loss_drop" in bounds:
        least = relu["train_loss_drop"].min()
        checks.append((least >= bounds["relu_loss_drop"],
                       f"every ReLU seed's training loss fell by >= {bounds['relu_loss_drop']}"
                       f" (least {least:.3f})"))
    if "best_final_error" in bounds:
        means = g.groupby("activation")["final_train_error"].mean()
        checks.append((means.min() <= bounds["best_final_error"],
                       f"the best mean final training error ({means.idxmin()}) "
                       f"{means.min():.3f} <= {bounds['best_final_error']}"))
    if "test_acc" in bounds:
        acc = relu["test_acc"].mean()
        checks.append((acc >= bounds["test_acc"],
                       f"ReLU's mean test accuracy {acc:.3f} >= {bounds['test_acc']}"))
    return check_bounds(checks, "notebook 01's runs")


def check_dead_relus(dead: pd.DataFrame, bounds: Mapping) -> str:
    """Check :func:`dead_relu_experiment`'s table (sound learning rate first, the
    bad one second): the bad rate's share of dead units exceeds the sound one's
    by more than ``bounds["dead_margin"]`` (:func:`course_utils.experiment.check_bounds`)."""
    checks = []
    if "dead_margin" in bounds:
        sound, bad = float(dead["all"].iloc[0]), float(dead["all"].iloc[1])
        checks.append((bad - sound > bounds["dead_margin"],
                       f"dead share {bad:.3f} at {dead.index[1]} minus {sound:.3f} at "
                       f"{dead.index[0]} = {bad - sound:.3f} > {bounds['dead_margin']}"))
    return check_bounds(checks, "notebook 01's runs")
