"""The measured paths of ``python -m bench.perf``: each returns training samples per second (or the matmul rate).

Kept apart from the command line so that ``python -m bench.perf --help`` loads no torch.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms import v2

from bench.config import RunSpec
from bench.harness import data, loop, text
from bench.harness.tasks import code


def _sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so that a host clock reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: str = "cpu", repeats: int = 20) -> float:
    """Measured float32 matrix-multiply rate of the device (the ceiling for these models); TF32 off, as in a run."""
    dev = torch.device(device)
    n = 8192 if dev.type == "cuda" else 2048
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    for _ in range(3):
        a @ b
    _sync(dev)
    tic = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(dev)
    return 2 * n**3 * repeats / (time.perf_counter() - tic) / 1e9


def flops_per_sample(spec: RunSpec, loaded: object) -> float:
    """Forward+backward FLOPs of one training sample (an image, a window of characters), counted by torch on the
    task's first training batch."""
    task = code(spec.task)
    model = loop.build_model(spec, loaded)
    x, y = next(task.batches(spec, loaded, torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)))
    with FlopCounterMode(display=False) as counter:
        task.loss(spec, loaded)(model(task.prepare(spec, x)), y).backward()
    return counter.get_total_flops() / len(y)


def textbook(spec: RunSpec, data_dir: Path, steps: int, warmup: int) -> float:
    """Samples/s of the textbook loop: a torchvision dataset with ToTensor+Normalize through a DataLoader."""
    splits = data.load(spec.dataset, data_dir)
    mean, std = splits.mean.tolist(), splits.std.tolist()
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    dataset = (
        torchvision.datasets.MNIST(str(data_dir), train=True, transform=transform, download=False)
        if spec.dataset == "mnist"
        else torchvision.datasets.FashionMNIST(str(data_dir), train=True, transform=transform, download=False)
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=spec.batch_size, shuffle=True, num_workers=0)
    device = torch.device(spec.device)
    model = loop.build_model(spec, splits).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    seen, tic = 0, time.perf_counter()
    for step, (x, y) in enumerate(loader):
        if step == warmup:
            _sync(device)
            seen, tic = 0, time.perf_counter()
        if step == warmup + steps:
            break
        x, y = x.to(device), y.to(device)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    _sync(device)
    return seen / (time.perf_counter() - tic)


def textbook_lm(spec: RunSpec, data_dir: Path, steps: int, warmup: int) -> float:
    """Windows/s of the character model trained the textbook way (nanoGPT's ``get_batch`` and loop): random windows
    sliced from the corpus and stacked, forward, backward, gradient clipping, an AdamW step; the same network and
    optimizer settings as the harness's run of ``spec``."""
    device = torch.device(spec.device)
    corpus = text.load_text(data_dir, device)
    context = dict(spec.model_args)["context"]
    model = loop.build_model(spec, corpus).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=spec.lr, betas=(0.9, spec.beta2), weight_decay=spec.weight_decay
    )
    seen, tic = 0, time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            seen, tic = 0, time.perf_counter()
        ix = torch.randint(len(corpus.train) - context, (spec.batch_size,))
        x = torch.stack([corpus.train[i : i + context] for i in ix])
        y = torch.stack([corpus.train[i + 1 : i + 1 + context] for i in ix])
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.clip)
        optimizer.step()
        seen += len(y)
    _sync(device)
    return seen / (time.perf_counter() - tic)


def _last_epoch_rate(result: loop.RunResult) -> float:
    """Samples per second in a run's last epoch (the first one carries the warm-up); every epoch has as many."""
    record = result.record
    per_epoch = record["samples_per_second"] * record["train_seconds"] / record["epochs_run"]
    rows = [r for r in result.epochs if r["metric"] == "seconds"]
    return per_epoch / max(rows, key=lambda r: r["epoch"])["value"]


def harness(spec: RunSpec, data_dir: Path, barrier=None) -> float:
    """Samples/s of the harness's single run (on the spec's device) in its second epoch, with this process's torch
    threads."""
    loop.load(spec, data_dir)  # decoded before the clock of any worker starts
    if barrier is not None:
        barrier.wait()  # the pool's workers start training together, so that their epochs overlap
    return _last_epoch_rate(loop.run(dataclasses.replace(spec, epochs=2), data_dir))


def _pool_worker(spec: RunSpec, data_dir: Path, barrier) -> float:
    torch.set_num_threads(1)
    return harness(spec, data_dir, barrier)


def pool(spec: RunSpec, data_dir: Path, workers: int) -> float:
    """Aggregate samples/s of ``workers`` one-thread processes each training a run at once (the local executor); on
    CUDA they share the one GPU."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(workers)
    with cf.ProcessPoolExecutor(workers, context) as ex:
        return sum(ex.map(_pool_worker, [spec] * workers, [data_dir] * workers, [barrier] * workers))


def gemm_ceiling(spec: RunSpec, splits: data.Splits, repeats: int = 200) -> float:
    """Samples/s if a training step were only its matrix multiplies (dense models), with this process's threads.

    Per linear layer and step: the forward product and the two backward ones (input and weight gradients), at
    the harness's batch size; on CUDA replayed as one CUDA graph, so that kernel launches cost nothing. What the
    harness reaches beyond this ceiling is impossible for one process; what it lacks is time spent outside the
    matmuls.
    """
    model = loop.build_model(spec, splits)
    shapes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    b, device = spec.batch_size, torch.device(spec.device)
    tensors = [[torch.randn(*shape, device=device) for shape in ((b, i), (o, i), (b, o))] for i, o in shapes]

    def step() -> None:
        for x, w, dy in tensors:
            x @ w.T, dy @ w, dy.T @ x

    for _ in range(20):
        step()
    _sync(device)
    if device.type == "cuda":  # the multiplies without launch gaps: one CUDA graph of the whole step, replayed
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        step = graph.replay
    tic = time.perf_counter()
    for _ in range(repeats):
        step()
    _sync(device)
    return b * repeats / (time.perf_counter() - tic)
