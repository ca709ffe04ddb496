"""The image classification task's code (:mod:`bench.harness.tasks` says what a task's code is): MLPs and CNNs
(:mod:`bench.harness.models`) on image sets (:mod:`bench.harness.data`), scored by accuracy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn as nn

from bench.config import RunSpec
from bench.harness import data, models, optim
from bench.harness.init import initialize

EVAL_BATCH = 1000  # the batches whose mean loss is summed (the records' bits depend on it)
EVAL_CHUNK = 250  # on the CPU an evaluation batch goes forward in chunks of this many: 1.7x faster (cache-sized)
PROBE_SIZE = 512


class ImageClassification:
    """Every image of a split lives on the device as uint8; batches are normalised (and augmented) there."""

    def load(self, spec: RunSpec, data_dir: str | Path | None, device: torch.device, download: bool) -> data.Splits:
        splits = data.load(spec.dataset, data_dir, device=device, download=download)
        return data.subset(splits, spec.train_size) if spec.train_size else splits

    def build(self, spec: RunSpec, splits: data.Splits, act_layer: Callable[[], nn.Module]) -> nn.Module:
        return models.build(
            spec.model,
            splits.in_shape,
            splits.num_classes,
            act_layer,
            hidden=spec.hidden,
            channels=spec.channels,
            dropout=spec.dropout,
            dropout_kind=spec.dropout_kind,
            batch_norm=spec.batch_norm,
        )

    def activations(self, model: nn.Module) -> list[nn.Module]:
        return models.activation_modules(model)

    def weight_layers(self, model: nn.Module) -> list[nn.Module]:
        return models.weight_layers(model)

    def initialize(self, spec: RunSpec, model: nn.Module, gain: float) -> None:
        """The spec's scheme on every weight layer: gain 1 for the first (its inputs are the data), the activation's
        ``gain`` for every later one (their inputs are its outputs)."""
        layers = self.weight_layers(model)
        gains = [1.0 if i == 0 else gain for i in range(len(layers))]
        initialize(layers, gains, spec.init, spec.seed, spec.bias_init)

    def loss(self, spec: RunSpec, splits: data.Splits) -> optim.Loss:
        return optim.LOSSES[spec.loss](splits.num_classes)

    def steps(self, spec: RunSpec, splits: data.Splits) -> int:
        """Batches per epoch: one pass over the training images."""
        return -(-len(splits.train_x) // spec.batch_size)

    def channels_last(self, spec: RunSpec) -> bool:
        """A float32 CNN on the CPU runs channels-last (oneDNN's fast layout); on CUDA it keeps cuDNN's NCHW."""
        return spec.model == "cnn" and spec.dtype == "float32" and spec.device == "cpu"

    def prepare(self, spec: RunSpec, x: torch.Tensor) -> torch.Tensor:
        x = x.to(getattr(torch, spec.dtype))
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last(spec) else x

    def batches(
        self, spec: RunSpec, splits: data.Splits, order: torch.Generator, augment: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the training images in the order ``order`` draws."""
        n = len(splits.train_x)
        perm = torch.randperm(n, generator=order).to(splits.train_x.device)
        for i in range(0, n, spec.batch_size):
            yield data.batch(splits, perm[i : i + spec.batch_size], spec.augment, augment)

    def score(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The correct predictions of a batch."""
        return (out.argmax(1) == y).sum()

    @torch.no_grad()
    def evaluate(
        self, spec: RunSpec, model: nn.Module, splits: data.Splits, split: str, loss_fn: optim.Loss
    ) -> dict[str, float]:
        """Mean loss and accuracy over a whole split, in eval mode."""
        x, y = getattr(splits, f"{split}_x"), getattr(splits, f"{split}_y")
        model.eval()
        total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
        correct = torch.zeros((), dtype=torch.int64, device=x.device)
        for i in range(0, len(x), EVAL_BATCH):
            xb, yb = self.prepare(spec, data.to_float(x[i : i + EVAL_BATCH], splits)), y[i : i + EVAL_BATCH]
            out = torch.cat([model(chunk) for chunk in xb.split(EVAL_CHUNK if xb.is_cpu else EVAL_BATCH)])
            total_loss += loss_fn(out, yb).double() * len(yb)
            correct += (out.argmax(1) == yb).sum()
        model.train()
        return {"loss": float(total_loss) / len(x), "acc": float(correct) / len(x)}

    def probe_batch(self, spec: RunSpec, splits: data.Splits) -> tuple[torch.Tensor, torch.Tensor]:
        return self.prepare(spec, data.to_float(splits.val_x[:PROBE_SIZE], splits)), splits.val_y[:PROBE_SIZE]


IMAGE_CLASSIFICATION = ImageClassification()
