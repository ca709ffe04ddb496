"""Run a list of RunSpecs and save each finished run to the store; runs already in the store are skipped."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from activations.errors import InputError
from bench import train
from bench.config import RunSpec
from bench.store import Store


@dataclass
class Summary:
    """What a suite did: counts by outcome and the records it produced."""

    total: int = 0
    skipped: int = 0
    elsewhere: int = 0  # claimed by another live process on the same store
    records: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.records)

    def line(self) -> str:
        return (
            f"{self.total} runs: {len(self.records)} trained ({self.count('ok')} ok, "
            f"{self.count('diverged')} diverged, {self.count('failed')} failed), {self.skipped} already in the store"
            + (f", {self.elsewhere} being trained by another process" if self.elsewhere else "")
        )


def run_one(spec: RunSpec, data_dir: str | Path | None, download: bool, progress: bool) -> train.RunResult:
    """Train one spec; an exception inside the run becomes a ``failed`` record (bad input still stops the suite)."""
    bar = tqdm(total=spec.epochs, desc=spec.label(), unit="epoch", leave=False, file=sys.stderr, disable=not progress)
    tic = time.perf_counter()

    def on_epoch(epoch: int, metrics: dict) -> None:
        bar.set_postfix(val_acc=f"{metrics['val_acc']:.4f}", loss=f"{metrics['train_loss']:.4f}")
        bar.update()

    try:
        return train.run(spec, data_dir, download=download, on_epoch=on_epoch)
    except (InputError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a model that raises, out of memory: recorded, and the suite goes on
        return train.failed(spec, exc, time.perf_counter() - tic)
    finally:
        bar.close()


def execute(
    specs: list[RunSpec],
    store: Store,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    force: bool = False,
    progress: bool = True,
    on_record: Callable[[dict], None] | None = None,
) -> Summary:
    """Train every spec whose key is not in the store (all of them with ``force``), saving each as it finishes.

    Each run is claimed in the store first, so processes sharing a store split the work between them.
    """
    done = set() if force else store.finished_keys()
    todo = [s for s in specs if s.key not in done]
    summary = Summary(total=len(specs), skipped=len(specs) - len(todo))
    with tqdm(total=len(todo), desc="suite", unit="run", file=sys.stderr, disable=not progress) as bar:
        for spec in todo:
            if not store.claim(spec.key, force=force):
                if store.has(spec.key) and not force:
                    summary.skipped += 1  # finished by another process meanwhile
                else:
                    summary.elsewhere += 1
                bar.update()
                continue
            try:
                result = run_one(spec, data_dir, download, progress)
            except BaseException:
                store.release(spec.key)
                raise
            store.save(result.record, result.epochs, result.layers)
            summary.records.append(result.record)
            if on_record is not None:
                on_record(result.record)
            bar.update()
    return summary
