"""`make lab` (course_utils.tools.lab) without starting a server: the command line, the
settings that turn the news popup off, and the errors. The real server and browser
are exercised by tests/browser (`make test-browser`)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from course_helpers import proc_alive
from course_utils.tools import lab as lab


def _option(argv, name):
    values = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name} given {len(values)} times in {argv}"
    return values[0]


def test_lab_binds_localhost_with_this_python():
    argv = lab.lab_argv(8899)
    # JupyterLab from this Python, tied to this process (lab_server.py)
    assert argv[:3] == [lab.sys.executable, str(lab.SERVER_SCRIPT), str(os.getpid())]
    assert lab.lab_argv(8899, parent=123)[2] == "123"
    assert _option(argv, "ServerApp.ip") == "127.0.0.1"
    assert _option(argv, "ServerApp.port") == "8899"
    assert _option(argv, "ServerApp.port_retries") == "0"  # the printed port is the real one
    assert _option(argv, "ServerApp.root_dir") == str(lab.REPO_ROOT)


def test_the_token_is_in_the_environment_not_on_the_command_line(monkeypatch, capsys):
    """Any local user reads a command line with `ps`; an environment only its user."""
    started = {}

    class FakeServer:
        returncode = 0

        def __init__(self, argv, cwd=None, env=None, **kwargs):
            started.update(argv=argv, env=env, **kwargs)

        def poll(self):
            return None

        def wait(self, timeout=None):
            return 0

        def terminate(self):
            pass

    monkeypatch.setenv("JUPYTER_TOKEN_FILE", "/somewhere/else")
    monkeypatch.setattr(lab.subprocess, "Popen", FakeServer)
    monkeypatch.setattr(lab, "wait_until_ready", lambda *a, **k: 0.0)
    monkeypatch.setattr(lab.signal, "signal", lambda *a: None)
    assert lab.main(["--port", str(lab.free_port()), "--no-browser"]) == 0
    printed = capsys.readouterr().out
    token = printed.split("?token=")[1].split()[0]
    assert len(token) == 48
    assert not any(token in arg for arg in started["argv"])
    assert not any("token" in arg.lower() for arg in started["argv"])
    assert started["env"]["JUPYTER_TOKEN"] == token
    assert started["start_new_session"]  # Ctrl-C and hang-ups reach the wrapper only
    assert "JUPYTER_TOKEN_FILE" not in started["env"]  # JUPYTER_TOKEN is the one source
    assert lab.lab_env("abc", base={"PATH": "/bin"}) == {"PATH": "/bin", "JUPYTER_TOKEN": "abc"}


def test_news_and_update_checks_are_off():
    argv = lab.lab_argv(8899)
    assert _option(argv, "LabApp.news_url") == "None"
    assert _option(argv, "LabApp.check_for_updates_class") == "jupyterlab.NeverCheckForUpdate"
    settings_dir = _option(argv, "LabApp.app_settings_dir")
    overrides = json.loads((lab.SETTINGS_DIR / "overrides.json").read_text())
    assert settings_dir == str(lab.SETTINGS_DIR)
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}


def test_tokens_are_long_and_fresh():
    tokens = {lab.new_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(t) == 48 and int(t, 16) >= 0 for t in tokens)


def test_url_carries_the_token():
    assert lab.lab_url(8890, "abc") == "http://127.0.0.1:8890/lab?token=abc"


def test_busy_port_gets_a_clear_error(capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not lab.port_is_free(port)
        with pytest.raises(lab.LabError, match=f"port {port} .* already in use.*make lab PORT="):
            lab.check_port(port)
        assert lab.main(["--port", str(port), "--no-browser"]) == 2  # no server started
    err = capsys.readouterr().err
    assert err.startswith("error: port") and "Traceback" not in err


@pytest.mark.parametrize("port", [80, 70000])
def test_out_of_range_port_is_refused(port):
    with pytest.raises(lab.LabError, match="between 1024 and 65535"):
        lab.check_port(port)


def test_free_port_is_free():
    assert lab.port_is_free(lab.free_port())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_server_process_dies_with_its_parent_even_by_sigkill():
    """lab_server.tie_to_parent, without JupyterLab: a parent starts a tied child and is
    SIGKILLed; the child gets SIGTERM (tests/test_lab_faults.py does it with the real lab)."""
    child_code = ("import os, sys, time; sys.path.insert(0, sys.argv[1]); import lab_server; "
                  "lab_server.tie_to_parent(os.getppid()); print('tied', flush=True); "
                  "time.sleep(120)")
    parent_code = ("import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', "
                   f"{child_code!r}, sys.argv[1]], stdout=subprocess.PIPE, text=True); "
                   "assert c.stdout.readline() == 'tied\\n'; print(c.pid, flush=True); "
                   "import time; time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", parent_code, str(lab.SERVER_SCRIPT.parent)],
                              stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert proc_alive(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while proc_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not proc_alive(child), "the tied child outlived its SIGKILLed parent"
    finally:
        parent.kill()
        if child and proc_alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_server_does_not_start_when_its_parent_is_gone():
    result = subprocess.run([sys.executable, str(lab.SERVER_SCRIPT), "1"], check=False,
                            capture_output=True,
                            text=True, timeout=60)  # PID 1 is not its parent: gone already
    assert result.returncode == 1 and "Traceback" not in result.stderr
    bad = subprocess.run([sys.executable, str(lab.SERVER_SCRIPT), "x"], check=False,
                         capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("usage:") and len(
        bad.stderr.splitlines()) == 1


@pytest.mark.parametrize("args,words", [
    (["--port", "abc"], ["--port", "invalid int value: 'abc'"]),
    (["--timeout", "-1"], ["--timeout", "greater than 0"]),
    (["--timeout", "nan"], ["--timeout", "greater than 0"]),
    (["--bogus"], ["unrecognized arguments: --bogus"]),
])
def test_bad_options_are_one_line_and_start_nothing(args, words, capsys, monkeypatch):
    monkeypatch.setattr(lab.subprocess, "Popen", lambda *a, **k: pytest.fail("server started"))
    with pytest.raises(SystemExit) as exit_:
        lab.main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert all(word in err for word in words), err
