"""The run directory: atomic writes, a manifest of SHA-256 hashes and library versions.

A fit writes into a staging folder beside the destination and renames it into place at the end,
so a killed process leaves either the previous state or a complete run, never a run that loads
but is wrong. ``verify`` recomputes every hash before anything is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from mlsmith.errors import IntegrityError, RunDirError

__all__ = ["RunWriter", "library_versions", "verify", "read_manifest", "is_run_dir",
           "MANIFEST", "check_destination"]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# libraries whose objects are pickled inside a run: a different major.minor may not unpickle
PICKLED_LIBRARIES = ("mlsmith", "scikit-learn", "numpy", "lightgbm", "xgboost", "catboost", "torch")
OTHER_LIBRARIES = ("pandas", "pyarrow", "scipy", "joblib")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PICKLED_LIBRARIES + OTHER_LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def is_run_dir(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def check_destination(path: Path) -> None:
    """Refuse a destination that exists and is neither empty nor a run."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--out {path} is a file: give a folder for the run.")
    if path.is_dir() and any(path.iterdir()) and not is_run_dir(path):
        raise RunDirError(f"--out {path} exists and is not an mlsmith run (no {MANIFEST}): "
                          f"choose another folder or empty it first.")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_staging(destination: Path) -> None:
    """Delete staging folders of the old, per-process kind that killed fits left behind."""
    prefix = f".{destination.name}.staging-"
    for p in destination.parent.glob(prefix + "*"):
        pid_text = p.name[len(prefix):].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(p, ignore_errors=True)


#: files of the staging folder that describe the fit in progress; removed at commit
OWNER, FINGERPRINT, SPENT = ".owner", ".fingerprint.json", ".spent.json"
#: folders of the staging folder that exist only while the fit runs
TRANSIENT = ("scratch", "state")


class RunWriter:
    """Writes a run into a staging folder, then moves it into place with :meth:`commit`.

    The staging folder ``.<name>.partial`` beside the destination is also the fit's memory: when
    a fit is killed (SIGKILL, Ctrl-C, a crash) it stays, and the next fit to the same
    destination with the same ``fingerprint`` (configuration and data) resumes from it —
    :attr:`resumed` is then true and :meth:`spent` gives the seconds the earlier attempts used.
    A different fingerprint discards it. A live fit holding the folder is an error.
    """

    def __init__(self, destination: Path, fingerprint: dict[str, Any] | None = None) -> None:
        self.destination = Path(destination).absolute()
        check_destination(self.destination)
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(self.destination)
        self.staging = self.destination.parent / f".{self.destination.name}.partial"
        self.timings: dict[str, float] = {}
        self.resumed = False
        self.discarded = False
        key = json.dumps(fingerprint or {}, sort_keys=True, default=_json_default)
        if self.staging.is_dir():
            owner = self._read(OWNER)
            if isinstance(owner, int) and owner != os.getpid() and _pid_alive(owner):
                raise RunDirError(f"another fit (process {owner}) is writing {self.destination}: "
                                  f"wait for it to finish, or choose another --out.")
            if fingerprint is not None and self._read(FINGERPRINT) == json.loads(key):
                self.resumed = True
            else:
                shutil.rmtree(self.staging, ignore_errors=True)
                self.discarded = True
        self.staging.mkdir(exist_ok=True)
        _atomic_write_bytes(self.staging / OWNER, str(os.getpid()).encode())
        _atomic_write_bytes(self.staging / FINGERPRINT, key.encode())

    def _read(self, name: str) -> Any:
        try:
            return json.loads((self.staging / name).read_text())
        except (OSError, ValueError):
            return None

    def spent(self) -> float:
        """Seconds that earlier, interrupted attempts of this fit used (0 for a fresh fit)."""
        value = self._read(SPENT)
        return float(value) if isinstance(value, (int, float)) else 0.0

    def record_spent(self, seconds: float) -> None:
        """Remember that the fit has used ``seconds`` in all, so a resumed fit counts them."""
        _atomic_write_bytes(self.staging / SPENT, json.dumps(round(seconds, 3)).encode())

    def path(self, name: str) -> Path:
        p = self.staging / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, obj: Any) -> None:
        _atomic_write_bytes(self.path(name), json.dumps(obj, indent=2, default=_json_default,
                                                        allow_nan=True).encode())

    def write_text(self, name: str, text: str) -> None:
        _atomic_write_bytes(self.path(name), text.encode())

    def write_bytes(self, name: str, data: bytes) -> None:
        _atomic_write_bytes(self.path(name), data)

    def commit(self, config: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
        files = {}
        for p in sorted(self.staging.rglob("*")):
            rel_parts = p.relative_to(self.staging).parts
            if p.is_file() and not p.name.startswith(".") and rel_parts[0] not in TRANSIENT \
                    and not p.name.endswith(".flock"):  # the study journal's lock file
                rel = p.relative_to(self.staging).as_posix()
                files[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        manifest = {
            "format": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": library_versions(),
            "config": config,
            "files": files,
            **(extra or {}),
        }
        for name in TRANSIENT:
            shutil.rmtree(self.staging / name, ignore_errors=True)
        for name in (OWNER, FINGERPRINT, SPENT):
            (self.staging / name).unlink(missing_ok=True)
        _atomic_write_bytes(self.staging / MANIFEST,
                            json.dumps(manifest, indent=2, default=_json_default).encode())
        old = None
        if self.destination.exists():
            old = self.destination.with_name(f".{self.destination.name}.old-{os.getpid()}")
            os.replace(self.destination, old)
        os.replace(self.staging, self.destination)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.destination

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def read_manifest(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path} does not exist: give the folder a fit wrote (its --out).")
    if not path.is_dir():
        raise RunDirError(f"{path} is not a folder: give the run directory a fit wrote (its --out).")
    if not is_run_dir(path):
        raise RunDirError(f"{path} is not an mlsmith run directory (no {MANIFEST}): "
                          f"give the folder a fit wrote (its --out).")
    try:
        return json.loads((path / MANIFEST).read_text())
    except json.JSONDecodeError as exc:
        raise IntegrityError(f"{path / MANIFEST} is corrupt ({exc.msg}): refit the model.") from None


def verify(path: Path, manifest: dict[str, Any], check_versions: bool = True) -> list[str]:
    """Check every file's hash and the library versions; returns warnings for patch-level drift.

    Raises :class:`IntegrityError` naming each mismatch.
    """
    path = Path(path)
    problems = []
    for rel, info in manifest.get("files", {}).items():
        p = path / rel
        if not p.is_file():
            problems.append(f"{rel} is missing")
        elif sha256_file(p) != info["sha256"]:
            problems.append(f"{rel} has changed since the fit (SHA-256 differs)")
    if problems:
        raise IntegrityError(f"run {path} does not match its manifest: {'; '.join(problems)}. "
                             f"Refit, or restore the original files.")
    warnings_out = []
    if check_versions:
        now = library_versions()
        bad = []
        for lib, then in manifest.get("versions", {}).items():
            if lib not in PICKLED_LIBRARIES:
                continue
            cur = now.get(lib)
            if cur is None:
                bad.append(f"{lib} {then} is not installed")
            elif cur.split(".")[:2] != then.split(".")[:2]:
                bad.append(f"{lib} {then} at fit, {cur} now")
            elif cur != then:
                warnings_out.append(f"{lib} {then} at fit, {cur} now")
        if bad:
            raise IntegrityError(f"run {path} was saved with other library versions: "
                                 f"{'; '.join(bad)}. Install those versions, or load with "
                                 f"check_versions=False (--ignore-versions) at your own risk.")
    return warnings_out
