"""Training the configurations: one run, on this machine (one process or joblib) or on Dask,
as a full grid or by successive halving.

Every configuration trains through the course's one run layer,
:func:`course_utils.experiment.train_variant` with ``select="best"`` (the best
validation epoch's model, restored from its checkpoint) and no test set. A
configuration that raises while training (CUDA out of memory at batch 2048, say) is
recorded as ``failed`` with its error and the search goes on, like sklearn's
``error_score``; the next run of the same search tries it again.

What can be checked before training is checked before the output folder is locked:
the grid (:func:`~course_utils.search.spec.load_grid`), the folder, the device, the
data, and with Dask that the address answers as a Dask scheduler.

Nothing here imports Dask unless a Dask address is given.
"""
from __future__ import annotations

import asyncio
import gc
import inspect
import math
import os
import platform
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterator

from ..config import CourseError, Profile, display_path
from .errors import DaskError, GridError, SearchError
from .spec import MAX_CONFIGS, GridSpec, check_size, load_grid, net_arguments, run_key
from .store import (RESULTS_FILE, SearchFolder, append_result, checkpoint_prefix, new_record,
                    read_results, records_by_key)

__all__ = ["DASK_TIMEOUT", "build_net", "connect_dask", "execute", "grid_splits",
           "halving_schedule", "library_versions", "preflight", "run_config", "run_search",
           "train_config"]

#: Seconds to wait for a Dask scheduler to answer (connection and handshake).
DASK_TIMEOUT = 30.0

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


def run_config(task: dict) -> dict:
    """Train one configuration and return its record (:data:`~.store.RESULT_KEYS`).

    Parameters
    ----------
    task : dict
        ``spec``, ``params``, ``epochs``, ``rung``; ``checkpoint_root`` (the folder
        for this run's checkpoint folder; None: the system's temporary folder) and
        ``threads`` (torch threads) are optional.

    Returns
    -------
    dict
        Never raises for a training error: the record says ``status: failed`` and
        holds the error's first line. The run's checkpoint folder is deleted.
    """
    import shutil

    import torch

    from ..config import get_device

    start = time.perf_counter()
    spec: GridSpec = task["spec"]
    params, epochs = task["params"], task["epochs"]
    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    record = new_record(params, epochs, rung=task.get("rung"), seed=spec.seed_for(params))
    ckpt = None
    try:
        ckpt = tempfile.mkdtemp(prefix=checkpoint_prefix(params, epochs),
                                dir=task.get("checkpoint_root"))
        record["device"] = _device_name(get_device())
        result = train_config(spec, params, grid_splits(spec), epochs=epochs,
                              seed=record["seed"], variant=record["id"], checkpoint_root=ckpt,
                              on_net=lambda net: record.update(device=_device_name(net.device)))
        record.update(status="ok", valid_acc=result.valid_acc, train_acc=result.train_acc,
                      gap=result.gap, best_epoch=result.best_epoch,
                      epochs_run=result.epochs_run,
                      train_seconds=round(result.train_seconds, 3))
    except Exception as exc:  # noqa: BLE001 -- sklearn's error_score: record and go on
        message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
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


# --------------------------------------------------------------------------- executors

def execute(tasks: list[dict], jobs: int = 1, client=None) -> Iterator[dict]:
    """Run ``tasks``; yield each record as it finishes (in any order).

    One task at a time in this process (``jobs=1``), ``jobs`` joblib processes, or
    on the Dask ``client``'s workers. An interrupt (Ctrl-C, or SIGTERM turned into
    one by the command line) stops the joblib workers too.
    """
    if not tasks:
        return
    if client is not None:
        yield from _execute_dask(tasks, client)
    elif jobs == 1:
        for task in tasks:
            yield run_config(task)
    else:
        from joblib import Parallel, delayed

        threads = max(1, (os.cpu_count() or 1) // jobs)
        for task in tasks:
            task["threads"] = threads
        # joblib aborts (kills its workers) when the loop below is left by an exception
        yield from Parallel(n_jobs=jobs, return_as="generator_unordered")(
            delayed(run_config)(t) for t in tasks)


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
    _probe_scheduler(address, float(timeout))
    try:
        return Client(address, timeout=f"{timeout}s"), True
    except (OSError, TimeoutError, ValueError) as exc:
        raise DaskError(f"cannot connect to the Dask scheduler at {address}: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                        ) from None


def _execute_dask(tasks, client):
    from dask.distributed import as_completed

    for task in tasks:  # the worker's own temporary folder, deleted by the worker
        task["checkpoint_root"] = None
    futures = client.map(run_config, tasks, pure=False)
    by_future = dict(zip(futures, tasks))
    try:
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 -- a worker died: record and go on
                task = by_future[fut]
                record = new_record(task["params"], task["epochs"], rung=task.get("rung"),
                                    seed=task["spec"].seed_for(task["params"]),
                                    error=f"{type(exc).__name__}: {exc}"[:500])
                record["versions"] = library_versions()
                yield record
    finally:
        client.cancel([f for f in futures if not f.done()])


# --------------------------------------------------------------------------- the search

def preflight(spec: GridSpec) -> None:
    """What a local run needs, checked before anything is locked or trained: the device
    (``$COURSE_DEVICE``) and the data (Fashion-MNIST found, the splits cut)."""
    from ..config import get_device

    get_device()
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
    return f"{head}: FAILED {rec['error']}"


def _run_batch(folder: SearchFolder, spec: GridSpec, configs: list[dict],
               epochs_of: Callable[[dict], int], *, rung, jobs, client, progress, skip_failed,
               known: dict, label: str, log) -> dict[str, dict]:
    """Run ``configs`` (skipping finished ones); their records by run key."""
    from tqdm import tqdm  # plain text: no widget (and no ipywidgets warning) in Jupyter

    out = folder.out
    wanted = {run_key(c, epochs_of(c)): c for c in configs}
    done = {k: known[k] for k in wanted if k in known
            and (known[k]["status"] == "ok" or skip_failed)}
    todo = [c for k, c in wanted.items() if k not in done]
    retried = sum(1 for k in wanted if k in known and k not in done)
    if done or retried:
        again = f" ({retried} failed before, run again)" if retried else ""
        log(f"{label}: {len(done)} of {len(wanted)} configurations already in "
            f"{display_path(out / RESULTS_FILE)}, skipped; {len(todo)} to run{again}")
    tasks = [{"spec": spec, "params": c, "epochs": epochs_of(c), "rung": rung,
              "checkpoint_root": str(folder.checkpoints)} for c in todo]
    finished = len(done)
    bar = tqdm(total=len(wanted), initial=finished, desc=label, unit="config",
               disable=not progress, file=sys.stderr, dynamic_ncols=True, leave=True)
    try:
        for rec in execute(tasks, jobs, client):
            append_result(out, rec)
            known[rec["key"]] = done[rec["key"]] = rec
            finished += 1
            line = _summary_line(rec, finished, len(wanted))
            if progress:
                bar.write(line, file=sys.stdout)
            else:
                log(line)
            bar.update(1)
    finally:
        bar.close()
    return {k: done[k] for k in wanted}


def halving_schedule(max_epochs: int, factor: int = 3, min_epochs: int = 1) -> list[int]:
    """Epochs per rung, ending at ``max_epochs``: 20, factor 3 -> [2, 6, 20]."""
    rungs = [max_epochs]
    while rungs[-1] // factor >= min_epochs:
        rungs.append(rungs[-1] // factor)
    return rungs[::-1]


def run_search(grid, out: str | os.PathLike, *, jobs: int = 1, dask=None,
               halving: bool = False, progress: bool | None = None, skip_failed: bool = False,
               report: bool = True, max_configs: int | None = MAX_CONFIGS,
               dask_timeout: float = DASK_TIMEOUT, allow_modules=(), log=print):
    """Run (or resume) a grid search.

    Parameters
    ----------
    grid : GridSpec, path, str or dict
        A :class:`GridSpec`, a YAML path, a grid name under grids/, or a dict.
    out : path
        The output folder: new, empty, or one this search made (it holds grid.json).
    jobs : int
        Configurations trained at once on this machine (joblib processes).
    dask : str or Client, optional
        A dask.distributed scheduler address (or Client): one worker per GPU.
    halving : bool
        Successive halving with epochs as the resource, instead of the full grid.
    progress : bool, optional
        The tqdm bar (default: :func:`course_utils.training.progress_enabled`).
    skip_failed : bool
        Keep configurations recorded as failed as they are (by default they run again).
    report : bool
        Write summary.csv, best.json and heatmap.png at the end.
    max_configs : int or None
        Refuse a grid with more configurations (None: no cap).
    dask_timeout : float
        Seconds the Dask scheduler has to answer.
    allow_modules : iterable of str
        Modules the grid's ``model`` may come from (when ``grid`` is not a GridSpec).
    log : callable
        Where the progress lines go.

    Returns
    -------
    pandas.DataFrame
        One row per run the search used: the parameters, then the record's results.
    """
    from ..training import progress_enabled
    from .report import records_frame, write_report

    if max_configs is not None and (isinstance(max_configs, bool)
                                    or not isinstance(max_configs, int) or max_configs < 1):
        raise SearchError(f"--max-configs must be a positive integer, got {max_configs!r}")
    spec = grid if isinstance(grid, GridSpec) else load_grid(
        grid, allow_modules=allow_modules, max_configs=max_configs)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SearchError(f"--jobs must be a positive integer, got {jobs!r}")
    if dask is not None and jobs != 1:
        raise SearchError("use either --jobs or --dask, not both: with Dask, the workers "
                          "decide how many configurations run at once")
    if halving and "max_epochs" in spec.params:
        raise GridError(f"{spec.source}: --halving uses epochs as the resource, so max_epochs "
                        "cannot also be searched")
    check_size(spec, max_configs)
    progress = progress_enabled() if progress is None else progress
    folder = SearchFolder(out, spec)
    folder.check()
    client, own_client = connect_dask(dask, dask_timeout) if dask is not None else (None, False)
    start = time.perf_counter()
    used: list[dict] = []
    try:
        if client is None:
            preflight(spec)
        with folder:
            known = records_by_key(read_results(folder.out, repair=True))
            configs = spec.configs(limit=max_configs)
            log(spec.describe())
            common = dict(jobs=jobs, client=client, progress=progress, skip_failed=skip_failed,
                          known=known, log=log)
            if not halving:
                res = _run_batch(folder, spec, configs, spec.epochs_for, rung=None,
                                 label=spec.name, **common)
                used = list(res.values())
            else:
                factor, min_ep = spec.halving["factor"], spec.halving["min_epochs"]
                schedule = halving_schedule(spec.max_epochs, factor, min_ep)
                log(f"successive halving: epochs per rung {schedule}, keeping 1/{factor} "
                    "each rung")
                candidates = configs
                for rung, epochs in enumerate(schedule):
                    res = _run_batch(folder, spec, candidates, lambda c, e=epochs: e, rung=rung,
                                     label=f"{spec.name} rung {rung} ({epochs} ep)", **common)
                    used.extend({**rec, "rung": rung} for rec in res.values())
                    if rung == len(schedule) - 1:
                        break
                    scores = [res[run_key(c, epochs)].get("valid_acc") for c in candidates]
                    order = sorted(range(len(candidates)), key=lambda i: (
                        -(scores[i] if scores[i] is not None else -1), i))
                    keep = max(1, math.ceil(len(candidates) / factor))
                    candidates = [candidates[i] for i in order[:keep]]
            folder.clean_checkpoints()
    finally:
        if own_client:
            client.close()
    seconds = time.perf_counter() - start
    ok = [r for r in used if r["status"] == "ok"]
    log(f"search done in {seconds:.1f} s: {len(ok)} ok, {len(used) - len(ok)} failed, "
        f"results in {display_path(folder.out / RESULTS_FILE)}")
    if report:
        paths = write_report(folder.out, only=used if halving else None)
        log("report: " + ", ".join(display_path(p) for p in paths.values()))
    return records_frame(used)
