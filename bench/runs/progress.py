"""What a suite shows while it trains: on a terminal a suite bar and one bar per active run; otherwise plain lines (a
run started, a run ended, the time left)."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping

from tqdm import tqdm

from bench import tasks
from bench.config import RunSpec


def label(record: dict) -> str:
    """A record's run as ``RunSpec.label`` writes it."""
    return f"{record['activation']} {record['model']}/{record['dataset']} seed={record['seed']}"


class Progress:
    """On a terminal: the suite bar and one bar per active run. Otherwise plain lines, no cursor movement: one when
    a run starts and one when it ends, with the count done and the expected time left."""

    def __init__(
        self, specs: list[RunSpec], enabled: bool, expected: Mapping[str, float] | None = None, workers: int = 1
    ) -> None:
        self.enabled, self.tty = enabled, enabled and sys.stderr.isatty()
        self.total, self.done, self.tic = len(specs), 0, time.perf_counter()
        self.waiting = {s.key for s in specs}  # not finished yet
        self.metrics = {s.key: tasks.get(s.task).datasets[s.dataset] for s in specs}  # what each run is scored by
        self.expected, self.workers = expected, workers
        self.suite = tqdm(total=self.total, desc="suite", unit="run", file=sys.stderr, disable=not self.tty)
        self.bars: dict[str, tqdm] = {}

    def say(self, line: str) -> None:
        if self.tty:
            tqdm.write(line, file=sys.stderr)
        elif self.enabled:
            print(line, file=sys.stderr, flush=True)

    def started(self, spec: RunSpec) -> None:
        if self.tty:
            used = {b.pos for b in self.bars.values()}
            pos = next(p for p in range(1, len(used) + 2) if p not in used and -p not in used)
            self.bars[spec.key] = tqdm(
                total=spec.epochs, desc=spec.label(), unit="epoch", leave=False, position=pos, file=sys.stderr
            )
        else:
            self.say(f"[{self.done}/{self.total}] start {spec.label()}")

    def epoch(self, key: str, epoch: int, metrics: dict) -> None:
        bar, val = self.bars.get(key), self.metrics[key].val
        if bar is not None:
            bar.set_postfix({val: f"{metrics[val]:.4f}", "loss": f"{metrics['train_loss']:.4f}"}, refresh=False)
            bar.update(epoch - bar.n)

    def left(self) -> float:
        """Seconds until the suite ends: from each waiting run's expected time where the caller knows it (a plan),
        else from the mean time of the runs finished so far."""
        if self.expected is not None:
            return sum(self.expected.get(key, 0.0) for key in self.waiting) / self.workers
        return (time.perf_counter() - self.tic) / self.done * (self.total - self.done)

    def finished(self, key: str, record: dict | None = None) -> None:
        """Run ``key`` left the queue: trained (its record) or taken by another process (None)."""
        self.done += 1
        self.waiting.discard(key)
        self.suite.update()
        if record is None:
            return
        bar = self.bars.pop(key, None)
        if bar is not None:
            bar.close()
        left, test = self.left(), self.metrics[key].test
        score, seconds = record.get(test, math.nan), record.get("wall_seconds", math.nan)
        self.say(
            f"[{self.done}/{self.total}] {record['status']:>8}  {label(record)}  {test}={score:.4f}  {seconds:.1f}s"
            + (f"  ({record['error']})" if record.get("error") else "")
            + (f"  ~{left / 60:.0f} min left" if self.done < self.total else "")
        )

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.suite.close()
