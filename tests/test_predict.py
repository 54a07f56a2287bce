"""The one forward-hook capture, accuracy from scores and the dead-unit share."""
import pytest
import torch
from torch import nn

from course_utils.training import (accuracy_from_scores, capture_outputs, dead_unit_share,
                                   module_accuracy)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))


def test_capture_outputs_catches_what_the_layers_produce_and_restores_the_mode():
    net = _net().train()
    X = torch.randn(7, 3, 4)
    caught = capture_outputs(net, X, nn.ReLU, batch_size=3)
    assert set(caught) == {"2"} and caught["2"].shape == (7, 5)
    assert torch.allclose(caught["2"], net[2](net[1](net[0](X))).detach())
    inputs = capture_outputs(net, X, {"hidden": "3"}, inputs=True)
    assert torch.allclose(inputs["hidden"], caught["2"])
    assert net.training and not net[1]._forward_hooks
    with pytest.raises(ValueError, match="no layer"):
        capture_outputs(net, X, ["nope"])


def test_accuracy_from_scores_and_module_accuracy():
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy_from_scores(scores, [1, 0, 0]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy_from_scores(scores, [1, 0])
    net = _net()
    X = torch.randn(9, 3, 4)
    y = net(X).argmax(1)
    assert module_accuracy(net, X, y, batch_size=4) == 1.0


def test_dead_unit_share_counts_channels_and_the_tolerance():
    acts = torch.zeros(4, 3, 2, 2)
    acts[0, 0, 1, 1] = 1.0          # channel 0 active on one image at one position
    acts[:, 1] = 1.0                # channel 1 always active; channel 2 never
    assert dead_unit_share(acts) == pytest.approx(1 / 3)
    assert dead_unit_share(acts, tol=0.75) == pytest.approx(2 / 3)  # channel 0: 3 of 4 off
    with pytest.raises(ValueError):
        dead_unit_share(acts, tol=0)
