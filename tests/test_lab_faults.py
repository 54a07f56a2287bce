"""`make lab`'s wrapper killed alone, by any signal, with a real JupyterLab and kernel
(slow: marker ``faults``, run by ``make test-faults``).

The wrapper (``python -m course_utils.tools.lab``) is sent one signal; within a grace
period its JupyterLab server and the server's kernel must be gone and the port free.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from course_helpers import proc_alive, proc_children, wait_for_lab_url
from course_utils.tools.lab import HOST, free_port

pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")]

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 180
GRACE = 30  # seconds the server and kernel get to stop after the wrapper died


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
    return proc, port, wait_for_lab_url(proc, READY_TIMEOUT, log.name).group(3), log


def _start_kernel(port: int, token: str, server: int) -> int:
    request = urllib.request.Request(f"http://{HOST}:{port}/api/kernels?token={token}",
                                     data=json.dumps({"name": "python3"}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kernels = proc_children(server)
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
        servers = proc_children(proc.pid)
        assert len(servers) == 1, f"the wrapper should have one child, the server: {servers}"
        server = servers[0]
        kernel = _start_kernel(port, token, server)
        assert proc_alive(kernel) and _listening(port)

        os.kill(proc.pid, signum)  # the wrapper alone
        proc.wait(timeout=GRACE)
        deadline = time.monotonic() + GRACE
        while time.monotonic() < deadline and (
                proc_alive(server) or proc_alive(kernel) or _listening(port)):
            time.sleep(0.25)
        left = {"server": proc_alive(server), "kernel": proc_alive(kernel),
                "port": _listening(port)}
        assert not any(left.values()), (
            f"{GRACE} s after {signal.Signals(signum).name} to the wrapper, still running: "
            f"{[k for k, v in left.items() if v]}")
    finally:
        for pid in (proc.pid, server, kernel):
            if pid and proc_alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()
