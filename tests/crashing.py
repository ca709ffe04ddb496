"""An activation that kills the process running it, for the executor fault tests (importable by Ray workers)."""

import os
from pathlib import Path

import torch
import torch.nn as nn


class DieInWorker(nn.Module):
    """ReLU that ends its process (``os._exit``) on the first forward pass in any process but ``spare``.

    With a ``marker`` it dies only while the marker file does not exist, and creates it first: the task dies
    once and its retry trains normally. Without one it dies every time.
    """

    def __init__(self, *, spare: int = 0, marker: str = "") -> None:
        super().__init__()
        self.spare, self.marker = spare, marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if os.getpid() != self.spare and not (self.marker and Path(self.marker).exists()):
            if self.marker:
                Path(self.marker).touch()
            os._exit(1)
        return torch.relu(x)


class Boom(nn.Module):
    """An activation whose forward pass raises, for the failed-run tests (importable by pool workers)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom in the model")
