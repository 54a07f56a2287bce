import gzip
import shutil

import numpy as np
import pytest
import torch

from course_utils import data as D
from course_helpers import write_idx


def test_read_idx_good_files(tiny_idx):
    img_path, lbl_path, images, labels = tiny_idx
    np.testing.assert_array_equal(D.read_idx(img_path, "images"), images)
    np.testing.assert_array_equal(D.read_idx(lbl_path, "labels"), labels)


def test_read_idx_truncated_names_the_file(tmp_path):
    path = write_idx(tmp_path / "cut-idx3-ubyte", np.zeros((5, 28, 28)), truncate=100)
    with pytest.raises(D.DatasetError, match="cut-idx3-ubyte.*truncated"):
        D.read_idx(path, "images")


def test_read_idx_truncated_gzip_names_the_file(tmp_path):
    full = write_idx(tmp_path / "x", np.zeros((50, 28, 28)), compress=True)
    cut = tmp_path / "cut-idx3-ubyte.gz"
    cut.write_bytes(full.read_bytes()[:-30])
    with pytest.raises(D.DatasetError, match="cut-idx3-ubyte.gz"):
        D.read_idx(cut, "images")


def test_read_idx_wrong_magic(tmp_path):
    path = write_idx(tmp_path / "bad-idx1-ubyte", np.zeros(10), magic=2051)
    with pytest.raises(D.DatasetError, match="bad-idx1-ubyte.*wrong magic number 2051"):
        D.read_idx(path, "labels")


def _gzip_bomb(path, header: bytes, megabytes: int):
    """A small .gz whose stream is ``header`` then ``megabytes`` MB of zeros."""
    import zlib

    pack = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    chunk = bytes(1 << 20)
    with open(path, "wb") as fh:
        fh.write(pack.compress(header))
        for _ in range(megabytes):
            fh.write(pack.compress(chunk))
        fh.write(pack.flush())
    return path


def test_a_gzip_bomb_is_refused_without_reading_it_into_memory(tmp_path):
    """A file of a few hundred KB that inflates to 200 MB behind a valid header for 10
    images took its whole inflated size (and more) in memory before the size check;
    read as a stream, it costs what the header promises."""
    import tracemalloc

    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (10, 28, 28))
    bomb = _gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", header, 200)
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(D.DatasetError, match="bomb|padded.*file has more") as info:
            D.read_idx(bomb, "images")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    assert peak < 20 << 20, f"peak {peak / 2**20:.0f} MB while refusing a 200 MB bomb"


@pytest.mark.parametrize("kind,dims", [("images", (60_001, 28, 28)), ("images", (2**31, 2**31, 9)),
                                       ("labels", (10**9,))])
def test_a_header_that_promises_more_than_fashion_mnist_is_refused_before_reading(
        tmp_path, kind, dims):
    magic = 2051 if kind == "images" else 2049
    path = tmp_path / "big-idx"
    path.write_bytes(magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims))
    with pytest.raises(D.DatasetError, match="more than any Fashion-MNIST"):
        D.read_idx(path, kind)


def test_read_idx_padded_file_is_refused(tmp_path):
    path = write_idx(tmp_path / "pad-idx1-ubyte", np.zeros(10))
    with open(path, "ab") as fh:
        fh.write(b"extra")
    with pytest.raises(D.DatasetError, match="pad-idx1-ubyte.*padded.*file has more"):
        D.read_idx(path, "labels")


def test_real_debian_files(real_data):
    assert real_data.train_images.shape == (60_000, 28, 28)
    assert real_data.test_images.shape == (10_000, 28, 28)
    assert real_data.train_images.dtype == torch.uint8
    assert real_data.train_labels.dtype == torch.int64
    assert torch.bincount(real_data.train_labels).tolist() == [6000] * 10
    assert torch.bincount(real_data.test_labels).tolist() == [1000] * 10
    assert real_data.classes == D.CLASSES and len(D.CLASSES) == 10
    mean = real_data.train_images.float().div(255).mean().item()
    assert abs(mean - D.MEAN) < 5e-4


def _copy_real(real_data, dest, decompress=True, layout_raw=False):
    folder = dest / "FashionMNIST" / "raw" if layout_raw else dest
    folder.mkdir(parents=True)
    for stem in D.FILES.values():
        src = D._find_file(__import__("pathlib").Path(real_data.source), stem)
        if decompress and src.suffix == ".gz":
            with gzip.open(src) as fin, open(folder / stem, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        else:
            shutil.copy(src, folder / src.name)
    return folder


def test_course_data_dir_is_used_alone(real_data, tmp_path, monkeypatch):
    _copy_real(real_data, tmp_path / "mine", layout_raw=True)  # torchvision's layout, plain IDX
    monkeypatch.setenv(D.DATA_DIR_ENV, str(tmp_path / "mine"))
    loaded = D.load_fashion_mnist(download=False)
    assert loaded.source == str(tmp_path / "mine" / "FashionMNIST" / "raw")
    assert torch.equal(loaded.train_images, real_data.train_images)


def test_empty_course_data_dir_names_the_missing_files_and_no_other_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(D.DATA_DIR_ENV, str(tmp_path))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(10) % 10)
    with pytest.raises(D.DataNotFoundError) as info:
        D.load_fashion_mnist()
    msg = str(info.value)
    # names each missing file, and the one present is not among them
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        assert stem in msg
    assert "t10k-labels" not in msg
    # the user chose the folder: no apt-get or download advice, but how to undo the choice
    assert "apt-get" not in msg and "internet" not in msg and "unset COURSE_DATA_DIR" in msg


def test_no_data_anywhere_gives_the_three_fixes(tmp_path, monkeypatch):
    monkeypatch.delenv(D.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(D, "REPO_DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(D, "DEBIAN_DATA_DIR", tmp_path / "nothing")
    with pytest.raises(D.DataNotFoundError) as info:
        D.load_fashion_mnist(download=False)
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "COURSE_DATA_DIR" in msg
    assert "internet" in msg


def test_unreadable_file_is_a_permission_error_not_corruption(tmp_path, monkeypatch):
    # root reads every file, so the denial is simulated at open()
    path = write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(10))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(D.DatasetError) as info:
        D.read_idx(path, "labels")
    msg = str(info.value)
    assert "permission denied" in msg and "chmod" in msg and "corrupt" not in msg


def test_unreadable_folder_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(D.DATA_DIR_ENV, str(tmp_path))
    real_is_file = D.Path.is_file

    def denied(self):
        if self.parent == tmp_path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(D.Path, "is_file", denied)
    with pytest.raises(D.DatasetError, match="permission denied; make the folder readable"):
        D.load_fashion_mnist(download=False)


@pytest.mark.parametrize("case", ["truncated", "magic", "labels"])
def test_damaged_files_say_what_to_do(tmp_path, case):
    if case == "truncated":
        path = write_idx(tmp_path / "a-idx3-ubyte", np.zeros((5, 28, 28)), truncate=100)
        kind = "images"
    elif case == "magic":
        path, kind = write_idx(tmp_path / "a-idx1-ubyte", np.zeros(10), magic=2051), "labels"
    if case == "labels":
        rng = np.random.default_rng(0)
        write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 255, (60_000, 28, 28)))
        write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(60_000, 11))
        write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 255, (10_000, 28, 28)))
        write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(10_000) % 10)
        with pytest.raises(D.DatasetError) as info:
            D.load_from(tmp_path)
    else:
        with pytest.raises(D.DatasetError) as info:
            D.read_idx(path, kind)
    assert "delete it and get a fresh copy" in str(info.value)


def test_download_failure_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(D.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(D, "REPO_DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(D, "DEBIAN_DATA_DIR", tmp_path / "nothing")

    def offline(root):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(D, "_download", offline)
    with pytest.raises(D.DataNotFoundError, match="download failed: <urlopen error"):
        D.load_fashion_mnist()


def test_wrong_class_counts_are_reported(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 255, (60_000, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(60_000))  # all class 0
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 255, (10_000, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(10_000) % 10)
    with pytest.raises(D.DatasetError, match="train-labels-idx1-ubyte: per-class counts"):
        D.load_from(tmp_path)


def test_cli_reports_source_and_sizes(capsys):
    assert D.main(["--no-download"]) == 0
    out = capsys.readouterr().out
    assert "Fashion-MNIST found in" in out and "train 1000, valid 500, test 1000" in out


def test_cli_error_is_short_and_nonzero(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(D.DATA_DIR_ENV, str(tmp_path))
    assert D.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1


def test_train_valid_split_is_stratified_and_seeded(real_data):
    tr, va = D.train_valid_split(real_data.train_labels, 10_000, seed=3)
    assert len(tr) == 50_000 and len(va) == 10_000
    assert len(set(tr.tolist()) & set(va.tolist())) == 0
    assert torch.bincount(real_data.train_labels[va]).tolist() == [1000] * 10
    tr2, va2 = D.train_valid_split(real_data.train_labels, 10_000, seed=3)
    _, va3 = D.train_valid_split(real_data.train_labels, 10_000, seed=4)
    assert torch.equal(va, va2) and not torch.equal(va, va3)


def test_course_splits_follow_the_profile(real_data):
    s = D.course_splits("smoke", seed=0, data=real_data)
    assert s.sizes() == {"train": 1000, "valid": 500, "test": 1000}
    assert s.X_train.shape == (1000, 1, 28, 28) and s.X_train.dtype == torch.uint8
    assert torch.bincount(s.y_train).tolist() == [100] * 10
    q = D.course_splits("quick", seed=0, data=real_data)
    assert q.sizes() == {"train": 6000, "valid": 2000, "test": 10_000}
    assert torch.equal(D.course_splits("smoke", seed=0, data=real_data).X_train, s.X_train)


def test_splits_for_widens_the_profile_only_where_the_budget_asks_for_more(real_data):
    from course_utils.data import budget_splits, course_splits, splits_for

    row = {"train": 500, "valid": 200, "test": 300}  # less than smoke holds: smoke's images
    a = splits_for(row, "smoke", seed=1, data=real_data)
    b = budget_splits(course_splits("smoke", data=real_data), seed=1, **row)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    wide = splits_for({"train": None, "valid": 600, "test": None}, "smoke", data=real_data)
    assert wide.sizes() == {"train": 60_000 - 600, "valid": 600, "test": 10_000}
