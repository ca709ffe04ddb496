"""What a run minimises and how: losses, optimizers and learning-rate schedules, each a table of name -> factory."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _mse(squash: Callable[[torch.Tensor], torch.Tensor], num_classes: int) -> Loss:
    def mse(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(squash(logits), F.one_hot(y, num_classes).to(logits.dtype))

    return mse


# Mean loss over a batch, given the number of classes: cross-entropy on logits, or squared error of
# sigmoid/softmax outputs against one-hot targets.
LOSSES: dict[str, Callable[[int], Loss]] = {
    "cross_entropy": lambda num_classes: F.cross_entropy,
    "mse_sigmoid": functools.partial(_mse, torch.sigmoid),
    "mse_softmax": functools.partial(_mse, functools.partial(torch.softmax, dim=1)),
}

# torch's fused kernels (one pass over each parameter per step) where torch has one; RMSprop has none. Fused computes
# each element as the per-tensor loop does, up to rounding. On a 2-core CPU an MLP epoch took 0.60 s fused against
# 0.69-0.86 s with the default loop; the CNN's epochs did not change (convolutions dominate).
OPTIMIZERS: dict[str, Callable[[list[dict], Any], torch.optim.Optimizer]] = {  # (param groups, RunSpec)
    "sgd": lambda groups, spec: torch.optim.SGD(groups, lr=spec.lr, fused=True),
    "momentum": lambda groups, spec: torch.optim.SGD(
        groups, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov, fused=True
    ),
    "adam": lambda groups, spec: torch.optim.Adam(groups, lr=spec.lr, betas=(0.9, spec.beta2), fused=True),
    "adamw": lambda groups, spec: torch.optim.AdamW(groups, lr=spec.lr, betas=(0.9, spec.beta2), fused=True),
    "rmsprop": lambda groups, spec: torch.optim.RMSprop(groups, lr=spec.lr),
    "adagrad": lambda groups, spec: torch.optim.Adagrad(groups, lr=spec.lr, fused=True),
}


def warmup_cosine(steps: int, warmup: int, floor: float = 0.1) -> Callable[[int], float]:
    """nanoGPT's schedule as a factor of the rate at optimizer step ``t``: linear warm-up over ``warmup`` steps, then
    half a cosine down to ``floor`` at step ``steps``."""

    def factor(t: int) -> float:
        if t < warmup:
            return (t + 1) / (warmup + 1)
        progress = min(1.0, (t - warmup) / max(1, steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


# (optimizer, spec, steps per epoch, whether the validation metric is better higher) -> a schedule. None for constant;
# step divides lr by 10 every third of training; plateau watches the validation metric (accuracy rising, a loss
# falling); cosine decays to 0 over the epochs. warmup_cosine is stepped after every optimizer step (PER_STEP):
# spec.warmup steps of linear warm-up, then a cosine to a tenth of the rate at the last step.
SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, Any, int, bool], object]] = {
    "constant": lambda opt, spec, steps, higher: None,
    "step": lambda opt, spec, steps, higher: torch.optim.lr_scheduler.StepLR(
        opt, step_size=max(1, spec.epochs // 3), gamma=0.1
    ),
    "cosine": lambda opt, spec, steps, higher: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spec.epochs),
    "plateau": lambda opt, spec, steps, higher: torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max" if higher else "min", factor=0.1, patience=2
    ),
    "warmup_cosine": lambda opt, spec, steps, higher: torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(spec.epochs * steps, spec.warmup)
    ),
}
PER_STEP = ("warmup_cosine",)
