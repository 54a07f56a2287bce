"""The notebooks' exercises: every reference answer passes its check and is right by an
independent computation; wrong, missing and malformed answers get one line saying what is
wrong, without the reference; no function of the package passes a "write it" exercise; the
exercises package imports no lesson and runs no strings."""
import ast
import contextlib
import functools
import importlib
import inspect
import io
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

import course_utils
from course_utils.config import CourseError
from course_utils.exercises import EXERCISES, ExerciseError, check, solution
from course_utils.layers import LocalResponseNorm
from course_utils.models import (
    CONV_GEOMETRY,
    AlexNet,
    AlexNetSmall,
    count_parameters,
    geometry,
)
from course_utils.training import dead_unit_share

def _features_pooling_2x2(channels=(96, 256, 384, 384, 256), in_channels=1):
    """AlexNet's feature extractor with non-overlapping 2x2 pooling: at 67x67 the same
    shapes and parameters as the paper's 3x3/stride-2, other outputs."""
    c1, c2, c3, c4, c5 = channels
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 11, stride=4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))


class _StopOnTrainAccuracy(Callback):
    """05-1 with the training accuracy where the validation accuracy belongs."""

    def __init__(self, target):
        self.target = target

    def on_epoch_end(self, net, **kwargs):
        if net.history[-1, "train_acc"] >= self.target:
            raise KeyboardInterrupt
def _centre_view_only(model, x, crop):
    """10-3 answered with the centre crop alone (no corners, no flips)."""
    h, w = x.shape[-2:]
    top, left = (h - crop) // 2, (w - crop) // 2
    with torch.no_grad():
        return torch.softmax(model.eval()(x[..., top:top + crop, left:left + crop]), dim=1)
def _capture_fc7_wrong(model, x, keep="output", layer="fc7", eval_mode=True, no_grad=True,
                       remove=True):
    """A student's capture_fc7 with one of the usual mistakes."""
    kept = []
    module = getattr(model.classifier, layer)
    handle = module.register_forward_hook(
        lambda m, inputs, output: kept.append(inputs[0] if keep == "input" else output))
    if eval_mode:
        model.eval()
    with torch.no_grad() if no_grad else contextlib.nullcontext():
        model(x)
    if remove:
        handle.remove()
    return kept[0]


#: A wrong answer of the right type for every exercise.
WRONG = {
    "00-1": lambda x, mean, std: ((x * std + mean) * 255).clamp(0, 255).to(torch.uint8),  # no round
    "01-1": lambda z: 1 - torch.tanh(z),
    "01-2": 0.25 ** 4,
    "01-3": nn.ReLU,  # torch's own module, and no slope
    "02-1": 1e-4,
    "02-2": lambda a, n=5, k=2.0, alpha=1e-4, beta=0.75: a / (k + alpha * a ** 2) ** beta,
    "02-3": 7.0,
    "03-1": (14, 14),
    "03-2": lambda n, z, s, p=0: [sum(i * s <= c < i * s + z for i in range((n - z) // s + 1))
                                  for c in range(n)],  # padding ignored
    "03-3": 67,
    "04-1": 0.5,
    "04-2": [223, 227],
    "04-3": 0.94,
    "04-4": _features_pooling_2x2,
    "05-1": _StopOnTrainAccuracy,
    "05-2": lambda logits, target, eps: torch.nn.functional.cross_entropy(logits, target),
    # --- notebook 07's wrong answers
    "07-1": lambda model: [(nn.init.normal_(m.weight, 0.0, 0.01), nn.init.ones_(m.bias))
                           for m in model.modules()
                           if isinstance(m, (nn.Conv2d, nn.Linear))] and None,  # biases all 1
    "06-1": lambda lrs, dropouts, batch_size: {"lr": list(lrs), "dropout": list(dropouts),
                                               "batch_size": [batch_size]},  # no module__
    # --- notebook 08's wrong answers
    "08-1": 81,
    "08-2": 0.1 * 0.353 ** 2,
    "08-3": lambda x, size, generator=None: x[..., :size, :size],  # one place for every image
    # --- notebook 09's wrong answers
    "09-1": 0.8,
    "09-2": 1240,
    "09-3": lambda x, p, training: (x * (torch.rand_like(x) >= p) / (1 - p)) if training else x,
    # --- notebook 10's wrong answers
    "10-1": 50_000,
    "10-2": 4,
    "10-3": _centre_view_only,
    # --- notebook 11's wrong answers
    "11-1": 0.5,
    "11-2": 90,
    "11-3": lambda acts, tol=0.99: (acts == 0).all(dim=0),  # only units 0 on every image
    "11-4": lambda net, prefixes=("features",): [n for n, _ in net.named_parameters()],
    # --- notebook 12's wrong answers
    "12-1": 21 / 121,  # the DC bin counted
    # --- notebook 13's wrong answers
    "13-1": lambda logits, labels, k=5: float((logits.argmax(1) != labels).float().mean()),  # top-1
    "12-2": lambda w, cutoff=0.25: float((torch.fft.fft2(w).abs() ** 2)[  # the mean kept
        (torch.fft.fftfreq(w.shape[0])[:, None] ** 2
         + torch.fft.fftfreq(w.shape[1])[None, :] ** 2).sqrt() <= cutoff].sum()
        / (torch.fft.fft2(w).abs() ** 2).sum()),
    "12-3": lambda model, x: _capture_fc7_wrong(model, x, keep="input"),
}
IDS = list(EXERCISES)
NUMBER_IDS = [i for i in IDS if EXERCISES[i].expects.startswith("a number")]


def _quiet_solution(exercise_id):
    with contextlib.redirect_stdout(io.StringIO()):
        return solution(exercise_id)


def _checked(capsys, exercise_id, answer):
    """check's result and its output, which must be exactly one line."""
    result = check(exercise_id, answer)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.endswith("\n"), f"not one line: {out!r}"
    assert out.startswith(f"{exercise_id}: ")
    return result, out.rstrip("\n")


def _is_function_exercise(exercise_id):
    return callable(_quiet_solution(exercise_id))


def test_every_exercise_has_a_wrong_answer_here():
    assert set(WRONG) == set(EXERCISES)
    assert NUMBER_IDS and all(isinstance(_quiet_solution(i), (int, float)) and
                              not isinstance(_quiet_solution(i), bool) for i in NUMBER_IDS)
    assert IDS == sorted(IDS)


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_reference_answer_passes_and_solution_shows_its_code(capsys, exercise_id):
    answer = solution(exercise_id)
    shown = capsys.readouterr().out
    reference = EXERCISES[exercise_id].reference
    assert inspect.getsource(reference).strip() in shown and "answer =" in shown
    assert (answer is reference) == EXERCISES[exercise_id].write_it
    assert _checked(capsys, exercise_id, answer) == (True, f"{exercise_id}: correct.")


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_wrong_answer_fails_with_a_message(capsys, exercise_id):
    result, line = _checked(capsys, exercise_id, WRONG[exercise_id])
    assert result is False
    assert "correct" not in line and len(line) > len(exercise_id) + 10


@pytest.mark.parametrize("exercise_id", IDS)
def test_no_answer_yet(capsys, exercise_id):
    assert _checked(capsys, exercise_id, None) == (
        False, (f"{exercise_id}: no answer yet: set `answer` above and run the cell again; "
                f'solution("{exercise_id}") shows one.'))


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_callable_that_raises_is_a_wrong_answer(capsys, exercise_id):
    def broken(*args, **kwargs):
        raise ValueError("first line\nsecond line")

    class Broken(nn.Module):
        def __init__(self, *args, **kwargs):
            raise ValueError("first line\nsecond line")

    module_exercise = isinstance(_quiet_solution(exercise_id), type)
    result, line = _checked(capsys, exercise_id, Broken if module_exercise else broken)
    assert result is False
    if _is_function_exercise(exercise_id):
        assert "raised ValueError: first line second line" in line
    else:
        assert "got a function" in line


@pytest.mark.parametrize("answer", ["0.0005", True, [5e-4], torch.ones(3), object()])
def test_a_malformed_number_is_a_wrong_type(capsys, answer):
    result, line = _checked(capsys, "02-1", answer)
    assert result is False and "expected a number" in line


def test_numbers_may_be_numpy_or_tensors(capsys):
    import numpy as np

    assert _checked(capsys, "02-1", np.float32(7e-4))[0]
    assert _checked(capsys, "02-1", torch.tensor(7e-4))[0]
    assert _checked(capsys, "03-3", torch.tensor(99))[0]


def test_unknown_id_lists_the_known_ones():
    for call in (lambda: check("99-1", 1), lambda: solution("4-1"), lambda: check(None, 1)):
        with pytest.raises(ExerciseError) as info:
            call()
        assert all(i in str(info.value) for i in IDS)
    assert issubclass(ExerciseError, CourseError) and issubclass(ExerciseError, ValueError)


def _formats(value):
    return {repr(value), str(value), f"{value:g}", f"{value:.3g}", f"{value:.4g}", f"{value:.2e}",
            f"{value:.3f}" if abs(value) >= 0.01 else repr(value)}


@pytest.mark.parametrize("exercise_id", NUMBER_IDS)
def test_the_message_never_shows_a_number_reference(capsys, exercise_id):
    ref = _quiet_solution(exercise_id)
    tries = [ref * f for f in (1.3, 0.5, 7, 1000, -1, 0, 1.02)] + [WRONG[exercise_id]]
    for answer in tries:
        result, line = _checked(capsys, exercise_id, answer)
        assert result is False
        shown = [f for f in _formats(ref) if f in line]
        assert not shown, f"{line!r} shows the reference as {shown}"


def test_messages_say_what_is_wrong(capsys):
    assert "factor" in _checked(capsys, "01-2", 1.0)[1]
    assert "too small by about 23%" in _checked(capsys, "04-3", 0.6)[1]
    assert "between 0 and 1" in _checked(capsys, "04-3", 73.8)[1]
    assert "nn.LocalResponseNorm divides" in _checked(capsys, "02-1", 1e-4)[1]
    assert "window here is 7" in _checked(capsys, "02-1", 5e-4)[1]
    assert "power beta" in _checked(capsys, "02-3", 7.0)[1]
    assert "with padding 1 is too small" in _checked(capsys, "03-1", (13, 13))[1]
    assert "without padding" not in _checked(capsys, "03-1", (13, 13))[1]
    assert "expected a tuple of two sides" in _checked(capsys, "03-1", (13, 14, 15))[1]
    assert "last map is still 1x1" in _checked(capsys, "03-3", 98)[1]
    assert "a smaller input also" in _checked(capsys, "03-3", 100)[1]
    assert "ascending" in _checked(capsys, "04-2", [231, 227, 223])[1]
    assert "1 of your sizes do not tile" in _checked(capsys, "04-2", [223, 224, 227, 231])[1]
    assert "outside 220-231" in _checked(capsys, "04-2", [219, 223, 227, 231])[1]
    line = _checked(capsys, "01-1", lambda z: z[:3])[1]
    assert "returned shape (3,)" in line and "expected (101,)" in line
    assert "write LeakyReLU yourself" in _checked(capsys, "01-3", WRONG["01-3"])[1]
    assert "starts p cells before" in _checked(capsys, "03-2", WRONG["03-2"])[1]
    line = _checked(capsys, "03-2", lambda n, z, s, p=0: [2] * n)[1]
    assert line.startswith("03-2: on window_count(9, 3, 2), ") and "values differ" in line
    assert "returned shape (11,)" in _checked(capsys, "03-2",
                                              lambda n, z, s, p=0: [0] * (n + 2))[1]
    def torch_lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
        return nn.LocalResponseNorm(n, alpha, beta, k)(a)
    assert "divides alpha by n" in _checked(capsys, "02-2", torch_lrn)[1]
    assert "largest difference" in _checked(capsys, "02-2", WRONG["02-2"])[1]


def _leaky(forward, keep_slope=True):
    class LeakyReLU(nn.Module):
        def __init__(self, slope=0.01):
            super().__init__()
            self.slope = slope if keep_slope else 0.01

        def forward(self, x):
            return forward(x, self.slope)
    return LeakyReLU


def test_a_leaky_relu_module_and_its_usual_mistakes(capsys):
    right = _leaky(lambda x, a: torch.where(x > 0, x, a * x))
    assert _checked(capsys, "01-3", right)[0]
    also_right = _leaky(lambda x, a: torch.maximum(x, a * x) if a <= 1 else x)
    assert _checked(capsys, "01-3", also_right)[0]
    hints = {
        "plain ReLU": _leaky(lambda x, a: torch.relu(x)),
        "the negative side, not the positive": _leaky(lambda x, a: torch.where(x > 0, a * x, x)),
        "ignores the slope": _leaky(lambda x, a: torch.where(x > 0, x, a * x), keep_slope=False),
        "slope * |x|": _leaky(lambda x, a: torch.where(x > 0, x, a * x.abs())),
    }
    for hint, wrong in hints.items():
        assert hint in _checked(capsys, "01-3", wrong)[1], hint
    uses_torch = _leaky(lambda x, a: nn.functional.leaky_relu(x, a))
    assert "not with leaky_relu" in _checked(capsys, "01-3", uses_torch)[1]
    assert "an nn.Module class" in _checked(capsys, "01-3", lambda x: x)[1]


def test_student_functions_get_their_own_copy_of_the_input(capsys):
    def in_place(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
        ref = nn.LocalResponseNorm(n, alpha * n, beta, k)(a)
        a.zero_()
        return ref
    # twice: the test inputs are rebuilt, not spoiled by the first call
    assert _checked(capsys, "02-2", in_place)[0] and _checked(capsys, "02-2", in_place)[0]


def test_solution_returns_a_copy(capsys):
    _quiet_solution("04-2").append(224)
    assert _quiet_solution("04-2") == [223, 227, 231]


# --------------------------------------------------------------------------- references, checked

def test_references_of_notebooks_01_to_03():
    tanh_prime = _quiet_solution("01-1")
    z = torch.linspace(-3, 3, 61, requires_grad=True)
    torch.tanh(z).sum().backward()
    assert torch.allclose(tanh_prime(z.detach()), z.grad, atol=1e-6)
    assert _quiet_solution("01-2") == pytest.approx(0.25 ** 8, rel=1e-9)
    x = torch.linspace(-2, 2, 9)
    assert torch.equal(_quiet_solution("01-3")(0.1)(x), nn.functional.leaky_relu(x, 0.1))
    assert _quiet_solution("02-3") == pytest.approx((2 + 1e-4 * 5 * 100 ** 2) ** 0.75, rel=1e-6)
    assert _quiet_solution("03-1") == (13, 14)


def test_pytorchs_alpha_gives_the_papers_lrn():
    alpha = _quiet_solution("02-1")
    assert alpha == pytest.approx(7e-4)
    x = 50 * torch.randn(2, 9, 4, 4)
    assert torch.allclose(nn.LocalResponseNorm(7, alpha=alpha, beta=0.75, k=2.0)(x),
                          LocalResponseNorm(7, 1e-4, 0.75, 2.0, convention="paper")(x),
                          rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("params", [{}, {"n": 3, "k": 1.0, "alpha": 1e-3, "beta": 0.5}])
def test_reference_lrn_agrees_with_pytorchs(params):
    lrn = _quiet_solution("02-2")
    p = {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75, **params}
    x = 60 * torch.randn(2, 11, 3, 3)
    ref = nn.LocalResponseNorm(p["n"], p["alpha"] * p["n"], p["beta"], p["k"])(x)
    assert torch.allclose(lrn(x, **params), ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(x, ref, rtol=1e-2)  # the divisor does something at this scale


def _counts_by_unfold(n, z, s, p):
    """Each window's cells, by PyTorch's unfold of the cell numbers (padding: -1)."""
    cells = torch.nn.functional.pad(torch.arange(n, dtype=torch.float), (p, p), value=-1.0)
    windows = cells.unfold(0, z, s).long().flatten()
    return torch.bincount(windows[windows >= 0], minlength=n).tolist()


def test_reference_window_count_agrees_with_torch():
    window_count = _quiet_solution("03-2")
    for n in (5, 8, 9, 13, 28):
        for z, s, p in ((3, 2, 0), (3, 2, 1), (2, 2, 0), (5, 3, 2), (1, 1, 0), (2, 3, 0)):
            assert window_count(n, z, s, p) == _counts_by_unfold(n, z, s, p), (n, z, s, p)
    assert window_count(9, 2, 2)[-1] == 0 and min(window_count(8, 3, 2, 1)) == 1


def _crop_with(draw=None, index=None):
    """A batch crop ``(x, size, generator)`` whose offsets come from ``draw(n, span,
    generator)`` and whose patches from ``index(x, i, top, left, size)``."""
    def draw_right(n, span, g):
        return torch.randint(0, span + 1, (n,), generator=g)

    def index_right(x, i, top, left, size):
        return x[i, :, top:top + size, left:left + size]

    draw, index = draw or draw_right, index or index_right

    def crop(x, size, generator=None):
        n, _, h, w = x.shape
        top, left = draw(n, h - size, generator), draw(n, w - size, generator)
        return torch.stack([index(x, i, int(top[i]), int(left[i]), size) for i in range(n)])
    return crop


def test_a_batch_random_crop_and_its_usual_mistakes(capsys):
    assert _checked(capsys, "08-3", _crop_with())[0]
    rand = lambda n, span, g: (torch.rand(n, generator=g) * (span + 1)).long()  # noqa: E731
    assert _checked(capsys, "08-3", _crop_with(draw=rand))[0]  # another draw, also uniform

    def channels_last(x, size, generator=None):
        n, h, w, _ = x.shape
        top = torch.randint(0, h - size + 1, (n,), generator=generator)
        left = torch.randint(0, w - size + 1, (n,), generator=generator)
        return torch.stack([x[i, top[i]:top[i] + size, left[i]:left[i] + size]
                            for i in range(n)])

    def in_place(x, size, generator=None):
        out = _crop_with()(x, size, generator).clone()
        x.zero_()
        return out

    hints = {
        "not one for the whole batch": _crop_with(
            draw=lambda n, span, g: torch.randint(0, span + 1, (1,), generator=g).expand(n)),
        "never draws high": _crop_with(
            draw=lambda n, span, g: torch.randint(0, max(span, 1), (n,), generator=g)),
        "expected (64, 1, 8, 8)": _crop_with(
            index=lambda x, i, t, left, s: x[i, :, t:t + s - 1, left:left + s - 1]),
        "channels last": channels_last,
        "changed its input x": in_place,
        "draw the offsets from `generator`": _crop_with(
            draw=lambda n, span, g: torch.randint(0, span + 1, (n,))),
        "a patch of another image": _crop_with(
            index=lambda x, i, t, left, s: x[i - 1, :, t:t + s, left:left + s]),
    }
    for hint, wrong in hints.items():
        line = _checked(capsys, "08-3", wrong)[1]
        assert hint in line, (hint, line)


def test_reference_batch_random_crop_cuts_each_image_at_its_own_offsets():
    crop = _quiet_solution("08-3")
    x = torch.rand(500, 3, 9, 12, generator=torch.Generator().manual_seed(0))
    out = crop(x.clone(), 6, torch.Generator().manual_seed(1))
    assert out.shape == (500, 3, 6, 6)
    windows = x.unfold(2, 6, 1).unfold(3, 6, 1)  # every 6x6 patch of every image
    match = (windows == out[:, :, None, None]).flatten(4).all(-1).all(1)  # (500, 4, 7)
    assert bool(match.flatten(1).any(1).all())  # each output is a patch of its own image
    seen = match.any(0)
    assert bool(seen.all())  # every position, the last row and column included
    again = crop(x.clone(), 6, torch.Generator().manual_seed(1))
    assert torch.equal(again, out)


def test_window_count_mistakes_get_their_hint(capsys):
    def counts(n, z, s, p=0, extra=0, width=0, shift=True):
        out = [0] * n
        for i in range((n + 2 * p - z) // s + 1 + extra):
            start = i * s - (p if shift else 0)
            for c in range(max(start, 0), min(start + z + width, n)):
                out[c] += 1
        return out
    hints = {"one window too few": dict(extra=-1), "one window too many": dict(extra=1),
             "not z + 1": dict(width=1), "(cell -p), not at cell 0": dict(shift=False)}
    for hint, mistake in hints.items():
        line = _checked(capsys, "03-2", lambda n, z, s, p=0: counts(n, z, s, p, **mistake))[1]
        assert hint in line, (hint, line)
    line = _checked(capsys, "03-2", lambda n, z, s, p=0: [min(c, 1) for c in counts(n, z, s, p)])
    assert "not only whether one reaches it" in line[1]


def test_smallest_side_ending_in_2x2_by_building_the_net():
    n = _quiet_solution("03-3")
    assert n == 99

    def last_side(size):
        net = AlexNetSmall(input_size=size, hidden=8).eval()
        with torch.no_grad():
            return net.features(torch.zeros(1, 1, size, size)).shape[-1]
    assert last_side(n) >= 2 and last_side(n - 1) == 1 and last_side(67) == 1


def _mult_adds_by_hand(two_tower: bool, hidden: int = 4096) -> int:
    """conv: (weights + biases) per output position; linear: one use of each weight."""
    total, c_in = 0, 1
    sides = {r["layer"]: r["out"] for r in geometry(227)}
    for i, ((k, _, _), c_out) in enumerate(zip(CONV_GEOMETRY, (96, 256, 384, 384, 256)), 1):
        groups = 2 if two_tower and i in (2, 4, 5) else 1
        total += (c_out * (c_in // groups) * k * k + c_out) * sides[f"conv{i}"] ** 2
        c_in = c_out
    for fan_in, fan_out in ((256 * 6 * 6, hidden), (hidden, hidden), (hidden, 10)):
        total += fan_in * fan_out + fan_out
    return total


def test_references_of_notebook_04():
    assert _quiet_solution("04-1") == pytest.approx(
        _mult_adds_by_hand(True) / _mult_adds_by_hand(False), rel=1e-9)
    assert _quiet_solution("04-2") == [s for s in range(220, 232) if (s - 11) % 4 == 0] \
        == [223, 227, 231]
    net = AlexNet(hidden=1024)
    fc = sum(p.numel() for m in net.modules() if isinstance(m, nn.Linear)
             for p in m.parameters())
    assert _quiet_solution("04-3") == pytest.approx(fc / count_parameters(net), rel=1e-9)


def test_reference_to_pixels_inverts_the_input_adapter():
    from course_utils.data import MEAN, STD
    from course_utils.layers import InputAdapter

    to_pixels = _quiet_solution("00-1")
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    back = to_pixels(InputAdapter(28)(images), MEAN, STD)
    assert back.dtype == torch.uint8 and torch.equal(back, images)
    far = torch.tensor([-10.0, 10.0])  # beyond black and white: saturates
    assert to_pixels(far, MEAN, STD).tolist() == [0, 255]


def test_to_pixels_hints_at_the_usual_mistakes(capsys):
    def no_255(x, mean, std):
        return (x * std + mean).round().clamp(0, 255).to(torch.uint8)

    def swapped(x, mean, std):
        return ((x * mean + std) * 255).round().clamp(0, 255).to(torch.uint8)

    def no_clamp(x, mean, std):
        return ((x * std + mean) * 255).round().to(torch.uint8)

    def floats(x, mean, std):
        return ((x * std + mean) * 255).round().clamp(0, 255)

    for answer, hint in ((no_255, "scale [0, 1] to 0..255"), (swapped, "swapped"),
                         (no_clamp, "clamp to 0..255"), (WRONG["00-1"], "round to the nearest"),
                         (floats, "pixels are uint8")):
        result, line = _checked(capsys, "00-1", answer)
        assert result is False and hint in line, line


def test_reference_feature_extractor_is_alexnets():
    features = _quiet_solution("04-4")
    for channels, in_channels in (((96, 256, 384, 384, 256), 1), ((8, 12, 16, 16, 10), 3)):
        ours = features(channels, in_channels).eval()
        net = AlexNetSmall(channels=channels, in_channels=in_channels).eval()
        assert count_parameters(ours) == count_parameters(net.features)
        ours.load_state_dict(dict(zip(ours.state_dict(), net.features.state_dict().values())))
        x = torch.randn(2, in_channels, 67, 67)
        with torch.no_grad():
            assert torch.equal(ours(x), net.features(x))
            assert ours(x).shape == (2, channels[-1], 1, 1)


def test_feature_extractor_hints_at_the_usual_mistakes(capsys):
    import torch.nn.functional as F

    def build(pool=3, stride1=4, padding2=2, relus=(1, 2, 3, 4, 5), fixed=None):
        def features(channels=(96, 256, 384, 384, 256), in_channels=1):
            layers, c_in = [], in_channels
            for i, ((k, s, p), c_out) in enumerate(zip(
                    ((11, stride1, 0), (5, 1, padding2), (3, 1, 1), (3, 1, 1), (3, 1, 1)),
                    fixed or channels), start=1):
                layers += [nn.Conv2d(c_in, c_out, k, s, p)] + [nn.ReLU()] * (i in relus)
                layers += [nn.MaxPool2d(pool, 2)] * (i in (1, 2, 5))
                c_in = c_out
            return nn.Sequential(*layers)
        return features

    class Functional(nn.Module):  # F.relu and F.max_pool2d: judged by the outputs alone
        def __init__(self, channels=(96, 256, 384, 384, 256), in_channels=1):
            super().__init__()
            self.convs = nn.ModuleList([
                nn.Conv2d(c_in, c_out, k, s, p) for c_in, c_out, (k, s, p) in zip(
                    (in_channels, *channels[:4]), channels, CONV_GEOMETRY)])

        def forward(self, x):
            for i, conv in enumerate(self.convs, start=1):
                x = F.relu(conv(x))
                x = F.max_pool2d(x, 3, 2) if i in (1, 2, 5) else x
            return x

    assert _checked(capsys, "04-4", Functional)[0]
    for answer, hint in ((build(pool=2), "3x3 windows with stride 2"),
                         (build(stride1=3), "conv1's kernel, stride or padding"),
                         (build(padding2=0), "conv2's kernel, stride or padding"),
                         (build(relus=(1, 2, 4, 5)), "a ReLU after each"),
                         (build(relus=(1, 2, 3, 4)), "a ReLU is missing after conv5"),
                         (build(fixed=(96, 256, 384, 384, 256)), "conv1 maps 3 channels to 96"),
                         (Functional(), "not a module built from it"),
                         (lambda channels=(), in_channels=1: AlexNetSmall().features,
                          "from the course's package")):
        result, line = _checked(capsys, "04-4", answer)
        assert result is False and hint in line, line

    class Borrowed(nn.Module):  # a class whose __init__ takes the package's layers
        def __init__(self, channels=(96, 256, 384, 384, 256), in_channels=1):
            super().__init__()
            self.f = AlexNetSmall(channels=channels, in_channels=in_channels).features

        def forward(self, x):
            return self.f(x)
    result, line = _checked(capsys, "04-4", Borrowed)
    assert result is False and "course_utils.models.AlexNetSmall" in line


def _dropout(train, test=lambda x, p: x * (1 - p)):
    """A paper_dropout(x, p, training) made of a training rule and a test-time rule."""
    return lambda x, p, training: train(x, p) if training else test(x, p)


def test_the_papers_dropout_and_its_usual_mistakes(capsys):
    from course_utils.layers import PaperDropout

    def mask(x, keep):
        return torch.rand_like(x) < keep
    right = {"rand >= p": _dropout(lambda x, p: x * (torch.rand_like(x) >= p)),
             "bernoulli": _dropout(lambda x, p: x * torch.bernoulli(torch.full_like(x, 1 - p))),
             "F.dropout undone": _dropout(
                 lambda x, p: nn.functional.dropout(x, p, True) * (1 - p))}
    for name, answer in right.items():
        assert _checked(capsys, "09-3", answer)[0], name
    hints = {
        "that is inverted dropout": _dropout(lambda x, p: x * mask(x, 1 - p) / (1 - p),
                                             lambda x, p: x),
        "does not scale the kept units": _dropout(lambda x, p: x * mask(x, 1 - p) * p),
        "belongs to test time": _dropout(lambda x, p: x * mask(x, 1 - p) * (1 - p)),
        "multiplies every output by 1 - p": _dropout(lambda x, p: x * mask(x, 1 - p),
                                                     lambda x, p: x),
        "not by p": _dropout(lambda x, p: x * mask(x, 1 - p), lambda x, p: x * p),
        "keeps a unit with probability p": _dropout(lambda x, p: x * mask(x, p)),
        "nothing was dropped": _dropout(lambda x, p: x),
        "no unit is dropped": _dropout(lambda x, p: x * mask(x, 1 - p),
                                       lambda x, p: x * mask(x, 1 - p) * (1 - p)),
        "draw one random number per value": _dropout(
            lambda x, p: x * (torch.rand(x.shape[-1]) >= p)),
        "draw a new random mask on every call": _dropout(
            lambda x, p: x * (torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
                              >= p)),
        "must not depend on the values": _dropout(lambda x, p: x.clamp(min=0) * mask(x, 1 - p)),
        "with p = 0 nothing is dropped": _dropout(
            lambda x, p: x * mask(x, 1 - p) if p else x * mask(x, 0.5),
            lambda x, p: x * (1 - p)),
    }
    for hint, wrong in hints.items():
        result, line = _checked(capsys, "09-3", wrong)
        assert result is False and hint in line, (hint, line)
    result, line = _checked(capsys, "09-3", _dropout(lambda x, p: PaperDropout(p).train()(x)))
    assert result is False and "course_utils.layers.PaperDropout" in line


def test_check_and_solution_are_the_packages_public_api():
    assert course_utils.check is check and course_utils.solution is solution
    assert {"check", "solution"} <= set(course_utils.__all__)


def test_importing_the_module_stays_light():
    code = ("import sys, course_utils.exercises; "
            "print(sorted(m for m in ('torchinfo', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_references_of_notebook_05():
    smoothed_ce = _quiet_solution("05-2")
    logits, target = torch.randn(8, 10, dtype=torch.float64), torch.randint(0, 10, (8,))
    for eps in (0.0, 0.1, 1.0):
        expected = torch.nn.functional.cross_entropy(logits, target, label_smoothing=eps)
        assert torch.allclose(smoothed_ce(logits, target, eps), expected)


def _logistic_net(callbacks=()):
    """A skorch net of its own (logistic regression on 200 random points): 8 epochs."""
    from skorch import NeuralNetClassifier
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    g = torch.Generator().manual_seed(3)
    X = torch.randn(200, 5, generator=g)
    y = (X[:, 0] + 0.5 * torch.randn(200, generator=g) > 0).long()
    net = NeuralNetClassifier(nn.Linear, module__in_features=5, module__out_features=2,
                              criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD, lr=0.05,
                              max_epochs=8, batch_size=200,
                              train_split=predefined_split(Dataset(X[150:], y[150:])),
                              callbacks=list(callbacks), verbose=0)
    torch.manual_seed(0)
    return net.fit(X[:150], y[:150])


def test_the_stopping_callback_stops_in_the_epoch_that_reaches_the_target():
    from skorch.callbacks import EarlyStopping

    StopAtAccuracy = _quiet_solution("05-1")
    assert issubclass(StopAtAccuracy, Callback)
    curve = _logistic_net().history[:, "valid_acc"]
    assert len(curve) == 8 and max(curve) > curve[0]  # the accuracy rises: a target to reach
    for target in sorted(set(curve)) + [0.0, max(curve) + 0.01]:
        due = next((k for k, acc in enumerate(curve, start=1) if acc >= target), len(curve))
        net = _logistic_net([("stop", StopAtAccuracy(target))])
        assert len(net.history) == due and net.history[:, "valid_acc"] == curve[:due]
    # skorch's own EarlyStopping ends training the same way: with KeyboardInterrupt
    patient = _logistic_net([("es", EarlyStopping(monitor="valid_acc", lower_is_better=False,
                                                  patience=1, threshold=10.0))])
    assert len(patient.history) == 2
    net = _logistic_net([("stop", StopAtAccuracy(1.0))])
    net.set_params(callbacks__stop__target=0.0)  # its parameter is a skorch parameter
    assert dict(net.callbacks_)["stop"].target == 0.0


class _Stop(Callback):
    """05-1 answers: ``decide(net, target)`` in on_epoch_end; True stops training."""

    def __init__(self, target):
        self.target = target

    def on_epoch_end(self, net, **kwargs):
        if self.decide(net, self.target):
            raise KeyboardInterrupt


def _stop_when(decide, base=_Stop):
    return type("StopAtAccuracy", (base,), {"decide": staticmethod(decide)})


def test_stop_at_accuracy_hints_at_the_usual_mistakes(capsys):
    class Late(Callback):  # decides at the start of the next epoch
        def __init__(self, target):
            self.target = target

        def on_epoch_begin(self, net, **kwargs):
            if len(net.history) > 1 and net.history[-2, "valid_acc"] >= self.target:
                raise KeyboardInterrupt

    class NoCallback:
        def __init__(self, target):
            self.target = target

        def on_epoch_end(self, net, **kwargs):
            if net.history[-1, "valid_acc"] >= self.target:
                raise KeyboardInterrupt

    class Renamed(_Stop):
        def __init__(self, target):
            self.goal = target

    class Stateful(_Stop):  # its flag is set in __init__, never reset in initialize
        def __init__(self, target):
            self.target, self.done = target, False

        def decide(self, net, target):
            if self.done or net.history[-1, "valid_acc"] < target:
                return False
            self.done = True
            return True

    class Resets(Stateful):  # the same, reset where skorch resets callbacks
        def initialize(self):
            self.done = False
            return self

    class StopIter(_Stop):
        def on_epoch_end(self, net, **kwargs):
            if net.history[-1, "valid_acc"] >= self.target:
                raise StopIteration

    class NoKwargs(_Stop):
        def on_epoch_end(self, net):
            pass

    valid = _stop_when(lambda net, t: net.history[-1, "valid_acc"] >= t)
    assert _checked(capsys, "05-1", valid)[0] and _checked(capsys, "05-1", Resets)[0]
    for answer, hint in (
            (WRONG["05-1"], "reads the training accuracy"),
            (Late, "one epoch late"),
            (_stop_when(lambda net, t: net.history[-1, "valid_acc"] > t), "reaching it is enough"),
            (_stop_when(lambda net, t: False), "never stops training"),
            (_stop_when(lambda net, t: len(net.history) == 2), "still under the target"),
            (_stop_when(lambda net, t: net.history[-1, "valid_accuracy"] >= t),
             'the history\'s "valid_acc"'),
            (NoCallback, "must subclass skorch.callbacks.Callback"),
            (Renamed, "keep the argument as self.target"),
            (Stateful, "keeps state from the first fit"),
            (StopIter, "end training with KeyboardInterrupt"),
            (NoKwargs, "**kwargs"),
            (_stop_when(lambda net, t: dead_unit_share(torch.zeros(1, 1)) > 2),
             "from the course's package"),
            (valid(0.5), "not an instance"),
            (lambda target: valid(target), "expected a class")):
        result, line = _checked(capsys, "05-1", answer)
        assert result is False and hint in line, (hint, line)


def test_ten_view_average_hints_at_the_usual_mistakes(capsys):
    import torch.nn.functional as F

    def average(model, x, crop, flip=(-1,), softmax_last=False, evaluate=True,
                shift=0, views=True, mean=True):
        if evaluate:
            model.eval()
        h, w = x.shape[-2:]
        corners = [((h - crop) // 2, (w - crop) // 2), (0, 0), (0, w - crop - shift),
                   (h - crop - shift, 0), (h - crop - shift, w - crop - shift)]
        cut = [x[..., t:t + crop, c:c + crop] for t, c in corners]
        cut += [torch.flip(v, dims=list(flip)) for v in cut] if views else []
        with torch.no_grad():
            logits = torch.stack([model(v) for v in cut])
        if softmax_last:
            return F.softmax(logits.mean(0), dim=1)
        probs = F.softmax(logits, dim=2)
        return probs.mean(0) if mean else probs

    assert _checked(capsys, "10-3", average)[0]
    for kwargs, hint in ((dict(views=False), "you forgot the flips"),
                         (dict(softmax_last=True), "not their logits"),
                         (dict(flip=(-2,)), "not upside down"),
                         (dict(shift=1), "wrong corner offsets"),
                         (dict(mean=False), "average over the ten views"),
                         (dict(evaluate=False), "eval mode")):
        result, line = _checked(capsys, "10-3", functools.partial(average, **kwargs))
        assert result is False and hint in line, (kwargs, line)
    assert "centre crop alone" in _checked(capsys, "10-3", WRONG["10-3"])[1]


def test_top_k_error_agrees_with_scikit_learn_and_hints_at_the_usual_mistakes(capsys):
    from sklearn.metrics import top_k_accuracy_score

    top_k_error = _quiet_solution("13-1")
    g = torch.Generator().manual_seed(3)
    for n, classes, k in ((100, 12, 5), (40, 1000, 5), (60, 7, 1), (30, 5, 5)):
        logits, labels = torch.randn(n, classes, generator=g), torch.randint(0, classes, (n,),
                                                                                generator=g)
        expected = 1 - top_k_accuracy_score(labels.numpy(), logits.numpy(), k=k,
                                            labels=list(range(classes)))
        assert top_k_error(logits, labels, k) == pytest.approx(expected, abs=1e-6)
    assert "top-1 error" in _checked(capsys, "13-1", WRONG["13-1"])[1]

    def accuracy(logits, labels, k=5):
        return (logits.topk(k, 1).indices == labels[:, None]).any(1).float().mean()
    assert "top-k accuracy" in _checked(capsys, "13-1", accuracy)[1]
    assert "not a percentage" in _checked(
        capsys, "13-1", lambda logits, labels, k=5: 100 * (1 - accuracy(logits, labels, k)))[1]


_BIAS_ONE = {"conv2", "conv4", "conv5", "fc6", "fc7"}


def _init(weight=lambda w: nn.init.normal_(w, 0.0, 0.01),
          bias=lambda layer: 1.0 if layer in _BIAS_ONE else 0.0, types=(nn.Conv2d, nn.Linear)):
    """An answer to 07-1: ``weight`` draws each layer's weights, ``bias`` its constant."""
    def init_paper(model):
        for name, m in model.named_modules():
            if isinstance(m, types):
                weight(m.weight)
                nn.init.constant_(m.bias, bias(name.rsplit(".", 1)[-1]))
        return model
    return init_paper


def test_reference_init_paper_is_the_packages_paper_init():
    from course_utils.models import initialize

    init_paper = _quiet_solution("07-1")
    for build in (AlexNetSmall, lambda: AlexNet(hidden=256, two_tower=True)):
        torch.manual_seed(0)
        ours = init_paper(build())
        torch.manual_seed(0)
        theirs = initialize(build(), "paper")
        assert all(torch.equal(p, q) for p, q in zip(ours.parameters(), theirs.parameters()))


def test_init_paper_hints_at_the_usual_mistakes(capsys):
    def in_place_without_return(model):  # the tensors' own methods, no return: also right
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0.0, 0.01)
                m.bias.fill_(1.0 if name.rsplit(".", 1)[-1] in _BIAS_ONE else 0.0)

    assert _checked(capsys, "07-1", _init())[0]
    assert _checked(capsys, "07-1", in_place_without_return)[0]
    root3 = 3 ** 0.5
    for answer, hint in (
            (_init(weight=lambda w: nn.init.normal_(w, 0.0, 0.1)), "not the variance"),
            (_init(weight=lambda w: nn.init.normal_(w, 0.01)), "sets the *mean*"),
            (_init(bias=lambda layer: 1.0), "every bias is 1"),
            (_init(bias=lambda layer: 0.0), "every bias is 0"),
            (_init(types=(nn.Conv2d,)), "fully connected layers (nn.Linear"),
            (_init(types=(nn.Linear,)), "convolutions (nn.Conv2d"),
            (_init(weight=lambda w: nn.init.uniform_(w, -0.01 * root3, 0.01 * root3)),
             "not Gaussian"),
            (_init(weight=lambda w: nn.init.normal_(w, 0.0, 0.001 if w.shape[0] == 10 else 0.01)),
             "output layer fc8"),
            (_init(weight=lambda w: nn.init.normal_(w, 0.0, 0.02)), "wrong spread"),
            (_init(bias=lambda layer: 1.0 if layer in _BIAS_ONE | {"fc8"} else 0.0),
             "fc8 (1, should be 0)"),
            (lambda model: model, "kept the weights it had"),
            (lambda model: nn.Sequential(nn.Linear(2, 2)), "returned another network")):
        result, line = _checked(capsys, "07-1", answer)
        assert result is False and hint in line, (hint, line)


def test_reference_param_grid_expands_to_the_questions_configurations():
    from sklearn.model_selection import GridSearchCV, ParameterGrid
    from skorch import NeuralNetClassifier

    make_param_grid = _quiet_solution("06-1")
    grid = make_param_grid([1e-4, 1e-3, 1e-2], [0.3, 0.5], 128)
    points = list(ParameterGrid(grid))
    assert len(points) == 6 and {p["batch_size"] for p in points} == {128}
    assert {(p["lr"], p["module__dropout"]) for p in points} == {
        (lr, d) for lr in (1e-4, 1e-3, 1e-2) for d in (0.3, 0.5)}
    # skorch takes every key: each point sets the net's lr and batch size and the module's
    # dropout (the module is built with it)
    net = NeuralNetClassifier(AlexNetSmall, module__channels=(8, 8, 8, 8, 8), max_epochs=1)
    GridSearchCV(net, grid)  # a valid estimator and grid
    for point in points:
        net.set_params(**point).initialize()
        assert (net.lr, net.batch_size) == (point["lr"], 128)
        assert net.module_.classifier.drop6.p == point["module__dropout"]


def test_param_grid_mistakes_get_their_hint(capsys):
    def grid(**changes):
        def make_param_grid(lrs, dropouts, batch_size):
            g = {"lr": list(lrs), "module__dropout": list(dropouts),
                 "batch_size": [batch_size]}
            for key, value in changes.items():
                if value is None:
                    g.pop(key)
                elif callable(value):
                    g[key] = value(lrs, dropouts, batch_size)
            return g
        return make_param_grid

    def renamed(old, new):
        def make_param_grid(lrs, dropouts, batch_size):
            g = grid()(lrs, dropouts, batch_size)
            g[new] = g.pop(old)
            return g
        return make_param_grid

    right_too = [lambda lrs, dropouts, batch_size: [  # a list of grids, tuples as values
        {"lr": (lr,), "module__dropout": tuple(dropouts), "batch_size": (batch_size,)}
        for lr in lrs]]
    for answer in right_too:
        assert _checked(capsys, "06-1", answer)[0]
    for answer, hint in (
            (renamed("module__dropout", "dropout"), "behind the module__ prefix"),
            (renamed("lr", "optimizer__lr"), "the net's own learning rate, lr"),
            (renamed("batch_size", "iterator_train__batch_size"), "training loader only"),
            (renamed("batch_size", "batch"), "is batch_size"),
            (renamed("module__dropout", "module__p"), "AlexNetSmall's argument is called"),
            (grid(batch_size=lambda lrs, dropouts, batch_size: batch_size),
             "a fixed value too (a list of one)"),
            (grid(batch_size=None), "has no 'batch_size'"),
            (grid(max_epochs=lambda *a: [10]), "an extra axis"),
            (grid(lr=lambda lrs, dropouts, batch_size: list(dropouts),
                  module__dropout=lambda lrs, dropouts, batch_size: list(lrs)),
             "lr takes the learning rates"),
            (grid(lr=lambda lrs, dropouts, batch_size: [str(v) for v in lrs]),
             "write it without quotes"),
            (grid(lr=lambda lrs, dropouts, batch_size: list(lrs)[:1]), "every value of lrs"),
            (grid(lr=lambda lrs, dropouts, batch_size: list(lrs) * 2), "repeats configurations"),
            ({"lr": [1e-4, 1e-3, 1e-2], "module__dropout": [0.3, 0.5], "batch_size": [128]},
             "builds the grid from its arguments")):
        result, line = _checked(capsys, "06-1", answer)
        assert result is False and hint in line, (hint, line)


def test_check_and_solution_leave_the_random_state_alone(capsys):
    from course_utils.exercises import judge

    judge._reference_answer.cache_clear()  # every reference runs again
    state = torch.get_rng_state()
    for exercise_id in IDS:
        _quiet_solution(exercise_id)
        _checked(capsys, exercise_id, WRONG[exercise_id])
    assert torch.equal(torch.get_rng_state(), state)


# --------------------------------------------------------------------------- one home, no strings

EXERCISES_DIR = Path(course_utils.__file__).resolve().parent / "exercises"


def _imported_modules(path: Path) -> list[str]:
    """The absolute names of the modules a file of course_utils/exercises imports."""
    package = ["course_utils", "exercises"]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.append(module)
            names += [f"{module}.{a.name}" for a in node.names]  # from .. import lessons
    return names


def test_no_exercises_module_imports_lessons_or_runs_strings():
    paths = sorted(EXERCISES_DIR.glob("*.py"))
    assert {p.stem for p in paths} >= {"__init__", "judge", "ch01", "ch11", "ch12"}
    for path in paths:
        lessons = [m for m in _imported_modules(path)
                   if m == "course_utils.lessons" or m.startswith("course_utils.lessons.")]
        assert not lessons, f"{path.name} imports {lessons}"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func  # exec(...) or builtins.exec(...); net.eval() is a method
                called = f.id if isinstance(f, ast.Name) else (
                    f.attr if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                    and f.value.id == "builtins" else None)
                assert called not in ("exec", "eval", "compile", "__import__"), (
                    f"{path.name}:{node.lineno} calls {called}")


def test_the_ast_walk_sees_a_relative_import_of_the_lessons(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from ..lessons.ch11_transfer import dead_share\nfrom .. import lessons\n")
    assert _imported_modules(probe).count("course_utils.lessons") == 1
    assert "course_utils.lessons.ch11_transfer" in _imported_modules(probe)


def test_every_solution_and_check_runs_without_loading_a_lesson():
    code = ("import contextlib, io, sys\n"
            "from course_utils.exercises import EXERCISES, check, solution\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert all(check(i, solution(i)) for i in EXERCISES)\n"
            "print(sorted(m for m in sys.modules if m.startswith('course_utils.lessons')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_imagenet_check_lives_in_the_exercises():
    from course_utils.exercises import check_imagenet_transfer
    from course_utils.lessons import ch11_transfer

    assert ch11_transfer.check_imagenet_transfer is check_imagenet_transfer  # re-exported
    assert check_imagenet_transfer.__module__ == "course_utils.exercises.ch11"


# --------------------------------------------------------------------------- the student's own code

WRITE_IT = [i for i in IDS if EXERCISES[i].write_it]


def _package_callables() -> dict:
    """Every callable in the ``__all__`` of course_utils.lessons.*, layers, models,
    training (and its modules) and experiment."""
    names = ["course_utils.layers", "course_utils.models", "course_utils.experiment"]
    for package in ("course_utils.training", "course_utils.lessons"):
        names += [package] + [f"{package}.{m.name}" for m in
                              pkgutil.iter_modules(importlib.import_module(package).__path__)]
    found = {}
    for name in names:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr, None)
            if callable(obj):
                found[f"{name}.{attr}"] = obj
    return found


def test_no_function_of_the_package_passes_a_write_it_exercise(capsys):
    exported = _package_callables()
    assert {"course_utils.training.dead_unit_share",
            "course_utils.lessons.ch12_what_it_learned.neighbour_agreement",
            "course_utils.lessons.ch12_what_it_learned.orientation_index",
            "course_utils.layers.LocalResponseNorm"} <= set(exported)
    assert set(WRITE_IT) == {"00-1", "01-1", "01-3", "02-2", "03-2", "04-4", "05-1", "05-2",
                             "06-1", "07-1", "08-3", "09-3", "10-3", "11-3", "11-4", "12-2",
                             "12-3", "13-1"}
    for exercise_id in WRITE_IT:
        for name, f in exported.items():
            for answer in (f, functools.partial(f), lambda *a, _f=f, **k: _f(*a, **k)):
                result, line = _checked(capsys, exercise_id, answer)
                assert result is False and "from the course's package" in line, (name, line)


def test_the_refusal_is_what_stops_the_lessons_twins(capsys):
    """12-2 asks for what a lesson function computes: the judge alone would pass a thin
    wrapper of it."""
    from course_utils.lessons.ch12_what_it_learned import low_frequency_share

    def one_share(w, cutoff=0.25):
        return low_frequency_share(w, cutoff)[0].item()

    for exercise_id, twin in (("12-2", one_share),):
        exercise = EXERCISES[exercise_id]
        assert exercise.judge(twin, exercise.answer) is None
        result, line = _checked(capsys, exercise_id, twin)
        assert result is False and "from the course's package" in line
        assert "write the function yourself" in line


def _low_share_wrong(w, cutoff=0.25, mean=True, power=2, per_axis=False, bins=False):
    """A student's low_share with one of the usual mistakes."""
    v = w - w.mean() if mean else w
    p = torch.fft.fft2(v).abs() ** power
    h, wd = w.shape
    fy = torch.fft.fftfreq(h, dtype=w.dtype)[:, None] * (h if bins else 1)
    fx = torch.fft.fftfreq(wd, dtype=w.dtype)[None, :] * (wd if bins else 1)
    low = (((fx.abs() <= cutoff) & (fy.abs() <= cutoff)) if per_axis
           else (fx ** 2 + fy ** 2).sqrt() <= cutoff).expand(h, wd)
    return 0.0 if p.sum() == 0 else float(p[low].sum() / p.sum())


def test_low_share_hints_at_the_usual_mistakes(capsys):
    for kwargs, hint in (({"mean": False}, "remove the filter's mean"),
                         ({"power": 1}, "not by the amplitude"),
                         ({"per_axis": True}, "sqrt(fx^2 + fy^2)"),
                         ({"bins": True}, "cycles per pixel")):
        result, line = _checked(capsys, "12-2", functools.partial(_low_share_wrong, **kwargs))
        assert result is False and hint in line, (kwargs, line)
    assert _checked(capsys, "12-2", _low_share_wrong)[0]


def test_capture_fc7_hints_at_the_usual_mistakes(capsys):
    for kwargs, hint in (({"remove": False}, "call handle.remove()"),
                         ({"keep": "input"}, "keep the output"),
                         ({"eval_mode": False}, "put the model in eval mode"),
                         ({"no_grad": False}, "torch.no_grad()"),
                         ({"layer": "act7"}, "after its ReLU"),
                         ({"layer": "fc6"}, "that is fc6's output"),
                         ({"layer": "fc8"}, "the logits")):
        result, line = _checked(capsys, "12-3", functools.partial(_capture_fc7_wrong, **kwargs))
        assert result is False and hint in line, (kwargs, line)
    assert _checked(capsys, "12-3", _capture_fc7_wrong)[0]  # none of the mistakes
    result, line = _checked(capsys, "12-3", lambda model, x: [model(x)])
    assert result is False and "a list" in line


def _helper_calling_the_package(acts, tol=0.99):
    from course_utils import training
    return training.dead_unit_share(acts, tol)


def test_wrapping_a_package_function_does_not_pass(capsys):
    from course_utils import training
    from course_utils.layers import LocalResponseNorm
    from course_utils.training import dead_unit_share

    class MyLRN(LocalResponseNorm):
        pass

    for exercise_id, answer in (
            ("11-3", lambda a, tol=0.99: training.dead_unit_share(a, tol)),  # a module's name
            ("11-3", lambda a, tol=0.99: _helper_calling_the_package(a, tol)),  # via a helper
            ("11-3", types.FunctionType(dead_unit_share.__code__, {"torch": torch})),  # copied
            ("02-2", MyLRN(5, convention="paper")),  # a layer of the package, subclassed
            ("02-2", LocalResponseNorm(5, convention="paper").forward)):  # a bound method
        result, line = _checked(capsys, exercise_id, answer)
        assert result is False and "from the course's package" in line, line


def test_the_students_own_code_passes_beside_the_packages_names(capsys):
    from course_utils.data import STD  # a constant of the package may be read

    def dead_units(acts, tol=0.99):  # the student's code, reading a constant of the package
        zero = (acts == 0).double().mean(dim=0)
        return zero >= tol + 0.0 * float(STD)

    def capture_fc7(model, x):  # the student's own: detached in the hook, the mode restored
        kept = {}
        handle = model.classifier.fc7.register_forward_hook(
            lambda m, i, o: kept.update(fc7=o.detach()))
        was_training = model.training
        model.eval()
        try:
            model(x)
        finally:
            handle.remove()
            model.train(was_training)
        return kept["fc7"]

    def torch_lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
        # torch's layer, whose name the package's layer shares
        return nn.LocalResponseNorm(n, alpha * n, beta, k)(a)
    assert _checked(capsys, "11-3", dead_units)[0]
    assert _checked(capsys, "12-3", capture_fc7)[0]
    assert _checked(capsys, "02-2", torch_lrn)[0]
    assert _checked(capsys, "11-3", functools.partial(dead_units, tol=0.99))[0]


# ------------------------------------------------------------------- the lessons' copies agree

def test_references_agree_with_the_lessons_copies():
    """Where a lesson keeps its own version of a reference solution, both give the same."""
    import torch.nn.functional as F
    from torchvision.transforms.v2.functional import ten_crop

    from course_utils.lessons import ch04_architecture as arch
    from course_utils.lessons import ch08_augmentation as aug
    from course_utils.lessons import ch10_ten_crops as tta
    from course_utils.lessons import ch11_transfer as transfer
    from course_utils.lessons import ch12_what_it_learned as learned

    two = arch.layer_table(AlexNet(two_tower=True))["mult-adds"].sum()
    assert _quiet_solution("04-1") == pytest.approx(
        two / arch.layer_table(AlexNet())["mult-adds"].sum(), rel=1e-9)
    assert _quiet_solution("04-2") == [s for s in range(220, 232)
                                       if arch.geometry(s)["conv1 tiles exactly"]]
    assert _quiet_solution("08-1") == aug.distinct_patches(36, 28, flips=True)

    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    ours, theirs = tta.ten_crops(x, padding=2), ten_crop(F.pad(x, (2, 2, 2, 2)), [28, 28])
    for k, view in enumerate(("top-left", "top-right", "bottom-left", "bottom-right", "centre")):
        assert torch.equal(ours[tta.VIEWS.index(view)], theirs[k])
    # torchvision mirrors the image before cutting: the same ten views, another order
    assert len(theirs) == len(ours) == 10
    assert all(any(torch.equal(v, w) for w in ours) for v in theirs)
    # 10-3's average, on images padded by 2 and cut at their own side, is the lesson's
    average = _quiet_solution("10-3")
    torch.manual_seed(0)
    model = AlexNetSmall(channels=(8, 16, 16, 16, 8)).eval()
    x8 = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    probs, _ = tta.view_probabilities(model, x8, padding=2)
    torch.testing.assert_close(average(model, F.pad(x8, (2, 2, 2, 2)), 28), probs.mean(0),
                               atol=1e-5, rtol=1e-4)

    channels = (24, 64, 96, 96, 64)
    frozen = transfer.transfer_model(AlexNetSmall(num_classes=5, channels=channels), "frozen",
                                     channels=channels)
    trainable = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
    assert _quiet_solution("11-1") == pytest.approx(trainable / count_parameters(frozen),
                                                    rel=1e-12)
    g = torch.Generator().manual_seed(1)
    dead = _quiet_solution("11-3")
    for n, tol in ((200, 0.99), (200, 1.0), (50, 0.75), (7, 0.5)):
        acts = torch.relu(torch.randn(n, 40, generator=g) - 1.5)
        acts[:, :5] = 0
        share = dead(acts, tol).double().mean().item()  # the mask's mean: the package's share
        assert share == pytest.approx(dead_unit_share(acts, tol))

    share, capture = _quiet_solution("12-2"), _quiet_solution("12-3")
    for shape, cutoff in (((11, 11), 0.25), ((7, 9), 0.1), ((5, 5), 0.4)):
        w = torch.randn(*shape, generator=g, dtype=torch.float64)
        assert share(w, cutoff) == pytest.approx(
            float(learned.low_frequency_share(w, cutoff)[0]), abs=1e-9)
    assert share(torch.ones(4, 4, dtype=torch.float64)) == float(
        learned.low_frequency_share(torch.ones(4, 4))[0]) == 0.0
    torch.manual_seed(3)
    net = AlexNetSmall(channels=(8, 16, 16, 16, 8), hidden=24)
    x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8, generator=g)
    assert torch.allclose(capture(net, x), learned.activations(net, x, "fc7"), atol=1e-6)
    assert not net.classifier.fc7._forward_hooks
    assert f"{learned.LOW_FREQUENCY}" in EXERCISES["12-1"].question
    noise = torch.randn(4000, 11, 11, generator=g, dtype=torch.float64)
    assert _quiet_solution("12-1") == pytest.approx(
        float(learned.low_frequency_share(noise).mean()), abs=0.01)
