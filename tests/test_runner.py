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
    with pytest.raises(SystemExit, match="no notebook matches 99"):
        runner.course_notebooks(["99"])


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
