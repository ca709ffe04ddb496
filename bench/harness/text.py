"""The character-level language model task's code (:mod:`bench.harness.tasks` says what a task's code is): a GPT-style
decoder on Tiny Shakespeare, the activation in each block's MLP, scored by its held-out loss in nats per character.

The corpus is one text file, split in order (90 % train, 5 % validation, 5 % test) and held on the device as one
tensor of character indices. Training batches are random windows (nanoGPT's ``get_batch``) drawn from the seed's
generator; evaluation reads a whole split in non-overlapping windows, so that it is exact and the same for every run.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import activations
from bench.config import RunSpec
from bench.harness import init, optim
from bench.harness.files import DataError, fetch, resolve_data_dir

FILE = Path("tinyshakespeare/input.txt")
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SPLITS = (0.9, 0.05)  # train, validation; test is the rest
STEPS = 250  # training steps per epoch: the curves' resolution
EVAL_WINDOWS = 256  # windows per evaluation batch
PROBE_WINDOWS = 32
INIT_STD = 0.02  # GPT-2's initialisation (nanoGPT's): N(0, 0.02), residual projections scaled by 1/sqrt(2 layers)


@dataclass(frozen=True)
class Text:
    """A corpus as character indices (int64) on the device, split in order, and its vocabulary."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    vocab: str
    checksum: str = SHA256[:16]  # the corpus file's: every run reads the same characters

    def decode(self, indices: list[int]) -> str:
        return "".join(self.vocab[i] for i in indices)


@functools.cache
def _read(path: Path) -> tuple[torch.Tensor, str]:
    """The corpus as indices into its sorted characters, checked against its SHA-256 (read once per process)."""
    body = path.read_bytes()
    if (digest := hashlib.sha256(body).hexdigest()) != SHA256:
        raise DataError(
            f"{path} is not Tiny Shakespeare ({len(body):,} bytes, SHA-256 {digest[:16]}..., expected "
            f"1,115,394 bytes, {SHA256[:16]}...): delete it and run with --download, or fetch it again"
        )
    text = body.decode("ascii")
    vocab = "".join(sorted(set(text)))
    lookup = torch.zeros(128, dtype=torch.int64)
    lookup[torch.tensor([ord(c) for c in vocab])] = torch.arange(len(vocab))
    return lookup[torch.frombuffer(bytearray(body), dtype=torch.uint8).long()], vocab


def load_text(data_dir: str | Path | None, device: torch.device, download: bool = False) -> Text:
    """Tiny Shakespeare from the data folder on ``device``, downloading it only if asked and missing."""
    path = resolve_data_dir(data_dir, create=download) / FILE
    if download and not path.is_file():
        fetch(URL, path)
    if not path.is_file():
        fix = "the download did not write it" if download else "run with --download (needs internet)"
        raise DataError(f"tinyshakespeare: {path} not found: {fix}, or fetch it from {URL} into {path}")
    ids, vocab = _read(path)
    n = len(ids)
    a, b = int(n * SPLITS[0]), int(n * (SPLITS[0] + SPLITS[1]))
    return Text(ids[:a].to(device), ids[a:b].to(device), ids[b:].to(device), vocab)


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))


class MLP(nn.Module):
    """``Linear(C, d) -> activation -> Linear(d', C)``: the activation sees the features as rows (tokens) x features,
    as in the image MLPs, so that a gate splits the features, not the positions."""

    def __init__(self, width: int, hidden: int, act_layer: Callable[[], nn.Module], dropout: float) -> None:
        super().__init__()
        self.act = act_layer()
        self.fc = nn.Linear(width, round(hidden / activations.width_factor(self.act)), bias=False)
        self.proj = nn.Linear(hidden, width, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(x).flatten(0, -2)).unflatten(0, x.shape[:-1])
        return self.drop(self.proj(h))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, hidden: int, act_layer, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width, bias=False)
        self.attn = CausalSelfAttention(width, heads, dropout)
        self.ln2 = nn.LayerNorm(width, bias=False)
        self.mlp = MLP(width, hidden, act_layer, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Token and position embeddings, pre-LayerNorm blocks, a final LayerNorm and the output head tied to the token
    embedding; no biases (nanoGPT with ``bias=False``)."""

    def __init__(self, vocab: int, layers: int, heads: int, width: int, context: int, hidden: int, act_layer,
                 dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        self.context = context
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(width, heads, hidden, act_layer, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, vocab) of the next character at every position of ``idx`` (B, T)."""
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device)))
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight)


def mlp_width(width: int, act_layer: Callable[[], nn.Module]) -> int:
    """The MLP's hidden width: 4C, or, for an activation that matches parameters (the ``*_matched`` gated units), the
    width at which the MLP has the plain one's 8C^2 weights: C*d/f + d*C = 8C^2 for width factor f (d = 8C/3 for a
    gate, Shazeer 2020's 2/3)."""
    act = act_layer()
    if not getattr(act, "matches_parameters", False):
        return 4 * width
    return round(8 * width / (1 + 1 / activations.width_factor(act)))


def _lm_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def windows(ids: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The non-overlapping windows of ``ids`` (inputs, next characters): every character but the last few predicted
    once, from a context that restarts at each window."""
    n = (len(ids) - 1) // context
    return ids[: n * context].view(n, context), ids[1 : n * context + 1].view(n, context)


class CharLM:
    """The ``gpt`` model on ``tinyshakespeare``: its arguments are ``layers``, ``heads``, ``width`` and ``context``."""

    def load(self, spec: RunSpec, data_dir: str | Path | None, device: torch.device, download: bool) -> Text:
        text = load_text(data_dir, device, download)
        args = dict(spec.model_args)
        for split in ("train", "val", "test"):
            if (n := len(getattr(text, split))) <= args["context"]:
                raise DataError(f"context {args['context']} does not fit the {split} split's {n:,} characters")
        if spec.batch_size > (windows_ := len(text.train) - args["context"]):
            raise DataError(f"batch_size {spec.batch_size} exceeds the train split's {windows_:,} windows")
        return text

    def build(self, spec: RunSpec, text: Text, act_layer: Callable[[], nn.Module]) -> nn.Module:
        args = dict(spec.model_args)
        hidden = mlp_width(args["width"], act_layer)
        return GPT(len(text.vocab), args["layers"], args["heads"], args["width"], args["context"], hidden, act_layer,
                   spec.dropout)  # fmt: skip

    def activations(self, model: nn.Module) -> list[nn.Module]:
        return [block.mlp.act for block in model.blocks]

    def weight_layers(self, model: nn.Module) -> list[nn.Module]:
        """Each block's MLP input layer (followed by the activation), then the tied head (the token embedding)."""
        return [*(block.mlp.fc for block in model.blocks), model.wte]

    def initialize(self, spec: RunSpec, model: nn.Module, gain: float) -> None:
        """``auto``: GPT-2's, whatever the activation (as nanoGPT): every weight N(0, 0.02), the residual projections
        N(0, 0.02 / sqrt(2 layers)); LayerNorms at 1. Any other scheme draws every matrix by its rule, the MLP's output
        layer (whose inputs are the activation's outputs) with the activation's gain. One generator per matrix."""
        mats = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Embedding)]
        after_act = {id(b.mlp.proj) for b in model.blocks}  # its inputs are the activation's outputs
        residual = {id(b.attn.proj) for b in model.blocks} | after_act
        with torch.no_grad():
            for i, m in enumerate(mats):
                gen = init.layer_generator(spec.seed, i)
                if spec.init == "auto":
                    std = INIT_STD / math.sqrt(2 * len(model.blocks)) if id(m) in residual else INIT_STD
                    nn.init.normal_(m.weight, 0.0, std, generator=gen)
                else:
                    init.INITS[spec.init](m.weight, gain if id(m) in after_act else 1.0, gen)

    def loss(self, spec: RunSpec, text: Text) -> optim.Loss:
        return _lm_loss

    def steps(self, spec: RunSpec, text: Text) -> int:
        return STEPS

    def channels_last(self, spec: RunSpec) -> bool:
        return False

    def prepare(self, spec: RunSpec, x: torch.Tensor) -> torch.Tensor:
        return x

    def batches(
        self, spec: RunSpec, text: Text, order: torch.Generator, augment: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``STEPS`` batches of ``batch_size`` random windows of the train split, their starts drawn from ``order``."""
        context = dict(spec.model_args)["context"]
        offsets = torch.arange(context + 1, device=text.train.device)
        for _ in range(STEPS):
            starts = torch.randint(len(text.train) - context, (spec.batch_size,), generator=order)
            chunk = text.train[starts.to(text.train.device)[:, None] + offsets]
            yield chunk[:, :-1], chunk[:, 1:]

    def score(self, out: torch.Tensor, y: torch.Tensor) -> None:
        return None  # the metric is the loss

    @torch.no_grad()
    def evaluate(self, spec: RunSpec, model: nn.Module, text: Text, split: str, loss_fn: optim.Loss) -> dict:
        """The mean loss per character over the whole split, in non-overlapping windows, in eval mode."""
        x, y = windows(getattr(text, split), dict(spec.model_args)["context"])
        model.eval()
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        for i in range(0, len(x), EVAL_WINDOWS):
            xb, yb = x[i : i + EVAL_WINDOWS], y[i : i + EVAL_WINDOWS]
            total += loss_fn(model(xb), yb).double() * yb.numel()
        model.train()
        return {"loss": float(total) / y.numel()}

    def probe_batch(self, spec: RunSpec, text: Text) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = windows(text.val, dict(spec.model_args)["context"])
        return x[:PROBE_WINDOWS], y[:PROBE_WINDOWS]


CHAR_LM = CharLM()
