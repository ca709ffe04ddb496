"""Regularizers that need more than a flag: L2 on weights only, and early stopping on validation accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from bench.harness.models import WEIGHT_LAYERS

NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d)


def param_groups(model: nn.Module, weight_decay: float, decay_act_params: bool = False) -> list[dict]:
    """Optimizer groups: L2 on linear/conv weights; never on biases or norm parameters; on an
    activation's learnable parameters only when ``decay_act_params`` is set."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, WEIGHT_LAYERS):
                (decay if name == "weight" else no_decay).append(p)
            elif isinstance(module, NORM_LAYERS):
                no_decay.append(p)
            else:  # an activation's own parameters (PReLU slope, swish beta)
                (decay if decay_act_params else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@dataclass
class EarlyStopping:
    """Tracks the best validation accuracy; says stop after ``patience`` epochs without improvement (0 = never)."""

    patience: int
    best_acc: float = float("-inf")
    best_loss: float = float("nan")
    best_epoch: int = 0

    def update(self, epoch: int, val_acc: float, val_loss: float) -> bool:
        if val_acc > self.best_acc:
            self.best_acc, self.best_loss, self.best_epoch = val_acc, val_loss, epoch
        return self.patience > 0 and epoch - self.best_epoch >= self.patience
