"""course_utils.search.store: the results file, and an output folder the search owns."""
from __future__ import annotations

import json

import pytest
from search_helpers import quiet, read_only, tiny

from course_utils import search as S
from course_utils.search.store import CHECKPOINT_DIR, new_record


# --------------------------------------------------------------------------- results file

def test_torn_last_line_is_dropped_with_a_warning(tmp_path):
    good = [new_record({"lr": i}, 1, rung=None, seed=0) for i in range(2)]
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


def test_one_schema_for_writer_and_reader(tmp_path):
    rec = new_record({"lr": 0.1}, 2, rung=1, seed=3)
    assert list(rec) == list(S.RESULT_KEYS) and rec["status"] == "failed"
    assert rec["key"] == S.run_key({"lr": 0.1}, 2)
    S.append_result(tmp_path, {**rec, "status": "ok", "valid_acc": 0.5, "_private": "x"})
    line = json.loads((tmp_path / S.RESULTS_FILE).read_text())
    assert list(line) == list(S.RESULT_KEYS)  # what is written is the schema, in order
    # an older line with fewer keys reads with the missing ones as None
    with open(tmp_path / S.RESULTS_FILE, "a") as fh:
        fh.write(json.dumps({"key": "a@1", "id": "a", "params": {}, "epochs": 1,
                             "status": "ok"}) + "\n")
    old = S.read_results(tmp_path)[1]
    assert set(old) == set(S.RESULT_KEYS) and old["gap"] is None


# --------------------------------------------------------------------------- the folder

def test_a_folder_that_is_not_the_searchs_is_refused_and_left_alone(tmp_path):
    """`--out build` used to delete build/checkpoints (the notebooks' checkpoints)."""
    build = tmp_path / "build"
    (build / "checkpoints" / "run-abc").mkdir(parents=True)
    (build / "checkpoints" / "run-abc" / "params.pt").write_bytes(b"weights")
    (build / "summary.csv").write_text("someone else's table\n")
    before = sorted(p.relative_to(build) for p in build.rglob("*"))
    with pytest.raises(S.OutputFolderError, match="holds files the search did not make "
                                                  r"\(checkpoints, summary.csv\)"):
        S.run_search(tiny(), build, progress=False, log=quiet)
    assert sorted(p.relative_to(build) for p in build.rglob("*")) == before
    assert (build / "summary.csv").read_text() == "someone else's table\n"
    with pytest.raises(S.OutputFolderError, match="holds files the search did not make"):
        S.write_report(build)


def test_a_file_as_the_folder_is_refused(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep")
    with pytest.raises(S.OutputFolderError, match="is a file, not a folder"):
        S.SearchFolder(target, S.load_grid(tiny())).check()
    assert target.read_text() == "keep"


def test_new_and_empty_folders_are_taken_and_marked(tmp_path):
    spec = S.load_grid(tiny())
    for out in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        with S.SearchFolder(out, spec) as folder:
            assert (out / S.GRID_FILE).is_file() and folder.owned()
            assert json.loads((out / S.GRID_FILE).read_text())["fingerprint"] == \
                spec.fingerprint()
        S.SearchFolder(out, spec).check()  # its own folder: accepted again
    other = S.load_grid(tiny(params={"lr": [1.0e-2]}))
    with pytest.raises(S.GridMismatchError, match="different grid"):
        S.SearchFolder(tmp_path / "empty", other).check()


def test_only_its_own_checkpoints_are_deleted(tmp_path):
    spec = S.load_grid(tiny())
    out = tmp_path / "out"
    with S.SearchFolder(out, spec):
        pass
    ckpt = out / CHECKPOINT_DIR
    ckpt.mkdir(exist_ok=True)
    killed = ckpt / "0123456789-e1-abcd"  # a run that was killed: rerun from scratch
    killed.mkdir()
    (killed / "params.pt").write_bytes(b"w")
    mine = ckpt / "keep-me"
    mine.mkdir()
    with S.SearchFolder(out, spec):
        assert not killed.exists() and mine.is_dir()


def test_a_busy_folder_is_refused(tmp_path):
    pytest.importorskip("fcntl")
    spec = S.load_grid(tiny())
    with S.SearchFolder(tmp_path / "out", spec):
        with pytest.raises(S.SearchBusyError, match="another search is writing"):
            with S.SearchFolder(tmp_path / "out", spec):
                pass


def test_a_read_only_folder_is_one_clear_error(tmp_path):
    spec = S.load_grid(tiny())
    out = tmp_path / "ro"
    out.mkdir()
    with read_only(out):
        with pytest.raises(S.OutputFolderError, match="cannot write into --out .*"
                                                      "choose a folder you can write to"):
            S.SearchFolder(out, spec).__enter__()
    assert list(out.iterdir()) == []
