"""Training the small AlexNet with skorch and looking at the result (notebook 05).

What this adds to :mod:`course_utils.training` and :mod:`course_utils.plots`:
how much 05 trains per profile and the test-accuracy bound it must reach, a
table of the callbacks a net runs, sklearn's ``classification_report`` as a
table, the ``save_params`` / ``load_params`` round trip, and a prediction for a
single image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import CourseError, Profile, get_profile
from ..models import AlexNetSmall
from ..plots import as_numpy
from ..training import make_classifier

#: Test accuracy 05 must reach, per profile. Full: the reference course reached
#: 0.916. Quick: the issue's 0.85. Smoke: chance is 0.10; 1,000 images x 3
#: epochs measured 0.415 here, so 0.30 (three times chance) leaves margin.
TEST_BOUNDS = {"full": 0.92, "quick": 0.85, "smoke": 0.30}

#: What 05 trains on, when it differs from the profile. The quick profile's
#: 6,000 images x 4 epochs stop at 0.74 test accuracy with the small AlexNet
#: (measured), so 05 trains on 20,000 images for 6 epochs there; smoke's single
#: epoch reached only 0.29, so smoke trains 3.
TRAINING_PLANS = {
    "smoke": {"epochs": 3},
    "quick": {"train_size": 20_000, "epochs": 6},
}


class AccuracyBoundError(CourseError, AssertionError):
    """A trained net missed its profile's accuracy bound."""


class EvaluationError(CourseError, ValueError):
    """Bad input to one of the evaluation helpers."""


@dataclass(frozen=True)
class TrainingPlan:
    profile: Profile  # sized for course_splits
    max_epochs: int
    bound: float

    @property
    def note(self) -> str:
        p = self.profile
        train = "all 50,000" if p.train_size is None else f"{p.train_size:,}"
        return (f"profile {p.name}: {train} training images, {p.valid_size:,} validation, "
                f"up to {self.max_epochs} epochs; test-accuracy bound {self.bound}")


def training_plan(profile: Profile | str | None = None) -> TrainingPlan:
    """How much 05 trains in ``profile`` and the bound it asserts."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    plan = TRAINING_PLANS.get(prof.name, {})
    sized = prof.with_(train_size=plan.get("train_size", prof.train_size))
    return TrainingPlan(sized, plan.get("epochs", prof.epochs), TEST_BOUNDS[prof.name])


def check_test_accuracy(acc: float, profile: Profile | str | None = None) -> str:
    """Raise :class:`AccuracyBoundError` when ``acc`` is under the profile's bound."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    bound = TEST_BOUNDS[prof.name]
    if not acc >= bound:
        raise AccuracyBoundError(f"test accuracy {acc:.4f} is below the {prof.name} "
                                 f"profile's bound {bound}")
    return f"test accuracy {acc:.4f} >= {bound} ({prof.name} profile)"


def callback_table(net) -> pd.DataFrame:
    """The callbacks a skorch net runs, in order, with their main settings.

    An unfitted ``net`` is left alone: the table comes from an initialised clone.
    """
    if not hasattr(net, "callbacks_"):
        from sklearn.base import clone

        net = clone(net).initialize_callbacks()
    keys = ("monitor", "patience", "policy", "T_max", "lower_is_better", "load_best",
            "scoring", "on_train")
    rows = []
    for name, cb in net.callbacks_:
        params = cb.get_params(deep=False) if hasattr(cb, "get_params") else {}
        shown = {k: params[k] for k in keys if k in params and params[k] is not None}
        policy = shown.get("policy")
        if policy is not None and not isinstance(policy, str):
            shown["policy"] = getattr(policy, "__name__", str(policy))
        if policy is not None and shown["policy"] != "ReduceLROnPlateau":
            shown.pop("monitor", None)  # only a plateau schedule watches a score
        rows.append({"name": name, "callback": type(cb).__name__,
                     "settings": ", ".join(f"{k}={v}" for k, v in shown.items())})
    return pd.DataFrame(rows).set_index("name")


def classification_table(y_true, y_pred, classes) -> pd.DataFrame:
    """sklearn's ``classification_report`` as a DataFrame: precision, recall,
    F1 and support per class, then accuracy and the averages."""
    from sklearn.metrics import classification_report

    y_true = as_numpy(y_true)
    y_pred = as_numpy(y_pred)
    if len(y_true) != len(y_pred):
        raise EvaluationError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    report = classification_report(y_true, y_pred, labels=range(len(classes)),
                                   target_names=list(classes), output_dict=True,
                                   zero_division=0)
    acc = report.pop("accuracy")
    table = pd.DataFrame(report).T
    table.loc["accuracy"] = [np.nan, np.nan, acc, len(y_true)]
    table = table.round(3)
    table["support"] = table["support"].astype(int)
    return table


def save_and_reload(net, folder: str | Path, module=AlexNetSmall, **kwargs):
    """Save ``net``'s parameters with ``save_params``, then build a fresh net and
    load them with ``load_params``. Returns ``(reloaded net, params file)``.

    ``kwargs`` (e.g. ``module__dropout``) must describe the same architecture.
    """
    path = Path(folder) / "params.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    net.save_params(f_params=path)
    fresh = make_classifier(module, valid=None, max_epochs=1, device=net.device,
                            progress=False, verbose=0, **kwargs)
    fresh.initialize()
    try:
        fresh.load_params(f_params=path)
    except RuntimeError as exc:  # shape mismatch: a different architecture
        raise EvaluationError(f"the saved parameters do not fit this module: {exc}") from None
    return fresh, path


def predict_one(net, image, classes, top: int = 3) -> pd.DataFrame:
    """Class probabilities for one image of shape (1, 28, 28) or (28, 28),
    the ``top`` most likely first."""
    x = torch.as_tensor(image)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise EvaluationError(f"expected one image shaped (1, H, W) or (H, W), got "
                              f"{tuple(x.shape)}; pass X_test[i], not X_test[i:j]")
    proba = net.predict_proba(x.unsqueeze(0))[0]
    order = np.argsort(-proba)[:top]
    return pd.DataFrame({"class": [classes[i] for i in order],
                         "probability": proba[order].round(4)},
                        index=pd.Index(range(1, len(order) + 1), name="rank"))


def plot_prediction(image, proba_table: pd.DataFrame, true_class: str | None = None,
                    title: str = "One test image and the net's prediction"):
    """The image beside a bar chart of its top class probabilities."""
    import matplotlib.pyplot as plt

    img = as_numpy(image)
    img = img[0] if img.ndim == 3 else img
    fig, (ax_img, ax_bar) = plt.subplots(1, 2, figsize=(8, 3),
                                         gridspec_kw={"width_ratios": [1, 2]})
    ax_img.imshow(img, cmap="gray_r")
    ax_img.set(title=f"true: {true_class}" if true_class else "input", xticks=[], yticks=[])
    ax_bar.barh(proba_table["class"][::-1], proba_table["probability"][::-1],
                label="predicted probability")
    ax_bar.set(title="Top classes", xlabel="probability", ylabel="class", xlim=(0, 1))
    ax_bar.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
