import pytest
import torch
from torch import nn

from course_utils.data import MEAN, STD
from course_utils.layers import InputAdapter, LocalResponseNorm


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("shape", [(2, 9, 6, 6), (3, 4, 5)])
def test_caffe_convention_equals_torch(size, shape):
    torch.manual_seed(size)
    x = torch.randn(*shape) * 3
    ours = LocalResponseNorm(size, alpha=1e-2, beta=0.75, k=2.0, convention="caffe")
    ref = nn.LocalResponseNorm(size, alpha=1e-2, beta=0.75, k=2.0)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [3, 5])
def test_paper_convention_equals_torch_with_alpha_times_size(size):
    torch.manual_seed(0)
    x = torch.randn(2, 16, 5, 5) * 4
    ours = LocalResponseNorm(size, alpha=1e-3, beta=0.75, k=2.0, convention="paper")
    ref = nn.LocalResponseNorm(size, alpha=1e-3 * size, beta=0.75, k=2.0)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)
    # and it really differs from the Caffe convention
    caffe = LocalResponseNorm(size, alpha=1e-3, beta=0.75, k=2.0, convention="caffe")
    assert not torch.allclose(ours(x), caffe(x))


def test_formula_by_hand_on_a_tiny_tensor():
    a = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    lrn = LocalResponseNorm(size=3, alpha=0.1, beta=1.0, k=1.0, convention="paper")
    # channel 0 sees channels 0,1; channel 1 sees 0,1,2; channel 2 sees 1,2
    expected = torch.tensor([1 / (1 + 0.1 * 5), 2 / (1 + 0.1 * 14), 3 / (1 + 0.1 * 13)])
    torch.testing.assert_close(lrn(a).flatten(), expected)


def test_lrn_keeps_its_dtype_and_computes_in_float32():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 4, 4) * 30
    lrn = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    out = lrn(x.bfloat16())
    assert out.dtype == torch.bfloat16
    # as accurate as bf16 can hold the result: the normalisation is not rounded away
    torch.testing.assert_close(out.float(), lrn(x.bfloat16().float()), rtol=8e-3, atol=1e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert lrn(x).dtype == torch.float32  # float32 in, float32 out


def test_lrn_rejects_bad_arguments():
    with pytest.raises(ValueError, match="convention"):
        LocalResponseNorm(convention="tf")
    with pytest.raises(ValueError, match="size"):
        LocalResponseNorm(size=0)


def test_input_adapter_scales_normalises_and_resizes():
    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    out = InputAdapter(67)(x)
    assert out.shape == (2, 1, 67, 67) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full_like(out, (1 - MEAN) / STD))
    # float input is taken as [0, 1]; right-sized input is not resampled
    y = torch.rand(3, 1, 67, 67)
    torch.testing.assert_close(InputAdapter(67)(y), (y - MEAN) / STD)
    assert InputAdapter(227)(torch.zeros(4, 28, 28, dtype=torch.uint8)).shape == (4, 1, 227, 227)
