"""JupyterLab for the course: the engine behind ``make lab``.

    python -m course_utils.tools.lab                 # port 8888, opens your browser
    python -m course_utils.tools.lab --port 8890     # another port
    python -m course_utils.tools.lab --no-browser    # just print the URL

JupyterLab runs from this Python (the course's ``.venv``), serves the repository
folder, listens on 127.0.0.1 only and is protected by a fresh random token. The
token reaches the server in its environment (``JUPYTER_TOKEN``), which only this
user can read, never on its command line, which every local user sees in ``ps``.
Once the server answers, the URL with its token is printed. Ctrl-C stops it.

The server never outlives this wrapper. It runs in its own process group (a terminal's
Ctrl-C or hang-up reaches the wrapper only, which then stops the server in order:
SIGTERM, so that jupyter_server shuts its kernels down), and it is started through
``lab_server.py``, which ties it to the wrapper's PID: when the wrapper dies by any
signal, SIGKILL included, the server gets SIGTERM (Linux's ``PR_SET_PDEATHSIG``, and a
watchdog thread elsewhere). SIGTERM, SIGHUP, SIGQUIT and SIGINT to the wrapper stop the
server before the wrapper exits.

JupyterLab's news popup ("Would you like to get notified about official Jupyter
news?") and its update check are turned off through configuration: the settings
defaults in ``course_utils/lab_settings/overrides.json`` (the lab's
``app_settings_dir``), and on the server side ``LabApp.news_url=None`` and
``jupyterlab.NeverCheckForUpdate``. Nothing is fetched from the internet.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path

from ..config import REPO_ROOT, CourseError
from . import OneLineParser, positive

__all__ = [
    "DEFAULT_PORT",
    "HOST",
    "SERVER_SCRIPT",
    "SETTINGS_DIR",
    "STOP_SIGNALS",
    "LabError",
    "check_port",
    "free_port",
    "lab_argv",
    "lab_env",
    "lab_url",
    "main",
    "new_token",
    "port_is_free",
    "stop",
    "wait_until_ready",
]

SETTINGS_DIR = Path(__file__).resolve().parent / "lab_settings"
#: Runs JupyterLab tied to this wrapper's PID (see its docstring); run by path.
SERVER_SCRIPT = Path(__file__).resolve().parent / "lab_server.py"
#: Signals on which the wrapper stops the server, then exits (SIGINT: KeyboardInterrupt).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGQUIT")
                     if hasattr(signal, name))
HOST = "127.0.0.1"
DEFAULT_PORT = 8888


class LabError(CourseError):
    """JupyterLab could not be started."""


def new_token() -> str:
    """A random token (48 hex characters) for one server."""
    return secrets.token_hex(24)


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port(port: int) -> int:
    if not 1024 <= port <= 65535:
        raise LabError(f"port {port} is out of range: choose one between 1024 and 65535, "
                       "e.g. make lab PORT=8890")
    if not port_is_free(port):
        raise LabError(f"port {port} on {HOST} is already in use (another JupyterLab?): "
                       f"stop it, or run make lab PORT={port + 2}")
    return port


def lab_url(port: int, token: str, path: str = "lab") -> str:
    return f"http://{HOST}:{port}/{path}?token={token}"


def lab_argv(port: int, root: Path = REPO_ROOT, open_browser: bool = False,
             parent: int | None = None) -> list[str]:
    """The command line that starts JupyterLab from this Python, tied to the process
    ``parent`` (default: this one) through :data:`SERVER_SCRIPT` (no token in it: see
    :func:`lab_env`)."""
    argv = [
        sys.executable, str(SERVER_SCRIPT), str(os.getpid() if parent is None else parent),
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # never move silently to another port
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.open_browser={open_browser}",
        # No news popup, no update check, no request to the internet.
        f"--LabApp.app_settings_dir={SETTINGS_DIR}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI machines run as root
        argv.append("--allow-root")
    return argv


def lab_env(token: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ``base`` (default: this process's) with the token as
    ``JUPYTER_TOKEN``, which jupyter_server reads. A process's environment is readable
    only by its user (``/proc/PID/environ``), unlike its command line."""
    env = dict(os.environ if base is None else base)
    env.pop("JUPYTER_TOKEN_FILE", None)
    env["JUPYTER_TOKEN"] = token
    return env


def wait_until_ready(port: int, token: str, proc: subprocess.Popen | None = None,
                     timeout: float = 120.0) -> float:
    """Poll the server's status API until it answers; returns the seconds waited."""
    start = time.monotonic()
    url = f"http://{HOST}:{port}/api/status?token={token}"
    while True:
        if proc is not None and proc.poll() is not None:
            raise LabError(f"JupyterLab exited with code {proc.returncode} before it was ready; "
                           "its log is above")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() - start > timeout:
            raise LabError(f"JupyterLab did not answer on port {port} within {timeout:.0f} s")
        time.sleep(0.25)


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop the server (SIGTERM: jupyter_server shuts its kernels down; SIGKILL to its
    process group after ``timeout`` s, and its kernels then stop by themselves)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (OSError, AttributeError):
            proc.kill()
        proc.wait()


def _say(text: str) -> None:
    """Print, where a terminal may be gone (SIGHUP): never fail for it."""
    try:
        print(text, flush=True)
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m course_utils.tools.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port on {HOST} (default {DEFAULT_PORT})")
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser; just print the URL")
    parser.add_argument("--timeout", type=positive(float), default=120.0,
                        help="seconds to wait for the server to start")
    parser.add_argument("lab_options", nargs="*", metavar="-- OPTION",
                        help="extra JupyterLab options after --, "
                             "e.g. -- --LabApp.expose_app_in_browser=True")
    args = parser.parse_args(argv)

    try:
        port = check_port(args.port)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    token = new_token()
    def _terminate(signum, frame):  # `kill PID` stops the server too, in `finally` below
        for sig in STOP_SIGNALS:  # one stop at a time; SIGKILL remains, and the server
            signal.signal(sig, signal.SIG_IGN)  # then stops by itself (lab_server.py)
        _say(f"\nStopping JupyterLab ({signal.Signals(signum).name}) ...")
        raise SystemExit(128 + signum)  # (waiting here would deadlock with proc.wait())

    for sig in STOP_SIGNALS:
        signal.signal(sig, _terminate)
    # Its own process group: Ctrl-C and a closed terminal reach this wrapper only.
    proc = subprocess.Popen(lab_argv(port) + args.lab_options, cwd=REPO_ROOT,
                            env=lab_env(token), start_new_session=True)
    try:
        try:
            seconds = wait_until_ready(port, token, proc, timeout=args.timeout)
        except LabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            stop(proc)
            return 1
        url = lab_url(port, token)
        notebook = lab_url(port, token, "lab/tree/notebooks/00_getting_started.ipynb")
        print("\n" + "=" * 78)
        print(f"JupyterLab is ready ({seconds:.1f} s). Open this URL in your browser:\n")
        print(f"    {url}\n")
        print(f"Start with notebook 00:\n    {notebook}\n")
        print("Press Ctrl-C here to stop the server.")
        print("=" * 78 + "\n", flush=True)
        if not args.no_browser:
            try:
                webbrowser.open(notebook)
            except Exception:  # no browser on this machine: the URL is printed above
                pass
        return proc.wait()
    except KeyboardInterrupt:
        _say("\nStopping JupyterLab ...")
        return 0
    finally:
        stop(proc)


if __name__ == "__main__":
    sys.exit(main())
