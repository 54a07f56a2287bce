"""Training the configurations of a study: one run, on this machine (one process or
joblib's loky processes) or on Dask, as a full grid or by successive halving.

Every configuration trains through the course's one run layer,
:func:`course_utils.experiment.train_variant` with ``select="best"`` (the best
validation epoch's model, restored from its checkpoint) and no test set. A
configuration that raises while training (CUDA out of memory at batch 2048, say) is
recorded as ``failed`` with its error and the search goes on, like sklearn's
``error_score``; the next run of the same search tries it again. A full disk stops the
search with one line instead.

Successive halving is Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner`, fed
each epoch's ``valid_acc`` by optuna-integration's ``SkorchPruningCallback``.

What can be checked before training is checked before the output folder is made: the
grid (:func:`~course_utils.search.spec.load_grid`), the folder, the storage URL, the
device, ``$COURSE_AMP``, the data, and with Dask that the address answers as a Dask
scheduler.

Nothing here imports Dask unless a Dask address is given.
"""
from __future__ import annotations

import asyncio
import errno
import gc
import inspect
import math
import os
import platform
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..config import CourseError, Profile, display_path
from .errors import DaskError, GridError, OutputFolderError, SearchError
from .folder import (RESULTS_FILE, SearchFolder, append_result, checkpoint_prefix, new_record,
                     write_results)
from .spec import MAX_CONFIGS, GridSpec, check_size, load_grid, net_arguments, shorten

__all__ = ["DASK_IDLE_NOTICE", "DASK_IDLE_TIMEOUT", "DASK_TIMEOUT", "build_net",
           "connect_dask", "grid_splits", "halving_schedule", "library_versions", "preflight",
           "run_config", "run_search", "train_config"]

#: Seconds to wait for a Dask scheduler to answer (connection and handshake).
DASK_TIMEOUT = 30.0
#: A Dask cluster without workers: a line every DASK_IDLE_NOTICE seconds, and the search
#: gives up after DASK_IDLE_TIMEOUT seconds (``--dask-idle-timeout``), keeping what finished.
DASK_IDLE_NOTICE = 30.0
DASK_IDLE_TIMEOUT = 300.0
#: Below this many free bytes where a checkpoint was being written, a failed run is
#: reported as a full disk.
LOW_SPACE = 64 * 1024**2

_SPLITS_CACHE: dict = {}


# --------------------------------------------------------------------------- one configuration

def grid_splits(spec: GridSpec, test_size: int | None = None):
    """The train/validation (and test) splits the grid trains on (cached per process).

    Parameters
    ----------
    spec : GridSpec
        Its ``train_size``, ``valid_size`` and ``data_seed`` choose the images.
    test_size : int or None
        Test images (None: all 10,000). The training and validation images do not
        depend on it.
    """
    from ..data import course_splits

    key = (spec.train_size, spec.valid_size, spec.data_seed, test_size)
    if key not in _SPLITS_CACHE:
        prof = Profile(name=f"grid:{spec.name}", train_size=spec.train_size,
                       valid_size=spec.valid_size, test_size=test_size,
                       epochs=spec.max_epochs, seeds=1)
        _SPLITS_CACHE.clear()
        _SPLITS_CACHE[key] = course_splits(prof, seed=spec.data_seed)
    return _SPLITS_CACHE[key]


def build_net(spec: GridSpec, params: dict, *, epochs: int | None = None, valid=None,
              checkpoint_root=None, device=None, verbose: int = 0, progress: bool = False):
    """The skorch net of one configuration, made by :func:`make_classifier`.

    ``fixed`` and ``params`` go in as make_classifier keywords or skorch parameters;
    ``callbacks__...`` are set with ``set_params`` afterwards. ``epochs`` defaults to
    the configuration's.
    """
    from ..training import make_classifier

    kwargs, later = net_arguments(spec, params)
    kwargs["max_epochs"] = epochs or spec.epochs_for(params)
    kwargs["seed"] = spec.seed_for(params)
    net = make_classifier(spec.model_class(), valid=valid, progress=progress, verbose=verbose,
                          checkpoint_root=checkpoint_root, device=device, **kwargs)
    if later:
        net.set_params(**later)
    return net


def library_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import skorch
    import torch

    from .. import __version__

    return {"python": platform.python_version(), "torch": torch.__version__,
            "skorch": skorch.__version__, "scikit-learn": sklearn.__version__,
            "numpy": numpy.__version__, "course_utils": __version__}


def _device_name(device) -> str:
    import torch

    name = str(device)
    if name.startswith("cuda") and torch.cuda.is_available():
        idx = torch.device(name).index or 0
        name = f"{name} ({torch.cuda.get_device_name(idx)})"
    return name


def _default_patience() -> int | None:
    from ..training import make_classifier

    return inspect.signature(make_classifier).parameters["patience"].default


def train_config(spec: GridSpec, params: dict, splits, *, epochs: int | None = None,
                 seed: int | None = None, test: bool = False, variant: str = "",
                 checkpoint_root=None, progress: bool | None = False,
                 on_net: Callable[[Any], None] | None = None):
    """Train one configuration of ``spec`` as the search does and measure it.

    The net is :func:`~course_utils.training.make_classifier`'s with the grid's
    ``fixed`` and ``params`` (``callbacks__...`` set once it exists), its early
    stopping patience, and the best validation epoch restored
    (:func:`course_utils.experiment.train_variant` with ``select="best"``).

    Parameters
    ----------
    spec : GridSpec
        The grid.
    params : dict
        One configuration.
    splits : Splits
        The images (:func:`grid_splits`, with a test split where ``test``).
    epochs, seed : int, optional
        Default to the configuration's (:meth:`GridSpec.epochs_for`, :meth:`GridSpec.seed_for`).
    test : bool
        Score the test split too.
    variant : str
        A name for the result.
    checkpoint_root : path, optional
        Where the run's checkpoint folder goes (None: the course's default).
    progress : bool or None
        The progress bar (None: :func:`course_utils.training.progress_enabled`).
    on_net : callable, optional
        Called with each net once it is made.

    Returns
    -------
    RunResult
    """
    from ..experiment import train_variant
    from ..training import make_classifier

    kwargs, later = net_arguments(spec, params)
    kwargs.pop("max_epochs", None)
    kwargs.pop("seed", None)
    kwargs.setdefault("patience", _default_patience())

    def make(module, **kw):
        net = make_classifier(module, **kw)
        if later:
            net.set_params(**later)
        if on_net is not None:
            on_net(net)
        return net

    return train_variant(splits, spec.model_class(),
                         epochs=spec.epochs_for(params) if epochs is None else epochs,
                         seed=spec.seed_for(params) if seed is None else seed,
                         select="best", test=test, variant=variant, make=make,
                         checkpoint_root=checkpoint_root, progress=progress, **kwargs)




# --------------------------------------------------------------------------- one configuration

def _exit_with_parent(parent: int) -> None:
    """Exit this worker process when ``parent`` is gone (a SIGKILLed search)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


_WATCHING = False


def _watch_parent(parent: int | None = None) -> None:
    """Start the guard that ends this worker once ``parent`` (default: the present parent)
    is gone; the search's pid is passed in, as it may die before a worker starts."""
    global _WATCHING
    if not _WATCHING:
        _WATCHING = True
        threading.Thread(target=_exit_with_parent, args=(parent or os.getppid(),),
                         daemon=True, name="search-orphan-guard").start()


def _disk_full(exc: BaseException, where: str | None) -> bool:
    """Did ``exc`` come from a full disk (ENOSPC in its chain, or a failed checkpoint
    read where almost no space is left)?"""
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        e = e.__cause__ or e.__context__
    if where and isinstance(exc, (EOFError, RuntimeError, OSError)):
        try:
            st = os.statvfs(where)
            return st.f_bavail * st.f_frsize < LOW_SPACE
        except OSError:
            return False
    return False


class _Pruning:
    """optuna-integration's SkorchPruningCallback, reporting the epochs done as the step
    (the pruner's rungs are then in epochs) and never pruning the last epoch."""

    def __new__(cls, trial, max_epochs: int):
        from optuna_integration import SkorchPruningCallback

        class EpochPruning(SkorchPruningCallback):
            def on_epoch_end(self, net, **kwargs):
                import optuna

                done = len(net.history)
                self._trial.report(float(net.history[-1, self._monitor]), done)
                if done < max_epochs and self._trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {done}")

        return EpochPruning(trial, "valid_acc")


def _pruning_trial(task: dict):
    """The task's Optuna trial, opened again in this process (for the pruning callback)."""
    import optuna

    from .study import open_storage, pruner

    storage = open_storage(task["storage"], task.get("heartbeat") or 10)
    study = optuna.load_study(study_name=task["study"], storage=storage,
                              pruner=pruner(task["spec"]))
    return optuna.trial.Trial(study, task["trial_id"])


def run_config(task: dict) -> dict:
    """Train one configuration and return its record (:data:`~.folder.RESULT_KEYS`).

    Parameters
    ----------
    task : dict
        ``spec``, ``params``, ``epochs``; ``checkpoint_root`` (the folder for this run's
        checkpoint folder; None: the system's temporary folder), ``threads`` (torch
        threads), and for successive halving ``storage``, ``study`` and ``trial_id``.

    Returns
    -------
    dict
        Never raises for a training error: the record says ``status: failed`` and holds
        the error's first line (``disk_full`` set when the disk was full). A run pruned
        by successive halving says ``status: pruned``. The checkpoint folder is deleted.
    """
    import shutil

    import torch

    from ..config import get_device

    start = time.perf_counter()
    spec: GridSpec = task["spec"]
    params, epochs = task["params"], task["epochs"]
    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    record = new_record(params, epochs, rung=None, seed=spec.seed_for(params))
    ckpt, nets = None, []

    def on_net(net):
        nets.append(net)
        record.update(device=_device_name(net.device))
        if task.get("trial_id") is not None:
            net.callbacks = [*net.callbacks, ("prune", _Pruning(_pruning_trial(task), epochs))]

    try:
        ckpt = tempfile.mkdtemp(prefix=checkpoint_prefix(params, epochs),
                                dir=task.get("checkpoint_root"))
        record["device"] = _device_name(get_device())
        result = train_config(spec, params, grid_splits(spec), epochs=epochs,
                              seed=record["seed"], variant=record["id"], checkpoint_root=ckpt,
                              on_net=on_net)
        record.update(status="ok", valid_acc=result.valid_acc, train_acc=result.train_acc,
                      gap=result.gap, best_epoch=result.best_epoch,
                      epochs_run=result.epochs_run, valid_history=_valid_history(nets[-1]),
                      train_seconds=round(result.train_seconds, 3))
    except Exception as exc:  # noqa: BLE001 -- sklearn's error_score: record and go on
        if type(exc).__name__ == "TrialPruned" and nets:
            from ..training import best_epoch, train_seconds

            net = nets[-1]
            best, acc = best_epoch(net)
            record.update(status="pruned", valid_acc=acc, best_epoch=best,
                          epochs_run=len(net.history), epochs=len(net.history),
                          valid_history=_valid_history(net),
                          train_seconds=round(train_seconds(net), 3))
            record["key"] = f"{record['id']}@{len(net.history)}"
        else:
            message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            if _disk_full(exc, ckpt):
                record["disk_full"] = True
                message = (f"no space left on device while saving the checkpoint in "
                           f"{task.get('checkpoint_root') or tempfile.gettempdir()} "
                           f"({message})")
            record.update(status="failed", error=message[:500])
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if ckpt:
            shutil.rmtree(ckpt, ignore_errors=True)
    # results depend (slightly) on the thread count: float sums run in another order
    record.update(threads=torch.get_num_threads(),
                  wall_seconds=round(time.perf_counter() - start, 3), host=platform.node(),
                  pid=os.getpid(), versions=library_versions(),
                  finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return record


def _valid_history(net) -> list[float]:
    """The validation accuracy after each epoch of ``net``'s history."""
    return [float(v) for v in net.history[:, "valid_acc"]]


# --------------------------------------------------------------------------- executors

class _InProcess:
    """One configuration at a time, in this process."""

    slots = 1

    def __init__(self):
        self.queue: list = []

    def submit(self, task):
        handle = object()
        self.queue.append((handle, task))
        return handle

    def wait(self, timeout):
        handle, task = self.queue.pop(0)
        return [(handle, run_config(task))]

    def close(self, abort=False):
        self.queue.clear()


class _Loky:
    """``jobs`` worker processes (joblib's loky). The workers exit when this process dies."""

    def __init__(self, jobs: int):
        from joblib.externals.loky import get_reusable_executor

        self.slots = jobs
        # each worker exits when this process dies, also before its first task
        self.executor = get_reusable_executor(max_workers=jobs, timeout=60,
                                              initializer=_watch_parent,
                                              initargs=(os.getpid(),))
        self.futures: dict = {}

    def submit(self, task):
        task = {**task, "threads": max(1, _cores() // self.slots)}
        fut = self.executor.submit(run_config, task)
        self.futures[fut] = task
        return fut

    def wait(self, timeout):
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self.futures), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            task = self.futures.pop(fut)
            out.append((fut, _result(fut, task)))
        return out

    def close(self, abort=False):
        if abort:
            self.executor.shutdown(wait=False, kill_workers=True)
        self.futures.clear()


class _Dask:
    """The workers of a dask.distributed cluster; watches for a cluster without workers."""

    def __init__(self, client, idle_timeout: float, log):
        self.client, self.idle_timeout, self.log = client, idle_timeout, log
        self.futures: dict = {}
        self._idle_since: float | None = None
        self._noticed = 0.0

    @property
    def slots(self) -> int:
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001
            return 1

    def submit(self, task):
        task = {**task, "checkpoint_root": None}  # the worker's own temporary folder
        fut = self.client.submit(run_config, task, pure=False)
        self.futures[fut] = task
        return fut

    def wait(self, timeout):
        from dask.distributed import wait

        try:
            done, _ = wait(list(self.futures), timeout=min(timeout, DASK_IDLE_NOTICE),
                           return_when="FIRST_COMPLETED")
        except TimeoutError:
            done = set()
        if done:
            self._idle_since = None
        else:
            self._check_workers()
        out = []
        for fut in done:
            task = self.futures.pop(fut)
            out.append((fut, _result(fut, task)))
        return out

    def _check_workers(self) -> None:
        try:
            workers = len(self.client.nthreads())
        except Exception:  # noqa: BLE001 -- the scheduler itself is gone
            workers = 0
        now = time.monotonic()
        if workers:
            self._idle_since = None
            return
        if self._idle_since is None:
            self._idle_since, self._noticed = now, now - DASK_IDLE_NOTICE
        idle = now - self._idle_since
        if idle >= self.idle_timeout:
            raise DaskError(f"the Dask cluster has had no workers for {idle:.0f} s: gave up "
                            f"(--dask-idle-timeout {self.idle_timeout:g}); what finished is "
                            "kept, and the same command resumes once workers are back")
        if now - self._noticed >= DASK_IDLE_NOTICE:
            self._noticed = now
            self.log(f"the Dask cluster has no workers (for {idle:.0f} s): start one (dask "
                     f"worker ADDRESS); the search gives up after {self.idle_timeout:g} s "
                     "without workers, keeping what finished")

    def close(self, abort=False):
        if self.futures:
            self.client.cancel(list(self.futures))
        self.futures.clear()


def _result(fut, task) -> dict:
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 -- a worker died: record and go on
        record = new_record(task["params"], task["epochs"], rung=None,
                            seed=task["spec"].seed_for(task["params"]),
                            error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        record["versions"] = library_versions()
        return record


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- Dask

def _raw_probe(address: str, timeout: float) -> None:
    """Fail fast where a plain socket can tell: nothing listening (refused), or a server
    that speaks first and not Dask (an SSH banner, say). A server that says nothing
    keeps the full handshake timeout."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "") or not parts.hostname:
        return
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        return
    try:
        sock = socket.create_connection((parts.hostname, port), timeout=min(timeout, 5.0))
    except TimeoutError:
        raise DaskError(f"cannot reach the Dask scheduler at {address} (no answer within "
                        f"{min(timeout, 5.0):g} s): start one with `dask scheduler`, or "
                        "check the address") from None
    except OSError as exc:
        raise DaskError(f"cannot reach the Dask scheduler at {address} "
                        f"({exc.strerror or exc}): start one with `dask scheduler` and one "
                        "`dask worker` per GPU, or check the address") from None
    with sock:
        sock.settimeout(0.5)
        try:
            head = sock.recv(8)
        except OSError:  # socket.timeout included
            head = None  # silent, as a Dask scheduler is until spoken to
        if head is None:
            # a blank line: an HTTP server answers it or hangs up, while a Dask scheduler
            # waits for the 8 bytes of a frame header (and sees the connection close)
            try:
                sock.sendall(b"\r\n")
                sock.settimeout(min(timeout, 2.0))
                head = sock.recv(8)
            except OSError:
                return  # still silent: the handshake (and its timeout) decides
            if not head:
                raise DaskError(f"{address} hung up on a blank line: it is not a Dask "
                                "scheduler (a web server?); give the scheduler's address "
                                "(tcp://HOST:8786), not the dashboard's")
    if not head:
        raise DaskError(f"{address} closed the connection at once: it is not a Dask "
                        "scheduler; give the scheduler's address (tcp://HOST:8786)")
    if len(head) == 8 and struct.unpack("<Q", head)[0] < 2**32:
        return
    raise DaskError(f"{address} is not a Dask scheduler (it answered "
                    f"{shorten(head.decode('latin-1'), 40)}): give the scheduler's address "
                    "(tcp://HOST:8786)")

def _probe_scheduler(address: str, timeout: float) -> None:
    """Connect to ``address`` and ask it who it is, all within ``timeout`` seconds.

    dask.distributed's own connect waits without limit for the handshake, so
    something that accepts the connection and never answers (a web server) would
    hang the search; this asks in a thread of its own with a deadline.
    """
    from distributed.comm import connect

    async def ask():
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        try:
            await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), timeout)
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    outcome: dict[str, Any] = {}

    def target():
        try:
            outcome["reply"] = asyncio.run(ask())
        except BaseException as exc:  # noqa: BLE001 -- reported below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="dask-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    hint = ("start one with `dask scheduler` and one `dask worker` per GPU, or raise "
            "--dask-timeout")
    if thread.is_alive() or isinstance(outcome.get("error"), (asyncio.TimeoutError,
                                                              TimeoutError)):
        raise DaskError(f"{address} did not answer as a Dask scheduler within {timeout:g} s: "
                        f"give the scheduler's address (tcp://HOST:8786); {hint}")
    exc = outcome.get("error")
    if isinstance(exc, (ValueError, TypeError)):
        raise DaskError(f"--dask {address!r} is not a scheduler address "
                        f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}): "
                        "give one like tcp://HOST:8786")
    if exc is not None:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DaskError(f"cannot reach the Dask scheduler at {address} ({reason}): {hint}")
    reply = outcome.get("reply")
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        kind = reply.get("type") if isinstance(reply, dict) else type(reply).__name__
        raise DaskError(f"{address} is not a Dask scheduler (it answered as {kind!r}): give "
                        "the scheduler's address, not a worker's or another server's")
    if reply.get("n_workers") == 0:
        raise DaskError(f"the Dask scheduler at {address} has no workers, so nothing would "
                        f"run: start one per GPU (CUDA_VISIBLE_DEVICES=i dask worker {address} "
                        "--nworkers 1 --nthreads 1), then run the search again")


def connect_dask(address, timeout: float = DASK_TIMEOUT):
    """A dask.distributed Client for ``address`` (or the Client given).

    Returns
    -------
    client, owned : Client, bool
        ``owned`` is True when the client was made here (close it when done).

    Raises
    ------
    DaskError
        Dask is not installed, the address is malformed, or nothing answers there as a
        Dask scheduler within ``timeout`` seconds.
    """
    try:
        from dask.distributed import Client
    except ImportError:
        raise DaskError("--dask needs dask.distributed: pip install 'alexnet-course[dask]' "
                        "(or pip install dask distributed)") from None
    if isinstance(address, Client):
        return address, False
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise DaskError(f"--dask-timeout must be a positive number of seconds, got {timeout!r}")
    if not isinstance(address, str) or not address.strip():
        raise DaskError(f"--dask {address!r} is not a scheduler address: give one like "
                        "tcp://HOST:8786")
    address = address.strip()
    _raw_probe(address, float(timeout))
    _probe_scheduler(address, float(timeout))
    try:
        return Client(address, timeout=f"{timeout}s"), True
    except (OSError, TimeoutError, ValueError) as exc:
        raise DaskError(f"cannot connect to the Dask scheduler at {address}: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                        ) from None


# --------------------------------------------------------------------------- the search

def preflight(spec: GridSpec) -> None:
    """What a local run needs, checked before anything is written or trained: the device
    (``$COURSE_DEVICE``), ``$COURSE_AMP``, and the data (Fashion-MNIST found, the
    splits cut)."""
    from ..config import get_device
    from ..training.classifier import AMP_CHOICES, AMP_ENV

    get_device()
    amp = os.environ.get(AMP_ENV, "").strip().lower()
    if amp and amp not in AMP_CHOICES and spec.fixed.get("amp", "auto") == "auto":
        raise SearchError(f"{AMP_ENV}={shorten(amp, 40)}: set it to one of "
                          f"{', '.join(AMP_CHOICES)}, or unset it")
    try:
        grid_splits(spec)
    except CourseError:
        raise
    except Exception as exc:  # noqa: BLE001 -- e.g. a split sklearn cannot make
        raise SearchError(f"{spec.source}: cannot cut the data for the grid (train "
                          f"{spec.train_size}, valid {spec.valid_size}): "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                          ) from None


def _summary_line(rec: dict, done: int, total: int) -> str:
    from .report import format_params

    head = f"[{done}/{total}] {format_params(rec['params'])} ({rec['epochs']} ep)"
    if rec["status"] == "ok":
        return (f"{head}: valid_acc {rec['valid_acc']:.4f} at epoch {rec['best_epoch']}, "
                f"{rec['train_seconds']:.1f} s train on {rec['device']}")
    if rec["status"] == "pruned":
        return (f"{head}: pruned by successive halving, valid_acc {rec['valid_acc']:.4f} "
                f"after {rec['epochs_run']} epoch(s)")
    return f"{head}: FAILED {rec['error']}"


def halving_schedule(max_epochs: int, factor: int = 3, min_epochs: int = 1) -> list[int]:
    """Epochs per rung, ending at ``max_epochs``: 20, factor 3 -> [2, 6, 20]."""
    rungs = [max_epochs]
    while rungs[-1] // factor >= min_epochs:
        rungs.append(rungs[-1] // factor)
    return rungs[::-1]


def run_search(grid, out: str | os.PathLike, *, jobs: int = 1, dask=None,
               halving: bool = False, progress: bool | None = None, skip_failed: bool = False,
               report: bool = True, max_configs: int | None = MAX_CONFIGS,
               dask_timeout: float = DASK_TIMEOUT, dask_idle_timeout: float = DASK_IDLE_TIMEOUT,
               storage: str | None = None, heartbeat: int | None = None, allow_modules=(),
               log=print):
    """Run (or resume, or join) a grid search.

    Parameters
    ----------
    grid : GridSpec, path, str or dict
        A :class:`GridSpec`, a YAML path, a grid name under grids/, or a dict.
    out : path
        The output folder: new, empty, or one this search made (it holds grid.json).
    jobs : int
        Configurations trained at once on this machine (joblib processes), at most one
        per configuration to run and per core.
    dask : str or Client, optional
        A dask.distributed scheduler address (or Client): one worker per GPU.
    halving : bool
        Successive halving with epochs as the resource (Optuna's pruner), in a study
        of its own beside the full grid's.
    progress : bool, optional
        The tqdm bar (default: :func:`course_utils.training.progress_enabled`).
    skip_failed : bool
        Keep configurations recorded as failed as they are (by default they run again).
    report : bool
        Write summary.csv, best.json and heatmap.png at the end.
    max_configs : int or None
        Refuse a grid with more configurations (None: no cap).
    dask_timeout, dask_idle_timeout : float
        Seconds the Dask scheduler has to answer; seconds without a Dask worker before
        the search gives up (keeping what finished).
    storage : str, optional
        A PostgreSQL or MySQL URL for the study (many machines); default DIR/study.db.
    heartbeat : int, optional
        Seconds between heartbeats (a dead worker's trial is queued again after three).
    allow_modules : iterable of str
        Modules the grid's ``model`` may come from (when ``grid`` is not a GridSpec).
    log : callable
        Where the progress lines go.

    Returns
    -------
    pandas.DataFrame
        One row per configuration: the parameters, then its latest record's results.
    """
    from ..training import progress_enabled
    from .report import records_frame, write_report
    from .study import HEARTBEAT, StudyStore, rung_epochs, storage_url

    if max_configs is not None and (isinstance(max_configs, bool)
                                    or not isinstance(max_configs, int) or max_configs < 1):
        raise SearchError(f"--max-configs must be a positive integer, got {max_configs!r}")
    spec = grid if isinstance(grid, GridSpec) else load_grid(
        grid, allow_modules=allow_modules, max_configs=max_configs)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SearchError(f"--jobs must be a positive integer, got {shorten(jobs, 40)}")
    if dask is not None and jobs != 1:
        raise SearchError("use either --jobs or --dask, not both: with Dask, the workers "
                          "decide how many configurations run at once")
    if halving and "max_epochs" in spec.params:
        raise GridError(f"{spec.source}: --halving uses epochs as the resource, so max_epochs "
                        "cannot also be searched")
    heartbeat = HEARTBEAT if heartbeat is None else heartbeat
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or not 1 <= heartbeat \
            <= 3600:
        raise SearchError(f"--heartbeat must be 1 to 3600 seconds, got {shorten(heartbeat, 40)}")
    if not (isinstance(dask_idle_timeout, (int, float)) and dask_idle_timeout > 0):
        raise SearchError("--dask-idle-timeout must be a positive number of seconds")
    check_size(spec, max_configs)
    url = storage_url(out, storage)
    progress = progress_enabled() if progress is None else progress
    folder = SearchFolder(out, spec)
    folder.check()
    client, own_client = connect_dask(dask, dask_timeout) if dask is not None else (None, False)
    start = time.perf_counter()
    store = None
    try:
        if client is None:
            preflight(spec)
        folder.claim()
        store = StudyStore(spec, url, halving=halving, heartbeat=heartbeat)
        configs = spec.configs(limit=max_configs)
        with folder.locked():
            store.fail_stale()
            counts = store.queue(configs, retry_failed=not skip_failed)
            _clean_checkpoints(folder, store)
        write_results(folder, _all_records(store, url))
        log(spec.describe())
        label = f"{spec.name} (successive halving)" if halving else spec.name
        if halving:
            factor, min_ep = spec.halving["factor"], spec.halving["min_epochs"]
            log(f"successive halving (Optuna's SuccessiveHalvingPruner): rungs at "
                f"{rung_epochs(spec.max_epochs, factor, min_ep)} epochs, keeping 1/{factor} of "
                "the runs at each")
        todo = len(configs) - counts["done"]
        if counts["done"] or counts["failed"]:
            again = (f" ({counts['failed']} failed before, run again)"
                     if counts["failed"] and not skip_failed else "")
            log(f"{label}: {counts['done']} of {len(configs)} configurations already in "
                f"{display_path(folder.out / RESULTS_FILE)}, skipped; {todo} to run{again}")
        if client is not None:
            pool = _Dask(client, dask_idle_timeout, log)
        else:
            waiting = max(1, counts["queued"] + counts["waiting"])
            slots = min(jobs, waiting, _cores())
            if slots < jobs:
                log(f"note: --jobs {jobs} capped to {slots}: {waiting} configuration(s) to "
                    f"run on {_cores()} core(s)")
            pool = _Loky(slots) if slots > 1 else _InProcess()
        _drive(store, pool, folder, spec, len(configs), counts["done"], progress, label, log,
               url, halving)
        used = store.latest()
        write_results(folder, _all_records(store, url))
        folder.clean_checkpoints()
    finally:
        if store is not None:
            store.close()
        if own_client:
            client.close()
    seconds = time.perf_counter() - start
    ok = [r for r in used if r["status"] == "ok"]
    log(f"search done in {seconds:.1f} s: {len(ok)} ok, "
        f"{sum(r['status'] == 'pruned' for r in used)} pruned, "
        f"{sum(r['status'] == 'failed' for r in used)} failed, results in "
        f"{display_path(folder.out / RESULTS_FILE)}")
    if report:
        paths = write_report(folder.out, only=used)
        log("report: " + ", ".join(display_path(p) for p in paths.values()))
    return records_frame(used)


def _all_records(store, url) -> list[dict]:
    from .study import all_records

    return all_records(url, store.spec.name, store.spec.fingerprint())


def _clean_checkpoints(folder: SearchFolder, store) -> None:
    """Remove the checkpoint folders of runs that died (none of this folder's workers is
    running: their trials are not RUNNING)."""
    if not store.pending()[1]:
        folder.clean_checkpoints(keep_folder=True)


def _drive(store, pool, folder, spec, total, done, progress, label, log, url, halving):
    """Take waiting trials, train them on ``pool``, and finish them, until the study has
    none waiting and none running (another worker's may die and be queued again)."""
    from tqdm import tqdm  # plain text: no widget (and no ipywidgets warning) in Jupyter

    from .study import Heartbeat

    bar = tqdm(total=total, initial=done, desc=label, unit="config", disable=not progress,
               file=sys.stderr, dynamic_ncols=True, leave=True)
    in_flight: dict = {}
    waited_note = False
    try:
        with Heartbeat(store) as beat:
            while True:
                while len(in_flight) < pool.slots:
                    trial = store.take()
                    if trial is None:
                        break
                    beat.add(trial)
                    config = trial.user_attrs["config"]
                    task = {"spec": spec, "params": config, "epochs": spec.epochs_for(config),
                            "checkpoint_root": str(folder.checkpoints)}
                    if halving:
                        task.update(storage=url, study=store.name, trial_id=trial._trial_id,
                                    heartbeat=store.heartbeat)
                    in_flight[pool.submit(task)] = trial
                if not in_flight:
                    store.fail_stale()
                    waiting, running = store.pending()
                    if waiting:
                        continue
                    if not running:
                        break
                    if not waited_note:
                        waited_note = True
                        log(f"waiting for {running} configuration(s) another worker is "
                            f"training (a dead worker's are queued again after "
                            f"{store.heartbeat * 3} s)")
                    time.sleep(min(5.0, store.heartbeat))
                    continue
                for handle, record in pool.wait(timeout=5.0):
                    trial = in_flight.pop(handle)
                    beat.remove(trial)
                    if record.get("disk_full"):
                        store.abandon([trial])
                        raise OutputFolderError(
                            f"the disk is full: {record['error']}; the finished results are "
                            f"kept in the study and {display_path(folder.out / RESULTS_FILE)}"
                            ": make room, then run the same command again")
                    record = store.finish(trial, record)
                    append_result(folder, record)
                    if record["status"] != "failed":
                        done += 1
                    line = _summary_line(record, done, total)
                    if progress:
                        bar.write(line, file=sys.stdout)
                    else:
                        log(line)
                    bar.update(record["status"] != "failed")
    except BaseException:
        pool.close(abort=True)
        store.abandon(list(in_flight.values()))
        raise
    finally:
        bar.close()
    pool.close()
