import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils import plots  # noqa: E402
from course_utils.data import CLASSES  # noqa: E402


@pytest.fixture
def fake_predictions():
    rng = np.random.default_rng(0)
    y_true = np.arange(40) % 10
    y_pred = np.where(rng.random(40) < 0.7, y_true, (y_true + 1) % 10)
    proba = rng.dirichlet(np.ones(10), size=40)
    images = rng.integers(0, 256, (40, 1, 28, 28), dtype=np.uint8)
    return images, y_true, y_pred, proba


def _labelled(ax):
    return ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_history_plot_has_both_curves_and_legends():
    history = [{"epoch": e, "train_loss": 1 / e, "valid_loss": 1.2 / e, "train_acc": 0.5 + e / 10,
                "valid_acc": 0.45 + e / 10} for e in (1, 2, 3)]
    fig = plots.plot_history(history)
    for ax in fig.axes:
        assert _labelled(ax) and len(ax.get_lines()) == 2
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "valid"]


def test_confusion_matrix_uses_class_names(fake_predictions):
    _, y_true, y_pred, _ = fake_predictions
    fig = plots.plot_confusion_matrix(y_true, y_pred, CLASSES)
    ax = fig.axes[0]
    assert _labelled(ax)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES)


def test_misclassified_gallery_captions(fake_predictions):
    images, y_true, y_pred, proba = fake_predictions
    fig = plots.plot_misclassified(images, y_true, y_pred, proba, CLASSES, n=6)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == min(6, int((y_true != y_pred).sum()))
    assert all("true:" in t and "pred:" in t for t in titles)


def test_class_samples_and_balance(fake_predictions):
    images, y_true, _, _ = fake_predictions
    fig = plots.plot_class_samples(images, y_true, CLASSES, per_class=3)
    assert len(fig.axes) == 30 and fig._suptitle.get_text()
    fig = plots.plot_class_balance({"train": y_true, "test": y_true[:20]}, CLASSES)
    ax = fig.axes[0]
    assert _labelled(ax) and len(ax.get_legend().get_texts()) == 2
