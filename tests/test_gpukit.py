"""make gpu-kit, without the network: the wheels are faked, the data is the real files."""
import pytest

from course_utils.tools import gpukit


def fake_download(names, dest):
    for n in names:
        (dest / f"{n}-1.0-py3-none-any.whl").write_bytes(b"x" * 100)


def test_kit_holds_wheels_data_and_an_offline_installer(real_data, tmp_path):
    info = gpukit.build_kit(tmp_path / "kit", download=fake_download)
    kit = tmp_path / "kit"
    assert info["wheels"] == len(gpukit.GPU_MISSING) and info["mib"] < 64
    assert sorted(p.name.split(".")[0] for p in (kit / "data").iterdir()) == sorted(
        gpukit.DATA_FILES)
    script = (kit / "install.sh").read_text()
    assert "--no-index" in script and "COURSE_DATA_DIR" in script
    for needed in ("skorch", "nbval", "torchinfo", "ipykernel", "nbclient", "pyzmq"):
        assert needed in gpukit.GPU_MISSING


def test_kit_over_the_size_limit_and_a_foreign_folder_are_refused(real_data, tmp_path):
    with pytest.raises(gpukit.KitError, match="over the 1 MiB"):
        gpukit.build_kit(tmp_path / "kit", max_mib=1, download=fake_download)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(gpukit.KitError, match="not a GPU kit"):
        gpukit.build_kit(tmp_path / "mine", download=fake_download)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
