"""A suite's published runs as data: ``reports/<suite>/runs.jsonl.gz``, written with its report, loaded into a store.

``python -m bench.bundle import reports/default`` loads a published suite into a store (``--store``), after which
``python -m bench.report --suite default`` rebuilds its tables and figures without training.

The format (version 1) is gzip-compressed JSON Lines, strict JSON. The first line is a header::

    {"format": "actbench-runs", "version": 1, "suite": "default", "runs": 680, "git_sha": "..."}

and each further line is one run, exactly as the store holds it::

    {"record": {...}, "nonfinite": {"train_loss": "NaN"}, "finished_at": "2026-11-24T01:35:14+00:00",
     "epochs": [[epoch, split, metric, value], ...], "layers": [[epoch, layer, name, metric, value], ...]}

JSON has no NaN or infinity: a record field that holds one is null in ``record`` and named in ``nonfinite`` with
"NaN", "Infinity" or "-Infinity"; a row value is null for NaN (as in the store) and one of those strings for an
infinity.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from activations.errors import InputError, Parser
from activations.errors import main as run_main
from bench.config import BUNDLE_FILE, DEFAULT_STORE
from bench.runs.store import EPOCH_COLUMNS, LAYER_COLUMNS, Store

FORMAT = "actbench-runs"
VERSION = 1


class BundleError(InputError):
    """A published bundle that is missing, damaged or newer than this actbench; the message says what to run."""


def _word(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _row_value(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    return value if math.isfinite(value) else _word(value)


def _rows(frame, columns: tuple[str, ...]) -> dict[str, list[list[Any]]]:
    """Long-format rows per key, without the key, values made JSON-safe."""
    out: dict[str, list[list[Any]]] = {}
    names = columns[1:]
    for row in frame[list(columns)].itertuples(index=False):
        values = [getattr(row, n) for n in names]
        values = [int(v) if n in ("epoch", "layer") else v for n, v in zip(names, values, strict=True)]
        values[-1] = _row_value(float(values[-1]))
        out.setdefault(row.key, []).append(values)
    return out


def write(store: str | Path, keys: Iterable[str], path: str | Path, suite: str, git_sha: str) -> Path:
    """Write the runs ``keys`` of ``store`` (their records, epochs and layers) to the bundle file ``path``."""
    keys = list(keys)
    path = Path(path)
    with Store(store, readonly=True) as db:
        epochs = _rows(db.epochs(keys), EPOCH_COLUMNS)
        layers = _rows(db.layers(keys), LAYER_COLUMNS)
        header = {"format": FORMAT, "version": VERSION, "suite": suite, "runs": len(keys), "git_sha": git_sha}
        lines = [json.dumps(header)]
        for key in keys:
            record = db.record(key)
            if record is None:
                raise BundleError(f"run {key} is not in {store}")
            nonfinite = {k: _word(v) for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)}
            line = {
                "record": {k: None if k in nonfinite else v for k, v in record.items()},
                "nonfinite": nonfinite,
                "finished_at": db.finished_at(key),
                "epochs": epochs.get(key, []),
                "layers": layers.get(key, []),
            }
            lines.append(json.dumps(line, allow_nan=False, separators=(",", ":")))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    text = ("\n".join(lines) + "\n").encode()
    partial.write_bytes(gzip.compress(text, compresslevel=9, mtime=0))  # mtime 0: the same runs give the same bytes
    partial.replace(path)
    return path


def bundle_path(where: str | Path) -> Path:
    """The bundle file of a published report folder (``reports/default``), or the file itself."""
    where = Path(where)
    return where / BUNDLE_FILE if where.is_dir() or not where.suffix else where


Run = tuple[dict, list[dict], list[dict], str | None]  # (record, epochs, layers, finished_at), as Store.save takes


def read(where: str | Path) -> tuple[dict[str, Any], list[Run]]:
    """The header and every run of the bundle at ``where``, all checked before anything is written anywhere."""
    path = bundle_path(where)
    if not path.is_file():
        raise BundleError(
            f"no published runs at {path}: `make bench SUITE=<suite>` (or `python -m bench.report --suite <suite>` "
            "after training it) writes them with the report"
        )
    try:
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        header = json.loads(lines[0]) if lines else None
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not a readable actbench runs bundle ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BundleError(f"{path} is not an actbench runs bundle (its first line is no {FORMAT} header)")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise BundleError(
            f"{path} has bundle version {header.get('version')}, newer than this actbench's {VERSION}: update "
            f"actbench (git pull), or make the bundle here with `make bench SUITE={header.get('suite', '<suite>')}`"
        )
    if len(lines) - 1 != header.get("runs"):
        raise BundleError(
            f"{path} is incomplete: its header announces {header.get('runs')} runs, it has {len(lines) - 1}"
        )
    runs: list[Run] = []
    for number, text in enumerate(lines[1:], start=2):
        try:
            line = json.loads(text)
            record = {**line["record"], **{k: float(v) for k, v in line["nonfinite"].items()}}
            epochs = [dict(zip(EPOCH_COLUMNS[1:], _value(r), strict=True)) for r in line["epochs"]]
            layers = [dict(zip(LAYER_COLUMNS[1:], _value(r), strict=True)) for r in line["layers"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"{path} line {number} is damaged ({type(exc).__name__}: {exc})") from None
        runs.append((record, epochs, layers, line.get("finished_at")))
    return header, runs


def _value(row: list[Any]) -> list[Any]:
    """A row read back: its last item (the value) a float again where it was written as a word."""
    return [*row[:-1], float(row[-1]) if isinstance(row[-1], str) else row[-1]]


def load(where: str | Path, store: str | Path) -> tuple[dict[str, Any], int, int]:
    """Save every run of the bundle at ``where`` that has no result there yet into the store at ``store``, which is
    opened (or created) only once the whole bundle has been read and checked.

    Returns (header, runs imported, runs skipped because the store already has a result under their key).
    """
    header, runs = read(where)
    imported = skipped = 0
    with Store(store) as db:
        for record, epochs, layers, finished_at in runs:
            if db.has(record["key"]):
                skipped += 1
                continue
            db.save(record, epochs, layers, finished_at)
            imported += 1
    return header, imported, skipped


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m bench.bundle",
        description="Load a suite's published runs (reports/<suite>/runs.jsonl.gz, written with its report) into a "
        "store, so that `python -m bench.report --suite <suite>` rebuilds the report without training.",
        epilog="example: python -m bench.bundle import reports/default && python -m bench.report --suite default",
    )
    parser.add_argument("command", choices=["import"], help="import: load the runs into the store")
    parser.add_argument("folder", help="a published report folder (reports/default) or its runs.jsonl.gz")
    parser.add_argument(
        "--store", default=str(DEFAULT_STORE), help=f"SQLite store to load into (default {DEFAULT_STORE})"
    )
    return parser


def _body(args: argparse.Namespace) -> int:
    header, imported, skipped = load(args.folder, args.store)
    print(
        f"imported {imported} runs of suite {header.get('suite')!r} (git SHA {header.get('git_sha')}) into "
        f"{args.store}; {skipped} already had a result there and were kept",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), _body, argv)
