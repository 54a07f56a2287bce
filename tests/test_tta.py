"""10-crop test-time augmentation (no training)."""
import pytest
import torch
from torch import nn

from course_utils.config import PROFILES
from course_utils.layers import AugmentError
from course_utils.lessons.ch10_ten_crops import (VIEWS, ten_crops, tta_accuracies, tta_table,
                                                 view_probabilities)
from course_utils.models import AlexNetSmall


def test_ten_crops_are_centre_corners_and_mirrors():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    views = ten_crops(x, padding=0, size=4)
    assert views.shape == (10, 2, 1, 4, 4) and len(VIEWS) == 10
    assert torch.equal(views[0], x[:, :, 1:5, 1:5])  # centre
    assert torch.equal(views[1], x[:, :, :4, :4])  # top-left
    assert torch.equal(views[4], x[:, :, 2:, 2:])  # bottom-right
    for i in range(5):
        assert torch.equal(views[5 + i], views[i].flip(-1))


def test_ten_crops_with_padding_keep_the_size_and_the_centre_is_the_image():
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    views = ten_crops(x, padding=2)
    assert views.shape == (10, 3, 1, 28, 28) and views.dtype == torch.uint8
    assert torch.equal(views[0], x)
    assert torch.equal(views[1][:, :, 2:, 2:], x[:, :, :26, :26])  # shifted down-right


def test_ten_crops_reject_odd_margins_and_big_crops():
    with pytest.raises(AugmentError):
        ten_crops(torch.zeros(1, 1, 6, 6), padding=0, size=5)
    with pytest.raises(AugmentError):
        ten_crops(torch.zeros(1, 1, 6, 6), padding=0, size=8)


class Lookup(nn.Module):
    """A fake classifier whose logits are the mean of the left and right halves."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        x = x.float()
        half = x.shape[-1] // 2
        return torch.stack([x[..., :half].mean((1, 2, 3)), x[..., half:].mean((1, 2, 3))], 1) * 50


def test_view_probabilities_average_flips_symmetrically():
    x = torch.zeros(4, 1, 8, 8)
    x[:, :, :, :3] = 1.0  # bright on the left: the centre view says class 0
    views, seconds = view_probabilities(Lookup(), x, padding=0 + 2)
    assert views.shape == (10, 4, 2) and seconds >= 0
    assert torch.allclose(views.sum(-1), torch.ones(10, 4))
    assert bool((views[0].argmax(1) == 0).all()) and bool((views[5].argmax(1) == 1).all())
    accs = tta_accuracies(views, torch.zeros(4, dtype=torch.long))
    assert accs["centre crop (1 view)"] == 1.0
    assert accs["centre + flip (2 views)"] in (0.0, 1.0)  # a tie at exactly 0.5 goes to class 0


def test_tta_table_on_a_real_model_counts_views_and_costs():
    torch.manual_seed(0)
    model = AlexNetSmall()
    x = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (6,))
    table = tta_table(model, x, y, profile="smoke", device="cpu")
    assert list(table["forward passes per image"]) == [1, 2, 5, 10]
    assert table.loc[0, "gain vs centre (points)"] == 0
    assert table.attrs["seconds"]["ten"] > 0
    with torch.no_grad():
        probs = torch.softmax(model.eval()(x), 1)
    views, _ = view_probabilities(model, x)
    assert torch.allclose(probs, views[0], atol=1e-5)  # the centre view is the plain image


class _Net:
    def __init__(self, module):
        self.module_ = module


def _per_seed(gains):
    """seed_tables-shaped rows: centre accuracy 0.88 + noise, ten views that much better."""
    import pandas as pd

    from course_utils.lessons.ch10_ten_crops import CENTRE, TEN
    rows = []
    for seed, gain in enumerate(gains):
        centre = 0.88 + 0.001 * seed
        for test, acc in ((CENTRE, centre), (TEN, centre + gain)):
            rows.append({"seed": seed, "test": test, "accuracy": acc, "centre s": 0.4,
                         "ten s": 6.0})
    return pd.DataFrame(rows)


def test_seed_tables_give_one_table_per_net():
    from course_utils.lessons.ch10_ten_crops import AUGMENTED, CENTRE, PLAIN, seed_tables
    torch.manual_seed(0)
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    nets = {(AUGMENTED, 3): _Net(AlexNetSmall()), (AUGMENTED, 4): _Net(AlexNetSmall())}
    t = seed_tables(nets, x, torch.arange(4))
    assert sorted(set(t["seed"])) == [3, 4] and len(t) == 8
    assert (t[t["test"] == CENTRE]["gain vs centre (points)"] == 0).all()
    assert (t["ten s"] > 0).all() and (t["centre s"] > 0).all()
    # two trainings per seed: one table per training, picked by its variant
    nets[(PLAIN, 3)] = _Net(AlexNetSmall())
    with pytest.raises(ValueError, match="several nets per seed"):
        seed_tables(nets, x, torch.arange(4))
    plain = seed_tables(nets, x, torch.arange(4), variant=PLAIN)
    assert list(plain["seed"].unique()) == [3] and len(plain) == 4
    with pytest.raises(ValueError, match="no net of variant"):
        seed_tables(nets, x, torch.arange(4), variant="lighting")


def test_claim_table_verdict_and_allowed_loss_follow_the_seeds():
    from course_utils.lessons.ch10_ten_crops import (allowed_loss, paper_table, ten_crop_gains,
                                                     ten_crop_verdict)
    gains = _per_seed([0.006, 0.007, 0.008])
    out = paper_table(gains, "quick", "cpu")
    assert "gain +0.70 ± 0.10 points, p = " in out.loc[0, "ours"]
    assert out.loc[0, "ours"].endswith("over 3 seed(s), higher")
    assert out.loc[1, "ours"].startswith("15.0 ± 0.0x the time of one view (6.0 s against 0.40 s")
    better = ten_crop_verdict(gains)
    assert better.startswith("Averaging the ten views raises test accuracy") and "+0.70" in better
    assert "lowers test accuracy" in ten_crop_verdict(_per_seed([-0.006, -0.007, -0.008]))
    noisy = _per_seed([0.01, -0.01, 0.0])
    verdict = ten_crop_verdict(noisy)
    assert "does not change" in verdict and "inside the noise" in verdict
    assert list(ten_crop_gains(noisy).round(4)) == [0.01, -0.01, 0.0]
    assert allowed_loss(noisy, 0.07) == 0.07 and allowed_loss(_per_seed([0.01])) == 0.0


def test_the_allowed_loss_is_where_the_paired_t_test_starts_to_say_lower():
    import numpy as np

    from course_utils.experiment import paired_test
    from course_utils.lessons.ch10_ten_crops import allowed_loss, ten_crop_gains

    for gains in ([0.01, -0.01, 0.0], [0.004, 0.009, 0.002, 0.006, 0.005]):
        g = ten_crop_gains(_per_seed(gains)).to_numpy()
        allowed = allowed_loss(_per_seed(gains))
        at_edge = g - g.mean() - allowed  # the same spread, a mean loss of exactly `allowed`
        assert paired_test(at_edge, np.zeros_like(g))["p"] == pytest.approx(0.05, rel=1e-6)
        beyond = paired_test(at_edge - 1e-4, np.zeros_like(g))
        assert beyond["verdict"] == "lower"
        within = paired_test(at_edge + 1e-4, np.zeros_like(g))
        assert within["verdict"] == "inside the noise"
        # a stricter level allows a larger loss
        assert allowed_loss(_per_seed(gains), alpha=0.01) > allowed


def _trainings(plain_centre, cost, ten_gain, plain_gain):
    """seed_tables-shaped tables of a plain and an augmented training, per seed: the plain
    centre crop's accuracy, and the differences given (fractions, one per seed)."""
    import pandas as pd

    from course_utils.lessons.ch10_ten_crops import AUGMENTED, CENTRE, PLAIN, TEN

    def table(centre, ten):
        return pd.DataFrame([{"seed": s, "test": test, "accuracy": acc}
                             for s, (c, t) in enumerate(zip(centre, ten))
                             for test, acc in ((CENTRE, c), (TEN, t))])

    aug = [c + d for c, d in zip(plain_centre, cost)]
    return {AUGMENTED: table(aug, [a + g for a, g in zip(aug, ten_gain)]),
            PLAIN: table(plain_centre, [c + g for c, g in zip(plain_centre, plain_gain)])}


def test_the_plain_baseline_is_paired_seed_by_seed_and_read_in_prose():
    from course_utils.experiment import paired_differences
    from course_utils.lessons.ch10_ten_crops import (PLAIN_CENTRE, baseline_verdict,
                                                     training_pairs)

    centre = [0.900, 0.905, 0.902]
    tables = _trainings(centre, [-0.017, -0.016, -0.018], [0.005, 0.006, 0.004],
                        [0.001, -0.001, 0.0])
    pairs = training_pairs(tables)
    assert set(pairs["variant"]) == {"crops + flips, centre", "crops + flips, 10 crops",
                                     "plain, centre", "plain, 10 crops"}
    assert len(pairs) == 12 and set(pairs["seed"]) == {0, 1, 2}
    diffs = paired_differences(pairs, PLAIN_CENTRE, "accuracy")
    assert diffs.loc["crops + flips, centre", "diff_mean"] == pytest.approx(-0.017)
    assert diffs.loc["crops + flips, 10 crops", "diff_mean"] == pytest.approx(-0.012)
    lines = baseline_verdict(diffs).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("Training with crops and flips lowers centre-crop test accuracy")
    assert "-1.70 ± 0.10 points" in lines[0]
    assert "still below the plain nets' single view" in lines[1]
    assert "win back 29% of what the training augmentation cost" in lines[1]
    assert "the ten views do not change test accuracy" in lines[2]

    level = baseline_verdict(paired_differences(training_pairs(_trainings(
        centre, [-0.017, -0.016, -0.018], [0.012, 0.019, 0.020], [0.004, 0.005, 0.006])),
        PLAIN_CENTRE, "accuracy")).splitlines()
    assert "level with the plain nets' single view" in level[1]
    assert "the ten views raise test accuracy" in level[2]
    free = baseline_verdict(paired_differences(training_pairs(_trainings(
        centre, [0.002, -0.003, 0.001], [0.008, 0.009, 0.007], [0.0, 0.0, 0.0])),
        PLAIN_CENTRE, "accuracy")).splitlines()
    assert free[0].startswith("Training with crops and flips does not change")
    assert free[1].startswith("Against the plain nets' single view, the augmented nets' ten "
                              "views raise test accuracy")


@pytest.mark.parametrize("profile", list(PROFILES))
def test_budget_10_has_what_the_notebook_reads(profile):
    from course_utils.budgets import budget

    b = budget("10", profile)
    assert b.variants == 2 and b.bounds["test_acc"] > 0.1  # crops + flips, and plain
    assert {"channels", "dropout", "padding", "select"} <= set(b.settings)
    if profile == "smoke":
        assert 0 < b.bounds["ten_crop_loss"] < 0.1  # a pipeline bound
    else:  # studied on trained nets, over seeds; the loss allowed is the measured noise
        assert b.seeds >= 3 and b.bounds["test_acc"] >= 0.88 and b.bounds["ten_crop_loss"] is None


def test_notebook_13_classifies_in_eval_mode_and_cuts_the_ten_views_of_notebook_10():
    import inspect

    from torch import nn

    from course_utils.config import BUILD_DIR
    from course_utils.lessons.ch13_imagenet_photos import (classify, notebook_labels,
                                                           ten_crop_probabilities,
                                                           ten_crop_views)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5), nn.Dropout(0.5)).train()
    x = torch.rand(4, 3, 8, 8)
    probs = classify(model, x)
    with torch.no_grad():
        expected = torch.softmax(model.eval()(x), 1)  # dropout off: the same every call
    assert torch.allclose(probs, expected) and torch.allclose(probs.sum(1), torch.ones(4))
    photo = (torch.rand(300, 260, 3) * 255).to(torch.uint8).numpy()
    views = ten_crop_views(photo, 224)
    assert views.shape == (10, 3, 224, 224)
    assert torch.equal(views[5], views[0].flip(-1))  # the centre crop's mirror
    tiny = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 7)).train()
    average = ten_crop_probabilities(tiny, photo, 227)
    assert average.shape == (7,) and torch.allclose(average.sum(), torch.tensor(1.0))
    assert torch.allclose(average, classify(tiny, ten_crop_views(photo, 227)).mean(0))
    default = inspect.signature(notebook_labels).parameters["example_dir"].default
    assert default == BUILD_DIR / "imagenet"
