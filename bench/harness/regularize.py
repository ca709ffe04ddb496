"""Regularizers that need more than a flag: L2 on weights only, and early stopping on the validation score."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn as nn

from bench.harness.models import WEIGHT_LAYERS

NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)
DECAYED = (*WEIGHT_LAYERS, nn.Embedding)  # their weight matrices are decayed


def param_groups(model: nn.Module, weight_decay: float, decay_act_params: bool = False) -> list[dict]:
    """Optimizer groups: L2 on linear, conv and embedding weights (the matrices); never on biases or norm parameters;
    on an activation's learnable parameters only when ``decay_act_params`` is set."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, DECAYED):
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
    """Tracks the best validation score (the task's metric, higher or lower is better) and the validation loss at it;
    says stop after ``patience`` epochs without improvement (0 = never)."""

    patience: int
    higher_is_better: bool = True
    best: float = float("nan")  # the best score; NaN before an epoch has a finite one
    best_loss: float = float("nan")
    best_epoch: int = 0

    def update(self, epoch: int, score: float, val_loss: float) -> bool:
        sign = 1 if self.higher_is_better else -1
        if sign * score > (sign * self.best if self.best_epoch else -math.inf):
            self.best, self.best_loss, self.best_epoch = score, val_loss, epoch
        return self.patience > 0 and epoch - self.best_epoch >= self.patience
