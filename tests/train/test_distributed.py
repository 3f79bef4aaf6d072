"""Two processes (gloo, CPU) under torchrun train the same model as one process on the global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from _train_helpers import HERE, load_job  # noqa: E402

from mlsmith.train import load_checkpoint  # noqa: E402
from mlsmith.train._distributed import detect  # noqa: E402


def test_detect_reads_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(key, value)
    info = detect()
    assert (info.rank, info.world_size, info.local_rank, info.enabled, info.is_main) == \
        (1, 2, 1, True, False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not detect().enabled


def test_two_ranks_match_one_process_on_the_global_batch(tmp_path: Path) -> None:
    job = load_job("_ddp_job")
    out, ckpt = tmp_path / "ddp.pt", tmp_path / "ckpt"
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(HERE / "_ddp_job.py"), str(out), str(ckpt)],
        env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=True)
    assert ddp["world_size"] == 2

    X, y, Xv, yv = job.make_data()
    single = job.make_net()
    history = job.make_trainer(job.BATCH * 2).fit(single, (X, y), (Xv, yv))
    assert [r["steps"] for r in ddp["history"]["rows"]] == history["steps"]
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ddp["state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    ddp_losses = [r["train_loss"] for r in ddp["history"]["rows"]]
    assert ddp_losses == pytest.approx(history["train_loss"], rel=1e-4)
    # rank 0 wrote the checkpoint, with both ranks' random states
    state = load_checkpoint(ckpt / "last.pt")
    assert state["epoch"] == 3 and len(state["rng"]) == 2
