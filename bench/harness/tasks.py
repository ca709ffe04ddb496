"""A task's code, found from its name: what the one loop (:mod:`bench.harness.loop`) calls to load, build, batch,
score and evaluate. The task's plain data (datasets, models, metric) is :mod:`bench.tasks`.

The code of a task is an object with these methods (``data`` is whatever its ``load`` returns; ``x``, ``y`` a batch):

- ``load(spec, data_dir, device, download) -> data``: the fixed train / validation / test split on the device, or
  one error line (an ``InputError``) naming the missing or damaged file.
- ``build(spec, data, act_layer) -> nn.Module``: the spec's network on the CPU, every activation made by
  ``act_layer()``; ``activations(model)`` and ``weight_layers(model)``: the activation modules and the layers with
  weights, in forward order, where layer i is followed by activation i (the probes pair them);
  ``gains(layers, gain)``: each weight layer's initializer gain, given the activation's (1 where a layer's inputs are
  not the activation's outputs).
- ``loss(spec, data)``: the mean loss of a batch, ``loss(out, y)``.
- ``samples(data)``: how many samples one epoch trains on; ``batches(spec, data, order, augment)``: one epoch of
  training batches, every random draw from the two generators (the batch order's and the augmentation's);
  ``prepare(spec, x)``: a batch in the run's dtype and memory format.
- ``score(out, y)``: the summed metric of a training batch (None where the metric is the loss itself);
  ``evaluate(spec, model, data, split, loss_fn)``: ``{"loss": ..., metric: ...}`` over the whole ``"val"`` or
  ``"test"`` split, in eval mode; ``probe_batch(spec, data)``: the fixed validation batch the probes see.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from bench import tasks


@functools.cache
def _resolve(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def code(name: str) -> Any:
    """The code of the registered task ``name``."""
    impl = tasks.get(name).implementation
    return _resolve(impl) if isinstance(impl, str) else impl
