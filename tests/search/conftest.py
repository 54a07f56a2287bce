"""Fixtures of the grid-search tests: one real tiny search, shared by the test modules."""
from __future__ import annotations

import http.server
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


class _Silent(http.server.BaseHTTPRequestHandler):
    """Accepts the connection and never answers what Dask sends (no HTTP request line)."""

    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    """The port of a local web server that is not a Dask scheduler."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
