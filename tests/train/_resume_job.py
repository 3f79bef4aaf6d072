"""A training job for the kill-and-resume test.

``python _resume_job.py CKPT_DIR [--resume] [--sleep SECONDS]`` trains a small MLP with a
checkpoint every epoch (sleeping at the start of each epoch, so that a test can kill it midway)
and saves the final weights to ``CKPT_DIR/final.pt``. The test imports ``make_data``,
``make_net`` and ``make_trainer`` from here to run the same job in its own process.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from mlsmith.train import MLP, Callback, Trainer

MAX_EPOCHS = 6


def make_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 10)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(np.int64)
    return X[:500], y[:500], X[500:], y[500:]


def make_net() -> MLP:
    torch.manual_seed(123)
    return MLP(10, [32, 16], 2, dropout=0.2)  # dropout: the resumed run needs the RNG state


def make_trainer(ckpt: str, callbacks: tuple[Callback, ...] = ()) -> Trainer:
    return Trainer(max_epochs=MAX_EPOCHS, batch_size=32, lr=3e-3, seed=7, checkpoint_dir=ckpt,
                   checkpoint_every=1, callbacks=callbacks, verbose=False, device="cpu")


class Sleep(Callback):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        time.sleep(self.seconds)


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    ckpt = argv[1]
    sleep = float(argv[argv.index("--sleep") + 1]) if "--sleep" in argv else 0.0
    X, y, Xv, yv = make_data()
    net = make_net()
    make_trainer(ckpt, (Sleep(sleep),) if sleep else ()).fit(net, (X, y), (Xv, yv),
                                                             resume="--resume" in argv)
    torch.save(net.state_dict(), f"{ckpt}/final.pt")


if __name__ == "__main__":
    main(sys.argv)
