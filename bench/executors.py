"""Run a list of RunSpecs and save each finished run to the store; runs already in the store are skipped.

With ``ensemble_runs``, runs that differ only in seed and initializer are trained together as one batched model
(``bench.ensemble``); it is off by default, since on a 2-core CPU it did not pay for itself end to end. The
``local`` executor trains in this process; ``ray`` sends each run or group to a Ray task (``bench.cluster``).
Either way only this process writes to the store.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from activations.errors import InputError
from bench import ensemble, train
from bench.config import RunSpec
from bench.store import Store

EXECUTORS = ("local", "ray")
Claim = Callable[[list[RunSpec]], list[RunSpec]]


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


def train_group(
    specs: list[RunSpec], data_dir: str | Path | None, download: bool, progress: bool
) -> list[train.RunResult]:
    """Train ``specs`` (one run, or compatible runs batched by ``ensemble.run``); one result per spec.

    An exception inside a run becomes a ``failed`` record; an exception inside a batched group trains its
    members again one by one, so one bad member cannot fail the others. Bad input still stops the suite.
    """
    if len(specs) > 1:
        bars = {s.key: _bar(s, progress) for s in specs}
        try:
            return ensemble.run(specs, data_dir, download=download, on_epoch=lambda s, e, m: _tick(bars[s.key], m))
        except (InputError, KeyboardInterrupt):
            raise
        except Exception:
            pass
        finally:
            for bar in bars.values():
                bar.close()
    return [_train_one(s, data_dir, download, progress) for s in specs]


def _bar(spec: RunSpec, progress: bool) -> tqdm:
    return tqdm(total=spec.epochs, desc=spec.label(), unit="epoch", leave=False, file=sys.stderr, disable=not progress)


def _tick(bar: tqdm, metrics: dict) -> None:
    bar.set_postfix(val_acc=f"{metrics['val_acc']:.4f}", loss=f"{metrics['train_loss']:.4f}")
    bar.update()


def _train_one(spec: RunSpec, data_dir: str | Path | None, download: bool, progress: bool) -> train.RunResult:
    bar = _bar(spec, progress)
    tic = time.perf_counter()
    try:
        result = train.run(spec, data_dir, download=download, on_epoch=lambda e, m: _tick(bar, m))
        result.record["ensemble_size"] = 1
        return result
    except (InputError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a model that raises, out of memory: recorded, and the suite goes on
        return train.failed(spec, exc, time.perf_counter() - tic)
    finally:
        bar.close()


def _local(
    groups: list[list[RunSpec]], claim: Claim, data_dir: str | Path | None, download: bool, progress: bool
) -> Iterator[tuple[list[RunSpec], list[train.RunResult]]]:
    for group in groups:
        mine = claim(group)
        if mine:
            yield mine, train_group(mine, data_dir, download, progress)


def check(executor: str, cpus_per_run: float = 1, gpus_per_run: float = 0.25, ray_address: str | None = None) -> None:
    """InputError for an unknown executor, bad Ray task resources, an unreachable Ray head, or no Ray installed."""
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        from bench import cluster

        cluster.check(cpus_per_run, gpus_per_run, ray_address)


def execute(
    specs: list[RunSpec],
    store: Store,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    force: bool = False,
    progress: bool = True,
    on_record: Callable[[dict], None] | None = None,
    ensemble_runs: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0.25,
) -> Summary:
    """Train every spec whose key is not in the store (all of them with ``force``), saving each as it finishes.

    Each run is claimed in the store just before it starts, so processes sharing a store split the work
    between them; a claim is released if the run does not finish (Ctrl-C, an error that stops the suite).
    """
    check(executor, cpus_per_run, gpus_per_run, ray_address)
    done = set() if force else store.finished_keys()
    todo = [s for s in specs if s.key not in done]
    summary = Summary(total=len(specs), skipped=len(specs) - len(todo))
    groups = ensemble.group(todo) if ensemble_runs else [[s] for s in todo]
    unsaved: set[str] = set()
    with tqdm(total=len(todo), desc="suite", unit="run", file=sys.stderr, disable=not progress) as bar:

        def claim(group: list[RunSpec]) -> list[RunSpec]:
            mine = []
            for spec in group:
                if store.claim(spec.key, force=force):
                    mine.append(spec)
                    unsaved.add(spec.key)
                    continue
                if store.has(spec.key) and not force:
                    summary.skipped += 1  # finished by another process meanwhile
                else:
                    summary.elsewhere += 1
                bar.update()
            return mine

        if executor == "ray":
            from bench import cluster

            finished = cluster.run(groups, claim, data_dir, download, ray_address, cpus_per_run, gpus_per_run)
        else:
            finished = _local(groups, claim, data_dir, download, progress)
        try:
            for _, results in finished:
                for result in results:
                    store.save(result.record, result.epochs, result.layers)
                    unsaved.discard(result.record["key"])
                    summary.records.append(result.record)
                    if on_record is not None:
                        on_record(result.record)
                    bar.update()
        finally:
            finished.close()  # stops the executor's work in flight (a generator's cleanup)
            for key in unsaved:
                store.release(key)
    return summary
