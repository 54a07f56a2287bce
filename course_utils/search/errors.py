"""The grid search's errors: each says in one line what went wrong and what to do.

The command line prints any of them as one ``error: ...`` line and exits with 2.
"""
from __future__ import annotations

from ..config import CourseError

__all__ = ["DaskError", "EmptyGridError", "GridError", "GridFileError", "GridMismatchError",
           "GridTooLargeError", "OutputFolderError", "ParameterTypeError", "ResultsError",
           "SearchError", "UnknownParameterError"]


class SearchError(CourseError):
    """Base class of the search tool's user-facing errors."""


class GridError(SearchError, ValueError):
    """The grid file is wrong; nothing has been trained."""


class GridFileError(GridError):
    """The grid file is missing or is not valid YAML."""


class UnknownParameterError(GridError):
    """The grid names a parameter (or model) the course does not have or allow."""


class EmptyGridError(GridError):
    """The grid has no configuration to try."""


class GridTooLargeError(GridError):
    """The grid has more configurations than the cap (``--max-configs``)."""


class ParameterTypeError(GridError, TypeError):
    """A value in the grid has the wrong type, or an impossible value."""


class GridMismatchError(SearchError):
    """The output folder holds the results of a different grid."""


class OutputFolderError(SearchError):
    """The output folder cannot be used (not the search's, a link in it, not writable, a
    file), or a write into it failed (a full disk)."""


class ResultsError(SearchError):
    """results.jsonl is missing, or holds a line that is not a result record."""


class DaskError(SearchError):
    """Dask is not installed, or the address is not a Dask scheduler that answers."""

