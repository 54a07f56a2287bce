"""course_utils.search.execute on real Fashion-MNIST, kept tiny: 64 training images, 1 epoch,
the small AlexNet. Every run here really trains."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from search_helpers import lines, quiet, tiny

from course_utils import search as S
from course_utils.training import best_epoch


def test_tiny_grid_trains_every_configuration(jobs1):
    out, frame, logs = jobs1
    recs = lines(out)
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs)
    assert {(r["params"]["lr"], r["params"]["batch_size"]) for r in recs} == {
        (1e-3, 32), (1e-3, 64), (1e-4, 32), (1e-4, 64)}
    for r in recs:
        assert list(r) == list(S.RESULT_KEYS)
        assert 0.0 <= r["valid_acc"] <= 1.0 and r["best_epoch"] == 1
        # the validation accuracy of every epoch run: the best of them is the record's
        assert len(r["valid_history"]) == r["epochs_run"]
        assert max(r["valid_history"]) == r["valid_acc"]
        # the run layer's metrics: eval-mode accuracy on a fixed training sample
        assert 0.0 <= r["train_acc"] <= 1.0
        assert r["gap"] == pytest.approx(r["train_acc"] - r["valid_acc"])
        assert r["train_seconds"] > 0 and r["device"] == "cpu" and r["seed"] == 0
        assert {"torch", "skorch", "scikit-learn", "python"} <= set(r["versions"])
        assert r["threads"] >= 1
    # one summary line per finished configuration
    assert sum(line.startswith("[") and "valid_acc" in line for line in logs) == 4
    # each run had its own checkpoint folder, deleted once recorded
    assert not (out / S.CHECKPOINT_DIR).exists()
    assert len(frame) == 4 and {"train_acc", "gap"} <= set(frame.columns)


def test_valid_acc_is_the_best_epoch_of_the_same_net(jobs1, tmp_path):
    """The record is what the net built for the configuration reaches at its best epoch."""
    out, _, _ = jobs1
    rec = lines(out)[0]
    spec = S.load_grid(tiny())
    splits = S.grid_splits(spec)
    net = S.build_net(spec, rec["params"], valid=(splits.X_valid, splits.y_valid),
                      checkpoint_root=tmp_path)
    net.fit(splits.X_train, splits.y_train)
    assert best_epoch(net) == (rec["best_epoch"], rec["valid_acc"])
    assert rec["valid_history"] == list(net.history[:, "valid_acc"])


def test_rerun_skips_finished_configurations(jobs1):
    out, _, _ = jobs1
    before = (out / S.RESULTS_FILE).read_bytes()
    logs: list[str] = []
    frame = S.run_search(tiny(), out, progress=False, report=False, log=logs.append)
    assert (out / S.RESULTS_FILE).read_bytes() == before
    assert any("4 of 4 configurations already" in line for line in logs)
    assert len(frame) == 4 and (frame["status"] == "ok").all()


def test_jobs_2_gives_the_same_configurations_as_jobs_1(jobs1, tmp_path):
    out1, _, _ = jobs1
    S.run_search(tiny(), tmp_path, jobs=2, progress=False, report=False, log=quiet)
    one, two = lines(out1), lines(tmp_path)
    assert sorted(r["key"] for r in two) == sorted(r["key"] for r in one)
    assert all(r["status"] == "ok" for r in two)
    assert len({r["pid"] for r in two} - {os.getpid()}) >= 1  # really in worker processes


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    grid = tiny(params={"lr": [1.0e-3, 1.0e-4], "batch_size": [64]})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        frame = S.run_search(grid, tmp_path, dask=cluster.scheduler_address, progress=False,
                             report=False, log=quiet)
    recs = lines(tmp_path)
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs)
    assert sorted(frame["lr"]) == [1e-4, 1e-3]
    # the workers' own checkpoint folders are gone
    assert not [p for r in recs for p in Path(tempfile.gettempdir()).glob(f"{r['id']}-e1-*")]


def test_failed_configuration_is_recorded_then_retried(tmp_path):
    # explode=True raises in the forward pass, as CUDA out of memory at batch 2048 would
    grid = tiny(model="search_nets:ExplodingNet",
                params={"module__explode": [True, False], "batch_size": [64]})
    spec = S.load_grid(grid, allow_modules=["search_nets"])
    logs: list[str] = []
    frame = S.run_search(spec, tmp_path, progress=False, log=logs.append)
    recs = {r["params"]["module__explode"]: r for r in lines(tmp_path)}
    assert recs[True]["status"] == "failed" and "boom" in recs[True]["error"]
    assert recs[True]["valid_acc"] is None
    assert recs[False]["status"] == "ok" and recs[False]["valid_acc"] > 0
    assert any("FAILED" in line for line in logs)
    assert set(frame["status"]) == {"ok", "failed"}
    # a failure never makes a later run skip the configuration: it runs again ...
    logs.clear()
    S.run_search(spec, tmp_path, progress=False, report=False, log=logs.append)
    assert len(lines(tmp_path)) == 3
    assert any("1 of 2 configurations already" in ln and "1 failed before, run again" in ln
               for ln in logs)
    # ... unless asked to keep it
    S.run_search(spec, tmp_path, progress=False, report=False, skip_failed=True, log=quiet)
    assert len(lines(tmp_path)) == 3


def test_successive_halving_is_optunas_pruner_and_costs_fewer_images(tmp_path):
    import optuna

    grid = tiny(max_epochs=2, params={"lr": [1.0e-3, 1.0e-5], "batch_size": [64]},
                halving={"factor": 2, "min_epochs": 1})
    frame = S.run_search(grid, tmp_path, halving=True, progress=False, log=quiet)
    assert len(frame) == 2 and set(frame["status"]) <= {"ok", "pruned"}
    # the first run has no rival yet and runs to the end (Optuna's asynchronous halving)
    first = frame.iloc[0]
    assert first["status"] == "ok" and first["epochs"] == 2 and first["rung"] == 1
    second = frame.iloc[1]
    if second["valid_acc"] < first["valid_acc"] or second["status"] == "pruned":
        # behind the first at the rung of 1 epoch: stopped there
        assert second["status"] == "pruned" and second["epochs_run"] == 1
        assert second["rung"] == 0
    images = int(frame["epochs_run"].sum()) * 64  # the cost, in images processed
    assert images <= 2 * 2 * 64
    # a grid of one epoch has one rung: every run is in rung 0 (notebook 06 plots it)
    one = S.run_search(tiny(params={"lr": [1.0e-3], "batch_size": [64]}), tmp_path / "one",
                       halving=True, progress=False, report=False, log=quiet)
    assert list(one["rung"]) == [0] and list(one["status"]) == ["ok"]
    spec = S.load_grid(grid)
    study = optuna.load_study(study_name=f"tiny-{spec.fingerprint()}-halving",
                              storage=S.storage_url(tmp_path))
    states = sorted(t.state.name for t in study.trials)
    assert states == sorted({"ok": "COMPLETE", "pruned": "PRUNED"}[s] for s in frame["status"])
    assert json.loads((tmp_path / "best.json").read_text())["epochs"] == 2


def test_halving_schedule():
    assert S.halving_schedule(20, 3, 2) == [2, 6, 20]
    assert S.halving_schedule(2, 2, 1) == [1, 2]
    assert S.halving_schedule(1, 3, 1) == [1]


# --------------------------------------------------------------------------- before training

def test_a_missing_device_stops_the_search_before_anything_is_written(tmp_path, monkeypatch):
    """COURSE_DEVICE=cuda without CUDA used to record every configuration as failed."""
    from course_utils.config import DeviceUnavailableError, cuda_available

    if cuda_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(DeviceUnavailableError, match="no usable CUDA GPU"):
        S.run_search(tiny(), tmp_path / "out", progress=False, log=quiet)
    assert not (tmp_path / "out").exists()


def test_dask_pointed_at_a_web_server_fails_in_time(tmp_path, http_port):
    pytest.importorskip("dask.distributed")
    with pytest.raises(S.DaskError, match=r"did not answer as a Dask scheduler within 2 s"):
        S.run_search(tiny(), tmp_path / "out", dask=f"tcp://127.0.0.1:{http_port}",
                     dask_timeout=2, progress=False, log=quiet)
    assert not (tmp_path / "out").exists()  # the folder was never locked


@pytest.mark.parametrize("address, message", [
    ("notanaddress", "is not a scheduler address"),
    ("", "is not a scheduler address"),
])
def test_dask_bad_address_is_one_line(tmp_path, address, message):
    pytest.importorskip("dask.distributed")
    with pytest.raises(S.DaskError, match=message) as info:
        S.run_search(tiny(), tmp_path / "out", dask=address, dask_timeout=2, progress=False,
                     log=quiet)
    assert "\n" not in str(info.value)


def test_dask_scheduler_without_workers_is_refused(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=0, processes=False,
                                  dashboard_address=None) as cluster:
        with pytest.raises(S.DaskError, match="has no workers"):
            S.run_search(tiny(), tmp_path / "out", dask=cluster.scheduler_address,
                         dask_timeout=5, progress=False, log=quiet)
    assert not (tmp_path / "out").exists()


def test_dask_nothing_listening_is_one_line(tmp_path):
    pytest.importorskip("dask.distributed")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # refused at once by the plain socket probe, not after the handshake's 30 s
    with pytest.raises(S.DaskError, match="cannot reach the Dask scheduler at .*(Connection "
                       "refused)") as info:
        S.connect_dask(f"tcp://127.0.0.1:{port}")
    assert "\n" not in str(info.value)


def test_dask_a_server_that_answers_otherwise_is_refused_at_once(tmp_path):
    """--dask at a non-Dask server took 34 s."""
    pytest.importorskip("dask.distributed")
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def banner():
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            conn.recv(100)

    threading.Thread(target=banner, daemon=True).start()
    with pytest.raises(S.DaskError, match="is not a Dask scheduler .*SSH-2.0"):
        S.run_search(tiny(), tmp_path / "out", dask=f"tcp://127.0.0.1:"
                     f"{server.getsockname()[1]}", progress=False, log=quiet)
    server.close()
    assert not (tmp_path / "out").exists()


def test_dask_pointed_at_a_web_server_is_refused_at_once(tmp_path, web_port):
    """A web server (the Dask dashboard's port, say) used to hold the search 30 s."""
    pytest.importorskip("dask.distributed")
    with pytest.raises(S.DaskError, match="hung up on a blank line: it is not a Dask "
                                          "scheduler"):
        S.run_search(tiny(), tmp_path / "out", dask=f"tcp://127.0.0.1:{web_port}",
                     progress=False, log=quiet)
    assert not (tmp_path / "out").exists()


def test_jobs_are_capped_by_configurations_and_cores(tmp_path):
    """--jobs 6 on a one-configuration grid on 2 cores started 6 torch workers."""
    logs: list[str] = []
    grid = tiny(params={"lr": [1.0e-3], "batch_size": [64]})
    S.run_search(grid, tmp_path, jobs=6, progress=False, report=False, log=logs.append)
    assert any(line.startswith("note: --jobs 6 capped to 1: 1 configuration(s) to run")
               for line in logs), logs
    assert lines(tmp_path)[0]["pid"] == os.getpid()  # no worker process for one run


def test_course_amp_is_checked_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_AMP", "bogus")
    with pytest.raises(S.SearchError, match="COURSE_AMP='bogus': set it to one of auto"):
        S.run_search(tiny(), tmp_path / "out", progress=False, log=quiet)
    assert not (tmp_path / "out").exists()
