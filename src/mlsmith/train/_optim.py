"""Optimizers and learning-rate schedules, stepped once per optimizer step.

* :func:`param_groups` puts biases and normalisation weights in a group without weight decay.
* Schedules: ``"warmup_cosine"`` (linear warmup, then cosine decay to zero: the default),
  ``"constant"`` (optionally after a warmup), ``"onecycle"`` (``torch.optim.lr_scheduler.OneCycleLR``)
  and ``"plateau"`` (``ReduceLROnPlateau`` on the validation loss, stepped once per epoch).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mlsmith.errors import ConfigError, did_you_mean

__all__ = ["param_groups", "make_optimizer", "make_scheduler", "WarmupCosine", "SCHEDULES",
           "OPTIMIZERS"]

SCHEDULES = ("warmup_cosine", "constant", "onecycle", "plateau")
OPTIMIZERS = ("adamw", "adam", "sgd")

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._NormBase)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: weights with ``weight_decay``; biases and normalisation weights without."""
    no_decay: set[int] = set()
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if isinstance(module, _NORMS) or pname.endswith("bias"):
                no_decay.add(id(p))
    decay_params, plain_params = [], []
    for p in model.parameters():
        if p.requires_grad:
            (plain_params if id(p) in no_decay else decay_params).append(p)
    groups = [{"params": decay_params, "weight_decay": weight_decay},
              {"params": plain_params, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(model: nn.Module, name: str | Callable[..., torch.optim.Optimizer], lr: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """``name`` is ``"adamw"`` (default), ``"adam"``, ``"sgd"`` (momentum 0.9), or a callable
    ``factory(param_groups, lr=...)`` returning an optimizer."""
    groups = param_groups(model, weight_decay)
    if callable(name):
        return name(groups, lr=lr)
    key = name.lower()
    if key == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if key == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if key == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    raise ConfigError(f"unknown optimizer {name!r}." + did_you_mean(name, OPTIMIZERS)
                      + f" Choose one of {', '.join(OPTIMIZERS)} or pass a callable.")


class WarmupCosine:
    """Learning-rate factor: linear from ``1/warmup`` to 1 over ``warmup`` steps, then a cosine
    down to ``final`` at ``total`` steps. Plain data, so it lives in the scheduler's state."""

    def __init__(self, warmup: int, total: int, final: float = 0.0, cosine: bool = True) -> None:
        self.warmup = max(0, int(warmup))
        self.total = max(1, int(total))
        self.final = float(final)
        self.cosine = cosine

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if not self.cosine:
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, name: str, lr: float, total_steps: int,
                   warmup: float) -> tuple[Any, str]:
    """The scheduler for ``name`` and when it steps (``"step"`` or ``"epoch"``).

    ``warmup`` is a fraction of ``total_steps`` when below 1, else a number of steps.
    """
    warmup_steps = int(round(warmup * total_steps)) if warmup < 1 else int(warmup)
    if name == "warmup_cosine":
        lam = WarmupCosine(warmup_steps, total_steps)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lam), "step"
    if name == "constant":
        lam = WarmupCosine(warmup_steps, total_steps, cosine=False)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lam), "step"
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr,
                                                   total_steps=max(1, total_steps)), "step"
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5,
                                                          patience=3), "epoch"
    raise ConfigError(f"unknown schedule {name!r}." + did_you_mean(name, SCHEDULES)
                      + f" Choose one of {', '.join(SCHEDULES)}.")
