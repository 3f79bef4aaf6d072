"""Throughput of mlsmith's Trainer next to a hand-written loop and a textbook DataLoader loop.

All three train the same MLP with the same optimizer (AdamW), clipping (global norm 1.0) and
batch size, in one process, on the same in-memory data; each epoch is timed and the table
reports samples per second of the median epoch (after one warm-up epoch that is not counted).

* ``trainer``: ``mlsmith.train.Trainer.fit`` (seeded permutation slicing of tensors on the
  device, warmup-cosine schedule, finite-loss check, callbacks) - epoch times from its History;
* ``hand loop``: the least a loop can do - a permutation, index whole tensors, step;
* ``DataLoader``: ``DataLoader(TensorDataset(X, y), batch_size, shuffle=True)`` - per-row
  ``__getitem__`` and ``collate``.

Usage::

    .venv/bin/python benchmarks/bench_trainer.py                     # 200,000 x 50, 3 epochs
    .venv/bin/python benchmarks/bench_trainer.py --rows 20000 --epochs 2 --threads 1
    .venv/bin/python benchmarks/bench_trainer.py --write             # also into RESULTS.md

``--write`` puts the table into ``benchmarks/RESULTS.md`` between ``<!-- trainer:begin -->`` and
``<!-- trainer:end -->`` (appended when the markers are missing; the rest of the file is kept).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _results import RESULTS, write_section  # benchmarks/ is the script's folder
from torch import nn

from mlsmith.train import MLP, Trainer
from mlsmith.train._trainer import resolve_device


def make_data(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    w = rng.normal(size=features)
    y = (X @ w + 0.5 * rng.normal(size=rows) > 0).astype(np.int64)
    return X, y


def make_net(features: int, hidden: list[int]) -> MLP:
    torch.manual_seed(0)
    return MLP(features, hidden, 2)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(net: nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor) -> None:
    loss = nn.functional.cross_entropy(net(xb), yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()


def hand_loop(X: np.ndarray, y: np.ndarray, net: nn.Module, batch: int, epochs: int,
              device: torch.device) -> list[float]:
    Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs):
        _sync(device)
        t0 = time.perf_counter()
        perm = torch.randperm(len(Xt), generator=gen).to(device)
        for i in range(0, len(Xt), batch):
            idx = perm[i:i + batch]
            _step(net, opt, Xt[idx], yt[idx])
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def dataloader_loop(X: np.ndarray, y: np.ndarray, net: nn.Module, batch: int, epochs: int,
                    device: torch.device) -> list[float]:
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True)
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
    times = []
    for _ in range(epochs):
        _sync(device)
        t0 = time.perf_counter()
        for xb, yb in loader:
            _step(net, opt, xb.to(device, non_blocking=True), yb.to(device, non_blocking=True))
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def trainer_loop(X: np.ndarray, y: np.ndarray, net: nn.Module, batch: int, epochs: int,
                 device: torch.device) -> list[float]:
    trainer = Trainer(max_epochs=epochs, batch_size=batch, lr=1e-3, weight_decay=0.01,
                      max_grad_norm=1.0, device=str(device), seed=0, verbose=False)
    history = trainer.fit(net, (X, y))
    return [float(t) for t in history["time"]]


CONTENDERS: dict[str, Callable[..., list[float]]] = {
    "trainer (mlsmith.train)": trainer_loop,
    "hand loop (tensor slicing)": hand_loop,
    "DataLoader(TensorDataset, shuffle=True)": dataloader_loop,
}


def run(rows: int, features: int, hidden: list[int], batch: int, epochs: int,
        device: torch.device) -> list[tuple[str, float, float]]:
    """(name, samples per second of the median epoch, ms per step) for each contender."""
    X, y = make_data(rows, features)
    steps = -(-rows // batch)
    out = []
    for name, fn in CONTENDERS.items():
        times = fn(X, y, make_net(features, hidden), batch, epochs + 1, device)[1:]  # 1 warm-up
        median = statistics.median(times)
        out.append((name, rows / median, 1000 * median / steps))
        print(f"  {name}: epochs {', '.join(f'{t:.2f}s' for t in times)}", flush=True)
    return out


def table(results: list[tuple[str, float, float]], args: argparse.Namespace,
          device: torch.device) -> str:
    base = dict((n, s) for n, s, _ in results)["hand loop (tensor slicing)"]
    lines = [
        f"### Trainer throughput ({time.strftime('%Y-%m-%d')})",
        "",
        f"{args.rows:,} rows x {args.features} features, MLP {args.hidden}, batch {args.batch}, "
        f"AdamW, clipping 1.0; median of {args.epochs} epoch(s) after one warm-up; device "
        f"{device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{platform.machine()} ({platform.processor() or platform.system()}).",
        "",
        "| loop | samples/s | ms/step | vs hand loop |",
        "|---|---:|---:|---:|",
    ]
    for name, sps, ms in results:
        lines.append(f"| {name} | {sps:,.0f} | {ms:.2f} | {sps / base:.2f}x |")
    return "\n".join(lines) + "\n"


def write_results(text: str, path: Path = RESULTS) -> None:
    """Put ``text`` between the trainer markers of ``path``, keeping everything else."""
    write_section("trainer", text, path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--features", type=int, default=50)
    p.add_argument("--hidden", type=lambda s: [int(v) for v in s.split(",")], default=[256, 128],
                   help="hidden widths, comma-separated (default 256,128)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--write", action="store_true", help=f"also write the table into {RESULTS}")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"bench_trainer: {args.rows:,} x {args.features}, MLP {args.hidden}, batch {args.batch}, "
          f"device {device}", flush=True)
    text = table(run(args.rows, args.features, args.hidden, args.batch, args.epochs, device),
                 args, device)
    print()
    print(text)
    if args.write:
        write_results(text)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
