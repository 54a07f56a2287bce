"""Layers the course builds by hand: Local Response Normalization and the input adapter."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import CourseError
from .data import MEAN, STD

__all__ = ["AugmentError", "BatchAugment", "CONVENTIONS", "InputAdapter", "LRNError",
           "LocalResponseNorm", "PAPER_ALPHA_STD", "PAPER_LRN_ALPHA", "PaperDropout",
           "check_batch", "course_alpha", "crop", "gray_lighting", "input_scale", "random_crop",
           "random_flip", "to_float"]

CONVENTIONS = ("paper", "caffe")
#: LRN's alpha in the paper (sec. 3.3), for its inputs: raw 0-255 pixels minus the mean pixel.
PAPER_LRN_ALPHA = 1e-4


class LRNError(CourseError, ValueError):
    """Bad argument for an LRN helper."""


def input_scale() -> float:
    """How many times larger the paper's inputs are than the course's.

    The paper fed raw pixels minus the mean pixel, ``p - 255 * MEAN``; the course
    feeds ``(p / 255 - MEAN) / STD``. The first is the second times ``255 * STD``.

    Returns
    -------
    float
        ``255 * STD`` (:data:`course_utils.data.STD`, Fashion-MNIST's pixel std).
    """
    return 255.0 * STD


def course_alpha(paper_alpha: float = PAPER_LRN_ALPHA, scale: float | None = None) -> float:
    """LRN's alpha carried from the paper's inputs to inputs ``scale`` times smaller.

    With zero biases, conv1 + ReLU is linear in its input, so inputs ``scale``
    times smaller give activations ``scale`` times smaller; and
    ``LRN_alpha(c * a) = c * LRN_{alpha * c**2}(a)``: the same divisor needs
    ``alpha * c**2``. ``course_alpha()`` is :class:`~course_utils.models.AlexNet`'s
    default LRN alpha on the course's normalised inputs (notebooks 02 and 04).

    Parameters
    ----------
    paper_alpha : float
        alpha on the paper's raw-pixel inputs (its 1e-4).
    scale : float, optional
        paper inputs / course inputs; :func:`input_scale` by default.

    Returns
    -------
    float
        ``paper_alpha * scale ** 2``.
    """
    c = input_scale() if scale is None else float(scale)
    if c <= 0:
        raise LRNError(f"scale must be positive, got {scale}")
    return float(paper_alpha) * c ** 2


class LocalResponseNorm(nn.Module):
    r"""Local Response Normalization across channels (Krizhevsky et al., 2012, sec. 3.3).

    .. math::
        b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha'
                    \sum_{j=i-\lfloor n/2\rfloor}^{i+\lfloor (n-1)/2\rfloor}
                    (a^j_{x,y})^2\Big)^{\beta}

    with the sum over the ``size`` (n) neighbouring channels that exist, and

    * ``convention="paper"`` (also TensorFlow's ``tf.nn.lrn``): ``alpha' = alpha``;
    * ``convention="caffe"`` (also PyTorch's ``nn.LocalResponseNorm``): ``alpha' = alpha / size``.

    The paper's values are ``size=5, k=2, alpha=1e-4, beta=0.75``; on the course's
    normalised inputs the same layer needs :func:`course_alpha` (notebook 02).
    """

    def __init__(self, size: int = 5, alpha: float = PAPER_LRN_ALPHA, beta: float = 0.75,
                 k: float = 2.0, convention: str = "paper"):
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

    def divisor(self, a: torch.Tensor) -> torch.Tensor:
        """``(k + alpha' * sum of the squares in the window) ** beta`` at every position,
        in float32, shaped like ``a``: what :meth:`forward` divides ``a`` by."""
        if a.dim() < 3:
            raise ValueError(f"expected (N, C, ...) input, got shape {tuple(a.shape)}")
        channels = a.shape[1]
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
        return (self.k + self.effective_alpha * window_sum).pow(self.beta)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return (a.float() / self.divisor(a)).to(a.dtype)

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


# --------------------------------------------------------------------------- augmentation
#: The paper's standard deviation of the random PCA coefficients (section 4.1).
PAPER_ALPHA_STD = 0.1


class AugmentError(CourseError, ValueError):
    """Augmentation asked for something impossible (wrong shape, crop too large...)."""


def check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise AugmentError(f"expected a batch shaped (N, C, H, W), got {shape}: "
                           "add a batch dimension with x.unsqueeze(0)")


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float in [0, 1]; float input is returned as is."""
    return x.float().div(255.0) if x.dtype == torch.uint8 else x


def crop(x: torch.Tensor, top: torch.Tensor | int, left: torch.Tensor | int,
         size: int) -> torch.Tensor:
    """Cut a ``size`` x ``size`` patch from every image of the batch ``x``.

    ``top`` and ``left`` are ints (the same patch everywhere) or tensors of N
    offsets (one patch per image). Works for any dtype, on any device.
    """
    check_batch(x)
    n, c, h, w = x.shape
    if size > h or size > w:
        raise AugmentError(f"crop of {size}x{size} does not fit in {h}x{w} images")
    dev = x.device
    top = torch.as_tensor(top, device=dev).expand(n)
    left = torch.as_tensor(left, device=dev).expand(n)
    if (top < 0).any() or (left < 0).any() or (top > h - size).any() or (left > w - size).any():
        raise AugmentError(f"crop offsets must lie in [0, {h - size}] x [0, {w - size}]")
    ar = torch.arange(size, device=dev)
    rows = (top[:, None] + ar)[:, None, :, None]  # (N, 1, size, 1)
    cols = (left[:, None] + ar)[:, None, None, :]  # (N, 1, 1, size)
    batch = torch.arange(n, device=dev)[:, None, None, None]
    chan = torch.arange(c, device=dev)[None, :, None, None]
    return x[batch, chan, rows, cols]


def random_crop(x: torch.Tensor, size: int | None = None, padding: int = 2,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad each image by ``padding`` pixels (zeros, i.e. background) and cut a
    ``size`` x ``size`` patch at a random place, independently per image.

    ``size`` defaults to the original side, so the output has the input's shape
    and each image is shifted by up to ``padding`` pixels: the paper's 224-from-256
    crops, scaled down (Fashion-MNIST is already centred, so there is no room to
    crop without padding).
    """
    check_batch(x)
    if padding < 0:
        raise AugmentError(f"padding must be >= 0, got {padding}")
    n, _, h, w = x.shape
    size = h if size is None else int(size)
    if padding:
        x = F.pad(x, (padding, padding, padding, padding))
    hp, wp = h + 2 * padding, w + 2 * padding
    if size > min(hp, wp):
        raise AugmentError(f"crop of {size} does not fit in the padded {hp}x{wp} images")
    top = torch.randint(0, hp - size + 1, (n,), generator=generator).to(x.device)
    left = torch.randint(0, wp - size + 1, (n,), generator=generator).to(x.device)
    return crop(x, top, left, size)


def random_flip(x: torch.Tensor, p: float = 0.5,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    check_batch(x)
    if not 0.0 <= p <= 1.0:
        raise AugmentError(f"flip probability must be in [0, 1], got {p}")
    mask = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


# --------------------------------------------------------------------------- fancy PCA

def gray_lighting(x: torch.Tensor, sigma: float, alpha_std: float = PAPER_ALPHA_STD,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Fancy PCA with one channel: add ``alpha * sigma`` to every pixel of each image,
    ``alpha ~ N(0, alpha_std)`` per image, where ``sigma`` is the standard deviation of
    the training pixels (Fashion-MNIST: :data:`course_utils.data.STD`). Output in [0, 1].
    """
    check_batch(x)
    if x.shape[1] != 1:
        raise AugmentError(f"gray_lighting needs 1-channel images, the batch has {x.shape[1]} "
                           "channels: use FancyPCA (notebook 08) for colour")
    x = to_float(x)
    # fancy PCA with one component: eigenvalue sigma**2, eigenvector [1]; the same draws as
    # FancyPCA([sigma ** 2], [[1.0]], alpha_std)(x, generator=generator)
    alphas = torch.randn(x.shape[0], 1, generator=generator) * float(alpha_std)
    size = torch.tensor([float(sigma) ** 2]).sqrt()
    shift = (alphas * size).to(device=x.device, dtype=x.dtype)
    return (x + shift[:, :, None, None]).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------- in the model

class BatchAugment(nn.Module):
    """Random crop (from a padded image), flip and lighting for a training batch.

    Active only in training mode: ``model.eval()`` turns it into the identity
    (apart from scaling uint8 to [0, 1]), so validation and test see the plain images.
    """

    def __init__(self, padding: int = 2, flip: bool = True, lighting: float = 0.0,
                 sigma: float | None = None):
        super().__init__()
        if padding < 0 or lighting < 0:
            raise AugmentError("padding and lighting must be >= 0")
        self.padding, self.flip, self.lighting = int(padding), bool(flip), float(lighting)
        self.sigma = STD if sigma is None else float(sigma)

    @property
    def active(self) -> bool:
        return bool(self.padding or self.flip or self.lighting)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.active):
            return x
        if x.dim() == 3:
            x = x.unsqueeze(1)
        x = to_float(x)
        if self.padding:
            x = random_crop(x, padding=self.padding)
        if self.flip:
            x = random_flip(x)
        if self.lighting:
            x = gray_lighting(x, self.sigma, self.lighting)
        return x

    def extra_repr(self) -> str:
        return f"padding={self.padding}, flip={self.flip}, lighting={self.lighting}"


# --------------------------------------------------------------------------- dropout

class PaperDropout(nn.Module):
    """The paper's dropout: in training, zero each unit with probability ``p`` (no
    rescaling); at test time multiply every output by ``1 - p``."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise CourseError(f"dropout rate must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return x * (torch.rand_like(x) >= self.p).to(x.dtype)
        return x * (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
