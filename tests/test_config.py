import random

import numpy as np
import pytest
import torch

from course_utils import config as C


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv(C.PROFILE_ENV, "smoke")
    assert C.get_profile().name == "smoke"
    monkeypatch.setenv(C.PROFILE_ENV, " Quick ")
    assert C.get_profile().name == "quick"
    assert C.get_profile("full") is C.PROFILES["full"]


def test_default_profile_depends_on_cuda(monkeypatch):
    monkeypatch.delenv(C.PROFILE_ENV, raising=False)
    monkeypatch.setattr(C, "cuda_available", lambda: False)
    assert C.get_profile().name == "quick"
    monkeypatch.setattr(C, "cuda_available", lambda: True)
    assert C.get_profile().name == "full"


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv(C.PROFILE_ENV, "fast")
    with pytest.raises(C.ProfileError, match="'fast'.*" + ", ".join(C.PROFILES)):
        C.get_profile()


def test_profiles_are_the_budget_tables():
    from course_utils.budgets import PROFILE_DEFAULTS

    assert list(C.PROFILES) == list(PROFILE_DEFAULTS) and len(C.PROFILES) == len(PROFILE_DEFAULTS)
    for name, row in PROFILE_DEFAULTS.items():
        p = C.PROFILES[name]
        assert p.name == name and C.get_profile(name) == p
        assert (p.train_size, p.valid_size, p.test_size, p.epochs, p.seeds, p.batch_size) == (
            row["train"], row["valid"], row["test"], row["epochs"], row["seeds"],
            row["batch_size"])


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()
    C.seed_everything(7)
    first = draw()
    C.seed_everything(7)
    assert draw() == first
    C.seed_everything(8)
    assert draw() != first


def test_device_auto_and_cpu(monkeypatch):
    monkeypatch.delenv(C.DEVICE_ENV, raising=False)
    monkeypatch.setattr(C, "cuda_available", lambda: False)
    monkeypatch.setattr(C, "_mps_available", lambda: False)
    assert C.get_device() == torch.device("cpu")
    assert C.get_device("cpu") == torch.device("cpu")


def test_cuda_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(C, "cuda_available", lambda: False)
    with pytest.raises(C.DeviceUnavailableError, match="no usable CUDA GPU"):
        C.get_device("cuda")
    monkeypatch.setenv(C.DEVICE_ENV, "cuda:1")
    with pytest.raises(C.DeviceUnavailableError):
        C.get_device()
    with pytest.raises(C.DeviceUnavailableError, match="unknown device 'tpu'"):
        C.get_device("tpu")


@pytest.mark.parametrize("name", ["cpu:abc", "cuda:x", "mps:0", "cpu:", "cuda:-1"])
def test_malformed_device_names_are_refused(monkeypatch, name):
    monkeypatch.setattr(C, "cuda_available", lambda: True)
    with pytest.raises(C.DeviceUnavailableError, match="use auto, cuda, cuda:N"):
        C.get_device(name)


def test_cuda_index_beyond_the_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(C, "cuda_available", lambda: True)
    monkeypatch.setattr(C.torch.cuda, "device_count", lambda: 1)
    with pytest.raises(C.DeviceUnavailableError, match="has 1 CUDA GPU"):
        C.get_device("cuda:3")


@pytest.mark.parametrize("flags,expected", [("fpu sse avx2 avx512f avx512_bf16", True),
                                             ("fpu sse amx_tile amx_bf16", True),
                                             ("fpu sse avx2 avx512f", False)])
def test_cpu_bf16_detection_reads_the_cpu_flags(tmp_path, monkeypatch, flags, expected):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    monkeypatch.setattr(C, "Path", lambda _: info)
    assert C.cpu_supports_bf16.__wrapped__() is expected
    monkeypatch.setattr(C, "Path", lambda _: tmp_path / "missing")
    assert C.cpu_supports_bf16.__wrapped__() is False


def test_course_errors_render_as_one_line_in_ipython():
    err = C.ProfileError("unknown profile 'x'")
    assert err._render_traceback_() == ["ProfileError: unknown profile 'x'"]


def test_describe_environment_names_device_and_profile(monkeypatch):
    monkeypatch.setenv(C.PROFILE_ENV, "smoke")
    info = C.describe_environment()
    assert info["profile"] == "smoke" and info["torch"] == torch.__version__
    assert info["device"] in {"cpu", "cuda", "mps"}


def test_display_path_hides_the_machine(tmp_path, monkeypatch):
    assert C.display_path(C.REPO_ROOT / "build" / "x.pt") == "build/x.pt"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert C.display_path(tmp_path / ".cache" / "w.pth") == "~/.cache/w.pth"
    assert C.display_path("/somewhere/else/w.pth") == ".../w.pth"
    assert C.display_path("/opt/w/a.pth", bases=[("/opt/w", "$W/")]) == "$W/a.pth"
