"""The grid-search tool (course_utils.search) on real Fashion-MNIST, kept tiny: 64 training
images, 1 epoch, the small AlexNet. Every run here really trains."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_utils import CourseError
from course_utils import search as S

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "COURSE_PROFILE": "smoke", "COURSE_PROGRESS": "0", "MPLBACKEND": "Agg",
       "PYTHONPATH": str(REPO)}

TINY = {"name": "tiny", "model": "AlexNetSmall", "data": {"train_size": 64, "valid_size": 64},
        "max_epochs": 1, "seed": 0,
        "params": {"lr": [1.0e-3, 1.0e-4], "batch_size": [32, 64]}}


def tiny(**changes) -> dict:
    grid = json.loads(json.dumps(TINY))
    grid.update(changes)
    return grid


def write_yaml(path: Path, grid: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def lines(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / S.RESULTS_FILE).read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def jobs1(tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs1")
    logs: list[str] = []
    frame = S.run_search(tiny(), out, jobs=1, progress=False, log=logs.append)
    return out, frame, logs


# --------------------------------------------------------------------------- a real search

def test_tiny_grid_trains_every_configuration_and_reports(jobs1):
    out, frame, logs = jobs1
    recs = lines(out)
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs)
    assert {(r["params"]["lr"], r["params"]["batch_size"]) for r in recs} == {
        (1e-3, 32), (1e-3, 64), (1e-4, 32), (1e-4, 64)}
    for r in recs:
        assert 0.0 <= r["valid_acc"] <= 1.0 and r["best_epoch"] == 1
        assert r["train_seconds"] > 0 and r["device"] == "cpu" and r["seed"] == 0
        assert {"torch", "skorch", "scikit-learn", "python"} <= set(r["versions"])
        assert r["threads"] >= 1
    # one summary line per finished configuration
    assert sum(line.startswith("[") and "valid_acc" in line for line in logs) == 4
    # report: sorted summary, the best, the heatmap
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["valid_acc"]) == sorted(summary["valid_acc"], reverse=True)
    best = json.loads((out / "best.json").read_text())
    assert best["valid_acc"] == max(r["valid_acc"] for r in recs)
    assert best["params"] in [r["params"] for r in recs if r["valid_acc"] == best["valid_acc"]]
    assert (out / "heatmap.png").stat().st_size > 1000
    # each run had its own checkpoint directory, deleted once recorded
    assert not (out / S.CHECKPOINT_SUBDIR).exists()
    assert len(frame) == 4


def test_rerun_skips_finished_configurations(jobs1):
    out, _, _ = jobs1
    before = (out / S.RESULTS_FILE).read_bytes()
    logs: list[str] = []
    frame = S.run_search(tiny(), out, progress=False, report=False, log=logs.append)
    assert (out / S.RESULTS_FILE).read_bytes() == before
    assert any("4 of 4 configurations already" in line for line in logs)
    assert len(frame) == 4 and (frame["status"] == "ok").all()


def test_sigkill_mid_search_then_resume_gives_one_result_each(tmp_path):
    grid = write_yaml(tmp_path / "tiny.yaml", tiny())
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "course_utils.search", str(grid), "--out", str(out),
           "--no-progress"]
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
    # a kill in the middle of a write leaves a half line: simulate one
    with open(results, "ab") as fh:
        fh.write(b'{"key": "half-writ')
    resumed = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "half written" in resumed.stderr
    assert f"{n_before} of 4 configurations already" in resumed.stdout
    recs = lines(out)  # parses every line: the torn one is gone
    keys = [r["key"] for r in recs]
    assert len(keys) == 4 and len(set(keys)) == 4
    assert all(r["status"] == "ok" for r in recs)
    assert all((out / f).exists() for f in S.REPORT_FILES)


def test_jobs_2_gives_the_same_configurations_as_jobs_1(jobs1, tmp_path):
    out1, _, _ = jobs1
    S.run_search(tiny(), tmp_path, jobs=2, progress=False, report=False, log=lambda _: None)
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
                             report=False, log=lambda _: None)
    recs = lines(tmp_path)
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs)
    assert sorted(frame["lr"]) == [1e-4, 1e-3]
    # the workers' own checkpoint folders are gone
    import tempfile

    assert not [p for r in recs for p in Path(tempfile.gettempdir()).glob(f"{r['id']}-e1-*")]


def test_failed_configuration_is_recorded_and_the_search_goes_on(tmp_path):
    # dropout 1.5 raises when the net is built, as CUDA OOM at batch 2048 would in training
    grid = tiny(params={"module__dropout": [1.5, 0.5], "batch_size": [64]})
    logs: list[str] = []
    frame = S.run_search(grid, tmp_path, progress=False, log=logs.append)
    recs = {r["params"]["module__dropout"]: r for r in lines(tmp_path)}
    assert recs[1.5]["status"] == "failed" and "dropout" in recs[1.5]["error"]
    assert recs[1.5]["valid_acc"] is None
    assert recs[0.5]["status"] == "ok" and recs[0.5]["valid_acc"] > 0
    assert any("FAILED" in line for line in logs)
    assert set(frame["status"]) == {"ok", "failed"}
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["params"]["module__dropout"] == 0.5 and best["failed"] == 1
    # a rerun keeps the failure (no retry loop), --retry-failed tries it again
    S.run_search(grid, tmp_path, progress=False, report=False, log=lambda _: None)
    assert len(lines(tmp_path)) == 2
    S.run_search(grid, tmp_path, progress=False, report=False, retry_failed=True,
                 log=lambda _: None)
    assert len(lines(tmp_path)) == 3


def test_successive_halving_promotes_the_best_of_each_rung(tmp_path):
    grid = tiny(max_epochs=2, params={"lr": [1.0e-3, 1.0e-4], "batch_size": [64]},
                halving={"factor": 2, "min_epochs": 1})
    frame = S.run_search(grid, tmp_path, halving=True, progress=False, log=lambda _: None)
    rung0, rung1 = frame[frame["rung"] == 0], frame[frame["rung"] == 1]
    assert len(rung0) == 2 and len(rung1) == 1
    assert (rung0["epochs"] == 1).all() and (rung1["epochs"] == 2).all()
    winner = rung0.sort_values("valid_acc", ascending=False, kind="stable").iloc[0]
    assert rung1.iloc[0]["lr"] == winner["lr"]
    assert json.loads((tmp_path / "best.json").read_text())["epochs"] == 2


def test_halving_schedule():
    assert S.halving_schedule(20, 3, 2) == [2, 6, 20]
    assert S.halving_schedule(2, 2, 1) == [1, 2]
    assert S.halving_schedule(1, 3, 1) == [1]


def test_compare_halving(jobs1):
    _, full, _ = jobs1
    half = full.sort_values("valid_acc", ascending=False).head(1)
    table = S.compare_halving(full, half)
    assert table.loc["successive halving", "rank in full grid"] == 1
    assert 0 < table.loc["successive halving", "compute (epochs) vs full"] <= 0.25 + 1e-9


# --------------------------------------------------------------------------- results file

def test_torn_last_line_is_dropped_with_a_warning(tmp_path):
    good = [{"key": f"k{i}", "id": f"k{i}", "params": {"lr": i}, "epochs": 1, "status": "ok"}
            for i in range(2)]
    for rec in good:
        S.append_result(tmp_path, rec)
    path = tmp_path / S.RESULTS_FILE
    with open(path, "ab") as fh:
        fh.write(b'{"key": "k2", "par')
    with pytest.warns(S.TornLineWarning, match="half written"):
        assert S.read_results(tmp_path, repair=True) == good
    assert path.read_bytes().endswith(b"}\n") and len(S.read_results(tmp_path)) == 2
    # damage that is not the last line is not silently skipped
    path.write_bytes(b'{"key": "k0"\n' + path.read_bytes())
    with pytest.raises(S.ResultsError, match="line 1"):
        S.read_results(tmp_path)


# --------------------------------------------------------------------------- bad input

BAD = [
    (tiny(params={"lr_rate": [0.1]}), S.UnknownParameterError, "unknown parameter 'lr_rate'"),
    (tiny(params={"module__dropot": [0.5]}), S.UnknownParameterError, "did you mean 'dropout'"),
    (tiny(params={"optimizer__momentum": [0.9]}), S.UnknownParameterError,
     "optimizer Adam has no parameter 'momentum'"),
    (tiny(params={"callbacks__nope__x": [1]}), S.UnknownParameterError, "unknown callback"),
    (tiny(model="AlexNetTiny"), S.UnknownParameterError, "unknown model"),
    (tiny(params={}), S.EmptyGridError, "the grid is empty"),
    (tiny(params={"lr": []}), S.EmptyGridError, "empty list"),
    (tiny(params={"lr": ["fast"]}), S.ParameterTypeError, "expected a number"),
    (tiny(params={"batch_size": [12.5]}), S.ParameterTypeError, "expected an integer"),
    (tiny(params={"module__dropout": ["high"]}), S.ParameterTypeError, "expected a number"),
    (tiny(params={"lr": [-0.1]}), S.ParameterTypeError, "must be positive"),
    (tiny(max_epochs="ten"), S.ParameterTypeError, "max_epochs must be a positive integer"),
    (tiny(epochs=3), S.GridError, "unknown key 'epochs'"),
]


@pytest.mark.parametrize("grid, error, message", BAD, ids=[b[2][:30] for b in BAD])
def test_bad_grid_is_one_clear_line_before_training(tmp_path, grid, error, message):
    with pytest.raises(error, match=message) as info:
        S.run_search(grid, tmp_path / "out", progress=False, log=lambda _: None)
    assert isinstance(info.value, CourseError)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("params:\n  lr: [1e-3, 1e-4\n  batch_size: 64\n")
    with pytest.raises(S.GridFileError, match="not valid YAML at line"):
        S.load_grid(bad)
    with pytest.raises(S.GridFileError, match="not found"):
        S.load_grid(tmp_path / "missing.yaml")


def test_yaml_reads_1e_minus_3_as_a_number(tmp_path):
    spec = S.load_grid(write_yaml(tmp_path / "g.yaml", tiny()))
    assert spec.params["lr"] == [1e-3, 1e-4]
    (tmp_path / "h.yaml").write_text("params: {lr: [1e-3, 5e-4], module__dropout: [0.5]}\n")
    assert S.load_grid(tmp_path / "h.yaml").params["lr"] == [1e-3, 5e-4]


def test_output_folder_of_a_different_grid_is_refused(jobs1, tmp_path):
    out, _, _ = jobs1
    other = tiny(params={"lr": [1.0e-2], "batch_size": [32]})
    before = (out / S.RESULTS_FILE).read_bytes()
    with pytest.raises(S.GridMismatchError, match="different grid"):
        S.run_search(other, out, progress=False, log=lambda _: None)
    assert (out / S.RESULTS_FILE).read_bytes() == before


def test_cli_errors_exit_2_and_a_local_run_imports_no_dask(jobs1, tmp_path):
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
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [errors[0]] and "module__dropot" in errors[0]
    assert "4 of 4 configurations already" in done.stdout


def test_shipped_grids_are_valid():
    ref = S.load_grid("reference")
    assert len(ref) == 45 and ref.params["module__dropout"] == [0.5, 0.3, 0.2]
    assert ref.params["batch_size"] == [128, 256, 512, 1024, 2048]
    assert len(S.load_grid("smoke")) >= 4
    assert len(S.notebook_grid("smoke")) == 2 and S.notebook_grid("smoke").max_epochs == 1
    assert S.notebook_grid("full").fingerprint() == S.load_grid("reference", "full").fingerprint()
