"""One run: a RunSpec goes in, a record (flat scalars) plus per-epoch and per-layer rows come out.

Paired design: for a seed, the initial weights (per layer, where shapes agree), the batch order, the
augmentation draws and the dropout masks come from generators seeded by the seed alone, so every
activation of that seed sees the same ones. The same spec run twice on CPU gives identical metrics.
A run's progress lives in one :class:`RunState`; :func:`run` is the one epoch loop that drives it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
import torch.nn as nn

import activations
from activations.errors import InputError
from bench import tasks
from bench.config import RECORD_SCHEMA, RunSpec, Status
from bench.harness import optim
from bench.harness.probes import probe, saved_bytes
from bench.harness.regularize import EarlyStopping, param_groups
from bench.harness.tasks import code
from bench.provenance import git_sha

AUGMENT_SEED_OFFSET = 7919  # augmentation draws get their own stream, apart from the batch order's
PHASE_MARK = "actbench: "  # the prefix of the phases' marks
_UNMARKED = contextlib.nullcontext()
DENORMAL_BITS = 1 << 20  # the int32 bits of a float32 denormal (1.5e-39), made without float arithmetic
# cuBLAS reads its workspace setting when a process first uses it: set here, before any run of this process starts
# CUDA, so that CUDA matrix products are deterministic (a value the user set is kept). No effect on the CPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def _mark(phase: str) -> contextlib.AbstractContextManager:
    """A phase of the run for torch's profiler (:mod:`bench.harness.phases`) while one traces; otherwise nothing (a
    mark costs 5 us, 3 % of an MLP step's 1.2 ms at seven a step; the check costs 0.2 us)."""
    return torch.profiler.record_function(PHASE_MARK + phase) if torch._C._autograd._profiler_enabled() else _UNMARKED


def _marked(phase: str, items: Iterator) -> Iterator:
    """``items``, each one's making marked as ``phase``."""
    items = iter(items)
    while True:
        with _mark(phase):
            item = next(items, None)
        if item is None:
            return
        yield item


@dataclass
class RunResult:
    """What a run produces: the record and its long-format rows."""

    record: dict
    epochs: list[dict] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)


def environment(device: str) -> dict:
    """Versions, machine and determinism settings recorded with every run."""
    try:
        package = version("actbench")
    except PackageNotFoundError:
        package = "unknown"
    return {
        "actbench_version": package,
        "git_sha": git_sha(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the vector kernels torch chose: AVX2, AVX512...
        "schema_version": RECORD_SCHEMA,
        **(cuda_settings() if device.startswith("cuda") else {}),
    }


def device_name(device: str) -> str:
    """The GPU's name on CUDA, else the processor's model."""
    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else cpu_name()


@functools.cache
def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows: float rounding differs
    between processor models, so a record names its own."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cuda_settings() -> dict:
    """The settings that make a CUDA run repeatable bit for bit, as they are now (recorded with CUDA runs)."""
    return {
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


@contextlib.contextmanager
def reproducible(device: torch.device):
    """On CUDA: cuDNN deterministic and not benchmarking, float32 without TF32 (the spec's dtype, as on the CPU),
    and deterministic algorithms wherever torch has one (a warning where it has none); restored afterwards.
    The CPU needs nothing: its kernels are deterministic at a fixed thread count."""
    if device.type != "cuda":
        yield
        return
    fill = torch.utils.deterministic
    was = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    matmul_tf32, filled = torch.backends.cuda.matmul.allow_tf32, fill.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    fill.fill_uninitialized_memory = False  # a NaN fill of every new tensor: a kernel each, and no result reads it
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
            yield
    finally:
        torch.use_deterministic_algorithms(was[0], warn_only=was[1])
        torch.backends.cuda.matmul.allow_tf32, fill.fill_uninitialized_memory = matmul_tf32, filled


def denormals_flushed() -> bool:
    """Whether float32 denormals are flushed to zero on every thread torch uses now, measured: a multiply of denormals
    large enough to be spread over all of torch's threads gives zero bits only where each thread flushes."""
    x = torch.full((1 << 20,), DENORMAL_BITS, dtype=torch.int32).view(torch.float32)
    return bool(x.mul(1.0).view(torch.int32).eq(0).all())


@contextlib.contextmanager
def flush_denormals(device: torch.device):
    """On the CPU, float32 denormals flush to zero for the run (where the CPU can: x86 with SSE3): arithmetic on them is
    up to 100x slower, and weights that weight decay shrinks towards zero reach them (the L2 claim's runs took 30 s an
    epoch instead of 1 s). Yields whether every thread flushes (recorded with the run). The setting is per thread and a
    thread inherits it from the thread that starts it: the pool's workers set it before torch starts its threads
    (``executors._start_worker``); here it is set for this thread and restored after the run. None on CUDA."""
    if device.type != "cpu":
        yield None
        return
    before = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield denormals_flushed()
    finally:
        if not before:
            torch.set_flush_denormal(False)


def load(spec: RunSpec, data_dir: str | Path | None = None, download: bool = False) -> object:
    """The data of ``spec``'s task and dataset on the spec's device."""
    return code(spec.task).load(spec, data_dir, torch.device(spec.device), download)


def check_data(specs: list[RunSpec], data_dir: str | Path | None = None, download: bool = False) -> None:
    """Load each task's dataset that ``specs`` use, on the CPU, once per model and batch size (a task checks that its
    splits can fill them): a missing or damaged file, or a batch the data cannot fill, is one error line now, before
    any run starts. A task's code reads its files once per process."""
    for spec in {(s.task, s.dataset, s.model, s.model_args, s.batch_size): s for s in specs}.values():
        code(spec.task).load(spec, data_dir, torch.device("cpu"), download)


def build_model(spec: RunSpec, data: object) -> nn.Module:
    """The spec's network with the spec's activation and initializer, on the CPU, before any training."""
    task = code(spec.task)
    model = task.build(spec, data, functools.partial(activations.create, spec.activation))
    task.initialize(spec, model, activations.card(spec.activation).gain)
    return model


@dataclass(eq=False)
class RunState:
    """Everything one run holds while it trains: model, optimizer, generators, rows, stopping and status.

    :func:`run` drives it: ``evaluate(0)``, then per epoch ``train_epoch``, ``end_epoch`` and ``next_epoch``;
    ``to_record()`` is the run's flat record. Create it with :meth:`start`.
    """

    spec: RunSpec
    data: object  # what the task's ``load`` returned
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    loss_fn: optim.Loss
    started: float
    started_at: str
    stopper: EarlyStopping = field(init=False)
    epochs: list[dict] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)
    last: dict[str, float] = field(default_factory=dict)
    status: Status = Status.OK
    error: str | None = None
    diverged_epoch: int | None = None
    epochs_run: int = 0
    flush_denormal: bool | None = None
    train_seconds: float = 0.0
    seen: int = 0

    def __post_init__(self) -> None:
        spec = self.spec
        self.device = device = torch.device(spec.device)
        self.task = code(spec.task)
        self.metric = tasks.get(spec.task).datasets[spec.dataset]
        self.stopper = EarlyStopping(spec.patience, self.metric.higher_is_better)
        self.forward = torch.compile(self.model) if spec.compile else self.model
        self.order_gen = torch.Generator().manual_seed(spec.seed)
        self.aug_gen = torch.Generator(device=device).manual_seed(spec.seed + AUGMENT_SEED_OFFSET)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec.amp == "bf16")
        self.max_abs_df = activations.card(spec.activation).max_abs_df
        self.probe_x, self.probe_y = self.task.probe_batch(spec, self.data)
        self.per_step = spec.schedule in optim.PER_STEP  # stepped after every batch, not every epoch

    @classmethod
    def start(cls, spec: RunSpec, data: object, started: float, started_at: str) -> RunState:
        """A fresh run of ``spec`` on ``data``: its initial weights, optimizer and schedule; seeds the global RNG."""
        task, higher = code(spec.task), tasks.get(spec.task).metric.higher_is_better
        model = build_model(spec, data).to(device=spec.device, dtype=getattr(torch, spec.dtype))
        torch.manual_seed(spec.seed)  # dropout masks and rrelu slopes; everything else has its own generator
        if task.channels_last(spec):
            model = model.to(memory_format=torch.channels_last)
        groups = param_groups(model, spec.weight_decay, spec.decay_act_params)
        optimizer = optim.OPTIMIZERS[spec.optimizer](groups, spec)
        scheduler = optim.SCHEDULES[spec.schedule](optimizer, spec, task.steps(spec, data), higher)
        return cls(spec, data, model, optimizer, scheduler, task.loss(spec, data), started, started_at)

    def log(self, epoch: int, split: str, metrics: dict[str, float]) -> None:
        self.epochs.extend({"epoch": epoch, "split": split, "metric": k, "value": float(v)} for k, v in metrics.items())

    def evaluate(self, epoch: int) -> None:
        """Validation and test loss and metric, and the per-layer probes, logged for ``epoch``."""
        for split in ("val", "test"):
            with _mark("evaluation"):
                metrics = self.task.evaluate(self.spec, self.model, self.data, split, self.loss_fn)
            self.last.update({f"{split}_{k}": v for k, v in metrics.items()})
            self.log(epoch, split, metrics)
        acts, layers = self.task.activations(self.model), self.task.weight_layers(self.model)
        with _mark("probes"):
            rows = probe(self.model, self.probe_x, self.probe_y, self.loss_fn, self.max_abs_df, epoch, acts, layers)
        self.layers.extend(rows)

    def train_epoch(self) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """One epoch of the task's training batches in this seed's order: the summed loss and score (None where the
        task's metric is its loss), each a batch's mean times its samples (``len(y)``), and the samples."""
        spec, device = self.spec, self.device
        self.model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        score_sum, n = None, 0
        for xb, yb in _marked("batches", self.task.batches(spec, self.data, self.order_gen, self.aug_gen)):
            with self.autocast:
                with _mark("forward"):
                    out = self.forward(self.task.prepare(spec, xb))
                with _mark("loss"):
                    loss = self.loss_fn(out, yb)
            with _mark("optimizer"):
                self.optimizer.zero_grad(set_to_none=True)
            with _mark("backward"):
                loss.backward()
            with _mark("optimizer"):
                if spec.clip:
                    nn.utils.clip_grad_norm_(self.model.parameters(), spec.clip, foreach=True)
                self.optimizer.step()
                if self.per_step:
                    self.scheduler.step()
            with _mark("bookkeeping"):
                loss_sum += loss.detach().double() * len(yb)
                score = self.task.score(out.detach(), yb)
                score_sum = score if score_sum is None else score_sum + score
                n += len(yb)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return loss_sum, score_sum, n

    def end_epoch(
        self, epoch: int, loss_sum: torch.Tensor, score: torch.Tensor | None, n: int, lr: float, seconds: float
    ) -> bool:
        """Log a trained epoch of ``n`` samples and evaluate it; False (and status ``diverged``) if its training loss
        is not finite."""
        self.epochs_run, self.train_seconds, self.seen = epoch, self.train_seconds + seconds, self.seen + n
        train = {"loss": float(loss_sum) / n, **({self.metric.name: float(score) / n} if score is not None else {})}
        self.last.update({f"train_{k}": v for k, v in train.items()})
        self.log(epoch, "train", {**train, "lr": lr, "seconds": seconds})
        train_loss = train["loss"]
        if not math.isfinite(train_loss):
            self.status, self.diverged_epoch = Status.DIVERGED, epoch
            self.error = f"training loss became {train_loss} in epoch {epoch}"
            return False
        self.evaluate(epoch)
        return True

    def next_epoch(self, epoch: int) -> bool:
        """Early stopping and the learning-rate schedule after an evaluated epoch; False when the run stops."""
        stop = self.stopper.update(epoch, self.last[self.metric.val], self.last["val_loss"])
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(self.last[self.metric.val])
        elif self.scheduler is not None and not self.per_step:
            self.scheduler.step()
        return not stop

    def to_record(self) -> dict:
        """The flat record: spec fields, final and best-on-validation metrics, timings, environment."""
        spec, stopper, last, metric = self.spec, self.stopper, self.last, self.metric
        best = (stopper.best_epoch, "test", metric.name)
        at_best = (r["value"] for r in self.epochs if (r["epoch"], r["split"], r["metric"]) == best)
        names = dict.fromkeys(("loss", metric.name))  # the loss, and the metric where it is not the loss
        finals = [f"{split}_{name}" for split in ("train", "val", "test") for name in names]
        return {
            "key": spec.key,
            "status": self.status,
            "error": self.error,
            **spec.flat(),
            "epochs_run": self.epochs_run,
            "stopped_early": self.status == Status.OK and self.epochs_run < spec.epochs,
            "diverged_epoch": self.diverged_epoch,
            "best_epoch": stopper.best_epoch,
            metric.best_val: stopper.best if stopper.best_epoch else math.nan,
            "best_val_loss": stopper.best_loss,
            f"{metric.test}_at_best": next(at_best, math.nan),
            **{k: last.get(k, math.nan) for k in finals},
            "gap": metric.gap(last.get(metric.train, math.nan), last.get(metric.test, math.nan)),
            "train_seconds": self.train_seconds,
            "wall_seconds": time.perf_counter() - self.started,
            "samples_per_second": self.seen / self.train_seconds if self.train_seconds else math.nan,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "saved_bytes_per_sample": saved_bytes(self.model, self.probe_x),
            "peak_memory_bytes": torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None,
            "started_at": self.started_at,
            **environment(spec.device),
            "flush_denormal": self.flush_denormal,
            "data_checksum": getattr(self.data, "checksum", None),  # where the task gives one
            **metric.record(),
        }


def run(
    spec: RunSpec,
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> RunResult:
    """Train ``spec`` to the end (or to divergence / early stop) and return its record and rows: the one epoch loop."""
    started, started_at = time.perf_counter(), datetime.now(UTC).isoformat(timespec="seconds")
    device = torch.device(spec.device)
    data = load(spec, data_dir, download)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with (
        torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        reproducible(device),
        flush_denormals(device) as flushed,
    ):
        state = RunState.start(spec, data, started, started_at)
        state.flush_denormal = flushed
        state.evaluate(0)  # the starting point of every curve, and gradients at initialisation
        for epoch in range(1, spec.epochs + 1):
            lr = state.optimizer.param_groups[0]["lr"]
            tic = time.perf_counter()
            loss_sum, score, n = state.train_epoch()
            if not state.end_epoch(epoch, loss_sum, score, n, lr, time.perf_counter() - tic):
                break
            if on_epoch is not None:
                on_epoch(epoch, dict(state.last))
            if not state.next_epoch(epoch):
                break
        return RunResult(state.to_record(), state.epochs, state.layers)


def failed(spec: RunSpec, exc: BaseException, wall_seconds: float = math.nan) -> RunResult:
    """The record of a run that raised: kept and shown, never dropped."""
    record = {
        "key": spec.key,
        "status": Status.FAILED,
        "error": f"{type(exc).__name__}: {exc}"[:2000],
        **spec.flat(),
        "wall_seconds": wall_seconds,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **environment(spec.device),
        **(task.datasets[spec.dataset].record() if (task := tasks.TASKS.get(spec.task)) else {}),
    }
    return RunResult(record)


def attempt(
    spec: RunSpec,
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> RunResult:
    """``run``, but a run that raises (a broken activation, out of memory) is a ``failed`` record; bad input and
    Ctrl-C still raise, since they stop the suite."""
    tic = time.perf_counter()
    try:
        return run(spec, data_dir, download=download, on_epoch=on_epoch)
    except (InputError, KeyboardInterrupt):
        raise
    except Exception as exc:
        return failed(spec, exc, time.perf_counter() - tic)
