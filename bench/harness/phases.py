"""Where one run's time goes: the run traced by torch's profiler and each operation's own time given to a phase.

The one loop (:mod:`bench.harness.loop`) marks its phases with ``torch.profiler.record_function`` (``actbench:
batches``, ``forward``, ``loss``, ``backward``, ``optimizer``, ``bookkeeping``, ``evaluation``, ``probes``; free when
nothing traces). While a run is traced here, module hooks mark the forward of each layer by kind (conv, activation,
pooling, dense: the task says which modules are activations), and each backward node goes to the kind whose forward
operation made it (autograd's sequence number). Time outside every phase is the run's set-up and its record.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn as nn
from torch.autograd.profiler_util import FunctionEvent

from bench.config import RunSpec
from bench.harness import loop
from bench.harness.tasks import code

LAYER = "actbench layer: "  # a layer's forward, marked while tracing
BACKWARD_NODE = "autograd::engine::evaluate_function: "
KINDS = ((nn.Conv2d, "conv"), (nn.MaxPool2d, "pooling"), (nn.Linear, "dense"))
# The rows of the table, in order: the training step's parts, then the rest of the run.
PHASES = (
    *("conv forward", "conv backward", "activation forward", "activation backward"),
    *("pooling forward", "pooling backward", "dense forward", "dense backward"),
    *("other layers", "loss", "autograd and Python", "optimizer", "batches", "bookkeeping"),
    *("evaluation", "probes", "set-up and record"),
)


class _LayerMarks:
    """Global module hooks that mark the forward of every conv, pooling, dense and activation layer of the traced
    run's network (outermost marked layer only), by kind."""

    def __init__(self, spec: RunSpec) -> None:
        self.task, self.kinds, self.open = code(spec.task), {}, []
        self.handles = [
            nn.modules.module.register_module_forward_pre_hook(self.enter),
            nn.modules.module.register_module_forward_hook(self.leave),
        ]

    def kind(self, module: nn.Module) -> str | None:
        if module not in self.kinds:
            self.kinds.update({m: "activation" for m in self.task.activations(module)})
            for m in module.modules():
                if m not in self.kinds:
                    self.kinds[m] = next((k for t, k in KINDS if isinstance(m, t)), None)
        return self.kinds[module]

    def enter(self, module: nn.Module, _inputs) -> None:
        kind = None if self.open and self.open[-1][1] else self.kind(module)
        mark = torch.profiler.record_function(LAYER + kind) if kind else None
        if mark:
            mark.__enter__()
        self.open.append((module, mark))

    def leave(self, module: nn.Module, _inputs, _output) -> None:
        while self.open:  # a module that raised left its mark open: close up to this one
            opened, mark = self.open.pop()
            if mark:
                mark.__exit__(None, None, None)
            if opened is module:
                break

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _marks(event: FunctionEvent) -> tuple[str | None, str | None, FunctionEvent | None]:
    """The outermost phase mark, layer mark and backward node above (or at) ``event``."""
    phase = layer = node = None
    while event is not None:
        name = event.name
        if name.startswith(loop.PHASE_MARK):
            phase = name[len(loop.PHASE_MARK) :]
        elif name.startswith(LAYER):
            layer = name[len(LAYER) :]
        elif name.startswith(BACKWARD_NODE):
            node = event
        event = event.cpu_parent
    return phase, layer, node


def attribute(events: list[FunctionEvent]) -> dict[str, float]:
    """Seconds of each phase (:data:`PHASES`, but ``set-up and record``): every event's own time, given to the phase
    marked above it; a backward node's to the layer kind of the forward operation with its sequence number. What a
    training step's forward and backward spend outside every operation and node (Python, autograd's engine) is
    ``autograd and Python``."""
    seconds = dict.fromkeys(PHASES, 0.0)
    made_by: dict[int, str] = {}  # forward operation's sequence number -> the row its backward belongs to
    marked = [(event, *_marks(event)) for event in events]
    for event, phase, layer, _ in marked:
        if phase in ("forward", "loss") and event.sequence_nr >= 0:
            # an operation that makes no node still reads the next number: a layer's operation wins over others
            if layer or event.sequence_nr not in made_by:
                unmarked = "loss" if phase == "loss" else "other layers"
                made_by[event.sequence_nr] = f"{layer} backward" if layer else unmarked
    for event, phase, layer, node in marked:
        if phase == "forward" and event.name.startswith(loop.PHASE_MARK):  # the forward mark's own time
            row = "autograd and Python"
        elif phase == "forward":
            row = f"{layer} forward" if layer else "other layers"
        elif phase == "backward":
            row = made_by.get(node.sequence_nr, "autograd and Python") if node is not None else "autograd and Python"
        else:
            row = phase
        if row is not None:
            seconds[row] += event.self_cpu_time_total / 1e6
    return seconds


def profile(spec: RunSpec, data_dir: str | Path | None = None) -> dict:
    """One run of ``spec`` untraced (its wall time), then traced: seconds per phase of the traced run, its wall time
    and the untraced one. Same process and threads for both; the data is decoded before either clock starts."""
    loop.load(spec, data_dir)
    tic = time.perf_counter()
    loop.run(spec, data_dir)
    untraced = time.perf_counter() - tic
    marks = _LayerMarks(spec)
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as traced:
            tic = time.perf_counter()
            loop.run(spec, data_dir)
            wall = time.perf_counter() - tic
    finally:
        marks.remove()
    seconds = attribute(list(traced.events()))
    seconds["set-up and record"] = max(0.0, wall - sum(seconds.values()))
    return {"wall_seconds": untraced, "traced_wall_seconds": wall, "seconds": seconds}
