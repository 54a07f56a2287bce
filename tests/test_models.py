import pytest
import torch
from torch import nn

from course_utils.models import (V2_CHANNELS, AlexNet, AlexNetSmall, count_parameters,
                                 feature_side, initialize, layer_parameters, output_size)

PAPER_LAYERS = {"conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936,
                "conv5": 442_624, "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000}


def test_full_alexnet_parameter_count():
    assert count_parameters(AlexNet()) == 58_299_082


def test_small_alexnet_parameter_count():
    assert count_parameters(AlexNetSmall()) == 3_774_666


def test_two_tower_matches_the_paper_per_layer():
    net = AlexNet(in_channels=3, num_classes=1000, two_tower=True)
    assert layer_parameters(net) == PAPER_LAYERS
    assert net.features.conv2.groups == 2 and net.features.conv3.groups == 1


@pytest.mark.parametrize("cls,size", [(AlexNet, 227), (AlexNetSmall, 67)])
def test_output_shapes_from_raw_fashion_mnist(cls, size):
    net = cls().eval()
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    assert net.prep(x).shape == (3, 1, size, size)
    assert net(x).shape == (3, 10)


def test_geometry():
    assert [output_size(227, 11, 4), output_size(55, 3, 2), output_size(27, 3, 2),
            output_size(13, 3, 2)] == [55, 27, 13, 6]
    assert feature_side(227) == 6 and feature_side(67) == 1
    assert feature_side(67, pool_kernel=2, pool_stride=2) == 1
    with pytest.raises(ValueError, match="too small"):
        AlexNetSmall(input_size=63)


def test_options():
    lrn = AlexNetSmall(lrn=True)
    assert type(lrn.features.norm1).__name__ == "LocalResponseNorm"
    assert isinstance(AlexNetSmall(batchnorm=True).features.norm2, nn.BatchNorm2d)
    assert isinstance(AlexNetSmall(activation="tanh").features.act1, nn.Tanh)
    v2 = AlexNet(channels=V2_CHANNELS)
    assert v2.features.conv1.out_channels == 64 and count_parameters(v2) < 58_299_082
    assert AlexNetSmall(dropout=0.2).classifier.drop6.p == 0.2
    with pytest.raises(ValueError, match="lrn or batchnorm"):
        AlexNetSmall(lrn=True, batchnorm=True)
    with pytest.raises(ValueError, match="activation"):
        AlexNetSmall(activation="gelu")


def test_default_lrn_alpha_acts_the_same_on_both_pixel_scales():
    """pixels="paper" feeds inputs 255 * STD times larger than the course's normalised ones;
    the default alpha of each makes LRN after conv1 divide by the same amounts."""
    from course_utils.layers import input_scale

    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)

    def norm1(pixels, **kwargs):
        torch.manual_seed(0)  # the same weights; conv1's bias is 0 in the paper's init
        net = AlexNetSmall(lrn=True, pixels=pixels, init="paper", **kwargs)
        f = net.features
        with torch.no_grad():
            a = f.act1(f.conv1(net.prep(x)))
            return a, f.norm1.divisor(a), f.norm1(a)

    a_paper, divisor_paper, b_paper = norm1("paper")
    a_course, divisor_course, b_course = norm1("normalised")
    assert torch.allclose(a_paper, input_scale() * a_course, rtol=1e-4, atol=1e-3)
    assert torch.allclose(divisor_paper, divisor_course, rtol=1e-4)
    assert torch.allclose(b_paper, input_scale() * b_course, rtol=1e-3, atol=1e-3)
    assert divisor_paper.max() > 1.05 * 2 ** 0.75  # LRN acts: the divisor is not k ** beta
    # the paper's alpha on the normalised inputs: a divisor of k ** beta nearly everywhere
    assert norm1("normalised", lrn_alpha=1e-4)[1].max() < 1.001 * 2 ** 0.75
    assert AlexNetSmall(lrn=True, lrn_alpha=0.5).features.norm2.alpha == 0.5


def test_he_init_zero_biases_and_paper_init():
    he = AlexNetSmall(init="he")
    assert all(m.bias.abs().max() == 0 for m in he.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)))
    paper = initialize(AlexNetSmall(), "paper")
    layers = dict((n.rsplit(".", 1)[-1], m) for n, m in paper.named_modules()
                  if isinstance(m, (nn.Conv2d, nn.Linear)))
    for name in ("conv2", "conv4", "conv5", "fc6", "fc7"):
        assert torch.all(layers[name].bias == 1)
    for name in ("conv1", "conv3", "fc8"):
        assert torch.all(layers[name].bias == 0)
    assert abs(layers["fc6"].weight.std().item() - 0.01) < 0.002
    with pytest.raises(ValueError, match="init"):
        AlexNetSmall(init="xavier")


def test_head_std_draws_only_the_output_layer_small():
    torch.manual_seed(0)
    default = AlexNetSmall(hidden=512)
    torch.manual_seed(0)
    small = AlexNetSmall(hidden=512, head_std=0.001)
    assert small.classifier.fc8.weight.std().item() == pytest.approx(0.001, rel=0.05)
    assert small.classifier.fc8.bias.abs().max().item() == 0.0
    assert default.classifier.fc8.weight.std().item() > 0.02
    assert torch.equal(small.classifier.fc7.weight, default.classifier.fc7.weight)
    # the same draws through initialize: He and Xavier, then fc8 again from N(0, head_std)
    torch.manual_seed(1)
    again = initialize(AlexNetSmall(hidden=512), "he", head_std=0.001)
    torch.manual_seed(1)
    plain = initialize(AlexNetSmall(hidden=512), "he")
    assert again.classifier.fc8.weight.std().item() == pytest.approx(0.001, rel=0.05)
    assert torch.equal(again.classifier.fc7.weight, plain.classifier.fc7.weight)
    assert not torch.equal(again.classifier.fc8.weight, plain.classifier.fc8.weight)
    for bad in (0.0, -0.01, float("inf"), True, "0.01"):
        with pytest.raises(ValueError, match="head_std must be a positive number"):
            AlexNetSmall(head_std=bad)
