"""The notebooks' exercises: check an answer, or show the reference solution.

A notebook's exercise cell reads::

    answer = None  # your answer: a number
    check("04-1", answer)

Set ``answer`` and run the cell again. :func:`check` prints one line, saying
what is right or what is wrong (the type, the shape, which test input
differed, how far off), and returns True or False; it never shows the
reference answer. :func:`solution` does: it prints the reference solution's
code and returns its answer.

Every reference answer is computed by its solution's code, mostly from the
course's own building blocks (:mod:`course_utils.models`,
:mod:`course_utils.layers`, the notebook's lesson module); nothing is a typed
constant. Heavy imports happen inside that code, on first use, so importing
this module stays fast.
"""
from __future__ import annotations

import copy
import functools
import math
import numbers
import textwrap
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .config import CourseError

__all__ = ["EXERCISES", "Exercise", "ExerciseError", "check", "solution"]


class ExerciseError(CourseError, ValueError):
    """An exercise id that does not exist."""


#: A judge gets the answer and a function that computes the reference answer
#: (called only when needed), and returns None for a right answer, else what is wrong.
Judge = Callable[[Any, Callable[[], Any]], "str | None"]


@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook.

    Parameters
    ----------
    id : str
        ``"NN-k"``: notebook NN, exercise k.
    question : str
        The question in one line.
    expects : str
        What ``answer`` should be ("a number", "a function lrn(a, ...)").
    source : str
        The reference solution: Python code that sets ``answer``.
    judge : callable
        ``judge(answer, reference)`` returns None when ``answer`` is right, else
        a message; ``reference()`` computes the reference answer.
    """

    id: str
    question: str
    expects: str
    source: str
    judge: Judge


# --------------------------------------------------------------------------- describing values

def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _kind(x: Any) -> str:
    """How a wrong-typed answer is described: its type, and a short repr for strings."""
    if isinstance(x, str):
        return f"a string ({_one_line(repr(x), 40)}): write it without quotes"
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    if callable(x):
        return "a function"
    name = type(x).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _as_number(x: Any) -> float | None:
    """``x`` as a float when it is one real number (int, float, NumPy or 1-element tensor)."""
    if isinstance(x, bool):
        return None
    if isinstance(x, numbers.Real):
        return float(x)
    if isinstance(x, torch.Tensor) and x.numel() == 1 and not x.is_complex() \
            and x.dtype != torch.bool:
        return float(x.item())
    if type(x).__module__ == "numpy" and getattr(x, "size", None) == 1 \
            and getattr(x, "dtype", None) is not None and x.dtype.kind in "iuf":
        return float(x.item())
    return None


def _as_int(x: Any) -> int | None:
    """``x`` as an int when it is a whole number (``3``, ``3.0``, ``tensor(3)``)."""
    value = _as_number(x)
    if value is None or not math.isfinite(value) or not value.is_integer():
        return None
    return int(value)


def _miss(value: float, ref: float) -> str:
    """How far off ``value`` is, coarsely enough not to give the reference away."""
    if value == 0:
        return "is 0"
    if ref == 0:
        return "should be 0"
    if (value > 0) != (ref > 0):
        return "has the wrong sign"
    ratio = value / ref
    word = "too large" if ratio > 1 else "too small"
    factor = max(ratio, 1 / ratio)
    if factor >= 10:  # only the order of magnitude
        exponent = round(math.log10(factor))
        return (f"is {word} by a factor of about {10 ** exponent:,}" if exponent <= 6
                else f"is {word} by a factor of about 10^{exponent}")
    if factor >= 2:
        return f"is {word} by a factor of about {round(factor)}"
    percent = 100 * (factor - 1)
    if percent < 1:
        return f"is slightly {word} (by less than 1%)"
    return f"is {word} by about {percent:.0f}%"


def _call(f: Callable, args: tuple, kwargs: dict, shown: str) -> tuple[Any, str | None]:
    """Call the student's function; an exception becomes a one-line message."""
    try:
        return f(*args, **kwargs), None
    except Exception as exc:  # any exception is a wrong answer, reported on one line
        detail = str(exc)
        name = type(exc).__name__
        return None, f"{shown} raised {name}: {detail}" if detail else f"{shown} raised {name}"


# --------------------------------------------------------------------------- judges

def _number(rel: float | None = None, abs_: float | None = None,
            mistakes: Callable[[], list[tuple[float, str]]] | None = None,
            share: bool = False) -> Judge:
    """A number within ``rel`` (relative) or ``abs_`` (absolute) tolerance of the reference.

    ``mistakes()`` lists values of common mistakes with a hint each; ``share``
    asks for a value between 0 and 1.
    """
    def judge(answer, reference):
        value = _as_number(answer)
        if value is None:
            return f"expected a number, got {_kind(answer)}"
        if not math.isfinite(value):
            return f"your answer is {value}: expected a finite number"
        if share and not 0 <= value <= 1:
            return "give a share between 0 and 1 (0.25 for a quarter), not a percentage"
        ref = float(reference())
        if math.isclose(value, ref, rel_tol=rel or 0.0, abs_tol=abs_ or 0.0):
            return None
        for wrong, hint in (mistakes() if mistakes else []):
            if math.isclose(value, wrong, rel_tol=1e-3):
                return f"not quite: {hint}"
        return f"not quite: your answer {_miss(value, ref)}"
    return judge


def _tensor_function(name: str, cases: Callable[[], list[tuple[str, tuple, dict, torch.Tensor]]],
                     atol: float, rtol: float = 0.0,
                     mistakes: Callable[[tuple, dict], list[tuple[torch.Tensor, str]]] | None = None
                     ) -> Judge:
    """A function whose output matches the expected tensor on every case.

    ``cases()`` lists ``(description, args, kwargs, expected)``; ``mistakes(args,
    kwargs)`` the outputs of common mistakes, with a hint each.
    """
    def judge(answer, reference):
        if not callable(answer):
            return f"expected a function {name}(...), got {_kind(answer)}"
        for shown, args, kwargs, expected in cases():
            args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
            out, error = _call(answer, args, kwargs, f"your function, on {shown},")
            if error:
                return error
            try:
                out = torch.as_tensor(out)
            except Exception:
                return f"on {shown} your function returned {_kind(out)}, expected a tensor"
            if out.shape != expected.shape:
                return (f"on {shown} your function returned shape {tuple(out.shape)}, "
                        f"expected {tuple(expected.shape)}")
            out, exp = out.detach().double(), expected.double()
            diff = (out - exp).abs()
            bad = ~(diff <= atol + rtol * exp.abs())  # NaN counts as bad
            if bad.any():
                for wrong, hint in (mistakes(args, kwargs) if mistakes else []):
                    if torch.allclose(out, wrong.double(), atol=atol, rtol=rtol):
                        return f"on {shown}: {hint}"
                largest = diff.nan_to_num(nan=math.inf).max().item()
                return (f"on {shown}, {int(bad.sum())} of {bad.numel()} values differ: the "
                        f"largest difference is {largest:.3g} (tolerance {atol:g})")
        return None
    return judge


def _int_function(name: str, cases: Callable[[Callable], list[tuple[str, tuple, dict, int]]]
                  ) -> Judge:
    """A function returning an int that equals the expected one on every case.

    ``cases(reference_function)`` lists ``(call shown, args, kwargs, expected)``.
    """
    def judge(answer, reference):
        if not callable(answer):
            return f"expected a function {name}(...), got {_kind(answer)}"
        for shown, args, kwargs, expected in cases(reference()):
            args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
            out, error = _call(answer, args, kwargs, shown)
            if error:
                return error
            value = _as_int(out)
            if value is None:
                number = _as_number(out)
                got = _kind(out) if number is None else f"{number:g}"
                return f"{shown} returned {got}, expected a whole number (an int)"
            if value != expected:
                return f"{shown} returned {value}, the right answer is {expected}"
        return None
    return judge


def _ints(count: int | None, what: str) -> Callable[[Any], "tuple[list[int] | None, str | None]"]:
    def parse(answer):
        if not isinstance(answer, (tuple, list)):
            return None, f"expected {what}, got {_kind(answer)}"
        if count is not None and len(answer) != count:
            return None, f"expected {what}, got {len(answer)} value(s)"
        values = [_as_int(a) for a in answer]
        if any(v is None for v in values):
            bad = next(a for a, v in zip(answer, values) if v is None)
            return None, f"expected whole numbers, got {_kind(bad)} in your answer"
        return values, None
    return parse


def _pool_sides(answer, reference):
    values, error = _ints(2, "a tuple of two sides: (without padding, with padding 1)")(answer)
    if error:
        return error
    labels = ("without padding", "with padding 1")
    wrong = [f"the side {label} {'is too large' if v > r else 'is too small'}"
             for label, v, r in zip(labels, values, reference()) if v != r]
    return "; ".join(wrong) + " (floor((n + 2p - z) / s) + 1)" if wrong else None


def _smallest_side(answer, reference):
    from .models import feature_side

    n = _as_int(answer)
    if n is None:
        return f"expected a whole number (an input side), got {_kind(answer)}"
    if n < 67:
        return f"the question asks for a side of at least 67, got {n}"
    if n == reference():
        return None
    side = feature_side(n)
    if side < 2:
        return f"at {n}x{n} the last map is still {side}x{side}: the input must be larger"
    return f"at {n}x{n} the last map is {side}x{side}, but a smaller input also ends in 2x2"


def _tiling_sizes(answer, reference):
    values, error = _ints(None, "a list of input sizes")(answer)
    if error:
        return error
    outside = [v for v in values if not 220 <= v <= 231]
    if outside:
        return f"{outside[0]} is outside 220-231"
    if values != sorted(set(values)):
        return "list each size once, in ascending order"
    ref = set(reference())
    extra, missing = set(values) - ref, ref - set(values)
    parts = []
    if extra:
        parts.append(f"{len(extra)} of your sizes do not tile exactly")
    if missing:
        parts.append(f"{len(missing)} size(s) that tile exactly are missing")
    return "; ".join(parts) or None


# --------------------------------------------------------------------------- test inputs

def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tanh_cases():
    cases = []
    for shown, z in (("torch.linspace(-6, 6, 101)", torch.linspace(-6, 6, 101)),
                     ("a random (4, 5) tensor", 3 * torch.randn(4, 5, generator=_gen(1)))):
        leaf = z.clone().requires_grad_(True)
        torch.tanh(leaf).sum().backward()  # autograd's tanh'
        cases.append((shown, (z,), {}, leaf.grad))
    return cases


def _dead_channel_cases(reference):
    def acts(shape, seed, dead=(), almost=(), one_image=()):
        a = torch.relu(torch.randn(*shape, generator=_gen(seed)))
        a[:, list(dead)] = 0
        for c in almost:  # zero except one position of one image: not dead
            a[:, c] = 0
            a[-1, c, 0, 0] = 1.0
        for c in one_image:  # zero in the first image only: not dead
            a[0, c] = 0
        return a

    batches = [
        ("a (8, 6, 5, 5) batch", acts((8, 6, 5, 5), 2, dead=(1, 4))),
        ("a (4, 10, 3, 3) batch with channels that are zero almost everywhere",
         acts((4, 10, 3, 3), 3, dead=(0, 2, 3, 9), almost=(5,), one_image=(7,))),
        ("a (2, 3, 4, 4) batch", acts((2, 3, 4, 4), 4)),
        ("a (3, 4, 2, 2) batch", acts((3, 4, 2, 2), 5, dead=(0, 1, 2, 3))),
    ]
    return [(f"dead_channels({shown})", (a,), {}, int(reference(a.clone())))
            for shown, a in batches]


def _lrn_cases():
    from .layers import LocalResponseNorm

    cases = []
    for shown, a, params in (
            ("a random (2, 8, 4, 4) batch x 50, default parameters",
             50 * torch.randn(2, 8, 4, 4, generator=_gen(6)), {}),
            ("a random (3, 7, 5, 5) batch x 100, default parameters",
             100 * torch.randn(3, 7, 5, 5, generator=_gen(7)), {}),
            ("a random (2, 6, 3, 3) batch x 20 with n=3, k=1.0, alpha=1e-3, beta=0.5",
             20 * torch.randn(2, 6, 3, 3, generator=_gen(8)),
             {"n": 3, "k": 1.0, "alpha": 1e-3, "beta": 0.5})):
        p = {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75, **params}
        layer = LocalResponseNorm(p["n"], p["alpha"], p["beta"], p["k"], convention="paper")
        cases.append((shown, (a,), params, layer(a)))
    return cases


def _lrn_mistakes(args, kwargs):
    from .layers import LocalResponseNorm

    p = {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75, **kwargs}
    caffe = LocalResponseNorm(p["n"], p["alpha"], p["beta"], p["k"], convention="caffe")
    return [(caffe(args[0]), "your function divides alpha by n (PyTorch's and Caffe's "
                             "convention); the paper's formula does not")]


def _pool_out_cases(reference):
    from .models import output_size

    cases = []
    for n in range(1, 40):
        for z in range(1, 6):
            for s in range(1, 5):
                for p in range(0, z // 2 + 1):
                    if n + 2 * p < z:
                        continue
                    args = (n, z, s) if p == 0 else (n, z, s, p)
                    shown = f"pool_out({', '.join(map(str, args))})"
                    cases.append((shown, args, {}, output_size(n, z, s, p)))
    return cases


# --------------------------------------------------------------------------- the exercises

def _smoothing_cases():
    g = _gen(5)
    logits = torch.randn(6, 10, generator=g, dtype=torch.float64) * 3
    target = torch.randint(0, 10, (6,), generator=g)
    few = torch.randn(4, 3, generator=g, dtype=torch.float64)
    few_target = torch.tensor([0, 2, 1, 2])
    F = torch.nn.functional
    return [(f"6 images, 10 classes, eps={eps}", (logits, target, eps), {},
             F.cross_entropy(logits, target, label_smoothing=eps)) for eps in (0.1, 0.3)] + [
        ("4 images, 3 classes, eps=0.2", (few, few_target, 0.2), {},
         F.cross_entropy(few, few_target, label_smoothing=0.2))]


def _smoothing_mistakes(args, kwargs):
    logits, target, eps = args
    logp = torch.log_softmax(logits, dim=1)
    k = logits.shape[1]
    nll = -logp.gather(1, target[:, None])[:, 0]
    others = (-logp.sum(1) - nll) / (k - 1)  # eps spread over the other k - 1 classes only
    return [(((1 - eps) * nll + eps * others).mean(),
             "the paper-style eps/(K-1) on the wrong classes is not PyTorch's: PyTorch "
             "spreads eps over all K classes, the right one included"),
            (nll.mean(), "that is the plain cross-entropy: mix in eps times the mean of "
                         "-log p over all classes"),
            (((1 - eps) * nll + eps * (-logp.sum(1))).mean(),
             "eps multiplies the *mean* of -log p over the K classes, not their sum")]


def _frozen_share() -> float:
    from .lessons.ch11_transfer import trainable_parameters, transfer_model
    from .models import AlexNetSmall

    channels = (24, 64, 96, 96, 64)
    frozen = transfer_model(AlexNetSmall(num_classes=5, channels=channels), "frozen",
                            channels=channels)
    return trainable_parameters(frozen) / sum(p.numel() for p in frozen.parameters())


def _fc8_share() -> float:
    from .models import AlexNetSmall

    net = AlexNetSmall(num_classes=5, channels=(24, 64, 96, 96, 64))
    return (sum(p.numel() for p in net.classifier.fc8.parameters())
            / sum(p.numel() for p in net.parameters()))


def _dead_share_cases():
    from .lessons.ch11_transfer import dead_share

    def acts(n, units, seed, dead=(), nearly=(), half=()):
        a = torch.relu(torch.randn(n, units, generator=_gen(seed)))
        for u in (*dead, *nearly, *half):
            a[:, u] = 0
        for u in nearly:  # active for one image only: dead at tol=0.99 when n >= 100
            a[0, u] = 1.0
        for u in half:  # active for half the images: alive
            a[: n // 2, u] = 1.0
        return a

    cases = [("a (200, 10) tensor with 2 dead units", acts(200, 10, 11, dead=(1, 7)), {}),
             ("a (200, 8) tensor with units zero for all but one image",
              acts(200, 8, 12, dead=(0,), nearly=(3, 5), half=(6,)), {}),
             ("the same tensor with tol=1.0",
              acts(200, 8, 12, dead=(0,), nearly=(3, 5), half=(6,)), {"tol": 1.0}),
             ("a (50, 6) tensor with tol=0.75", acts(50, 6, 13, dead=(2,), half=(4,)),
              {"tol": 0.75}),
             ("a (30, 5) tensor without dead units", acts(30, 5, 14), {})]
    return [(shown, (a,), kw, torch.tensor(dead_share(a.clone(), **kw)))
            for shown, a, kw in cases]


def _dead_share_mistakes(args, kwargs):
    a = args[0]
    tol = kwargs.get("tol", 0.99)
    zero = (a == 0).double().mean(dim=0)
    return [(torch.tensor(float((a == 0).all(dim=0).double().mean())),
             "a unit active for only a few images counts as dead too: compare the share of "
             "images where it is 0 with tol"),
            (torch.tensor(float((zero >= tol).sum())),
             "give the share of units (between 0 and 1), not their number"),
            (torch.tensor(float(zero.mean())),
             "that is the share of zero values; count the units that are 0 for at least "
             "a share tol of the images")]


def _std() -> float:
    from .data import STD
    return float(STD)


def _alpha() -> float:
    from .layers import PAPER_ALPHA_STD
    return float(PAPER_ALPHA_STD)


def _orientation_cases() -> list[tuple[str, tuple, dict, torch.Tensor]]:
    """Exercise 12-2's test filters, each with :func:`~course_utils.lessons.ch12_what_it_learned.orientation_index`'s value:
    ``(description, args, kwargs, expected)`` for :mod:`course_utils.exercises`."""
    from .lessons.ch12_what_it_learned import orientation_index

    g = torch.Generator().manual_seed(12)
    x, y = torch.arange(11, dtype=torch.float64), torch.arange(11, dtype=torch.float64)[:, None]
    blob_x = torch.arange(11, dtype=torch.float64) - 5
    filters = [
        ("a grating along x, 2 cycles, plus 3", torch.cos(2 * math.pi * 2 * x / 11)
         .expand(11, 11) + 3.0),
        ("an oblique grating", torch.sin(2 * math.pi * (x + 2 * y) / 11)),
        ("an elongated blob", torch.exp(-(blob_x[None, :] ** 2 / 18 + blob_x[:, None] ** 2 / 1.3))),
        ("a random 11x11 filter", torch.randn(11, 11, generator=g, dtype=torch.float64)),
        ("a random 7x9 filter", torch.randn(7, 9, generator=g, dtype=torch.float64) + 1.0),
    ]
    return [(shown, (w.clone(),), {}, orientation_index(w)[0]) for shown, w in filters]


def _orientation_mistakes(args, kwargs) -> list[tuple[torch.Tensor, str]]:
    """Exercise 12-2's common mistakes on one test filter, with a hint each."""
    w = torch.as_tensor(args[0]).double()
    h, wd = w.shape
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(wd, dtype=torch.float64)[None, :]
    theta = torch.atan2(fy, fx)

    def index(p, doubled=True):
        z = (p * torch.exp((2j if doubled else 1j) * theta)).sum()
        return (z.abs() / p.sum()).real

    power = torch.fft.fft2(w - w.mean()).abs() ** 2
    return [(index(torch.fft.fft2(w).abs() ** 2),
             "remove the filter's mean first: its power sits at f = 0 and has no orientation"),
            (index(power, doubled=False),
             "use exp(2i theta): f and -f carry the same power, and with exp(i theta) they "
             "cancel"),
            (index(torch.fft.fft2(w - w.mean()).abs()),
             "weight each frequency by its power |F(f)|^2, not by the amplitude |F(f)|")]


def _agreement_cases() -> list[tuple[str, tuple, dict, torch.Tensor]]:
    """Exercise 12-3's test neighbours, each with :func:`~course_utils.lessons.ch12_what_it_learned.neighbour_agreement`'s value."""
    from .lessons.ch12_what_it_learned import neighbour_agreement

    g = torch.Generator().manual_seed(12)
    cases = []
    for shown, q, k, n in (("20 queries, 6 neighbours, a gallery of 50", 20, 6, 50),
                           ("7 queries, 3 neighbours, a gallery of 9", 7, 3, 9),
                           ("100 queries, 1 neighbour, a gallery of 30", 100, 1, 30)):
        y_gallery = torch.randint(0, 4, (n,), generator=g)
        y_query = torch.randint(0, 4, (q,), generator=g)
        idx = torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(q)])
        cases.append((shown, (idx, y_query, y_gallery), {},
                      torch.tensor(neighbour_agreement(idx, y_query, y_gallery),
                                   dtype=torch.float64)))
    return cases


def _agreement_mistakes(args, kwargs) -> list[tuple[torch.Tensor, str]]:
    """Exercise 12-3's common mistakes, with a hint each."""
    idx, y_query, y_gallery = args
    same = (y_gallery[idx] == y_query[:, None]).double()
    return [(same[:, 0].mean(), "count all k neighbours of each query, not only the nearest"),
            ((same.mean(1) > 0.5).double().mean(),
             "give the share of neighbours in the query's class, not the share of queries "
             "whose majority is")]


def _src(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


_LIST = [
    Exercise(
        "01-1", "tanh's derivative as a function of a tensor z", "a function of a tensor z",
        _src("""
            import torch

            answer = lambda z: 1 - torch.tanh(z) ** 2  # tanh'(z) = 1 - tanh(z)^2
        """),
        _tensor_function("f", _tanh_cases, atol=1e-5)),
    Exercise(
        "01-2", "the largest factor by which eight stacked sigmoid layers can scale a gradient "
        "through their local gradients alone", "a number",
        _src("""
            import torch

            # sigmoid'(z) = s(1 - s): measure its largest value with autograd on a grid
            z = torch.linspace(-10, 10, 2001, requires_grad=True)
            torch.sigmoid(z).sum().backward()
            largest = z.grad.max().item()  # at z = 0
            answer = largest ** 8  # the chain rule multiplies the eight local gradients
        """),
        _number(rel=1e-3, mistakes=lambda: [
            (0.25, "that is one layer's largest local gradient; the chain rule multiplies "
                   "eight of them"),
            (0.25 * 8, "the chain rule multiplies the layers' local gradients, it does not "
                       "add them")])),
    Exercise(
        "01-3", "how many channels of a post-ReLU activation tensor (N, C, H, W) are zero for "
        "every image and position", "a function dead_channels(acts) returning an int",
        _src("""
            def dead_channels(acts):
                # a dead channel is 0 for every image (dim 0) and position (dims 2, 3)
                return int(acts.eq(0).all(dim=(0, 2, 3)).sum())

            answer = dead_channels
        """),
        _int_function("dead_channels", _dead_channel_cases)),
    Exercise(
        "02-1", "PyTorch's alpha for nn.LocalResponseNorm(size=5) equal to the paper's "
        "alpha = 1e-4", "a number",
        _src("""
            from course_utils.layers import LocalResponseNorm

            paper = LocalResponseNorm(size=5, alpha=1e-4, convention="paper")
            # nn.LocalResponseNorm multiplies the sum of squares by alpha / size,
            # so it needs size times the factor the paper uses
            answer = paper.effective_alpha * paper.size
        """),
        _number(rel=1e-6, mistakes=lambda: [
            (1e-4, "that is the paper's alpha; nn.LocalResponseNorm divides its alpha by size"),
            (1e-4 / 5, "nn.LocalResponseNorm divides alpha by size itself: which alpha, once "
                       "divided, gives the paper's?")])),
    Exercise(
        "02-2", "the paper's LRN (alpha not divided by n) on an (N, C, H, W) tensor",
        "a function lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75)",
        _src("""
            import torch

            def lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
                C = a.shape[1]
                out = torch.empty_like(a)
                for i in range(C):
                    # the channels max(0, i - n/2) .. min(C - 1, i + n/2) that exist
                    lo, hi = max(0, i - n // 2), min(C - 1, i + n // 2)
                    window = (a[:, lo:hi + 1] ** 2).sum(dim=1)
                    out[:, i] = a[:, i] / (k + alpha * window) ** beta  # alpha not divided by n
                return out

            answer = lrn
        """),
        _tensor_function("lrn", _lrn_cases, atol=1e-4, rtol=1e-4, mistakes=_lrn_mistakes)),
    Exercise(
        "02-3", "LRN's divisor (k + alpha * sum of squares)^beta, paper's constants, for a unit "
        "whose 5-channel window holds activity 100 in each channel", "a number",
        _src("""
            import torch
            from course_utils.layers import LocalResponseNorm

            a = torch.full((1, 5, 1, 1), 100.0)  # five channels, activity 100 in each
            lrn = LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0, convention="paper")
            # LRN divides by the divisor, so divisor = a / lrn(a); the middle channel's
            # window holds all five channels
            answer = (a / lrn(a))[0, 2, 0, 0].item()
        """),
        _number(rel=1e-3, mistakes=lambda: [
            (2 + 1e-4 * 5 * 100 ** 2, "that is k + alpha * sum; raise it to the power beta"),
            ((2 + 1e-4 * 100 ** 2) ** 0.75, "the sum of squares runs over all five channels of "
                                            "the window, and the paper does not divide alpha "
                                            "by n")])),
    Exercise(
        "03-1", "the output side of 3x3 stride-2 max-pooling on a 28x28 map, without padding "
        "and with padding 1", "a tuple (without padding, with padding 1)",
        _src("""
            import torch
            from torch import nn

            x = torch.zeros(1, 1, 28, 28)
            answer = (nn.MaxPool2d(3, stride=2)(x).shape[-1],
                      nn.MaxPool2d(3, stride=2, padding=1)(x).shape[-1])
        """),
        _pool_sides),
    Exercise(
        "03-2", "a pooling's output side for input side n, window z, stride s, padding p",
        "a function pool_out(n, z, s, p=0) returning an int",
        _src("""
            def pool_out(n, z, s, p=0):
                return (n + 2 * p - z) // s + 1  # floor((n + 2p - z) / s) + 1

            answer = pool_out
        """),
        _int_function("pool_out", _pool_out_cases)),
    Exercise(
        "03-3", "the smallest input side >= 67 at which the small AlexNet (z=3, s=2) ends in a "
        "last map of at least 2x2", "an int",
        _src("""
            from course_utils.models import feature_side

            # feature_side walks AlexNet's convolutions and poolings (z=3, s=2)
            # and returns the side of the last map, after pool5
            answer = next(n for n in range(67, 1000) if feature_side(n) >= 2)
        """),
        _smallest_side),
    Exercise(
        "04-1", "the total multiply-adds of AlexNet(two_tower=True) divided by those of "
        "AlexNet()", "a number",
        _src("""
            from course_utils.lessons.ch04_architecture import layer_table
            from course_utils.models import AlexNet

            two = layer_table(AlexNet(two_tower=True))["mult-adds"].sum()
            one = layer_table(AlexNet())["mult-adds"].sum()
            answer = float(two / one)
        """),
        _number(rel=1e-3, mistakes=lambda: [
            (0.5, "grouping halves conv2, conv4 and conv5 only, not the whole net")])),
    Exercise(
        "04-2", "the input sizes from 220 to 231 at which conv1 (11x11, stride 4, no padding) "
        "tiles the image exactly", "a list of ints, ascending",
        _src("""
            from course_utils.lessons.ch04_architecture import geometry

            answer = [s for s in range(220, 232) if geometry(s)["conv1 tiles exactly"]]
        """),
        _tiling_sizes),
    Exercise(
        "04-3", "the share (0-1) of all parameters held by the fully connected layers of "
        "AlexNet(hidden=1024)", "a number between 0 and 1",
        _src("""
            from course_utils.lessons.ch04_architecture import layer_table
            from course_utils.models import AlexNet

            table = layer_table(AlexNet(hidden=1024))
            fc = table.loc[table["type"] == "Linear", "parameters"].sum()
            answer = float(fc / table["parameters"].sum())
        """),
        _number(abs_=0.005, share=True)),
    Exercise(
        "05-1", "how many optimizer steps one epoch makes on 50,000 training images at "
        "batch_size=128 (skorch keeps the last, smaller batch)", "an int",
        _src("""
            import torch
            from course_utils.training.fastpath import TensorBatches

            # the course's batches are cut exactly like skorch's DataLoader (drop_last=False)
            batches = TensorBatches(torch.zeros(50_000, 1), torch.zeros(50_000), batch_size=128)
            answer = len(batches)
        """),
        _number(abs_=0.0, mistakes=lambda: [
            (50_000 // 128, "the images left over after the full batches make one more, "
                            "smaller batch: it is a step too"),
            (50_000 / 128, "a step takes a whole batch: count the batches, the last one "
                           "smaller")])),
    Exercise(
        "05-2", "the loss of nn.CrossEntropyLoss(label_smoothing=eps), written by hand",
        "a function smoothed_ce(logits, target, eps) returning the mean loss",
        _src("""
            import torch

            def smoothed_ce(logits, target, eps):
                logp = torch.log_softmax(logits, dim=1)
                nll = -logp.gather(1, target[:, None])[:, 0]  # -log p of the true class
                uniform = -logp.mean(dim=1)  # -log p averaged over all K classes
                return ((1 - eps) * nll + eps * uniform).mean()

            answer = smoothed_ce
        """),
        _tensor_function("smoothed_ce", _smoothing_cases, atol=1e-6, rtol=1e-6,
                         mistakes=_smoothing_mistakes)),
    Exercise(
        "05-3", "the learning rate in epoch 3 (counting from 0) of a cosine schedule that "
        "starts at lr=1e-3 with T_max=8, as skorch's LRScheduler sets it", "a number",
        _src("""
            import torch

            opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)
            for epoch in range(3):  # LRScheduler steps once at the end of each epoch
                opt.step()
                sched.step()
            answer = opt.param_groups[0]["lr"]  # 1e-3 * (1 + cos(pi * 3 / 8)) / 2
        """),
        _number(rel=1e-6, mistakes=lambda: [
            (1e-3 * (1 + math.cos(math.pi * 4 / 8)) / 2,
             "that is epoch 4's rate: epoch 0 runs at the full 1e-3"),
            (1e-3 * (1 + math.cos(math.pi * 2 / 8)) / 2,
             "that is epoch 2's rate: the schedule steps once after each epoch")])),
    Exercise(
        "06-1", "the learning rate the linear scaling rule gives at batch_size=512 for a net "
        "tuned to lr=1e-3 at batch_size=128", "a number",
        _src("""
            base_lr, base_batch, batch = 1e-3, 128, 512

            # k times the batch: k times fewer steps per epoch, each averaging k times
            # more images; the rule takes k times larger steps to cover the same ground
            answer = base_lr * batch / base_batch
        """),
        _number(rel=1e-6, mistakes=lambda: [
            (1e-3 * math.sqrt(512 / 128), "that is the square-root rule; the linear rule "
                                          "multiplies by the batch ratio itself"),
            (1e-3 * 128 / 512, "a larger batch gets a larger learning rate, not a smaller "
                               "one: it takes fewer steps")])),
    Exercise(
        "06-2", "the share (0-1) of the full grid's images that successive halving processes "
        "on the reference grid (45 configurations, 20 epochs, factor 3, min_epochs 2), "
        "when no run stops early", "a number between 0 and 1",
        _src("""
            import math

            from course_utils.search import halving_schedule

            configs, max_epochs, factor = 45, 20, 3
            rungs = halving_schedule(max_epochs, factor=factor, min_epochs=2)  # [2, 6, 20]
            epochs, alive = 0, configs
            for rung_epochs in rungs:  # every survivor trains the rung's epochs from scratch
                epochs += alive * rung_epochs
                alive = math.ceil(alive / factor)
            answer = epochs / (configs * max_epochs)  # images = epochs x training images
        """),
        _number(abs_=0.005, share=True, mistakes=lambda: [
            ((45 * 2 + 15 * 4 + 5 * 14) / 900, "each rung trains its survivors from the start, "
                                                "not on from the previous rung's epochs"),
            (45 * 2 / 900, "that is the first rung alone: the survivors' longer runs "
                           "count too")])),
    # --- notebook 08's exercises
    Exercise(
        "08-1", "how many different 28x28 training patches (positions x mirrors) one image "
        "gives when it is padded by 4 pixels on each side", "an int",
        _src("""
            from course_utils.lessons.ch08_augmentation import distinct_patches

            side, crop_side = 28 + 2 * 4, 28  # padded to 36x36, cut back to 28x28
            # (36 - 28 + 1) positions per side, squared, times 2 mirror images
            answer = distinct_patches(side, crop_side, flips=True)
        """),
        _number(abs_=0.0, mistakes=lambda: [
            (81, "each position gives its mirror image too: count both"),
            (128, "a crop can start at 0, 1, ..., 8: that is 9 positions per side, not 8"),
            (50, "that is padding 2's count; the question pads by 4")])),
    Exercise(
        "08-2", "the standard deviation of the grayscale lighting's brightness shift a*sigma, "
        "with a ~ N(0, 0.1) and sigma Fashion-MNIST's pixel std (0-1 scale)", "a number",
        _src("""
            from course_utils.data import STD  # the pixels' standard deviation, 0-1 scale
            from course_utils.layers import PAPER_ALPHA_STD  # the paper's 0.1

            # the shift is a * sigma, so its std is std(a) * sigma
            answer = PAPER_ALPHA_STD * STD
        """),
        _number(rel=1e-3, mistakes=lambda: [
            (_alpha() * _std() ** 2, "that uses the eigenvalue (the variance, sigma squared): "
                                     "the course's lighting multiplies by sigma itself"),
            (_std(), "the shift is a * sigma, and a has a standard deviation of 0.1")])),
    # --- notebook 09's exercises
    Exercise(
        "09-1", "the factor by which nn.Dropout(p=0.2) multiplies the activations it keeps in "
        "training mode", "a number",
        _src("""
            import torch
            from torch import nn

            torch.manual_seed(0)
            out = nn.Dropout(p=0.2).train()(torch.ones(1000))
            # inverted dropout: the kept units are divided by 1 - p
            answer = float(out[out > 0][0])
        """),
        _number(rel=1e-6, mistakes=lambda: [
            (0.8, "that is the paper's test-time factor 1 - p; PyTorch divides by 1 - p in "
                  "training instead"),
            (0.2, "p is the share dropped; the kept units are scaled by 1 / (1 - p)")])),
    Exercise(
        "09-2", "how many iterations (optimizer steps) 40 epochs of 4,000 training images at "
        "batch size 128 make (skorch keeps the last, smaller batch)", "an int",
        _src("""
            import torch
            from course_utils.training.fastpath import TensorBatches

            per_epoch = len(TensorBatches(torch.zeros(4_000, 1), torch.zeros(4_000),
                                          batch_size=128))  # 31 full batches + 1 smaller
            answer = 40 * per_epoch
        """),
        _number(abs_=0.0, mistakes=lambda: [
            (40 * (4_000 // 128), "the images left over after the full batches make one more, "
                                  "smaller batch each epoch"),
            (40 * 4_000 / 128, "a step takes a whole batch: count batches, the last one "
                               "smaller")])),
    # --- notebook 10's exercises
    Exercise(
        "10-1", "how many single-image forward passes the 10-crop test of the 10,000 test "
        "images makes (one image-view is one pass)", "an int",
        _src("""
            import torch
            from course_utils.lessons.ch10_ten_crops import ten_crops

            views = ten_crops(torch.zeros(1, 1, 28, 28), padding=2)  # (10, 1, 1, 28, 28)
            answer = 10_000 * views.shape[0]  # every view of every image is one pass
        """),
        _number(abs_=0.0, mistakes=lambda: [
            (50_000, "the five crops are mirrored too: ten views per image"),
            (10, "that is per image; the test set has 10,000 images"),
            (10_000, "that is one view per image, the plain centre crop")])),
    Exercise(
        "10-2", "by how many pixels, along each axis, the top-left view is shifted from the "
        "centre view when the 28x28 image is padded by 2", "an int",
        _src("""
            import torch
            from course_utils.lessons.ch10_ten_crops import VIEWS, ten_crops

            x = torch.zeros(1, 1, 28, 28)
            x[0, 0, 10, 10] = 1  # a marker pixel
            views = ten_crops(x, padding=2)
            where = lambda v: (v[0, 0] == 1).nonzero()[0]  # (row, column) of the marker
            shift = where(views[VIEWS.index("top-left")]) - where(views[VIEWS.index("centre")])
            answer = int(shift[0])  # the same along both axes
        """),
        _number(abs_=0.0, mistakes=lambda: [
            (4, "the padding adds 2 pixels on each side; the corner crop moves by one "
                "padding's width from the centre"),
            (0, "the corner crop starts at the padded image's corner, not at the image's")])),
    # --- notebook 11's exercises
    Exercise(
        "11-1", "the share (0-1) of its parameters that still train in the quick profile's "
        "frozen model: transfer_model(source, 'frozen', channels=(24, 64, 96, 96, 64)) from a "
        "5-class AlexNetSmall of those filters", "a number between 0 and 1",
        _src("""
            from course_utils.lessons.ch11_transfer import transfer_model, trainable_parameters
            from course_utils.models import AlexNetSmall

            channels = (24, 64, 96, 96, 64)  # the narrow net: a quarter of the paper's filters
            source = AlexNetSmall(num_classes=5, channels=channels)
            frozen = transfer_model(source, "frozen", channels=channels)
            total = sum(p.numel() for p in frozen.parameters())
            answer = trainable_parameters(frozen) / total  # fc6, fc7 and the new fc8
        """),
        _number(rel=1e-3, share=True, mistakes=lambda: [
            (1 - _frozen_share(), "that is the share of the frozen convolutions; the question "
                                  "asks for the share that still trains"),
            (_fc8_share(), "only the convolutions are frozen: fc6 and fc7 train too, not "
                           "just the new fc8")])),
    Exercise(
        "11-2", "how many optimizer steps one target run makes in the quick profile: 20 "
        "labelled images for each of 5 classes, batch_size=32, 30 epochs (skorch keeps the "
        "last, smaller batch)", "an int",
        _src("""
            import torch
            from course_utils.training.fastpath import TensorBatches

            images = 20 * 5  # shots per class x target classes
            # the course's batches are cut exactly like skorch's DataLoader (drop_last=False)
            per_epoch = len(TensorBatches(torch.zeros(images, 1), torch.zeros(images),
                                          batch_size=32))
            answer = per_epoch * 30
        """),
        _number(abs_=0.0, mistakes=lambda: [
            ((100 // 32) * 30, "the 4 images left over after the full batches make one more, "
                               "smaller batch each epoch: it is a step too"),
            (100 / 32 * 30, "a step takes a whole batch: count the batches per epoch, the "
                            "last one smaller, then multiply by the epochs"),
            (4, "that is one epoch's steps: the run trains 30 epochs")])),
    Exercise(
        "11-3", "the share (0-1) of dead units in an (N, units) tensor of post-ReLU "
        "activations: units that are exactly 0 for at least a share tol of the N images",
        "a function dead_share(acts, tol=0.99) returning a number",
        _src("""
            def dead_share(acts, tol=0.99):
                zero = (acts == 0).float().mean(dim=0)  # per unit: the share of images at 0
                return float((zero >= tol).float().mean())  # the share of units that are dead

            answer = dead_share
        """),
        _tensor_function("dead_share", _dead_share_cases, atol=1e-6,
                         mistakes=_dead_share_mistakes)),
    # --- notebook 12's exercises
    Exercise(
        "12-1", "the share of its power that a white-noise 11x11 kernel has, on average, at "
        "spatial frequencies up to 0.25 cycles/pixel, its mean (the DC term) removed",
        "a number between 0 and 1",
        _src("""
            import torch
            from course_utils.lessons.ch12_what_it_learned import LOW_FREQUENCY  # 0.25

            f = torch.fft.fftfreq(11)  # an 11-point FFT's frequencies, in cycles per pixel
            radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()  # |f| of each 2-D bin
            # white noise spreads its power evenly over the bins, so the share is the share
            # of bins at low frequency; the DC bin (f = 0) is removed with the mean
            low = int((radius <= LOW_FREQUENCY).sum()) - 1
            answer = low / (11 * 11 - 1)
        """),
        _number(rel=1e-3, share=True, mistakes=lambda: [
            (21 / 121, "the DC bin (f = 0) holds the mean, which is removed: leave it out of "
                       "both counts"),
            (math.pi * 0.25 ** 2, "that is the disc's share of the area of the frequency "
                                  "square; count the FFT's bins on the 11x11 grid instead")])),
    Exercise(
        "12-2", "the orientation index |sum P(f) exp(2i theta(f))| / sum P(f) of one 2-D filter, "
        "P its power spectrum with the mean removed", "a function orientation_index(w) of an "
        "(H, W) tensor, returning a number",
        _src("""
            import torch

            def orientation_index(w):
                w = w - w.mean()  # the DC term has no orientation
                power = torch.fft.fft2(w).abs() ** 2  # P(f)
                fy = torch.fft.fftfreq(w.shape[0], dtype=w.dtype)[:, None]  # cycles/pixel
                fx = torch.fft.fftfreq(w.shape[1], dtype=w.dtype)[None, :]
                theta = torch.atan2(fy, fx)  # the direction of each frequency
                # 2 theta: f and -f carry the same power and point along the same line
                z = (power * torch.exp(2j * theta)).sum()
                return (z.abs() / power.sum()).item()

            answer = orientation_index
        """),
        _tensor_function(
            "orientation_index",
            _orientation_cases,
            atol=1e-5,
            mistakes=_orientation_mistakes)),
    Exercise(
        "12-3", "the share of the nearest neighbours (all k of every query) that share their "
        "query's class", "a function agreement(idx, y_query, y_gallery) returning a number",
        _src("""
            def agreement(idx, y_query, y_gallery):
                # idx: (queries, k) gallery indices; the labels of the neighbours, row by row
                neighbour_labels = y_gallery[idx]
                same = neighbour_labels == y_query[:, None]  # compare with each row's query
                return same.float().mean().item()

            answer = agreement
        """),
        _tensor_function(
            "agreement",
            _agreement_cases,
            atol=1e-6,
            mistakes=_agreement_mistakes)),
]

#: The registry: exercise id -> :class:`Exercise`, in notebook order.
EXERCISES: dict[str, Exercise] = {e.id: e for e in _LIST}


def _get(exercise_id: str) -> Exercise:
    key = str(exercise_id).strip()
    if key not in EXERCISES:
        raise ExerciseError(f"unknown exercise {exercise_id!r}; the exercises are "
                            f"{', '.join(EXERCISES)}")
    return EXERCISES[key]


@functools.lru_cache(maxsize=None)
def _reference(exercise_id: str) -> Any:
    """Run the reference solution's code and return its ``answer``."""
    exercise = EXERCISES[exercise_id]
    namespace: dict[str, Any] = {"__name__": f"course_utils.exercises.solution_{exercise.id}"}
    exec(compile(exercise.source, f"<solution {exercise.id}>", "exec"), namespace)
    return namespace["answer"]


def check(exercise_id: str, answer: Any) -> bool:
    """Check ``answer`` to an exercise and print one line saying what is right or wrong.

    Parameters
    ----------
    exercise_id : str
        ``"NN-k"``, as in the notebook's exercise cell (``EXERCISES`` lists them).
    answer : object
        The answer; ``None`` means not answered yet.

    Returns
    -------
    bool
        True for a right answer. A wrong or malformed answer (wrong type, a
        function that raises) prints what is wrong and returns False; the
        message never shows the reference answer.

    Raises
    ------
    ExerciseError
        When ``exercise_id`` is not an exercise.
    """
    exercise = _get(exercise_id)
    if answer is None:
        print(f"{exercise.id}: no answer yet: set `answer` above and run the cell again; "
              f'solution("{exercise.id}") shows one.')
        return False
    verdict = exercise.judge(answer, lambda: _reference(exercise.id))
    if verdict is None:
        print(f"{exercise.id}: correct.")
        return True
    print(f"{exercise.id}: {_one_line(verdict)}")
    return False


def solution(exercise_id: str) -> Any:
    """Print the reference solution's code of an exercise and return its answer.

    Parameters
    ----------
    exercise_id : str
        ``"NN-k"``, as in the notebook's exercise cell.

    Returns
    -------
    object
        The reference answer (a number, a tuple, a list or a function), computed
        by the printed code.

    Raises
    ------
    ExerciseError
        When ``exercise_id`` is not an exercise.
    """
    exercise = _get(exercise_id)
    print(f"# {exercise.id}: {exercise.question}\n{exercise.source}", end="")
    return copy.deepcopy(_reference(exercise.id))
