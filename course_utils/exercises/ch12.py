"""Notebook 12's exercises (what AlexNet learned): their cases and reference solutions."""
from __future__ import annotations

import copy
import math

import torch

from .judge import Exercise, call_answer, describe, generator, number, register, tensor_function

__all__ = ["EXERCISES", "capture_fc7", "low_share", "noise_low_share"]


# --------------------------------------------------------------------------- reference solutions

def noise_low_share():
    import torch

    cutoff = 0.25  # cycles per pixel: the notebook's LOW_FREQUENCY
    f = torch.fft.fftfreq(11)  # an 11-point FFT's frequencies, in cycles per pixel
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()  # |f| of each 2-D bin
    # white noise spreads its power evenly over the bins, so the share is the share
    # of bins at low frequency; the DC bin (f = 0) is removed with the mean
    low = int((radius <= cutoff).sum()) - 1
    return low / (11 * 11 - 1)


def low_share(w, cutoff=0.25):
    w = w - w.mean()  # the mean (f = 0) is no pattern
    power = torch.fft.fft2(w).abs() ** 2  # P(f)
    fy = torch.fft.fftfreq(w.shape[0], dtype=w.dtype)[:, None]  # cycles/pixel
    fx = torch.fft.fftfreq(w.shape[1], dtype=w.dtype)[None, :]
    low = (fx ** 2 + fy ** 2).sqrt() <= cutoff  # |f| of each frequency
    total = power.sum()
    if total == 0:  # a constant filter: no power anywhere
        return 0.0
    return (power[low].sum() / total).item()


def capture_fc7(model, x):
    captured = []

    def keep(module, inputs, output):  # PyTorch calls it after fc7's forward pass
        captured.append(output)

    handle = model.classifier.fc7.register_forward_hook(keep)
    try:
        model.eval()  # dropout off: the net's features, not a random sample of them
        with torch.no_grad():  # features only: no graph kept for a backward pass
            model(x)
    finally:
        handle.remove()  # later forward passes run without it
    return captured[0]


# --------------------------------------------------------------------------- 12-2's test inputs

def _low_share_cases(reference) -> list[tuple[str, tuple, dict, torch.Tensor]]:
    """Exercise 12-2's test filters, each with the reference's value."""
    g = generator(12)
    x = torch.arange(11, dtype=torch.float64)
    y = x[:, None]
    blob = x - 5
    filters = [
        ("a grating along x at 2/11 cycles/pixel, plus 3",
         torch.cos(2 * math.pi * 2 * x / 11).expand(11, 11) + 3.0, {}),
        ("a grating at (3/11, 2/11) cycles/pixel", torch.sin(2 * math.pi * (3 * x + 2 * y) / 11),
         {}),
        ("the grating along x at 2/11 cycles/pixel with cutoff=0.1",
         torch.cos(2 * math.pi * 2 * x / 11).expand(11, 11).clone(), {"cutoff": 0.1}),
        ("a round blob", torch.exp(-(blob[None, :] ** 2 + blob[:, None] ** 2) / 8), {}),
        ("a random 11x11 filter", torch.randn(11, 11, generator=g, dtype=torch.float64), {}),
        ("a random 7x9 filter plus 1, cutoff=0.35",
         torch.randn(7, 9, generator=g, dtype=torch.float64) + 1.0, {"cutoff": 0.35}),
        ("a constant 5x5 filter (it has no power at all: its share is 0)",
         torch.full((5, 5), 2.0, dtype=torch.float64), {}),
    ]
    return [(shown, (w.clone(),), kw, torch.tensor(reference(w.clone(), **kw),
                                                   dtype=torch.float64))
            for shown, w, kw in filters]


def _low_share_mistakes(args, kwargs) -> list[tuple[torch.Tensor, str]]:
    """Exercise 12-2's common mistakes on one test filter, with a hint each."""
    w = torch.as_tensor(args[0]).double()
    cutoff = kwargs.get("cutoff", 0.25)
    h, wd = w.shape
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(wd, dtype=torch.float64)[None, :]

    def share(p, low):
        return p[low.expand(h, wd)].sum() / p.sum()

    power = torch.fft.fft2(w - w.mean()).abs() ** 2
    radius = (fx ** 2 + fy ** 2).sqrt()
    return [(share(torch.fft.fft2(w).abs() ** 2, radius <= cutoff),
             "remove the filter's mean first: it puts its power at f = 0, and it is no pattern"),
            (share(torch.fft.fft2(w - w.mean()).abs(), radius <= cutoff),
             "weight each frequency by its power |F(f)|^2, not by the amplitude |F(f)|"),
            (share(power, (fx.abs() <= cutoff) & (fy.abs() <= cutoff)),
             ("compare the length of the frequency, |f| = sqrt(fx^2 + fy^2), with the cutoff, "
              "not each of its two parts")),
            (share(power, (fx * wd) ** 2 + (fy * h) ** 2 <= cutoff ** 2),
             ("measure the frequencies in cycles per pixel, as torch.fft.fftfreq(n) gives "
              "them, not in FFT bins"))]


# --------------------------------------------------------------------------- 12-3's judge

#: Exercise 12-3's nets: (shown, AlexNetSmall's keyword arguments, seed, images, eval first).
#: The first is in train mode, as a freshly built module is.
_CAPTURE_CASES = (
    ("a freshly built AlexNetSmall(channels=(24, 64, 96, 96, 64)) in train mode, 4 images",
     {"channels": (24, 64, 96, 96, 64)}, 0, 4, False),
    ("a freshly built AlexNetSmall(hidden=32) in train mode, 3 images", {"hidden": 32}, 1, 3,
     False),
    ("a freshly built AlexNetSmall(channels=(8, 16, 16, 16, 8), hidden=64) in eval mode, "
     "1 image", {"channels": (8, 16, 16, 16, 8), "hidden": 64}, 2, 1, True),
)


def _outputs(model, x) -> dict[str, torch.Tensor]:
    """What fc6 and fc7 put out and what fc7 receives, in eval mode, without gradients."""
    got = {}
    c = model.classifier
    handles = [c.fc6.register_forward_hook(lambda m, i, o: got.update(fc6=o)),
               c.fc7.register_forward_hook(lambda m, i, o: got.update(fc7_in=i[0], fc7=o)),
               c.fc8.register_forward_hook(lambda m, i, o: got.update(fc8=o))]
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return got


def _hooked(model) -> list[str]:
    """The modules of ``model`` that still have a forward hook."""
    return [name or "the model" for name, m in model.named_modules()
            if m._forward_hooks or m._forward_pre_hooks]


def _judge_capture(answer, reference) -> str | None:
    from ..models import AlexNetSmall

    if not callable(answer):
        return f"expected a function capture_fc7(model, x), got {describe(answer)}"
    for shown, kwargs, seed, n, eval_first in _CAPTURE_CASES:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AlexNetSmall(**kwargs)
            x = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)
        model.train(not eval_first)
        ref = _outputs(copy.deepcopy(model), x)
        with torch.random.fork_rng(devices=[]):  # the answer's dropout draws stay its own
            out, error = call_answer(answer, (model, x.clone()), {}, f"your function, on {shown},")
        if error:
            return error
        if not isinstance(out, torch.Tensor):
            return (f"on {shown} your function returned {describe(out)}: return what the hook "
                    "caught, fc7's output (a tensor)")
        expected = ref["fc7"]
        if out.shape != expected.shape:
            if out.shape == ref["fc8"].shape:
                return (f"on {shown} your function returned the logits (fc8's output): hook "
                        "model.classifier.fc7")
            return (f"on {shown} your function returned shape {tuple(out.shape)}, expected "
                    f"{tuple(expected.shape)}: fc7's output, one row per image")
        values = out.detach().float()
        if not torch.allclose(values, expected, rtol=1e-4, atol=1e-5):
            for wrong, hint in (
                    (ref["fc7_in"], ("that is what fc7 receives: a forward hook is called as "
                                     "hook(module, inputs, output); keep the output")),
                    (torch.relu(expected), ("that is fc7's output after its ReLU (act7): "
                                            "hook the Linear layer model.classifier.fc7")),
                    (ref["fc6"], "that is fc6's output: hook model.classifier.fc7")):
                if torch.allclose(values, wrong, rtol=1e-4, atol=1e-5):
                    return f"on {shown}: {hint}"
            if model.training:
                return (f"on {shown}: put the model in eval mode (model.eval()) first: in train "
                        "mode dropout zeroes random units before fc7, so the features change "
                        "from call to call")
            largest = (values - expected).abs().max().item()
            return f"on {shown}, fc7's output differs by up to {largest:.3g}"
        if out.requires_grad:
            return (f"on {shown} the output still requires grad: run the model under "
                    "torch.no_grad() (or detach what the hook keeps), since features need no "
                    "graph for a backward pass")
        left = _hooked(model)
        if left:
            return (f"on {shown} a hook is still registered on {left[0]} after your function "
                    "returned: keep the handle register_forward_hook gives and call "
                    "handle.remove()")
    return None


# --------------------------------------------------------------------------- the exercises

EXERCISES = register(
    Exercise(
        "12-1", "the share of its power that a white-noise 11x11 kernel has, on average, at "
        "spatial frequencies up to 0.25 cycles/pixel, its mean (the DC term) removed",
        "a number between 0 and 1",
        noise_low_share,
        number(rel=1e-3, share=True, mistakes=lambda: [
            (21 / 121, ("the DC bin (f = 0) holds the mean, which is removed: leave it out of "
                        "both counts")),
            (math.pi * 0.25 ** 2, ("that is the disc's share of the area of the frequency "
                                   "square; count the FFT's bins on the 11x11 grid instead"))])),
    Exercise(
        "12-2", "the share of one 2-D filter's power (its mean removed) at spatial frequencies "
        "|f| <= cutoff cycles/pixel, 0 for a constant filter",
        "a function low_share(w, cutoff=0.25) of an (H, W) tensor, returning a number",
        low_share,
        tensor_function("low_share", _low_share_cases, atol=1e-6,
                        mistakes=_low_share_mistakes),
        write_it=True),
    Exercise(
        "12-3", "fc7's output (the Linear layer model.classifier.fc7, before its ReLU) for a "
        "batch x, caught with a forward hook that is removed afterwards, in eval mode and "
        "without gradients", "a function capture_fc7(model, x) returning a tensor",
        capture_fc7,
        _judge_capture,
        write_it=True),
)
