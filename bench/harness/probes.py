"""Per-layer probes on a fixed batch: gradient norm, activation mean/std, dead and saturated units."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn as nn

from activations.properties import SATURATION, f_and_df


def probe(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    max_abs_df: float,
    epoch: int,
    acts: list[nn.Module],
    layers: list[nn.Module],
) -> list[dict]:
    """Long-format rows (epoch, layer, name, metric, value) for one probe batch, in eval mode.

    Layer i is the i-th weight layer and the activation that follows it (``acts`` and ``layers``: the task says which
    modules they are); the classifier is the last layer and has only a gradient norm. A unit (feature or channel) is
    dead when f' = 0 for every sample (and position) of the batch. Parameter gradients are cleared before and after.
    """
    captured: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [
        m.register_forward_hook(lambda _m, inp, out, i=i: captured.__setitem__(i, (inp[0].detach(), out.detach())))
        for i, m in enumerate(acts)
    ]
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    try:
        with torch.enable_grad():
            loss_fn(model(x), y).backward()
        grad_norms = [float(layer.weight.grad.norm()) for layer in layers]
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)

    rows = []
    for i, layer in enumerate(layers):
        kind = "out" if i == len(layers) - 1 else ("conv" if isinstance(layer, nn.Conv2d) else "fc")
        name = "out" if kind == "out" else f"{kind}{i + 1}"
        metrics = {"grad_norm": grad_norms[i]}
        if i in captured:
            pre, out = captured[i]
            df = f_and_df(acts[i], pre)[1].abs()
            limit = max_abs_df if math.isfinite(max_abs_df) else float(df.max())
            metrics.update(
                act_mean=float(out.float().mean()),
                act_std=float(out.float().std()),
                dead_frac=float((df == 0).transpose(0, 1).flatten(1).all(dim=1).float().mean()),
                saturated_frac=float((df < SATURATION * limit).float().mean()),
            )
        rows += [{"epoch": epoch, "layer": i + 1, "name": name, "metric": k, "value": v} for k, v in metrics.items()]
    return rows


def saved_bytes(model: nn.Module, x: torch.Tensor) -> float:
    """Bytes that autograd keeps for the backward pass per sample of ``x`` in training mode, each tensor once and
    parameters left out: the memory a batch costs beyond the weights.

    Exact and machine-independent (counted with ``torch.autograd.graph.saved_tensors_hooks``, not measured); on a
    copy of the model with the RNG state restored, so that the run itself is not touched.
    """
    net = copy.deepcopy(model).train()
    params = {p.data_ptr() for p in net.parameters()}
    saved: set[tuple[int, int]] = set()  # (address, bytes): a tensor that two layers save is counted once

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in params:
            saved.add((t.data_ptr(), t.numel() * t.element_size()))
        return t

    with (
        torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []),
        torch.enable_grad(),
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
    ):
        net(x)
    return sum(n for _, n in saved) / len(x)
