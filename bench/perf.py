"""``python -m bench.perf`` (``make perf``): training throughput of each path, as ratios within one process.

One after another, warm-up excluded: (a) the textbook loop (images: torchvision DataLoader + ToTensor + Normalize;
the character model, ``gpt``: nanoGPT's random windows sliced and stacked, forward, backward, clipping, AdamW),
(b) the harness's single run (dataset as one tensor, batches by index) in one process with all its threads,
(c) the local executor's pool: one-thread processes, one per usable core, each training a run at once (their
samples/s added up); (d) for dense models, a step made of its matrix multiplies only (the ceiling of (b)); plus
the machine's float32 matmul rate, and each path's FLOP utilisation (FLOPs per sample counted by torch's
FlopCounterMode on forward+backward). A sample is an image, or a window of the character model; steps/s is samples/s
over the batch size. Every path is measured ``--rounds`` times, the paths in turn, and the table shows the median and
the range.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

from activations import errors
from bench.config import DEVICES, RunSpec, make_spec

MODELS = ("mlp", "cnn", "gpt")  # the image task's MNIST networks, and the char_lm task's transformer
PROFILED = "relu,isrlu,maxout"  # make profile: ReLU and two of the slowest activations in the CNN


def build_parser() -> argparse.ArgumentParser:
    parser = errors.Parser(
        prog="python -m bench.perf",
        description="Training samples/s of each path (textbook DataLoader loop, the harness in one process with all "
        "threads, the worker pool, the matmuls-only ceiling), measured in turn over --rounds rounds, warm-up excluded.",
    )
    parser.add_argument("--data-dir", help="dataset folder (default: $ACTBENCH_DATA)")
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)} (default: all)"
    )
    parser.add_argument(
        "--device", default="auto", help=f"{', '.join(DEVICES)} (default auto: cuda, then mps, then cpu)"
    )
    parser.add_argument(
        "--workers",
        help="processes of the pool path, or several sizes to measure each: 1,2,4,8 (default: what a suite uses: "
        "the usable CPU cores, on CUDA too)",
    )
    parser.add_argument("--steps", type=int, default=200, help="measured steps of the textbook loop (default 200)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measure every path this many times, in turn; report the median"
    )
    parser.add_argument(
        "--profile",
        metavar="ACTIVATIONS",
        help="instead of the paths: where one run's time goes, phase by phase (traced by torch's profiler), for each "
        "of these comma-separated activations in the default suite's CNN setting, on the CPU with one thread as the "
        f"pool runs it (make profile: {PROFILED})",
    )
    parser.add_argument(
        "--out", help="where to write the JSON table (default results/perf.json, with --profile results/profile.json)"
    )
    return parser


def _check(args: argparse.Namespace) -> None:
    from bench.runs import executors

    args.models = [m for m in args.models.split(",") if m]
    if not args.models or set(args.models) - set(MODELS):
        raise errors.InputError(f"--models takes some of {', '.join(MODELS)}, not {','.join(args.models)!r}")
    args.spec = RunSpec(dataset="mnist", device=args.device)  # an unknown or absent device: one line, exit 2
    if args.workers is None:
        args.workers = [executors.default_workers([args.spec], threads=1)]
    else:
        try:
            args.workers = [int(w) for w in args.workers.split(",")]
        except ValueError:
            raise errors.InputError(f"--workers takes whole numbers: 4 or 1,2,4, not {args.workers!r}") from None
    if args.steps < 1 or args.rounds < 1 or min(args.workers) < 1:
        raise errors.InputError("--steps, --rounds and --workers must be at least 1")


def _paths(args: argparse.Namespace, data_dir: Path) -> list[tuple]:
    """(model, path name, FLOPs per sample, batch size, measure) for every path of every model."""
    import torch

    from bench.harness import loop
    from bench.harness.throughput import flops_per_sample, gemm_ceiling, harness, pool, textbook, textbook_lm

    paths = []
    threads = torch.get_num_threads()
    for model in args.models:
        if model == "gpt":  # the char_lm task's defaults: nanoGPT's baby GPT and its recipe
            spec = make_spec({"task": "char_lm", "device": args.spec.device})
            first = ("textbook get_batch", lambda s=spec: textbook_lm(s, data_dir, args.steps, warmup=20))
        else:
            spec = dataclasses.replace(args.spec, model=model)
            first = ("textbook DataLoader", lambda s=spec: textbook(s, data_dir, args.steps, warmup=20))
        loaded = loop.load(spec, data_dir)
        own = [
            first,
            (f"harness 1 process x {threads} threads", lambda s=spec: harness(s, data_dir)),
            *((f"harness pool {n} x 1 thread", lambda s=spec, n=n: pool(s, data_dir, n)) for n in args.workers),
        ]
        if model == "mlp":  # the dense model: its step is its matmuls
            own.append(("matmuls only", lambda s=spec, d=loaded: gemm_ceiling(s, d)))
        flops = flops_per_sample(spec, loaded)
        paths += [(model, name, flops, spec.batch_size, measure) for name, measure in own]
    return paths


def _profile_specs(names: str) -> list[RunSpec]:
    """One run of the default suite's CNN setting (its first CNN spec, seed 0, the suite's rate) per activation, on
    the CPU."""
    import activations
    from bench.config import load_suite

    chosen = [a for a in names.split(",") if a]
    if not chosen:
        raise errors.InputError(f"--profile takes comma-separated activations, e.g. {PROFILED}")
    for name in chosen:
        activations.create(name)  # an unknown name: one line with the closest registered ones
    cnn = next(s for s in load_suite("default") if s.model == "cnn")
    return [dataclasses.replace(cnn, activation=name, seed=0, device="cpu") for name in chosen]


def _profile_body(args: argparse.Namespace) -> int:
    """``--profile``: each run untraced (its time), then traced (its phases), one after another, one thread."""
    import torch

    from bench.harness import data, phases
    from bench.harness.loop import cpu_name
    from bench.runs import executors

    specs = _profile_specs(args.profile)
    data_dir = data.resolve_data_dir(args.data_dir)
    torch.set_num_threads(1)  # as a pool worker trains
    executors.keep_freed_memory()
    setting = f"{specs[0].dataset}/{specs[0].model} {specs[0].epochs} epochs, seed 0, lr {specs[0].lr:g}"
    print(f"cpu: {cpu_name()}; 1 thread; {setting}", file=sys.stderr)
    profiles = {}
    for spec in specs:
        print(f"{spec.activation}: a run, then the same run traced", file=sys.stderr)
        profiles[spec.activation] = phases.profile(spec, data_dir)
    print(f"cpu: {cpu_name()}; 1 thread; {setting}\n{profile_text(profiles)}")
    out = Path(args.out or "results/profile.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"cpu": cpu_name(), "threads": 1, "setting": setting, "torch": torch.__version__, "runs": profiles},
            indent=2,
        )
    )
    print(f"written {out}", file=sys.stderr)
    return 0


def profile_text(profiles: dict[str, dict]) -> str:
    """The phases as rows, for each activation the seconds of its traced run and their share."""
    from bench.harness.phases import PHASES

    names = list(profiles)
    lines = [f"{'phase':22} " + " ".join(f"{n + ' s':>10} {'share':>6}" for n in names)]
    for phase in PHASES:
        cells = []
        for name in names:
            p = profiles[name]
            cells.append(f"{p['seconds'][phase]:10.2f} {p['seconds'][phase] / p['traced_wall_seconds']:6.1%}")
        lines.append(f"{phase:22} " + " ".join(cells))
    lines.append(f"{'traced run':22} " + " ".join(f"{profiles[n]['traced_wall_seconds']:10.2f} {'':6}" for n in names))
    lines.append(f"{'run, untraced':22} " + " ".join(f"{profiles[n]['wall_seconds']:10.2f} {'':6}" for n in names))
    return "\n".join(lines)


def _body(args: argparse.Namespace) -> int:
    if args.profile is not None:
        return _profile_body(args)
    import torch  # the paths and their tables: not needed for --help

    from bench.harness import data
    from bench.harness.loop import device_name
    from bench.harness.throughput import matmul_gflops

    _check(args)
    data_dir = data.resolve_data_dir(args.data_dir)
    data.load("mnist", data_dir)
    paths = _paths(args, data_dir)
    where = f"{args.spec.device}: {device_name(args.spec.device)}"
    print(f"{where}; threads: {torch.get_num_threads()}; {args.rounds} round(s) of {len(paths)} paths", file=sys.stderr)
    peaks: list[float] = []
    rates: list[list[float]] = [[] for _ in paths]
    for r in range(args.rounds):  # in turn, so that a slow spell of a shared machine hits every path alike
        peaks.append(matmul_gflops(args.spec.device))
        print(f"round {r + 1}: float32 matmul {peaks[-1]:.1f} GFLOP/s", file=sys.stderr)
        for (model, name, _, _, measure), got in zip(paths, rates, strict=True):
            got.append(measure())
            print(f"round {r + 1}: {model:4} {name:30} {got[-1]:10.0f} samples/s", file=sys.stderr)
    peak = statistics.median(peaks)
    rows = []
    for (model, name, flops, batch, _), got in zip(paths, rates, strict=True):
        rate = statistics.median(got)
        gflops = rate * flops / 1e9
        rows.append(
            {
                "model": model,
                "path": name,
                "samples_per_second": rate,
                "steps_per_second": rate / batch,
                "rounds": got,
                "gflops": gflops,
                "utilisation": gflops / peak,
            }
        )
    table = _with_ratios(rows)
    print(f"{where}\n{table_text(table, peak)}")
    out = Path(args.out or "results/perf.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "device": args.spec.device,
                "device_name": where,
                "matmul_gflops": peak,
                "matmul_gflops_rounds": peaks,
                "threads": torch.get_num_threads(),
                "workers": args.workers,
                "torch": torch.__version__,
                "rows": table,
            },
            indent=2,
        )
    )
    print(f"written {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return errors.main(build_parser(), _body, argv)


def _with_ratios(rows: list[dict]) -> list[dict]:
    """Each path's rate over the textbook loop's and over the single run's, for the same model."""
    for row in rows:
        same = {r["path"]: r["samples_per_second"] for r in rows if r["model"] == row["model"]}
        row["vs_textbook"] = row["samples_per_second"] / next(v for k, v in same.items() if k.startswith("textbook"))
        row["vs_single"] = row["samples_per_second"] / next(v for k, v in same.items() if k.startswith("harness 1 "))
    return rows


def table_text(rows: list[dict], peak: float) -> str:
    header = (
        f"{'model':5} {'path':30} {'samples/s':>10} {'min-max':>15} {'steps/s':>8} {'GFLOP/s':>8} {'of peak':>8} "
        f"{'x textbook':>10} {'x single':>9}"
    )
    lines = [f"matmul peak {peak:.1f} GFLOP/s; median of each path's rounds", header]
    for r in rows:
        spread = f"{min(r['rounds']):.0f}-{max(r['rounds']):.0f}"
        lines.append(
            f"{r['model']:5} {r['path']:30} {r['samples_per_second']:10.0f} {spread:>15} {r['steps_per_second']:8.1f} "
            f"{r['gflops']:8.1f} "
            f"{r['utilisation']:8.0%} {r['vs_textbook']:10.2f} {r['vs_single']:9.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
