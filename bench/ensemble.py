"""K runs that differ only in seed and initializer, trained as one batched model with ``torch.func``.

Each member keeps its own module and parameters; each step stacks them into tensors of shape (K, ...) and runs
the K members on their K batches at once, so they share every matmul call. Linear layers are one
``baddbmm`` (``StackedLinear``); the other layers (flatten, the activation) are ``functional_call`` under
``vmap``. Each member keeps everything a single run has: its initial weights (``train.build_model``), its
batch order and augmentation generators, its optimizer state (one optimizer over all members' parameter tensors,
each updated on its own as in a single run), its early stopping and its divergence. Its loss is its own mean; the
sum of the K losses is back-propagated, so each member gets its own gradient. Evaluation and probes run per
member, with ``train.evaluate`` and ``probes.probe`` on its module. On this machine's CPU (MKL) the results equal
K ``train.run`` calls bit for bit; elsewhere they may differ in rounding (the tests check the contract: within
1e-5). The parameters are not stacked once for good: torch's fused Adam rounds an element by its position in the
tensor (vector body or scalar tail), so it would update a stacked member unlike a single run.

``compatible`` says False, and ``run`` trains the spec alone with ``train.run``, for: dropout and
activations that draw random numbers (rrelu): a single run draws them from the global RNG seeded per run,
which a batched model cannot reproduce; activations with buffers or that ``vmap`` cannot run; batch norm
(``vmap``'s batch norm rounds differently, ~1e-7 a step, which grew to 1e-3 in accuracy over one MNIST
epoch); cnn (``vmap`` turns K convolutions into one grouped convolution, which on this CPU was 2x slower
than K single runs and rounds differently); the plateau schedule (its lr follows each member's validation
accuracy, but the optimizer and its lr are shared); ``compile`` and ``amp``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn as nn
from torch.func import functional_call, vmap

import activations
from bench import data, train
from bench.config import RunSpec
from bench.probes import probe
from bench.regularize import EarlyStopping, param_groups

MODELS = ("mlp", "deep_mlp")  # dense models only: see the module docstring for cnn
MAX_SIZE = 8  # members per batched model; memory grows K-fold, and larger K gains little on 2 cores
FREE_FIELDS = ("seed", "init")  # the only fields in which members of one group may differ
NARROW = 16  # weight gradients of layers with fewer outputs are computed per member
RunResult = train.RunResult


@functools.cache
def batchable_activation(name: str) -> bool:
    """True if the activation has no buffers, draws no random numbers while training, and runs under ``vmap``."""
    act = activations.create(name).train()
    if list(act.buffers()):
        return False
    x = torch.linspace(-4, 4, 64).reshape(2, 4, 8)
    with torch.random.fork_rng():
        before = torch.get_rng_state()
        try:
            with torch.no_grad():
                batched = vmap(act)(x)
                single = torch.stack([act(xi) for xi in x])
        except Exception:
            return False
        drew = not torch.equal(before, torch.get_rng_state())
    return not drew and torch.allclose(batched, single, equal_nan=True)


def batchable(spec: RunSpec) -> bool:
    """True if ``spec`` can be trained as a member of a batched group (see the module docstring)."""
    return (
        spec.model in MODELS
        and spec.dropout == 0
        and not spec.batch_norm
        and spec.schedule != "plateau"
        and not spec.compile
        and spec.amp == "none"
        and batchable_activation(spec.activation)
    )


def _shared(spec: RunSpec) -> dict:
    return {k: v for k, v in spec.as_dict().items() if k not in FREE_FIELDS}


def compatible(a: RunSpec, b: RunSpec) -> bool:
    """True if ``a`` and ``b`` may be trained in one batched model: both batchable, equal except seed and init."""
    return batchable(a) and batchable(b) and _shared(a) == _shared(b)


def _groups(specs: list[RunSpec], max_size: int) -> list[list[int]]:
    """Indices into ``specs``, grouped greedily in order of first appearance."""
    groups: list[list[int]] = []
    for i, spec in enumerate(specs):
        home = next((g for g in groups if len(g) < max_size and compatible(specs[g[0]], spec)), None)
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    return groups


def group(specs: list[RunSpec], max_size: int = MAX_SIZE) -> list[list[RunSpec]]:
    """Specs split into groups that may be batched (at most ``max_size`` each), in order of first appearance.

    A spec that is not batchable is a group of its own."""
    return [[specs[i] for i in g] for g in _groups(specs, max_size)]


def run(
    specs: list[RunSpec],
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    on_epoch: Callable[[RunSpec, int, dict], None] | None = None,
    max_size: int = MAX_SIZE,
) -> list[RunResult]:
    """Train every spec, batching compatible ones (``group``); one result per spec, in the order of ``specs``.

    Each result equals ``train.run(spec)`` in its epoch rows, probe rows and record except timing: a member of
    a group of K gets 1/K of the group's time (epoch ``seconds``, ``train_seconds``, ``wall_seconds``), so the
    members' seconds add up to the time spent and ``samples_per_second`` counts the group's model-samples per
    second (K times the rate at which this member's own samples went by). Records get ``ensemble_size``: K,
    or 1 for a spec trained alone by ``train.run``. ``on_epoch(spec, epoch, metrics)`` is called after each
    evaluated epoch of each run. An exception inside a group is raised for the whole group.
    """
    results: list[RunResult | None] = [None] * len(specs)
    for indices in _groups(specs, max_size):
        members = [specs[i] for i in indices]
        if len(members) == 1:
            hook = None if on_epoch is None else functools.partial(on_epoch, members[0])
            out = [train.run(members[0], data_dir, download=download, on_epoch=hook)]
            out[0].record["ensemble_size"] = 1
        else:
            out = _run_group(members, data_dir, download=download, on_epoch=on_epoch)
        for i, result in zip(indices, out, strict=True):
            results[i] = result
    return results  # type: ignore[return-value]


@dataclasses.dataclass
class _Member:
    """What one member tracks on its own: its module (for evaluation and probes), rows, stopping and status."""

    spec: RunSpec
    model: nn.Module
    stopper: EarlyStopping
    epochs: list[dict] = dataclasses.field(default_factory=list)
    layers: list[dict] = dataclasses.field(default_factory=list)
    last: dict[str, float] = dataclasses.field(default_factory=dict)
    active: bool = True
    status: str = "ok"
    error: str | None = None
    diverged_epoch: int | None = None
    epochs_run: int = 0
    train_seconds: float = 0.0
    seen: int = 0

    def log(self, epoch: int, split: str, metrics: dict[str, float]) -> None:
        self.epochs.extend({"epoch": epoch, "split": split, "metric": k, "value": float(v)} for k, v in metrics.items())


def _joint_groups(models: list[nn.Module], spec: RunSpec) -> list[dict]:
    """``regularize.param_groups`` of every member, group by group: one optimizer holds them all."""
    per_model = [param_groups(m, spec.weight_decay, spec.decay_act_params) for m in models]
    return [{**same[0], "params": [p for g in same for p in g["params"]]} for same in zip(*per_model, strict=True)]


def _by_name(models: list[nn.Module]) -> dict[str, list[torch.Tensor]]:
    """Each parameter name with the members' tensors of that name, in member order (stacked by every step)."""
    named = [dict(m.named_parameters()) for m in models]
    return {name: [own[name] for own in named] for name in named[0]}


class StackedLinear(torch.autograd.Function):
    """K linear layers on K batches: x (K, B, in), w (K, out, in), b (K, out) -> (K, B, out).

    Forward and backward are the matmuls of a single run's ``addmm`` and its backward, in the same memory layouts,
    so each member's outputs and gradients round as in ``train.run`` (bit for bit on this machine's MKL). ``vmap``
    of ``F.linear`` does not: it adds the bias after the matmul and computes the weight gradient transposed.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        x, w = ctx.saved_tensors
        grad_x = grad.bmm(w) if ctx.needs_input_grad[0] else None
        if w.shape[1] < NARROW:  # MKL's batched gemm rounds a narrow result (the classifier) unlike its gemm
            grad_w = torch.stack([g.t().mm(xk) for g, xk in zip(grad, x, strict=True)])
        else:
            grad_w = grad.transpose(1, 2).bmm(x)
        return grad_x, grad_w, grad.sum(1)


def forward(model: nn.Sequential, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Outputs (K, B, ...) of the K members stacked in ``params``, each on its own batch of ``x`` (K, B, ...).

    Linear layers are ``StackedLinear``; every other layer (flatten, the activation) is ``vmap``-ped.
    """
    for name, layer in model.named_children():
        own = {k.removeprefix(f"{name}."): v for k, v in params.items() if k.startswith(f"{name}.")}
        if isinstance(layer, nn.Linear):
            x = StackedLinear.apply(x, own["weight"], own["bias"])
        else:
            x = vmap(functools.partial(functional_call, layer))(own, (x,))
    return x


def _run_group(
    specs: list[RunSpec],
    data_dir: str | Path | None,
    *,
    download: bool,
    on_epoch: Callable[[RunSpec, int, dict], None] | None,
) -> list[RunResult]:
    """Train compatible ``specs`` as one batched model; mirrors ``train.run`` step for step."""
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    ref, k_size = specs[0], len(specs)
    if not all(compatible(ref, s) for s in specs):
        raise ValueError("specs of one group must be compatible (see ensemble.compatible)")
    device = torch.device(ref.device)
    dtype = getattr(torch, ref.dtype)
    splits = data.load(ref.dataset, data_dir, device=device, download=download)
    loss_fn = train.make_loss(ref.loss, splits.num_classes)

    def prepare(x: torch.Tensor) -> torch.Tensor:  # train.run's, for the dense models batched here
        return x.to(dtype)

    members = [
        _Member(s, train.build_model(s, splits).to(device=device, dtype=dtype), EarlyStopping(s.patience))
        for s in specs
    ]
    modules = [m.model for m in members]  # batchable specs have no buffers
    by_name = _by_name(modules)
    n_params = sum(p.numel() for p in members[0].model.parameters())
    optimizer = train.make_optimizer(ref, _joint_groups(modules, ref))
    scheduler = train.make_scheduler(ref, optimizer)
    template = copy.deepcopy(members[0].model).to("meta")
    order_gens = [torch.Generator().manual_seed(s.seed) for s in specs]
    aug_gens = [torch.Generator(device=device).manual_seed(s.seed + 7919) for s in specs]
    max_abs_df = activations.card(ref.activation).max_abs_df
    probe_n = train.PROBE_SIZE
    probe_x, probe_y = prepare(data.to_float(splits.val_x[:probe_n], splits)), splits.val_y[:probe_n]
    n = len(splits.train_x)

    def eval_epoch(member: _Member, epoch: int) -> None:
        for split, x, y in (("val", splits.val_x, splits.val_y), ("test", splits.test_x, splits.test_y)):
            loss, acc = train.evaluate(member.model, x, y, splits, loss_fn, prepare)
            member.last[f"{split}_loss"], member.last[f"{split}_acc"] = loss, acc
            member.log(epoch, split, {"loss": loss, "acc": acc})
        member.layers.extend(probe(member.model, probe_x, probe_y, loss_fn, max_abs_df, epoch))

    for member in members:
        eval_epoch(member, 0)
    for epoch in range(1, ref.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        loss_sum = torch.zeros(k_size, dtype=torch.float64, device=device)
        correct = torch.zeros(k_size, dtype=torch.int64, device=device)
        tic = time.perf_counter()
        perms = torch.stack([torch.randperm(n, generator=g) for g in order_gens]).to(device)
        for i in range(0, n, ref.batch_size):
            idx = perms[:, i : i + ref.batch_size]
            if ref.augment:
                xs, ys = zip(*(data.batch(splits, j, True, g) for j, g in zip(idx, aug_gens, strict=True)), strict=True)
                xb, yb = torch.stack(xs), torch.stack(ys)
            else:  # one gather for all members: the same elementwise arithmetic as K calls
                xb, yb = data.batch(splits, idx.flatten(), False, None)
                xb, yb = xb.unflatten(0, idx.shape), yb.unflatten(0, idx.shape)
            # stacked anew each step: gradients flow back to each member's own tensors
            params = {name: torch.stack(tensors) for name, tensors in by_name.items()}
            out = forward(template, params, prepare(xb))
            losses = torch.stack([loss_fn(o, y) for o, y in zip(out.unbind(), yb.unbind(), strict=True)])
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # member k's loss reaches only member k's parameters
            optimizer.step()
            loss_sum += losses.detach().double() * idx.shape[1]
            correct += (out.detach().argmax(-1) == yb).sum(1)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        share = (time.perf_counter() - tic) / k_size
        for k, member in enumerate(members):
            if not member.active:  # stopped or diverged: still trained with the others, no longer recorded
                continue
            member.epochs_run, member.train_seconds, member.seen = epoch, member.train_seconds + share, member.seen + n
            train_loss, train_acc = float(loss_sum[k]) / n, float(correct[k]) / n
            member.last.update(train_loss=train_loss, train_acc=train_acc)
            member.log(epoch, "train", {"loss": train_loss, "acc": train_acc, "lr": lr, "seconds": share})
            if not math.isfinite(train_loss):
                member.status, member.diverged_epoch, member.active = "diverged", epoch, False
                member.error = f"training loss became {train_loss} in epoch {epoch}"
                continue
            eval_epoch(member, epoch)
            if on_epoch is not None:
                on_epoch(member.spec, epoch, dict(member.last))
            if member.stopper.update(epoch, member.last["val_acc"], member.last["val_loss"]):
                member.active = False
        if scheduler is not None:
            scheduler.step()
        if not any(m.active for m in members):
            break

    wall_share = (time.perf_counter() - started) / k_size
    return [RunResult(_record(m, n_params, wall_share, started_at, k_size), m.epochs, m.layers) for m in members]


def _record(member: _Member, n_params: int, wall_seconds: float, started_at: str, k_size: int) -> dict:
    """The flat record of one member, as ``train.run`` builds it, plus ``ensemble_size``."""
    record = train.make_record(
        member.spec,
        status=member.status,
        error=member.error,
        epochs_run=member.epochs_run,
        diverged_epoch=member.diverged_epoch,
        stopper=member.stopper,
        last=member.last,
        epochs=member.epochs,
        train_seconds=member.train_seconds,
        wall_seconds=wall_seconds,
        seen=member.seen,
        n_params=n_params,
        started_at=started_at,
    )
    return {**record, "ensemble_size": k_size}
