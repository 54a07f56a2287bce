"""Transfer learning helpers and loading weights from local files (nothing is downloaded)."""
import pytest
import torch
import torchvision

from course_utils.config import PROFILES, CourseError
from course_utils.data import Splits
from course_utils.models import AlexNet, AlexNetSmall
from course_utils.experiment import RunResult
from course_utils.lessons.ch11_transfer import (SOURCE_CLASSES, TARGET_CLASSES, MissingWeightsError,
                                                PretrainedWeightsError, class_subset,
                                                default_torchvision_path, display_path,
                                                from_torchvision, load_pretrained, save_weights,
                                                trainable_parameters, transfer_model,
                                                transfer_table, transfer_tasks)


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
    built = load_pretrained(path)  # model built from the file's shapes
    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    model.eval(), built.eval()
    assert torch.allclose(built(x), model(x), atol=1e-5)


def test_load_pretrained_reads_a_torchvision_alexnet_file(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.alexnet(weights=None)  # random weights: no download
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(tv.state_dict(), path)
    model = load_pretrained(path)
    assert isinstance(model, AlexNet) and model.input_size == 227
    assert torch.equal(model.features.conv1.weight, tv.features[0].weight)
    assert torch.equal(model.classifier.fc8.weight, tv.classifier[6].weight)
    x = torch.rand(1, 3, 224, 224)
    tv.eval(), model.eval()
    # Same weights; the course net resizes to 227 and pads conv1 differently, so the
    # outputs are close in ranking rather than equal.
    assert model(x).shape == tv(x).shape == (1, 1000)


def test_load_pretrained_explains_a_missing_file(tmp_path):
    with pytest.raises(MissingWeightsError, match="Nothing is downloaded"):
        load_pretrained(tmp_path / "nope.pth")
    assert issubclass(MissingWeightsError, CourseError)
    assert default_torchvision_path().name == "alexnet-owt-7be5be79.pth"


def test_load_pretrained_rejects_files_that_do_not_fit(tmp_path):
    small = save_weights(AlexNetSmall(num_classes=5), tmp_path / "five.pt")
    with pytest.raises(PretrainedWeightsError, match="wrong shape"):
        load_pretrained(small, AlexNetSmall(num_classes=10))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(PretrainedWeightsError, match="could not read"):
        load_pretrained(junk)
    other = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(PretrainedWeightsError, match="not an AlexNet"):
        load_pretrained(other)
    with pytest.raises(PretrainedWeightsError, match="missing"):
        load_pretrained(other, AlexNetSmall())


def test_from_torchvision_renames_only_known_layers():
    state = {"features.0.weight": torch.zeros(1), "classifier.6.bias": torch.zeros(1),
             "features.conv2.weight": torch.zeros(1)}
    assert list(from_torchvision(state)) == ["features.conv1.weight", "classifier.fc8.bias",
                                             "features.conv2.weight"]


def run(variant, test_acc):
    return RunResult(variant=variant, seed=0, select="best", train_acc=0.9, valid_acc=0.8,
                     test_acc=test_acc, gap=0.1, epochs_run=3, best_epoch=2,
                     train_seconds=1.5, final_train_loss=0.5)


def test_paper_table_compares_finetune_with_scratch():
    from course_utils.lessons.ch11_transfer import paper_table
    runs = [run("frozen", 0.7), run("finetune", 0.8), run("scratch", 0.6)]
    out = paper_table(runs, "smoke", "cpu")
    assert "+20.0 points" in out.loc[0, "ours"] and "0.700" in out.loc[1, "ours"]


def test_transfer_table_reads_run_results_and_the_trainable_counts():
    runs = [run("frozen", 0.7), run("scratch", 0.6)]
    table = transfer_table(runs, {"frozen": 10, "scratch": 100}, "smoke", "cpu")
    assert list(table["mode"]) == ["frozen", "scratch"]
    assert list(table["trainable parameters"]) == [10, 100]
    assert list(table["epochs"]) == [3, 3] and table.loc[0, "train seconds"] == 1.5


def test_display_path_never_shows_the_home_directory(tmp_path, monkeypatch):
    from pathlib import Path

    from course_utils.config import REPO_ROOT
    assert display_path(REPO_ROOT / "build" / "w.pt") == "build/w.pt"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert display_path(tmp_path / ".cache" / "torch" / "x.pth") == "~/.cache/torch/x.pth"
    assert display_path("~/a.pth") == "~/a.pth"
    assert not display_path(default_torchvision_path()).startswith(str(Path.home()) + "/")


@pytest.mark.parametrize("profile", list(PROFILES))
def test_budget_11_has_what_the_notebook_reads(profile):
    from course_utils.budgets import budget
    from course_utils.lessons.ch11_transfer import MODES

    b = budget("11", profile)
    assert b.train == b["shots"] * len(TARGET_CLASSES) and b.variants == len(MODES)
    assert b["pretrain_epochs"] >= 1 and b.extra[0]["epochs"] == b["pretrain_epochs"]
    if b["pretrain"] is not None:
        assert b.extra[0]["train"] == b["pretrain"]
    assert b.bounds["test_acc"] > 0.2  # above chance (5 classes)


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
