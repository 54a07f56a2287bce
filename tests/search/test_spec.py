"""course_utils.search.spec: grid files are data, checked before anything trains or is written."""
from __future__ import annotations

import time

import pytest
from search_helpers import quiet, tiny, write_yaml

from course_utils import CourseError
from course_utils import search as S
from course_utils.budgets import budget
from course_utils.lessons.ch06_grid_search import notebook_grid

BAD = [
    (tiny(params={"lr_rate": [0.1]}), S.UnknownParameterError,
     "'lr_rate' is not a key a grid may set"),
    (tiny(params={"module__dropot": [0.5]}), S.UnknownParameterError, "did you mean 'dropout'"),
    (tiny(params={"optimizer__momentum": [0.9]}), S.UnknownParameterError,
     "optimizer Adam has no parameter 'momentum'"),
    # the allow-list: hyper-parameters only, never a path, a file or a callback's storage
    (tiny(fixed={"callbacks__checkpoint__f_params": "/tmp/victim"}), S.UnknownParameterError,
     "'callbacks__checkpoint__f_params' is not a key a grid may set"),
    (tiny(params={"callbacks__checkpoint__root": ["/tmp/elsewhere"]}), S.UnknownParameterError,
     "'callbacks__checkpoint__root' is not a key a grid may set"),
    (tiny(params={"iterator_train__num_workers": [2]}), S.UnknownParameterError,
     "'iterator_train__num_workers' is not a key a grid may set"),
    (tiny(fixed={"device": "cuda"}), S.UnknownParameterError, "'device' is not a key"),
    (tiny(fixed={"module__a__b": 1}), S.UnknownParameterError, "'module__a__b' is not a key"),
    # values the run would refuse one configuration at a time (issue 28, item 6)
    (tiny(seed=2**63), S.ParameterTypeError, r"seed must be an integer from 0 to 2\*\*63 - 1"),
    (tiny(params={"seed": [0, 2**64]}), S.ParameterTypeError, "seed must be an integer"),
    (tiny(seed=-1), S.ParameterTypeError, "seed must be an integer from 0"),
    (tiny(fixed={"optimizer": "LBFGS"}), S.ParameterTypeError,
     "optimizer 'LBFGS' cannot train a net as the search does"),
    (tiny(params={"optimizer": ["Adam", "SparseAdam"]}), S.ParameterTypeError,
     "optimizer 'SparseAdam' cannot train a net"),
    (tiny(params={"optimizer": ["Nope"]}), S.ParameterTypeError,
     "optimizer 'Nope' is not an optimizer of torch.optim"),
    (tiny(report={"x": [1]}), S.ParameterTypeError, r"report.x is \[1\]: give the name"),
    (tiny(model="AlexNetTiny"), S.UnknownParameterError, "unknown model"),
    (tiny(params={}), S.EmptyGridError, "the grid is empty"),
    (tiny(params={"lr": []}), S.EmptyGridError, "empty list"),
    (tiny(params={"lr": ["fast"]}), S.ParameterTypeError, "expected a number"),
    (tiny(params={"batch_size": [12.5]}), S.ParameterTypeError, "expected an integer"),
    (tiny(params={"module__dropout": ["high"]}), S.ParameterTypeError, "expected a number"),
    (tiny(params={"lr": [-0.1]}), S.ParameterTypeError, "must be positive"),
    (tiny(max_epochs="ten"), S.ParameterTypeError, "max_epochs must be a positive integer"),
    (tiny(epochs=3), S.GridError, "unknown key 'epochs'"),
    # values only the real classes refuse: refused now, not recorded as failed runs later
    (tiny(params={"module__dropout": [0.5, 1.5]}), S.ParameterTypeError,
     "module__dropout = 1.5 is refused by model AlexNetSmall"),
    (tiny(params={"optimizer__weight_decay": [0.0, -1.0]}), S.ParameterTypeError,
     "optimizer__weight_decay = -1.0 is refused by optimizer Adam"),
    # data that does not exist
    (tiny(data={"train_size": 64, "valid_size": 60_000}), S.ParameterTypeError,
     "data.valid_size 60000 is out of range"),
    (tiny(data={"train_size": 55_000, "valid_size": 10_000}), S.ParameterTypeError,
     "data.train_size 55000 is out of range: 50,000 training images are left"),
    (tiny(params={"lr": [float("inf")]}), S.ParameterTypeError, "not a finite number"),
    (tiny(params={"lr": [float("nan")]}), S.ParameterTypeError, "not a finite number"),
    (tiny(fixed={"seed": 3}), S.GridError, "fixed.seed: set it with the top-level key"),
    # grid names name the output folder: plain names only
    (tiny(name="../../../victim"), S.GridError, "is not a plain name"),
    (tiny(name="a/b"), S.GridError, "is not a plain name"),
]


@pytest.mark.parametrize("grid, error, message", BAD, ids=[b[2][:30] for b in BAD])
def test_bad_grid_is_one_clear_line_before_training(tmp_path, grid, error, message):
    with pytest.raises(error, match=message) as info:
        S.run_search(grid, tmp_path / "out", progress=False, log=quiet)
    assert isinstance(info.value, CourseError)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


# --------------------------------------------------------------------------- model: data only

def test_a_grid_file_cannot_run_code(tmp_path):
    probe = tmp_path / "PWNED"
    grid = tiny(model="subprocess:Popen",
                fixed={"module__args": f"echo ran > {probe}", "module__shell": True})
    with pytest.raises(S.UnknownParameterError, match="'subprocess', which is not allowed.*"
                       "--allow-module subprocess"):
        S.load_grid(write_yaml(tmp_path / "evil.yaml", grid))
    time.sleep(0.2)
    assert not probe.exists()
    with pytest.raises(S.UnknownParameterError, match="not allowed"):
        S.load_grid(tiny(model="math:pi"))
    # even where the module is allowed, only a network class is accepted
    with pytest.raises(S.UnknownParameterError, match="not a network class"):
        S.load_grid(tiny(model="math:pi"), allow_modules=["math"])
    with pytest.raises(S.UnknownParameterError, match="not a network class"):
        S.load_grid(tiny(model="subprocess:Popen"), allow_modules=["subprocess"])
    with pytest.raises(S.UnknownParameterError, match="unknown model 'nn'"):
        S.load_grid(tiny(model="nn"))  # an attribute of course_utils.models, not a class


def test_an_allowed_module_gives_its_networks():
    spec = S.load_grid(tiny(model="search_nets:ExplodingNet",
                            params={"module__explode": [False, True]}),
                       allow_modules=["search_nets"])
    assert spec.model_class().__name__ == "ExplodingNet"
    with pytest.raises(S.UnknownParameterError, match="not a network class"):
        S.load_grid(tiny(model="search_nets:NOT_A_NET"), allow_modules=["search_nets"])
    with pytest.raises(S.GridError, match="not a module name"):
        S.load_grid(tiny(), allow_modules=["not a module"])
    assert S.load_grid(tiny(model="course_utils.models:AlexNetSmall")).model_class().__name__ \
        == "AlexNetSmall"


# --------------------------------------------------------------------------- YAML

def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("params:\n  lr: [1e-3, 1e-4\n  batch_size: 64\n")
    with pytest.raises(S.GridFileError, match="not valid YAML at line"):
        S.load_grid(bad)
    with pytest.raises(S.GridFileError, match="not found"):
        S.load_grid(tmp_path / "missing.yaml")


def test_a_key_given_twice_is_an_error(tmp_path):
    (tmp_path / "twice.yaml").write_text(
        "name: twice\nparams:\n  lr: [1.0e-3]\n  batch_size: [64]\n  lr: [5.0e-1]\n")
    with pytest.raises(S.GridFileError, match="line 5.*key 'lr' is given twice "
                                              r"\(first at line 3\)"):
        S.load_grid(tmp_path / "twice.yaml")
    (tmp_path / "top.yaml").write_text("max_epochs: 1\nparams: {lr: [1.0e-3]}\nmax_epochs: 9\n")
    with pytest.raises(S.GridFileError, match="'max_epochs' is given twice"):
        S.load_grid(tmp_path / "top.yaml")


def test_yaml_inf_and_nan_are_refused(tmp_path):
    for text in ("params: {lr: [.inf]}\n", "params: {lr: [.nan]}\n",
                 "fixed: {lr: -.inf}\nparams: {batch_size: [64]}\n"):
        (tmp_path / "g.yaml").write_text(text)
        with pytest.raises(S.ParameterTypeError, match="not a finite number"):
            S.load_grid(tmp_path / "g.yaml")


def test_yaml_reads_1e_minus_3_as_a_number(tmp_path):
    spec = S.load_grid(write_yaml(tmp_path / "g.yaml", tiny()))
    assert spec.params["lr"] == [1e-3, 1e-4]
    (tmp_path / "h.yaml").write_text("params: {lr: [1e-3, 5e-4], module__dropout: [0.5]}\n")
    assert S.load_grid(tmp_path / "h.yaml").params["lr"] == [1e-3, 5e-4]


def test_a_name_from_the_file_must_be_plain_too(tmp_path):
    path = write_yaml(tmp_path / "my grid.yaml", {"params": {"lr": [1.0e-3]}})
    with pytest.raises(S.GridError, match="add 'name:'"):
        S.load_grid(path)
    assert S.load_grid(write_yaml(tmp_path / "ok-grid_1.yaml", {"params": {"lr": [1.0e-3]}})
                       ).name == "ok-grid_1"


# --------------------------------------------------------------------------- grid size

def test_a_huge_grid_is_refused_before_it_is_expanded():
    values = list(range(1, 11))
    grid = tiny(params={"batch_size": values, "patience": values, "max_epochs": values,
                        "seed": [v - 1 for v in values], "lr": [v * 1.0e-4 for v in values],
                        "module__dropout": [v / 20 for v in values],
                        "optimizer__eps": [v * 1.0e-8 for v in values],
                        "optimizer__weight_decay": [v * 1.0e-5 for v in values],
                        "criterion__label_smoothing": [v / 100 for v in values]})
    spec = S.load_grid(grid)
    assert spec.size == 10**9
    with pytest.raises(S.GridTooLargeError, match="1,000,000,000 configurations .* cap of "
                                                  "10,000.*--max-configs"):
        spec.configs()
    with pytest.raises(S.GridTooLargeError):
        S.run_search(spec, "/nonexistent/never-made", progress=False, log=quiet)
    small = S.load_grid(tiny())
    assert len(small.configs(limit=4)) == 4
    with pytest.raises(S.GridTooLargeError, match="4 configurations"):
        small.configs(limit=3)


# --------------------------------------------------------------------------- shipped grids

def test_shipped_grids_are_valid():
    ref = S.load_grid("reference")
    assert len(ref) == 45 and ref.params["module__dropout"] == [0.5, 0.3, 0.2]
    assert ref.params["batch_size"] == [128, 256, 512, 1024, 2048]
    assert len(S.load_grid("smoke")) >= 4
    for profile in ("smoke", "full"):  # cut to the budget row's sizes
        b, cut = budget("06", profile), notebook_grid(profile)
        assert len(cut) == b.settings["configurations"] == b.variants
        assert (cut.train_size, cut.valid_size, cut.max_epochs) == (b.train, b.valid, b.epochs)
    # full: the reference grid's learning rates and batch sizes, at its first dropout rate
    full, ref_full = notebook_grid("full"), S.load_grid("reference", "full")
    assert full.params == {"lr": ref_full.params["lr"],
                           "batch_size": ref_full.params["batch_size"],
                           "module__dropout": ref_full.params["module__dropout"][:1]}
    assert notebook_grid("quick").fingerprint() == S.load_grid("quick").fingerprint()


def test_config_ids_are_stable():
    assert S.config_id({"lr": 0.001, "batch_size": 64}) == S.config_id(
        {"batch_size": 64, "lr": 0.001})
    assert S.run_key({"lr": 0.001}, 3).endswith("@3")


def test_a_huge_value_list_is_refused_before_its_values_are_checked():
    grid = tiny(params={"lr": [1.0e-3] * 2_000_000})
    with pytest.raises(S.GridTooLargeError, match="2,000,000 configurations"):
        S.load_grid(grid, max_configs=S.MAX_CONFIGS)


# --------------------------------------------------------------------------- bounded parsing

ALIAS_BOMB = """name: bomb
params:
  module__channels:
    - &a [1, 1, 1, 1, 1, 1, 1, 1, 1]
    - &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    - &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    - &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    - &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    - &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    - &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    - &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    - &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_a_yaml_alias_bomb_is_refused_in_one_short_line(tmp_path, capsys):
    """A 517-byte alias bomb used to run for minutes; a smaller one printed 35.8 MB."""
    from course_utils.search.cli import main

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    with pytest.raises(S.GridFileError, match=r"anchors \(&name\) and aliases") as info:
        S.load_grid(bomb)
    assert "line 4" in str(info.value) and len(str(info.value)) < 400
    assert main([str(bomb), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400 and "aliases" in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "anchor.yaml").write_text("params: {lr: &x [1.0e-3]}\n")
    with pytest.raises(S.GridFileError, match="anchors"):
        S.load_grid(tmp_path / "anchor.yaml")


def test_deep_nesting_and_big_files_are_refused(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("params: {module__channels: [" + "[" * 40 + "1" + "]" * 40 + "]}\n")
    with pytest.raises(S.GridFileError, match="nested deeper than"):
        S.load_grid(deep)
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * (S.spec.MAX_GRID_BYTES // 10 + 1) + "params: {lr: [1]}\n")
    with pytest.raises(S.GridFileError, match="larger than 256 KiB"):
        S.load_grid(big)


def test_a_long_name_is_shortened_in_the_error(tmp_path, capsys):
    from course_utils.search.cli import main

    grid = write_yaml(tmp_path / "long.yaml", tiny(name="x" * 100_000))
    with pytest.raises(S.GridError, match=r"characters\) is not a plain name") as info:
        S.load_grid(grid)
    assert len(str(info.value)) < 600
    assert main([str(grid), "--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err) < 600
    value = "y" * 100_000
    with pytest.raises(S.ParameterTypeError) as info:
        S.load_grid(tiny(params={"lr": [value]}))
    assert len(str(info.value)) < 600 and "100,002 characters" in str(info.value)


def test_repeated_values_are_dropped_and_reported():
    """`lr: [1e-3, 1e-3, 0.001]` reported 3 configurations and ran 1."""
    spec = S.load_grid(tiny(params={"lr": [1e-3, 1.0e-3, 0.001], "batch_size": [32, 32]}))
    assert spec.params == {"lr": [1e-3], "batch_size": [32]} and len(spec) == 1
    assert spec.repeats == {"lr": 2, "batch_size": 1}
    assert "1 configurations" in spec.describe()
    assert "2 repeated value(s) of lr dropped" in spec.describe()
