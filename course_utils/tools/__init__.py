"""The tools behind make targets: ``runner`` (make run, make outputs), ``lab`` (make lab)
and ``bench`` (make bench). The grid search is its own package, :mod:`course_utils.search`."""
