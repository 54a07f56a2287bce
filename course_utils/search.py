"""The instructors' grid search: resumable, parallel, Dask for many GPUs, successive halving.

    python -m course_utils.search grids/smoke.yaml --out build/search/smoke
    python -m course_utils.search grids/reference.yaml --out runs/ref --jobs 2
    python -m course_utils.search grids/reference.yaml --out runs/ref --dask tcp://host:8786
    python -m course_utils.search grids/reference.yaml --out runs/ref-halving --halving
    python -m course_utils.search --report --out runs/ref

A grid file (YAML) names the model, the data, ``max_epochs`` and the parameters to
search; any skorch parameter may be searched (``lr``, ``batch_size``,
``module__dropout``, ``optimizer__momentum``, ``callbacks__NAME__PARAM``, ...)::

    name: smoke
    model: AlexNetSmall            # a class in course_utils.models, or "package.module:Class"
    data: {train_size: 800, valid_size: 400}   # or "profile": the sizes of $COURSE_PROFILE
    max_epochs: 2
    seed: 0                        # the same seed for every configuration
    fixed: {patience: null}        # held fixed: make_classifier keywords or skorch parameters
    params:                        # the grid: every combination is one configuration
      lr: [1.0e-3, 3.0e-4]
      batch_size: [128, 256]
    report: {x: batch_size, y: lr, panel: module__dropout}   # heatmap axes (optional)
    halving: {factor: 3, min_epochs: 1}                      # for --halving (optional)

Never losing work: each finished configuration is appended to ``DIR/results.jsonl`` as
one JSON line, flushed and fsynced. Running the same command again skips the
finished configurations, reruns the one that was interrupted and drops a half-written
last line (with a warning). A configuration that raises (CUDA out of memory at batch
2048, say) is recorded as ``failed`` with its error and the search goes on, like
sklearn's ``error_score``. ``DIR/grid.json`` holds the grid's fingerprint, so a folder
is never mixed up with another grid's results.

Nothing here imports Dask unless ``--dask`` is given.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import gc
import hashlib
import importlib
import inspect
import itertools
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

from .config import PROFILES, CourseError, Profile, get_profile

REPO_ROOT = Path(__file__).resolve().parent.parent
GRID_DIR = REPO_ROOT / "grids"
RESULTS_FILE = "results.jsonl"
GRID_FILE = "grid.json"
LOCK_FILE = ".lock"
CHECKPOINT_SUBDIR = "checkpoints"
REPORT_FILES = ("summary.csv", "best.json", "heatmap.png")

TOP_KEYS = ("name", "description", "model", "data", "max_epochs", "seed", "fixed", "params",
            "report", "halving")
DATA_KEYS = ("profile", "train_size", "valid_size", "seed")
# make_classifier keywords a grid may set (the rest of its keywords are the tool's business).
FACTORY_KEYS = ("lr", "batch_size", "max_epochs", "optimizer", "seed", "cosine", "patience",
                "train_acc")
# skorch parameters a grid may not set: the tool decides them.
RESERVED = {"module", "criterion", "callbacks", "train_split", "device", "verbose", "dataset",
            "iterator_train", "iterator_valid", "classes", "checkpoint", "checkpoint_root",
            "progress", "valid", "warm_start"}
INTEGER_PARAMS = {"batch_size", "max_epochs", "patience", "seed"}
POSITIVE_PARAMS = {"lr", "batch_size", "max_epochs"}
OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam", "Adamax")

# Notebook 06 in the smoke profile: 2 configurations, 1 epoch, a tiny subset.
SMOKE_NOTEBOOK = {"configurations": 2, "max_epochs": 1, "train_size": 384, "valid_size": 200,
                  "params": {"batch_size": [64]}}
# Test images for notebook 06's final evaluation (None: all 10,000).
NOTEBOOK_TEST_SIZE = {"smoke": 1_000, "quick": 2_000, "full": None}
# Notebook 06's asserts: best validation accuracy of the search, and test accuracy of the
# best configuration retrained (measured on 2 shared CPU cores, with margin; full: the
# reference course reached 0.916 test accuracy).
NOTEBOOK_BOUNDS = {
    "smoke": {"valid": 0.13, "test": 0.13},
    "quick": {"valid": 0.25, "test": 0.25},
    "full": {"valid": 0.90, "test": 0.90},
}


# --------------------------------------------------------------------------- errors

class SearchError(CourseError):
    """Base class of the search tool's user-facing errors."""


class GridError(SearchError, ValueError):
    """The grid file is wrong; nothing has been trained."""


class GridFileError(GridError):
    """The grid file is missing or is not valid YAML."""


class UnknownParameterError(GridError):
    """The grid names a parameter the model, optimizer or callbacks do not have."""


class EmptyGridError(GridError):
    """The grid has no configuration to try."""


class ParameterTypeError(GridError, TypeError):
    """A value in the grid has the wrong type (or an impossible value)."""


class GridMismatchError(SearchError):
    """The output folder holds the results of a different grid."""


class ResultsError(SearchError):
    """results.jsonl is missing or damaged beyond the last line."""


class SearchBusyError(SearchError):
    """Another search is writing into the same folder."""


class DaskError(SearchError):
    """Dask is not installed, or the scheduler cannot be reached."""


class TornLineWarning(UserWarning):
    """The last line of results.jsonl was half written (a kill) and was dropped."""


# --------------------------------------------------------------------------- YAML

class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


# --------------------------------------------------------------------------- the grid

@dataclass
class GridSpec:
    """A validated grid: what to train and which parameters to try."""

    name: str
    model: str
    train_size: int | None
    valid_size: int
    data_seed: int
    max_epochs: int
    seed: int
    fixed: dict[str, Any] = field(default_factory=dict)
    params: dict[str, list] = field(default_factory=dict)
    report: dict[str, str | None] = field(default_factory=dict)
    halving: dict[str, int] = field(default_factory=lambda: {"factor": 3, "min_epochs": 1})
    source: str = "<dict>"

    def configs(self) -> list[dict[str, Any]]:
        """Every combination of the parameter values, in grid order."""
        names = list(self.params)
        return [dict(zip(names, values))
                for values in itertools.product(*(self.params[n] for n in names))]

    def __len__(self) -> int:
        return math.prod(len(v) for v in self.params.values())

    def identity(self) -> dict[str, Any]:
        """What makes two grids the same search (the fingerprint's input)."""
        return {"model": self.model, "train_size": self.train_size,
                "valid_size": self.valid_size, "data_seed": self.data_seed,
                "max_epochs": self.max_epochs, "seed": self.seed,
                "fixed": self.fixed, "params": self.params}

    def fingerprint(self) -> str:
        return _digest(self.identity(), 16)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_(self, **changes) -> "GridSpec":
        """A copy with some fields changed and validated again."""
        raw = self.to_dict()
        raw.update(changes)
        return _validate(_spec_to_raw(raw), source=self.source)

    def reduced(self, configurations: int, max_epochs: int, train_size: int,
                valid_size: int, params: dict | None = None) -> "GridSpec":
        """A smaller grid of the same kind: the first parameter keeps ``configurations``
        values, the others their first value, then ``params`` replaces some lists
        (notebook 06's smoke run)."""
        reduced, left = {}, configurations
        for name, values in self.params.items():
            take = max(1, min(left, len(values)))
            reduced[name] = values[:take]
            left = max(1, left // take)
        params = {**reduced, **(params or {})}
        return self.with_(params=params, max_epochs=max_epochs, train_size=train_size,
                          valid_size=valid_size, name=f"{self.name}-reduced")

    def describe(self) -> str:
        sizes = f"train {self.train_size or 'all'}, valid {self.valid_size}"
        grid = " x ".join(f"{k} {v}" for k, v in self.params.items())
        return (f"grid {self.name!r}: {len(self)} configurations of {self.model} "
                f"({grid}), max_epochs {self.max_epochs}, {sizes}, seed {self.seed}")


def _spec_to_raw(d: dict) -> dict:
    return {"name": d["name"], "model": d["model"],
            "data": {"train_size": d["train_size"], "valid_size": d["valid_size"],
                     "seed": d["data_seed"]},
            "max_epochs": d["max_epochs"], "seed": d["seed"], "fixed": d["fixed"],
            "params": d["params"], "report": d["report"], "halving": d["halving"]}


def _digest(obj, n=10) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def config_id(params: dict) -> str:
    """A short stable id for one configuration."""
    return _digest(params, 10)


def run_key(params: dict, epochs: int) -> str:
    return f"{config_id(params)}@{epochs}"


def grid_path(name_or_path: str | os.PathLike) -> Path:
    """``smoke`` -> grids/smoke.yaml; a path is returned as it is."""
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"} or p.exists():
        return p
    return GRID_DIR / f"{p}.yaml"


def load_grid(grid: str | os.PathLike | dict, profile: Profile | str | None = None) -> GridSpec:
    """Read and validate a grid (a YAML path, a name under grids/, or a dict).

    Every check happens here, before anything trains: unknown parameters, an empty
    grid, malformed YAML and values of the wrong type each raise a :class:`GridError`
    with one clear line.
    """
    if isinstance(grid, dict):
        raw, source = grid, "<dict>"
    else:
        path = grid_path(grid)
        source = str(path)
        if not path.is_file():
            raise GridFileError(f"grid file {path} not found: give a YAML file or one of "
                                f"{', '.join(sorted(p.stem for p in GRID_DIR.glob('*.yaml')))}")
        try:
            raw = yaml.load(path.read_text(), Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise GridFileError(f"{path} is not valid YAML{where}: {problem}") from None
    return _validate(raw, source=source, profile=profile)


def _fail(cls, source, msg):
    raise cls(f"{source}: {msg}")


def _validate(raw: Any, source: str, profile: Profile | str | None = None) -> GridSpec:
    if raw is None:
        _fail(EmptyGridError, source, "the grid file is empty: it needs at least 'params'")
    if not isinstance(raw, dict):
        _fail(GridFileError, source, f"the grid must be a mapping of keys ({', '.join(TOP_KEYS)}), "
              f"not a {type(raw).__name__}")
    unknown = [k for k in raw if k not in TOP_KEYS]
    if unknown:
        _fail(GridError, source, f"unknown key {unknown[0]!r}{_suggest(unknown[0], TOP_KEYS)}: "
              f"a grid file has {', '.join(TOP_KEYS)}")
    name = str(raw.get("name") or (Path(source).stem if source != "<dict>" else "grid"))

    # model
    model = raw.get("model", "AlexNetSmall")
    if not isinstance(model, str):
        _fail(ParameterTypeError, source, f"model must be a class name such as AlexNetSmall, "
              f"got {model!r}")
    module_cls = _resolve_model(model, source)

    # data
    data = raw.get("data", "profile")
    if data is None or data == "profile":
        data = {}
    if not isinstance(data, dict):
        _fail(ParameterTypeError, source, f"data must be 'profile' or a mapping with "
              f"{', '.join(DATA_KEYS)}, got {data!r}")
    bad = [k for k in data if k not in DATA_KEYS]
    if bad:
        _fail(GridError, source, f"unknown data key {bad[0]!r}: use {', '.join(DATA_KEYS)}")
    base = profile if isinstance(profile, Profile) else get_profile(data.get("profile") or profile)
    train_size = data.get("train_size", base.train_size)
    valid_size = data.get("valid_size", base.valid_size)
    data_seed = data.get("seed", 0)
    for key, value, optional in (("data.train_size", train_size, True),
                                 ("data.valid_size", valid_size, False),
                                 ("data.seed", data_seed, False)):
        if value is None and optional:
            continue
        if not _is_int(value) or (value <= 0 and key != "data.seed"):
            _fail(ParameterTypeError, source, f"{key} must be a positive integer, got {value!r}")

    max_epochs = raw.get("max_epochs", base.epochs)
    if not _is_int(max_epochs) or max_epochs < 1:
        _fail(ParameterTypeError, source, f"max_epochs must be a positive integer, got {max_epochs!r}")
    seed = raw.get("seed", 0)
    if not _is_int(seed):
        _fail(ParameterTypeError, source, f"seed must be an integer, got {seed!r}")

    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, dict):
        _fail(ParameterTypeError, source, f"fixed must be a mapping of parameter: value, got {fixed!r}")
    params = raw.get("params")
    if params is None or params == {}:
        _fail(EmptyGridError, source, "the grid is empty: add 'params' with at least one "
              "parameter and a list of values, e.g. params: {lr: [1.0e-3, 1.0e-4]}")
    if not isinstance(params, dict):
        _fail(ParameterTypeError, source, f"params must be a mapping of parameter: [values], "
              f"got {type(params).__name__}")
    grid: dict[str, list] = {}
    for pname, values in params.items():
        if not isinstance(values, list):
            values = [values]
        if not values:
            _fail(EmptyGridError, source, f"parameter {pname!r} has an empty list of values, so "
                  "the grid has no configuration: give it at least one value")
        grid[str(pname)] = [_plain(v) for v in values]
    fixed = {str(k): _plain(v) for k, v in fixed.items()}
    both = set(fixed) & set(grid)
    if both:
        _fail(GridError, source, f"{sorted(both)[0]!r} is both fixed and searched: keep one")

    # names and types, against the real net
    ctx = _Context(module_cls, fixed, grid)
    for where, mapping in (("fixed", {k: [v] for k, v in fixed.items()}), ("params", grid)):
        for pname, values in mapping.items():
            default = ctx.check_name(pname, where, source)
            for v in values:
                _check_value(pname, v, default, where, source)

    report = raw.get("report") or {}
    if not isinstance(report, dict):
        _fail(ParameterTypeError, source, "report must be a mapping with x, y and panel")
    for k, v in report.items():
        if k not in ("x", "y", "panel"):
            _fail(GridError, source, f"unknown report key {k!r}: use x, y and panel")
        if v is not None and v not in grid:
            _fail(UnknownParameterError, source, f"report.{k} is {v!r}, which is not a searched "
                  f"parameter ({', '.join(grid)})")
    halving = {"factor": 3, "min_epochs": 1, **(raw.get("halving") or {})}
    for k, v in halving.items():
        if k not in ("factor", "min_epochs"):
            _fail(GridError, source, f"unknown halving key {k!r}: use factor and min_epochs")
        if not _is_int(v) or v < (2 if k == "factor" else 1):
            _fail(ParameterTypeError, source, f"halving.{k} must be an integer >= "
                  f"{2 if k == 'factor' else 1}, got {v!r}")
    return GridSpec(name=name, model=model, train_size=train_size, valid_size=valid_size,
                    data_seed=data_seed, max_epochs=max_epochs, seed=seed, fixed=fixed,
                    params=grid, report=dict(report), halving=halving, source=source)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _plain(v):
    """YAML lists become lists of plain values (tuples are made when the net is built)."""
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _suggest(word, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _resolve_model(model: str, source: str = "<grid>"):
    from . import models

    if ":" in model:
        mod, _, attr = model.partition(":")
        try:
            return getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            _fail(GridError, source, f"cannot import model {model!r}: {exc}")
    cls = getattr(models, model, None)
    if not (inspect.isclass(cls) and issubclass(cls, models.nn.Module)):
        names = [n for n, c in vars(models).items()
                 if inspect.isclass(c) and issubclass(c, models.AlexNet)]
        _fail(UnknownParameterError, source, f"unknown model {model!r}{_suggest(model, names)}: "
              f"use one of {', '.join(names)} or 'package.module:Class'")
    return cls


def _resolve_optimizer(name):
    import torch

    if inspect.isclass(name):
        return name
    cls = getattr(torch.optim, str(name), None)
    if not inspect.isclass(cls):
        raise KeyError(name)
    return cls


def _signature_defaults(cls) -> dict[str, Any]:
    """Keyword parameters of ``cls.__init__`` (following ``**kwargs`` up the MRO)."""
    out: dict[str, Any] = {}
    for klass in getattr(cls, "__mro__", (cls,)):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        sig = inspect.signature(init)
        more = False
        for p in sig.parameters.values():
            if p.name in ("self", "params"):
                continue
            if p.kind is p.VAR_KEYWORD:
                more = True
            elif p.kind is not p.VAR_POSITIONAL:
                out.setdefault(p.name, None if p.default is p.empty else p.default)
        if not more:
            break
    return out


class _Context:
    """What the net built from this grid accepts, found from the real classes."""

    def __init__(self, module_cls, fixed, grid):
        import torch

        from .training import make_classifier

        self.module_cls = module_cls
        self.module_params = _signature_defaults(module_cls)
        opt_names = grid.get("optimizer") or [fixed.get("optimizer", "Adam")]
        self.optimizers = []
        for o in opt_names:
            try:
                self.optimizers.append(_resolve_optimizer(o))
            except KeyError:
                self.optimizers.append(None)  # reported by check_value
        dummy = (torch.zeros(1, 1, 28, 28, dtype=torch.uint8), torch.zeros(1, dtype=torch.long))
        template = make_classifier(module_cls, valid=dummy, max_epochs=1, progress=False,
                                   verbose=0, device="cpu")
        self.callbacks = dict(template.callbacks)
        self.top = {k: v for k, v in template.get_params(deep=False).items()
                    if k not in RESERVED and "__" not in k and not k.startswith("_")}
        factory = inspect.signature(make_classifier).parameters
        for k in FACTORY_KEYS:
            default = factory[k].default
            self.top.setdefault(k, None if default is inspect.Parameter.empty else default)
        self.top["optimizer"] = "Adam"
        self.criterion = _signature_defaults(torch.nn.CrossEntropyLoss)
        self.loader = _signature_defaults(torch.utils.data.DataLoader)

    def check_name(self, name: str, where: str, source: str):
        """The default value of ``name`` (for the type check); raise if unknown."""
        prefix, _, rest = name.partition("__")
        if not rest:
            if name in self.top:
                return self.top[name]
            _fail(UnknownParameterError, source,
                  f"unknown parameter {name!r} in {where}{_suggest(name, self.top)}: search "
                  "skorch parameters such as lr, batch_size, module__dropout, "
                  "optimizer__momentum or callbacks__NAME__PARAM")
        if prefix == "module":
            return self._sub(name, rest, self.module_params, f"model {self.module_cls.__name__}",
                             where, source)
        if prefix == "optimizer":
            default = None
            for opt in self.optimizers:
                if opt is None:
                    continue
                default = self._sub(name, rest, _signature_defaults(opt),
                                    f"optimizer {opt.__name__}", where, source)
            return default
        if prefix == "criterion":
            return self._sub(name, rest, self.criterion, "criterion CrossEntropyLoss", where,
                             source)
        if prefix in ("iterator_train", "iterator_valid"):
            return self._sub(name, rest, self.loader, "DataLoader", where, source)
        if prefix == "callbacks":
            cb_name, _, param = rest.partition("__")
            if cb_name not in self.callbacks:
                _fail(UnknownParameterError, source,
                      f"unknown callback {cb_name!r} in {name!r}{_suggest(cb_name, self.callbacks)}: "
                      f"the course's callbacks are {', '.join(self.callbacks)}")
            if not param:
                _fail(UnknownParameterError, source, f"{name!r} names no parameter: use "
                      f"callbacks__{cb_name}__PARAM")
            cb_params = self.callbacks[cb_name].get_params()
            return self._sub(name, param, cb_params, f"callback {cb_name}", where, source)
        _fail(UnknownParameterError, source,
              f"unknown parameter {name!r} in {where}: prefixes are module__, optimizer__, "
              "criterion__, callbacks__, iterator_train__ and iterator_valid__")

    @staticmethod
    def _sub(full, name, accepted, owner, where, source):
        if name in accepted:
            return accepted[name]
        _fail(UnknownParameterError, source,
              f"unknown parameter {full!r} in {where}: {owner} has no parameter {name!r}"
              f"{_suggest(name, accepted)}")


def _check_value(name: str, value, default, where: str, source: str) -> None:
    def bad(expected):
        _fail(ParameterTypeError, source, f"{where}: {name} = {value!r} "
              f"({type(value).__name__}) has the wrong type: expected {expected}")

    leaf = name.rsplit("__", 1)[-1]
    if name == "optimizer":
        try:
            _resolve_optimizer(value)
        except KeyError:
            _fail(ParameterTypeError, source, f"{where}: optimizer {value!r} is not in torch.optim: "
                  f"use e.g. {', '.join(OPTIMIZERS)}")
        return
    if name in INTEGER_PARAMS or leaf in INTEGER_PARAMS:
        if value is None and name == "patience":
            return
        if not _is_int(value):
            bad("an integer")
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            bad("true or false")
    elif _is_number(default):
        if not _is_number(value):
            bad("a number (write 1.0e-3 or 1e-3, without quotes)")
    elif isinstance(default, str):
        if not isinstance(value, str):
            bad("a string")
    elif isinstance(value, dict):
        bad("a number, a string, true/false, null or a list")
    if name in POSITIVE_PARAMS and not value > 0:
        _fail(ParameterTypeError, source, f"{where}: {name} must be positive, got {value!r}")


# --------------------------------------------------------------------------- one configuration

_SPLITS_CACHE: dict = {}


def grid_splits(spec: GridSpec, test_size: int | None = -1):
    """The train/validation (and test) splits the grid trains on (cached per process).

    ``test_size=-1`` takes the current profile's test size.
    """
    from .data import course_splits

    if test_size == -1:
        test_size = get_profile().test_size
    key = (spec.train_size, spec.valid_size, spec.data_seed, test_size)
    if key not in _SPLITS_CACHE:
        prof = PROFILES["smoke"].with_(name=f"grid:{spec.name}", train_size=spec.train_size,
                                       valid_size=spec.valid_size, test_size=test_size)
        _SPLITS_CACHE.clear()
        _SPLITS_CACHE[key] = course_splits(prof, seed=spec.data_seed)
    return _SPLITS_CACHE[key]


def _arg(name, value):
    if name == "optimizer":
        return _resolve_optimizer(value)
    if isinstance(value, list):
        return tuple(_arg(name, v) for v in value)
    return value


def build_net(spec: GridSpec, params: dict, *, epochs: int | None = None, valid=None,
              checkpoint_root=None, device=None, verbose: int = 0, progress: bool = False):
    """The skorch net for one configuration, made by :func:`make_classifier`.

    ``fixed`` and ``params`` go in as make_classifier keywords or skorch parameters;
    ``callbacks__...`` are set with ``set_params`` afterwards.
    """
    from .training import make_classifier

    settings = {**spec.fixed, **params}
    kwargs = {"max_epochs": epochs or spec.max_epochs, "seed": spec.seed}
    later = {}
    for k, v in settings.items():
        if k.startswith("callbacks__"):
            later[k] = _arg(k, v)
        else:
            kwargs[k] = _arg(k, v)
    if epochs is not None:
        kwargs["max_epochs"] = epochs
    net = make_classifier(_resolve_model(spec.model), valid=valid, progress=progress,
                          verbose=verbose, checkpoint_root=checkpoint_root, device=device,
                          **kwargs)
    if later:
        net.set_params(**later)
    return net


def library_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import skorch
    import torch

    from . import __version__

    return {"python": platform.python_version(), "torch": torch.__version__,
            "skorch": skorch.__version__, "scikit-learn": sklearn.__version__,
            "numpy": numpy.__version__, "course_utils": __version__}


def _device_name(device) -> str:
    import torch

    name = str(device)
    if name.startswith("cuda") and torch.cuda.is_available():
        idx = torch.device(name).index or 0
        name = f"{name} ({torch.cuda.get_device_name(idx)})"
    return name


def run_config(task: dict) -> dict:
    """Train one configuration and return its result record. Never raises for a
    training error: the record says ``status: failed`` and holds the error."""
    import torch

    from .config import get_device
    from .training import best_epoch, train_seconds

    start = time.perf_counter()
    spec: GridSpec = task["spec"]
    params, epochs = task["params"], task["epochs"]
    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    root = task.get("checkpoint_root")
    if root:
        Path(root).mkdir(parents=True, exist_ok=True)
    ckpt = tempfile.mkdtemp(prefix=f"{config_id(params)}-e{epochs}-", dir=root)
    record = {"key": run_key(params, epochs), "id": config_id(params), "params": params,
              "epochs": epochs, "rung": task.get("rung"), "seed": spec.seed,
              "device": None, "status": "failed", "valid_acc": None, "best_epoch": None,
              "epochs_run": None, "train_acc": None, "train_seconds": None, "error": None}
    net = None
    try:
        record["device"] = _device_name(get_device())
        splits = grid_splits(spec)
        net = build_net(spec, params, epochs=epochs, valid=(splits.X_valid, splits.y_valid),
                        checkpoint_root=ckpt)
        record["device"] = _device_name(net.device)
        net.fit(splits.X_train, splits.y_train)
        epoch, acc = best_epoch(net)
        row = [h for h in net.history if h["epoch"] == epoch][0]
        record.update(status="ok", valid_acc=acc, best_epoch=epoch,
                      epochs_run=len(net.history), train_acc=row.get("train_acc"),
                      train_seconds=round(train_seconds(net), 3))
    except Exception as exc:  # noqa: BLE001 -- sklearn's error_score: record and go on
        message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        record.update(status="failed", error=message[:500])
    finally:
        del net
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if task.get("delete_checkpoint", True):
            shutil.rmtree(ckpt, ignore_errors=True)
    # results depend (slightly) on the thread count: float sums run in another order
    record.update(threads=torch.get_num_threads(),
                  wall_seconds=round(time.perf_counter() - start, 3), host=platform.node(), pid=os.getpid(), versions=library_versions(),
                  finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    record["_checkpoint"] = ckpt
    return record


# --------------------------------------------------------------------------- the folder

def read_results(out: str | os.PathLike, repair: bool = False) -> list[dict]:
    """The records in ``out/results.jsonl``. A torn last line (a kill mid-write) is
    dropped with a :class:`TornLineWarning`; ``repair=True`` also cuts it from the file."""
    path = Path(out) / RESULTS_FILE
    if not path.exists():
        return []
    data = path.read_bytes()
    records, good_end, pos = [], 0, 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        end = pos + len(line) + (0 if last else 1)
        if line.strip():
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or "key" not in rec:
                    raise ValueError("not a result record")
                if last:  # complete JSON but no newline: written, not terminated
                    raise ValueError("no newline")
                records.append(rec)
                good_end = end
            except ValueError:
                if any(rest.strip() for rest in lines[i + 1:]):
                    raise ResultsError(f"{path}, line {i + 1}, is damaged and is not the last "
                                       "line: fix or delete that line, then run again") from None
                warnings.warn(f"{path}: the last line was half written (the search was killed "
                              f"while writing it) and was dropped; that configuration runs again",
                              TornLineWarning, stacklevel=2)
                if repair:
                    with open(path, "r+b") as fh:
                        fh.truncate(good_end)
                        fh.flush()
                        os.fsync(fh.fileno())
                break
        else:
            good_end = end
        pos = end
    return records


def append_result(out: str | os.PathLike, record: dict) -> None:
    """Append one record as one line, then flush and fsync: a finished configuration
    survives a kill or a power cut."""
    line = (json.dumps({k: v for k, v in record.items() if not k.startswith("_")})
            + "\n").encode()
    fd = os.open(Path(out) / RESULTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


class _SearchDir:
    """The output folder: fingerprint check, lock, results."""

    def __init__(self, out: Path, spec: GridSpec | None):
        self.out, self.spec, self._lock = Path(out), spec, None

    def check(self) -> None:
        gfile, rfile = self.out / GRID_FILE, self.out / RESULTS_FILE
        if gfile.exists():
            try:
                stored = json.loads(gfile.read_text())
                theirs = stored["fingerprint"]
            except (ValueError, KeyError):
                raise GridMismatchError(f"{gfile} is damaged: use another --out folder") from None
            if self.spec is not None and theirs != self.spec.fingerprint():
                raise GridMismatchError(
                    f"{self.out} holds results of a different grid ({stored.get('name')!r}, "
                    f"fingerprint {theirs}; this grid is {self.spec.fingerprint()}): use "
                    "another --out folder, or delete that one to start over")
        elif rfile.exists() and rfile.stat().st_size:
            raise GridMismatchError(f"{self.out} has {RESULTS_FILE} but no {GRID_FILE}, so its "
                                    "grid is unknown: use another --out folder")

    def __enter__(self):
        self.check()
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # Windows: no lock
            fcntl = None
        if fcntl is not None:
            self._lock = open(self.out / LOCK_FILE, "w")
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lock.close()
                self._lock = None
                raise SearchBusyError(f"another search is writing into {self.out}: wait for it, "
                                      "or use another --out folder") from None
        gfile = self.out / GRID_FILE
        if not gfile.exists():
            tmp = gfile.with_suffix(".tmp")
            tmp.write_text(json.dumps({"fingerprint": self.spec.fingerprint(),
                                       "name": self.spec.name, "source": self.spec.source,
                                       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                       "spec": self.spec.to_dict()}, indent=2, default=str))
            os.replace(tmp, gfile)
        # checkpoints of runs that were killed: they are rerun from scratch
        shutil.rmtree(self.out / CHECKPOINT_SUBDIR, ignore_errors=True)
        return self

    def __exit__(self, *exc):
        if self._lock is not None:
            self._lock.close()


# --------------------------------------------------------------------------- executors

def _execute(tasks: list[dict], jobs: int, dask) -> Iterator[dict]:
    if not tasks:
        return
    if dask is not None:
        yield from _execute_dask(tasks, dask)
    elif jobs == 1:
        for task in tasks:
            yield run_config(task)
    else:
        from joblib import Parallel, delayed

        threads = max(1, (os.cpu_count() or 1) // jobs)
        for task in tasks:
            task["threads"] = threads
        yield from Parallel(n_jobs=jobs, return_as="generator_unordered")(
            delayed(run_config)(t) for t in tasks)


def connect_dask(address):
    """A dask.distributed Client for ``address`` (or the Client given)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise DaskError("--dask needs dask.distributed: pip install 'alexnet-course[dask]' "
                        "(or pip install dask distributed)") from None
    if isinstance(address, Client):
        return address, False
    try:
        return Client(address, timeout="20s"), True
    except (OSError, TimeoutError) as exc:
        raise DaskError(f"cannot reach the Dask scheduler at {address}: {exc}. Start one with "
                        "`dask scheduler` and one `dask worker` per GPU") from None


def _execute_dask(tasks, address):
    from dask.distributed import as_completed

    client, own = connect_dask(address)
    try:
        for task in tasks:  # the worker's own temp folder, deleted by the worker
            task["checkpoint_root"], task["delete_checkpoint"] = None, True
        futures = client.map(run_config, tasks, pure=False)
        by_future = dict(zip(futures, tasks))
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 -- a worker died: record and go on
                task = by_future[fut]
                yield {"key": run_key(task["params"], task["epochs"]),
                       "id": config_id(task["params"]), "params": task["params"],
                       "epochs": task["epochs"], "rung": task.get("rung"),
                       "seed": task["spec"].seed, "device": None, "status": "failed",
                       "valid_acc": None, "best_epoch": None, "epochs_run": None,
                       "train_acc": None, "train_seconds": None,
                       "error": f"{type(exc).__name__}: {exc}"[:500],
                       "versions": library_versions()}
    finally:
        if own:
            client.close()


# --------------------------------------------------------------------------- the search

def _fmt_params(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def _summary_line(rec: dict, done: int, total: int) -> str:
    head = f"[{done}/{total}] {_fmt_params(rec['params'])} ({rec['epochs']} ep)"
    if rec["status"] == "ok":
        return (f"{head}: valid_acc {rec['valid_acc']:.4f} at epoch {rec['best_epoch']}, "
                f"{rec['train_seconds']:.1f} s train on {rec['device']}")
    return f"{head}: FAILED {rec['error']}"


def _run_batch(out: Path, spec: GridSpec, configs: list[dict], epochs: int, *, rung, jobs,
               dask, progress, retry_failed, known: dict, label: str, log) -> dict[str, dict]:
    """Run ``configs`` at ``epochs`` (skipping finished ones); their records by key."""
    from tqdm import tqdm  # plain text: no widget (and no ipywidgets warning) in Jupyter

    wanted = {run_key(c, epochs): c for c in configs}
    done = {k: known[k] for k in wanted if k in known
            and (known[k]["status"] == "ok" or not retry_failed)}
    todo = [c for k, c in wanted.items() if k not in done]
    if done:
        log(f"{label}: {len(done)} of {len(wanted)} configurations already in "
            f"{out / RESULTS_FILE}, skipped; {len(todo)} to run")
    tasks = [{"spec": spec, "params": c, "epochs": epochs, "rung": rung,
              "checkpoint_root": str(out / CHECKPOINT_SUBDIR), "delete_checkpoint": False}
             for c in todo]
    finished = len(done)
    bar = tqdm(total=len(wanted), initial=finished, desc=label, unit="config",
               disable=not progress, file=sys.stderr, dynamic_ncols=True, leave=True)
    try:
        for rec in _execute(tasks, jobs, dask):
            append_result(out, rec)
            known[rec["key"]] = done[rec["key"]] = rec
            ckpt = rec.get("_checkpoint")
            if ckpt and dask is None:  # recorded: its checkpoint is no longer needed
                shutil.rmtree(ckpt, ignore_errors=True)
            finished += 1
            line = _summary_line(rec, finished, len(wanted))
            if progress:
                bar.write(line, file=sys.stdout)
            else:
                log(line)
            bar.update(1)
    finally:
        bar.close()
    return {k: done[k] for k in wanted}


def halving_schedule(max_epochs: int, factor: int = 3, min_epochs: int = 1) -> list[int]:
    """Epochs per rung, ending at ``max_epochs``: 20, factor 3 -> [2, 6, 20]."""
    rungs = [max_epochs]
    while rungs[-1] // factor >= min_epochs:
        rungs.append(rungs[-1] // factor)
    return rungs[::-1]


def run_search(grid, out: str | os.PathLike, *, jobs: int = 1, dask=None,
               halving: bool = False, progress: bool | None = None,
               retry_failed: bool = False, report: bool = True, log=print):
    """Run (or resume) a grid search; returns a DataFrame with one row per run it used.

    Args:
        grid: a :class:`GridSpec`, a YAML path, a grid name under grids/, or a dict.
        out: the output folder (results.jsonl, grid.json, the report).
        jobs: configurations trained at once on this machine (joblib processes).
        dask: a dask.distributed scheduler address (or Client): one worker per GPU.
        halving: successive halving with epochs as the resource, instead of the full grid.
        progress: the tqdm bar (default: :func:`course_utils.training.progress_enabled`).
        retry_failed: run the configurations recorded as failed again.
        report: write summary.csv, best.json and heatmap.png at the end.
    """
    from .training import progress_enabled

    spec = grid if isinstance(grid, GridSpec) else load_grid(grid)
    if not _is_int(jobs) or jobs < 1:
        raise SearchError(f"--jobs must be a positive integer, got {jobs!r}")
    if dask is not None and jobs != 1:
        raise SearchError("use either --jobs or --dask, not both: with Dask, the workers "
                          "decide how many configurations run at once")
    if halving and "max_epochs" in spec.params:
        raise GridError(f"{spec.source}: --halving uses epochs as the resource, so max_epochs "
                        "cannot also be searched")
    progress = progress_enabled() if progress is None else progress
    out = Path(out)
    start = time.perf_counter()
    used: list[dict] = []
    with _SearchDir(out, spec):
        known = {r["key"]: r for r in read_results(out, repair=True)}
        configs = spec.configs()
        log(spec.describe())
        if not halving:
            res = _run_batch(out, spec, configs, spec.max_epochs, rung=None, jobs=jobs,
                             dask=dask, progress=progress, retry_failed=retry_failed,
                             known=known, label=spec.name, log=log)
            used = list(res.values())
        else:
            factor, min_ep = spec.halving["factor"], spec.halving["min_epochs"]
            schedule = halving_schedule(spec.max_epochs, factor, min_ep)
            log(f"successive halving: epochs per rung {schedule}, keeping 1/{factor} each rung")
            candidates = configs
            for rung, epochs in enumerate(schedule):
                res = _run_batch(out, spec, candidates, epochs, rung=rung, jobs=jobs, dask=dask,
                                 progress=progress, retry_failed=retry_failed, known=known,
                                 label=f"{spec.name} rung {rung} ({epochs} ep)", log=log)
                for rec in res.values():
                    used.append({**rec, "rung": rung})
                if rung == len(schedule) - 1:
                    break
                scores = [res[run_key(c, epochs)].get("valid_acc") for c in candidates]
                order = sorted(range(len(candidates)),
                               key=lambda i: (-(scores[i] if scores[i] is not None else -1), i))
                keep = max(1, math.ceil(len(candidates) / factor))
                candidates = [candidates[i] for i in order[:keep]]
        try:  # only the folder of the per-run checkpoints, when it is empty
            (out / CHECKPOINT_SUBDIR).rmdir()
        except OSError:
            pass
    seconds = time.perf_counter() - start
    ok = [r for r in used if r["status"] == "ok"]
    log(f"search done in {seconds:.1f} s: {len(ok)} ok, {len(used) - len(ok)} failed, "
        f"results in {out / RESULTS_FILE}")
    if report:
        paths = write_report(out, only=used if halving else None)
        log("report: " + ", ".join(str(p) for p in paths.values()))
    return records_frame(used)


# --------------------------------------------------------------------------- report

def records_frame(records: Iterable[dict]):
    """Records as a DataFrame: one column per parameter, then the results."""
    import pandas as pd

    rows = []
    for r in records:
        row = {k: (tuple(v) if isinstance(v, list) else v) for k, v in r["params"].items()}
        for k in ("valid_acc", "best_epoch", "epochs", "epochs_run", "train_acc",
                  "train_seconds", "rung", "status", "device", "seed", "error", "id"):
            row[k] = r.get(k)
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(records: Iterable[dict], param_names: list[str] | None = None):
    """One row per configuration (its run with the most epochs), best first."""
    records = list(records)
    latest: dict[str, dict] = {}
    for r in records:
        prev = latest.get(r["id"])
        if prev is None or r["epochs"] >= prev["epochs"]:
            latest[r["id"]] = r
    df = records_frame(latest.values())
    if df.empty:
        return df
    df = df.sort_values(["epochs", "valid_acc"], ascending=[False, False],
                        na_position="last", kind="stable").reset_index(drop=True)
    df.insert(0, "rank", range(1, len(df) + 1))
    return df


def _param_columns(df, spec_params: list[str] | None = None) -> list[str]:
    fixed_cols = {"rank", "valid_acc", "best_epoch", "epochs", "epochs_run", "train_acc",
                  "train_seconds", "rung", "status", "device", "seed", "error", "id"}
    cols = [c for c in df.columns if c not in fixed_cols]
    if spec_params:
        cols = [c for c in spec_params if c in cols] + [c for c in cols if c not in spec_params]
    return cols


def heatmap_axes(df, report: dict | None = None, spec_params: list[str] | None = None):
    """(x, y, panel): from the grid's ``report`` entry, else the searched parameters
    with more than one value, in grid order (y first, then x, then panel)."""
    report = report or {}
    cols = _param_columns(df, spec_params)
    varying = [c for c in cols if df[c].nunique(dropna=False) > 1] or cols[:1]
    y = report.get("y") or (varying[0] if varying else None)
    rest = [c for c in varying if c != y]
    x = report.get("x") or (rest[0] if rest else None)
    rest = [c for c in rest if c != x]
    panel = report.get("panel") or (rest[0] if rest else None)
    return x, y, panel


def plot_heatmaps(summary, x: str | None, y: str | None, panel: str | None = None,
                  title: str | None = None):
    """Validation accuracy over (y, x), one panel per value of ``panel``. Failed
    configurations show as grey cells marked 'failed'. Returns the Figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    df = summary.copy()
    for name, col in (("x", x), ("y", y), ("panel", panel)):
        if col is None:
            df[f"_{name}"] = "-"
        else:
            df[f"_{name}"] = df[col]
    panels = sorted(df["_panel"].unique(), key=_sort_key, reverse=True)
    xs = sorted(df["_x"].unique(), key=_sort_key)
    ys = sorted(df["_y"].unique(), key=_sort_key, reverse=True)
    ok = df[df["status"] == "ok"]["valid_acc"]
    vmin, vmax = (float(ok.min()), float(ok.max())) if len(ok) else (0.0, 1.0)
    if vmax - vmin < 1e-3:
        vmin, vmax = vmin - 0.01, vmax + 0.01
    fig, axes = plt.subplots(1, len(panels), figsize=(1.2 + 1.3 * len(xs) * len(panels) + 0.6,
                                                      1.4 + 0.6 * len(ys)),
                             squeeze=False, constrained_layout=True)
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    image = None
    for ax, pv in zip(axes[0], panels):
        sub = df[df["_panel"] == pv]
        grid = np.full((len(ys), len(xs)), np.nan)
        labels = [["" for _ in xs] for _ in ys]
        for _, row in sub.iterrows():
            i, j = ys.index(row["_y"]), xs.index(row["_x"])
            if row["status"] == "ok":
                grid[i, j] = row["valid_acc"]
                labels[i][j] = f"{row['valid_acc']:.3f}"
            else:
                labels[i][j] = "failed"
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin, vmax=vmax,
                          aspect="auto")
        for i in range(len(ys)):
            for j in range(len(xs)):
                val = grid[i, j]
                light = not np.isnan(val) and (val - vmin) / (vmax - vmin) < 0.6
                ax.text(j, i, labels[i][j] or "n/a", ha="center", va="center", fontsize=8,
                        color="white" if light else "black")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set_yticks(range(len(ys)), [str(v) for v in ys])
        ax.set_xlabel(x or "")
        ax.set_ylabel(y or "")
        ax.set_title(f"{panel} = {pv}" if panel else "validation accuracy", fontsize=10)
    cbar = fig.colorbar(image, ax=axes[0].tolist(), shrink=0.9)
    cbar.set_label("best valid_acc")
    fig.suptitle(title or "Validation accuracy over the grid")
    return fig


def _sort_key(v):
    import numbers

    if isinstance(v, numbers.Number) and not isinstance(v, bool):
        return (0, float(v), "")
    return (1, 0.0, str(v))


def write_report(out: str | os.PathLike, only: list[dict] | None = None) -> dict[str, Path]:
    """Write summary.csv (sorted by valid_acc), best.json and heatmap.png into ``out``.

    ``only`` restricts the report to these records (a halving search's runs).
    """
    out = Path(out)
    gfile = out / GRID_FILE
    if not (out / RESULTS_FILE).exists():
        raise ResultsError(f"no {RESULTS_FILE} in {out}: run the search first "
                           "(python -m course_utils.search GRID.yaml --out DIR)")
    meta = json.loads(gfile.read_text()) if gfile.exists() else {}
    spec_d = meta.get("spec", {})
    records = only if only is not None else read_results(out)
    if not records:
        raise ResultsError(f"{out / RESULTS_FILE} holds no finished configuration yet")
    param_names = list(spec_d.get("params", {}))
    summary = summarize(records)
    cols = ["rank"] + _param_columns(summary, param_names) + [
        c for c in ("valid_acc", "best_epoch", "epochs", "epochs_run", "train_acc",
                    "train_seconds", "status", "device", "seed", "error", "id")
        if c in summary.columns]
    summary = summary[cols]
    paths = {"summary": out / "summary.csv", "best": out / "best.json",
             "heatmap": out / "heatmap.png"}
    summary.to_csv(paths["summary"], index=False)

    ok = [r for r in records if r["status"] == "ok"]
    if ok:
        top_epochs = max(r["epochs"] for r in ok)
        best = max((r for r in ok if r["epochs"] == top_epochs),
                   key=lambda r: (r["valid_acc"], -r["train_seconds"]))
        best_out = {k: best.get(k) for k in ("params", "valid_acc", "best_epoch", "epochs",
                                             "epochs_run", "train_seconds", "device", "seed",
                                             "versions", "id")}
    else:
        best_out = {"params": None, "message": "no configuration finished successfully"}
    best_out.update(grid=meta.get("name"), fingerprint=meta.get("fingerprint"),
                    configurations=len(summary),
                    failed=int((summary["status"] != "ok").sum()))
    tmp = paths["best"].with_suffix(".tmp")
    tmp.write_text(json.dumps(best_out, indent=2, default=str) + "\n")
    os.replace(tmp, paths["best"])

    x, y, panel = heatmap_axes(summary, spec_d.get("report"), param_names)
    import matplotlib.pyplot as plt

    fig = plot_heatmaps(summary, x, y, panel,
                        title=f"Validation accuracy, grid {meta.get('name', out.name)!r}")
    fig.savefig(paths["heatmap"], dpi=110)
    plt.close(fig)
    return paths


def load_summary(out: str | os.PathLike):
    """The report's table for ``out`` (written if missing)."""
    import pandas as pd

    path = Path(out) / "summary.csv"
    if not path.exists():
        write_report(out)
    return pd.read_csv(path)


def best_result(out: str | os.PathLike) -> dict:
    """best.json of ``out`` as a dict."""
    path = Path(out) / "best.json"
    if not path.exists():
        write_report(out)
    return json.loads(path.read_text())


def compare_halving(full, halving) -> "pd.DataFrame":  # noqa: F821
    """Full grid against successive halving: best configuration, where the halving
    winner ranks in the full grid, and the compute each used (epochs run, train seconds).

    ``full`` and ``halving`` are the DataFrames that :func:`run_search` returned.
    """
    import pandas as pd

    def best_of(df):
        ok = df[df["status"] == "ok"]
        top = ok[ok["epochs"] == ok["epochs"].max()]
        return top.sort_values("valid_acc", ascending=False, kind="stable").iloc[0]

    params = _param_columns(full)
    fb, hb = best_of(full), best_of(halving)
    ranked = full[full["status"] == "ok"].sort_values("valid_acc", ascending=False,
                                                      kind="stable").reset_index(drop=True)
    match = ranked[(ranked[params] == hb[params]).all(axis=1)]
    rank = int(match.index[0]) + 1 if len(match) else None
    full_epochs = float(full["epochs_run"].fillna(0).sum())
    full_secs = float(full["train_seconds"].fillna(0).sum())
    rows = []
    for label, df, b in (("full grid", full, fb), ("successive halving", halving, hb)):
        epochs = float(df["epochs_run"].fillna(0).sum())
        secs = float(df["train_seconds"].fillna(0).sum())
        rows.append({"search": label, "runs": len(df),
                     "best": _fmt_params({p: b[p] for p in params}),
                     "best valid_acc": round(float(b["valid_acc"]), 4),
                     "rank in full grid": 1 if label == "full grid" else rank,
                     "epochs trained": int(epochs), "train seconds": round(secs, 1),
                     "compute (epochs) vs full": round(epochs / full_epochs, 3) if full_epochs else None,
                     "compute (seconds) vs full": round(secs / full_secs, 3) if full_secs else None})
    return pd.DataFrame(rows).set_index("search")


def notebook_grid(profile: Profile | str | None = None) -> GridSpec:
    """The grid notebook 06 runs: ``profile.grid`` from grids/ (smoke, quick or
    reference); in the smoke profile cut to 2 configurations, 1 epoch, a tiny subset."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    spec = load_grid(GRID_DIR / f"{prof.grid}.yaml", profile=prof)
    if prof.name == "smoke":
        spec = spec.reduced(**SMOKE_NOTEBOOK)
    return spec


# --------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m course_utils.search",
        description="Resumable grid search over skorch parameters (see grids/*.yaml).",
        epilog="Run the same command again to resume: finished configurations are skipped.")
    p.add_argument("grid", nargs="?", help="grid YAML file, or a name under grids/ (smoke, "
                   "quick, reference); optional with --report")
    p.add_argument("--out", help="output folder (default: build/search/GRIDNAME)")
    p.add_argument("--jobs", type=int, default=1, help="configurations at once (joblib)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="send configurations to this dask.distributed scheduler")
    p.add_argument("--halving", action="store_true",
                   help="successive halving with epochs as the resource")
    p.add_argument("--report", action="store_true",
                   help="only write summary.csv, best.json and heatmap.png from DIR")
    p.add_argument("--retry-failed", action="store_true",
                   help="run configurations recorded as failed again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.grid is None and not (args.report and args.out):
            raise SearchError("give a grid file (e.g. grids/smoke.yaml), or --report --out DIR")
        spec = load_grid(args.grid) if args.grid else None
        out = Path(args.out) if args.out else REPO_ROOT / "build" / "search" / spec.name
        if args.report:
            if spec is not None:
                _SearchDir(out, spec).check()
            paths = write_report(out)
            print("report: " + ", ".join(str(p) for p in paths.values()))
            return 0
        start = time.perf_counter()
        run_search(spec, out, jobs=args.jobs, dask=args.dask, halving=args.halving,
                   retry_failed=args.retry_failed,
                   progress=False if args.no_progress else None)
        print(f"wall time {time.perf_counter() - start:.1f} s")
        return 0
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished configurations are in {args.out or 'the --out folder'}"
              "; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
