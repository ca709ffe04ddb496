"""``python -m bench.export``: write the store's runs, epochs and layers tables as CSV or Parquet files.

For analysis outside actbench (a notebook, R, a spreadsheet). The store is opened read-only, so a mistyped
``--store`` path is an error instead of a new empty database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from activations.errors import InputError, Parser
from activations.errors import main as run_main
from bench.store import DEFAULT_PATH, Store

DEFAULT_OUT = Path("results/export")
FORMATS = ("csv", "parquet")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m bench.export``."""
    parser = Parser(
        prog="python -m bench.export",
        description="Export the results store as three long-format tables: runs (one row per run, every record "
        "field), epochs (key, epoch, split, metric, value) and layers (key, epoch, layer, name, metric, value).",
    )
    parser.add_argument(
        "--store", type=Path, default=DEFAULT_PATH, help=f"SQLite store to read (default: {DEFAULT_PATH})"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"directory to write the files into (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="csv",
        help="csv (default) or parquet (needs pyarrow: pip install pyarrow)",
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
            raise InputError("--format parquet needs pyarrow: pip install pyarrow (or use --format csv)") from None
    with Store(store_path, readonly=True) as store:
        tables = {"runs": store.runs(), "epochs": store.epochs(), "layers": store.layers()}
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


def _body(args: argparse.Namespace) -> int:
    for path, rows in export(args.store, args.out, args.format).items():
        print(f"{path}: {rows} rows", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return 0 when the files are written, 2 on bad input (one ``error:`` line)."""
    return run_main(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
