import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from course_utils.tools import runner as runner


def _notebook(path, code):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in code])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def test_course_notebooks_are_in_order_and_selectable():
    books = runner.course_notebooks()
    assert [b.name for b in books] == sorted(b.name for b in books)
    assert runner.course_notebooks(["00"])[0].name == "00_getting_started.ipynb"
    with pytest.raises(runner.RunnerError, match="no notebook matches '99'"):
        runner.course_notebooks(["99"])
    assert runner.course_notebooks(["notebooks/00_getting_started.ipynb"]) == \
        runner.course_notebooks(["00"])


def test_execute_writes_notebook_and_html_and_reports_failure(tmp_path):
    good = _notebook(tmp_path / "good.ipynb", ["x = 6 * 7", "print(x)"])
    bad = _notebook(tmp_path / "bad.ipynb", ["raise ValueError('boom')", "print('never')"])
    out = tmp_path / "build"
    status, seconds, _, _ = runner.execute(good, out, inplace=True)
    assert status == "ok" and seconds > 0
    executed = nbformat.read(out / "good.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "42\n"
    assert "42" in (out / "good.html").read_text()
    assert nbformat.read(good, as_version=4).cells[1].outputs  # written back in place
    status, _, message, _ = runner.execute(bad, out, inplace=True)
    assert status == "FAILED" and "boom" in message
    assert (out / "bad.html").is_file()
    assert not nbformat.read(bad, as_version=4).cells[0].outputs  # not written back on failure


def test_course_result_lines_are_collected_into_a_csv(tmp_path):
    book = _notebook(tmp_path / "r.ipynb", [
        "print('warming up')",
        'print(\'COURSE-RESULT {"notebook": "05", "seeds": 3, '
        '"test_acc": {"mean": 0.9, "std": 0.01}}\')',
    ])
    status, _, _, found = runner.execute(book, tmp_path / "build")
    assert status == "ok"
    assert found == [{"notebook": "05", "seeds": 3, "test_acc": {"mean": 0.9, "std": 0.01}}]
    path = runner.write_results_csv(found + [{"notebook": "06", "valid_acc": 0.88}],
                                    tmp_path / "results.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "notebook,seeds,test_acc,valid_acc"
    assert lines[1].startswith("05,3,") and '""mean"": 0.9' in lines[1]
    assert lines[2] == "06,,,0.88"


def test_stored_outputs_lose_terminal_colour_codes(tmp_path):
    book = _notebook(tmp_path / "c.ipynb", ["print('\\x1b[36mepoch\\x1b[0m 1')"])
    runner.execute(book, tmp_path / "build", inplace=True)
    text = nbformat.read(book, as_version=4).cells[0].outputs[0]["text"]
    assert text == "epoch 1\n"


def _cli(*args, notebooks=None, env=None, timeout=300):
    """``python -m course_utils.tools.runner ARGS`` in a subprocess (stdout, stderr and
    exit code as a student sees them), optionally on another notebook folder."""
    code = ("import sys; from pathlib import Path; from course_utils.tools import runner; "
            "sys.argv[1] and setattr(runner, 'NOTEBOOK_DIR', Path(sys.argv[1])); "
            "sys.exit(runner.main(sys.argv[2:]))")
    return subprocess.run([sys.executable, "-c", code, str(notebooks or ""), *args],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def __repr__(self):
        return f"exit {self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def _main(capsys, monkeypatch, *args, notebooks=None):
    """runner.main(ARGS) in this process (argparse's exit caught), as _cli without the
    cost of a new interpreter."""
    if notebooks is not None:
        monkeypatch.setattr(runner, "NOTEBOOK_DIR", notebooks)
    capsys.readouterr()
    try:
        code = runner.main(list(args))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return _Result(code, captured.out, captured.err)


def _one_line_error(result, code=2, *words):
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.mark.parametrize("selection", [[""], ["  "], ["00", ""]])
def test_an_empty_selection_is_refused_not_every_notebook(selection, tmp_path, capsys,
                                                         monkeypatch):
    """`runner ""` selected every notebook (and with --inplace would rewrite them all)."""
    with pytest.raises(runner.RunnerError, match="empty notebook name"):
        runner.course_notebooks(selection)
    result = _cli(*selection, "--inplace", "--out", str(tmp_path / "out")) \
        if selection == [""] else _main(capsys, monkeypatch, *selection, "--inplace", "--out",
                                        str(tmp_path / "out"))
    _one_line_error(result, 2, "empty notebook name")
    assert result.stdout == "" and not (tmp_path / "out").exists()


def test_an_unmatched_selection_is_one_line(tmp_path, capsys, monkeypatch):
    result = _main(capsys, monkeypatch, "99", "x" * 5000, "--out", str(tmp_path / "out"))
    line = _one_line_error(result, 2, "no notebook matches '99'")
    assert len(line) < 400 and result.stdout == ""


@pytest.mark.parametrize("args,words", [
    (["--timeout", "0"], ["--timeout", "greater than 0"]),
    (["--timeout", "soon"], ["--timeout", "whole number"]),
    (["--bogus"], ["unrecognized arguments: --bogus"]),
])
def test_bad_options_are_one_line(args, words, capsys, monkeypatch):
    _one_line_error(_main(capsys, monkeypatch, "00", *args), 2, *words)


def test_a_bad_profile_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "bogus")
    _one_line_error(_main(capsys, monkeypatch, "00"), 2, "bogus")


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_notebook(
        tmp_path, capsys, monkeypatch):
    """It used to run the notebook first, then stop with a traceback and no summary."""
    books = tmp_path / "books"
    books.mkdir()
    _notebook(books / "00_a.ipynb", ["open('ran', 'w').write('yes')"])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out, words in ((blocker, "is a file"), (blocker / "sub", "cannot write")):
        result = _main(capsys, monkeypatch, "--out", str(out), notebooks=books)
        _one_line_error(result, 2, words, "--out DIR")
        assert result.stdout == "" and not (books / "ran").exists()
    if os.geteuid() != 0:  # root writes into read-only folders
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        _one_line_error(_main(capsys, monkeypatch, "--out", str(locked), notebooks=books), 2,
                        "cannot write")


def test_the_summary_is_printed_when_a_notebook_cannot_be_written(tmp_path, monkeypatch, capsys):
    books = tmp_path / "books"
    books.mkdir()
    _notebook(books / "00_a.ipynb", ["1"])
    _notebook(books / "01_b.ipynb", ["2"])
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", books)
    calls = []

    def fake_execute(path, out_dir, inplace=False, timeout=3600, stop=None):
        calls.append(path.name)
        if path.name.startswith("00"):
            raise OSError(28, "No space left on device", str(out_dir / path.name))
        return "ok", 1.0, "", []

    monkeypatch.setattr(runner, "execute", fake_execute)
    assert runner.main(["--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert calls == ["00_a.ipynb", "01_b.ipynb"]  # the next notebook still ran
    summary = out.split("Summary")[1].splitlines()[1:]
    assert summary[0].split()[0] == "FAILED" and "No space left on device" in summary[0]
    assert summary[1].split()[0] == "ok" and "01_b.ipynb" in summary[1]


def test_a_notebook_that_is_not_json_fails_alone(tmp_path, capsys, monkeypatch):
    books = tmp_path / "books"
    books.mkdir()
    (books / "00_a.ipynb").write_text("{ not json")
    _notebook(books / "01_b.ipynb", ["print(1)"])
    result = _main(capsys, monkeypatch, "--out", str(tmp_path / "out"), notebooks=books)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    summary = result.stdout.split("Summary")[1].splitlines()[1:]
    assert summary[0].split()[0] == "FAILED" and "00_a.ipynb" in summary[0]
    assert summary[1].split()[0] == "ok"


def test_a_second_ctrl_c_still_prints_the_summary(tmp_path, monkeypatch, capsys):
    """A second Ctrl-C (KeyboardInterrupt) stops at once; the summary still comes.
    The first one, with a real kernel: test_a_run_stopped_mid_notebook_... (faults)."""
    books = tmp_path / "books"
    books.mkdir()
    for name in ("00_a", "01_b", "02_c"):
        _notebook(books / f"{name}.ipynb", ["1"])
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", books)

    def fake_execute(path, out_dir, inplace=False, timeout=3600, stop=None):
        if path.name.startswith("01"):
            raise KeyboardInterrupt
        return "ok", 1.0, "", []

    monkeypatch.setattr(runner, "execute", fake_execute)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert runner.main(["--out", str(tmp_path / "out")]) == 130
    summary = capsys.readouterr().out.split("Summary")[1].splitlines()[1:]
    assert [line.split()[0] for line in summary] == ["ok", "STOPPED", "-"]
    assert summary[2].endswith("02_c.ipynb  not run")
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_a_run_prints_one_line_per_notebook_and_no_kernel_warning(tmp_path):
    """`make run` printed ipykernel's "Kernel is running over TCP without encryption"
    once per notebook."""
    zmq = pytest.importorskip("zmq")
    if not zmq.has("curve"):
        pytest.skip("pyzmq without CurveZMQ: kernels cannot encrypt here")
    books = tmp_path / "books"
    books.mkdir()
    _notebook(books / "00_a.ipynb", ["print(6 * 7)"])
    _notebook(books / "01_b.ipynb", ["import sys; print('to stderr', file=sys.stderr)"])
    out = tmp_path / "out"
    result = _cli("--out", str(out), notebooks=books)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Running 2 notebook(s)")
    assert lines[1:3] == ["-> 00_a.ipynb ...", "-> 01_b.ipynb ..."]
    assert lines[3:5] == ["", "Summary"] and len(lines) == 7
    executed = nbformat.read(out / "00_a.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "42\n"  # the encrypted kernel ran it


@pytest.mark.faults
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_run_stopped_mid_notebook_prints_its_summary_and_leaves_no_kernel(tmp_path, signum):
    """A real kernel in a long cell; the runner alone gets the signal."""
    from course_helpers import proc_alive, proc_children

    books = tmp_path / "books"
    books.mkdir()
    _notebook(books / "00_a.ipynb",
              ["print('started', flush=True)", "import time; time.sleep(120)"])
    _notebook(books / "01_b.ipynb", ["1"])
    code = ("import sys; from pathlib import Path; from course_utils.tools import runner; "
            "runner.NOTEBOOK_DIR = Path(sys.argv[1]); sys.exit(runner.main(sys.argv[2:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(books), "--out", str(tmp_path / "o")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    kernels = []
    try:
        deadline = time.monotonic() + 120
        while not kernels and time.monotonic() < deadline:
            kernels = proc_children(proc.pid)
            time.sleep(0.2)
        assert kernels, "no kernel started"
        time.sleep(3)  # into the long cell
        os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (out, err)
        assert "Traceback" not in out + err, err
        summary = out.split("Summary")[1].splitlines()[1:]
        assert [line.split()[0] for line in summary] == ["STOPPED", "-"], out
        deadline = time.monotonic() + 20
        while any(proc_alive(k) for k in kernels) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(proc_alive(k) for k in kernels), "the kernel outlived the runner"
    finally:
        proc.kill()
        for k in kernels:
            if proc_alive(k):
                os.kill(k, signal.SIGKILL)
