"""``python -m bench.perf`` (``make perf``): training throughput of each path, as ratios within one process.

One after another, warm-up excluded: (a) the textbook loop (torchvision DataLoader + ToTensor + Normalize),
(b) the harness's single run (dataset as one tensor, batches by index), (c) the harness's ensemble of K
seeds trained as one vmapped model; (d) for dense models, a step made of its matrix multiplies only, single
and batched over K (the ceiling of (b) and (c)); plus the machine's float32 matmul rate, and each path's FLOP
utilisation (FLOPs per sample counted by torch's FlopCounterMode on forward+backward). Every path is measured
``--rounds`` times, the paths in turn, and the table shows the median and the range.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms import v2

from activations.errors import InputError
from bench import data, ensemble, train
from bench.config import RunSpec


def matmul_gflops(n: int = 2048, repeats: int = 20) -> float:
    """Measured float32 matrix-multiply rate of this machine (the ceiling for these models)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    tic = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - tic) / 1e9


def flops_per_sample(spec: RunSpec, splits: data.Splits, batch: int = 128) -> float:
    """Forward+backward FLOPs of one training sample, counted by torch."""
    model = train.build_model(spec, splits)
    x, y = data.batch(splits, torch.arange(batch), False, None)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / batch


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
    model = train.build_model(spec, splits)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    seen, tic = 0, time.perf_counter()
    for step, (x, y) in enumerate(loader):
        if step == warmup:
            seen, tic = 0, time.perf_counter()
        if step == warmup + steps:
            break
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    return seen / (time.perf_counter() - tic)


def _last_epoch_rate(results: list[train.RunResult], n_train: int) -> float:
    """Model-samples per second in the last epoch (the first one carries the warm-up).

    An ensemble gives each member 1/K of the group's time, so the members' seconds add up to the real time.
    """
    seconds = 0.0
    for result in results:
        rows = [r for r in result.epochs if r["metric"] == "seconds"]
        last = max(r["epoch"] for r in rows)
        seconds += next(r["value"] for r in rows if r["epoch"] == last)
    return len(results) * n_train / seconds


def harness(spec: RunSpec, data_dir: Path, k: int) -> float:
    """Model-samples/s of the harness in its second epoch: a single run (k=1) or an ensemble of k seeds."""
    splits = data.load(spec.dataset, data_dir)
    specs = [dataclasses.replace(spec, seed=s, epochs=2) for s in range(k)]
    results = [train.run(specs[0], data_dir)] if k == 1 else ensemble.run(specs, data_dir)
    return _last_epoch_rate(results, len(splits.train_x))


def gemm_ceiling(spec: RunSpec, splits: data.Splits, k: int, repeats: int = 200) -> float:
    """Model-samples/s if a training step were only its matrix multiplies (dense models).

    Per linear layer and step: the forward product and the two backward ones (input and weight gradients), at
    the harness's batch size, as one ``mm`` (k=1) or one ``bmm`` over k members (the ensemble). What the
    harness reaches beyond this ceiling is impossible; what it lacks is time spent outside the matmuls.
    """
    model = train.build_model(spec, splits)
    shapes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    b = spec.batch_size
    tensors = [(torch.randn(k, b, i), torch.randn(k, o, i), torch.randn(k, b, o)) for i, o in shapes]

    def step() -> None:
        for x, w, dy in tensors:
            if k == 1:
                x1, w1, dy1 = x[0], w[0], dy[0]
                x1 @ w1.T, dy1 @ w1, dy1.T @ x1
            else:
                torch.bmm(x, w.transpose(1, 2)), torch.bmm(dy, w), torch.bmm(dy.transpose(1, 2), x)

    for _ in range(20):
        step()
    tic = time.perf_counter()
    for _ in range(repeats):
        step()
    return k * b * repeats / (time.perf_counter() - tic)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="dataset folder (default: $ACTBENCH_DATA)")
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    parser.add_argument("--ensembles", default="4,8", help="ensemble sizes K to measure (each at least 2)")
    parser.add_argument("--steps", type=int, default=200, help="measured steps of the textbook loop")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measure every path this many times, in turn; report the median"
    )
    parser.add_argument("--out", default="results/perf.json", help="where to write the JSON table")
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    if not args.models or set(args.models) - {"mlp", "cnn"}:
        raise ValueError(f"--models takes mlp and/or cnn, not {','.join(args.models)!r}")
    try:
        args.ensembles = [int(k) for k in args.ensembles.split(",") if k]
    except ValueError:
        raise ValueError(f"--ensembles takes integers, not {args.ensembles!r}") from None
    if any(k < 2 for k in args.ensembles):
        raise ValueError("--ensembles: an ensemble has at least 2 members")
    if args.steps < 1 or args.rounds < 1:
        raise ValueError("--steps and --rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse(argv)
        data_dir = data.resolve_data_dir(args.data_dir)
        data.load("mnist", data_dir)
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = []  # (model, path name, FLOPs per sample, measure)
    for model in args.models:
        spec = RunSpec(model=model, dataset="mnist")
        splits = data.load("mnist", data_dir)
        flops = flops_per_sample(spec, splits)
        own = [
            ("textbook DataLoader", lambda s=spec: textbook(s, data_dir, args.steps, warmup=20)),
            ("harness single", lambda s=spec: harness(s, data_dir, 1)),
        ]
        if ensemble.batchable(spec):  # others would fall back to single runs: nothing to measure
            own += [(f"harness ensemble K={k}", lambda s=spec, k=k: harness(s, data_dir, k)) for k in args.ensembles]
            own += [
                (f"matmuls only K={k}", lambda s=spec, k=k, d=splits: gemm_ceiling(s, d, k))
                for k in [1, *args.ensembles]
            ]
        paths += [(model, name, flops, measure) for name, measure in own]
    print(f"threads: {torch.get_num_threads()}; {args.rounds} round(s) of {len(paths)} paths", file=sys.stderr)
    peaks: list[float] = []
    rates: list[list[float]] = [[] for _ in paths]
    for r in range(args.rounds):  # in turn, so that a slow spell of a shared machine hits every path alike
        peaks.append(matmul_gflops())
        print(f"round {r + 1}: float32 matmul {peaks[-1]:.1f} GFLOP/s", file=sys.stderr)
        for (model, name, _, measure), got in zip(paths, rates, strict=True):
            got.append(measure())
            print(f"round {r + 1}: {model:4} {name:24} {got[-1]:10.0f} samples/s", file=sys.stderr)
    peak = statistics.median(peaks)
    rows = []
    for (model, name, flops, _), got in zip(paths, rates, strict=True):
        rate = statistics.median(got)
        gflops = rate * flops / 1e9
        rows.append(
            {
                "model": model,
                "path": name,
                "samples_per_second": rate,
                "rounds": got,
                "gflops": gflops,
                "utilisation": gflops / peak,
            }
        )
    table = _with_ratios(rows)
    print(table_text(table, peak))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "matmul_gflops": peak,
                "matmul_gflops_rounds": peaks,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "rows": table,
            },
            indent=2,
        )
    )
    print(f"written {args.out}", file=sys.stderr)
    return 0


def _with_ratios(rows: list[dict]) -> list[dict]:
    """Each path's rate over the textbook loop's and over the single run's, for the same model."""
    for row in rows:
        same = {r["path"]: r["samples_per_second"] for r in rows if r["model"] == row["model"]}
        row["vs_textbook"] = row["samples_per_second"] / same["textbook DataLoader"]
        row["vs_single"] = row["samples_per_second"] / same["harness single"]
    return rows


def table_text(rows: list[dict], peak: float) -> str:
    header = (
        f"{'model':5} {'path':24} {'samples/s':>10} {'min-max':>15} {'GFLOP/s':>8} {'of peak':>8} "
        f"{'x textbook':>10} {'x single':>9}"
    )
    lines = [f"matmul peak {peak:.1f} GFLOP/s; median of each path's rounds", header]
    for r in rows:
        spread = f"{min(r['rounds']):.0f}-{max(r['rounds']):.0f}"
        lines.append(
            f"{r['model']:5} {r['path']:24} {r['samples_per_second']:10.0f} {spread:>15} {r['gflops']:8.1f} "
            f"{r['utilisation']:8.0%} {r['vs_textbook']:10.2f} {r['vs_single']:9.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
