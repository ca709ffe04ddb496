"""Weight initializers, seeded per layer so every activation of a seed starts from the same draws."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn

Init = Callable[[torch.Tensor, float, torch.Generator], object]  # (weight, gain, generator), in place


def _fan_in(w: torch.Tensor) -> int:
    return w[0].numel()


# Initializers by name. ``gain`` is the activation's card gain for a layer whose inputs are activations, 1 for one
# whose inputs are the data (the task says which, :func:`initialize`); kaiming (``he`` = kaiming normal) uses ReLU's
# gain, as torch's does.
INITS: dict[str, Init] = {
    "auto": lambda w, g, gen: nn.init.normal_(w, 0.0, g / math.sqrt(_fan_in(w)), generator=gen),
    "normal": lambda w, g, gen: nn.init.normal_(w, 0.0, 1.0, generator=gen),
    "lecun": lambda w, g, gen: nn.init.normal_(w, 0.0, 1.0 / math.sqrt(_fan_in(w)), generator=gen),
    "xavier_uniform": lambda w, g, gen: nn.init.xavier_uniform_(w, generator=gen),
    "xavier_normal": lambda w, g, gen: nn.init.xavier_normal_(w, generator=gen),
    "kaiming_uniform": lambda w, g, gen: nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=gen),
    "kaiming_normal": lambda w, g, gen: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=gen),
    "he": lambda w, g, gen: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=gen),
    "orthogonal": lambda w, g, gen: nn.init.orthogonal_(w, gain=g, generator=gen),
}


# The gain an initializer gives a square layer whatever the activation (its weights' std times sqrt(fan_in)); "normal"
# is N(0, 1), whose gain is sqrt(fan_in) itself; auto and orthogonal use the activation's own gain. Checked against
# the draws in the tests.
FIXED_GAINS = {
    "lecun": 1.0,
    "xavier_normal": 1.0,
    "xavier_uniform": 1.0,
    "kaiming_normal": math.sqrt(2),
    "kaiming_uniform": math.sqrt(2),
    "he": math.sqrt(2),
}


def layer_generator(seed: int, index: int) -> torch.Generator:
    """One generator per (seed, layer): a layer's draws do not depend on the shapes of the others."""
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


@torch.no_grad()
def initialize(layers: list[nn.Module], gains: list[float], scheme: str, seed: int, bias: float = 0.0) -> None:
    """Initialise the weight ``layers`` in place, layer i with ``gains[i]`` (the task says which layers' inputs are
    activations: those get the activation's variance-keeping gain, from its property card); biases are set to ``bias``.

    ``auto`` draws N(0, g^2/fan_in): He init for ReLU, LeCun for SELU. ``orthogonal`` uses the same gains. ``normal``
    is N(0, 1), the textbook's bad default; ``lecun`` is N(0, 1/fan_in); xavier and kaiming (``he`` = kaiming normal)
    are torch's, with ReLU's gain for kaiming.
    """
    init = INITS[scheme]
    for i, (layer, gain) in enumerate(zip(layers, gains, strict=True)):
        init(layer.weight, gain, layer_generator(seed, i))
        if layer.bias is not None:
            layer.bias.fill_(bias)
