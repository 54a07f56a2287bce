"""Fixtures of the grid-search tests: one real tiny search, shared by the test modules."""
from __future__ import annotations

import contextlib
import http.server
import socket
import threading

import pytest
from search_helpers import quiet, tiny

from course_utils import search as S


@pytest.fixture(scope="session")
def jobs1(tmp_path_factory):
    """The tiny grid (4 configurations, 64 images, 1 epoch) searched once in this process:
    (output folder, the returned frame, the log lines)."""
    out = tmp_path_factory.mktemp("jobs1") / "out"
    logs: list[str] = []
    frame = S.run_search(tiny(), out, jobs=1, progress=False, log=logs.append)
    return out, frame, logs


@pytest.fixture
def no_log():
    return quiet


@pytest.fixture
def http_port():
    """The port of a server that accepts connections and never says a word (a slow
    handshake: the search must keep its --dask-timeout)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []

    def accept():
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in held:
        conn.close()


@pytest.fixture
def web_port():
    """The port of a plain web server (http.server), not a Dask scheduler."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             http.server.BaseHTTPRequestHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
