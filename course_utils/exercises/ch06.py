"""Notebook 06's exercises (grid search): a ``param_grid`` for GridSearchCV over the course's
skorch net, its cases, its usual mistakes and the reference solution."""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from .judge import Exercise, call_answer, describe, generator, register

__all__ = ["EXERCISES", "make_param_grid"]


# --------------------------------------------------------------------------- reference solution

def make_param_grid(lrs, dropouts, batch_size):
    # the net's own parameters by their names; the module's arguments behind module__;
    # every value a list, a fixed one too (a list of one)
    return {"lr": list(lrs), "module__dropout": list(dropouts), "batch_size": [batch_size]}


# --------------------------------------------------------------------------- the judge

#: The keys the question asks for.
KEYS = ("lr", "module__dropout", "batch_size")

#: Keys a student may write instead, and what is wrong with each.
WRONG_KEYS = {
    "dropout": ("'dropout' is the module's argument: skorch passes a parameter to the module "
                "only behind the module__ prefix (module__dropout)"),
    "optimizer__lr": ("skorch hands optimizer__lr to Adam too, but the question asks for the "
                      "net's own learning rate, lr (net.lr and best_params_ would not show "
                      "yours)"),
    "iterator_train__batch_size": ("iterator_train__batch_size reaches the training loader "
                                   "only; the net's own parameter is batch_size"),
    "module__lr": "the learning rate is the net's parameter, lr, without module__",
    "module__batch_size": "the batch size is the net's parameter, batch_size, without module__",
    "module": ("skorch reaches the module's arguments through keys module__NAME, not through "
               "a nested dict"),
}
for _key in ("batch", "bs", "batchsize", "module__batch", "n_batch"):
    WRONG_KEYS[_key] = "the net's parameter for the batch size is batch_size"
for _key in ("learning_rate", "lr_rate", "eta", "module__learning_rate"):
    WRONG_KEYS[_key] = "the net's parameter for the learning rate is lr"
for _key in ("module__p", "module__drop", "module__fc_dropout", "module__dropout_rate",
             "module__drop_rate"):
    WRONG_KEYS[_key] = "AlexNetSmall's argument is called dropout: module__dropout"


def _cases():
    """(call shown, args, the configurations expected): the notebook's question, one
    learning rate only, tuples and random values."""
    import torch

    g = generator(6)
    rand_lrs = [float(f"{10 ** (-4 + 3 * x):.3g}")
                for x in sorted(torch.rand(4, generator=g).tolist())]
    rand_drops = [round(0.1 + 0.6 * x, 2) for x in torch.rand(2, generator=g).tolist()]
    calls = [(([1e-4, 1e-3, 1e-2], [0.3, 0.5], 128), "make_param_grid([1e-4, 1e-3, 1e-2], "
              "[0.3, 0.5], 128)"),
             (([5e-4], [0.0, 0.2, 0.5], 64), "make_param_grid([5e-4], [0.0, 0.2, 0.5], 64)"),
             (((3e-4, 3e-3), (0.25,), 512), "make_param_grid((3e-4, 3e-3), (0.25,), 512)"),
             ((rand_lrs, rand_drops, 256), f"make_param_grid({rand_lrs}, {rand_drops}, 256)")]
    return [(shown, args, {frozenset({"lr": lr, "module__dropout": p, "batch_size": args[2]}
                                     .items())
                           for lr in args[0] for p in args[1]})
            for args, shown in calls]


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _key_problem(grid: Mapping) -> str | None:
    for key in grid:
        if not isinstance(key, str):
            return f"the key {key!r} is {describe(key)}: the keys are parameter names (strings)"
        if key in WRONG_KEYS:
            return f"the key {key!r}: {WRONG_KEYS[key]}"
        if key not in KEYS:
            return (f"the key {key!r} is not a parameter the question searches or fixes: "
                    "an extra axis (the grid searches the learning rate and the dropout, "
                    "with the batch size fixed)")
    for key in KEYS:
        if key not in grid:
            fixed = (": fix it with a list of one value, else GridSearchCV keeps the net's "
                     "default" if key == "batch_size" else "")
            return f"your grid has no {key!r}{fixed}"
    return None


def _value_problem(grid: Mapping) -> str | None:
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or \
                isinstance(values, Mapping):
            return (f"{key!r} maps to {describe(values)}: GridSearchCV wants a list of values "
                    "for every key, a fixed value too (a list of one)")
        bad = [v for v in values if not _is_number(v)]
        if bad:
            what = describe(bad[0])
            return f"{key!r} holds {what}" + ("" if isinstance(bad[0], str) else
                                               ": the values are finite numbers")
    return None


def _judge(answer, reference):
    if isinstance(answer, Mapping):
        return ("expected a function make_param_grid(lrs, dropouts, batch_size) that builds "
                "the grid from its arguments, got a dict")
    if not callable(answer):
        return ("expected a function make_param_grid(lrs, dropouts, batch_size), got "
                f"{describe(answer)}")
    from sklearn.model_selection import ParameterGrid

    for shown, args, expected in _cases():
        args = tuple(list(a) if isinstance(a, list) else a for a in args)
        out, error = call_answer(answer, args, {}, shown)
        if error:
            return error
        grids = out if isinstance(out, (list, tuple)) else [out]
        if not grids or not all(isinstance(g, Mapping) for g in grids):
            return (f"{shown} returned {describe(out)}: a param_grid is a dict (or a list of "
                    "dicts) from parameter names to lists of values")
        for grid in grids:
            problem = _key_problem(grid) or _value_problem(grid)
            if problem:
                return f"{shown}: {problem}"
        try:
            points = list(ParameterGrid(out))
        except (TypeError, ValueError) as exc:
            return f"{shown}: scikit-learn's ParameterGrid refuses it: {exc}"
        got = [frozenset(p.items()) for p in points]
        if len(got) != len(set(got)):
            return (f"{shown} repeats configurations ({len(got)} points, {len(set(got))} "
                    "different): each value once")
        if set(got) != expected:
            size = ("other configurations than the question's" if len(got) == len(expected)
                    else f"{len(got)} configurations, expected {len(expected)}")
            return f"{shown} expands to {size}: {_which_differs(points, args)}"
    return None


def _which_differs(points, args) -> str:
    lrs, drops, batch = args
    seen = {k: {p[k] for p in points} for k in KEYS}
    if seen["lr"] == set(drops) or seen["module__dropout"] == set(lrs):
        return "lr takes the learning rates, module__dropout the dropout rates"
    if seen["batch_size"] != {batch}:
        return "batch_size is fixed at the batch_size argument"
    if seen["lr"] != set(lrs):
        return "lr should take every value of lrs, and only those"
    if seen["module__dropout"] != set(drops):
        return "module__dropout should take every value of dropouts, and only those"
    return "every learning rate goes with every dropout rate"


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "06-1", "a function make_param_grid(lrs, dropouts, batch_size) returning the "
        "param_grid for GridSearchCV over the course's skorch net that searches the learning "
        "rates lrs and AlexNetSmall's dropout rates dropouts, with the batch size fixed at "
        "batch_size", "a function make_param_grid(lrs, dropouts, batch_size) returning a dict",
        make_param_grid, _judge, write_it=True),
)
