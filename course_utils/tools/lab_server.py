"""The JupyterLab server process of ``make lab``, tied to the wrapper that starts it.

    python .../course_utils/tools/lab_server.py PARENT_PID [JupyterLab options]

:mod:`course_utils.tools.lab` runs this file by its path (so the server does not import
the course package, nor torch). It runs JupyterLab in this process once it has made
sure the server cannot outlive ``PARENT_PID``, whatever ends the parent, SIGKILL included:

- on Linux the kernel sends this process SIGTERM when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``);
- everywhere a watchdog thread checks the parent once a second and sends SIGTERM;
- if the parent is already gone, the server does not start.

SIGTERM is jupyter_server's own stop: it shuts its kernels down and frees the port.
A kernel whose server dies anyway stops by itself (ipykernel watches its parent too).
If the server has not stopped :data:`GRACE` seconds after that SIGTERM, the watchdog
ends the process.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["GRACE", "main", "tie_to_parent"]

GRACE = 20.0  # seconds jupyter_server gets to stop its kernels after SIGTERM


def _parent_gone(parent: int) -> bool:
    return os.getppid() != parent


def _set_pdeathsig() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the watchdog below still works
        pass


def _watchdog(parent: int, interval: float = 1.0) -> None:
    while not _parent_gone(parent):
        time.sleep(interval)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE)
    os._exit(1)  # jupyter_server did not stop in time


def tie_to_parent(parent: int) -> None:
    """Stop this process (SIGTERM) when ``parent`` dies; exit now if it is already gone."""
    _set_pdeathsig()
    if _parent_gone(parent):  # died before prctl: no signal would come
        sys.exit(1)
    threading.Thread(target=_watchdog, args=(parent,), name="parent-watchdog",
                     daemon=True).start()


def main(argv: list[str]) -> None:
    if not argv or not argv[0].isdigit():
        sys.exit("usage: lab_server.py PARENT_PID [JupyterLab options] "
                 "(started by python -m course_utils.tools.lab)")
    tie_to_parent(int(argv[0]))
    import runpy

    sys.argv = ["jupyter-lab", *argv[1:]]
    runpy.run_module("jupyterlab", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    # Run by path: this folder is sys.path[0]; its modules (lab, runner, ...) must not
    # shadow anything JupyterLab imports.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    main(sys.argv[1:])
