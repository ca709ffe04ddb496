"""Weight initializers, seeded per layer so every activation of a seed starts from the same draws."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from bench.models import weight_layers

INITS = (
    "auto",
    "normal",
    "lecun",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "he",
    "orthogonal",
)


def layer_generator(seed: int, index: int) -> torch.Generator:
    """One generator per (seed, layer): a layer's draws do not depend on the shapes of the others."""
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


@torch.no_grad()
def initialize(model: nn.Module, scheme: str, gain: float, seed: int, bias: float = 0.0) -> None:
    """Initialise every linear/conv layer of ``model`` in place; biases are set to ``bias``.

    ``gain`` is the activation's variance-keeping gain (its property card). ``auto`` draws
    N(0, g^2/fan_in) with g = 1 for the first layer (its inputs are the data) and g = ``gain`` for every
    later layer (their inputs are activations): He init for ReLU, LeCun for SELU. ``orthogonal`` uses
    the same gains. ``normal`` is N(0, 1), the textbook's bad default; ``lecun`` is N(0, 1/fan_in);
    xavier and kaiming (``he`` = kaiming normal) are torch's, with ReLU's gain for kaiming.
    """
    for i, layer in enumerate(weight_layers(model)):
        w, gen = layer.weight, layer_generator(seed, i)
        fan_in = w[0].numel()
        g = 1.0 if i == 0 else gain
        if scheme == "auto":
            nn.init.normal_(w, 0.0, g / math.sqrt(fan_in), generator=gen)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(w, gain=g, generator=gen)
        elif scheme == "normal":
            nn.init.normal_(w, 0.0, 1.0, generator=gen)
        elif scheme == "lecun":
            nn.init.normal_(w, 0.0, 1.0 / math.sqrt(fan_in), generator=gen)
        elif scheme == "xavier_uniform":
            nn.init.xavier_uniform_(w, generator=gen)
        elif scheme == "xavier_normal":
            nn.init.xavier_normal_(w, generator=gen)
        elif scheme == "kaiming_uniform":
            nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=gen)
        elif scheme in ("kaiming_normal", "he"):
            nn.init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
        else:
            raise ValueError(f"unknown initializer {scheme!r}; valid: {', '.join(INITS)}")
        if layer.bias is not None:
            layer.bias.fill_(bias)
