"""Augmentation: crops, flips, fancy PCA and the in-model wrapper (no training)."""
import numpy as np
import pytest
import torch

from course_utils.config import PROFILES, CourseError
from course_utils.layers import (AugmentError, BatchAugment, crop, gray_lighting, random_crop,
                                 random_flip)
from course_utils.lessons.ch08_augmentation import FancyPCA
from course_utils.models import AlexNetSmall, AugmentedAlexNetSmall


def batch(n=6, c=1, side=8):
    return torch.arange(n * c * side * side, dtype=torch.float32).reshape(n, c, side, side)


def test_crop_cuts_the_requested_patch_per_image():
    x = batch()
    top, left = torch.tensor([0, 1, 2, 3, 0, 4]), torch.tensor([4, 3, 2, 1, 0, 0])
    out = crop(x, top, left, 4)
    assert out.shape == (6, 1, 4, 4)
    for i in range(6):
        r, c = int(top[i]), int(left[i])
        assert torch.equal(out[i], x[i, :, r:r + 4, c:c + 4])


def test_crop_rejects_bad_sizes_and_offsets():
    with pytest.raises(AugmentError):
        crop(batch(), 0, 0, 9)
    with pytest.raises(AugmentError):
        crop(batch(), 5, 0, 4)
    with pytest.raises(CourseError):
        crop(torch.zeros(8, 8), 0, 0, 4)  # no batch dimension


def test_random_crop_shifts_within_padding_and_keeps_dtype():
    torch.manual_seed(0)
    x = torch.zeros(200, 1, 10, 10, dtype=torch.uint8)
    x[:, :, 5, 5] = 255  # a single bright pixel
    out = random_crop(x, padding=2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    rows, cols = torch.nonzero(out[:, 0] == 255, as_tuple=True)[1:]
    assert len(rows) == 200  # the pixel is never cropped away
    assert rows.min() >= 3 and rows.max() <= 7 and cols.min() >= 3 and cols.max() <= 7
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # shifts really vary


def test_random_flip_mirrors_about_half_and_only_mirrors():
    torch.manual_seed(0)
    x = batch(n=400)
    out = random_flip(x)
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same | flipped).all())
    assert 150 < int(flipped.sum()) < 250
    assert torch.equal(random_flip(x, p=0.0), x)
    with pytest.raises(AugmentError):
        random_flip(x, p=1.5)


def test_fancy_pca_recovers_a_known_colour_axis():
    g = torch.Generator().manual_seed(0)
    axis = torch.tensor([1.0, 1.0, 0.0]) / 2 ** 0.5
    t = torch.randn(4, 1, 16, 16, generator=g) * 0.2  # variation only along `axis`
    imgs = 0.5 + t * axis[None, :, None, None] + 0.001 * torch.randn(4, 3, 16, 16, generator=g)
    pca = FancyPCA.fit(imgs)
    assert pca.eigenvalues[0] == pytest.approx(0.04, rel=0.1)
    assert abs(float(pca.eigenvectors[:, 0] @ axis)) == pytest.approx(1.0, abs=1e-3)
    assert pca.eigenvalues[0] > 100 * pca.eigenvalues[1]


def test_fancy_pca_adds_the_same_offset_to_every_pixel():
    pca = FancyPCA([0.04, 0.01, 0.0], torch.eye(3), scale="std")
    x = torch.full((2, 3, 4, 4), 0.5)
    out = pca(x, alphas=torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]))
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([0.7, 0.5, 0.5]))
    assert torch.allclose(out[1, :, 0, 0], torch.tensor([0.5, 0.4, 0.5]))
    assert torch.allclose(out, out[:, :, :1, :1].expand_as(out))
    literal = FancyPCA([0.04, 0.01, 0.0], torch.eye(3), scale="eigenvalue")
    assert torch.allclose(literal(x, alphas=torch.tensor([[1.0, 0, 0]] * 2))[0, 0],
                          torch.tensor(0.54))


def test_fancy_pca_fits_an_hwc_photo_and_checks_channels():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    pca = FancyPCA.fit(photo)
    assert pca.channels == 3 and torch.all(pca.eigenvalues[:-1] >= pca.eigenvalues[1:])
    with pytest.raises(AugmentError):
        pca(torch.zeros(2, 1, 4, 4))
    with pytest.raises(AugmentError):
        FancyPCA([1.0, 2.0], torch.eye(3))


def test_gray_lighting_is_a_brightness_shift_with_the_paper_spread():
    torch.manual_seed(0)
    x = torch.full((2000, 1, 2, 2), 0.5)
    out = gray_lighting(x, sigma=0.3, alpha_std=0.1)
    shifts = (out - x)[:, 0].flatten(1)
    assert torch.allclose(shifts, shifts[:, :1].expand_as(shifts))  # one shift per image
    assert float(shifts[:, 0].std()) == pytest.approx(0.03, rel=0.1)


def test_batch_augment_is_identity_in_eval_mode_and_changes_in_train_mode():
    x = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    aug = BatchAugment(padding=2, flip=True, lighting=0.1)
    assert torch.equal(aug.eval()(x), x)
    torch.manual_seed(0)
    out = aug.train()(x)
    assert out.dtype == torch.float32 and out.shape == (16, 1, 28, 28)
    assert not torch.allclose(out, x.float() / 255)


def test_augmented_model_has_plain_weights_and_augments_only_in_training():
    model = AugmentedAlexNetSmall(augment_padding=2, augment_lighting=0.1)
    plain = AlexNetSmall()
    assert model.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(model.state_dict())
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    model.eval(), plain.eval()
    assert torch.allclose(model(x), plain(x), atol=1e-5)


def test_gray_lighting_draws_what_a_one_channel_fancy_pca_draws():
    x = torch.rand(5, 1, 6, 6)
    a = gray_lighting(x, 0.35, 0.1, generator=torch.Generator().manual_seed(3))
    b = FancyPCA([0.35 ** 2], [[1.0]], 0.1)(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(AugmentError):
        gray_lighting(torch.rand(2, 3, 4, 4), 0.35)


def _aug_runs(test_gain, gap_cut, light_gain, base_gap=0.12):
    """run_variants-shaped rows for the three variants on 3 seeds, with per-seed noise."""
    import pandas as pd

    rows = []
    for seed, noise in zip(range(3), (-0.001, 0.0, 0.001)):
        base = 0.85 + noise
        for variant, test, gap in (("none", base, base_gap),
                                   ("crops + flips", base + test_gain + noise, base_gap - gap_cut),
                                   ("crops + flips + lighting", base + test_gain + light_gain,
                                    base_gap - gap_cut + noise)):
            rows.append({"variant": variant, "seed": seed, "test_acc": test,
                         "valid_acc": test, "train_acc": test + gap, "gap": gap})
    return pd.DataFrame(rows)


def test_paper_table_gives_units_signs_and_verdicts_from_the_seeds():
    from course_utils.lessons.ch08_augmentation import paper_table

    out = paper_table(_aug_runs(0.01, 0.06, 0.0), "quick", "cpu").set_index("claim")
    ours = list(out["ours"])
    assert ours[0].startswith("train - valid gap (eval mode, points): none 12.0")
    assert "change -6.0" in ours[0] and ", lower" in ours[0]
    assert ours[0].endswith("less overfitting: the gap narrowed and validation accuracy rose")
    assert ours[1].startswith("change (points), crops + flips minus none: validation +1.0 ±")
    assert "; test +1.0 ±" in ours[1]
    assert "p = " in ours[1] and "over 3 seed(s)" in ours[1] and ours[1].endswith(", higher")
    assert "inside the noise" in ours[2] and "(grayscale analogue)" in ours[2]
    assert set(out["profile"]) == {"quick"}


def test_the_differences_include_validation_accuracy_with_t_and_p():
    from course_utils.lessons.ch08_augmentation import augmentation_differences

    diffs = augmentation_differences(_aug_runs(0.01, 0.06, 0.0))
    assert set(diffs.index.get_level_values("metric")) == {"test_acc", "gap", "valid_acc"}
    assert {"t", "p", "verdict"} <= set(diffs.columns)
    assert diffs.loc[("valid_acc", "crops + flips"), "verdict"] == "higher"


def test_a_budget_that_runs_fewer_variants_compares_what_it_ran():
    from course_utils.lessons.ch08_augmentation import (augmentation_differences,
                                                        augmentation_verdict, paper_table)

    runs = _aug_runs(0.02, 0.06, 0.0)
    two = runs[runs["variant"] != "crops + flips + lighting"]
    diffs = augmentation_differences(two)
    assert set(diffs.index.get_level_values("variant")) == {"crops + flips"}
    assert len(paper_table(two, "quick", "cpu")) == 2
    assert "Lighting" not in augmentation_verdict(two, gap_bound=0.08)
    with pytest.raises(AugmentError, match="no pair of variants"):
        augmentation_differences(runs[runs["variant"] == "none"])


def test_the_verdict_follows_the_numbers_either_way():
    from course_utils.lessons.ch08_augmentation import augmentation_verdict

    helps = augmentation_verdict(_aug_runs(0.02, 0.06, 0.015), gap_bound=0.08)
    assert "so they overfit" in helps
    assert "Crops and flips raise validation accuracy" in helps
    assert "and raise test accuracy" in helps
    assert "less overfitting: the gap narrowed and validation accuracy rose" in helps
    assert "Crops and flips pay here" in helps
    assert "reaches the paper's 'over 1 point'" in helps
    hurts = augmentation_verdict(_aug_runs(-0.02, -0.03, 0.0), gap_bound=0.2)
    assert "below this profile's overfitting bound" in hurts
    assert "Crops and flips lower validation accuracy" in hurts
    assert "more overfitting: the gap widened and validation accuracy fell" in hurts
    assert "does not show on validation or test accuracy" in hurts
    assert "does not show here" in hurts


def test_a_narrower_gap_without_better_validation_reads_as_underfitting():
    from course_utils.lessons.ch08_augmentation import augmentation_verdict

    # the gap narrows by 6 points on every seed, validation accuracy does not move
    text = augmentation_verdict(_aug_runs(0.0, 0.06, 0.0), gap_bound=0.08)
    first = text.splitlines()[1]
    assert first.startswith("Crops and flips do not change validation accuracy")
    assert "lower training accuracy (underfitting)" in first
    assert "less overfitting" not in text
    assert "does not show on validation or test accuracy" in text


class _History:
    """Enough of a skorch history for curve_changes: ``history[:, key]``."""

    def __init__(self, **curves):
        self.curves = curves

    def __getitem__(self, index):
        return self.curves[index[1]]


class _Net:
    def __init__(self, **curves):
        self.history = _History(**curves)


def test_curve_changes_say_which_curves_still_rise():
    from course_utils.lessons.ch08_augmentation import augmentation_verdict, curve_changes

    flat = [0.5] * 8 + [0.80, 0.80, 0.80, 0.80]
    nets = {}
    for seed, step in enumerate((0.010, 0.012, 0.011)):
        rising = [0.5 + step * i for i in range(12)]
        nets[("none", seed)] = _Net(valid_acc=[v + 0.001 * seed for v in flat])
        nets[("crops + flips", seed)] = _Net(valid_acc=rising)
    changes = curve_changes(nets, last=10, keys=("valid_acc",))
    none, aug = changes.loc[("valid_acc", "none")], changes.loc[("valid_acc", "crops + flips")]
    assert none["epochs"] == 10 and none["verdict"] == "higher"  # 0.5 -> 0.8 within the window
    assert aug["change_mean"] == pytest.approx(0.11) and aug["verdict"] == "higher"
    short = curve_changes(nets, last=3, keys=("valid_acc",))
    assert short.loc[("valid_acc", "none"), "change_mean"] == pytest.approx(0.0)
    assert short.loc[("valid_acc", "none"), "verdict"] == "inside the noise"
    text = augmentation_verdict(_aug_runs(0.02, 0.06, 0.0), 0.08, short)
    assert "Over the last 3 epochs validation accuracy changed by none +0.0" in text
    assert "still rising for crops + flips" in text and "had not converged" in text
    long = curve_changes(nets, last=50, keys=("valid_acc",))  # cut to the runs' length
    assert set(long["epochs"]) == {11}
    with pytest.raises(CourseError):
        curve_changes(nets, last=0)


@pytest.mark.parametrize("profile", list(PROFILES))
def test_budget_08_has_what_the_notebook_reads(profile):
    from course_utils.budgets import budget
    from course_utils.lessons.ch08_augmentation import VARIANT_NAMES
    from course_utils.models import feature_side

    b = budget("08", profile)
    names = b["augmentations"]
    assert b.variants == len(names) and set(names) <= set(VARIANT_NAMES)
    assert b.epochs >= 2 and b.batch_size >= 1 and 1 <= b["flat_epochs"] < b.epochs
    assert b.bounds["test_acc"] > 0.1  # above chance (10 classes)
    assert {"channels", "hidden", "dropout", "eval_images", "input_size", "padding", "lighting",
            "select"} <= set(b.settings)
    assert b.model[1]["input_size"] == b["input_size"]  # the cost is the trained net's
    assert b.model[1]["hidden"] == b["hidden"]
    assert feature_side(b["input_size"]) >= 2  # pool5 larger than 1x1
    if profile != "smoke":  # the claim needs seeds to measure spread, and nets that overfit
        assert b.seeds >= 3 and b.bounds["gap"] > 0.05 and b["dropout"] == 0.0
