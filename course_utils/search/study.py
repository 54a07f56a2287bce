"""The search's store: an Optuna study, in ``DIR/study.db`` (SQLite) or at ``--storage URL``.

- Every grid point is queued once as a waiting trial (``enqueue_trial``), and workers
  take waiting trials only: the study's database hands each one to exactly one worker
  (a transaction moves it from WAITING to RUNNING), and a trial is never sampled.
- A worker that dies stops its heartbeat; after the grace period any worker fails its
  trial and :class:`optuna.storages.RetryHeartbeatStaleTrialCallback` queues it again.
- Should a configuration be queued twice (two first starts on two machines at once), the
  trial with the lower number runs and the other is dropped before it trains.
- A configuration that raised while training is queued again at the next start (unless
  ``--skip-failed``); one interrupted (Ctrl-C, a lost Dask cluster) too.

Nothing here trains; :mod:`.execute` does.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from .errors import SearchError
from .folder import DB_FILE, RESULT_KEYS
from .spec import GridSpec, config_id, shorten

__all__ = ["GRACE_FACTOR", "HEARTBEAT", "Heartbeat", "StudyStore", "mask_url", "pruner",
           "rung_epochs", "storage_url"]

#: Seconds between heartbeats of a running trial (``--heartbeat``); a trial whose worker
#: has been silent for GRACE_FACTOR times that is failed and queued again.
HEARTBEAT = 10
GRACE_FACTOR = 3
_URL_RE = re.compile(r"(sqlite|postgresql|mysql)(\+[a-z0-9_]+)?://", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` without its password, for messages."""
    return shorten(re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", str(url)), -200)


def storage_url(out: str | os.PathLike, storage: str | None = None) -> str:
    """The study's database: ``storage`` (PostgreSQL or MySQL, for many machines) or
    ``sqlite:///DIR/study.db``."""
    if storage is None:
        return f"sqlite:///{Path(out).resolve() / DB_FILE}"
    if not isinstance(storage, str) or not _URL_RE.match(storage) \
            or storage.lower().startswith("sqlite"):
        raise SearchError(f"--storage {mask_url(storage)} is not a database URL the search "
                          "takes: give postgresql://USER:PASSWORD@HOST/DB or "
                          "mysql://USER:PASSWORD@HOST/DB (SQLite is DIR/study.db, the "
                          "default)")
    return storage


def _optuna():
    with warnings.catch_warnings():
        # optuna imports tqdm.auto, which in a Jupyter kernel without ipywidgets warns (with
        # the absolute path of its file) that it falls back to text bars: the search prints
        # its own plain-text bar and needs no widget
        warnings.filterwarnings("ignore", message="IProgress not found")
        import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").propagate = False
    # heartbeats and the stale-trial retry are "experimental" since Optuna 2.8: the search
    # relies on them as documented, so their warning is not the user's business
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def _encode(value):
    """A grid value as an Optuna categorical choice (lists as JSON text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True)


class StudyStore:
    """One grid's study: queue, take, finish and export trials.

    Parameters
    ----------
    spec : GridSpec
    url : str
        The storage URL (:func:`storage_url`).
    halving : bool
        The successive-halving study (its own study beside the full grid's), with
        Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner`.
    heartbeat : int
        Seconds between heartbeats.
    """

    def __init__(self, spec: GridSpec, url: str, *, halving: bool = False,
                 heartbeat: int = HEARTBEAT):
        self.spec, self.url, self.halving, self.heartbeat = spec, url, halving, heartbeat
        self.name = study_name(spec, halving)
        self.optuna = _optuna()
        self.storage = open_storage(url, heartbeat)
        self.study = self._open()

    def _open(self):
        optuna = self.optuna
        try:
            study = optuna.create_study(
                study_name=self.name, storage=self.storage, direction="maximize",
                load_if_exists=True, pruner=pruner(self.spec, self.halving),
                sampler=optuna.samplers.RandomSampler(seed=0))
            if "fingerprint" not in study.user_attrs:
                study.set_user_attr("fingerprint", self.spec.fingerprint())
                study.set_user_attr("grid", self.spec.name)
        except Exception as exc:  # noqa: BLE001 -- a database that does not answer
            raise SearchError(f"cannot open the study at {mask_url(self.url)} "
                              f"({type(exc).__name__}: {_first(exc)}): check the URL, the "
                              "server and its driver (pip install 'psycopg[binary]' for "
                              "PostgreSQL)") from None
        if study.user_attrs.get("fingerprint") != self.spec.fingerprint():
            raise SearchError(f"the study {self.name!r} at {mask_url(self.url)} holds another "
                              "grid: use another --storage database or --out folder")
        return study

    # -- the queue
    def trials(self, states=None):
        return self.study.get_trials(deepcopy=False, states=states)

    def queue(self, configs: list[dict], retry_failed: bool = True) -> dict[str, int]:
        """Queue every configuration the study lacks (and, ``retry_failed``, those whose
        trials all failed). Returns counts: done, failed, queued, waiting, running."""
        TS = self.optuna.trial.TrialState
        by_config: dict[str, list] = {}
        for t in self.trials():
            cid = t.user_attrs.get("config_id")
            if cid is not None:
                by_config.setdefault(cid, []).append(t)
        counts = dict(done=0, failed=0, queued=0, waiting=0, running=0)
        live = (TS.COMPLETE, TS.PRUNED, TS.WAITING, TS.RUNNING)
        for config in configs:
            cid = config_id(config)
            trials = by_config.get(cid, [])
            states = {t.state for t in trials}
            if TS.COMPLETE in states or TS.PRUNED in states:
                counts["done"] += 1
            elif TS.RUNNING in states:
                counts["running"] += 1
            elif TS.WAITING in states:
                counts["waiting"] += 1
            if trials and not states & set(live):
                # trained and failed (an interrupted or dead worker's trial has no record)
                failed = any("record" in t.user_attrs for t in trials)
                counts["failed"] += failed
                if failed and not retry_failed:
                    continue
            if not states & set(live):
                self.study.enqueue_trial({k: _encode(v) for k, v in config.items()},
                                         user_attrs={"config_id": cid, "config": config})
                counts["queued"] += 1
        return counts

    def take(self):
        """The next waiting trial, now RUNNING for this worker, or None. A trial whose
        configuration another trial (with a lower number) holds is dropped."""
        TS = self.optuna.trial.TrialState
        while True:
            trial_id = self.study._pop_waiting_trial_id()
            if trial_id is None:
                return None
            self.storage.record_heartbeat(trial_id)  # at once: a trial without one never
            trial = self.optuna.trial.Trial(self.study, trial_id)  # goes stale
            frozen = self.storage.get_trial(trial_id)
            cid = frozen.user_attrs.get("config_id")
            twin = [t for t in self.trials((TS.COMPLETE, TS.PRUNED, TS.RUNNING, TS.WAITING))
                    if t.user_attrs.get("config_id") == cid and t.number < frozen.number]
            if cid is None or twin:
                trial.set_user_attr("dropped", "queued twice" if twin else "not a grid point")
                self.study.tell(trial, state=TS.FAIL, skip_if_finished=True)
                continue
            for name, value in frozen.user_attrs["config"].items():
                choices = [_encode(v) for v in self.spec.params.get(name, [value])]
                if _encode(value) not in choices:
                    choices.append(_encode(value))
                trial.suggest_categorical(name, choices)  # shown by optuna-dashboard
            return trial

    def finish(self, trial, record: dict) -> dict:
        """Store ``record`` in the trial and end it (COMPLETE, PRUNED or FAIL)."""
        TS = self.optuna.trial.TrialState
        frozen = self.storage.get_trial(trial._trial_id)
        if self.halving:  # the last rung reached, of rungs at rung_epochs(...) epochs
            rungs = rung_epochs(self.spec.max_epochs, self.spec.halving["factor"],
                                self.spec.halving["min_epochs"])
            ran = record.get("epochs_run") or 0
            record["rung"] = max([i for i, e in enumerate(rungs) if e <= ran] or [0])
        record["trial"] = frozen.number
        trial.set_user_attr("record", {k: record.get(k) for k in RESULT_KEYS})
        if record["status"] == "ok":
            self.study.tell(trial, record["valid_acc"], skip_if_finished=True)
        elif record["status"] == "pruned":
            self.study.tell(trial, state=TS.PRUNED, skip_if_finished=True)
        else:
            self.study.tell(trial, state=TS.FAIL, skip_if_finished=True)
        return record

    def abandon(self, trials) -> None:
        """End trials that were taken but did not finish (an interrupt): FAIL without a
        record, so the next start queues their configurations again."""
        TS = self.optuna.trial.TrialState
        for trial in trials:
            try:
                trial.set_user_attr("interrupted", True)
                self.study.tell(trial, state=TS.FAIL, skip_if_finished=True)
            except Exception:  # noqa: BLE001 -- best effort: the heartbeat does it later
                pass

    def fail_stale(self) -> None:
        """Fail the trials of dead workers (Optuna's heartbeat check), and queue them again.
        A trial a worker took and died before its first heartbeat has none, and Optuna
        never calls it stale: it is given one now, so the next check can."""
        self.optuna.storages.fail_stale_trials(self.study)
        try:
            from optuna.storages._rdb import models

            with self.storage.scoped_session() as session:
                silent = [t.trial_id for t in session.query(models.TrialModel)
                          .filter(models.TrialModel.study_id == self.study._study_id)
                          .filter(models.TrialModel.state == self.optuna.trial.TrialState.RUNNING)
                          if not t.heartbeats]
        except Exception:  # noqa: BLE001 -- Optuna's tables changed: its own check remains
            silent = []
        for tid in silent:
            self.storage.record_heartbeat(tid)

    def pending(self) -> tuple[int, int]:
        """(waiting, running) trials of the study."""
        TS = self.optuna.trial.TrialState
        trials = self.trials((TS.WAITING, TS.RUNNING))
        waiting = sum(t.state == TS.WAITING for t in trials)
        return waiting, len(trials) - waiting

    def records(self) -> list[dict]:
        """Every finished trial's record, in trial order."""
        return [t.user_attrs["record"] for t in sorted(self.trials(), key=lambda t: t.number)
                if isinstance(t.user_attrs.get("record"), dict)]

    def latest(self) -> list[dict]:
        """The last record of each configuration, in grid order."""
        last: dict[str, dict] = {}
        for rec in self.records():
            last[rec["id"]] = rec
        return [last[config_id(c)] for c in self.spec.configs(limit=None)
                if config_id(c) in last]

    def close(self) -> None:
        try:
            self.storage.remove_session()
            self.storage.engine.dispose()
        except Exception:  # noqa: BLE001
            pass


def pruner(spec: GridSpec, halving: bool = True):
    """Optuna's SuccessiveHalvingPruner with the grid's ``halving`` (rungs at min_epochs x
    factor^k epochs), or no pruning."""
    optuna = _optuna()
    if not halving:
        return optuna.pruners.NopPruner()
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=spec.halving["min_epochs"], reduction_factor=spec.halving["factor"],
        min_early_stopping_rate=0)


def rung_epochs(max_epochs: int, factor: int, min_epochs: int) -> list[int]:
    """The epochs at which Optuna's pruner compares runs (min_epochs * factor**k), then
    max_epochs."""
    out, step = [], min_epochs
    while step < max_epochs:
        out.append(step)
        step *= factor
    return out + [max_epochs]


def study_name(spec: GridSpec, halving: bool = False) -> str:
    return f"{spec.name}-{spec.fingerprint()}" + ("-halving" if halving else "")


def open_storage(url: str, heartbeat: int = HEARTBEAT):
    """An :class:`optuna.storages.RDBStorage` with heartbeats and the stale-trial retry."""
    optuna = _optuna()
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 120}}  # two workers on one file wait, not fail
    else:
        engine = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=int(heartbeat),
                grace_period=int(heartbeat) * GRACE_FACTOR,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback())
        except Exception as exc:  # noqa: BLE001 -- driver missing, server down, bad URL
            # two machines creating Optuna's tables at once: one wins, the other retries
            if type(exc).__name__ in ("IntegrityError", "ProgrammingError") and attempt < 4:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise SearchError(f"cannot open the study at {mask_url(url)} "
                              f"({type(exc).__name__}: {_first(exc)}): check the URL, the "
                              "server and its driver (pip install 'psycopg[binary]' for "
                              "PostgreSQL)") from None
    raise AssertionError("unreachable")


def all_records(url: str, spec_name: str, fingerprint: str) -> list[dict]:
    """The records of every study of one grid in ``url`` (its full grid, then halving)."""
    optuna = _optuna()
    storage = open_storage(url)
    try:
        out = []
        for suffix in ("", "-halving"):
            name = f"{spec_name}-{fingerprint}{suffix}"
            if name not in optuna.get_all_study_names(storage):
                continue
            study = optuna.load_study(study_name=name, storage=storage)
            out.extend(t.user_attrs["record"] for t in sorted(
                study.get_trials(deepcopy=False), key=lambda t: t.number)
                if isinstance(t.user_attrs.get("record"), dict))
        return out
    finally:
        try:
            storage.engine.dispose()
        except Exception:  # noqa: BLE001
            pass


class Heartbeat:
    """Records the heartbeat of this worker's running trials every ``interval`` seconds
    (Optuna does this inside ``optimize``; the search asks and tells itself)."""

    def __init__(self, store: StudyStore):
        self.store, self.trials = store, {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="search-heartbeat", daemon=True)

    def add(self, trial) -> None:
        with self._lock:
            self.trials[trial._trial_id] = trial
        self.store.storage.record_heartbeat(trial._trial_id)

    def remove(self, trial) -> None:
        with self._lock:
            self.trials.pop(trial._trial_id, None)

    def running(self) -> list:
        with self._lock:
            return list(self.trials.values())

    def _run(self) -> None:
        while not self._stop.wait(self.store.heartbeat):
            for tid in [t._trial_id for t in self.running()]:
                try:
                    self.store.storage.record_heartbeat(tid)
                except Exception:  # noqa: BLE001 -- a busy database: next beat
                    pass

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return shorten(text.splitlines()[0], -200) if text else type(exc).__name__


def describe_counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v)
