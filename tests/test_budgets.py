"""The one budget table: every notebook and profile, its CLI, its rehearsal scale."""
import json
import math
import re
from pathlib import Path

import pytest
import yaml

from course_utils import budgets as B
from course_utils.config import PROFILES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_notebook_has_a_row_in_every_profile():
    assert set(NOTEBOOKS) <= set(B.BUDGETS)
    for nb in NOTEBOOKS:
        for profile in PROFILES:
            b = B.budget(nb, profile)
            assert b.notebook == nb and b.profile == profile
            assert b.epochs >= 0 and b.seeds >= 0 and b.batch_size >= 1


def test_every_row_has_exactly_the_profiles_of_the_table():
    for nb, rows in B.BUDGETS.items():
        assert list(rows) == list(B.PROFILE_DEFAULTS), f"notebook {nb}: {list(rows)}"
    assert list(PROFILES) == list(B.PROFILE_DEFAULTS)


def test_profiles_grow_from_smoke_to_full():
    def images(n):
        return B.FULL_TRAIN if n is None else n

    s, q, f = (B.PROFILE_DEFAULTS[n] for n in ("smoke", "quick", "full"))
    assert images(s["train"]) <= images(q["train"]) <= images(f["train"])
    assert s["epochs"] <= q["epochs"] <= f["epochs"] and s["seeds"] <= q["seeds"] <= f["seeds"]


def test_row_06_quick_is_grids_quick_yaml(monkeypatch):
    """Quick runs grids/quick.yaml as it is, so its row's sizes must be the file's."""
    monkeypatch.delenv(B.SCALE_ENV, raising=False)
    b = B.budget("06", "quick")
    grid = yaml.safe_load((ROOT / "grids" / f"{b.settings['grid']}.yaml").read_text())
    configurations = math.prod(len(values) for values in grid["params"].values())
    assert b.settings["grid"] == grid["name"] and "configurations" not in b.settings
    assert (b.train, b.valid) == (grid["data"]["train_size"], grid["data"]["valid_size"])
    assert b.epochs == grid["max_epochs"] and b.variants == configurations
    sizes = grid["params"].get("batch_size") or [grid["fixed"].get("batch_size")]
    assert b.batch_size in sizes
    name, kwargs = b.model
    assert name == grid["model"]
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()} == {
        k.removeprefix("module__"): tuple(v) if isinstance(v, list) else v
        for k, v in grid["fixed"].items() if k.startswith("module__")}
    # every stage trains the grid's nets: its epochs on its training images
    assert all((e["epochs"], e["train"]) == (b.epochs, b.train) for e in b.extra)
    stages = {e["name"]: e for e in b.extra}
    assert stages["GridSearchCV on the best and the worst"]["runs"] == 2
    repeat = b.settings["repeat_seeds"]
    assert stages[f"best on {repeat} seeds, runner-up on {repeat - 1} more"]["runs"] == \
        2 * repeat - 1


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
def test_row_06_counts_the_most_its_extensions_can_add(profile, monkeypatch):
    """The extension stage is an upper bound: each extension adds at most one value to
    every axis of more than one value."""
    from course_utils.lessons.ch06_grid_search import notebook_grid

    monkeypatch.delenv(B.SCALE_ENV, raising=False)
    b = B.budget("06", profile)
    spec = notebook_grid(profile)
    sizes = [len(v) for v in spec.params.values() if len(v) > 1]
    most = math.prod(n + b.settings["max_extensions"] for n in sizes) - math.prod(sizes)
    stages = {e["name"]: e for e in b.extra}
    assert stages["grid extensions (at most)"]["runs"] >= most > 0
    assert b.variants == len(spec)


def test_a_row_reads_as_object_and_mapping():
    b = B.budget("09", "quick")
    assert b["epochs"] == b.epochs and b["train"] == b.train
    assert "rates" in b and dict(**b)["batch_size"] == b.batch_size
    with pytest.raises(KeyError, match="notebook 09's budget has"):
        b["nonsense"]


def test_images_processed_is_runs_times_epochs_times_images():
    b = B.budget("02", "quick")
    assert b.images_processed == b.seeds * b.variants * b.epochs * b.train
    idle = [B.budget(nb, "quick") for nb in B.BUDGETS]
    idle = [row for row in idle if not row.extra and not (row.runs and row.epochs)]
    assert idle  # 00's tour trains nothing
    assert all(row.images_processed == 0 and row.stages() == [] for row in idle)


def test_unknown_notebook_and_profile_are_one_clear_error():
    with pytest.raises(B.BudgetError, match="no budget for notebook '99'"):
        B.budget("99", "quick")
    with pytest.raises(Exception, match="unknown profile"):
        B.budget("05", "huge")


def test_profile_names_are_keys_only_in_budgets_and_config():
    pattern = re.compile(r"""["'](smoke|quick|full)["']\s*:|==\s*["'](smoke|quick|full)["']""")
    offenders = []
    for path in (ROOT / "course_utils").rglob("*.py"):
        if path.name in ("budgets.py", "config.py"):
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and "not profiles" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_rehearsal_shrinks_data_keeps_the_branches_and_checks_the_pipeline(monkeypatch):
    full = B.budget("02", "full")
    monkeypatch.setenv(B.SCALE_ENV, "0.001")
    dry, smoke = B.budget("02", "full"), B.budget("02", "smoke")
    assert dry.rehearsal and not full.rehearsal
    assert (dry.seeds, dry.variants) == (full.seeds, full.variants)
    assert dry.model == smoke.model and dry["channels"] == smoke["channels"]  # network size
    assert dry.train == smoke.train and dry.epochs == smoke.epochs
    assert dict(dry.bounds) == dict(smoke.bounds)
    monkeypatch.setenv(B.SCALE_ENV, "0.5")
    half = B.budget("02", "full")
    assert half.epochs == -(-full.epochs // 2) and half.train == B.FULL_TRAIN // 2
    monkeypatch.setenv(B.SCALE_ENV, "2")
    with pytest.raises(B.BudgetError, match=r"number in \(0, 1\]"):
        B.budget("02", "full")


def test_cli_prints_a_table_and_json(capsys):
    assert B.main(["--profile", "quick"]) == 0
    out = capsys.readouterr().out
    model = re.escape(B.budget("05", "quick").model_name)
    assert "profile quick on cpu" in out and re.search(rf"^05 .*{model}$", out, re.M)
    assert B.main(["--profile", "full", "--json", "--device", "h100"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["profile"] == "full" and set(NOTEBOOKS) <= set(table["notebooks"])
    for entry in [*table["notebooks"].values(), table["total"]]:
        assert entry["device"] == "h100" and entry["estimated_seconds"] >= 0
        assert entry["images_processed"] >= 0
    assert table["total"]["images_processed"] == sum(
        n["images_processed"] for n in table["notebooks"].values())


def test_cli_bad_profile_is_one_line(capsys):
    assert B.main(["--profile", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1


def test_estimates_grow_with_the_work():
    small = B.budget("10", "quick")
    big = B.budget("10", "full")
    assert 0 < B.estimate_seconds(small, "cpu") < B.estimate_seconds(big, "cpu")
    assert B.estimate_seconds(big, "h100") < B.estimate_seconds(big, "cpu")


def test_a_stage_that_trains_another_network_is_costed_with_it(monkeypatch):
    from dataclasses import replace

    monkeypatch.delenv(B.SCALE_ENV, raising=False)
    b = B.budget("09", "quick")
    (stage,) = b.extra
    assert stage["model"][0] != b.model[0]
    alone = replace(b, extra=())
    as_main = replace(b, extra=({**stage, "model": b.model},))
    for device in ("cpu", "h100"):
        extra = B.estimate_seconds(b, device) - B.estimate_seconds(alone, device)
        assert extra > 0
        assert extra != pytest.approx(B.estimate_seconds(as_main, device)
                                      - B.estimate_seconds(alone, device))


def test_readme_profile_table_matches_the_budget_table(monkeypatch):
    monkeypatch.delenv(B.SCALE_ENV, raising=False)
    readme = (ROOT / "README.md").read_text()
    assert B.readme_table() in readme, (
        "README's profile table is stale: paste `python -m course_utils.budgets --readme`")
