"""`make lab`'s wrapper killed alone, by any signal, with a real JupyterLab and kernel
(slow: marker ``faults``, run by ``make test-faults``).

The wrapper (``python -m course_utils.tools.lab``) is sent one signal; within a grace
period its JupyterLab server and the server's kernel must be gone and the port free.
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from course_utils.tools.lab import HOST, free_port

pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")]

REPO = Path(__file__).resolve().parent.parent
URL_RE = re.compile(r"(http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+))")
READY_TIMEOUT = 180
GRACE = 30  # seconds the server and kernel get to stop after the wrapper died


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        child = int(stat.parent.name)
        fields = _stat(child)
        if fields is not None and int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(child)
    return found


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def _start_lab(tmp_path: Path):
    """The wrapper as `make lab` starts it, on a free port, in a clean Jupyter home;
    returns (proc, port, token, log)."""
    home = tmp_path / "jupyter"
    env = dict(os.environ)
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), PYTHONUNBUFFERED="1")
    port = free_port()
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_utils.tools.lab", "--port", str(port), "--no-browser"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
        start_new_session=True)  # as a terminal would: the signal goes to the wrapper alone
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the lab wrapper exited with {proc.returncode}; see {log.name}")
        if time.monotonic() > deadline:
            pytest.fail(f"no URL printed within {READY_TIMEOUT} s; see {log.name}")
        try:
            match = URL_RE.search(lines.get(timeout=0.5))
        except queue.Empty:
            continue
        if match:
            return proc, port, match.group(3), log


def _start_kernel(port: int, token: str, server: int) -> int:
    request = urllib.request.Request(f"http://{HOST}:{port}/api/kernels?token={token}",
                                     data=json.dumps({"name": "python3"}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kernels = _children(server)
        if kernels:
            return kernels[0]
        time.sleep(0.2)
    pytest.fail("the kernel process did not appear")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGHUP, signal.SIGTERM,
                                    signal.SIGINT, signal.SIGUSR1],
                         ids=lambda s: signal.Signals(s).name)
def test_lab_server_and_kernel_stop_when_the_wrapper_dies(tmp_path, signum):
    proc, port, token, log = _start_lab(tmp_path)
    server = kernel = None
    try:
        servers = _children(proc.pid)
        assert len(servers) == 1, f"the wrapper should have one child, the server: {servers}"
        server = servers[0]
        kernel = _start_kernel(port, token, server)
        assert _alive(kernel) and _listening(port)

        os.kill(proc.pid, signum)  # the wrapper alone
        proc.wait(timeout=GRACE)
        deadline = time.monotonic() + GRACE
        while time.monotonic() < deadline and (
                _alive(server) or _alive(kernel) or _listening(port)):
            time.sleep(0.25)
        left = {"server": _alive(server), "kernel": _alive(kernel), "port": _listening(port)}
        assert not any(left.values()), (
            f"{GRACE} s after {signal.Signals(signum).name} to the wrapper, still running: "
            f"{[k for k, v in left.items() if v]}")
    finally:
        for pid in (proc.pid, server, kernel):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()
