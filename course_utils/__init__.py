"""The AlexNet course's shared package.

Three kinds of module (see the README's Layout section):

- building blocks: :mod:`.config`, :mod:`.data`, :mod:`.layers`, :mod:`.models`,
  :mod:`.training`, :mod:`.plots`, the run layer :mod:`.experiment` and the budget
  table :mod:`.budgets`, the notebooks' exercises :mod:`.exercises`;
- :mod:`.lessons`: one helper module per notebook (``chNN_topic``);
- tools: :mod:`.search` (the grid tool) and :mod:`.tools` (runner, lab, bench, gpukit).

What a notebook usually needs is importable from here.
"""
from .config import (PROFILES, CourseError, DeviceUnavailableError, Profile, ProfileError,
                     default_seed, describe_environment, get_device, get_profile,
                     seed_everything)

_LAZY = {"Budget": "budgets", "budget": "budgets", "RunResult": "experiment",
         "check": "exercises", "claim_table": "experiment", "course_result": "experiment",
         "paired_differences": "experiment", "run_variants": "experiment",
         "solution": "exercises", "summarize_runs": "experiment",
         "train_variant": "experiment"}


def __getattr__(name):
    # the run layer and the budget table load on first use, so that
    # `python -m course_utils.budgets` does not import itself twice
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__version__ = "0.2.0"

__all__ = [
    "PROFILES", "Budget", "CourseError", "DeviceUnavailableError", "Profile", "ProfileError",
    "RunResult", "__version__", "budget", "check", "claim_table", "course_result",
    "default_seed", "describe_environment", "get_device", "get_profile", "paired_differences",
    "run_variants", "seed_everything", "solution", "summarize_runs", "train_variant",
]
