"""course_utils.lessons.ch03_pooling: the arithmetic and pictures of notebook 03."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils.lessons import ch03_pooling as P
from course_utils.models import AlexNetSmall


def test_alexnet_chain_227():
    assert P.side_chain(227) == "227 -> 55 -> 27 -> 13 -> 6"
    t = P.alexnet_shape_table(227)
    assert t.loc["conv1", "exact"] and t.loc["conv1", "unused pixels"] == 0
    assert list(t.index) == ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5",
                             "pool5"]


@pytest.mark.parametrize("n", [67, 227])
def test_non_overlapping_gives_the_same_sides_for_odd_maps(n):
    a = P.alexnet_shape_table(n, 3, 2)["out"]
    b = P.alexnet_shape_table(n, 2, 2)["out"]
    assert list(a) == list(b)


def test_table_agrees_with_torch():
    for n, k, s, p in [(227, 11, 4, 0), (224, 11, 4, 2), (55, 3, 2, 0), (55, 2, 2, 0)]:
        out = nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, n, n)).shape[-1] if k == 11 else \
            nn.MaxPool2d(k, s)(torch.zeros(1, 1, n, n)).shape[-1]
        assert P.window_output(n, k, s, p)["out"] == out


def test_224_needs_padding():
    t = P.conv1_size_table()
    assert t.loc[(224, 0), "out"] == 54
    assert t.loc[(227, 0), "out"] == 55 and t.loc[(227, 0), "exact"]
    assert t.loc[(224, 2), "out"] == 55 and not t.loc[(224, 2), "exact"]
    assert not t.xs(224, level="in")["exact"].any()  # 224 never tiles exactly


def test_window_errors():
    with pytest.raises(P.PoolingError):
        P.window_output(2, 3, 2)
    with pytest.raises(P.PoolingError):
        P.window_output(10, 3, 0)


def test_pooling_windows_coverage():
    over = P.pooling_windows(9, 3, 2)
    tile = P.pooling_windows(9, 2, 2)
    assert over.max() == 4 and over.min() == 1  # overlaps, covers everything
    assert tile.max() == 1
    assert tile[-1].sum() == 0 and tile[:, -1].sum() == 0  # last row/column never seen
    assert over.sum() == 4 * 4 * 9 and tile.sum() == 4 * 4 * 4


def test_receptive_fields():
    t = P.receptive_field_table()
    assert t.loc["z=3, s=2", "receptive field (input px)"] == 19
    assert t.loc["z=2, s=2", "receptive field (input px)"] == 15
    assert t.loc["z=3, s=2", "shared with neighbour (input px)"] == 11
    assert t.loc["z=2, s=2", "shared with neighbour (conv1 units)"] == 0


def test_variants_build_working_models():
    for kwargs in P.pooling_variants().values():
        m = AlexNetSmall(channels=(8, 8, 8, 8, 8),
                         **{k.removeprefix("module__"): v for k, v in kwargs.items()})
        assert m(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)).shape == (2, 10)
