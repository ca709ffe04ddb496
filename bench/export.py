"""``python -m bench.export``: write the store's runs, epochs and layers tables as CSV or Parquet files.

For analysis outside actbench (a notebook, R, a spreadsheet). The store is opened read-only, so a mistyped
``--store`` path is an error instead of a new empty database.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from activations.errors import InputError, Parser
from activations.errors import main as run_main
from bench.config import DEFAULT_STORE

DEFAULT_OUT = Path("results/export")
FORMATS = ("csv", "parquet")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m bench.export``."""
    parser = Parser(
        prog="python -m bench.export",
        description="Export the results store as three tables: runs (one row per run, every record field), epochs "
        "(activation, dataset, model, init, optimizer, lr, seed, key, epoch, split, metric, value) and layers (the "
        "same settings, key, epoch, layer, name, metric, value).",
    )
    parser.add_argument(
        "--store", type=Path, default=DEFAULT_STORE, help=f"SQLite store to read (default: {DEFAULT_STORE})"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"directory to write the files into (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="csv",
        help="csv (default) or parquet (needs the parquet extra: pip install -e '.[parquet]')",
    )
    parser.add_argument(
        "--tensorboard",
        type=Path,
        metavar="DIR",
        help="also write every run's curves as TensorBoard scalars into DIR, one run per readable name "
        "(needs the tensorboard extra: pip install -e '.[tensorboard]'; default: not written)",
    )
    return parser


def export(store_path: Path, out: Path, fmt: str = "csv") -> dict[Path, int]:
    """Write runs, epochs and layers of the store at ``store_path`` into ``out``; return each file's row count."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError(
                "--format parquet needs pyarrow: pip install -e '.[parquet]' (or use --format csv)"
            ) from None
    from bench.runs import results  # pandas: not needed for --help

    tables = {
        "runs": results.runs(store_path),
        "epochs": results.curves(store_path),
        "layers": results.curves(store_path, True),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, frame in tables.items():
            path = out / f"{name}.{fmt}"
            if fmt == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            written[path] = len(frame)
    except OSError as exc:
        raise InputError(f"cannot write to --out {out}: {exc.strerror or exc}; choose a writable directory") from exc
    return written


def run_name(run: dict) -> str:
    """A run's TensorBoard folder: its readable settings (``activation=elu,dataset=mnist,...``), then its key."""
    from bench.runs.results import FIRST

    name = ",".join(f"{k}={run[k]}" for k in FIRST if k in run and run[k] == run[k])  # NaN != NaN: left out
    return re.sub(r"[^\w.,=()+-]+", "_", name) + f" {run['key']}"


def tensorboard(store_path: Path, out: Path) -> int:
    """Every run's per-epoch curves as TensorBoard scalars (``split/metric`` at step ``epoch``), one folder per run
    under ``out`` named by :func:`run_name`, so runs can be filtered and overlaid by name; returns the run count."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("--tensorboard needs TensorBoard: pip install -e '.[tensorboard]'") from None
    from bench.runs import results

    runs, curves = results.runs(store_path), results.curves(store_path)
    by_key = dict(tuple(curves.groupby("key")))
    for run in runs.to_dict("records"):
        with SummaryWriter(log_dir=str(out / run_name(run))) as writer:
            for row in by_key.get(run["key"], curves.iloc[:0]).itertuples():
                writer.add_scalar(f"{row.split}/{row.metric}", row.value, row.epoch)
    return len(runs)


def _body(args: argparse.Namespace) -> int:
    for path, rows in export(args.store, args.out, args.format).items():
        print(f"{path}: {rows} rows", file=sys.stderr)
    if args.tensorboard:
        n = tensorboard(args.store, args.tensorboard)
        print(
            f"{args.tensorboard}: {n} runs as TensorBoard scalars (tensorboard --logdir {args.tensorboard})",
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return 0 when the files are written, 2 on bad input (one ``error:`` line)."""
    return run_main(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
