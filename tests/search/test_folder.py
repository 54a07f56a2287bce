"""course_utils.search.folder: the output folder the search owns, and how it writes there.
Links are never followed, a lock never truncates, writes are whole or not at all."""
from __future__ import annotations

import errno
import json
import os

import pytest
from search_helpers import quiet, read_only, tiny

from course_utils import search as S
from course_utils.search import folder as F


@pytest.fixture(scope="module")
def spec():
    return S.load_grid(tiny())


# --------------------------------------------------------------------------- what is ours

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


def test_a_users_lock_and_tmp_files_do_not_make_a_folder_empty(tmp_path, spec):
    """A folder holding a user's .lock and *.tmp counted as empty, and .lock was truncated."""
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text("the user's notes\n")
    (out / "draft.tmp").write_text("keep")
    with pytest.raises(S.OutputFolderError, match=r"did not make \(.lock, draft.tmp\)"):
        S.SearchFolder(out, spec).claim()
    assert (out / ".lock").read_text() == "the user's notes\n"
    (out / "draft.tmp").unlink()
    with pytest.raises(S.OutputFolderError, match=r"did not make \(.lock\)"):
        S.SearchFolder(out, spec).claim()
    # the search's own lock (signed) and temporary files are its own
    (out / ".lock").write_bytes(F.LOCK_SIGNATURE)
    (out / ".grid.json.tmp-0123456789abcdef").write_bytes(b"")
    S.SearchFolder(out, spec).claim()
    assert json.loads((out / S.GRID_FILE).read_text())["fingerprint"] == spec.fingerprint()
    assert sorted(p.name for p in out.iterdir()) == [".lock", "checkpoints", "grid.json"]


def test_new_and_empty_folders_are_claimed_and_marked(tmp_path, spec):
    for out in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        folder = S.SearchFolder(out, spec)
        folder.claim()
        assert folder.owned() and (out / F.LOCK_FILE).read_bytes() == F.LOCK_SIGNATURE
        assert json.loads((out / S.GRID_FILE).read_text())["tool"] == "course_utils.search"
        S.SearchFolder(out, spec).check()  # its own folder: accepted again
    other = S.load_grid(tiny(params={"lr": [1.0e-2]}))
    with pytest.raises(S.GridMismatchError, match="different grid"):
        S.SearchFolder(tmp_path / "empty", other).check()


def test_a_file_as_the_folder_is_refused(tmp_path, spec):
    target = tmp_path / "notes.txt"
    target.write_text("keep")
    with pytest.raises(S.OutputFolderError, match="is a file, not a folder"):
        S.SearchFolder(target, spec).check()
    assert target.read_text() == "keep"


def test_a_read_only_folder_is_one_clear_error(tmp_path, spec):
    out = tmp_path / "ro"
    out.mkdir()
    with read_only(out):
        with pytest.raises(S.OutputFolderError, match="cannot write into --out .*"
                                                      "choose a folder you can write to"):
            S.SearchFolder(out, spec).claim()
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------- links

@pytest.mark.parametrize("name", [".lock", "results.jsonl", "summary.csv", "study.db",
                                  "grid.json"])
def test_a_link_in_the_folder_is_refused_and_its_target_untouched(tmp_path, spec, name):
    """.lock opened with "w" truncated a linked target; results.jsonl and summary.csv.tmp
    wrote through links."""
    out = tmp_path / "out"
    S.SearchFolder(out, spec).claim()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = out / name
    if link.exists():
        link.unlink()
    link.symlink_to(victim)
    with pytest.raises(S.OutputFolderError, match=f"holds a symbolic link, '{name}'"):
        S.run_search(tiny(), out, progress=False, log=quiet)
    with pytest.raises(S.OutputFolderError, match="symbolic link"):
        S.write_report(out)
    assert victim.read_text() == "precious\n"


def test_the_writers_never_follow_a_link(tmp_path, spec):
    out = tmp_path / "out"
    folder = S.SearchFolder(out, spec)
    folder.claim()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    for name in (S.RESULTS_FILE, "summary.csv"):
        (out / name).symlink_to(victim)
    with pytest.raises(S.OutputFolderError, match="symbolic link"):
        F.append_line(out / S.RESULTS_FILE, b"{}\n")
    with pytest.raises(S.OutputFolderError, match="symbolic link"):
        F.write_file(out / "summary.csv", "a,b\n")
    (out / F.LOCK_FILE).unlink()
    (out / F.LOCK_FILE).symlink_to(victim)
    with pytest.raises(S.OutputFolderError, match="symbolic link"):
        with folder.locked():
            pass
    assert victim.read_text() == "precious\n"
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


# --------------------------------------------------------------------------- whole writes

class _ShortThenFull:
    """os.write that writes part of the data, then fails with ENOSPC (a full disk)."""

    def __init__(self, real):
        self.real, self.calls = real, 0

    def __call__(self, fd, data):
        self.calls += 1
        if self.calls == 1:
            return self.real(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_short_write_then_enospc_leaves_no_partial_record(tmp_path, monkeypatch):
    """append_result ignored short writes: a 38-byte partial record merged into the next."""
    path = tmp_path / S.RESULTS_FILE
    F.append_line(path, b'{"first": 1}\n')
    monkeypatch.setattr(F.os, "write", _ShortThenFull(os.write))
    with pytest.raises(S.OutputFolderError, match=r"cannot write .*results.jsonl \(No space "
                       r"left on device\) \(the disk is full\): the finished results are "
                       "kept"):
        F.append_line(path, b'{"second": 2, "padding": "................"}\n')
    assert path.read_bytes() == b'{"first": 1}\n'


def test_a_failed_file_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    """A 0-byte summary.csv.tmp was left behind on a full disk."""
    path = tmp_path / "summary.csv"
    F.write_file(path, "old\n")
    monkeypatch.setattr(F.os, "write", _ShortThenFull(os.write))
    with pytest.raises(S.OutputFolderError, match="summary.csv .*the disk is full"):
        F.write_file(path, "new table " * 10)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]


def test_a_short_write_is_continued(tmp_path, monkeypatch):
    real = os.write
    monkeypatch.setattr(F.os, "write", lambda fd, data: real(fd, bytes(data[:3])))
    F.append_line(tmp_path / "r.jsonl", b"0123456789\n")
    F.write_file(tmp_path / "w.txt", "abcdefghij")
    assert (tmp_path / "r.jsonl").read_bytes() == b"0123456789\n"
    assert (tmp_path / "w.txt").read_text() == "abcdefghij"


# --------------------------------------------------------------------------- records

def test_records_are_checked_when_read(tmp_path):
    """A record with `params: null` gave an "unexpected" error."""
    good = F.new_record({"lr": 0.1}, 1, rung=None, seed=0)
    assert list(good) == list(S.RESULT_KEYS) and good["status"] == "failed"
    path = tmp_path / S.RESULTS_FILE
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "params": None}) + "\n")
    with pytest.raises(S.ResultsError, match=r"line 2, is not a result record \(params: "
                                             r"None\)"):
        S.read_results(tmp_path)
    path.write_text(json.dumps(good) + "\n{\"key\": \"half")
    with pytest.raises(S.ResultsError, match="line 2, is not JSON"):
        S.read_results(tmp_path)
    # an older line with fewer keys reads with the missing ones as None
    path.write_text(json.dumps({"key": "a@1", "id": "a", "params": {}, "epochs": 1,
                                "status": "ok", "valid_acc": 0.5}) + "\n")
    assert S.read_results(tmp_path)[0]["gap"] is None


def test_report_of_a_folder_with_params_null_is_one_line(tmp_path, capsys):
    from course_utils.search.cli import main

    out = tmp_path / "out"
    S.SearchFolder(out, S.load_grid(tiny())).claim()
    rec = F.new_record({"lr": 0.1}, 1, rung=None, seed=0)
    (out / S.RESULTS_FILE).write_text(json.dumps({**rec, "params": None}) + "\n")
    assert main(["--report", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a result record (params: None)" in err


def test_only_its_own_checkpoints_are_deleted(tmp_path, spec):
    out = tmp_path / "out"
    folder = S.SearchFolder(out, spec)
    folder.claim()
    killed = folder.checkpoints / "0123456789-e1-abcd"  # a run that was killed
    killed.mkdir()
    (killed / "params.pt").write_bytes(b"w")
    mine = folder.checkpoints / "keep-me"
    mine.mkdir()
    folder.clean_checkpoints(keep_folder=True)
    assert not killed.exists() and mine.is_dir()
