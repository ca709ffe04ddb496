"""A task's code, found from its name: what the one loop (:mod:`bench.harness.loop`) calls to load, build, batch,
score and evaluate. The task's plain data (datasets, models, metric) is :mod:`bench.tasks`.

The code of a task is an object with these methods (``data`` is whatever its ``load`` returns; ``x``, ``y`` a batch):

- ``load(spec, data_dir, device, download) -> data``: the fixed train / validation / test split on the device, or
  one error line (an ``InputError``) naming the missing or damaged file; ``data.checksum``, where it has one: a
  digest of what the runs train and are scored on (recorded with every run: machines whose decoders differ, differ
  there).
- ``build(spec, data, act_layer) -> nn.Module``: the spec's network on the CPU, every activation made by
  ``act_layer()``; ``activations(model)`` and ``weight_layers(model)``: the activation modules and the layers with
  weights, in forward order, where layer i is followed by activation i (the probes pair them);
  ``initialize(spec, model, gain)``: the spec's initializer (``spec.init``, seeded by ``spec.seed``) on the network in
  place, given the activation's variance-keeping ``gain`` (for the layers whose inputs are the activation's outputs).
- ``loss(spec, data)``: the mean loss of a batch over its samples, ``loss(out, y)``; a sample is a row of ``y``.
- ``batches(spec, data, order, augment)``: one epoch of training batches ``(x, y)``, every random draw from the two
  generators (the batch order's and the augmentation's), ``steps(spec, data)`` of them; ``prepare(spec, x)``: a
  batch in the run's dtype and memory format; ``channels_last(spec)``: whether the network runs in the channels-last
  memory format.
- ``score(out, y)``: the metric of a training batch summed over its samples (None where the metric is the loss);
  ``evaluate(spec, model, data, split, loss_fn)``: ``{"loss": ..., metric: ...}`` over the whole ``"val"`` or
  ``"test"`` split, in eval mode; ``probe_batch(spec, data)``: the fixed validation batch the probes see.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from bench import tasks

METHODS = (
    *("load", "build", "activations", "weight_layers", "initialize", "loss", "batches", "steps", "prepare"),
    "channels_last",
    *("score", "evaluate", "probe_batch"),
)


@functools.cache
def _resolve(target: str) -> Any:
    module, _, attribute = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise tasks.TaskError(f"task code {target!r} cannot be loaded: {exc}") from None


def code(name: str) -> Any:
    """The code of the registered task ``name``, checked to have every method a task's code has."""
    impl = tasks.get(name).implementation
    found = _resolve(impl) if isinstance(impl, str) else impl
    if missing := [m for m in METHODS if not callable(getattr(found, m, None))]:
        raise tasks.TaskError(f"the code of task {name!r} lacks {', '.join(missing)} (see bench/harness/tasks.py)")
    return found
