"""Fault injection for the search (``make test-faults``; ``make test`` skips them): a full disk
on a small filesystem, SIGKILL of the search and of a worker, two worker processes on one
SQLite study, a Dask cluster that loses its last worker, and a study in PostgreSQL."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from search_helpers import ENV, PYTHON, REPO, lines, one_error_line, quiet, tiny, write_yaml

from course_utils import search as S

pytestmark = pytest.mark.faults


def _study_counts(spec, url) -> tuple[dict[str, int], list[str]]:
    """COMPLETE trials per configuration, and every trial's state."""
    import optuna

    study = optuna.load_study(study_name=f"{spec.name}-{spec.fingerprint()}", storage=url)
    done: dict[str, int] = {}
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            done[t.user_attrs["config_id"]] = done.get(t.user_attrs["config_id"], 0) + 1
    return done, [t.state.name for t in study.trials]


def _wait_for(predicate, proc=None, limit=240.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def _cmdline(p) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(p.cmdline())[:200]
    return "?"


def _kill_tree(proc):
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- a full disk

@contextlib.contextmanager
def small_filesystem(size: str):
    """A tmpfs of ``size`` (needs root, or skips)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a small filesystem needs root (mount -t tmpfs)")
    where = Path(tempfile.mkdtemp(prefix="search-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        with contextlib.suppress(OSError):
            where.rmdir()


def test_a_full_disk_stops_with_one_line_and_keeps_what_finished(tmp_path):
    """A full disk wrote a partial record, called a failed checkpoint save `FAILED EOFError`,
    ended in "unexpected: please report it" and left a 0-byte summary.csv.tmp."""
    grid = write_yaml(tmp_path / "tiny.yaml", tiny())
    with small_filesystem("4m") as disk:
        out = disk / "out"
        done = subprocess.run([PYTHON, "-m", "course_utils.search", str(grid), "--out",
                               str(out), "--no-progress"], cwd=REPO, env=ENV,
                              capture_output=True, text=True, timeout=600)
        line = one_error_line(done.stderr)
        assert done.returncode == 2, done.stderr
        assert "the disk is full: no space left on device while saving the checkpoint" in line
        assert "the finished results are kept" in line and "unexpected" not in line
        assert "EOFError" not in line.split("(")[0]
        names = sorted(p.name for p in out.iterdir())
        assert not [n for n in names if ".tmp" in n], names
        for rec in lines(out):  # whole records only
            assert rec["status"] in ("ok", "failed")
        assert not list((out / S.CHECKPOINT_DIR).iterdir())  # the failed run's are gone


# --------------------------------------------------------------------------- SIGKILL

def test_sigkill_of_the_search_ends_its_loky_workers(tmp_path):
    """Killed with SIGKILL under --jobs 2, the search left its loky workers computing under
    PID 1 for about 5 minutes."""
    grid = write_yaml(tmp_path / "tiny.yaml", tiny(max_epochs=4))
    cmd = [PYTHON, "-m", "course_utils.search", str(grid), "--out", str(tmp_path / "out"),
           "--jobs", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    children: list[psutil.Process] = []
    try:
        assert _wait_for(lambda: len(parent.children(recursive=True)) >= 2, proc), \
            "no workers started"
        time.sleep(3)  # the workers import torch or train now
        children = parent.children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _, alive = psutil.wait_procs(children, timeout=60)
        assert not alive, f"orphaned workers: {[(p.pid, _cmdline(p)) for p in alive]}"
    finally:
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        _kill_tree(proc)


def test_two_workers_on_one_sqlite_study_one_killed(tmp_path):
    """Two processes share DIR/study.db; one is SIGKILLed mid-run. The other takes the dead
    one's configuration after the heartbeat's grace: every configuration completes once."""
    grid = write_yaml(tmp_path / "tiny.yaml", tiny(params={"lr": [1.0e-3, 1.0e-4, 3.0e-4],
                                                           "batch_size": [32, 64]}))
    out = tmp_path / "out"
    cmd = [PYTHON, "-m", "course_utils.search", str(grid), "--out", str(out), "--no-progress",
           "--heartbeat", "1"]
    first = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: (out / S.DB_FILE).exists(), first)
        second = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        results = out / S.RESULTS_FILE
        assert _wait_for(lambda: results.exists() and results.read_bytes().count(b"\n") >= 1,
                         first)
        os.kill(first.pid, signal.SIGKILL)  # mid-way through its next configuration
        first.wait()
        stdout, stderr = second.communicate(timeout=600)
        assert second.returncode == 0, stderr
    finally:
        _kill_tree(first)
        with contextlib.suppress(NameError):
            _kill_tree(second)
    spec = S.load_grid(grid)
    done, states = _study_counts(spec, S.storage_url(out))
    assert done == {S.config_id(c): 1 for c in spec.configs()}, states
    recs = lines(out)
    assert sorted(r["id"] for r in recs) == sorted(done) and all(r["status"] == "ok"
                                                                 for r in recs)
    # the same command again: nothing left to run
    again = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "6 of 6 configurations already" in again.stdout


# --------------------------------------------------------------------------- Dask

def test_a_dask_cluster_that_loses_its_last_worker_gives_up_keeping_what_finished(
        tmp_path, monkeypatch):
    """With its only worker stopped, the search waited without a word until killed."""
    distributed = pytest.importorskip("dask.distributed")
    from course_utils.search import execute

    monkeypatch.setattr(execute, "DASK_IDLE_NOTICE", 1.0)
    logs: list[str] = []
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        def log(line):
            logs.append(line)
            if line.startswith("[1/"):
                cluster.scale(0)  # the last worker goes away after the first result

        with pytest.raises(S.DaskError, match=r"has had no workers for \d+ s: gave up "
                           r"\(--dask-idle-timeout 4\); what finished is kept"):
            S.run_search(tiny(), tmp_path, dask=cluster.scheduler_address, progress=False,
                         report=False, dask_idle_timeout=4, log=log)
    assert any(line.startswith("the Dask cluster has no workers") for line in logs), logs
    recs = lines(tmp_path)
    assert len(recs) >= 1 and all(r["status"] == "ok" for r in recs)
    # the next run takes the rest (the interrupted trial is queued again)
    frame = S.run_search(tiny(), tmp_path, progress=False, report=False, log=quiet)
    assert len(frame) == 4 and (frame["status"] == "ok").all()
    spec = S.load_grid(tiny())
    done, _ = _study_counts(spec, S.storage_url(tmp_path))
    assert done == {S.config_id(c): 1 for c in spec.configs()}


# --------------------------------------------------------------------------- PostgreSQL

@pytest.fixture
def postgres_url(tmp_path_factory):
    """A throwaway PostgreSQL server on 127.0.0.1 (skipped where none can be started)."""
    pytest.importorskip("psycopg", reason="psycopg (SQLAlchemy's PostgreSQL driver) is not "
                                          "installed: pip install 'psycopg[binary]'")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server here (apt-get install postgresql)")
    root = os.geteuid() == 0
    if root:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user to run the server")
    data = Path(tempfile.mkdtemp(prefix="search-pg-"))
    as_pg = ["runuser", "-u", "postgres", "--"] if root else []
    if root:
        shutil.chown(data, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run([*as_pg, initdb, "-D", str(data / "db"), "-A", "trust", "-U",
                           "postgres"], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"initdb failed: {done.stderr.strip()[:200]}")
    done = subprocess.run([*as_pg, pg_ctl, "-D", str(data / "db"), "-w", "-l",
                           str(data / "log"), "-o",
                           f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"the PostgreSQL server did not start: {done.stderr.strip()[:200]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_pg, pg_ctl, "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_two_machines_share_one_postgresql_study(tmp_path, postgres_url):
    """Two workers with their own --out folders (two machines) and one --storage."""
    grid = write_yaml(tmp_path / "tiny.yaml", tiny())
    procs = [subprocess.Popen([PYTHON, "-m", "course_utils.search", str(grid), "--out",
                               str(tmp_path / f"machine{i}"), "--storage", postgres_url,
                               "--no-progress", "--heartbeat", "2"], cwd=REPO, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (1, 2)]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            _kill_tree(p)
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    spec = S.load_grid(grid)
    done, states = _study_counts(spec, postgres_url)
    assert done == {S.config_id(c): 1 for c in spec.configs()}, states
    trained = [ln for out, _ in outs for ln in out.splitlines() if ln.startswith("[")]
    assert len(trained) == 4  # each configuration trained on one machine only
    for i in (1, 2):  # each machine's folder ends with the whole study's export
        recs = lines(tmp_path / f"machine{i}")
        assert len(recs) == 4 and not (tmp_path / f"machine{i}" / S.DB_FILE).exists()
    with pytest.raises(S.SearchError, match=r"--storage sqlite:///x is not a database URL"):
        S.run_search(tiny(), tmp_path / "x", storage="sqlite:///x", progress=False, log=quiet)
