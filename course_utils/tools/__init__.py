"""The tools behind make targets: ``runner`` (make run, make outputs), ``lab`` (make lab)
and ``bench`` (make bench). The grid search is its own package, :mod:`course_utils.search`.

Their command lines share :class:`OneLineParser`: bad input is one line and exit 2."""
from __future__ import annotations

import argparse

__all__ = ["OneLineParser", "positive"]


class OneLineParser(argparse.ArgumentParser):
    """argparse for the tools' command lines: bad input is one line, ``error: ...``, and
    exit 2 (no usage block: ``--help`` shows it)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def positive(kind=float):
    """An argparse ``type``: a number of ``kind`` greater than 0, else one clear line."""
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text[:40]!r} is not a {'whole ' if kind is int else ''}number") from None
        if not value > 0:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{text[:40]} must be greater than 0")
        return value

    return convert
