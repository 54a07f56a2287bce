"""The benchmark (course_utils.tools.bench) and the fast training path it measures.

No timed assertions: the figures depend on the machine and its load. These tests
check what the figures are made of, and that the fast path changes nothing but
speed.
"""
import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.dataset import Dataset, ValidSplit
from torch.utils.data import DataLoader, Subset

from course_utils.tools import bench as bench
from course_utils.models import AlexNetSmall, model_flops, output_size
from course_utils.training import (EVAL_BATCH_SIZE, AmpError, CourseClassifier, TensorBatches,
                                   make_classifier, resident, same_device, tensor_source)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 256, (37, 1, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (37,), generator=g)
    return X, y


def _quiet(**kw):
    return dict(progress=False, verbose=0, max_epochs=1, **kw)


def _batches(iterator):
    return [(X.clone(), y.clone()) for X, y in iterator]


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for (Xa, ya), (Xb, yb) in zip(a, b):
        assert Xa.dtype == Xb.dtype and ya.dtype == yb.dtype
        torch.testing.assert_close(Xa, Xb, rtol=0, atol=0)
        torch.testing.assert_close(ya, yb, rtol=0, atol=0)


# --------------------------------------------------------------------------- matmul, FLOPs

def test_matmul_measurement_is_consistent(monkeypatch):
    m = bench.measure_matmul(64, device="cpu", repeats=2, warmup=1)
    assert m["n"] == 64 and m["repeats"] == 2
    # the precision the course trains in on this CPU
    assert m["dtype"] == ("bfloat16" if bench.cpu_supports_bf16() else "float32")
    monkeypatch.setattr(bench, "cpu_supports_bf16", lambda: False)
    assert bench.measure_matmul(64, device="cpu", repeats=1, warmup=0)["dtype"] == "float32"
    monkeypatch.setattr(bench, "cpu_supports_bf16", lambda: True)
    assert bench.measure_matmul(64, device="cpu", repeats=1, warmup=0)["dtype"] == "bfloat16"
    assert m["seconds"] > 0 and np.isfinite(m["gflops"]) and m["gflops"] > 0
    assert m["gflops"] == pytest.approx(2 * 64 ** 3 / m["seconds"] / 1e9)
    with pytest.raises(bench.BenchError, match="positive"):
        bench.measure_matmul(64, device="cpu", repeats=0)


def test_model_flops_match_a_hand_count():
    # AlexNetSmall: 67 -> conv1 15 -> pool 7 -> conv2 7 -> pool 3 -> conv3..5 3 -> pool 1.
    assert output_size(67, 11, 4) == 15
    convs = [(1, 96, 11, 15), (96, 256, 5, 7), (256, 384, 3, 3), (384, 384, 3, 3),
             (384, 256, 3, 3)]
    fcs = [(256, 128), (128, 128), (128, 10)]
    conv_flops = [2 * c_in * k * k * c_out * side * side for c_in, c_out, k, side in convs]
    forward = sum(conv_flops) + sum(2 * i * o for i, o in fcs)
    f = model_flops(AlexNetSmall())
    assert f["forward"] == forward
    assert f["layers"]["conv1"] == conv_flops[0] == 5_227_200
    assert f["train"] == 3 * forward - conv_flops[0]  # the image needs no gradient


# --------------------------------------------------------------------------- the two pipelines

def test_both_pipelines_show_the_network_the_same_images(images):
    X, y = images
    loader = bench.reference_loader(X[:8], y[:8], 67, batch_size=8, shuffle=False)
    Xa, ya = next(iter(loader))
    assert Xa.shape == (8, 1, 67, 67) and Xa.dtype == torch.float32
    assert 0.0 <= Xa.min() and Xa.max() <= 1.0
    a = bench.reference_batch(Xa, 67)
    b = bench.course_batch(X[:8], 67)
    assert a.shape == b.shape == (8, 1, 67, 67) and a.dtype == b.dtype == torch.float32
    assert torch.equal(ya, y[:8])
    # PIL resizes in uint8 (rounding), the course in float: within a grey level or two.
    assert (a - b).abs().max().item() < 3 / 255 / 0.353
    assert b.is_contiguous(memory_format=torch.channels_last)


def test_both_runs_train_the_same_architecture(images):
    X, y = images
    kw = dict(batch_size=8, device="cpu")
    a = bench.ReferenceRun(AlexNetSmall, X[:16], y[:16], X[:8], y[:8], workers=0, **kw)
    b = bench.CourseRun(AlexNetSmall, X[:16], y[:16], X[:8], y[:8], **kw)
    shapes = lambda m: [p.shape for p in m.parameters()]  # noqa: E731
    assert shapes(a.model) == shapes(b.net.module_)
    assert a.train(2) == 16 and b.train(2) == 16
    assert a.evaluate() == b.evaluate() == 8
    assert a.data(1) == b.data(1) == 8
    assert len(b.net.history) == 1 and len(b.net.history[-1, "batches"]) == 2


# --------------------------------------------------------------------------- the fast path

@pytest.mark.parametrize("shuffle,drop_last,with_y", [(True, False, True), (False, False, True),
                                                       (True, True, True), (False, False, False)])
def test_tensor_batches_equal_skorchs_dataloader(images, shuffle, drop_last, with_y):
    X, y = images
    ds = Dataset(X, y if with_y else None)
    torch.manual_seed(3)
    expected = _batches(DataLoader(ds, batch_size=8, shuffle=shuffle, drop_last=drop_last))
    state = torch.get_rng_state()
    torch.manual_seed(3)
    it = TensorBatches(*tensor_source(ds), batch_size=8, shuffle=shuffle, drop_last=drop_last)
    got = _batches(it)
    _assert_same_batches(got, expected)
    assert len(it) == len(expected)
    # Same draws from the global generator: dropout masks after it are the same too.
    assert torch.equal(torch.get_rng_state(), state)


def test_tensor_batches_follow_subsets_and_numpy(images):
    X, y = images
    inner = Subset(Dataset(X.numpy(), y.numpy()), list(range(3, 30)))
    ds = Subset(inner, [5, 1, 20, 7, 0, 11])
    torch.manual_seed(0)
    expected = _batches(DataLoader(ds, batch_size=4, shuffle=True))
    torch.manual_seed(0)
    got = _batches(TensorBatches(*tensor_source(ds), batch_size=4, shuffle=True))
    _assert_same_batches(got, expected)


def test_tensor_source_declines_what_it_cannot_slice(images):
    X, y = images

    class Custom(Dataset):
        def transform(self, X, y):
            return X.float(), y

    assert tensor_source(Custom(X, y)) is None
    assert tensor_source(Dataset({"x": X}, y)) is None  # several inputs
    assert tensor_source(Dataset(X, y)) is not None


def test_net_uses_the_fast_iterator_only_where_it_is_safe(images):
    X, y = images
    net = make_classifier(valid=None, **_quiet(batch_size=8))
    assert isinstance(net.get_iterator(net.get_dataset(X, y), training=True), TensorBatches)
    assert isinstance(net.get_iterator(net.get_dataset(X), training=False), TensorBatches)
    split = ValidSplit(4, stratified=False)(net.get_dataset(X, y))
    assert isinstance(net.get_iterator(split[0], training=True), TensorBatches)
    for kw in (dict(tensor_batches=False), dict(iterator_train__num_workers=0)):
        net = make_classifier(valid=None, **_quiet(batch_size=8, **kw))
        assert isinstance(net.get_iterator(net.get_dataset(X, y), training=True), DataLoader)


def test_evaluation_runs_in_larger_batches(images):
    X, y = images
    net = make_classifier(valid=None, **_quiet(batch_size=8))
    assert net.iterator_valid__batch_size == EVAL_BATCH_SIZE
    it = net.get_iterator(net.get_dataset(X), training=False)
    assert it.batch_size == EVAL_BATCH_SIZE and len(it) == 1
    assert make_classifier(valid=None, **_quiet(batch_size=1024)).iterator_valid__batch_size == 1024
    net = make_classifier(valid=None, iterator_valid__batch_size=4, **_quiet(batch_size=8))
    assert len(net.get_iterator(net.get_dataset(X), training=False)) == 10


def test_fast_path_fits_exactly_like_skorchs_dataloader(images):
    X, y = images
    results = []
    for fast in (True, False):
        net = make_classifier(valid=(X[:9], y[:9]), checkpoint=False, tensor_batches=fast,
                              **_quiet(batch_size=8))
        net.fit(X[:20], y[:20])
        results.append((net.history[:, "train_loss"], net.history[:, "valid_acc"],
                        net.predict_proba(X[:5]), net.module_.state_dict()))
    (loss_a, acc_a, p_a, w_a), (loss_b, acc_b, p_b, w_b) = results
    assert loss_a == loss_b and acc_a == acc_b
    np.testing.assert_array_equal(p_a, p_b)
    for k in w_a:
        torch.testing.assert_close(w_a[k], w_b[k], rtol=0, atol=0)


class _DeferredOnCPU(CourseClassifier):
    """The CUDA loop (losses read once per epoch), exercised on the CPU."""

    def _defer_loss_sync(self):
        return True


def test_losses_read_once_per_epoch_give_the_same_history(images):
    X, y = images
    kw = dict(module=AlexNetSmall, criterion=torch.nn.CrossEntropyLoss, batch_size=8,
              max_epochs=2, train_split=None, verbose=0, iterator_train__shuffle=True)
    a = CourseClassifier(**kw).fit(X[:20], y[:20])
    b = _DeferredOnCPU(**kw).fit(X[:20], y[:20])
    for key in ("train_loss",):
        assert a.history[:, key] == b.history[:, key]
    losses = b.history[-1, "batches", :, "train_loss"]
    assert len(losses) == 3 and all(type(v) is float for v in losses)


def test_amp_setting(images, monkeypatch):
    import course_utils.training.classifier as training

    X, y = images
    monkeypatch.setattr(training, "cpu_supports_bf16", lambda: False)
    net = make_classifier(valid=None, **_quiet(batch_size=8)).initialize()
    assert net.amp == "auto" and net.amp_dtype_ is None  # no native bf16: float32
    monkeypatch.setattr(training, "cpu_supports_bf16", lambda: True)
    net = make_classifier(valid=None, **_quiet(batch_size=8)).initialize()
    assert net.amp_dtype_ is torch.bfloat16  # native bf16 (AVX512-BF16/AMX): autocast
    net = make_classifier(valid=None, amp="off", **_quiet(batch_size=8)).initialize()
    assert net.amp_dtype_ is None
    net = make_classifier(valid=None, amp="bf16", **_quiet(batch_size=8)).initialize()
    assert net.amp_dtype_ is torch.bfloat16
    out = net.infer(X[:4])
    assert out.dtype == torch.float32 and out.shape == (4, 10)
    assert clone(net).amp == "bf16"
    with pytest.raises(AmpError, match="amp must be one of"):
        make_classifier(valid=None, amp="fp8", **_quiet()).initialize()


def test_resident_copies_are_made_once(images):
    X, _ = images
    assert resident(X, "cpu") is X
    assert torch.equal(resident(X.numpy(), "cpu"), X)
    # "meta" stands in for a GPU: a copy is made once, and again after X changes.
    first = resident(X, "meta")
    assert first.device.type == "meta" and resident(X, "meta") is first
    X.add_(0)  # an in-place change bumps the version
    assert resident(X, "meta") is not first
    assert same_device(torch.device("meta"), torch.device("meta"))
    assert not same_device(torch.device("cpu"), torch.device("meta"))


# --------------------------------------------------------------------------- the report

def test_benchmark_writes_the_report(tmp_path):
    out = tmp_path / "bench.json"
    report = bench.run_benchmark(["small"], device="cpu", batch_size=4, steps=1, rounds=2,
                                 warmup=0, eval_images=4, matmul_n=32, out=out,
                                 log=lambda *a: None)
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(report))
    for key in ("device", "torch", "matmul_gflops", "ratio", "fraction_of_matmul",
                "achieved_gflops", "pipelines", "models", "batch_size", "load_average"):
        assert key in saved, key
    assert saved["device"] == "cpu" and saved["torch"] == torch.__version__
    small = saved["models"]["small"]
    assert small["batch_size"] == 4 and small["input_size"] == 67
    for k in ("a", "b"):
        p = saved["pipelines"][k]
        assert len(p["train_img_s_rounds"]) == 2
        assert p["train_img_s"] == pytest.approx(float(np.median(p["train_img_s_rounds"])))
        assert p["train_img_s"] > 0 and p["eval_img_s"] > 0 and p["data_img_s"] > 0
    a, b = saved["pipelines"]["a"]["train_img_s"], saved["pipelines"]["b"]["train_img_s"]
    pairs = [vb / va for va, vb in zip(saved["pipelines"]["a"]["train_img_s_rounds"],
                                       saved["pipelines"]["b"]["train_img_s_rounds"])]
    assert saved["ratio"] == pytest.approx(float(np.median(pairs)))
    assert small["ratio_of_medians"] == pytest.approx(b / a)
    assert saved["achieved_gflops"] == pytest.approx(b * small["train_gflop_per_image"])
    assert saved["fraction_of_matmul"] == pytest.approx(
        saved["achieved_gflops"] / saved["matmul_gflops"])
    table = bench.format_table(report)
    assert "ratio (b)/(a)" in table and "AlexNetSmall" in table


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(bench.BenchError, match="unknown model"):
        bench.run_benchmark(["tiny"], device="cpu", out=None)
    with pytest.raises(bench.BenchError, match="positive"):
        bench.run_benchmark(["small"], device="cpu", steps=1, rounds=1, batch_size=-2,
                            out=None, log=lambda *a: None)
    assert bench.main(["--models", "small", "--batch-size", "-2", "--matmul-n", "8",
                       "--out", str(tmp_path / "x.json")]) == 2


def test_compile_flag_keeps_the_fast_path(images):
    # skorch's own compile=True wraps the module in torch.compile; the "eager"
    # backend checks the wiring (channels-last first, then compile) in seconds.
    X, y = images
    net = make_classifier(valid=(X[:8], y[:8]), checkpoint=False, compile=True,
                          compile__backend="eager", **_quiet(batch_size=8))
    net.fit(X[:16], y[:16])
    assert type(net.module_).__name__ == "OptimizedModule"
    assert np.isfinite(net.history[-1, "train_loss"]) and net.predict(X[:3]).shape == (3,)
    flops = model_flops(net.module_._orig_mod)
    assert flops["forward"] == model_flops(AlexNetSmall())["forward"]


@pytest.mark.parametrize("size", [67, 28])
def test_input_adapter_lookup_table_is_exact(size):
    # On the CPU, uint8 pixels are normalised through a 256-entry table; it must
    # give bit for bit what the plain tensor operations give (and do on a GPU).
    import torch.nn.functional as F

    from course_utils.layers import InputAdapter

    x = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(1))
    x.view(-1)[:256] = torch.arange(256, dtype=torch.uint8)  # every value once
    adapter = InputAdapter(size)
    expected = (x.float().div_(255.0) - adapter.mean) / adapter.std
    if size != 28:
        expected = F.interpolate(expected, size=(size, size), mode="bilinear",
                                 align_corners=False)
    for inp in (x, x[:, 0], x.transpose(2, 3).transpose(2, 3).contiguous(
            memory_format=torch.channels_last)):
        out = adapter(inp)
        assert out.dtype == torch.float32 and out.shape == (6, 1, size, size)
        assert torch.equal(out, expected)
        assert out.is_contiguous(memory_format=torch.channels_last)
