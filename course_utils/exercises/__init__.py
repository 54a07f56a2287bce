"""The notebooks' exercises: check an answer, or show the reference solution.

A notebook's exercise cell reads::

    answer = None  # your answer: a number
    check("04-1", answer)

Set ``answer`` and run the cell again. :func:`check` prints one line, saying
what is right or what is wrong (the type, the shape, which test input
differed, how far off), and returns True or False; it never shows the
reference answer. :func:`solution` does: it prints the reference solution's
code (its function's source) and returns its answer.

Layout: :mod:`.judge` is the framework (the :class:`Exercise` record, the judges,
``check`` and ``solution``); ``ch00`` ... ``ch13`` hold each notebook's exercises,
their test cases and their reference solutions as plain functions. Nothing here
imports the lessons; a "write it" exercise refuses the package's own functions
(:func:`~.judge.package_function`). Heavy imports happen inside the solutions, on
first use, so importing this package stays fast.
"""
from . import ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11, ch12, ch13
from .ch11 import check_imagenet_transfer
from .judge import EXERCISES, Exercise, ExerciseError, check, solution

#: The chapter modules, in notebook order; importing each registers its exercises.
CHAPTERS = (ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11, ch12, ch13)

__all__ = ["EXERCISES", "Exercise", "ExerciseError", "check", "check_imagenet_transfer",
           "solution"]
