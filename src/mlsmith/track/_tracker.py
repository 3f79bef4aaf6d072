"""``FitTracker``: one fit becomes one MLflow run, each trial a nested run, the model a pyfunc.

Everything is logged in one go once the fit is done, with batched calls (``log_batch``), either
in this process (:meth:`FitTracker.log_fit`) or in a background process that the fit does not
wait for (:meth:`FitTracker.log_fit_async`). Importing MLflow and creating a SQLite store cost
seconds, so the fit's time budget pays for neither when it logs in the background.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import math
import os
import pickle
import posixpath
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlsmith.errors import ConfigError, MissingDependencyError
from mlsmith.track._deps import _problem, require_mlflow

__all__ = ["FitTracker", "TrackingJob", "default_tracking_uri", "RECORD_FILE", "MLFLOW_STATUS"]

log = logging.getLogger("mlsmith.track")

RECORD_FILE = "tracking.json"
STORE_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"
# a trial's status -> the MLflow run status (the exact status is also the tag mlsmith.status)
MLFLOW_STATUS = {"ok": "FINISHED", "failed": "FAILED", "stopped": "KILLED", "skipped": "KILLED",
                 "pruned": "KILLED"}
_MAX_KEY = 250
_MAX_PARAM_VALUE = 6000
_MAX_TAG_VALUE = 5000
_BAD_KEY_CHARS = re.compile(r"[^\w.\- /]")


def default_tracking_uri(run_dir: str | os.PathLike[str]) -> str:
    """The SQLite store inside a run directory: ``sqlite:///<absolute run_dir>/mlflow.db``.

    Examples
    --------
    >>> default_tracking_uri("/runs/price")
    'sqlite:////runs/price/mlflow.db'
    """
    return "sqlite:///" + (Path(run_dir).resolve() / STORE_FILE).as_posix()


# --- conversion to MLflow entities ----------------------------------------------------------
def _key(name: Any) -> str:
    """A valid MLflow param/metric/tag key: odd characters become ``_``; at most 250 chars."""
    key = _BAD_KEY_CHARS.sub("_", str(name)).strip() or "_"
    if posixpath.normpath(key) != key or key.startswith(("/", ".")):
        key = key.replace("/", "_").lstrip(".") or "_"
    return key[:_MAX_KEY]


def _text(value: Any, limit: int) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str, sort_keys=True)
        except (TypeError, ValueError):
            text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flatten(d: Mapping[str, Any], sep: str, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, sep, name))
        else:
            out[name] = v
    return out


def _number(v: Any) -> float | None:
    """A metric value, or None for what is not one (text, None, booleans)."""
    if v is None or isinstance(v, bool | str):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _ms(seconds: float | None) -> int:
    return int(round((time.time() if seconds is None else seconds) * 1000))


class _Batch:
    """Params, metrics and tags for one run, sent in as few ``log_batch`` calls as allowed."""

    def __init__(self, timestamp_ms: int, model_id: str | None = None) -> None:
        self.ts = timestamp_ms
        self.model_id = model_id
        self.params: dict[str, str] = {}
        self.metrics: list[tuple[str, float, int]] = []
        self.tags: dict[str, str] = {}

    def param(self, name: Any, value: Any) -> None:
        self.params[_key(name)] = _text(value, _MAX_PARAM_VALUE)

    def tag(self, name: str, value: Any) -> None:
        if value is not None and value != "":
            self.tags[name] = _text(value, _MAX_TAG_VALUE)

    def metric(self, name: Any, value: Any, step: int = 0) -> None:
        number = _number(value)
        if number is not None:
            self.metrics.append((_key(name), number, int(step)))

    def send(self, client: Any, run_id: str) -> None:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.validation import (
            MAX_ENTITIES_PER_BATCH,
            MAX_METRICS_PER_BATCH,
            MAX_PARAMS_TAGS_PER_BATCH,
        )

        params = [Param(k, v) for k, v in self.params.items()]
        tags = [RunTag(k, v) for k, v in self.tags.items()]
        metrics = [Metric(k, v, self.ts, s, model_id=self.model_id) for k, v, s in self.metrics]
        while params or tags or metrics:
            p, params = params[:MAX_PARAMS_TAGS_PER_BATCH], params[MAX_PARAMS_TAGS_PER_BATCH:]
            t, tags = tags[:MAX_PARAMS_TAGS_PER_BATCH], tags[MAX_PARAMS_TAGS_PER_BATCH:]
            room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(p) - len(t))
            m, metrics = metrics[:room], metrics[room:]
            client.log_batch(run_id, metrics=m, params=p, tags=t)


def _trial_batch(trial: Mapping[str, Any], ts: int) -> _Batch:
    b = _Batch(ts)
    for name, value in _flatten(trial.get("params") or {}, ".").items():
        b.param(name, value)
    folds = [f for f in (_number(x) for x in trial.get("fold_scores") or []) if f is not None]
    for i, v in enumerate(folds):
        b.metric("fold_score", v, i)
    for i, v in enumerate(trial.get("train_scores") or []):
        b.metric("train_score", v, i)
    value = trial.get("value")
    if value is None and folds:
        value = sum(folds) / len(folds)
    b.metric("cv_score", value)
    if folds:
        mean = sum(folds) / len(folds)
        b.metric("cv_score_std", math.sqrt(sum((f - mean) ** 2 for f in folds) / len(folds)))
    for name in ("duration_s", "fit_time_s", "predict_time_s"):
        b.metric(name, trial.get(name))
    for name, value in _flatten(trial.get("metrics") or {}, "_").items():
        b.metric(name, value)
    for row in trial.get("history") or []:  # epoch rows of a neural trial
        epoch = int(row.get("epoch", 0))
        for name, value in row.items():
            if name != "epoch":
                b.metric(name, value, epoch)
    for name, points in (trial.get("curves") or {}).items():  # per-step curves
        for i, point in enumerate(points):
            step, value = point if isinstance(point, list | tuple) else (i, point)
            b.metric(name, value, int(step))
    b.tag("mlsmith.family", trial.get("family"))
    b.tag("mlsmith.origin", trial.get("origin"))
    b.tag("mlsmith.status", trial.get("status", "ok"))
    b.tag("mlsmith.note", trial.get("note"))
    return b


def _check_trials(trials: Any) -> list[Mapping[str, Any]]:
    if not isinstance(trials, Sequence) or isinstance(trials, str | bytes):
        raise ConfigError(f"trials must be a list of dicts, got {type(trials).__name__}.")
    for i, t in enumerate(trials):
        if not isinstance(t, Mapping) or not t.get("model"):
            raise ConfigError(f"trial {i} must be a dict with a 'model' id (and family, status, "
                              f"params, fold_scores, ...), got {t!r:.80}.")
    return list(trials)


# --- quieting MLflow's own output -----------------------------------------------------------
class _DropPickleAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "serialized using CloudPickle" not in record.getMessage()


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's INFO lines (database creation, input validation) and advice stay out of the
    fit's output; real warnings still show."""
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    pyfunc_logger = logging.getLogger("mlflow.pyfunc")
    advice = _DropPickleAdvice()
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    pyfunc_logger.addFilter(advice)
    env_key = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"  # a line per run on a server, else
    env_before = os.environ.get(env_key)
    os.environ[env_key] = "true"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*type hints.*", category=UserWarning)
            warnings.filterwarnings("ignore", message=r".*integer column", category=UserWarning)
            for category in (FutureWarning, DeprecationWarning):  # MLflow's, not the user's
                warnings.filterwarnings("ignore", category=category, module=r"mlflow(\..*)?$")
            yield
    finally:
        if env_before is None:
            os.environ.pop(env_key, None)
        else:
            os.environ[env_key] = env_before
        pyfunc_logger.removeFilter(advice)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _unsynced_sqlite(db_path: Path) -> Iterator[None]:
    """Connections to the SQLite file ``db_path`` opened meanwhile skip fsync.

    ``PRAGMA synchronous=OFF`` on our own store: an application crash still cannot corrupt it
    (the rollback journal stays), only an operating-system crash during the write could. Each
    commit then costs microseconds instead of a disk flush (3-20 ms measured), and creating
    the store (about 70 migrations) and logging a few hundred runs commit hundreds of times.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = os.path.realpath(db_path)

    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        try:
            files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list")]
            if any(f and os.path.realpath(f) == target for f in files):
                dbapi_connection.execute("PRAGMA synchronous=OFF")
        except Exception:  # not SQLite, or not ours
            return

    event.listen(Engine, "connect", on_connect)
    try:
        yield
    finally:
        event.remove(Engine, "connect", on_connect)


def _write_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _artifacts_beside_sqlite(uri: str) -> str | None:
    """``file://<folder of the database>/mlartifacts`` for a ``sqlite:///`` URI, else None.

    MLflow's own default for a SQLite store is ``./mlruns`` in the working directory.
    """
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return (Path(path).resolve().parent / ARTIFACT_DIR).as_uri()


def experiment_id(client: Any, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created (or restored from deletion) when needed."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return str(client.create_experiment(name, artifact_location=artifact_location))
        except MlflowException:  # created meanwhile by another process
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return str(exp.experiment_id)


class FitTracker:
    """Log a finished fit to MLflow: a run with nested trial runs and the model as a pyfunc.

    The parent run holds the fit's configuration as params, its CV and test metrics, tags
    (``mlsmith.task``, ``mlsmith.target``, ``mlsmith.metric``, ``mlsmith.version``,
    ``mlsmith.run_dir``) and, when a model is given, a logged MLflow model (``models:/<id>``)
    with a signature and an input example. Each trial is a nested run (tag
    ``mlflow.parentRunId``) with its params, ``fold_score`` / ``train_score`` by fold (step),
    ``cv_score``, ``cv_score_std``, ``duration_s``, the tags ``mlsmith.status`` /
    ``mlsmith.family`` / ``mlsmith.origin``, and an MLflow status from :data:`MLFLOW_STATUS`.
    Where the run went is written to ``<run_dir>/tracking.json``.

    Creating a tracker is cheap and does not import MLflow. Log after the run directory is in
    its final place: the store records absolute artifact paths, so moving the run directory
    later breaks the links to the model (metrics and params are unaffected).

    Parameters
    ----------
    run_dir : path
        The fit's run directory. With the default store it holds ``mlflow.db`` (SQLite, nothing
        to start) and ``mlartifacts/``; see them with
        ``mlflow ui --backend-store-uri sqlite:///RUN_DIR/mlflow.db``.
    tracking_uri : str or None
        Any MLflow tracking URI (``http://mlflow.team:5000``, ``databricks``,
        ``postgresql://...``); the run directory then holds only ``tracking.json``, and the
        server decides where artifacts go. None: :func:`default_tracking_uri`.
    experiment : str
        MLflow experiment name, created when missing.

    Raises
    ------
    MissingDependencyError
        mlflow (>= 3.1) is not installed; check :func:`tracking_available` first to skip quietly.

    Examples
    --------
    >>> tracker = FitTracker("runs/price")  # doctest: +SKIP
    >>> run_id = tracker.log_fit(config, trials, final, metrics, model=model,  # doctest: +SKIP
    ...                          schema=schema, input_example=df.head(5))
    """

    def __init__(self, run_dir: str | os.PathLike[str], tracking_uri: str | None = None,
                 experiment: str = "mlsmith") -> None:
        problem = _problem()
        if problem is not None:
            raise MissingDependencyError(problem)
        if tracking_uri is not None and (not isinstance(tracking_uri, str)
                                         or not tracking_uri.strip()):
            raise ConfigError(f"tracking_uri must be an MLflow URI such as "
                              f"http://mlflow.example:5000 or sqlite:///mlflow.db, got "
                              f"{tracking_uri!r}; leave it out for a store in the run directory.")
        if not isinstance(experiment, str) or not experiment.strip():
            raise ConfigError(f"experiment must be a non-empty name, got {experiment!r}.")
        self.run_dir = Path(run_dir).resolve()
        self.local = tracking_uri is None
        self.tracking_uri = default_tracking_uri(self.run_dir) if self.local else tracking_uri.strip()
        self.experiment = experiment.strip()

    @property
    def artifact_location(self) -> str | None:
        """Where a new experiment keeps artifacts: ``mlartifacts/`` beside a SQLite file (for
        the default store, ``<run_dir>/mlartifacts``); for other stores the server decides."""
        return _artifacts_beside_sqlite(self.tracking_uri)

    @property
    def record_path(self) -> Path:
        return self.run_dir / RECORD_FILE

    def __repr__(self) -> str:
        return (f"FitTracker(run_dir={str(self.run_dir)!r}, tracking_uri={self.tracking_uri!r}, "
                f"experiment={self.experiment!r})")

    def check_connection(self, timeout: float = 5.0) -> None:
        """Fail fast on a tracking server that does not answer (call it when the fit starts).

        For ``http(s)://`` URIs, one request to ``/health``: any HTTP answer (even 401 or 404)
        counts as reachable. Other stores are not checked. Without it, MLflow retries an
        unreachable server with backoff for minutes.

        Raises
        ------
        ConfigError
            Naming the URI and the network error.
        """
        if not self.tracking_uri.startswith(("http://", "https://")):
            return
        import urllib.error
        import urllib.request

        url = self.tracking_uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 (http(s) only)
                return
        except urllib.error.HTTPError:
            return  # it answered
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConfigError(f"the MLflow tracking server {self.tracking_uri} does not answer "
                              f"({reason}); check --tracking-uri, or leave it out to track "
                              f"into the run directory.") from None

    # --- logging --------------------------------------------------------------------------------
    def log_fit(self, config: Mapping[str, Any], trials: Sequence[Mapping[str, Any]],
                final: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
                *, model: Any = None, input_example: Any = None, classes: Sequence[Any] | None = None,
                task: str | None = None, schema: Any = None, tags: Mapping[str, Any] | None = None,
                run_name: str | None = None, start_time: float | None = None,
                end_time: float | None = None) -> str:
        """Log the fit now, in this process; returns the parent run's id.

        Parameters
        ----------
        config : dict
            The fit's configuration (``config.json``): logged as params, nested keys joined
            with ``.``; ``target``, ``task`` and ``metric`` also become tags.
        trials : list of dict
            One per candidate: ``model`` (required), ``family``, ``origin``, ``status``
            (ok / stopped / skipped / failed / pruned), ``params``, ``fold_scores``,
            ``train_scores``, ``value`` (the CV score; the fold mean when missing),
            ``duration_s``; optional ``fit_time_s``, ``predict_time_s``, ``note``,
            ``start_time`` (epoch seconds), ``metrics`` (more numbers), ``history`` (epoch rows
            of a neural trial, logged by epoch) and ``curves`` (``{name: [(step, value), ...]}``).
            :func:`trials_from_results` builds them from ``mlsmith.select`` results.
        final : dict or None
            The chosen model (``metrics.json``'s ``chosen``): saved as ``final_model.json`` in
            the run's artifacts; its ``description`` becomes the tag ``mlsmith.final_model``.
        metrics : dict or None
            Numbers for the parent run; nested keys are joined with ``_``
            (``{"cv": {"roc_auc": 0.9}}`` logs ``cv_roc_auc``). Text values are skipped.
        model : object, path or None
            The fitted final model (``FittedModel``, or a path to ``model.joblib``), logged as
            an MLflow pyfunc model: see :class:`~mlsmith.track._pyfunc.MlsmithPyfuncModel`
            (labels by default, ``params={"output": "proba"}`` for probabilities).
        input_example : DataFrame or None
            Raw rows of the training table; the first 5 are saved as the input example and
            give the signature's input columns.
        classes, task : optional
            Class labels (encoded order) and task; taken from ``model`` / ``schema`` /
            ``config`` when left out.
        schema : mlsmith.schema.Schema or None
            Prepares raw rows for the model (needed for a ``FittedModel``).
        tags : dict or None
            More tags for the parent run.
        run_name : str or None
            Defaults to the run directory's name.
        start_time, end_time : float or None
            Epoch seconds of the fit's start and end (the MLflow run's duration); now when
            left out.
        """
        started = time.perf_counter()
        trials = _check_trials(trials)
        config = dict(config or {})
        try:
            record = self._log(config, trials, final, metrics, model, input_example, classes,
                               task, schema, tags, run_name, start_time, end_time)
        except Exception as exc:
            self._save_record({"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                               "seconds": round(time.perf_counter() - started, 3)})
            raise
        record["seconds"] = round(time.perf_counter() - started, 3)
        self._save_record(record)
        log.info("logged the fit to MLflow run %s (%s) in %.1f s", record["run_id"],
                 self.tracking_uri, record["seconds"])
        return str(record["run_id"])

    def log_fit_async(self, config: Mapping[str, Any], trials: Sequence[Mapping[str, Any]],
                      final: Mapping[str, Any] | None = None,
                      metrics: Mapping[str, Any] | None = None, **kwargs: Any) -> TrackingJob:
        """Log the fit in a background process; returns at once with a :class:`TrackingJob`.

        Takes the arguments of :meth:`log_fit`. They are pickled for the process, so pass the
        model as the path of ``model.joblib`` rather than the object when it is large. The
        process outlives the caller if need be (a CLI can exit); it writes ``tracking.json``
        when done. Costs the caller a few milliseconds plus pickling the arguments.
        """
        trials = _check_trials(trials)
        workdir = Path(tempfile.mkdtemp(prefix="mlsmith-track-"))
        payload = {"tracker": {"run_dir": str(self.run_dir),
                               "tracking_uri": None if self.local else self.tracking_uri,
                               "experiment": self.experiment},
                   "args": (dict(config or {}), trials, final, metrics), "kwargs": kwargs}
        with open(workdir / "payload.pkl", "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        self._save_record({"status": "running"})
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])  # so the child imports this mlsmith
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        with open(workdir / "worker.log", "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "mlsmith.track._worker", str(workdir)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        return TrackingJob(process, self.record_path)

    # --- internals ------------------------------------------------------------------------------
    def _save_record(self, fields: dict[str, Any]) -> None:
        record = {"tracking_uri": self.tracking_uri, "experiment": self.experiment, **fields}
        try:
            _write_record(self.record_path, record)
        except OSError as exc:  # the run directory is not writable: the run is still logged
            log.warning("could not write %s: %s", self.record_path, exc)

    def _experiment_id(self, client: Any) -> str:
        return experiment_id(client, self.experiment, self.artifact_location)

    def _log(self, config: dict[str, Any], trials: list[Mapping[str, Any]],
             final: Mapping[str, Any] | None, metrics: Mapping[str, Any] | None, model: Any,
             input_example: Any, classes: Sequence[Any] | None, task: str | None, schema: Any,
             tags: Mapping[str, Any] | None, run_name: str | None, start_time: float | None,
             end_time: float | None) -> dict[str, Any]:
        require_mlflow()
        import mlsmith

        if isinstance(model, str | os.PathLike):
            import joblib

            model = joblib.load(model)
        if schema is not None:
            task = task or schema.task.kind
            classes = classes if classes is not None else schema.task.classes
        if model is not None:
            task = task or getattr(model, "task", None)
            classes = classes if classes is not None else getattr(model, "classes", None)
        task = task or config.get("task")
        prepared = self._prepare_model(model, task, classes, schema, input_example)

        from mlflow import MlflowClient

        fast = (_unsynced_sqlite(self.run_dir / STORE_FILE) if self.local
                else contextlib.nullcontext())
        with _quiet_mlflow(), fast:
            if self.local:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            client = MlflowClient(tracking_uri=self.tracking_uri)
            exp_id = self._experiment_id(client)
            start_ms = _ms(start_time)
            parent_tags = {"mlsmith.version": mlsmith.__version__, "mlsmith.task": task,
                           "mlsmith.target": config.get("target"),
                           "mlsmith.metric": config.get("metric"),
                           "mlsmith.run_dir": str(self.run_dir),
                           "mlflow.source.name": "mlsmith", "mlflow.source.type": "LOCAL"}
            with contextlib.suppress(Exception):
                parent_tags["mlflow.user"] = getpass.getuser()
            name = run_name or self.run_dir.name
            parent = client.create_run(exp_id, start_time=start_ms, run_name=name,
                                       tags={k: str(v) for k, v in parent_tags.items()
                                             if v is not None})
            run_id = parent.info.run_id
            model_id = None
            try:
                if prepared is not None:
                    model_id = client.create_logged_model(
                        exp_id, name="model", source_run_id=run_id, model_type="mlsmith",
                        tags={"mlsmith.task": str(task)}).model_id
                batch = _Batch(_ms(end_time), model_id=model_id)
                for key, value in _flatten(config, ".").items():
                    batch.param(key, value)
                for key, value in _flatten(metrics or {}, "_").items():
                    batch.metric(key, value)
                batch.metric("n_trials", len(trials))
                batch.metric("n_trials_ok", sum(t.get("status", "ok") == "ok" for t in trials))
                if final:
                    batch.tag("mlsmith.final_model", final.get("description"))
                for key, value in (tags or {}).items():
                    batch.tag(_key(key), value)
                batch.tag("mlflow.note.content", self._note(config, task, final))
                batch.send(client, run_id)
                self._log_trials(client, exp_id, run_id, trials, start_ms)
                if final:
                    client.log_dict(run_id, json.loads(json.dumps(final, default=str)),
                                    "final_model.json")
                model_uri = None
                if prepared is not None and model_id is not None:
                    model_uri = self._log_model(client, run_id, model_id, prepared)
                client.set_terminated(run_id, "FINISHED",
                                      end_time=max(_ms(end_time), start_ms))
            except BaseException:
                with contextlib.suppress(Exception):
                    if model_id is not None:
                        client.finalize_logged_model(model_id, "FAILED")
                    client.set_terminated(run_id, "FAILED")
                raise
        record = {"status": "ok", "run_id": run_id, "experiment_id": exp_id,
                  "model_uri": model_uri, "n_trials": len(trials)}
        if self.tracking_uri.startswith(("http://", "https://")):
            base = self.tracking_uri.rstrip("/")
            record["run_url"] = f"{base}/#/experiments/{exp_id}/runs/{run_id}"
        return record

    @staticmethod
    def _note(config: Mapping[str, Any], task: str | None, final: Mapping[str, Any] | None) -> str:
        parts = [f"mlsmith fit of `{config.get('target', '?')}` ({task or '?'}, "
                 f"metric {config.get('metric', '?')})."]
        if final and final.get("description"):
            parts.append(f"Final model: {final['description']}.")
        return " ".join(parts)

    def _log_trials(self, client: Any, experiment_id: str, parent_id: str,
                    trials: list[Mapping[str, Any]], start_ms: int) -> None:
        for trial in trials:
            t_start = _ms(trial["start_time"]) if trial.get("start_time") else start_ms
            duration = _number(trial.get("duration_s"))
            t_end = t_start + int(round(1000 * duration)) if duration and duration > 0 else t_start
            run = client.create_run(experiment_id, start_time=t_start, run_name=str(trial["model"]),
                                    tags={"mlflow.parentRunId": parent_id})
            _trial_batch(trial, t_end).send(client, run.info.run_id)
            status = MLFLOW_STATUS.get(str(trial.get("status", "ok")), "KILLED")
            client.set_terminated(run.info.run_id, status, end_time=t_end)

    @staticmethod
    def _prepare_model(model: Any, task: str | None, classes: Sequence[Any] | None, schema: Any,
                       input_example: Any) -> dict[str, Any] | None:
        """Wrapper, example, signature and requirements: everything checked before logging."""
        if model is None:
            return None
        if task not in ("binary", "multiclass", "regression"):
            raise ConfigError(f"logging a model needs the task (binary, multiclass or "
                              f"regression), got {task!r}: pass task=... or schema=....")
        from mlflow.models import infer_signature

        from mlsmith.track._pyfunc import MlsmithPyfuncModel, example_frame, model_requirements

        if task != "regression" and not classes and not hasattr(model, "classes_"):
            raise ConfigError("logging a classifier needs its class labels: pass classes=... "
                              "or schema=....")
        wrapper = MlsmithPyfuncModel(model, task, list(classes or []), schema)
        example = signature = None
        if input_example is not None:
            example = example_frame(input_example, schema)
            with _quiet_mlflow():
                params = {"output": "label"} if task != "regression" else None
                signature = infer_signature(example, wrapper.predict(None, example),
                                            params=params)
        return {"wrapper": wrapper, "example": example, "signature": signature,
                "requirements": model_requirements(wrapper)}

    @staticmethod
    def _log_model(client: Any, run_id: str, model_id: str, prepared: dict[str, Any]) -> str:
        import mlflow.pyfunc
        from mlflow.entities import LoggedModelOutput
        from mlflow.models import Model

        logged = client.get_logged_model(model_id)
        with tempfile.TemporaryDirectory(prefix="mlsmith-model-") as tmp:
            local = Path(tmp) / "model"
            meta = Model(artifact_path=logged.artifact_location, run_id=run_id,
                         model_uuid=model_id, model_id=model_id)
            mlflow.pyfunc.save_model(local, python_model=prepared["wrapper"], mlflow_model=meta,
                                     signature=prepared["signature"],
                                     input_example=prepared["example"],
                                     pip_requirements=prepared["requirements"])
            client.log_model_artifacts(model_id, str(local))
        client.log_outputs(run_id, [LoggedModelOutput(model_id, step=0)])
        client.finalize_logged_model(model_id, "READY")
        return f"models:/{model_id}"


class TrackingJob:
    """A background process logging one fit (from :meth:`FitTracker.log_fit_async`).

    The process is in its own session, so it finishes even when the caller exits; its record
    lands in ``<run_dir>/tracking.json``.
    """

    def __init__(self, process: subprocess.Popen[bytes], record_path: Path) -> None:
        self.process = process
        self.record_path = record_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def done(self) -> bool:
        return self.process.poll() is not None

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait up to ``timeout`` seconds (None: until done).

        Returns the record (``status`` "ok" with ``run_id`` and ``model_uri``, or "failed"
        with ``error``), or None when the process is still running.
        """
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        try:
            record: dict[str, Any] = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            record = {}
        if record.get("status") not in ("ok", "failed"):
            record = {**record, "status": "failed",
                      "error": f"the tracking process exited with code {code} without a record"}
        return record

    def cancel(self) -> None:
        """Stop the process (the MLflow run may stay half-logged, marked RUNNING)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __repr__(self) -> str:
        state = "running" if not self.done() else f"exited {self.process.returncode}"
        return f"TrackingJob(pid={self.pid}, {state})"
