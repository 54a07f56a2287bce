"""Notebook 05's helpers: plans and bounds, reports, save/load, one-image prediction."""
import numpy as np
import pytest
import torch

from conftest import random_batch
from course_utils.data import CLASSES
from course_utils.lessons.ch05_skorch import (TEST_BOUNDS, AccuracyBoundError, EvaluationError,
                                     callback_table, check_test_accuracy,
                                     classification_table, predict_one, save_and_reload,
                                     training_plan)
from course_utils.models import AlexNetSmall
from course_utils.training import make_classifier



def test_quick_plan_trains_more_than_the_profile():
    quick = training_plan("quick")
    assert quick.profile.train_size == 20_000 and quick.max_epochs == 6
    assert quick.bound == TEST_BOUNDS["quick"] == 0.85
    smoke = training_plan("smoke")
    assert smoke.profile.train_size == 1_000 and smoke.max_epochs == 3
    assert training_plan("full").bound == 0.92 and training_plan("full").profile.train_size is None
    assert "20,000 training images" in quick.note


def test_bounds_are_checked_per_profile():
    assert "0.8600 >= 0.85" in check_test_accuracy(0.86, "quick")
    with pytest.raises(AccuracyBoundError, match="below the full profile's bound 0.92"):
        check_test_accuracy(0.91, "full")
    with pytest.raises(AccuracyBoundError):
        check_test_accuracy(float("nan"), "smoke")
    assert 0.1 < TEST_BOUNDS["smoke"] < TEST_BOUNDS["quick"] < TEST_BOUNDS["full"]


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


def test_save_and_reload_restores_the_trained_weights(tmp_path):
    X, y = random_batch(32)
    net = make_classifier(AlexNetSmall, valid=None, max_epochs=1, batch_size=16, seed=1,
                          progress=False, verbose=0)
    net.fit(X, y)
    # the fresh net is seeded 0, so only load_params can make it equal to the seed-1 net
    reloaded, path = save_and_reload(net, tmp_path / "saved")
    assert path.exists()
    assert np.allclose(reloaded.predict_proba(X), net.predict_proba(X), atol=1e-6)
    with pytest.raises(EvaluationError, match="do not fit"):
        save_and_reload(net, tmp_path / "other", module__hidden=64)


def test_predict_one_ranks_the_classes():
    X, y = random_batch(4)
    net = make_classifier(AlexNetSmall, valid=None, max_epochs=1, progress=False, verbose=0)
    net.initialize()
    top = predict_one(net, X[0], CLASSES, top=3)
    assert len(top) == 3 and list(top.index) == [1, 2, 3]
    assert list(top["probability"]) == sorted(top["probability"], reverse=True)
    proba = net.predict_proba(X[:1])[0]
    assert top.iloc[0]["class"] == CLASSES[int(np.argmax(proba))]
    assert predict_one(net, X[0, 0], CLASSES).equals(predict_one(net, X[0], CLASSES))
    with pytest.raises(EvaluationError, match="one image"):
        predict_one(net, X[:2], CLASSES)
