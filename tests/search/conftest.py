"""Fixtures of the grid-search tests: one real tiny search, shared by the test modules."""
from __future__ import annotations

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
