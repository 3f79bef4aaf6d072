"""A run killed with SIGKILL mid-training and resumed ends with the same weights, bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from _train_helpers import HERE, assert_same_weights, load_job  # noqa: E402

from mlsmith.train import load_checkpoint  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def epochs_done(ckpt: Path) -> int:
    try:
        return len(json.loads((ckpt / "history.json").read_text())["rows"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    job = load_job("_resume_job")
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = tmp_path / "job.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, str(HERE / "_resume_job.py"), str(killed),
                                 "--sleep", "0.4"], env=env, stderr=err)
    try:
        deadline = time.time() + 90
        while epochs_done(killed) < 2:  # history.json is written right after last.pt
            assert proc.poll() is None, log.read_text()
            assert time.time() < deadline, "the job wrote no second checkpoint in 90 s"
            time.sleep(0.02)
        assert proc.poll() is None, "the job finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stopped_at = load_checkpoint(killed / "last.pt")["epoch"]
    assert 2 <= stopped_at < job.MAX_EPOCHS
    assert not (killed / "final.pt").exists()

    X, y, Xv, yv = job.make_data()
    resumed = job.make_net()
    job.make_trainer(str(killed)).fit(resumed, (X, y), (Xv, yv), resume=True)
    straight = job.make_net()
    job.make_trainer(str(tmp_path / "straight")).fit(straight, (X, y), (Xv, yv))
    assert_same_weights(straight, resumed)
    # the resumed run's parameters also differ from its starting point: it did train
    assert not torch.equal(job.make_net().layers[0].weight, resumed.layers[0].weight)
