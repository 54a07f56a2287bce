"""``make gpu-kit``: one folder with what a bare GPU machine lacks to run the notebooks.

A borrowed GPU machine has Python 3.12 with torch, torchvision, matplotlib, pandas,
pyyaml, scikit-learn, scikit-image and seaborn, but no network. The kit holds:

- ``wheels/``: skorch, nbval, torchinfo, ipykernel, nbclient and what they need that
  such a machine lacks, for CPython 3.12 on x86-64 Linux, at the versions installed
  here (so the GPU runs the code CI tested);
- ``data/``: the four Fashion-MNIST files;
- ``install.sh``: ``source .gpu-kit/install.sh`` there installs the wheels without a
  network and points ``PYTHONPATH`` and ``COURSE_DATA_DIR`` at them.

    python -m course_utils.tools.gpukit [--out .gpu-kit] [--max-mib 64]
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from ..config import REPO_ROOT, CourseError
from . import OneLineParser

__all__ = ["GPU_MISSING", "PLATFORMS", "build_kit", "install_script", "main"]

#: Distributions the GPU machine lacks (the notebooks' test stack and its needs).
GPU_MISSING = (
    "skorch", "tabulate", "tqdm", "torchinfo",
    "nbval", "pytest", "iniconfig", "pluggy", "coverage",
    "nbclient", "nbformat", "fastjsonschema", "jsonschema", "jsonschema-specifications",
    "referencing", "rpds-py", "attrs", "jupyter_client", "jupyter_core", "platformdirs",
    "traitlets", "tornado", "pyzmq",
    "ipykernel", "comm", "debugpy", "matplotlib-inline", "nest-asyncio2", "psutil",
    "ipython", "ipython_pygments_lexers", "jedi", "parso", "pexpect", "ptyprocess",
    "prompt_toolkit", "wcwidth", "pygments", "stack_data", "executing", "asttokens",
    "pure_eval",
)
#: The wheel tags pip may take for the GPU machine (CPython 3.12, x86-64 Linux).
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "manylinux_2_24_x86_64",
             "manylinux_2_31_x86_64", "manylinux_2_34_x86_64", "manylinux_2_35_x86_64")
DATA_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class KitError(CourseError):
    """The kit could not be built."""


def install_script() -> str:
    """The script that installs the kit on the GPU machine (no network needed)."""
    return """# Source this on the GPU machine, from the repository's root:
#   source .gpu-kit/install.sh
KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SITE=/tmp/course-site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
  --target "$SITE" "$KIT"/wheels/*.whl || { echo "gpu-kit: install failed" >&2; return 1; }
export PYTHONPATH="$SITE:$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
export COURSE_DATA_DIR="$KIT/data" MPLBACKEND=Agg COURSE_PROGRESS=0
echo "gpu-kit: installed $(ls "$KIT"/wheels | wc -l) wheels; COURSE_DATA_DIR=$COURSE_DATA_DIR"
"""


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        raise KitError(f"{name} is not installed here: run `make setup` first") from None


def _download(names, dest: Path) -> None:
    specs = [f"{n}=={_version(n)}" for n in names]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
           "--abi", "cp312", "--abi", "abi3", "--abi", "none", "--timeout", "30",
           "-d", str(dest)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    done = subprocess.run(cmd + specs, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise KitError(f"pip could not fetch the wheels ({last}); it needs PyPI")


def _data_folder() -> Path:
    from ..data import load_fashion_mnist

    return Path(load_fashion_mnist(download=False).source)


def build_kit(out: Path, max_mib: float = 64.0, download=_download) -> dict:
    """Build the kit in ``out`` (replacing a previous kit there); returns its figures."""
    out = Path(out)
    if out.exists() and not (out / "install.sh").is_file():
        raise KitError(f"{out} exists and is not a GPU kit: choose another --out")
    if out.exists():
        shutil.rmtree(out)
    wheels, data = out / "wheels", out / "data"
    wheels.mkdir(parents=True)
    data.mkdir()
    download(GPU_MISSING, wheels)
    source = _data_folder()
    for stem in DATA_FILES:
        src = next((p for p in (source / (stem + ".gz"), source / stem) if p.is_file()), None)
        if src is None:
            raise KitError(f"{source} lacks {stem}: run `make data` first")
        shutil.copy2(src, data / src.name)
    (out / "install.sh").write_text(install_script())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    mib = size / 2**20
    if mib > max_mib:
        raise KitError(f"the kit is {mib:.1f} MiB, over the {max_mib:g} MiB a GPU call "
                       "carries: drop wheels the machine has, or raise --max-mib")
    return {"out": str(out), "wheels": len(list(wheels.glob("*.whl"))), "mib": round(mib, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m course_utils.tools.gpukit",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".gpu-kit")
    parser.add_argument("--max-mib", type=float, default=64.0)
    args = parser.parse_args(argv)
    try:
        info = build_kit(args.out, args.max_mib)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"gpu-kit: {info['wheels']} wheels + Fashion-MNIST, {info['mib']} MiB in "
          f"{Path(info['out']).name}/ (on the GPU machine: "
          f"source {Path(info['out']).name}/install.sh)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
