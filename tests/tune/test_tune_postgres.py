"""A study shared through PostgreSQL: a coordinator and two ``mlsmith worker`` processes.

The fixture starts a real PostgreSQL server in a temporary folder (Debian's binaries under
/usr/lib/postgresql/<version>/bin), listening on 127.0.0.1 on a free port, and removes it at the
end. As root, the server runs as the ``postgres`` user (``initdb`` refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsmith.tune import open_storage, prepare_study, trials_table
from mlsmith.tune._study import consumed_numbers

optuna = pytest.importorskip("optuna")


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg2", reason="PostgreSQL storage tests need psycopg2-binary")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    prefix: list[str] = []
    user = None
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            user = pwd.getpwnam("postgres")
        except KeyError:
            user = None
        if runuser is None or user is None:
            pytest.skip("running as root without a 'postgres' user and runuser: initdb "
                        "refuses to run as root")
        prefix = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="mlsmith-pg-"))
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=60)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
            "-t", "30", "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
            f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off", "start")
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            "mlsmith")
        yield f"postgresql://postgres@127.0.0.1:{port}/mlsmith"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


WORKER = """
import argparse, sys
from mlsmith.tune import add_worker_arguments, cmd_worker
parser = argparse.ArgumentParser(prog="mlsmith worker")
add_worker_arguments(parser)
sys.exit(cmd_worker(parser.parse_args(sys.argv[1:])))
"""


def test_two_workers_share_a_postgres_study(postgres_url: str, binary_bundle: str,
                                            tmp_path: Path) -> None:
    n_trials = 8
    study, storage, spec = prepare_study(binary_bundle, ["linear"], strategy="random",
                                         n_trials=n_trials, seed=0, storage=postgres_url,
                                         study_name="shared", pruner="none",
                                         oof_dir=str(tmp_path / "oof"))
    assert spec.n_trials == n_trials and study.user_attrs["mlsmith"]["families"] == ["linear"]
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # each worker may run at most 5 of the 8 trials: both must take part
    workers = [subprocess.Popen([sys.executable, str(script), "shared", "--storage", postgres_url,
                                 "--trials", "5", "--out", str(tmp_path / f"w{i}"), "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for i in range(2)]
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err[-2000:]

    study = optuna.load_study(study_name="shared", storage=open_storage(postgres_url))
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(n_trials))  # none lost, none duplicated
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len(consumed_numbers(trials)) == n_trials
    owners = {t.user_attrs["owner"] for t in trials}
    assert len(owners) == 2
    per_owner = [sum(t.user_attrs["owner"] == o for t in trials) for o in owners]
    assert sorted(per_owner) == [3, 5] or sorted(per_owner) == [4, 4]
    assert {int(o.split(":")[-2]) for o in owners} == {w.pid for w in workers}
    table = trials_table(study)
    assert list(table["status"]) == ["ok"] * n_trials and table["oof_path"].notna().all()
    assert len(list((tmp_path / "oof").glob("trial_*.npy"))) == n_trials
