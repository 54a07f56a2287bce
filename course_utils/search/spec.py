"""Grid files: read the YAML, check every name and value, and hold the result as a
:class:`GridSpec`.

A grid file is data. It names a network class of :mod:`course_utils.models` (or of a
module allowed on the command line with ``--allow-module``), the data sizes, the
epochs and the parameters to search; every check happens in :func:`load_grid`,
before anything is trained or written::

    name: smoke                    # letters, digits, - and _ (the output folder's name)
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
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import inspect
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from ..config import REPO_ROOT, Profile, get_profile
from .errors import (EmptyGridError, GridError, GridFileError, GridTooLargeError,
                     ParameterTypeError, UnknownParameterError)

__all__ = ["ALLOWED_KEYS", "ALLOWED_PREFIXES", "GRID_DIR", "MAX_CONFIGS", "MAX_DEPTH",
           "MAX_GRID_BYTES", "OPTIMIZERS", "TRAIN_FILE_IMAGES", "GridSpec", "check_size",
           "config_id", "digest", "grid_path", "load_grid", "net_arguments", "resolve_model",
           "resolve_optimizer", "run_key", "shorten"]

GRID_DIR = REPO_ROOT / "grids"
#: The most configurations a search accepts unless told otherwise (``--max-configs``).
MAX_CONFIGS = 10_000
#: Images in Fashion-MNIST's training file: the validation and training splits are cut from it.
TRAIN_FILE_IMAGES = 60_000
#: A stratified split needs at least one image per class.
N_CLASSES = 10

TOP_KEYS = ("name", "description", "model", "data", "max_epochs", "seed", "fixed", "params",
            "report", "halving")
DATA_KEYS = ("profile", "train_size", "valid_size", "seed")
#: THE allow-list of plain keys a grid may set (``fixed`` or ``params``): make_classifier's
#: hyper-parameters and the course's own. Nothing that names a path, a file, a callback or
#: a data loader: the search owns every path it writes.
ALLOWED_KEYS = ("lr", "batch_size", "max_epochs", "optimizer", "seed", "cosine", "patience",
                "train_acc", "amp")
FACTORY_KEYS = ALLOWED_KEYS[:-1]
#: Prefixed keys a grid may set: the network's, the optimizer's and the loss's arguments.
ALLOWED_PREFIXES = ("module", "optimizer", "criterion")
#: The largest grid file read, and the deepest nesting of YAML it may have.
MAX_GRID_BYTES = 256 * 1024
MAX_DEPTH = 12
#: Seeds (and any integer of a grid) must fit a signed 64-bit integer.
INT_LIMIT = 2**63
#: Set by the grid's own top-level keys, never in ``fixed``.
TOP_LEVEL_ONLY = {"max_epochs": "max_epochs", "seed": "seed"}
INTEGER_PARAMS = {"batch_size", "max_epochs", "patience", "seed"}
POSITIVE_PARAMS = {"lr", "batch_size", "max_epochs", "patience"}
#: The torch.optim optimizers a grid may name: those that train a net with dense gradients
#: and a plain step() (LBFGS needs a closure, SparseAdam sparse gradients).
OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam", "RAdam",
              "Adamax", "ASGD", "Rprop")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


# --------------------------------------------------------------------------- YAML

def shorten(value, n: int = 200) -> str:
    """``repr(value)`` (a negative ``n``: a string as it is), cut to about ``abs(n)``
    characters for an error line."""
    text = value if isinstance(value, str) and n < 0 else repr(value)
    n = abs(n)
    if len(text) <= n:
        return text
    return f"{text[:n]}... ({len(text):,} characters)"


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``), refuses a key
    given twice in one mapping (YAML would silently keep the last), refuses anchors and
    aliases (an alias bomb expands a small file into gigabytes) and nesting deeper than
    :data:`MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors (&name) and aliases (*name) are not allowed in a grid "
                "file: write each value out", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels: a grid needs "
                    "a few", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line)
                except TypeError:  # an unhashable key: SafeLoader reports it
                    continue
                if first != key_node.start_mark.line:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"key {key!r} is given twice (first at line {first + 1}): keep one",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


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
    """A validated grid: what to train and which parameters to try.

    Made by :func:`load_grid`; ``allow_modules`` are the modules the grid's ``model``
    may come from besides :mod:`course_utils.models` (not part of the fingerprint).
    """

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
    allow_modules: tuple[str, ...] = ()
    #: values given more than once in ``params`` and dropped: {parameter: how many}
    repeats: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """The number of configurations (the product of the value-list lengths)."""
        return math.prod(len(v) for v in self.params.values())

    def __len__(self) -> int:
        return self.size

    def configs(self, limit: int | None = MAX_CONFIGS) -> list[dict[str, Any]]:
        """Every combination of the parameter values, in grid order.

        Raises :class:`GridTooLargeError` (before expanding) above ``limit``.
        """
        check_size(self, limit)
        names = list(self.params)
        return [dict(zip(names, values))
                for values in itertools.product(*(self.params[n] for n in names))]

    def epochs_for(self, params: dict[str, Any]) -> int:
        """Epochs of one configuration: its ``max_epochs`` if searched, else the grid's."""
        return int(params.get("max_epochs", self.max_epochs))

    def seed_for(self, params: dict[str, Any]) -> int:
        """Seed of one configuration: its ``seed`` if searched, else the grid's."""
        return int(params.get("seed", self.seed))

    def identity(self) -> dict[str, Any]:
        """What makes two grids the same search (the fingerprint's input)."""
        return {"model": self.model, "train_size": self.train_size,
                "valid_size": self.valid_size, "data_seed": self.data_seed,
                "max_epochs": self.max_epochs, "seed": self.seed,
                "fixed": self.fixed, "params": self.params}

    def fingerprint(self) -> str:
        return digest(self.identity(), 16)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["allow_modules"] = list(self.allow_modules)
        return d

    def model_class(self):
        """The network class (checked when the grid was loaded)."""
        return resolve_model(self.model, self.allow_modules, self.source)

    def with_(self, **changes) -> "GridSpec":
        """A copy with some fields changed and validated again."""
        raw = self.to_dict()
        raw.update(changes)
        return _validate(_spec_to_raw(raw), source=self.source,
                         allow_modules=tuple(raw["allow_modules"]))

    def reduced(self, configurations: int, max_epochs: int, train_size: int | None,
                valid_size: int, params: dict | None = None) -> "GridSpec":
        """A smaller grid of the same kind: the first parameter keeps ``configurations``
        values, the others their first value, then ``params`` replaces some lists."""
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
        dropped = "".join(f"; {n} repeated value(s) of {k} dropped"
                          for k, n in self.repeats.items())
        return (f"grid {self.name!r}: {self.size} configurations of {self.model} "
                f"({grid}), max_epochs {self.max_epochs}, {sizes}, seed {self.seed}{dropped}")


def check_size(spec: GridSpec, limit: int | None = MAX_CONFIGS) -> int:
    """The number of configurations of ``spec``; :class:`GridTooLargeError` above ``limit``
    (computed from the value-list lengths, without expanding the grid)."""
    return _check_count(spec.params, limit, spec.source)


def _check_count(params: dict[str, list], limit: int | None, source: str) -> int:
    n = math.prod(len(v) for v in params.values())
    if limit is not None and n > limit:
        lengths = " x ".join(str(len(v)) for v in params.values())
        raise GridTooLargeError(
            f"{source}: the grid has {n:,} configurations ({lengths}), more than the cap "
            f"of {limit:,}: search fewer values, or raise the cap with --max-configs")
    return n


def _spec_to_raw(d: dict) -> dict:
    return {"name": d["name"], "model": d["model"],
            "data": {"train_size": d["train_size"], "valid_size": d["valid_size"],
                     "seed": d["data_seed"]},
            "max_epochs": d["max_epochs"], "seed": d["seed"], "fixed": d["fixed"],
            "params": d["params"], "report": d["report"], "halving": d["halving"]}


def digest(obj: Any, n: int = 10) -> str:
    """The first ``n`` hex digits of the SHA-256 of ``obj`` as sorted JSON."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def config_id(params: dict) -> str:
    """A short stable id for one configuration."""
    return digest(params, 10)


def run_key(params: dict, epochs: int) -> str:
    """The results file's key of one run: a configuration at a number of epochs."""
    return f"{config_id(params)}@{epochs}"


def grid_path(name_or_path: str | os.PathLike) -> Path:
    """``smoke`` -> grids/smoke.yaml; a path is returned as it is."""
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"} or p.exists():
        return p
    return GRID_DIR / f"{p}.yaml"


def load_grid(grid: str | os.PathLike | dict, profile: Profile | str | None = None, *,
              allow_modules: Iterable[str] = (), max_configs: int | None = None) -> GridSpec:
    """Read and validate a grid.

    Parameters
    ----------
    grid : str, path or dict
        A YAML file, a grid name under grids/ (smoke, quick, reference), or a dict.
    profile : Profile or str, optional
        Whose data sizes and epochs fill what the grid leaves out (``data: profile``);
        default ``$COURSE_PROFILE``.
    allow_modules : iterable of str
        Modules ``model: "package.module:Class"`` may name; without them only the
        classes of :mod:`course_utils.models` are accepted.
    max_configs : int, optional
        Refuse a grid of more configurations (:class:`GridTooLargeError`), checked
        before its values are.

    Returns
    -------
    GridSpec

    Raises
    ------
    GridError
        With one clear line: unknown parameters or models, an empty grid, malformed
        YAML, a key given twice, values of the wrong type or out of range.
    """
    allow = _allowed(allow_modules)
    if isinstance(grid, dict):
        raw, source = grid, "<dict>"
    else:
        path = grid_path(grid)
        source = str(path)
        shown = shorten(str(path), -120)
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in GRID_DIR.glob("*.yaml")))
            raise GridFileError(f"grid file {shown} not found: give a YAML file or one of "
                                f"{known}")
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_GRID_BYTES + 1)
            if len(data) > MAX_GRID_BYTES:
                raise GridFileError(f"grid file {shown} is larger than "
                                    f"{MAX_GRID_BYTES // 1024} KiB: a grid file is a few "
                                    "lines of YAML")
            text = data.decode()
        except (OSError, UnicodeDecodeError) as exc:
            raise GridFileError(f"cannot read grid file {shown}: "
                                f"{shorten(str(exc), -200)}") from None
        try:
            raw = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise GridFileError(f"{shown} is not valid YAML{where}: "
                                f"{shorten(problem, -200)}") from None
        except RecursionError:
            raise GridFileError(f"{shown} is nested too deeply: a grid needs a few "
                                "levels") from None
    return _validate(raw, source=source, profile=profile, allow_modules=allow,
                     max_configs=max_configs)


def _allowed(modules: Iterable[str]) -> tuple[str, ...]:
    out = []
    for m in modules or ():
        m = str(m).strip()
        if not MODULE_RE.fullmatch(m):
            raise GridError(f"--allow-module {m!r} is not a module name: give a dotted "
                            "name such as mypkg.nets")
        out.append(m)
    return tuple(dict.fromkeys(out))


def _fail(cls, source, msg):
    raise cls(f"{shorten(str(source), -120)}: {msg}")


def _validate(raw: Any, source: str, profile: Profile | str | None = None,
              allow_modules: tuple[str, ...] = (), max_configs: int | None = None) -> GridSpec:
    if raw is None:
        _fail(EmptyGridError, source, "the grid file is empty: it needs at least 'params'")
    if not isinstance(raw, dict):
        _fail(GridFileError, source, f"the grid must be a mapping of keys "
              f"({', '.join(TOP_KEYS)}), not a {type(raw).__name__}")
    unknown = [k for k in raw if k not in TOP_KEYS]
    if unknown:
        _fail(GridError, source, f"unknown key {shorten(unknown[0], 80)}"
              f"{_suggest(unknown[0], TOP_KEYS)}: a grid file has {', '.join(TOP_KEYS)}")
    name = _grid_name(raw.get("name"), source)

    # model: a network class, never arbitrary code
    model = raw.get("model", "AlexNetSmall")
    if not isinstance(model, str) or len(model) > 200:
        _fail(ParameterTypeError, source, f"model must be a class name such as AlexNetSmall, "
              f"got {shorten(model)}")
    module_cls = resolve_model(model, allow_modules, source)

    # data
    data = raw.get("data", "profile")
    if data is None or data == "profile":
        data = {}
    if not isinstance(data, dict):
        _fail(ParameterTypeError, source, f"data must be 'profile' or a mapping with "
              f"{', '.join(DATA_KEYS)}, got {shorten(data)}")
    bad = [k for k in data if k not in DATA_KEYS]
    if bad:
        _fail(GridError, source, f"unknown data key {shorten(bad[0], 80)}: use "
              f"{', '.join(DATA_KEYS)}")
    base = profile if isinstance(profile, Profile) else get_profile(data.get("profile") or profile)
    train_size = data.get("train_size", base.train_size)
    valid_size = data.get("valid_size", base.valid_size)
    data_seed = data.get("seed", 0)
    _check_sizes(train_size, valid_size, data_seed, source)

    max_epochs = raw.get("max_epochs", base.epochs)
    if not _is_int(max_epochs) or max_epochs < 1:
        _fail(ParameterTypeError, source,
              f"max_epochs must be a positive integer, got {shorten(max_epochs)}")
    seed = raw.get("seed", 0)
    _check_seed("seed", seed, source)

    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, dict):
        _fail(ParameterTypeError, source,
              f"fixed must be a mapping of parameter: value, got {shorten(fixed)}")
    params = raw.get("params")
    if params is None or params == {}:
        _fail(EmptyGridError, source, "the grid is empty: add 'params' with at least one "
              "parameter and a list of values, e.g. params: {lr: [1.0e-3, 1.0e-4]}")
    if not isinstance(params, dict):
        _fail(ParameterTypeError, source, f"params must be a mapping of parameter: [values], "
              f"got {type(params).__name__}")
    grid: dict[str, list] = {}
    repeats: dict[str, int] = {}
    for pname, values in params.items():
        if not isinstance(values, list):
            values = [values]
        if not values:
            _fail(EmptyGridError, source, f"parameter {shorten(pname, 80)} has an empty list "
                  "of values, so the grid has no configuration: give it at least one value")
        grid[str(pname)] = [_plain(v) for v in values]
    _check_count(grid, max_configs, source)
    for pname, values in grid.items():  # 1e-3, 1.0e-3 and 0.001 are one value
        unique: dict[str, Any] = {}
        for v in values:
            unique.setdefault(json.dumps(v, sort_keys=True, default=str), v)
        if len(unique) < len(values):
            repeats[pname] = len(values) - len(unique)
            grid[pname] = list(unique.values())
    fixed = {str(k): _plain(v) for k, v in fixed.items()}
    for key, top in TOP_LEVEL_ONLY.items():
        if key in fixed:
            _fail(GridError, source, f"fixed.{key}: set it with the top-level key '{top}:'")
    both = set(fixed) & set(grid)
    if both:
        _fail(GridError, source, f"{shorten(sorted(both)[0], 80)} is both fixed and "
              "searched: keep one")
    for where, mapping in (("fixed", fixed), ("params", grid)):
        for pname in mapping:
            _check_allowed(pname, where, source)
    for v in grid.get("seed", []):
        _check_seed("params: seed", v, source)

    # names, types and ranges, against the real net
    ctx = _Context(module_cls, fixed, grid)
    for where, mapping in (("fixed", {k: [v] for k, v in fixed.items()}), ("params", grid)):
        for pname, values in mapping.items():
            default = ctx.check_name(pname, where, source)
            for v in values:
                _check_value(pname, v, default, where, source)
    ctx.probe(source)

    report = raw.get("report") or {}
    if not isinstance(report, dict):
        _fail(ParameterTypeError, source, "report must be a mapping with x, y and panel")
    for k, v in report.items():
        if k not in ("x", "y", "panel"):
            _fail(GridError, source, f"unknown report key {shorten(k, 80)}: use x, y and "
                  "panel")
        if v is not None and not isinstance(v, str):
            _fail(ParameterTypeError, source, f"report.{k} is {shorten(v)}: give the name "
                  f"of a searched parameter ({', '.join(grid)}) or null")
        if v is not None and v not in grid:
            _fail(UnknownParameterError, source, f"report.{k} is {shorten(v)}, which is not "
                  f"a searched parameter ({', '.join(grid)})")
    halving = raw.get("halving") or {}
    if not isinstance(halving, dict):
        _fail(ParameterTypeError, source, "halving must be a mapping with factor and min_epochs")
    halving = {"factor": 3, "min_epochs": 1, **halving}
    for k, v in halving.items():
        if k not in ("factor", "min_epochs"):
            _fail(GridError, source, f"unknown halving key {shorten(k, 80)}: use factor and "
                  "min_epochs")
        if not _is_int(v) or not (2 if k == "factor" else 1) <= v <= 1000:
            _fail(ParameterTypeError, source, f"halving.{k} must be an integer from "
                  f"{2 if k == 'factor' else 1} to 1000, got {shorten(v)}")
    return GridSpec(name=name, model=model, train_size=train_size, valid_size=valid_size,
                    data_seed=data_seed, max_epochs=max_epochs, seed=seed, fixed=fixed,
                    params=grid, report=dict(report), halving=halving, source=source,
                    allow_modules=tuple(allow_modules), repeats=repeats)


def _grid_name(raw_name, source: str) -> str:
    if raw_name is None or raw_name == "":
        name = Path(source).stem if source != "<dict>" else "grid"
        if not NAME_RE.fullmatch(name):
            _fail(GridError, source, f"the file name {name!r} is not a plain grid name: add "
                  "'name:' with letters, digits, - and _ only, e.g. name: my-grid")
        return name
    name = str(raw_name)
    if not NAME_RE.fullmatch(name):
        _fail(GridError, source, f"name {shorten(name, 80)} is not a plain name: use "
              "letters, digits, - "
              "and _ only (at most 64), e.g. name: my-grid; it names the output folder")
    return name


def _check_sizes(train_size, valid_size, data_seed, source: str) -> None:
    for key, value, optional in (("data.train_size", train_size, True),
                                 ("data.valid_size", valid_size, False)):
        if value is None and optional:
            continue
        if not _is_int(value) or value <= 0:
            _fail(ParameterTypeError, source, f"{key} must be a positive integer, got "
                  f"{shorten(value)}")
    _check_seed("data.seed", data_seed, source)
    most_valid = TRAIN_FILE_IMAGES - N_CLASSES
    if not N_CLASSES <= valid_size <= most_valid:
        _fail(ParameterTypeError, source, f"data.valid_size {valid_size} is out of range: the "
              f"validation split is cut from the {TRAIN_FILE_IMAGES:,} training images and "
              f"needs {N_CLASSES} to {most_valid:,} (10,000 is the usual)")
    left = TRAIN_FILE_IMAGES - valid_size
    if train_size is not None and not N_CLASSES <= train_size <= left:
        _fail(ParameterTypeError, source, f"data.train_size {train_size} is out of range: "
              f"{left:,} training images are left after a validation split of {valid_size:,}; "
              f"give {N_CLASSES} to {left:,}, or null for all")


def _check_seed(key: str, value, source: str) -> None:
    if not _is_int(value) or not 0 <= value < INT_LIMIT:
        _fail(ParameterTypeError, source, f"{key} must be an integer from 0 to 2**63 - 1, "
              f"got {shorten(value)}")


def _check_allowed(name: str, where: str, source: str) -> None:
    """THE allow-list: a grid sets hyper-parameters, never paths, files or callbacks."""
    prefix, sep, rest = name.partition("__")
    if (not sep and name in ALLOWED_KEYS) or (sep and prefix in ALLOWED_PREFIXES and rest
                                              and "__" not in rest):
        return
    _fail(UnknownParameterError, source,
          f"{where}: {shorten(name, 80)} is not a key a grid may set"
          f"{_suggest(name, ALLOWED_KEYS)}: a grid sets {', '.join(ALLOWED_KEYS)} and "
          "module__*, optimizer__*, criterion__* (the search owns every path, file and "
          "callback)")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v) -> bool:
    """No NaN or infinity in ``v`` (a value or a list of values)."""
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    return not (isinstance(v, float) and not math.isfinite(v))


def _plain(v):
    """YAML lists become lists of plain values (tuples are made when the net is built)."""
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _suggest(word, options) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- classes

def _course_models() -> dict[str, type]:
    from .. import models

    return {n: c for n, c in vars(models).items()
            if inspect.isclass(c) and issubclass(c, models.nn.Module)
            and c.__module__ == models.__name__ and not n.startswith("_")}


def resolve_model(model: str, allow_modules: Sequence[str] = (), source: str = "<grid>"):
    """The network class ``model`` names.

    A bare name is a class of :mod:`course_utils.models`; ``"package.module:Class"``
    is imported only when ``package.module`` is in ``allow_modules``. Either way the
    result must be a subclass of ``torch.nn.Module``: a grid file cannot name any
    other code to run.
    """
    from torch import nn

    course = _course_models()
    names = ", ".join(course)
    if ":" in model:
        mod, _, attr = model.partition(":")
        if mod == "course_utils.models":
            cls = course.get(attr)
        elif mod not in allow_modules:
            _fail(UnknownParameterError, source, f"model {model!r} comes from module {mod!r}, "
                  f"which is not allowed: use one of {names}, or allow that module on the "
                  f"command line with --allow-module {mod}")
        else:
            try:
                cls = getattr(importlib.import_module(mod), attr, None)
            except Exception as exc:  # noqa: BLE001 -- any import failure is the user's module
                _fail(GridError, source, f"cannot import module {mod!r} for model {model!r}: "
                      f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    else:
        cls = course.get(model)
        if cls is None:
            _fail(UnknownParameterError, source, f"unknown model {model!r}"
                  f"{_suggest(model, course)}: use one of {names}, or 'package.module:Class' "
                  "with --allow-module package.module")
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        _fail(UnknownParameterError, source, f"model {model!r} is not a network class (a "
              f"subclass of torch.nn.Module): use one of {names}, or a network class of an "
              "allowed module")
    return cls


def resolve_optimizer(name):
    """The ``torch.optim`` optimizer class called ``name`` (a class is returned as it is)."""
    import torch

    if inspect.isclass(name) and issubclass(name, torch.optim.Optimizer):
        return name
    cls = getattr(torch.optim, str(name), None)
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)
            and cls is not torch.optim.Optimizer):
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


def _arg(name, value):
    """A grid value as the net takes it: optimizer names as classes, lists as tuples."""
    if name == "optimizer":
        return resolve_optimizer(value)
    if isinstance(value, list):
        return tuple(_arg(name, v) for v in value)
    return value


def net_arguments(spec: GridSpec, params: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """``fixed`` and ``params`` of one configuration as the net takes them.

    Returns
    -------
    kwargs : dict
        make_classifier keywords and skorch parameters.
    later : dict
        ``callbacks__...`` parameters, set with ``set_params`` once the net exists.
    """
    kwargs, later = {}, {}
    for k, v in {**spec.fixed, **params}.items():
        (later if k.startswith("callbacks__") else kwargs)[k] = _arg(k, v)
    return kwargs, later


class _Context:
    """What the net built from this grid accepts, found from the real classes."""

    def __init__(self, module_cls, fixed, grid):
        import torch

        from ..training import make_classifier

        self.module_cls = module_cls
        self.fixed, self.grid = fixed, grid
        self.module_params = _signature_defaults(module_cls)
        opt_names = grid.get("optimizer") or [fixed.get("optimizer", "Adam")]
        self.optimizers = []
        for o in opt_names:
            try:
                self.optimizers.append(resolve_optimizer(o))
            except KeyError:
                self.optimizers.append(None)  # reported by _check_value
        factory = inspect.signature(make_classifier).parameters
        self.top: dict[str, Any] = {}
        for k in FACTORY_KEYS:
            default = factory[k].default
            self.top[k] = None if default is inspect.Parameter.empty else default
        self.top.update(optimizer="Adam", amp="auto")
        self.criterion = _signature_defaults(torch.nn.CrossEntropyLoss)

    def check_name(self, name: str, where: str, source: str):
        """The default value of ``name`` (for the type check); raise if unknown. Only
        names of the allow-list get here (:func:`_check_allowed`)."""
        prefix, _, rest = name.partition("__")
        if not rest:
            return self.top[name]
        if prefix == "module":
            return self._sub(name, rest, self.module_params,
                             f"model {self.module_cls.__name__}", where, source)
        if prefix == "optimizer":
            default = None
            for opt in self.optimizers:
                if opt is None:
                    continue
                default = self._sub(name, rest, _signature_defaults(opt),
                                    f"optimizer {opt.__name__}", where, source)
            return default
        return self._sub(name, rest, self.criterion, "criterion CrossEntropyLoss", where,
                         source)

    @staticmethod
    def _sub(full, name, accepted, owner, where, source):
        if name in accepted:
            return accepted[name]
        _fail(UnknownParameterError, source,
              f"unknown parameter {shorten(full, 80)} in {where}: {owner} has no parameter "
              f"{shorten(name, 80)}"
              f"{_suggest(name, accepted)}")

    # -- values that only the real classes can judge (a dropout of 1.5, a negative decay)
    def _variants(self, prefix: str, extra: tuple[str, ...] = ()):
        """(where, what, kwargs): the fixed values with the first searched ones, then each
        other searched value in turn (the rest at their first value)."""
        def mine(k):
            return k.startswith(prefix) or k in extra

        def kwarg(k):
            return k[len(prefix):] if k.startswith(prefix) else k

        fixed = {k: v for k, v in self.fixed.items() if mine(k)}
        first = {k: v[0] for k, v in self.grid.items() if mine(k)}
        base = {kwarg(k): _arg(k, v) for k, v in {**fixed, **first}.items()}
        what = ", ".join(f"{k} = {shorten(v, 80)}" for k, v in {**fixed, **first}.items())
        yield ("params" if first else "fixed"), what or "the defaults", base
        for name, values in self.grid.items():
            if mine(name):
                for v in values[1:]:
                    yield "params", f"{name} = {shorten(v, 80)}", {**base,
                                                                   kwarg(name): _arg(name, v)}

    def probe(self, source: str) -> None:
        """Build each part of the net once per searched value: a value its class refuses
        is a grid error now, not a failed run later."""
        import torch

        def refuse(where, what, owner, exc):
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = shorten(reason, -200)
            _fail(ParameterTypeError, source, f"{where}: {what} is refused by {owner}: {reason}")

        for where, what, kw in self._variants("module__"):
            try:
                with torch.device("meta"):  # no memory, no weights drawn: fast
                    self.module_cls(**kw)
            except Exception:  # noqa: BLE001 -- judged on the CPU, where it will run
                try:
                    self.module_cls(**kw)
                except Exception as exc:  # noqa: BLE001 -- the class's own check
                    refuse(where, what, f"model {self.module_cls.__name__}", exc)
        for opt in self.optimizers:
            if opt is None:
                continue
            for where, what, kw in self._variants("optimizer__", extra=("lr",)):
                try:
                    opt([torch.zeros(1, requires_grad=True)], **kw)
                except Exception as exc:  # noqa: BLE001
                    refuse(where, what, f"optimizer {opt.__name__}", exc)
        for where, what, kw in self._variants("criterion__"):
            try:
                loss = torch.nn.CrossEntropyLoss(**kw)
                loss(torch.zeros(2, 10), torch.zeros(2, dtype=torch.long))
            except Exception as exc:  # noqa: BLE001
                refuse(where, what, "criterion CrossEntropyLoss", exc)


def _check_value(name: str, value, default, where: str, source: str) -> None:
    def bad(expected):
        _fail(ParameterTypeError, source, f"{where}: {name} = {shorten(value)} "
              f"({type(value).__name__}) has the wrong type: expected {expected}")

    if not _finite(value):
        _fail(ParameterTypeError, source, f"{where}: {name} = {shorten(value)} is not a finite "
              "number: give a finite value")
    leaf = name.rsplit("__", 1)[-1]
    if name == "optimizer":
        if value not in OPTIMIZERS:
            try:
                resolve_optimizer(value)
                what = "cannot train a net as the search does (one step() per batch)"
            except KeyError:
                what = "is not an optimizer of torch.optim"
            _fail(ParameterTypeError, source, f"{where}: optimizer {shorten(value, 80)} "
                  f"{what}: use one of {', '.join(OPTIMIZERS)}")
        return
    if _is_int(value) and not -INT_LIMIT <= value < INT_LIMIT:
        _fail(ParameterTypeError, source, f"{where}: {name} = {shorten(value, 40)} does not "
              "fit a 64-bit integer: give a smaller number")
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
        _fail(ParameterTypeError, source, f"{where}: {name} must be positive, got "
              f"{shorten(value)}")
