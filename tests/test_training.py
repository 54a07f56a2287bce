import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone

from course_utils.data import course_splits
from course_utils.config import CourseError
from course_utils.training import (RunCheckpoint, accuracy, best_epoch, make_classifier,
                                   progress_enabled, train_seconds)


@pytest.fixture(scope="module")
def smoke_splits(real_data):
    return course_splits("smoke", seed=0, data=real_data)


def _cp(net):
    return dict(net.callbacks_)["checkpoint"]


def test_classifier_defaults_come_from_the_profile(smoke_splits, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    net = make_classifier(valid=(smoke_splits.X_valid, smoke_splits.y_valid), progress=False)
    assert net.max_epochs == 1 and net.batch_size == 128 and net.device == "cpu"
    names = [name for name, _ in net.callbacks]
    assert names == ["train_acc", "lr_schedule", "early_stopping", "checkpoint"]
    net = make_classifier(valid=None, progress=True, max_epochs=3)
    names = [name for name, _ in net.callbacks]
    assert names[0] == "progress" and "checkpoint" not in names and net.train_split is None


def test_training_learns_and_loads_the_best_checkpoint(smoke_splits):
    s = smoke_splits
    net = make_classifier(valid=(s.X_valid, s.y_valid), max_epochs=3, progress=False, verbose=0,
                          keep_checkpoint=True)
    net.fit(s.X_train, s.y_train)
    epoch, best = best_epoch(net)
    assert 1 <= epoch <= 3 and best > 0.2  # chance is 0.1
    assert accuracy(net, s.X_valid, s.y_valid) == pytest.approx(best)  # load_best restored it
    assert set(net.history[0]) >= {"train_acc", "valid_acc", "train_loss", "valid_loss", "event_lr"}
    assert train_seconds(net) > 0
    saved = torch.load(Path(_cp(net).dirname) / "params.pt", map_location="cpu")
    for key, value in net.module_.state_dict().items():
        torch.testing.assert_close(saved[key], value)


def test_same_seed_same_result(smoke_splits):
    s = smoke_splits
    X, y = s.X_train[:300], s.y_train[:300]
    kw = dict(valid=(s.X_valid[:200], s.y_valid[:200]), max_epochs=1, progress=False, verbose=0)
    a = make_classifier(seed=5, **kw).fit(X, y)
    b = make_classifier(seed=5, **kw).fit(X, y)
    np.testing.assert_allclose(a.history[:, "train_loss"], b.history[:, "train_loss"], rtol=1e-5)


def test_checkpoint_directories_are_unique(smoke_splits, tmp_path):
    s = smoke_splits
    X, y = s.X_train[:64], s.y_train[:64]
    base = make_classifier(valid=(s.X_valid[:64], s.y_valid[:64]), max_epochs=1, progress=False,
                           verbose=0, checkpoint_root=tmp_path, keep_checkpoint=True)
    twins = [clone(base).fit(X, y), clone(base).fit(X, y)]
    dirs = {_cp(net).dirname for net in twins}
    assert len(dirs) == 2 and all(Path(d).parent == tmp_path for d in dirs)
    assert all((Path(d) / "params.pt").is_file() for d in dirs)
    first = _cp(twins[0]).dirname
    twins[0].fit(X, y)  # a refit gets a fresh directory too
    assert _cp(twins[0]).dirname != first


def test_checkpoint_is_deleted_once_the_best_weights_are_loaded(smoke_splits, tmp_path):
    s = smoke_splits
    X, y = s.X_train[:64], s.y_train[:64]
    (tmp_path / "mine.txt").write_text("not the checkpoint's")
    net = make_classifier(valid=(s.X_valid[:64], s.y_valid[:64]), max_epochs=2, progress=False,
                          verbose=0, checkpoint_root=tmp_path).fit(X, y)
    assert not Path(_cp(net).dirname).exists()  # its own folder went
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]  # nothing else did
    assert accuracy(net, s.X_valid[:64], s.y_valid[:64]) == pytest.approx(best_epoch(net)[1])


def test_run_checkpoint_is_clonable(tmp_path):
    cp = RunCheckpoint(root=tmp_path)
    assert clone(cp).root == tmp_path and "dirname" not in cp.get_params()


def test_progress_switch(monkeypatch):
    monkeypatch.setenv("COURSE_PROGRESS", "0")
    assert progress_enabled() is False
    monkeypatch.setenv("COURSE_PROGRESS", "1")
    assert progress_enabled() is True
    monkeypatch.setenv("COURSE_PROGRESS", "2")  # was silently "off"
    with pytest.raises(CourseError, match="set it to 1 .* or 0"):
        progress_enabled()


def test_eval_mode_train_score_records_loss_and_accuracy_without_dropout(smoke_splits):
    from course_utils.training import EvalModeTrainScore

    s = smoke_splits
    X, y = s.X_train[:256], s.y_train[:256]
    net = make_classifier(valid=(s.X_valid[:100], s.y_valid[:100]), max_epochs=2, progress=False,
                          verbose=0, checkpoint=False, module__dropout=0.9,
                          callbacks=[("train_eval", EvalModeTrainScore(128))]).fit(X, y)
    h = net.history
    assert len(h[:, "train_loss_eval"]) == 2 and all(0 <= a <= 1 for a in h[:, "train_acc_eval"])
    # the last epoch's record is the eval-mode accuracy of the fitted net on those 128 images
    assert h[-1, "train_acc_eval"] == pytest.approx(accuracy(net, X[:128], y[:128]))
    # dropout at 0.9 inflates skorch's train_loss; the eval-mode loss is lower
    assert h[-1, "train_loss_eval"] < h[-1, "train_loss"]


def _owner_file(folder, **owner):
    import json
    import socket

    from course_utils.training.callbacks import OWNER_FILE

    folder.mkdir()
    (folder / "params.pt").write_bytes(b"weights")
    base = {"host": socket.gethostname(), "pid": os.getpid(), "start": None}
    (folder / OWNER_FILE).write_text(json.dumps({**base, **owner}))
    return folder


def test_folders_of_dead_runs_are_removed_and_no_other(tmp_path):
    import subprocess
    import sys

    from course_utils.training.callbacks import _process_start, remove_dead_runs

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = _owner_file(tmp_path / "run-dead", pid=int(gone.stdout))
    _owner_file(tmp_path / "run-reused", start=(_process_start(os.getpid()) or 0) + 1)
    live = _owner_file(tmp_path / "run-live", start=_process_start(os.getpid()))
    elsewhere = _owner_file(tmp_path / "run-elsewhere", host="another-machine",
                            pid=int(gone.stdout))
    unmarked = tmp_path / "run-unmarked"  # a kept checkpoint, or a run not yet marked
    unmarked.mkdir()
    (tmp_path / "run-file").write_text("not a folder")
    target = _owner_file(tmp_path / "outside", pid=int(gone.stdout))
    (tmp_path / "run-link").symlink_to(target)  # links are never followed
    mine = tmp_path / "mine"
    mine.mkdir()
    removed = remove_dead_runs(tmp_path)
    assert sorted(p.name for p in removed) == ["run-dead"] + (
        ["run-reused"] if _process_start(os.getpid()) is not None else [])
    assert not dead.exists()
    for kept in (live, elsewhere, unmarked, target, mine, tmp_path / "run-file",
                 tmp_path / "run-link"):
        assert kept.exists(), kept
    assert remove_dead_runs(tmp_path / "missing") == []


def test_a_run_marks_its_folder_while_it_trains_and_unmarks_a_kept_one(smoke_splits, tmp_path):
    from course_utils.training.callbacks import OWNER_FILE

    s = smoke_splits
    X, y = s.X_train[:64], s.y_train[:64]
    seen = []

    class Spy(RunCheckpoint):
        def on_epoch_end(self, net, **kwargs):
            seen.append((Path(self.dirname) / OWNER_FILE).is_file())
            super().on_epoch_end(net, **kwargs)

    net = make_classifier(valid=(s.X_valid[:64], s.y_valid[:64]), max_epochs=1, progress=False,
                          verbose=0, checkpoint=False,
                          callbacks=[("checkpoint", Spy(root=tmp_path, keep=True))]).fit(X, y)
    assert seen == [True]
    kept = Path(_cp(net).dirname)
    assert (kept / "params.pt").is_file() and not (kept / OWNER_FILE).exists()
