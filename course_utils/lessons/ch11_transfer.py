"""Notebook 11: transfer learning, reusing what a network learned on some classes for others.

Notebook 11 pretrains the small AlexNet on five Fashion-MNIST classes
(:data:`SOURCE_CLASSES`, all of their training images), then learns the other five
(:data:`TARGET_CLASSES`) from a few labelled images each, three ways (:data:`MODES`):

* ``"frozen"``: keep the pretrained convolutions fixed, train only the classifier
  (fc6 and fc7 start from the pretrained weights, fc8 is new);
* ``"finetune"``: start from all pretrained weights (new fc8), train everything;
* ``"scratch"``: the same network from a random initialisation.

Each seed pretrains its own source network, then trains the three modes from it; the
notebook writes the freezing and the optimizer that gets only the trainable parameters
itself, and asserts its version of :func:`transfer_model` against this one. What the
frozen features hold is measured: a linear probe (:func:`linear_probe`, logistic
regression on the pretrained net's pool5 features, :func:`layer_features`), the share of
dead units (:func:`course_utils.training.dead_unit_share`) in pool5 and after fc6's and
fc7's ReLU (:func:`feature_report`). :func:`frozen_verdict` compares the probe and the
frozen net with training from scratch, seed by seed; :func:`transfer_differences` and
:func:`paper_table` compare fine-tuning with training from scratch, as the paper's
Table 2 claim.

:func:`load_pretrained` reads weights from a local file: the course's own
``state_dict`` files into a given model, or an ImageNet AlexNet through the course's one
ImageNet loader (:func:`course_utils.pretrained.load_imagenet_alexnet`). Nothing is
ever downloaded here. The budget (``pretrain``, ``pretrain_epochs``, ``shots``...)
and bounds are ``course_utils.budgets.budget("11")``.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import CourseError, Profile, display_path, get_profile, seed_everything
from ..data import CLASSES, Splits, course_splits, stratified_indices
from ..experiment import (ALPHA, bound_table, claim_table, difference_text, format_mean_std,
                          mean_std, paired_differences, paired_test, summarize_runs, verdict_verb)
from ..models import AlexNetSmall
from ..pretrained import (TORCHVISION_FILE, TORCHVISION_KEYS, ImageNetWeightsError,  # their home
                          MissingImageNetWeightsError, from_torchvision, load_imagenet_alexnet,
                          weights_dirs, weights_kind)
from ..training import capture_outputs, dead_unit_share
from ..exercises.ch11 import check_imagenet_transfer, imagenet_transfer_model  # their home

__all__ = ["DEAD_LAYERS", "MODES", "MissingWeightsError", "PAPER_ERRORS",
           "SOURCE_CLASSES", "TARGET_CLASSES", "TORCHVISION_FILE", "TORCHVISION_KEYS",
           "bound_checks", "check_imagenet_transfer", "class_subset",
           "default_torchvision_path", "display_path", "feature_report", "from_torchvision",
           "frozen_verdict", "imagenet_transfer_model", "layer_features", "linear_probe",
           "load_pretrained", "paper_table", "save_weights", "task_splits",
           "transfer_differences", "transfer_model", "transfer_splits", "transfer_tasks",
           "transfer_verdict"]

SOURCE_CLASSES = (0, 1, 2, 3, 4)  # T-shirt/top, Trouser, Pullover, Dress, Coat
TARGET_CLASSES = (5, 6, 7, 8, 9)  # Sandal, Shirt, Sneaker, Bag, Ankle boot
MODES = ("frozen", "finetune", "scratch")
#: The layers whose units :func:`feature_report` checks for dead units, after ReLU.
DEAD_LAYERS = ("pool5", "fc6", "fc7")
#: The paper's Table 2: top-1 validation error of one CNN trained on ILSVRC-2012 alone,
#: and of one CNN pretrained on ImageNet Fall 2011 then fine-tuned on it.
PAPER_ERRORS = {"scratch": 0.407, "finetune": 0.390}
#: The name notebook 11 catches: no weights file at the path (the pretrained module's error).
MissingWeightsError = MissingImageNetWeightsError


# --------------------------------------------------------------------------- data

def class_subset(X: torch.Tensor, y: torch.Tensor, classes, size: int | None = None,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of ``classes`` only, labels renumbered ``0..len(classes)-1``.

    Parameters
    ----------
    X, y : torch.Tensor
        Images and labels.
    classes : sequence of int
        The classes kept, in their new order.
    size : int, optional
        A stratified subset of this many images; None: all of them.
    seed : int
        Seed of the subset.

    Returns
    -------
    X, y : torch.Tensor
    """
    classes = list(classes)
    keep = torch.isin(y, torch.tensor(classes))
    X, y = X[keep], y[keep]
    remap = torch.full((int(max(classes)) + 1,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    y = remap[y]
    if size is not None:
        idx = stratified_indices(y, size, seed)
        X, y = X[idx], y[idx]
    return X, y


def task_splits(splits: Splits, classes, train: int | None, valid: int | None,
                test: int | None, seed: int = 0) -> Splits:
    """``splits`` restricted to ``classes`` (relabelled), cut to the given sizes.

    Parameters
    ----------
    splits : Splits
    classes : sequence of int
    train, valid, test : int or None
        Images per split (None: all of those classes).
    seed : int
        Seed of the subsets.

    Returns
    -------
    Splits
        With ``classes`` holding the kept classes' names.
    """
    X_tr, y_tr = class_subset(splits.X_train, splits.y_train, classes, train, seed)
    X_va, y_va = class_subset(splits.X_valid, splits.y_valid, classes, valid, seed)
    X_te, y_te = class_subset(splits.X_test, splits.y_test, classes, test, seed)
    names = tuple(splits.classes[c] for c in classes)
    return replace(splits, X_train=X_tr, y_train=y_tr, X_valid=X_va, y_valid=y_va,
                   X_test=X_te, y_test=y_te, classes=names)


def transfer_splits(profile: Profile | str | None = None, seed: int = 0, data=None) -> Splits:
    """All of Fashion-MNIST's images as the course splits them, for :func:`transfer_tasks`.

    The source task pretrains on all the training images of its classes (about
    25,000 of the 50,000 left after the 10,000-image validation hold-out); the
    budget's ``valid`` and ``test`` then cut each task's other splits.

    Parameters
    ----------
    profile : Profile or str, optional
        Recorded in the splits (default: the current profile); its sizes are not used.
    seed : int
        Seed of the validation hold-out.
    data : FashionMNIST, optional
        The dataset (default: :func:`course_utils.data.load_fashion_mnist`).

    Returns
    -------
    Splits
        All training images but a 10,000-image validation hold-out (50,000 of
        Fashion-MNIST's 60,000), and all test images; ten classes.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return course_splits(prof.with_(train_size=None, valid_size=10_000, test_size=None), seed,
                         data=data)


def transfer_tasks(splits: Splits, budget: Mapping, seed: int = 0) -> tuple[Splits, Splits]:
    """The source task (pretraining) and the few-shot target task.

    Parameters
    ----------
    splits : Splits
        The course splits, all ten classes.
    budget : mapping
        ``budget("11")`` or a dict with ``pretrain`` (source training images, None:
        all), ``shots`` (labelled target images per class), ``valid`` and ``test``.
    seed : int
        Seed of the subsets.

    Returns
    -------
    source, target : Splits
        :data:`SOURCE_CLASSES` and :data:`TARGET_CLASSES`, each relabelled 0-4.
    """
    source = task_splits(splits, SOURCE_CLASSES, budget["pretrain"], budget["valid"],
                         budget["test"], seed)
    shots = budget["shots"] * len(TARGET_CLASSES)
    target = task_splits(splits, TARGET_CLASSES, shots, budget["valid"], budget["test"], seed)
    return source, target


# --------------------------------------------------------------------------- models

def transfer_model(source: nn.Module | None, mode: str, num_classes: int = len(TARGET_CLASSES),
                   seed: int = 0, **model_kwargs) -> AlexNetSmall:
    """A new AlexNetSmall for the target task, set up for ``mode``.

    Parameters
    ----------
    source : nn.Module or None
        The pretrained network (ignored for ``"scratch"``). Its convolutions and
        fc6/fc7 are copied; fc8 is new, sized ``num_classes``.
    mode : {"frozen", "finetune", "scratch"}
        See :data:`MODES`. ``"frozen"`` turns off the gradients of ``model.features``
        (the convolutions' weights and biases).
    num_classes : int
    seed : int
        Seed of the new weights (:func:`course_utils.config.seed_everything`).
    **model_kwargs
        Passed to :class:`~course_utils.models.AlexNetSmall`.

    Returns
    -------
    AlexNetSmall
    """
    if mode not in MODES:
        raise CourseError(f"mode must be one of {MODES}, got {mode!r}")
    seed_everything(seed)
    model = AlexNetSmall(num_classes=num_classes, **model_kwargs)
    if mode == "scratch":
        return model
    if source is None:
        raise CourseError(f"mode {mode!r} needs the pretrained source network")
    weights = {k: v for k, v in source.state_dict().items() if not k.startswith("classifier.fc8")}
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in weights.items()
             if k in own and v.shape != own[k].shape]
    if wrong:
        sizes = ", ".join(f"{k}={v}" for k, v in model_kwargs.items())
        raise CourseError(
            f"the source network does not match AlexNetSmall({sizes}): wrong shape (source "
            f"vs new) {', '.join(wrong[:2])}; pass the source's sizes, e.g. channels=..., "
            "as model_kwargs")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not k.startswith("classifier.fc8") for k in missing):
        raise CourseError("the source network does not match AlexNetSmall: "
                                     f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    if mode == "frozen":
        model.features.requires_grad_(False)  # no gradients into conv1-conv5
    return model


# --------------------------------------------------------------------------- weights files

def save_weights(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model``'s ``state_dict`` to ``path`` (folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def default_torchvision_path() -> Path:
    """Where torchvision keeps its AlexNet weights once downloaded (torch hub's checkpoint
    folder, the last of :func:`course_utils.pretrained.weights_dirs`). This only computes
    the path; it never downloads."""
    return weights_dirs()[-1] / TORCHVISION_FILE


def load_pretrained(path: str | os.PathLike, model: nn.Module | None = None) -> nn.Module:
    """Load AlexNet weights from the local file ``path``; nothing is downloaded.

    With ``model=None`` the file is an ImageNet AlexNet (torchvision's
    ``alexnet-owt-7be5be79.pth`` or the original ``bvlc_alexnet.npy``), read by the
    course's one ImageNet loader, :func:`course_utils.pretrained.load_imagenet_alexnet`.
    With a ``model``, the file is a ``state_dict`` (:func:`save_weights`; torchvision's
    layer names are translated) loaded into it, every name and shape checked. Raises
    :data:`MissingWeightsError` when there is no file and
    :class:`~course_utils.pretrained.ImageNetWeightsError` when it is unreadable or
    does not fit.
    """
    if model is None:
        return load_imagenet_alexnet(path)
    path = Path(path).expanduser()
    weights_kind(path)  # the loader's checks: a missing file, or neither kind of weights file
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, refused globals...
        raise ImageNetWeightsError(f"could not read {display_path(path)} as PyTorch weights "
                                   f"({type(exc).__name__}): is the file complete?") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ImageNetWeightsError(f"{display_path(path)} holds no state_dict of tensors")
    state = from_torchvision(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{name}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                 for name, items in (("missing", missing), ("unexpected", unexpected),
                                     ("wrong shape (file vs model)", wrong)) if items]
        raise ImageNetWeightsError(f"{path.name} does not fit this model; " + "; ".join(parts)
                                   + ". Build the model with the sizes the file was saved with")
    model.load_state_dict(state)
    return model


# --------------------------------------------------------------------------- what the features hold

def layer_features(net: nn.Module, X: torch.Tensor, batch_size: int = 500
                   ) -> dict[str, torch.Tensor]:
    """The pretrained net's units for images ``X``, in eval mode (dropout off), caught by
    :func:`course_utils.training.capture_outputs`.

    Parameters
    ----------
    net : nn.Module
        An :class:`~course_utils.models.AlexNet` (or AlexNetSmall).
    X : torch.Tensor
        uint8 images (N, 1, 28, 28).
    batch_size : int

    Returns
    -------
    dict of str to torch.Tensor
        ``"pool5"``: the flattened output of the convolutional part (what fc6 reads);
        ``"fc6"`` and ``"fc7"``: those layers' outputs after their ReLU. Each (N, units),
        float32, on the CPU.
    """
    c = net.classifier
    return capture_outputs(net, X, dict(zip(DEAD_LAYERS, (net.flatten, c.act6, c.act7))),
                           batch_size)


def linear_probe(train_features, y_train, test_features, y_test, C: float = 1.0) -> float:
    """Accuracy of a logistic regression trained on ``train_features`` (standardised
    per feature), scored on ``test_features``.

    Parameters
    ----------
    train_features, test_features : array-like
        (N, features), e.g. :func:`layer_features`' ``"pool5"``.
    y_train, y_test : array-like
        Labels.
    C : float
        Inverse strength of the L2 penalty (scikit-learn's ``C``).

    Returns
    -------
    float
        Test accuracy.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    as_np = lambda a: a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)  # noqa: E731
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5_000))
    probe.fit(as_np(train_features), as_np(y_train))
    return float(probe.score(as_np(test_features), as_np(y_test)))


def feature_report(net: nn.Module, target: Splits, tol: float = 0.99, C: float = 1.0
                   ) -> dict[str, float]:
    """What the pretrained net's features hold for the target task.

    Parameters
    ----------
    net : nn.Module
        The pretrained (source) network.
    target : Splits
        The target task (:func:`transfer_tasks`): the probe trains on its few
        labelled training images and is scored on its test images.
    tol : float
        :func:`course_utils.training.dead_unit_share`'s threshold, on the target test
        images.
    C : float
        The probe's ``C``.

    Returns
    -------
    dict
        ``probe_acc`` (:func:`linear_probe` on pool5) and ``dead_pool5``,
        ``dead_fc6``, ``dead_fc7`` (:func:`course_utils.training.dead_unit_share` of each
        layer on the target test images).
    """
    train, test = layer_features(net, target.X_train), layer_features(net, target.X_test)
    report = {"probe_acc": linear_probe(train["pool5"], target.y_train, test["pool5"],
                                        target.y_test, C)}
    report.update({f"dead_{k}": dead_unit_share(test[k], tol) for k in DEAD_LAYERS})
    return report


# --------------------------------------------------------------------------- verdicts

def _by_seed(runs: pd.DataFrame, variant: str, metric: str) -> pd.Series:
    rows = runs[runs["variant"] == variant]
    if rows.empty:
        have = ", ".join(dict.fromkeys(runs["variant"]))
        raise CourseError(f"no runs of {variant!r}: have {have}")
    return rows.set_index("seed")[metric].astype(float)


def _source_reason() -> str:
    """What the source task never asked its convolutions to tell apart, in a sentence."""
    source = ", ".join(CLASSES[c] for c in SOURCE_CLASSES)
    target = ", ".join(CLASSES[c] for c in TARGET_CLASSES)
    return (f"The likely reason is the source task: its classes ({source}) are all garments, "
            "none of them a shoe or a bag, so its convolutions were never asked for what tells "
            f"the target classes ({target}) apart, such as sandal from sneaker from ankle "
            "boot; frozen, they cannot learn it from the target's labels, as a network trained "
            "from scratch or fine-tuned can.")


def frozen_verdict(runs: pd.DataFrame, probes: pd.DataFrame, chance: float,
                   alpha: float = ALPHA, fit: float = 0.9, many_dead: float = 0.25
                   ) -> dict[str, Any]:
    """What the frozen features are worth against training from scratch, decided from the
    measurements seed by seed (two-sided paired t-tests at level ``alpha``).

    ``runs``: one row per run (``variant``, ``seed``, ``test_acc``, ``train_acc``) with
    ``"frozen"`` and ``"scratch"``, each at its chosen rate (``"finetune"`` is reported
    when present); ``probes``: one row per seed from :func:`feature_report`; ``chance``:
    1 / classes. The frozen net *underfits* below a mean eval-mode training accuracy of
    ``fit``; a layer has many dead units from the share ``many_dead`` on.

    Returns a dict: ``verdict`` is ``"transfers"`` (the frozen net does not lose to
    scratch), ``"features"`` (it loses, and so does a linear probe on the fixed features:
    they hold less about the new classes than a network learns from the few labels) or
    ``"head"`` (the probe does not lose to scratch, the frozen net does); ``cause``
    (``"underfits"`` or ``"fits"``); the paired tests ``frozen_minus_scratch``,
    ``probe_minus_scratch``, ``probe_minus_frozen``, ``finetune_minus_scratch`` (None
    without fine-tune runs); the (mean, std) of ``probe``, ``frozen``, ``scratch``,
    ``frozen_train``; ``dead``; ``text``, the conclusion in sentences.
    """
    frozen = _by_seed(runs, "frozen", "test_acc")
    scratch = _by_seed(runs, "scratch", "test_acc")
    frozen_train = _by_seed(runs, "frozen", "train_acc")
    p = probes.set_index("seed")
    seeds = [s for s in frozen.index if s in p.index and s in scratch.index]
    if not seeds:
        raise CourseError("the probes, the frozen and the scratch runs share no seed")
    probe = p.loc[seeds, "probe_acc"].astype(float).values
    fr, sc = frozen.loc[seeds].values, scratch.loc[seeds].values
    frozen_minus_scratch = paired_test(fr, sc, alpha)
    probe_minus_scratch = paired_test(probe, sc, alpha)
    probe_minus_frozen = paired_test(probe, fr, alpha)
    stats = {name: tuple(mean_std(v).values()) for name, v in
             (("probe", probe), ("frozen", fr), ("scratch", sc),
              ("frozen_train", frozen_train.loc[seeds].values))}
    ms = lambda name: format_mean_std(*stats[name])  # noqa: E731
    dead = {k: float(p.loc[seeds, f"dead_{k}"].mean()) for k in DEAD_LAYERS}
    lines = [f"Target test accuracy over {len(seeds)} seed(s) (chance {chance:.2f}): scratch "
             f"{ms('scratch')}, frozen {ms('frozen')}, linear probe on the pretrained pool5 "
             f"features {ms('probe')}.",
             f"Frozen minus scratch: {difference_text(frozen_minus_scratch)}. Probe minus "
             f"scratch: {difference_text(probe_minus_scratch)}."]
    if frozen_minus_scratch["verdict"] != "lower":
        verdict = "transfers"
        lines.append("The frozen features beat training from scratch here: a classifier on the "
                     "fixed pretrained features does better than a whole network trained on "
                     "the few labels." if frozen_minus_scratch["verdict"] == "higher" else
                     "The frozen net does as well as training from scratch here (inside the "
                     "noise): fixing the pretrained features costs nothing measurable.")
    elif probe_minus_scratch["verdict"] == "lower":
        verdict = "features"
        lines.append("Transfer with frozen features loses to training from scratch here, and so "
                     "does a linear probe on the same fixed features: the pretrained pool5 "
                     "features hold less about the new classes than a network learns from "
                     "their few labels alone.")
        lines.append(_source_reason())
    else:
        verdict = "head"
        word = "beats" if probe_minus_scratch["verdict"] == "higher" else "does not lose to"
        lines.append(f"The fixed features carry the information (a linear probe on them {word} "
                     "scratch), but the frozen net loses to scratch: its classifier, trained on "
                     "the few labels, does not get it out.")
    tm = stats["frozen_train"][0]
    cause = "underfits" if tm < fit else "fits"
    lines.append(f"Probe minus frozen: {difference_text(probe_minus_frozen)}. The frozen net's "
                 f"eval-mode accuracy on its own training images is {ms('frozen_train')}"
                 + (f", below {fit:.2f}: it underfits, fc6-fc8 do not even fit the few "
                    "labelled images." if cause == "underfits" else ": it fits them."))
    dead_text = ", ".join(f"{k} {100 * v:.1f}%" for k, v in dead.items())
    if dead["pool5"] >= many_dead:
        lines.append(f"Many pool5 units are dead on the target images ({dead_text}): the "
                     "source task taught them nothing these classes switch on.")
    else:
        lines.append(f"Dead units (zero for nearly every target image): {dead_text}.")
    finetune_minus_scratch = None
    if (runs["variant"] == "finetune").any():
        tuned = _by_seed(runs, "finetune", "test_acc")
        common = [s for s in seeds if s in tuned.index]
        finetune_minus_scratch = paired_test(tuned.loc[common].values,
                                             scratch.loc[common].values, alpha)
        d = finetune_minus_scratch["verdict"]
        lines.append(f"Fine-tuning from the same pretrained weights, minus scratch: "
                     f"{difference_text(finetune_minus_scratch)}" + (
                         ": as a starting point that may change, the pretrained weights help "
                         "where, fixed, they lose." if d == "higher" and verdict != "transfers"
                         else ": the pretrained weights help either way." if d == "higher"
                         else ": pretraining hurts even as a starting point." if d == "lower"
                         else "."))
    return {"verdict": verdict, "cause": cause, **stats, "dead": dead,
            "frozen_minus_scratch": frozen_minus_scratch,
            "probe_minus_scratch": probe_minus_scratch,
            "probe_minus_frozen": probe_minus_frozen,
            "finetune_minus_scratch": finetune_minus_scratch, "text": "\n".join(lines)}


def transfer_differences(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """Each mode minus ``"scratch"``, seed by seed
    (:func:`course_utils.experiment.paired_differences`)."""
    return paired_differences(runs, baseline="scratch", metric=metric)


def transfer_verdict(runs: pd.DataFrame) -> str:
    """Fine-tuning against training from scratch, in one sentence built from the runs."""
    s = summarize_runs(runs, ("test_acc",))
    d = transfer_differences(runs).loc["finetune"]
    ms = lambda v: format_mean_std(s.loc[v, "test_acc_mean"], s.loc[v, "test_acc_std"])  # noqa: E731
    return (f"Fine-tune {ms('finetune')} vs scratch {ms('scratch')} target test accuracy: "
            f"pretraining {verdict_verb(d['verdict'], 'raise', 'lower')} it; fine-tune minus "
            f"scratch, seed by seed: {difference_text(d)} (the paper's Table 2: higher).")


def paper_table(runs: pd.DataFrame, probes: pd.DataFrame, chance: float, profile: str = "",
                device: str = ""):
    """The paper's pretrain-then-fine-tune result (Table 2) next to ours, and the
    frozen-features line: the frozen net and a linear probe against scratch.

    Parameters
    ----------
    runs : DataFrame
        One row per run and mode (``variant``, ``seed``, ``test_acc``, ``train_acc``).
    probes : DataFrame
        One row per seed (:func:`feature_report` and ``seed``).
    chance : float
        Chance accuracy of the target task.
    profile, device : str
        Where ours was measured; empty: the current profile and device.

    Returns
    -------
    pandas.DataFrame
        One row per claim: claim, paper, ours, verdict, profile, device.
    """
    s = summarize_runs(runs, ("test_acc",))
    ms = lambda v: format_mean_std(s.loc[v, "test_acc_mean"], s.loc[v, "test_acc_std"])  # noqa: E731
    d = transfer_differences(runs).loc["finetune"]
    paper_gain = PAPER_ERRORS["scratch"] - PAPER_ERRORS["finetune"]
    frozen = frozen_verdict(runs, probes, chance)
    says = {"transfers": "frozen features do not lose to scratch",
            "features": "frozen features lose to scratch, and so does a linear probe on them",
            "head": "the features carry it (the probe does not lose to scratch); the frozen "
                    "net loses it"}
    rows = [
        {"claim": "pretraining on more data, then fine-tuning, beats training on the task alone",
         "paper": f"top-1 error {100 * PAPER_ERRORS['scratch']:.1f}% -> "
                  f"{100 * PAPER_ERRORS['finetune']:.1f}% ({100 * paper_gain:+.1f} points of "
                  "accuracy; 1 CNN vs 1 CNN* pretrained on ImageNet Fall 2011)",
         "ours": f"fine-tune {ms('finetune')} vs scratch {ms('scratch')} accuracy; "
                 f"difference {difference_text(d)}",
         "verdict": f"fine-tune minus scratch: {d['verdict']} (the paper: higher)"},
        {"claim": "frozen features transfer (not in the paper; Donahue et al. 2014, DeCAF)",
         "paper": "-",
         "ours": f"frozen convolutions {ms('frozen')}, linear probe on pool5 "
                 f"{format_mean_std(*frozen['probe'])}, scratch {ms('scratch')}; frozen minus "
                 f"scratch {difference_text(frozen['frozen_minus_scratch'])}; probe minus "
                 f"scratch {difference_text(frozen['probe_minus_scratch'])}",
         "verdict": says[frozen["verdict"]]},
    ]
    return claim_table(rows, profile, device).reset_index()


def bound_checks(runs: pd.DataFrame, probes: pd.DataFrame, bounds: Mapping[str, float]
                 ) -> pd.DataFrame:
    """The budget's lower bounds, checked on every seed: each bounded quantity's lowest
    seed goes through :func:`course_utils.experiment.bound_table`.

    ``test_acc`` bounds fine-tuning and scratch, ``frozen_acc`` the frozen net,
    ``source_acc`` the pretrained net on its own task and ``probe_acc`` the linear
    probe; a bound the budget does not set is skipped.

    Returns
    -------
    DataFrame
        Indexed by ``(metric, variant)``: ``lowest`` (the worst seed), ``bound``, ``ok``.
    """
    values = {"finetune": ("test_acc", _by_seed(runs, "finetune", "test_acc")),
              "scratch": ("test_acc", _by_seed(runs, "scratch", "test_acc")),
              "frozen": ("frozen_acc", _by_seed(runs, "frozen", "test_acc")),
              "source": ("source_acc", probes["source_acc"]),
              "probe": ("probe_acc", probes["probe_acc"])}
    parts = [bound_table(pd.DataFrame({f"{key}_mean": [float(v.min())]}, index=[name]),
                         bounds, (key,))
             for name, (key, v) in values.items() if bounds.get(key) is not None]
    if not parts:
        raise CourseError("the budget bounds none of test_acc, frozen_acc, source_acc, "
                          "probe_acc")
    return pd.concat(parts).rename(columns={"mean": "lowest"})
