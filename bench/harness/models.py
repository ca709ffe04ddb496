"""The networks under test. Each takes the activation as an injected factory and contains no other one."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn as nn

import activations
from bench.tasks import IMAGE_MODELS  # each network's default widths

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)


def _pre_width(width: int, act_layer: Callable[[], nn.Module]) -> int:
    """Width the layer before the activation must have so that the activation outputs ``width``."""
    factor = activations.width_factor(act_layer())
    pre = round(width / factor)
    if not math.isclose(pre * factor, width):
        raise ValueError(f"width {width} is not reachable with an activation of width factor {factor}")
    return pre


def _dense_blocks(in_features: int, hidden: tuple[int, ...], act_layer, dropout_layer, batch_norm: bool) -> list:
    """Linear -> [batch norm] -> activation -> [dropout], per width; ``dropout_layer`` makes one, or is None."""
    layers: list[nn.Module] = []
    for width in hidden:
        pre = _pre_width(width, act_layer)
        layers.append(nn.Linear(in_features, pre))
        if batch_norm:
            layers.append(nn.BatchNorm1d(pre))
        layers.append(act_layer())
        if dropout_layer is not None:
            layers.append(dropout_layer())
        in_features = width
    return layers


def _pixels(in_shape: tuple[int, int, int], channels: tuple[int, ...], act_layer, batch_norm: bool) -> tuple[list, int]:
    """No feature layers: the dense blocks see the flattened image."""
    c, h, w = in_shape
    return [], c * h * w


def _conv_blocks(in_shape: tuple[int, int, int], channels: tuple[int, ...], act_layer, batch_norm: bool):
    """5x5 conv blocks (conv -> [batch norm] -> activation -> 2x2 max-pool), and the flattened width after them."""
    c, h, w = in_shape
    layers: list[nn.Module] = []
    for width in channels or IMAGE_MODELS["cnn"]["channels"]:
        pre = _pre_width(width, act_layer)
        layers.append(nn.Conv2d(c, pre, kernel_size=5, padding=2))
        if batch_norm:
            layers.append(nn.BatchNorm2d(pre))
        layers += [act_layer(), nn.MaxPool2d(2)]
        c, h, w = width, h // 2, w // 2
    return layers, c * h * w


class _FlattenKeepingLayout(torch.autograd.Function):
    """Flatten whose gradient comes back in its input's memory layout (autograd's reshape gives it in NCHW)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        return x.flatten(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.reshape(ctx.shape).contiguous(memory_format=torch.channels_last)


class Flatten(nn.Flatten):
    """``nn.Flatten`` for the conv features: on a channels-last input (the CNN on the CPU) its gradient is channels-last
    too, as max-pooling's backward needs it; autograd's NCHW gradient takes that kernel's slow mixed-layout path (6x).
    Equal values: each pooled gradient lands in one place whatever the layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            return _FlattenKeepingLayout.apply(x)
        return super().forward(x)


DROPOUTS = {"plain": nn.Dropout, "alpha": nn.AlphaDropout}

# The networks by name, each as its feature layers (then flatten, dense blocks and a linear classifier follow).
FEATURES = {"mlp": _pixels, "deep_mlp": _pixels, "cnn": _conv_blocks}


def _assemble(model, in_shape, num_classes, act_layer, hidden, channels, dropout_layer, batch_norm) -> nn.Sequential:
    layers, features = FEATURES[model](in_shape, channels, act_layer, batch_norm)
    layers.append(Flatten())
    layers += _dense_blocks(features, hidden, act_layer, dropout_layer, batch_norm)
    layers.append(nn.Linear(hidden[-1], num_classes))
    return nn.Sequential(*layers)


def _matched_widths(model, in_shape, num_classes, act_layer, hidden, channels, batch_norm):
    """Widths, all scaled by one factor, at which the network has the parameter count closest to its plain version's.

    The plain version has an activation of width factor 1 (ReLU's network); counted on the meta device, no memory.
    """

    def scaled(s: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(max(1, round(w * s)) for w in hidden), tuple(max(1, round(c * s)) for c in channels)

    def count(act, widths) -> int:
        with torch.device("meta"):
            net = _assemble(model, in_shape, num_classes, act, *widths, None, batch_norm)
        return sum(p.numel() for p in net.parameters())

    target = count(nn.Identity, (hidden, channels))
    lo, hi = 0.0, 1.0
    for _ in range(30):  # the count grows with the scale: bisect to where it crosses the target
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if count(act_layer, scaled(mid)) >= target else (mid, hi)
    # widths round at different scales, so the closest count may be a few steps away: try every scale near the
    # crossing at which some width changes
    near = lambda w: range(math.ceil(0.9 * lo * w), math.ceil(1.1 * hi * w))
    steps = {(k + 0.5) / w for w in (*hidden, *channels) for k in near(w)}
    candidates = sorted({scaled(lo), scaled(hi), *(scaled(s + 1e-9) for s in steps)})
    return min(candidates, key=lambda widths: abs(count(act_layer, widths) - target))


def build(
    model: str,
    in_shape: tuple[int, int, int],
    num_classes: int,
    act_layer: Callable[[], nn.Module],
    *,
    hidden: tuple[int, ...] = (),
    channels: tuple[int, ...] = (),
    dropout: float = 0.0,
    dropout_kind: str = "plain",
    batch_norm: bool = False,
) -> nn.Sequential:
    """An ``mlp``/``deep_mlp`` (flatten, dense blocks) or ``cnn`` (5x5 conv blocks with 2x2 max-pool, then dense).

    Every hidden block is layer -> [batch norm] -> activation -> [dropout on dense blocks, plain or alpha]; the last
    layer is a linear classifier producing logits. Default widths are the task's (``bench.tasks.IMAGE_MODELS``). An
    activation with ``matches_parameters = True`` (maxout_matched) gets every width scaled down by one factor, so
    that the network has as many parameters as with ReLU: capacity held equal, only the function differs.
    """
    hidden = hidden or IMAGE_MODELS[model]["hidden"]
    channels = channels or IMAGE_MODELS[model]["channels"]
    if getattr(act_layer(), "matches_parameters", False):
        hidden, channels = _matched_widths(model, in_shape, num_classes, act_layer, hidden, channels, batch_norm)
    dropout_layer = functools.partial(DROPOUTS[dropout_kind], dropout) if dropout else None
    return _assemble(model, in_shape, num_classes, act_layer, hidden, channels, dropout_layer, batch_norm)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """Linear and conv layers in forward order (the last one is the classifier)."""
    return [m for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]


STRUCTURAL = (
    nn.Sequential,
    nn.Linear,
    nn.Conv2d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.AlphaDropout,
    nn.MaxPool2d,
    nn.Flatten,
)


def activation_modules(model: nn.Module) -> list[nn.Module]:
    """The activation modules of a model built here, in forward order: every child that is not structure."""
    found: list[nn.Module] = []
    for child in model.children():
        if isinstance(child, nn.Sequential):
            found += activation_modules(child)
        elif not isinstance(child, STRUCTURAL):
            found.append(child)
    return found
