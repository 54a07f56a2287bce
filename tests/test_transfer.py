"""Transfer learning helpers and loading weights from local files (nothing is downloaded)."""
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
import torchvision

from course_utils.config import PROFILES, CourseError
from course_utils.data import Splits
from course_utils.models import AlexNetSmall
from course_utils.pretrained import ImageNetWeightsError, TorchvisionAlexNet
from course_utils.training import dead_unit_share
from course_utils.lessons.ch11_transfer import (SOURCE_CLASSES, TARGET_CLASSES, MissingWeightsError,
                                                bound_checks, class_subset,
                                                default_torchvision_path, display_path,
                                                feature_report, from_torchvision, frozen_verdict,
                                                layer_features, linear_probe, load_pretrained,
                                                paper_table, save_weights, transfer_differences,
                                                transfer_model, transfer_splits, transfer_tasks,
                                                transfer_verdict)


def fake_splits(n=400):
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % 10
    return Splits(X, y, X[:200], y[:200], X[:300], y[:300], tuple("abcdefghij"), "smoke", "fake")


def test_class_subset_keeps_and_relabels_only_the_chosen_classes():
    X = torch.arange(20).view(20, 1, 1, 1)
    y = torch.arange(20) % 10
    Xs, ys = class_subset(X, y, (7, 3))
    assert sorted(ys.tolist()) == [0, 0, 1, 1]
    assert set((X[y == 7]).flatten().tolist()) == set(Xs[ys == 0].flatten().tolist())


def test_transfer_tasks_split_the_classes_and_take_few_shots():
    source, target = transfer_tasks(fake_splits(), dict(pretrain=100, shots=4, valid=50, test=60))
    assert len(source.y_train) == 100 and len(target.y_train) == 20
    assert torch.bincount(target.y_train).tolist() == [4] * 5
    assert source.classes == tuple("abcde") and target.classes == tuple("fghij")
    assert set(SOURCE_CLASSES).isdisjoint(TARGET_CLASSES)


def trainable_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_transfer_model_modes_copy_and_freeze_the_right_layers():
    torch.manual_seed(1)
    source = AlexNetSmall(num_classes=5)
    frozen = transfer_model(source, "frozen")
    tuned = transfer_model(source, "finetune")
    scratch = transfer_model(source, "scratch")
    for m in (frozen, tuned):
        assert torch.equal(m.features.conv1.weight, source.features.conv1.weight)
        assert torch.equal(m.classifier.fc7.weight, source.classifier.fc7.weight)
    assert not torch.equal(scratch.features.conv1.weight, source.features.conv1.weight)
    assert not any(p.requires_grad for p in frozen.features.parameters())
    assert all(p.requires_grad for p in frozen.classifier.parameters())  # fc6-fc8 train
    assert all(p.requires_grad for p in tuned.parameters())
    conv = sum(p.numel() for p in source.features.parameters())
    assert trainable_parameters(tuned) - trainable_parameters(frozen) == conv
    with pytest.raises(CourseError):
        transfer_model(source, "partial")
    with pytest.raises(CourseError):
        transfer_model(None, "frozen")


def test_a_frozen_model_keeps_its_convolutions_during_training():
    torch.manual_seed(0)
    model = transfer_model(AlexNetSmall(num_classes=5), "frozen")
    before = model.features.conv2.weight.clone()
    fc8 = model.classifier.fc8.weight.clone()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    loss = torch.nn.functional.cross_entropy(model(x), torch.arange(8) % 5)
    loss.backward()
    opt.step()
    assert torch.equal(model.features.conv2.weight, before)
    assert not torch.equal(model.classifier.fc8.weight, fc8)


def test_load_pretrained_round_trips_course_weights(tmp_path):
    torch.manual_seed(0)
    model = AlexNetSmall(num_classes=5)
    path = save_weights(model, tmp_path / "sub" / "small.pt")
    loaded = load_pretrained(path, AlexNetSmall(num_classes=5))
    assert torch.equal(loaded.classifier.fc8.bias, model.classifier.fc8.bias)
    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    model.eval(), loaded.eval()
    assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_load_pretrained_reads_imagenet_files_with_the_one_imagenet_loader(tmp_path):
    from course_utils.pretrained import ImageNetNormalize

    torch.manual_seed(0)
    tv = torchvision.models.alexnet(weights=None)  # random weights: no download
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(tv.state_dict(), path)
    model = load_pretrained(path)
    assert isinstance(model, TorchvisionAlexNet)
    assert torch.equal(model.features.conv1.weight, tv.features[0].weight)
    x = torch.rand(2, 3, 224, 224)
    tv.eval()
    with torch.no_grad():  # torchvision's network, with its input normalisation inside
        assert torch.allclose(model(x), tv(ImageNetNormalize()(x)), atol=1e-4)
    # into a given model, torchvision's layer names are translated
    into = load_pretrained(path, TorchvisionAlexNet())
    assert torch.equal(into.classifier.fc8.weight, tv.classifier[6].weight)


def test_load_pretrained_explains_a_missing_file(tmp_path):
    for model in (None, AlexNetSmall()):
        with pytest.raises(MissingWeightsError, match="no weights file"):
            load_pretrained(tmp_path / "nope.pth", model)
    assert issubclass(MissingWeightsError, CourseError)
    assert issubclass(MissingWeightsError, FileNotFoundError)
    assert default_torchvision_path().name == "alexnet-owt-7be5be79.pth"


def test_load_pretrained_rejects_files_that_do_not_fit(tmp_path):
    small = save_weights(AlexNetSmall(num_classes=5), tmp_path / "five.pt")
    with pytest.raises(ImageNetWeightsError, match="wrong shape"):
        load_pretrained(small, AlexNetSmall(num_classes=10))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    for model in (None, AlexNetSmall()):
        with pytest.raises(ImageNetWeightsError, match="neither"):
            load_pretrained(junk, model)
    other = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(ImageNetWeightsError, match="not torchvision's AlexNet"):
        load_pretrained(other)
    with pytest.raises(ImageNetWeightsError, match="missing"):
        load_pretrained(other, AlexNetSmall())


def test_from_torchvision_renames_only_known_layers():
    state = {"features.0.weight": torch.zeros(1), "classifier.6.bias": torch.zeros(1),
             "features.conv2.weight": torch.zeros(1)}
    assert list(from_torchvision(state)) == ["features.conv1.weight", "classifier.fc8.bias",
                                             "features.conv2.weight"]


def test_display_path_never_shows_the_home_directory(tmp_path, monkeypatch):
    from pathlib import Path

    from course_utils.config import REPO_ROOT
    assert display_path(REPO_ROOT / "build" / "w.pt") == "build/w.pt"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert display_path(tmp_path / ".cache" / "torch" / "x.pth") == "~/.cache/torch/x.pth"
    assert display_path("~/a.pth") == "~/a.pth"
    assert not display_path(default_torchvision_path()).startswith(str(Path.home()) + "/")


NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "11_transfer_learning.ipynb"


def _notebook_code():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("profile", list(PROFILES))
def test_budget_11_has_what_the_notebook_reads(profile):
    from course_utils.budgets import budget
    from course_utils.lessons.ch11_transfer import MODES

    b = budget("11", profile)
    code = _notebook_code()
    read = set(re.findall(r"""\bb\[["'](\w+)["']\]""", code))
    assert {"pretrain", "pretrain_epochs", "pretrain_batch", "shots", "lrs", "dead_tol",
            "probe_C"} <= read
    for key in read:
        b[key]  # raises KeyError when the row lacks what the notebook reads
    assert b.train == b["shots"] * len(TARGET_CLASSES) and b.variants == len(MODES)
    assert b.seeds >= 2, "paired differences need at least two seeds"
    pretrain, other_rates = b.extra
    assert pretrain["epochs"] == b["pretrain_epochs"] and pretrain["runs"] == b.seeds  # per seed
    # every mode at every candidate rate: the chosen rate's runs are the claim's
    assert other_rates["runs"] == b.seeds * b.variants * (len(b["lrs"]) - 1)
    assert other_rates["epochs"] == b.epochs and other_rates["train"] == b.train
    if b["pretrain"] is not None:
        assert pretrain["train"] == b["pretrain"]
    assert b.bounds["test_acc"] > 0.2 and b.bounds["source_acc"] > 0.2  # above chance (5 classes)
    assert set(b.bounds) <= {"test_acc", "frozen_acc", "source_acc", "probe_acc"}
    assert 0 < b["dead_tol"] <= 1
    lrs = b["lrs"]
    assert 2 <= len(lrs) <= 5 and list(lrs) == sorted(set(lrs)) and 1e-3 in lrs  # Adam's default
    if profile != "smoke":
        assert b.seeds >= 3 and b.test is None and b["pretrain"] is None  # all images
        assert {"frozen_acc", "probe_acc"} <= set(b.bounds)


def test_the_notebook_builds_its_models_at_the_budgets_size():
    code = _notebook_code()
    assert "model_kwargs = dict(b.model[1])" in code
    assert "for k, v in model_kwargs.items()" in code  # pretraining: module__channels=...
    assert code.count("**model_kwargs") >= 3  # loading, the modes, the check
    assert 'select="last"' in code and 'select="best"' not in code


def test_imagenet_exercise_check_accepts_the_reference_and_names_each_mistake(tmp_path):
    import torchvision
    from torch import nn

    from course_utils.config import CourseError
    from course_utils.lessons.ch11_transfer import check_imagenet_transfer, imagenet_transfer_model

    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    answer = imagenet_transfer_model(path, 5)
    assert check_imagenet_transfer(answer, 5).startswith("correct")
    with pytest.raises(CourseError, match="outputs: replace fc8"):
        check_imagenet_transfer(answer, 10)
    for p in answer.parameters():
        p.requires_grad_(True)
    with pytest.raises(CourseError, match="convolutions still learn"):
        check_imagenet_transfer(answer, 5)
    with pytest.raises(CourseError, match="not an AlexNet"):
        check_imagenet_transfer(nn.Sequential(nn.Flatten()), 5)


# --------------------------------------------------------------------------- the measurements

def test_transfer_model_takes_the_networks_size():
    narrow = (8, 16, 24, 24, 16)
    source = AlexNetSmall(num_classes=5, channels=narrow)
    for mode in ("frozen", "finetune", "scratch"):
        model = transfer_model(source, mode, channels=narrow)
        assert model.features.conv5.out_channels == 16
    assert torch.equal(transfer_model(source, "finetune", channels=narrow).features.conv2.weight,
                       source.features.conv2.weight)
    with pytest.raises(CourseError, match="does not match"):
        transfer_model(source, "frozen")  # the default width does not fit


def test_transfer_splits_keep_every_training_image_but_the_validation_hold_out():
    from course_utils.data import CLASSES, FashionMNIST

    g = torch.Generator().manual_seed(0)
    data = FashionMNIST(torch.randint(0, 256, (12_000, 28, 28), dtype=torch.uint8, generator=g),
                        torch.arange(12_000) % 10,
                        torch.randint(0, 256, (600, 28, 28), dtype=torch.uint8, generator=g),
                        torch.arange(600) % 10, CLASSES, "fake")
    splits = transfer_splits("smoke", data=data)
    assert splits.sizes() == {"train": 2_000, "valid": 10_000, "test": 600}
    source, target = transfer_tasks(splits, dict(pretrain=None, shots=3, valid=40, test=None))
    assert len(source.y_train) == 1_000 and len(target.y_train) == 15
    assert len(target.y_test) == 300 and len(target.y_valid) == 40


def _blobs(n, classes=5, dims=16, separable=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, dims, generator=g)
    if separable:
        centres = 4 * torch.randn(classes, dims, generator=torch.Generator().manual_seed(99))
        x = x + centres[y]
    return x, y


def test_a_linear_probe_separates_separable_features_and_not_random_ones():
    (xtr, ytr), (xte, yte) = _blobs(100), _blobs(2_000, seed=1)
    assert linear_probe(xtr, ytr, xte, yte) > 0.95
    (rtr, _), (rte, _) = _blobs(100, separable=False), _blobs(2_000, separable=False, seed=1)
    assert linear_probe(rtr, ytr, rte, yte) < 0.35  # chance is 0.2
    # numpy inputs work the same; the probe standardises, so a scale changes nothing
    assert linear_probe(1e3 * xtr.numpy(), ytr.numpy(), 1e3 * xte.numpy(), yte.numpy()) > 0.95


def _tiny_target(n_train=20, n_test=60):
    g = torch.Generator().manual_seed(3)
    X = torch.randint(0, 256, (n_train + n_test, 1, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.arange(n_train + n_test) % 5
    return Splits(X[:n_train], y[:n_train], X[:10], y[:10], X[n_train:], y[n_train:],
                  tuple("fghij"), "smoke", "fake")


def test_layer_features_are_pool5_and_the_fc_units_after_relu_in_eval_mode():
    torch.manual_seed(0)
    net = AlexNetSmall(num_classes=5, channels=(8, 16, 24, 24, 16), hidden=32).train()
    X = _tiny_target().X_test
    feats = layer_features(net, X, batch_size=7)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "pool5": (60, 16), "fc6": (60, 32), "fc7": (60, 32)}
    assert all((v >= 0).all() for v in feats.values())
    assert net.training  # the mode is restored
    with torch.no_grad():
        net.eval()
        expected = net.classifier.act6(net.classifier.fc6(net.flatten(net.features(net.prep(X)))))
    assert torch.allclose(feats["fc6"], expected, atol=1e-5)  # dropout was off


def test_feature_report_finds_dead_fc_units_and_runs_the_probe():
    torch.manual_seed(0)
    net = AlexNetSmall(num_classes=5, channels=(8, 16, 24, 24, 16), hidden=32)
    target = _tiny_target()
    report = feature_report(net, target)
    assert set(report) == {"probe_acc", "dead_pool5", "dead_fc6", "dead_fc7"}
    assert 0 <= report["probe_acc"] <= 1 and report["dead_fc6"] < 1
    with torch.no_grad():
        net.classifier.fc6.bias.fill_(-1e4)  # every fc6 unit negative before its ReLU
    killed = feature_report(net, target)
    assert killed["dead_fc6"] == 1.0 and killed["dead_fc7"] == 1.0  # fc7 sees only zeros
    assert killed["dead_pool5"] == report["dead_pool5"]


def _runs(values):
    """A runs table: {variant: [(test_acc, train_acc) per seed]}."""
    return pd.DataFrame([{"variant": v, "seed": s, "test_acc": t, "train_acc": tr}
                         for v, rows in values.items() for s, (t, tr) in enumerate(rows)])


def _probes(probe, dead=(0.05, 0.1, 0.05)):
    return pd.DataFrame([{"seed": s, "source_acc": 0.9, "probe_acc": p, "dead_pool5": dead[0],
                          "dead_fc6": dead[1], "dead_fc7": dead[2]} for s, p in enumerate(probe)])


def test_frozen_verdict_says_transfer_loses_when_the_probe_loses_to_scratch_too():
    runs = _runs({"frozen": [(0.72, 0.80), (0.70, 0.85), (0.75, 0.82)],
                  "finetune": [(0.89, 1.0), (0.88, 1.0), (0.90, 1.0)],
                  "scratch": [(0.85, 0.90), (0.84, 0.92), (0.86, 0.90)]})
    out = frozen_verdict(runs, _probes([0.78, 0.77, 0.80]), chance=0.2)
    assert (out["verdict"], out["cause"]) == ("features", "underfits")
    assert out["frozen_minus_scratch"]["verdict"] == "lower"
    assert out["probe_minus_scratch"]["verdict"] == "lower"
    assert out["finetune_minus_scratch"]["verdict"] == "higher"
    text = out["text"]
    assert "loses to training from scratch here" in text and "carry the information" not in text
    assert "The likely reason is the source task" in text and "Sandal" in text
    assert "help where, fixed, they lose" in text and "it underfits" in text
    assert out["scratch"] == pytest.approx((0.85, 0.01))


def test_frozen_verdict_says_the_head_fails_when_the_probe_beats_scratch():
    runs = _runs({"frozen": [(0.45, 0.5), (0.40, 0.55), (0.50, 0.45)],
                  "scratch": [(0.80, 0.9), (0.78, 0.9), (0.82, 0.9)]})
    out = frozen_verdict(runs, _probes([0.84, 0.83, 0.85]), chance=0.2)
    assert (out["verdict"], out["cause"]) == ("head", "underfits")
    assert out["probe_minus_scratch"]["verdict"] == "higher"
    assert out["probe_minus_frozen"]["verdict"] == "higher"
    assert "carry the information (a linear probe on them beats scratch)" in out["text"]
    assert out["finetune_minus_scratch"] is None and "Fine-tuning" not in out["text"]
    # the frozen net fits its images; many dead pool5 units are said
    fits = _runs({"frozen": [(0.45, 1.0), (0.40, 0.98), (0.50, 1.0)],
                  "scratch": [(0.80, 0.9), (0.78, 0.9), (0.82, 0.9)]})
    out = frozen_verdict(fits, _probes([0.84, 0.83, 0.85], dead=(0.5, 0.1, 0.1)), chance=0.2)
    assert out["cause"] == "fits" and "it fits them" in out["text"]
    assert "Many pool5 units are dead" in out["text"]


def test_frozen_verdict_when_the_frozen_net_matches_scratch():
    runs = _runs({"frozen": [(0.84, 0.95), (0.80, 0.97), (0.86, 0.96)],
                  "scratch": [(0.83, 0.95), (0.82, 0.97), (0.85, 0.96)]})
    out = frozen_verdict(runs, _probes([0.76, 0.77, 0.78]), chance=0.2)
    assert out["verdict"] == "transfers" and out["cause"] == "fits"
    assert out["frozen_minus_scratch"]["verdict"] == "inside the noise"
    assert "as well as training from scratch" in out["text"]
    with pytest.raises(CourseError, match="no runs of 'frozen'"):
        frozen_verdict(runs[runs["variant"] != "frozen"], _probes([0.7]), chance=0.2)
    with pytest.raises(CourseError, match="no runs of 'scratch'"):
        frozen_verdict(runs[runs["variant"] != "scratch"], _probes([0.7]), chance=0.2)


def _mode_runs(finetune, scratch, frozen=(0.4, 0.45, 0.5)):
    return _runs({"frozen": [(f, 0.5) for f in frozen], "finetune": [(f, 1.0) for f in finetune],
                  "scratch": [(s, 0.9) for s in scratch]})


def test_finetune_against_scratch_is_paired_and_judged_by_its_spread():
    clear = _mode_runs([0.90, 0.85, 0.88], [0.86, 0.81, 0.85])  # +3 to +4 points every seed
    d = transfer_differences(clear).loc["finetune"]
    assert d["verdict"] == "higher" and d["diff_mean"] == pytest.approx(0.0367, abs=1e-3)
    assert d["p"] < 0.05 and d["t"] > 0
    text = transfer_verdict(clear)
    assert "pretraining raises it" in text and "over 3 seed(s), higher" in text
    noisy = _mode_runs([0.90, 0.82, 0.88], [0.86, 0.85, 0.87])
    assert "pretraining does not change it" in transfer_verdict(noisy)
    assert "inside the noise" in transfer_verdict(noisy)
    worse = _mode_runs([0.80, 0.78, 0.81], [0.86, 0.85, 0.87])
    assert "pretraining lowers it" in transfer_verdict(worse)


def test_paper_table_shows_the_papers_numbers_ours_and_the_frozen_explanation():
    runs = _mode_runs([0.90, 0.85, 0.88], [0.86, 0.81, 0.85])
    out = paper_table(runs, _probes([0.78, 0.76, 0.80]), 0.2, "quick", "cpu").set_index("claim")
    first, second = out.iloc[0], out.iloc[1]
    assert "40.7% -> 39.0%" in first["paper"] and "+1.7 points" in first["paper"]
    assert "+3.7 ± 0.6 points, p = " in first["ours"] and "over 3 seed(s)" in first["ours"]
    assert first["verdict"] == "fine-tune minus scratch: higher (the paper: higher)"
    assert "linear probe on pool5 0.780 ± 0.020" in second["ours"]
    assert "probe minus scratch -6.0 ± 1.7 points" in second["ours"]
    assert second["verdict"] == ("frozen features lose to scratch, and so does a linear probe "
                                 "on them")
    assert set(out["profile"]) == {"quick"}


def test_bound_checks_test_every_seed_and_skip_what_the_budget_does_not_bound():
    runs = _mode_runs([0.90, 0.85, 0.88], [0.86, 0.70, 0.85])
    probes = _probes([0.78, 0.76, 0.80])
    table = bound_checks(runs, probes, {"test_acc": 0.75, "source_acc": 0.5})
    assert list(table.index) == [("test_acc", "finetune"), ("test_acc", "scratch"),
                                 ("source_acc", "source")]
    assert table.loc[("test_acc", "scratch"), "lowest"] == pytest.approx(0.70)  # the worst seed
    assert not table.loc[("test_acc", "scratch"), "ok"]
    assert table.loc[("source_acc", "source"), "ok"]
    with pytest.raises(CourseError, match="bounds none"):
        bound_checks(runs, probes, {})


def test_references_of_notebook_11(capsys):
    import math

    from course_utils.exercises import check, solution
    share = solution("11-1")
    net = AlexNetSmall(num_classes=5, channels=(24, 64, 96, 96, 64))
    fc = sum(p.numel() for p in net.classifier.parameters())
    assert share == pytest.approx(fc / sum(p.numel() for p in net.parameters()), rel=1e-9)
    assert solution("11-2") == math.ceil(100 / 32) * 30
    dead = solution("11-3")
    acts = torch.relu(torch.randn(300, 12))
    acts[:, [2, 5]] = 0
    acts[:, 7] = 0
    acts[1, 7] = 1.0
    assert dead(acts).tolist() == [u in (2, 5, 7) for u in range(12)]
    assert dead(acts, 1.0).tolist() == [u in (2, 5) for u in range(12)]
    for tol in (0.99, 1.0):  # the package's share is the mask's mean
        assert dead(acts, tol).double().mean().item() == pytest.approx(dead_unit_share(acts, tol))
    # 11-4 freezes what transfer_model(..., "frozen") freezes, and returns the rest's names
    freeze = solution("11-4")
    source = AlexNetSmall(num_classes=5)
    frozen, tuned = transfer_model(source, "frozen"), transfer_model(source, "finetune")
    names = freeze(tuned, ("features",))
    assert [p.requires_grad for p in tuned.parameters()] == \
        [p.requires_grad for p in frozen.parameters()]
    assert names == [n for n, p in frozen.named_parameters() if p.requires_grad]
    assert names and all(n.startswith("classifier.") for n in names)
    capsys.readouterr()
    assert not check("11-1", 1 - share)
    assert "still trains" in capsys.readouterr().out
    assert not check("11-3", lambda a, tol=0.99: (a == 0).all(0))
    assert "counts as dead too" in capsys.readouterr().out


def _freeze(weights=True, biases=True, everything=False, returned="trainable"):
    def freeze(net, prefixes=("features",)):
        for name, p in net.named_parameters():
            kind_ok = (weights and not name.endswith("bias")) or (biases and name.endswith("bias"))
            if everything or (name.startswith(tuple(prefixes)) and kind_ok):
                p.requires_grad_(False)
        named = list(net.named_parameters())
        return {"trainable": [n for n, p in named if p.requires_grad],
                "all": [n for n, _ in named],
                "frozen": [n for n, p in named if not p.requires_grad],
                "net": net}[returned]
    return freeze


@pytest.mark.parametrize("answer,hint", [
    (_freeze(everything=True), "the head (and every part not named) must keep training"),
    (_freeze(weights=False, biases=False), "nothing was frozen"),
    (_freeze(biases=False), "the biases still learn"),
    (_freeze(returned="all"), "you returned every parameter's name"),
    (_freeze(returned="frozen"), "you returned the frozen parameters' names"),
    (_freeze(returned="net"), "return a list of the names"),
    (lambda net, prefixes=("features",): net.features.requires_grad_(False) and
     [n for n, p in net.named_parameters() if p.requires_grad], "start with a prefix still learn"),
])
def test_exercise_11_4_names_each_common_mistake(capsys, answer, hint):
    from course_utils.exercises import check

    assert check("11-4", _freeze()) and "correct" in capsys.readouterr().out
    assert not check("11-4", answer)
    out = capsys.readouterr().out
    assert hint in out and out.count("\n") == 1, out
