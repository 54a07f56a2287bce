"""python -m course_utils.search: one ``error:`` line (exit 2) for every mistake, never a
traceback or a hang; kills and signals leave nothing behind."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import psutil
import pytest
from search_helpers import ENV, PYTHON, REPO, lines, one_error_line, read_only, tiny, write_yaml

from course_utils import search as S
from course_utils.search.cli import main


def run_main(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture
def grid_file(tmp_path):
    return write_yaml(tmp_path / "tiny.yaml", tiny())


# --------------------------------------------------------------------------- one error line

def test_bad_arguments_are_one_line(capsys, tmp_path, grid_file):
    rc, _, err = run_main(capsys, grid_file, "--jobs", "two")
    assert rc == 2 and "invalid int value" in one_error_line(err)
    rc, _, err = run_main(capsys, "--report")
    assert rc == 2 and "--report --out DIR" in one_error_line(err)
    rc, _, err = run_main(capsys, tmp_path / "missing.yaml")
    assert rc == 2 and "not found" in one_error_line(err)
    rc, _, err = run_main(capsys, grid_file, "--out", tmp_path / "o", "--max-configs", "0")
    assert rc == 2 and "--max-configs must be a positive integer" in one_error_line(err)


def test_grid_file_errors_are_one_line(capsys, tmp_path):
    cases = {
        "evil": ({**tiny(model="subprocess:Popen"),
                  "fixed": {"module__args": "echo ran", "module__shell": True}},
                 "--allow-module subprocess"),
        "pi": (tiny(model="math:pi"), "not allowed"),
        "dropout": (tiny(params={"module__dropout": [1.5]}), "refused by model AlexNetSmall"),
        "valid": (tiny(data={"train_size": 64, "valid_size": 60_000}), "valid_size 60000"),
        "big": (tiny(params={"module__dropout": [0.5] * 1000, "lr": [1.0e-3] * 1000,
                             "batch_size": [32] * 1000}), "1,000,000,000 configurations"),
        "victim": (tiny(name="../../../victim"), "not a plain name"),
    }
    for name, (grid, message) in cases.items():
        rc, _, err = run_main(capsys, write_yaml(tmp_path / f"{name}.yaml", grid),
                              "--out", tmp_path / name)
        assert rc == 2 and message in one_error_line(err), (name, err)
        assert not (tmp_path / name).exists()
    (tmp_path / "twice.yaml").write_text("params: {lr: [1.0e-3]}\nparams: {lr: [1.0]}\n")
    rc, _, err = run_main(capsys, tmp_path / "twice.yaml", "--out", tmp_path / "twice")
    assert rc == 2 and "'params' is given twice" in one_error_line(err)
    (tmp_path / "inf.yaml").write_text("params: {lr: [1.0e-3, .inf]}\n")
    rc, _, err = run_main(capsys, tmp_path / "inf.yaml", "--out", tmp_path / "inf")
    assert rc == 2 and "not a finite number" in one_error_line(err)


def test_output_folder_errors_are_one_line(capsys, tmp_path, grid_file, jobs1):
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, _, err = run_main(capsys, grid_file, "--out", afile)
    assert rc == 2 and "is a file, not a folder" in one_error_line(err)
    build = tmp_path / "build"
    (build / "checkpoints").mkdir(parents=True)
    rc, _, err = run_main(capsys, grid_file, "--out", build)
    assert rc == 2 and "holds files the search did not make" in one_error_line(err)
    assert (build / "checkpoints").is_dir()
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        rc, _, err = run_main(capsys, grid_file, "--out", ro)
    assert rc == 2 and "cannot write into --out" in one_error_line(err)
    # the report alone, into a read-only copy of a finished search
    copy = tmp_path / "copy"
    shutil.copytree(jobs1[0], copy)
    (copy / "summary.csv").unlink()
    with read_only(copy):
        rc, _, err = run_main(capsys, "--report", "--out", copy)
    line = one_error_line(err)
    assert rc == 2 and "cannot write" in line and "Permission denied" in line, line


def test_environment_errors_stop_before_the_lock(capsys, tmp_path, grid_file, monkeypatch,
                                                 http_port):
    pytest.importorskip("dask.distributed")
    rc, _, err = run_main(capsys, grid_file, "--out", tmp_path / "d1", "--dask",
                          f"tcp://127.0.0.1:{http_port}", "--dask-timeout", "2")
    assert rc == 2 and "did not answer as a Dask scheduler within 2 s" in one_error_line(err)
    rc, _, err = run_main(capsys, grid_file, "--out", tmp_path / "d2", "--dask", "notanaddress")
    assert rc == 2 and "is not a scheduler address" in one_error_line(err)
    from course_utils.config import cuda_available

    if not cuda_available():
        monkeypatch.setenv("COURSE_DEVICE", "cuda")
        rc, _, err = run_main(capsys, grid_file, "--out", tmp_path / "cuda")
        assert rc == 2 and "no usable CUDA GPU" in one_error_line(err)
    assert not any((tmp_path / d).exists() for d in ("d1", "d2", "cuda"))


def test_no_configuration_succeeded_exits_1_and_a_later_run_retries(capsys, tmp_path):
    grid = write_yaml(tmp_path / "boom.yaml", tiny(
        model="search_nets:ExplodingNet", params={"module__explode": [True], "batch_size": [64]}))
    args = [grid, "--out", tmp_path / "out", "--allow-module", "search_nets", "--no-progress"]
    rc, _, err = run_main(capsys, *args)
    line = one_error_line(err)
    assert rc == 1 and "no configuration succeeded (1 failed; the first error: RuntimeError: " \
        "boom" in line and "run the same command again" in line
    rc, out, _ = run_main(capsys, *args)
    assert rc == 1 and "1 failed before, run again" in out
    assert [r["status"] for r in lines(tmp_path / "out")] == ["failed", "failed"]


# --------------------------------------------------------------------------- processes

def test_cli_resumes_and_a_local_run_imports_no_dask(jobs1, tmp_path):
    out, _, _ = jobs1
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    bad = write_yaml(tmp_path / "bad.yaml", tiny(params={"module__dropot": [0.5]}))
    good = write_yaml(tmp_path / "good.yaml", tiny())
    code = f"""
import sys
from course_utils import search
rc = search.main([{str(bad)!r}, "--out", {str(tmp_path / 'x')!r}])
assert rc == 2, rc
rc = search.main([{str(good)!r}, "--out", {str(copy)!r}, "--no-progress"])
assert rc == 0, rc
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))
assert not loaded, loaded
"""
    done = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "module__dropot" in one_error_line(done.stderr)
    assert "4 of 4 configurations already" in done.stdout


def completed_per_config(out, spec) -> dict[str, int]:
    """How many COMPLETE trials each configuration has in the folder's study."""
    import optuna

    study = optuna.load_study(study_name=f"{spec.name}-{spec.fingerprint()}",
                              storage=S.storage_url(out))
    counts: dict[str, int] = {}
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            cid = t.user_attrs["config_id"]
            counts[cid] = counts.get(cid, 0) + 1
    return counts


def test_sigkill_mid_search_then_resume_completes_each_configuration_once(tmp_path):
    grid = write_yaml(tmp_path / "tiny.yaml", tiny())
    out = tmp_path / "out"
    cmd = [PYTHON, "-m", "course_utils.search", str(grid), "--out", str(out), "--no-progress",
           "--heartbeat", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    results = out / S.RESULTS_FILE
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and results.read_bytes().count(b"\n") >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the search ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    n_before = len(lines(out))
    assert 1 <= n_before < 4
    # a kill in the middle of an export leaves a half line: the study rewrites the export
    with open(results, "ab") as fh:
        fh.write(b'{"key": "half-writ')
    resumed = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{n_before} of 4 configurations already" in resumed.stdout
    recs = lines(out)  # parses every line: the torn one is gone
    keys = [r["key"] for r in recs]
    assert len(keys) == 4 and len(set(keys)) == 4
    assert all(r["status"] == "ok" for r in recs)
    assert all((out / f).exists() for f in S.REPORT_FILES)
    spec = S.load_grid(grid)
    assert completed_per_config(out, spec) == {S.config_id(c): 1 for c in spec.configs()}


def test_an_interrupt_while_the_grid_is_checked_claims_no_folder(capsys, tmp_path,
                                                                 monkeypatch, grid_file):
    """SIGTERM during validation said 'finished configurations are in DIR' for a folder
    that was never made."""
    from course_utils.search import cli

    def stopped(*args, **kwargs):
        raise cli._Terminated()

    monkeypatch.setattr(cli, "load_grid", stopped)
    rc, _, err = run_main(capsys, grid_file, "--out", tmp_path / "never")
    assert rc == 143 and "interrupted before the search started: nothing was written" in err
    assert "finished configurations" not in err and not (tmp_path / "never").exists()


def test_sigterm_stops_the_joblib_workers_too(tmp_path):
    """SIGTERM (a scheduler's or `kill PID`) used to orphan the workers, ~1 GB each."""
    grid = write_yaml(tmp_path / "tiny.yaml", tiny(max_epochs=3))
    cmd = [PYTHON, "-m", "course_utils.search", str(grid), "--out", str(tmp_path / "out"),
           "--jobs", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    main_proc = psutil.Process(proc.pid)
    children: list[psutil.Process] = []
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            children = main_proc.children(recursive=True)
            if len(children) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None and len(children) >= 2, "no workers started"
        time.sleep(3)  # the workers are importing torch or training now
        children = main_proc.children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 143, err
        assert "interrupted" in err and "Traceback" not in err
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"orphaned workers: {[p.pid for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                pass
