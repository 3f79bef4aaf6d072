"""A distributed training job: ``python -m torch.distributed.run --standalone --nproc_per_node=2
_ddp_job.py OUT_FILE CKPT_DIR``. Rank 0 saves the final weights and history to ``OUT_FILE``.

The test imports ``make_data``, ``make_net`` and ``make_trainer`` to train the same model in one
process on the same global batch (``BATCH x world size``).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

from mlsmith.train import MLP, Trainer

BATCH = 16  # per process


def make_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(360, 6)).astype(np.float32)
    y = (X @ np.arange(1, 7) / 6 + 0.1 * rng.normal(size=360)).astype(np.float32)
    # 301 training rows: the last global batch (13 rows) splits 7 + 6 over the two ranks
    return X[:301], y[:301], X[301:], y[301:]


def make_net() -> MLP:
    torch.manual_seed(0)
    return MLP(6, [32, 32], 1)  # no dropout: ranks draw different masks than one process would


def make_trainer(batch_size: int, ckpt: str | None = None) -> Trainer:
    return Trainer(max_epochs=3, batch_size=batch_size, lr=1e-2, seed=0, device="cpu",
                   verbose=False, restore_best=False, checkpoint_dir=ckpt)


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    X, y, Xv, yv = make_data()
    net = make_net()
    trainer = make_trainer(BATCH, argv[2])
    history = trainer.fit(net, (X, y), (Xv, yv))
    if trainer.is_main:
        torch.save({"state": net.state_dict(), "history": history.to_dict(),
                    "world_size": trainer.dist.world_size}, argv[1])


if __name__ == "__main__":
    main(sys.argv)
    # Leave without running C++ static destructors: gloo's background threads can be torn down
    # in an order that aborts the process ("terminate called without an active exception")
    # after all the work is done and saved, which happened once on a loaded 2-core machine.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
