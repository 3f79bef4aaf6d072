"""Studies, samplers, pruners and the trial store.

Storage choices:

* a file path: Optuna's ``JournalStorage`` on a file, an append-only log of every operation,
  shared safely by processes on one machine. Its lock is an ``fcntl`` lock on
  ``<file>.flock``, which the kernel releases when a process dies, so a SIGKILL never leaves a
  stale lock behind; every process writing to the file must open it with :func:`open_storage`
  (Optuna's own file locks do not exclude this one). Optuna has no
  heartbeat for this storage; instead every trial records its owner (host, process id and the
  process's start time) and :func:`recover_stale` fails the RUNNING trials whose owner on this
  machine is gone and queues their parameters again (a WAITING trial, which the next ``ask``
  takes first), so a rerun after a kill retries them.
* ``postgresql://...``, ``mysql://...``, ``sqlite:///...``: Optuna's ``RDBStorage`` with a
  heartbeat. A trial whose process stopped beating for ``grace_period`` seconds is failed by the
  next process that starts a trial, and Optuna's retry callback queues it again.
* ``None``: in memory, for one process.

Retried trials follow Optuna's convention for both storages: the new trial's system attributes
hold ``failed_trial`` (the first trial of the series) and ``retry_history``.
"""

from __future__ import annotations

import inspect
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlsmith.errors import ConfigError, MissingDependencyError, did_you_mean

__all__ = [
    "STRATEGIES", "PRUNERS", "import_optuna", "make_sampler", "make_pruner", "open_storage",
    "create_study", "owner_id", "owner_alive", "recover_stale", "consumed_numbers",
    "is_rdb_url", "EPOCH_STEPS", "EpochPruner", "make_epoch_pruner", "storage_spec",
    "RECORD_ATTR", "trial_attrs",
]

log = logging.getLogger("mlsmith")

STRATEGIES = ("grid", "random", "tpe")
PRUNERS = ("hyperband", "sha", "median", "none")
#: a RUNNING trial with no owner recorded this many seconds after it started is considered
#: abandoned (its process died between creating the trial and recording itself)
UNOWNED_GRACE_S = 60.0
#: how many times one configuration is retried after its process died
MAX_RETRY = 3
#: steps per fold of a trial that reports epochs: fold ``f``'s epoch ``e`` is reported at step
#: ``(f + 1) * EPOCH_STEPS + e`` and the mean score of the first ``k`` folds at
#: ``(k + 1) * EPOCH_STEPS``; epochs from ``EPOCH_STEPS`` on are not reported
EPOCH_STEPS = 1000
#: share of the finished trials a trial must not fall behind, by pruner name (epoch pruning)
EPOCH_WORST_SHARE = {"hyperband": 1 / 3, "sha": 1 / 3, "median": 0.5}

_RDB_PREFIXES = ("postgresql", "postgres", "mysql", "sqlite", "oracle", "mssql")


def import_optuna() -> Any:
    """``import optuna``, or a :class:`MissingDependencyError` naming the extra."""
    try:
        import optuna
    except ImportError:
        raise MissingDependencyError(
            "tuning needs the package 'optuna': pip install 'mlsmith[tune]'.") from None
    return optuna


def make_sampler(strategy: str, seed: int | None, grid: dict[str, list[Any]] | None = None, *,
                 conditional: bool = False, n_startup_trials: int = 10) -> Any:
    """An Optuna sampler for ``strategy``.

    Parameters
    ----------
    strategy : {"grid", "random", "tpe"}
        ``grid`` needs ``grid`` (see :func:`mlsmith.tune.grid`). ``tpe`` is Optuna's TPE with
        ``multivariate=True`` (models the dependence between parameters) and
        ``constant_liar=True`` (parallel trials do not all propose the same point), set
        explicitly because their defaults changed between Optuna releases.
    seed : int or None
        Seeds the sampler: with the same seed and one trial at a time, a study asks the same
        configurations.
    grid : dict, optional
        Parameter name to the list of its values, for ``grid``.
    conditional : bool
        The space has parameters that only some trials use (several families): TPE then
        groups parameters by the trials that share them (``group=True``) rather than falling
        back to independent sampling.
    n_startup_trials : int
        TPE's random trials before it starts modelling.
    """
    optuna = import_optuna()
    strategy = (strategy or "").lower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if strategy == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                              group=conditional, n_startup_trials=n_startup_trials)
        if strategy == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if strategy == "grid":
            if not grid:
                raise ConfigError("the grid strategy needs a grid: "
                                  "pass grid=mlsmith.tune.grid(space).")
            return optuna.samplers.GridSampler(grid, seed=seed)
    raise ConfigError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}."
                      + did_you_mean(strategy, STRATEGIES))


def make_pruner(name: str = "hyperband", n_steps: int | None = None, *,
                n_startup_trials: int = 5) -> Any:
    """An Optuna pruner that judges a trial by its mean score over the folds done so far.

    Parameters
    ----------
    name : {"hyperband", "sha", "median", "none"}
        ``hyperband``: several successive-halving brackets (Optuna's ``HyperbandPruner``);
        ``sha``: one successive-halving schedule (keeps the best third at folds 1, 3, 9...);
        ``median``: stop a trial below the median of earlier trials at the same fold;
        ``none``: never prune.
    n_steps : int, optional
        Steps a full trial reports (the number of CV folds): Hyperband's maximum resource.
    n_startup_trials : int
        The median pruner prunes nothing before this many trials finished.
    """
    optuna = import_optuna()
    key = (name or "none").lower()
    if key == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1,
                                              max_resource=n_steps if n_steps else "auto",
                                              reduction_factor=3)
    if key in ("sha", "successive_halving", "asha"):
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if key == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=0)
    if key in ("none", "nop", "off"):
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}: use one of {', '.join(PRUNERS)}."
                      + did_you_mean(key, PRUNERS))


class EpochPruner:
    """The pruner of trials that report epochs (neural networks), by their step numbers.

    Steps are laid out per fold (:data:`EPOCH_STEPS`): fold ``f``'s epoch ``e`` at
    ``(f + 1) * block + e``, the mean score of the first ``k`` folds at ``(k + 1) * block``.
    At an epoch step the trial's best value so far in that fold is compared with the values the
    finished (COMPLETE) trials reported at the same step (same fold, same epoch); at a fold step
    its mean score with theirs. The trial is pruned when it is worse than the ``worst_share``
    quantile of those values (``0.5``: below the median), counted from the worst. Nothing is
    pruned during a fold's first ``n_warmup_epochs`` epochs, at a step fewer than
    ``n_min_trials`` finished trials reached, nor at a step below ``block`` (the per-fold steps
    of the other families, judged by the study's own pruner).

    Optuna's successive halving and Hyperband count resource in steps from 1 (folds here), and
    its median pruner compares a trial's best value over all its steps, which would mix epochs
    of one fold with the next and with the fold means; hence a pruner of its own. It duck-types
    ``optuna.pruners.BasePruner`` and pickles, so it travels to the worker that trains.
    """

    def __init__(self, worst_share: float = 0.5, *, n_min_trials: int = 2,
                 n_warmup_epochs: int = 5, block: int = EPOCH_STEPS) -> None:
        if not 0.0 < worst_share < 1.0:
            raise ValueError(f"worst_share must be in (0, 1): got {worst_share}")
        self.worst_share = float(worst_share)
        self.n_min_trials = max(1, int(n_min_trials))
        self.n_warmup_epochs = max(0, int(n_warmup_epochs))
        self.block = int(block)

    def prune(self, study: Any, trial: Any) -> bool:
        import math

        import numpy as np

        optuna = import_optuna()
        step = trial.last_step
        if step is None or step < self.block:
            return False
        epoch = step % self.block
        if 0 < epoch <= self.n_warmup_epochs:
            return False
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        if epoch:  # the best epoch so far in this fold
            start = step - epoch
            mine = [v for s, v in trial.intermediate_values.items() if start < s <= step]
        else:
            mine = [trial.intermediate_values[step]]
        finite = [v for v in mine if math.isfinite(v)]
        if not finite:  # diverged: as bad as it gets
            own = -math.inf if maximize else math.inf
        else:
            own = max(finite) if maximize else min(finite)
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        others = [t.intermediate_values[step] for t in done if step in t.intermediate_values]
        others = [v for v in others if math.isfinite(v)]
        if len(others) < self.n_min_trials:
            return False
        if maximize:
            return bool(own < float(np.quantile(others, self.worst_share)))
        return bool(own > float(np.quantile(others, 1.0 - self.worst_share)))

    def __repr__(self) -> str:
        return (f"EpochPruner(worst_share={self.worst_share:.3g}, "
                f"n_min_trials={self.n_min_trials}, n_warmup_epochs={self.n_warmup_epochs})")


def make_epoch_pruner(name: str = "hyperband") -> Any:
    """The pruner of trials that report epochs, for the search's pruner setting ``name``.

    ``median``: prune a network below the median of the finished trials at the same fold and
    epoch; ``hyperband`` and ``sha``: only one in the worst third (a step is judged at every
    epoch, far more often than successive halving's rungs); ``none``: Optuna's ``NopPruner``
    (the epochs are still reported, as learning curves).
    """
    optuna = import_optuna()
    key = (name or "none").lower()
    key = {"successive_halving": "sha", "asha": "sha"}.get(key, key)
    if key in EPOCH_WORST_SHARE:
        return EpochPruner(EPOCH_WORST_SHARE[key])
    if key in ("none", "nop", "off"):
        return optuna.pruners.NopPruner()
    make_pruner(name)  # raises the error with the hint
    raise AssertionError(name)  # pragma: no cover


def storage_spec(storage: Any) -> str | None:
    """The spec another process opens ``storage`` with (:func:`open_storage`): the journal
    file's path or the database URL; None for an in-memory or unknown storage."""
    optuna = import_optuna()
    store = storage
    cached = getattr(optuna.storages, "_CachedStorage", None)
    if cached is not None and isinstance(store, cached):
        store = store._backend
    if isinstance(store, optuna.storages.RDBStorage):
        return str(store.url)
    journal = getattr(optuna.storages, "JournalStorage", None)
    if journal is not None and isinstance(store, journal):
        path = getattr(getattr(store, "_backend", None), "_file_path", None)
        return None if path is None else str(path)
    return None


def is_rdb_url(spec: Any) -> bool:
    """Whether ``spec`` is a database URL (``postgresql://...``, ``sqlite:///...``)."""
    if not isinstance(spec, str) or "://" not in spec:
        return False
    scheme = spec.split("://", 1)[0].split("+", 1)[0].lower()
    return scheme in _RDB_PREFIXES


class _FlockLock:
    """An exclusive ``fcntl.flock`` on ``<journal>.flock`` for the journal's appends.

    The kernel drops the lock when its process dies, so a process killed while appending does
    not block the others (Optuna's own file locks wait out a 30 s grace period). Each acquire
    opens its own descriptor, so threads of one process exclude each other too.
    """

    def __init__(self, path: str) -> None:
        self.path = path + ".flock"  # not Optuna's ".lock", which its own locks create
        self._local = threading.local()

    def acquire(self) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._local.fd = fd
        return True

    def release(self) -> None:
        import fcntl

        fd = self._local.fd
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _repair_journal(path: Path, lock: Any) -> None:
    """Cut a last line left unfinished by a process killed while appending: the next append
    would otherwise join it and corrupt the log."""
    if not path.exists() or path.stat().st_size == 0:
        return
    lock.acquire()
    try:
        with open(path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            chunk = min(size, 1 << 20)
            while True:
                fh.seek(size - chunk)
                data = fh.read(chunk)
                cut = data.rfind(b"\n")
                if cut >= 0 or chunk == size:
                    keep = size - chunk + cut + 1 if cut >= 0 else 0
                    break
                chunk = min(size, chunk * 2)
            fh.truncate(keep)
            log.warning("the trial store %s ended in a half-written record (a process was "
                        "killed while writing); it was removed", path)
    finally:
        lock.release()


def open_storage(spec: str | os.PathLike[str] | None, *, heartbeat_interval: int = 10,
                 grace_period: int | None = None) -> Any:
    """Open the trial store named by ``spec``.

    Parameters
    ----------
    spec : str, path or None
        A file path (JournalStorage on that file, created with its folder if missing), a
        database URL (``postgresql://user@host:port/db``, ``sqlite:///study.db``: RDBStorage
        with a heartbeat), an Optuna storage object (returned as is), or None (in memory).
    heartbeat_interval : int
        Seconds between a running trial's heartbeats (database storages).
    grace_period : int, optional
        Seconds without a heartbeat after which a running trial counts as dead (default twice
        the interval); it is then failed and queued again (at most ``MAX_RETRY`` times).

    Examples
    --------
    >>> storage = open_storage("runs/x/study/journal.log")  # doctest: +SKIP
    >>> storage = open_storage("postgresql://mlsmith@db:5432/studies")  # doctest: +SKIP
    """
    optuna = import_optuna()
    if spec is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(spec, optuna.storages.BaseStorage):
        return spec
    text = os.fspath(spec)
    if is_rdb_url(text):
        given, text = text, _with_driver(text)
        try:
            import sqlalchemy  # noqa: F401
        except ImportError:  # pragma: no cover - optuna depends on it
            raise MissingDependencyError("database storages need sqlalchemy: "
                                         "pip install 'mlsmith[tune]'.") from None
        retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) \
            or optuna.storages.RetryFailedTrialCallback
        params = inspect.signature(optuna.storages.RDBStorage).parameters
        callback_kw = ("heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback"
                       in params else "failed_trial_callback")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeat and the retry callback are experimental
            try:
                return optuna.storages.RDBStorage(
                    text, engine_kwargs={"pool_pre_ping": True},
                    heartbeat_interval=int(heartbeat_interval),
                    grace_period=int(grace_period or 2 * heartbeat_interval),
                    **{callback_kw: retry_cls(max_retry=MAX_RETRY)})
            except ImportError as exc:
                raise MissingDependencyError(
                    f"the storage {given.split('://')[0]}:// needs a database driver ({exc}): "
                    f"install the driver its URL names.") from None
            except Exception as exc:  # sqlalchemy's OperationalError and friends
                raise ConfigError(f"cannot open the study storage {_redact(given)}: "
                                  f"{str(exc).strip().splitlines()[0]}. Check the URL and that "
                                  f"the database server is running.") from None
    if "://" in text:
        raise ConfigError(f"unsupported storage URL {_redact(text)}: give a file path (journal) "
                          f"or a postgresql://, mysql:// or sqlite:/// URL.")
    path = Path(text)
    if path.is_dir():
        path = path / "journal.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage

    try:
        import fcntl  # noqa: F401
        lock: Any = _FlockLock(str(path))
    except ImportError:  # pragma: no cover - Windows: Optuna's lock file with a grace period
        lock = JournalFileOpenLock(str(path))
    _repair_journal(path, lock)
    return JournalStorage(_journal_backend(JournalFileBackend)(str(path), lock_obj=lock))


def _journal_backend(base: Any) -> Any:
    """Optuna's journal file backend without an ``fsync`` per record.

    Optuna syncs the file to disk after every record: about 1.7 ms each here, and a trial writes
    about 25 records (its parameters, attributes and intermediate values), which made the
    journal the largest part of the search's overhead (measured: 1.7 s of 3.7 s for 40 trials
    on tips). A record written without the sync is in the operating system's cache the moment
    ``write`` returns, so it survives the writing process being killed (SIGKILL, Ctrl-C, a
    crash): only a crash of the machine itself could lose the last records, and the journal's
    repair on open cuts a torn last line. The lock still orders writers.
    """

    class _JournalNoSync(base):  # type: ignore[misc, valid-type]
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            import json

            from optuna.storages.journal._file import get_lock_file

            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            with get_lock_file(self._lock), open(self._file_path, "ab") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()

    return _JournalNoSync


def _with_driver(url: str) -> str:
    """Name an installed PostgreSQL driver in a bare ``postgresql://`` URL.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, 2.0 to psycopg2; either may be
    the one installed. ``postgres://`` (Heroku style) is accepted too.
    """
    import importlib.util

    scheme, rest = url.split("://", 1)
    if scheme.lower() not in ("postgresql", "postgres"):
        return url
    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"{dialect}://{rest}"
    raise MissingDependencyError("a postgresql:// storage needs a PostgreSQL driver: "
                                 "pip install psycopg2-binary (or 'psycopg[binary]').")


def _redact(url: str) -> str:
    """The URL without its password."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    cred, host = rest.rsplit("@", 1)
    user = cred.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in cred else url


def create_study(name: str, storage: Any, direction: str, sampler: Any = None, pruner: Any = None,
                 load_if_exists: bool = True) -> Any:
    """Create (or, with ``load_if_exists``, load) the study ``name`` in ``storage``.

    ``storage`` is anything :func:`open_storage` accepts. A study loaded from the store keeps
    its direction; asking for the other one is an error rather than a silently inverted search.
    """
    optuna = import_optuna()
    store = open_storage(storage)
    study = optuna.create_study(study_name=name, storage=store, direction=direction,
                                sampler=sampler, pruner=pruner, load_if_exists=load_if_exists)
    have = study.direction.name.lower()
    if have != direction.lower():
        raise ConfigError(f"study {name!r} in the store was created to {have} its objective, "
                          f"not to {direction}: use another study name.")
    return study


# --- owners and stale trials (journal storage) ------------------------------------------------
def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return None


def owner_id(pid: int | None = None) -> str:
    """``host:pid:start`` naming this process (or ``pid``) across reuse of process ids."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '-'}"


def owner_alive(owner: str) -> bool:
    """Whether the process ``owner`` (from :func:`owner_id`) still runs. Processes of other
    machines cannot be checked and count as alive."""
    try:
        host, pid_text, ticks = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    if ticks != "-" and os.path.isdir("/proc"):
        return _start_ticks(pid) == ticks
    from mlsmith.run._rundir import _pid_alive

    return _pid_alive(pid)


def _retried_numbers(trials: Iterable[Any]) -> set[int]:
    out: set[int] = set()
    for t in trials:
        out.update(int(n) for n in t.system_attrs.get("retry_history", []))
    return out


def consumed_numbers(trials: list[Any]) -> list[int]:
    """Numbers of the trials that count against a trial budget: finished or running, except
    trials that were failed for a dead process and queued again (their retry counts once it
    runs) and trials that never ran (WAITING, or ``status`` ``surplus`` or ``skipped``)."""
    optuna = import_optuna()
    state = optuna.trial.TrialState
    retried = _retried_numbers(trials)
    out = []
    for t in trials:
        if t.state == state.WAITING:
            continue
        if trial_attrs(t).get("status") in ("surplus", "skipped"):
            continue
        if t.state == state.FAIL and t.number in retried:
            continue
        out.append(t.number)
    return out


#: the user attribute holding a finished trial's record (one journal record, not a dozen)
RECORD_ATTR = "record"


def trial_attrs(t: Any) -> dict[str, Any]:
    """A trial's user attributes with its end-of-trial record (``user_attrs["record"]``:
    status, scores, times, ...) merged in, so readers see one flat mapping."""
    ua = t.user_attrs
    record = ua.get(RECORD_ATTR)
    return {**ua, **record} if isinstance(record, dict) else dict(ua)


def recover_stale(study: Any, storage: Any | None = None, *, max_retry: int = MAX_RETRY,
                  unowned_grace: float = UNOWNED_GRACE_S) -> list[int]:
    """Fail the RUNNING trials whose process died and queue their parameters again.

    Database storages use Optuna's heartbeat (``fail_stale_trials``). Other storages use the
    ``owner`` user attribute each trial records when it starts (:func:`owner_id`): a trial
    whose owner ran on this machine and is gone, or that has no owner a minute after it
    started, is marked ``status="stale"``, failed, and a WAITING copy with the same parameters
    is added (Optuna's ``failed_trial`` / ``retry_history`` system attributes), unless it was
    retried ``max_retry`` times already. Several processes may call this at once: only the one
    whose FAIL lands first queues the copy.

    Returns the numbers of the trials failed by this call.
    """
    optuna = import_optuna()
    state = optuna.trial.TrialState
    store = storage if storage is not None else study._storage
    if hasattr(store, "get_heartbeat_interval") and store.get_heartbeat_interval() is not None:
        running = {t.number for t in study.get_trials(deepcopy=False, states=(state.RUNNING,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(study)
        still = {t.number for t in study.get_trials(deepcopy=False, states=(state.RUNNING,))}
        return sorted(running - still)
    if isinstance(store, optuna.storages.InMemoryStorage):
        return []
    study_id = store.get_study_id_from_name(study.study_name)
    failed = []
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(state.RUNNING,)):
        owner = t.user_attrs.get("owner")
        if owner is None:
            started = t.datetime_start.timestamp() if t.datetime_start else now
            if now - started < unowned_grace:
                continue
        elif owner_alive(owner):
            continue
        trial_id = store.get_trial_id_from_study_id_trial_number(study_id, t.number)
        try:
            store.set_trial_user_attr(trial_id, "status", "stale")
            store.set_trial_user_attr(trial_id, "note", "its process died; queued again")
            if not store.set_trial_state_values(trial_id, state=state.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        failed.append(t.number)
        history = [*t.system_attrs.get("retry_history", []), t.number]
        if len(history) > max_retry:
            log.warning("trial %d failed %d times with a dead process: not retried again",
                        t.number, len(history))
            continue
        user_attrs = {k: t.user_attrs[k] for k in ("origin",) if k in t.user_attrs}
        user_attrs["retry_of"] = t.number
        study.add_trial(optuna.trial.create_trial(
            state=state.WAITING, params=t.params, distributions=t.distributions,
            user_attrs=user_attrs,
            system_attrs={"failed_trial": history[0], "retry_history": history}))
        log.info("trial %d was left running by a dead process: queued again", t.number)
    return failed
