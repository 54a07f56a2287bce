"""Layers the course builds by hand: Local Response Normalization and the input adapter."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data import MEAN, STD

CONVENTIONS = ("paper", "caffe")


class LocalResponseNorm(nn.Module):
    r"""Local Response Normalization across channels (Krizhevsky et al., 2012, sec. 3.3).

    .. math::
        b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha' \sum_{j=i-\lfloor n/2\rfloor}^{i+\lfloor (n-1)/2\rfloor}
                    (a^j_{x,y})^2\Big)^{\beta}

    with the sum over the ``size`` (n) neighbouring channels that exist, and

    * ``convention="paper"`` (also TensorFlow's ``tf.nn.lrn``): ``alpha' = alpha``;
    * ``convention="caffe"`` (also PyTorch's ``nn.LocalResponseNorm``): ``alpha' = alpha / size``.

    The paper's values are ``size=5, k=2, alpha=1e-4, beta=0.75``.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0,
                 convention: str = "paper"):
        super().__init__()
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)
        self.convention = convention

    @property
    def effective_alpha(self) -> float:
        """The factor that multiplies the plain sum of squares."""
        return self.alpha if self.convention == "paper" else self.alpha / self.size

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if a.dim() < 3:
            raise ValueError(f"expected (N, C, ...) input, got shape {tuple(a.shape)}")
        channels = a.shape[1]
        dtype = a.dtype
        # In bf16/fp16 (autocast) k + alpha * sum rounds to k for the paper's
        # k=2, alpha=1e-4: the normalisation would vanish. Compute in float32.
        a = a.float()
        squares = a * a
        # Zero channels before and after, so that the window sum simply skips
        # channels that do not exist (the "min(N-1, ...)" bounds in the paper).
        before, after = self.size // 2, (self.size - 1) // 2
        pad = [0, 0] * (a.dim() - 2) + [before, after]
        padded = F.pad(squares, pad)
        window_sum = sum(padded[:, j:j + channels] for j in range(self.size))
        return (a / (self.k + self.effective_alpha * window_sum).pow(self.beta)).to(dtype)

    def extra_repr(self) -> str:
        return (f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
                f"convention={self.convention!r}")


class InputAdapter(nn.Module):
    """Turns a batch of raw images into what the network expects, on the batch's device.

    uint8 pixels are scaled to [0, 1] (float input is taken to be in [0, 1]
    already), normalised with Fashion-MNIST's mean and std, and resized to
    ``size`` x ``size`` with bilinear interpolation. Doing this per batch on the
    training device is the course's fast data path: the dataset stays one small
    uint8 tensor and no per-image PIL work is done.
    """

    def __init__(self, size: int, mean: float = MEAN, std: float = STD,
                 channels_last: bool = True):
        super().__init__()
        self.size = int(size)
        self.mean, self.std = float(mean), float(std)
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # (N, H, W) -> (N, 1, H, W)
            x = x.unsqueeze(1)
        if x.dtype == torch.uint8 and x.device.type == "cpu":
            # A uint8 pixel has 256 values: normalise the 256 once, with the same
            # operations as below (so the same float32 results), and look each
            # pixel up with NumPy. One single-threaded pass instead of four
            # multi-threaded ones, which on a busy CPU wait on each other.
            table = self._normalise(torch.arange(256, dtype=torch.uint8)).numpy()
            x = torch.from_numpy(table[x.numpy()])
        else:
            x = self._normalise(x)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"size={self.size}, mean={self.mean}, std={self.std}"
