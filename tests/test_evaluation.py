"""Notebook 05's helpers: budget and bounds, measuring, reports;
and the classifier the notebook writes out, against make_classifier."""
import ast
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from course_helpers import random_batch
from course_utils.budgets import FULL_TRAIN, budget
from course_utils.config import PROFILES
from course_utils.data import CLASSES
from course_utils.experiment import RunResult
from course_utils.lessons.ch05_skorch import (AccuracyBoundError, EvaluationError, budget_note,
                                              callback_table, check_learning,
                                              check_test_accuracy, classification_table,
                                              confusion_note, gallery_note, measure,
                                              top_confusions)
from course_utils.plots import format_probability
from course_utils.models import AlexNetSmall
from course_utils.training import accuracy, make_classifier


@pytest.mark.parametrize("profile", list(PROFILES))
def test_budget_note_states_the_row(profile):
    b = budget("05", profile)
    note = budget_note(b)
    train = f"all {FULL_TRAIN:,}" if b.train is None else f"{b.train:,}"
    assert note.startswith(f"profile {profile}: {train} training images")
    assert f"up to {b.epochs} epochs" in note and note.endswith(f"bound {b.bounds['test_acc']}")


def test_every_bound_is_a_real_check():
    """Above chance by a margin, and stricter as the profiles grow."""
    bounds = [budget("05", profile).bounds["test_acc"] for profile in PROFILES]
    assert 1 / len(CLASSES) < bounds[0] and bounds == sorted(bounds)


@pytest.mark.parametrize("profile", list(PROFILES))
def test_bounds_are_checked_per_budget(profile):
    b = budget("05", profile)
    bound = b.bounds["test_acc"]
    assert f"{bound + 0.01:.4f} >= the {profile} profile's bound {bound}" in check_test_accuracy(
        bound + 0.01, b)
    with pytest.raises(AccuracyBoundError, match=re.escape(f"{profile} profile's bound {bound}")):
        check_test_accuracy(bound - 0.01, b)
    with pytest.raises(AccuracyBoundError):
        check_test_accuracy(float("nan"), b)


class _History(list):
    """Enough of skorch's history for check_learning: ``h[:, key]``."""

    def __getitem__(self, key):
        if isinstance(key, tuple):
            return [row[key[1]] for row in self]
        return super().__getitem__(key)


def _net(valid_losses, train_loss=1.0):
    return SimpleNamespace(history=_History({"valid_loss": v, "train_loss": train_loss}
                                            for v in valid_losses))


def test_check_learning_wants_the_validation_loss_to_fall():
    assert "fell by 0.300" in check_learning(_net([2.3, 2.1, 2.0]), {"valid_loss_drop": 0.01})
    with pytest.raises(AccuracyBoundError, match="fell by 0.000"):
        check_learning(_net([2.3, 2.4, 2.3]), {"valid_loss_drop": 0.01})
    with pytest.raises(AccuracyBoundError, match="every loss is finite"):
        check_learning(_net([2.3, float("nan")]), {})
    assert check_learning(_net([2.3, 2.4]), {}).startswith("ok: every loss is finite")


def test_measure_uses_the_run_layers_definitions():
    X, y = random_batch(48)
    splits = SimpleNamespace(X_train=X[:32], y_train=y[:32], X_valid=X[32:40], y_valid=y[32:40],
                             X_test=X[40:], y_test=y[40:])
    net = make_classifier(AlexNetSmall, valid=(splits.X_valid, splits.y_valid), max_epochs=2,
                          batch_size=16, progress=False, verbose=0)
    net.fit(splits.X_train, splits.y_train)
    r = measure(net, splits, seed=3, train_eval_size=10)
    assert isinstance(r, RunResult) and r.seed == 3 and r.select == "best"
    assert r.train_acc == accuracy(net, splits.X_train[:10], splits.y_train[:10])  # eval mode
    assert r.gap == pytest.approx(r.train_acc - r.valid_acc)
    assert r.test_acc == accuracy(net, splits.X_test, splits.y_test)
    assert r.epochs_run == 2 and r.best_epoch in (1, 2) and r.net is None
    assert measure(net, splits, test=False).test_acc is None
    with pytest.raises(EvaluationError, match="fit it first"):
        measure(make_classifier(AlexNetSmall, valid=None, max_epochs=1, progress=False), splits)


def test_classification_table_matches_hand_counts():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 2, 2, 2, 0, 2])
    t = classification_table(y_true, torch.from_numpy(y_pred), ["a", "b", "c"])
    assert t.loc["a", "precision"] == round(2 / 3, 3) and t.loc["a", "recall"] == round(2 / 3, 3)
    assert t.loc["b", "precision"] == round(2 / 3, 3) and t.loc["b", "recall"] == 1.0
    assert t.loc["c", "recall"] == 0.8 and list(t.loc[["a", "b", "c"], "support"]) == [3, 2, 5]
    assert t.loc["accuracy", "f1-score"] == 0.8 and t.loc["accuracy", "support"] == 10
    with pytest.raises(EvaluationError, match="labels but"):
        classification_table(y_true, y_pred[:-1], ["a", "b", "c"])


def test_callback_table_lists_the_course_callbacks():
    net = make_classifier(AlexNetSmall, valid=random_batch(8), max_epochs=3, progress=False)
    table = callback_table(net)
    for name in ("train_acc", "lr_schedule", "early_stopping", "checkpoint", "print_log"):
        assert name in table.index
    assert "monitor=valid_acc" in table.loc["early_stopping", "settings"]
    assert "CosineAnnealingLR" in table.loc["lr_schedule", "settings"]


def test_top_confusions_count_the_off_diagonal_pairs():
    classes = ["a", "b", "c"]
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([1, 1, 2, 0, 0, 1, 2, 2, 1, 2])
    t = top_confusions(y_true, torch.from_numpy(y_pred), classes, n=5)
    assert list(zip(t["true"], t["predicted as"], t["count"])) == [
        ("a", "b", 2), ("a", "c", 1), ("b", "a", 1), ("c", "b", 1)]
    assert t["share of the true class"].iloc[0] == 0.5
    assert t["share of all mistakes"].sum() == pytest.approx(1.0)
    note = confusion_note(t, n=2)
    assert note.startswith("the 2 most frequent mistakes: a taken for b (2 images, 50.0% of the a")
    assert "Together they are 60.0% of all mistakes." in note
    none = top_confusions(y_true, y_true, classes)
    assert confusion_note(none) == "no test image was misclassified"
    with pytest.raises(EvaluationError, match="labels but"):
        top_confusions(y_true, y_pred[:-1], classes)


def test_gallery_note_counts_the_most_confident_mistakes():
    classes = ["a", "b", "c"]
    y_true = np.array([0, 0, 1, 2, 2])
    y_pred = np.array([1, 1, 1, 0, 2])
    proba = np.array([[0.1, 0.9, 0.0], [0.2, 0.7, 0.1], [0, 1, 0], [0.6, 0.1, 0.3], [0, 0, 1]])
    assert gallery_note(y_true, y_pred, proba, classes, n=3) == (
        "the gallery's 3 mistakes (true -> predicted): a -> b x2, c -> a; the net gave each "
        "wrong class a probability of at least 0.600")
    assert "a -> b; " in gallery_note(y_true, y_pred, proba, classes, n=1)
    assert gallery_note(y_true, y_true, proba, classes).startswith("the gallery is empty")


def test_probabilities_keep_their_informative_digits():
    assert format_probability(0.7341) == "0.734"
    assert format_probability(0.9987) == "0.9987"
    assert format_probability(1 - 3e-6) == "1 - 3e-06"
    assert format_probability(1.0) == "1"
    assert format_probability(2e-5) == "2e-05" and format_probability(0.0) == "0"


NOTEBOOK_05 = Path(__file__).resolve().parent.parent / "notebooks" / "05_training_with_skorch.ipynb"
WRITTEN_OUT = "# The classifier, written out"


def _written_out_classifier(namespace: dict):
    """Run notebook 05's "classifier, written out" cell after the imports of the cells above
    it, with ``namespace`` standing in for the notebook's variables."""
    code = ["".join(c["source"]) for c in json.loads(NOTEBOOK_05.read_text())["cells"]
            if c["cell_type"] == "code"]
    found = [i for i, src in enumerate(code) if src.startswith(WRITTEN_OUT)]
    assert len(found) == 1, f"{NOTEBOOK_05.name}: {len(found)} cells start with {WRITTEN_OUT!r}"
    for src in code[:found[0]]:
        imports = [n for n in ast.parse(src).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(imports, type_ignores=[]), NOTEBOOK_05.name, "exec"), namespace)
    namespace.update(namespace.pop("_given"))
    exec(compile(code[found[0]], NOTEBOOK_05.name, "exec"), namespace)
    return namespace["net"]


def test_the_notebooks_classifier_trains_like_make_classifier(tmp_path, monkeypatch):
    """The net notebook 05 writes out is make_classifier's: same callbacks, same history."""
    monkeypatch.setenv("COURSE_PROGRESS", "0")
    X, y = random_batch(120, seed=4)
    splits = SimpleNamespace(X_train=X[:90], y_train=y[:90], X_valid=X[90:], y_valid=y[90:])
    b = SimpleNamespace(epochs=3, batch_size=32)
    net = _written_out_classifier({"_given": dict(b=b, splits=splits, device="cpu", SEED=7,
                                                  BUILD_DIR=tmp_path)})
    ours = make_classifier(AlexNetSmall, valid=(splits.X_valid, splits.y_valid),
                           max_epochs=b.epochs, batch_size=b.batch_size, seed=7, device="cpu",
                           progress=False, checkpoint_root=tmp_path / "mc", verbose=0)
    assert [n for n, _ in net.callbacks] == [n for n, _ in ours.callbacks]
    net.set_params(verbose=0)
    net.fit(splits.X_train, splits.y_train)
    ours.fit(splits.X_train, splits.y_train)
    for key in ("train_loss", "valid_loss", "valid_acc", "train_acc", "event_lr"):
        assert net.history[:, key] == ours.history[:, key], key
    assert (tmp_path / "checkpoints" / "05" / "params.pt").exists()
    # a different seed gives a different history, so the comparison can fail
    other = make_classifier(AlexNetSmall, valid=(splits.X_valid, splits.y_valid),
                            max_epochs=b.epochs, batch_size=b.batch_size, seed=8, device="cpu",
                            progress=False, checkpoint_root=tmp_path / "mc", verbose=0)
    other.fit(splits.X_train, splits.y_train)
    assert other.history[:, "train_loss"] != ours.history[:, "train_loss"]


# --------------------------------------------------------------------------- the recipe search

def _recipe_record(ls, pad, seed, acc, status="ok"):
    return {"key": f"k{ls}{pad}{seed}", "status": status, "valid_acc": acc,
            "train_acc": acc + 0.01,
            "gap": 0.01, "train_seconds": 50.0,
            "params": {"criterion__label_smoothing": ls, "module__augment_padding": pad,
                       "seed": seed}}


def _write_recipe(folder, records):
    folder.mkdir()
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_recipe_ablation_reads_the_committed_search():
    from course_utils.lessons.ch05_skorch import RECIPE_GRID, recipe_ablation

    runs = recipe_ablation(RECIPE_GRID)
    assert list(dict.fromkeys(runs["variant"])) == ["plain", "label smoothing 0.1",
                                                     "shifts up to 2 px", "both"]
    assert runs.groupby("variant")["seed"].apply(sorted).tolist() == [[0, 1, 2]] * 4
    assert runs["valid_acc"].between(0.5, 1.0).all()


def test_recipe_ablation_and_note(tmp_path):
    from course_utils.lessons.ch05_skorch import recipe_ablation, recipe_note

    accs = {(0.0, 0): [0.90, 0.91, 0.92], (0.1, 0): [0.91, 0.92, 0.93],
            (0.0, 2): [0.90, 0.90, 0.93], (0.1, 2): [0.88, 0.89, 0.90]}
    records = [_recipe_record(ls, pad, s, a) for (ls, pad), seeds in accs.items()
               for s, a in enumerate(seeds)]
    records.append(_recipe_record(0.1, 2, 3, 0.1, status="failed"))  # left out
    runs = recipe_ablation(_write_recipe(tmp_path / "r", records))
    assert len(runs) == 12
    note = recipe_note(runs).splitlines()
    assert note[0].startswith("label smoothing 0.1 raises validation accuracy against plain "
                              "(+1.00 ± 0.00 points, p < 0.001 over 3 seed(s), higher")
    assert note[1].startswith("shifts up to 2 px does not change") and "inside the noise" in note[1]
    assert note[2].startswith("both lowers validation accuracy")
    with pytest.raises(EvaluationError, match="not one of the recipe's four variants"):
        recipe_ablation(_write_recipe(tmp_path / "other", [_recipe_record(0.2, 0, 0, 0.9)]))
    with pytest.raises(EvaluationError, match="holds no finished run: make grid"):
        recipe_ablation(tmp_path / "missing")
