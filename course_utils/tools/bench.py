"""How fast does the course train AlexNet? ``python -m course_utils.tools.bench``
(or ``make bench``).

Two pipelines train the same network side by side, in one run:

* **(a) the reference pipeline** -- what a typical PyTorch course does: a
  torchvision ``Resize`` + ``ToTensor`` on each PIL image, a ``DataLoader``
  that collates them, and a plain fp32, NCHW training loop that reads the loss
  back every step;
* **(b) the course's pipeline** -- the Fashion-MNIST images stay one uint8
  tensor, each batch is resized on the training device by the model's
  :class:`~course_utils.layers.InputAdapter`, and training goes through the
  same skorch net the notebooks use (:func:`~course_utils.training.make_classifier`,
  with its fast path: batches sliced from the tensor, channels-last, and on
  CUDA bf16 autocast, the dataset resident on the GPU, no host sync per step).

Each figure is the median of several timed rounds after warm-up rounds. Every
round runs (a) and (b) back to back (alternating which goes first), so that a
machine whose load changes (shared cores, thermal limits) penalises both alike,
and ``ratio`` is the median of the per-round ratios. The script prints a table and
writes ``build/bench.json``: the figures, ``ratio`` = (b) / (a), the device,
the versions, the machine's matmul GFLOP/s and the model's achieved training
GFLOP/s as ``fraction_of_matmul``.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from ..config import CourseError, cpu_supports_bf16, get_device, seed_everything
from . import OneLineParser
from ..data import load_fashion_mnist
from ..layers import InputAdapter
from ..models import AlexNet, AlexNetSmall, count_parameters, model_flops
from ..config import BUILD_DIR
from ..training import TensorBatches, make_classifier

__all__ = ["BenchError", "CourseRun", "DEFAULT_OUT", "MODELS", "MatmulProbe",
           "PILResizeDataset", "PIPELINE_A", "PIPELINE_B", "ReferenceRun", "bench_model",
           "course_batch", "defaults_for", "device_name", "format_table", "main",
           "measure_matmul", "reference_batch", "reference_loader",
           "run_benchmark"]

DEFAULT_OUT = BUILD_DIR / "bench.json"
MODELS = {"small": AlexNetSmall, "full": AlexNet}  # model names, not profiles
PIPELINE_A = ("(a) reference: PIL Resize+ToTensor per image, DataLoader, "
              "fp32 NCHW loop, loss read every step")
PIPELINE_B = ("(b) course: one uint8 tensor, resized per batch on the device, "
              "skorch net from make_classifier (fast path)")


class BenchError(CourseError, ValueError):
    """Benchmark settings that cannot work."""


# --------------------------------------------------------------------------- helpers

def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _median(xs):
    return float(statistics.median(xs)) if xs else float("nan")


def _timed(fn, device) -> float:
    """Work per second of one call of ``fn`` (which returns the work it did:
    images, or GFLOP)."""
    _sync(device)
    t0 = time.perf_counter()
    n = fn()
    _sync(device)
    return n / (time.perf_counter() - t0)


def device_name(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:  # the model name is more useful than "x86_64"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name


class MatmulProbe:
    """One n x n matrix product; calling it returns the GFLOP it did.

    Defaults: n = 2048 on the CPU, 8192 on CUDA, in the precision the course
    trains in on that device (bfloat16 on CUDA and on CPUs with native bf16,
    else float32), so that ``fraction_of_matmul`` compares like with like.
    """

    def __init__(self, n: int | None = None, device=None, dtype=None):
        self.device = torch.device(device if device is not None else get_device())
        cuda = self.device.type == "cuda"
        self.n = n or (8192 if cuda else 2048)
        bf16 = (torch.cuda.is_bf16_supported() if cuda
                else self.device.type == "cpu" and cpu_supports_bf16())
        self.dtype = dtype or (torch.bfloat16 if bf16 else torch.float32)
        if self.n < 1:
            raise BenchError(f"matmul size must be positive, got n={self.n}")
        gen = torch.Generator().manual_seed(0)
        self.a = torch.randn(self.n, self.n, generator=gen).to(self.device, self.dtype)
        self.b = torch.randn(self.n, self.n, generator=gen).to(self.device, self.dtype)

    def __call__(self) -> float:
        self.a @ self.b
        return 2 * self.n ** 3 / 1e9

    def describe(self, samples: list[float]) -> dict:
        gflops = _median(samples)
        return {"n": self.n, "dtype": str(self.dtype).replace("torch.", ""),
                "repeats": len(samples), "seconds": 2 * self.n ** 3 / 1e9 / gflops,
                "gflops": gflops, "gflops_samples": samples}


def measure_matmul(n: int | None = None, device=None, dtype=None, repeats: int = 5,
                   warmup: int = 2) -> dict:
    """The machine's dense matmul speed: the median of ``repeats`` n x n products."""
    if repeats < 1 or warmup < 0:
        raise BenchError(f"repeats must be positive, got {repeats}")
    probe = MatmulProbe(n, device, dtype)
    samples = [_timed(probe, probe.device) for _ in range(warmup + repeats)][warmup:]
    return probe.describe(samples)


# --------------------------------------------------------------------------- pipeline (a)

class PILResizeDataset(torch.utils.data.Dataset):
    """What a typical course feeds its DataLoader: per image, a PIL image (as
    torchvision's ``FashionMNIST`` makes one), ``Resize(size)``, ``ToTensor()``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int):
        from torchvision import transforms

        if images.dtype != torch.uint8 or images.dim() not in (3, 4):
            raise BenchError("images must be uint8, shaped (N, 28, 28) or (N, 1, 28, 28)")
        self.images = images.reshape(len(images), *images.shape[-2:])
        self.labels = labels
        self.transform = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        img = Image.fromarray(self.images[i].numpy(), mode="L")
        return self.transform(img), int(self.labels[i])


def reference_loader(images, labels, size: int, batch_size: int, shuffle: bool = True,
                     workers: int = 0) -> torch.utils.data.DataLoader:
    """Pipeline (a)'s DataLoader: float batches in [0, 1], (B, 1, size, size)."""
    return torch.utils.data.DataLoader(
        PILResizeDataset(images, labels, size), batch_size=batch_size, shuffle=shuffle,
        num_workers=workers, persistent_workers=workers > 0)


def course_batch(images: torch.Tensor, size: int, device="cpu") -> torch.Tensor:
    """What pipeline (b)'s network sees for a batch of raw uint8 images."""
    return InputAdapter(size)(images.to(device))


def reference_batch(batch: torch.Tensor, size: int) -> torch.Tensor:
    """What pipeline (a)'s network sees for a DataLoader batch (the same model
    normalises it; the resize was done by PIL already)."""
    return InputAdapter(size, channels_last=False)(batch)


def _cycle(loader):
    while True:
        yield from loader


class ReferenceRun:
    """Pipeline (a): a plain PyTorch loop over :func:`reference_loader`."""

    def __init__(self, module_cls, images, labels, eval_images, eval_labels, *,
                 batch_size: int, device, workers: int):
        seed_everything(0)
        self.device = torch.device(device)
        self.model = module_cls()
        self.model.prep.channels_last = False  # the reference works in NCHW
        self.model.to(self.device)
        size = self.model.input_size
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.criterion = nn.CrossEntropyLoss()
        self.train_batches = _cycle(reference_loader(images, labels, size, batch_size,
                                                     shuffle=True, workers=workers))
        self.eval_loader = reference_loader(eval_images, eval_labels, size, batch_size,
                                            shuffle=False, workers=workers)
        self.data_batches = _cycle(reference_loader(images, labels, size, batch_size,
                                                    shuffle=True, workers=workers))

    def train(self, steps: int) -> int:
        self.model.train()
        seen = 0
        for _ in range(steps):
            X, y = next(self.train_batches)
            X, y = X.to(self.device), y.to(self.device)
            self.optimizer.zero_grad()
            loss = self.criterion(self.model(X), y)
            loss.backward()
            self.optimizer.step()
            loss.item()  # the reference logs the running loss: one sync per step
            seen += len(y)
        return seen

    def evaluate(self) -> int:
        self.model.eval()
        seen = 0
        with torch.no_grad():
            for X, _ in self.eval_loader:
                self.model(X.to(self.device)).argmax(1).cpu()
                seen += len(X)
        return seen

    def data(self, steps: int) -> int:
        seen = 0
        for _ in range(steps):
            X, _ = next(self.data_batches)
            X.to(self.device)
            seen += len(X)
        return seen


# --------------------------------------------------------------------------- pipeline (b)

class CourseRun:
    """Pipeline (b): the course's skorch net, fed the uint8 tensors directly."""

    def __init__(self, module_cls, images, labels, eval_images, eval_labels, *,
                 batch_size: int, device, compile: bool = False):
        self.images, self.labels = images, labels
        self.eval_images = eval_images
        self.device = torch.device(device)
        self.net = make_classifier(module_cls, valid=None, max_epochs=1,
                                   batch_size=batch_size, device=str(self.device),
                                   progress=False, verbose=0, seed=0, compile=compile)
        self.net.initialize()

    def train(self, steps: int) -> int:
        # One epoch of partial_fit over the round's images: skorch's whole loop,
        # callbacks included. ``steps`` is fixed by the images the run was given.
        self.net.partial_fit(self.images, self.labels)
        return len(self.labels)

    def evaluate(self) -> int:
        self.net.predict(self.eval_images)
        return len(self.eval_images)

    def data(self, steps: int) -> int:
        batches = TensorBatches(self.images, self.labels, batch_size=self.net.batch_size,
                                shuffle=True, device=self.device)
        prep = self.net.module_.prep
        seen = 0
        for i, (X, _) in enumerate(batches):
            if i == steps:
                break
            prep(X)
            seen += len(X)
        return seen


# --------------------------------------------------------------------------- the benchmark

def _interleaved(fns, device, rounds: int, warmup: int) -> list[list[float]]:
    """Rounds of ``fns`` alternating in order (a b c, c b a, a b c, ...), so that a
    change in the machine's load hits each alike; warm-up rounds are dropped.
    Returns the speeds of each function, round by round."""
    speeds = [[] for _ in fns]
    for r in range(warmup + rounds):
        order = list(enumerate(fns))
        for i, fn in (order if r % 2 == 0 else order[::-1]):
            speed = _timed(fn, device)
            if r >= warmup:
                speeds[i].append(speed)
    return speeds


def bench_model(key: str, *, device, batch_size: int, steps: int, rounds: int, warmup: int,
                eval_images: int, workers: int, compile: bool = False, data=None,
                matmul: MatmulProbe | None = None, log=print) -> dict:
    """Both pipelines on one model; returns its part of ``bench.json``."""
    module_cls = MODELS[key]
    data = data or load_fashion_mnist()
    n_train = steps * batch_size
    if n_train > len(data.train_labels) or eval_images > len(data.test_labels):
        raise BenchError("steps x batch size must fit in the 60,000 training images and "
                         "eval_images in the 10,000 test images")
    images = data.train_images[:n_train].unsqueeze(1).contiguous()
    labels = data.train_labels[:n_train]
    ev_images = data.test_images[:eval_images].unsqueeze(1).contiguous()
    ev_labels = data.test_labels[:eval_images]

    a = ReferenceRun(module_cls, images, labels, ev_images, ev_labels,
                     batch_size=batch_size, device=device, workers=workers)
    b = CourseRun(module_cls, images, labels, ev_images, ev_labels,
                  batch_size=batch_size, device=device, compile=compile)
    model = b.net.module_
    flops = model_flops(getattr(model, "_orig_mod", model))
    log(f"  {module_cls.__name__}: training, {warmup} warm-up + {rounds} timed rounds of "
        f"{steps} steps x {batch_size} images each pipeline ...")
    fns = [lambda: a.train(steps), lambda: b.train(steps)] + ([matmul] if matmul else [])
    train_a, train_b, *mm = _interleaved(fns, device, rounds, warmup)
    log(f"  {module_cls.__name__}: evaluation and data ...")
    eval_rounds = max(1, min(rounds, 3))
    eval_a, eval_b = _interleaved([a.evaluate, b.evaluate], device, eval_rounds, 1)
    data_a, data_b = _interleaved([lambda: a.data(steps), lambda: b.data(steps)], device,
                                  eval_rounds, 1)

    def pipeline(desc, train, ev, dat, **extra):
        return {"pipeline": desc, "train_img_s": _median(train), "train_img_s_rounds": train,
                "eval_img_s": _median(ev), "data_img_s": _median(dat), **extra}

    result = {
        "model": module_cls.__name__,
        "input_size": model.input_size if hasattr(model, "input_size")
        else model._orig_mod.input_size,
        "parameters": count_parameters(model),
        "batch_size": batch_size,
        "steps_per_round": steps, "rounds": rounds, "warmup_rounds": warmup,
        "forward_gflop_per_image": flops["forward"] / 1e9,
        "train_gflop_per_image": flops["train"] / 1e9,
        "a": pipeline(PIPELINE_A, train_a, eval_a, data_a, eval_batch_size=batch_size,
                      memory_format="contiguous", precision="float32", workers=workers),
        "b": pipeline(PIPELINE_B, train_b, eval_b, data_b,
                      eval_batch_size=b.net.get_params_for("iterator_valid").get(
                          "batch_size", batch_size),
                      memory_format="channels_last",
                      precision=str(b.net.amp_dtype_ or torch.float32).replace("torch.", ""),
                      compile=compile),
    }
    # Each round runs (a) and (b) back to back, so the ratio is taken per round
    # (a paired comparison) and the median reported: a load that changes from
    # round to round cancels out of it.
    result["ratio_rounds"] = [vb / va for va, vb in zip(train_a, train_b)]
    result["ratio"] = _median(result["ratio_rounds"])
    result["ratio_of_medians"] = result["b"]["train_img_s"] / result["a"]["train_img_s"]
    result["achieved_gflops"] = result["b"]["train_img_s"] * result["train_gflop_per_image"]
    if mm:
        result["matmul_gflops_samples"] = mm[0]
    return result


def defaults_for(device) -> dict:
    """Settings that finish in about a minute on 2 CPU cores, and measure a GPU properly."""
    if torch.device(device).type == "cuda":
        return dict(models=["small", "full"], batch_size=128, steps=100, rounds=5, warmup=1,
                    eval_images=4096, workers=min(4, os.cpu_count() or 1), matmul_n=8192)
    return dict(models=["small"], batch_size=128, steps=2, rounds=11, warmup=1,
                eval_images=256, workers=0, matmul_n=2048)


def run_benchmark(models=None, *, device=None, batch_size=None, steps=None, rounds=None,
                  warmup=None, eval_images=None, workers=None, matmul_n=None,
                  compile: bool = False, out=DEFAULT_OUT, log=print,
                  command: str = "course_utils.tools.bench.run_benchmark()") -> dict:
    """Run the benchmark, write ``out`` (unless ``None``) and return the report."""
    device = torch.device(device if device is not None else get_device())
    d = defaults_for(device)
    models = models or d["models"]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise BenchError(f"unknown model(s) {unknown}: choose from {sorted(MODELS)}")
    settings = dict(batch_size=batch_size or d["batch_size"], steps=steps or d["steps"],
                    rounds=rounds or d["rounds"], warmup=d["warmup"] if warmup is None else warmup,
                    eval_images=eval_images or d["eval_images"],
                    workers=d["workers"] if workers is None else workers)
    if min(settings["batch_size"], settings["steps"], settings["rounds"],
           settings["eval_images"]) < 1 or settings["warmup"] < 0:
        raise BenchError("batch size, steps, rounds and eval images must be positive, "
                         "warm-up rounds non-negative")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    log(f"Benchmark on {device} ({device_name(device)}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads")
    # The matmul is timed once per training round, between the two pipelines,
    # so that it sees the same machine (load, clocks) as they do.
    probe = MatmulProbe(matmul_n or d["matmul_n"], device)
    for _ in range(2):
        _timed(probe, device)  # warm-up
    data = load_fashion_mnist()
    results = {}
    for key in models:
        r = bench_model(key, device=device, compile=compile, data=data, matmul=probe, log=log,
                        **settings)
        r["fraction_of_matmul"] = r["achieved_gflops"] / _median(r["matmul_gflops_samples"])
        results[key] = r
    matmul = probe.describe([g for r in results.values() for g in r["matmul_gflops_samples"]])
    import skorch
    import torchvision

    main = results[models[0]]
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "skorch": skorch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": {"before": list(load_before) if load_before else None,
                         "after": list(os.getloadavg()) if load_before else None},
        "matmul": matmul,
        "matmul_gflops": matmul["gflops"],
        "model": main["model"],
        "batch_size": main["batch_size"],
        "pipelines": {"a": main["a"], "b": main["b"]},
        "ratio": main["ratio"],
        "achieved_gflops": main["achieved_gflops"],
        "fraction_of_matmul": main["fraction_of_matmul"],
        "models": results,
    }
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_table(report: dict) -> str:
    """The report as a plain-text table."""
    head = (f"{'model':<13}{'input':>6}{'batch':>6}  {'pipeline':<44}{'train img/s':>12}"
            f"{'eval img/s':>11}{'data img/s':>11}")
    lines = [f"device: {report['device']} ({report['device_name']}), torch {report['torch']}, "
             f"{report['threads']} threads", head, "-" * len(head)]
    for r in report["models"].values():
        for k, label in (("a", "(a) PIL Resize+ToTensor, DataLoader"),
                         ("b", f"(b) uint8 tensor, skorch, {r['b']['precision']}")):
            p = r[k]
            lines.append(f"{r['model'] if k == 'a' else '':<13}"
                         f"{r['input_size'] if k == 'a' else '':>6}"
                         f"{r['batch_size'] if k == 'a' else '':>6}  {label:<44}"
                         f"{p['train_img_s']:>12.1f}{p['eval_img_s']:>11.1f}"
                         f"{p['data_img_s']:>11.0f}")
        lines.append(f"{'':<27}ratio (b)/(a) = {r['ratio']:.2f} "
                     f"(median of {len(r['ratio_rounds'])} paired rounds); (b) achieves "
                     f"{r['achieved_gflops']:.1f} GFLOP/s = {r['fraction_of_matmul']:.2f} "
                     "of matmul")
    m = report["matmul"]
    lines.append(f"matmul {m['n']}x{m['n']} {m['dtype']}: {m['gflops']:.1f} GFLOP/s (median of "
                 f"{m['repeats']}, timed between the training rounds); "
                 f"load average before/after: {_fmt_load(report['load_average'])}")
    return "\n".join(lines)


def _fmt_load(load) -> str:
    if not load or not load.get("before"):
        return "n/a"
    return f"{load['before'][0]:.2f} / {load['after'][0]:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m course_utils.tools.bench",
        description="Training images/s of AlexNet: a per-image PIL pipeline (a) against "
                    "the course's pipeline (b), interleaved in one run.")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS),
                        help="default: small on the CPU, small and full on CUDA")
    parser.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--batch-size", type=int, help="default 128")
    parser.add_argument("--steps", type=int, help="training steps per timed round "
                        "(default 2 on the CPU, 100 on CUDA)")
    parser.add_argument("--rounds", type=int, help="timed rounds; the median is reported "
                        "(default 11 on the CPU, 5 on CUDA)")
    parser.add_argument("--warmup", type=int, help="warm-up rounds, not timed "
                        "(default 1)")
    parser.add_argument("--eval-images", type=int, help="test images per evaluation round")
    parser.add_argument("--workers", type=int, help="DataLoader workers for (a) "
                        "(default 0 on the CPU, up to 4 on CUDA)")
    parser.add_argument("--matmul-n", type=int, help="matmul size (default 2048 CPU, 8192 CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the (b) net")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's "
                        "choice, one per core); 1 is often faster on a busy, shared machine")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON report path")
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            print("error: --threads must be at least 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    try:
        device = get_device(args.device) if args.device else None
        report = run_benchmark(args.models, device=device, batch_size=args.batch_size,
                               steps=args.steps, rounds=args.rounds, warmup=args.warmup,
                               eval_images=args.eval_images, workers=args.workers,
                               matmul_n=args.matmul_n, compile=args.compile, out=args.out,
                               command=" ".join(["python -m course_utils.tools.bench",
                                                 *(argv if argv is not None else sys.argv[1:])]))
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(format_table(report))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
