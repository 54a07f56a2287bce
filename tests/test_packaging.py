"""Packaging: pyproject.toml and environment.yml name the same packages (conda can't run here),
no module imports another's private names, and every name in every `__all__` resolves."""
import importlib
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from course_helpers import course_modules

ROOT = Path(__file__).resolve().parent.parent
CONDA_TO_PIP = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_names() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_name(r) for r in meta["dependencies"]}


def environment_names() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        deps = dep["pip"] if isinstance(dep, dict) else [dep]
        names |= {CONDA_TO_PIP.get(_name(d), _name(d)) for d in deps}
    return names - NOT_PACKAGES


def test_environment_yml_and_pyproject_name_the_same_packages():
    assert pyproject_names() == environment_names()


def test_required_packages_are_declared():
    required = {"jupyterlab", "torch", "torchvision", "skorch", "scikit-learn", "matplotlib",
                "seaborn", "torchinfo", "nbval", "pyyaml"}
    assert required <= pyproject_names()


def test_environment_pins_python_311_and_torch_range_admits_2_14_1():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    from packaging.specifiers import SpecifierSet
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in meta["dependencies"] if _name(r) == "torch")
    spec = SpecifierSet(torch_req.split("#")[0].strip()[len("torch"):])
    assert "2.14.1" in spec
    assert "dev" in meta["optional-dependencies"]


def test_environment_uses_conda_forge_alone():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]


def test_no_module_imports_another_modules_private_names():
    import ast
    offenders = []
    for path in (ROOT / "course_utils").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (
                    node.level or (node.module or "").startswith("course_utils")):
                offenders += [f"{path.relative_to(ROOT)}: {a.name}" for a in node.names
                              if a.name.startswith("_") and a.name != "__version__"]
    assert not offenders, offenders


#: Packages that only group their modules and export nothing themselves.
NO_PUBLIC_NAMES = {"course_utils.lessons", "course_utils.tools"}


@pytest.mark.parametrize("name", course_modules())
def test_every_name_in_every_all_resolves(name):
    """``from MODULE import *`` works: ``__all__`` lists names the module really has."""
    module = importlib.import_module(name)
    if name in NO_PUBLIC_NAMES and not hasattr(module, "__all__"):
        return
    public = getattr(module, "__all__", None)
    assert isinstance(public, (list, tuple)), f"{name} declares no __all__"
    assert all(isinstance(n, str) for n in public), f"{name}.__all__ holds a non-string"
    assert len(set(public)) == len(public), f"{name}.__all__ lists a name twice"
    missing = [n for n in public if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists names it neither defines nor imports: {missing}"
