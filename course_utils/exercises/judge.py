"""The exercises' framework: the :class:`Exercise` record, the judges, :func:`check` and
:func:`solution`.

A chapter module (``ch01`` ... ``ch13``) writes its reference solutions as real
functions and hands its exercises to :func:`register`; the package imports the
chapters in notebook order, so :data:`EXERCISES` lists them all. Nothing here
knows a chapter, and nothing in this package imports the lessons.

Two kinds of exercise:

* compute it (``write_it=False``): the reference is a function without arguments
  that computes the answer (a number, a tuple, a list);
* write it (``write_it=True``): the answer is a function (or a class: an ``nn.Module``,
  a skorch ``Callback``), and the reference is that function. :func:`check` refuses a
  function of the ``course_utils`` package (a lesson's twin, or one that calls it) other
  than the exercise's own reference, which :func:`solution` hands out anyway: the
  exercise asks for the student's own code.
"""
from __future__ import annotations

import copy
import dis
import functools
import inspect
import math
import numbers
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import CourseError

__all__ = ["EXERCISES", "DeferredExercise", "Exercise", "ExerciseError", "Judge", "as_int",
           "as_number", "check", "call_answer", "describe", "generator", "int_function",
           "module_class", "number", "package_function", "register", "solution",
           "tensor_function", "whole_numbers"]

#: The folder of the ``course_utils`` package: code compiled from a file in it is the
#: package's, not the student's.
PACKAGE_DIR = Path(__file__).resolve().parent.parent


class ExerciseError(CourseError, ValueError):
    """An exercise id that does not exist."""


#: A judge gets the answer and a function that computes the reference answer
#: (called only when needed), and returns None for a right answer, else what is wrong.
Judge = Callable[[Any, Callable[[], Any]], "str | None"]


@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook.

    Parameters
    ----------
    id : str
        ``"NN-k"``: notebook NN, exercise k.
    question : str
        The question in one line.
    expects : str
        What ``answer`` should be ("a number", "a function lrn(a, ...)").
    reference : callable
        The reference solution, a function of the chapter module: the answer itself
        when ``write_it``, else called without arguments to compute the answer.
    judge : callable
        ``judge(answer, reference)`` returns None when ``answer`` is right, else
        a message; ``reference()`` computes the reference answer.
    write_it : bool
        The answer is a function the student writes.
    """

    id: str
    question: str
    expects: str
    reference: Callable
    judge: Judge
    write_it: bool = False

    @property
    def source(self) -> str:
        """The reference solution as :func:`solution` prints it: the function's source,
        then the line that sets ``answer``."""
        code = textwrap.dedent(inspect.getsource(self.reference)).strip("\n")
        name = self.reference.__name__
        return f"{code}\n\n\nanswer = {name if self.write_it else name + '()'}\n"

    def answer(self) -> Any:
        """The reference answer (computed once)."""
        return _reference_answer(self)


class DeferredExercise(Exercise):
    """An :class:`Exercise` whose reference is imported on first use: ``reference`` is
    given as a function without arguments that returns it, and reading
    ``exercise.reference`` calls it (once).

    For a reference whose definition needs a heavy import, such as a subclass of skorch's
    ``Callback`` (skorch imports pandas): importing this package must not pay for it.
    """

    @property
    def reference(self) -> Callable:
        return self._load_reference()

    @reference.setter
    def reference(self, load: Callable[[], Callable]) -> None:
        # the dataclass's __init__ sets the field through here
        object.__setattr__(self, "_load_reference", functools.cache(load))


#: The registry: exercise id -> :class:`Exercise`, in notebook order (filled by the
#: chapter modules through :func:`register` when the package is imported).
EXERCISES: dict[str, Exercise] = {}


def register(*exercises: Exercise) -> tuple[Exercise, ...]:
    """Add a chapter's exercises to :data:`EXERCISES`; returns them."""
    for exercise in exercises:
        EXERCISES[exercise.id] = exercise
    return exercises


@functools.cache
def _reference_answer(exercise: Exercise) -> Any:
    if exercise.write_it:
        return exercise.reference
    with torch.random.fork_rng(devices=[]):  # the notebook's random state stays as it was
        return exercise.reference()


# --------------------------------------------------------------------------- describing values

def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(x: Any) -> str:
    """How a wrong-typed answer is described: its type, and a short repr for strings."""
    if isinstance(x, str):
        return f"a string ({_one_line(repr(x), 40)}): write it without quotes"
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    if callable(x):
        return "a function"
    name = type(x).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def as_number(x: Any) -> float | None:
    """``x`` as a float when it is one real number (int, float, NumPy or 1-element tensor)."""
    if isinstance(x, bool):
        return None
    if isinstance(x, numbers.Real):
        return float(x)
    if isinstance(x, torch.Tensor) and x.numel() == 1 and not x.is_complex() \
            and x.dtype != torch.bool:
        return float(x.item())
    if type(x).__module__ == "numpy" and getattr(x, "size", None) == 1 \
            and getattr(x, "dtype", None) is not None and x.dtype.kind in "iuf":
        return float(x.item())
    return None


def as_int(x: Any) -> int | None:
    """``x`` as an int when it is a whole number (``3``, ``3.0``, ``tensor(3)``)."""
    value = as_number(x)
    if value is None or not math.isfinite(value) or not value.is_integer():
        return None
    return int(value)


def _miss(value: float, ref: float) -> str:
    """How far off ``value`` is, coarsely enough not to give the reference away."""
    if value == 0:
        return "is 0"
    if ref == 0:
        return "should be 0"
    if (value > 0) != (ref > 0):
        return "has the wrong sign"
    ratio = value / ref
    word = "too large" if ratio > 1 else "too small"
    factor = max(ratio, 1 / ratio)
    if factor >= 10:  # only the order of magnitude
        exponent = round(math.log10(factor))
        return (f"is {word} by a factor of about {10 ** exponent:,}" if exponent <= 6
                else f"is {word} by a factor of about 10^{exponent}")
    if factor >= 2:
        return f"is {word} by a factor of about {round(factor)}"
    percent = 100 * (factor - 1)
    if percent < 1:
        return f"is slightly {word} (by less than 1%)"
    return f"is {word} by about {percent:.0f}%"


def call_answer(f: Callable, args: tuple, kwargs: dict, shown: str) -> tuple[Any, str | None]:
    """Call the student's function; an exception becomes a one-line message."""
    try:
        return f(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 (any exception is a wrong answer, on one line)
        detail = str(exc)
        name = type(exc).__name__
        return None, f"{shown} raised {name}: {detail}" if detail else f"{shown} raised {name}"


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``: test inputs that do not touch the global seed."""
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- judges

def number(rel: float | None = None, abs_: float | None = None,
           mistakes: Callable[[], list[tuple[float, str]]] | None = None,
           share: bool = False) -> Judge:
    """A number within ``rel`` (relative) or ``abs_`` (absolute) tolerance of the reference.

    ``mistakes()`` lists values of common mistakes with a hint each; ``share``
    asks for a value between 0 and 1.
    """
    def judge(answer, reference):
        value = as_number(answer)
        if value is None:
            return f"expected a number, got {describe(answer)}"
        if not math.isfinite(value):
            return f"your answer is {value}: expected a finite number"
        if share and not 0 <= value <= 1:
            return "give a share between 0 and 1 (0.25 for a quarter), not a percentage"
        ref = float(reference())
        if math.isclose(value, ref, rel_tol=rel or 0.0, abs_tol=abs_ or 0.0):
            return None
        for wrong, hint in (mistakes() if mistakes else []):
            if math.isclose(value, wrong, rel_tol=1e-3):
                return f"not quite: {hint}"
        return f"not quite: your answer {_miss(value, ref)}"
    return judge


def tensor_function(name: str,
                    cases: Callable[[Callable], list[tuple[str, tuple, dict, torch.Tensor]]],
                    atol: float, rtol: float = 0.0,
                    mistakes: Callable[[tuple, dict], list[tuple[torch.Tensor, str]]] | None = None
                    ) -> Judge:
    """A function whose output matches the expected tensor on every case.

    ``cases(reference_function)`` lists ``(description, args, kwargs, expected)``;
    ``mistakes(args, kwargs)`` the outputs of common mistakes, with a hint each.
    """
    def judge(answer, reference):
        if not callable(answer):
            return f"expected a function {name}(...), got {describe(answer)}"
        for shown, args, kwargs, expected in cases(reference()):
            args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
            out, error = call_answer(answer, args, kwargs, f"your function, on {shown},")
            if error:
                return error
            try:
                out = torch.as_tensor(out)
            except Exception:  # noqa: BLE001 (whatever it returned is not a tensor)
                return f"on {shown} your function returned {describe(out)}, expected a tensor"
            if out.shape != expected.shape:
                return (f"on {shown} your function returned shape {tuple(out.shape)}, "
                        f"expected {tuple(expected.shape)}")
            out, exp = out.detach().double(), expected.double()
            diff = (out - exp).abs()
            bad = ~(diff <= atol + rtol * exp.abs())  # NaN counts as bad
            if bad.any():
                for wrong, hint in (mistakes(args, kwargs) if mistakes else []):
                    if torch.allclose(out, wrong.double(), atol=atol, rtol=rtol):
                        return f"on {shown}: {hint}"
                largest = diff.nan_to_num(nan=math.inf).max().item()
                return (f"on {shown}, {int(bad.sum())} of {bad.numel()} values differ: the "
                        f"largest difference is {largest:.3g} (tolerance {atol:g})")
        return None
    return judge


def int_function(name: str, cases: Callable[[Callable], list[tuple[str, tuple, dict, int]]]
                 ) -> Judge:
    """A function returning an int that equals the expected one on every case.

    ``cases(reference_function)`` lists ``(call shown, args, kwargs, expected)``.
    """
    def judge(answer, reference):
        if not callable(answer):
            return f"expected a function {name}(...), got {describe(answer)}"
        for shown, args, kwargs, expected in cases(reference()):
            args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
            out, error = call_answer(answer, args, kwargs, shown)
            if error:
                return error
            value = as_int(out)
            if value is None:
                got = as_number(out)
                got = describe(out) if got is None else f"{got:g}"
                return f"{shown} returned {got}, expected a whole number (an int)"
            if value != expected:
                return f"{shown} returned {value}, the right answer is {expected}"
        return None
    return judge


def module_class(name: str, cases: Callable[[Callable], list[tuple[str, tuple, torch.Tensor,
                                                                   torch.Tensor]]],
                 atol: float,
                 mistakes: Callable[[tuple, torch.Tensor], list[tuple[torch.Tensor, str]]]
                 | None = None,
                 forbidden: tuple[str, ...] = ()) -> Judge:
    """An ``nn.Module`` class whose instances compute what the reference's do.

    ``cases(reference_class)`` lists ``(description, constructor args, input, expected
    output)``; ``mistakes(args, x)`` the outputs of common mistakes with a hint each;
    ``forbidden`` names (``"leaky_relu"``) the answer's code must not use.
    """
    def judge(answer, reference):
        if not (isinstance(answer, type) and issubclass(answer, torch.nn.Module)):
            return f"expected an nn.Module class {name}, got {describe(answer)}"
        used = _names_used([f for f in vars(answer).values() if isinstance(f, types.FunctionType)])
        if answer.__module__.startswith("torch") or used & set(forbidden):
            return (f"write {name} yourself, with tensor operations: not with "
                    f"{' or '.join(forbidden) or 'a module torch already has'}")
        for shown, args, x, expected in cases(reference()):
            try:
                module = answer(*args)
            except Exception as exc:  # noqa: BLE001 (the student's code may raise anything)
                return f"{name}{args} raised {type(exc).__name__}: {exc}"
            out, error = call_answer(module, (x.clone(),), {}, f"{name}{args} on {shown}")
            if error:
                return error
            if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else describe(out)
                return (f"{name}{args} on {shown} returned {got}, expected shape "
                        f"{tuple(expected.shape)}")
            if not torch.allclose(out.detach().double(), expected.double(), atol=atol):
                for wrong, hint in (mistakes(args, x) if mistakes else []):
                    if torch.allclose(out.detach().double(), wrong.double(), atol=atol):
                        return f"{name}{args} on {shown}: {hint}"
                largest = (out.detach().double() - expected.double()).abs().max().item()
                return (f"{name}{args} on {shown}: the output differs by up to {largest:.3g} "
                        f"(tolerance {atol:g})")
        return None
    return judge


def _names_used(functions: list, depth: int = 4) -> set[str]:
    """The global and attribute names that ``functions`` use, following the functions they
    reach through closures, defaults and globals (a student's helpers)."""
    names: set[str] = set()
    seen: set[int] = set()
    todo = [(f, 0) for f in functions]
    while todo:
        f, level = todo.pop()
        if id(f) in seen or level > depth:
            continue
        seen.add(id(f))
        for code in _codes(f.__code__):
            names.update(code.co_names)
        reached = [*_bound_values(f), *(f.__globals__.get(n) for n in f.__code__.co_names)]
        todo += [(g, level + 1) for g in reached if isinstance(g, types.FunctionType)]
    return names


def whole_numbers(count: int | None, what: str
                  ) -> Callable[[Any], tuple[list[int] | None, str | None]]:
    """A parser of a tuple or list of ``count`` whole numbers (any count when None):
    ``parse(answer)`` returns ``(values, None)`` or ``(None, what is wrong)``."""
    def parse(answer):
        if not isinstance(answer, (tuple, list)):
            return None, f"expected {what}, got {describe(answer)}"
        if count is not None and len(answer) != count:
            return None, f"expected {what}, got {len(answer)} value(s)"
        values = [as_int(a) for a in answer]
        if any(v is None for v in values):
            bad = next(a for a, v in zip(answer, values) if v is None)
            return None, f"expected whole numbers, got {describe(bad)} in your answer"
        return values, None
    return parse


# --------------------------------------------------------------------------- the student's own code

def _ours(module: Any) -> bool:
    return isinstance(module, str) and (module == "course_utils"
                                        or module.startswith("course_utils."))


def _from_package(obj: Any) -> str | None:
    """The dotted name of ``obj`` when the course_utils package defines it (a module, a
    function, a class, an instance of one of its classes such as a layer), else None."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__ if _ours(obj.__name__) else None
    if not callable(obj):
        return None  # a constant (a number, a tensor) is not code
    target = getattr(obj, "__func__", obj)  # a bound method: its function
    if inspect.isroutine(target):
        if _ours(getattr(target, "__module__", None)):
            return f"{target.__module__}.{target.__qualname__}"
        code = getattr(target, "__code__", None)
        if isinstance(code, types.CodeType) and _in_package(code.co_filename):
            return f"{target.__qualname__} (the code of course_utils/{_package_path(code)})"
        return None
    for c in (target if isinstance(target, type) else type(target)).__mro__:
        if _ours(c.__module__):
            return f"{c.__module__}.{c.__qualname__}"
    return None


def _package_path(code: types.CodeType) -> str:
    return Path(code.co_filename).resolve().relative_to(PACKAGE_DIR).as_posix()


def _in_package(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(PACKAGE_DIR)
    except (OSError, ValueError):
        return False


def _codes(code: types.CodeType):
    """``code`` and the code objects nested in it (inner functions, lambdas)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _global_names(code: types.CodeType):
    """``(name, imported)`` for each global name ``code`` reads and each module it imports
    (attribute names, as in ``torch.nn.LocalResponseNorm``, are not globals)."""
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            yield instruction.argval, False
        elif instruction.opname == "IMPORT_NAME":
            yield instruction.argval, True


def _bound_values(function: types.FunctionType):
    """The values a function carries: its closure's cells and its default arguments."""
    for cell in function.__closure__ or ():
        try:
            yield cell.cell_contents
        except ValueError:  # an empty cell
            continue
    yield from function.__defaults__ or ()
    yield from (function.__kwdefaults__ or {}).values()


def package_function(answer: Any, allowed: Any = None) -> str | None:
    """What in ``answer`` comes from the course_utils package, else None.

    ``answer`` is a function or callable. It comes from the package when the package
    defines it (its ``__module__``, its class, or its code object's file), or when its
    code uses a name of the package: a global, a closure variable or a default bound to a function,
    class or module of course_utils, or an ``import`` of course_utils. Functions of the
    same namespace that it calls (the student's helpers) are followed. ``allowed`` (the
    exercise's own reference, which :func:`solution` shows anyway) passes.
    """
    seen: set[int] = set()
    todo = [answer]
    while todo:
        obj = todo.pop()
        while isinstance(obj, functools.partial):
            todo.extend(a for a in (*obj.args, *obj.keywords.values()) if callable(a))
            obj = obj.func
        obj = inspect.unwrap(obj) if callable(obj) and hasattr(obj, "__wrapped__") else obj
        if id(obj) in seen or (allowed is not None and obj is allowed):
            continue
        seen.add(id(obj))
        name = _from_package(obj)
        if name:
            return name
        function = getattr(obj, "__func__", obj)
        if not isinstance(function, types.FunctionType):
            if callable(obj) and not isinstance(obj, type) and not inspect.isroutine(obj):
                # a callable instance of the student's own class: look at its methods
                todo.extend(v for v in vars(type(obj)).values()
                            if isinstance(v, types.FunctionType))
            continue
        namespace = function.__globals__
        for code in _codes(function.__code__):
            for used, imported in _global_names(code):
                if imported and (used == "course_utils" or used.startswith("course_utils.")):
                    return used  # an import of the package inside the function
                value = None if imported else namespace.get(used)
                if value is None:
                    continue
                name = _from_package(value)
                if name:
                    return name
                if isinstance(value, types.FunctionType) and value.__globals__ is namespace:
                    todo.append(value)  # the student's own helper: look inside it too
        for value in _bound_values(function):
            name = _from_package(value)
            if name:
                return name
            if callable(value):
                todo.append(value)
    return None


# --------------------------------------------------------------------------- check and solution

def _get(exercise_id: str) -> Exercise:
    key = str(exercise_id).strip()
    if key not in EXERCISES:
        raise ExerciseError(f"unknown exercise {exercise_id!r}; the exercises are "
                            f"{', '.join(EXERCISES)}")
    return EXERCISES[key]


def check(exercise_id: str, answer: Any) -> bool:
    """Check ``answer`` to an exercise and print one line saying what is right or wrong.

    Parameters
    ----------
    exercise_id : str
        ``"NN-k"``, as in the notebook's exercise cell (``EXERCISES`` lists them).
    answer : object
        The answer; ``None`` means not answered yet.

    Returns
    -------
    bool
        True for a right answer. A wrong or malformed answer (wrong type, a
        function that raises, a function of the course_utils package) prints what
        is wrong and returns False; the message never shows the reference answer.

    Raises
    ------
    ExerciseError
        When ``exercise_id`` is not an exercise.
    """
    exercise = _get(exercise_id)
    if answer is None:
        print(f"{exercise.id}: no answer yet: set `answer` above and run the cell again; "
              f'solution("{exercise.id}") shows one.')
        return False
    verdict = None
    if exercise.write_it and callable(answer):
        borrowed = package_function(answer, allowed=exercise.reference)
        if borrowed:
            verdict = (f"your answer uses {borrowed} from the course's package: write the "
                       "function yourself, with torch")
    if verdict is None:
        with torch.random.fork_rng(devices=[]):  # the notebook's random state stays as it was
            verdict = exercise.judge(answer, exercise.answer)
    if verdict is None:
        print(f"{exercise.id}: correct.")
        return True
    print(f"{exercise.id}: {_one_line(verdict)}")
    return False


def solution(exercise_id: str) -> Any:
    """Print the reference solution's code of an exercise and return its answer.

    Parameters
    ----------
    exercise_id : str
        ``"NN-k"``, as in the notebook's exercise cell.

    Returns
    -------
    object
        The reference answer (a number, a tuple, a list or a function), computed
        by the printed code.

    Raises
    ------
    ExerciseError
        When ``exercise_id`` is not an exercise.
    """
    exercise = _get(exercise_id)
    print(f"# {exercise.id}: {exercise.question}\n{exercise.source}", end="")
    return copy.deepcopy(exercise.answer())
