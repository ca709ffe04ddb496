"""A suite as a plan: its evaluation runs and, for a suite with a ``[tune]`` table, each one's grid of learning rates
and the tuning seeds (the choice itself is :mod:`bench.analysis.tuning`'s)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import GRID_TUNE_KEY, ConfigError, RunSpec, _expanded, suite_path

# a [tune] table: the default grid of rates, the tuning seeds, the runs at shared rates, the runs published before
TUNE_KEYS = ("lr", "seeds", "shared", "before")


@dataclass
class Plan:
    """A suite: its evaluation runs and, where it has a ``[tune]`` table, each one's learning-rate grid and the tuning
    seeds. An evaluation run trains at the rate chosen from its tuning runs (:mod:`bench.analysis.tuning`), on
    validation only; tuning seeds are not evaluation seeds."""

    specs: list[RunSpec]  # the evaluation runs, each at the suite's own rate until one is chosen
    grids: dict[str, tuple[float, ...]] = field(default_factory=dict)  # evaluation spec key -> its grid of rates
    tune_seeds: tuple[int, ...] = ()
    shared: str | None = None  # a bundle of ``specs`` at the suite's own (shared) rates, to compare verdicts with
    before: str | None = None  # this suite's bundle as published before, on fewer tuning seeds: choices, verdicts
    short: str | None = None  # a bundle of the same settings at fewer epochs ([budget] short), to compare rankings with

    @property
    def tuned(self) -> bool:
        return bool(self.grids)

    def tuning(self, extra: dict[str, tuple[float, ...]] | None = None) -> list[RunSpec]:
        """The tuning runs, each once: every evaluation run's setting at every rate of its grid (and of ``extra``,
        rates added past an edge, by the same key) and every tuning seed; none for a suite that does not tune."""
        if not self.tuned:
            return []
        extra = extra or {}
        rates = {key: (*grid, *extra.get(key, ())) for key, grid in self.grids.items()}
        runs = (dataclasses.replace(s, lr=r, seed=t) for s in self.specs for r in rates[s.key] for t in self.tune_seeds)
        return list(dict.fromkeys(runs))


def setting_id(spec: RunSpec) -> str:
    """What a tuning choice is made for: the spec without its rate and seed (a key of the spec with both fixed)."""
    return dataclasses.replace(spec, lr=1.0, seed=0).key


def _rates(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise ConfigError(f"{where} must be a list of at least 2 learning rates, got {value!r}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 and math.isfinite(v) for v in value):
        raise ConfigError(f"{where} must hold positive finite numbers, got {value!r}")
    if len(set(value)) < len(value):
        raise ConfigError(f"{where} repeats a rate: {value!r}")
    return tuple(sorted(float(v) for v in value))


def _tune_table(
    doc: dict[str, Any], path: Path
) -> tuple[tuple[float, ...] | None, tuple[int, ...], str | None, str | None]:
    """A suite's ``[tune]`` table, checked: its default grid of rates (None if each grid gives its own), its seeds,
    the bundle of its runs at the shared rates and the bundle published before (paths from the working directory, or
    None)."""
    tune = doc.pop("tune")
    if not isinstance(tune, dict):
        raise ConfigError(f"suite {str(path)!r}: [tune] must be a table with lr and seeds")
    if unknown := [k for k in tune if k not in TUNE_KEYS]:
        raise ConfigError(f"suite {str(path)!r}: unknown [tune] key {unknown[0]!r} (valid: {', '.join(TUNE_KEYS)})")
    seeds = tune.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(t, int) and t >= 0 for t in seeds):
        raise ConfigError(f"suite {str(path)!r}: [tune] seeds must be a list of non-negative integers, got {seeds!r}")
    grid = _rates(tune["lr"], f"suite {str(path)!r}: [tune] lr") if "lr" in tune else None
    bundles = {name: tune.get(name) for name in ("shared", "before")}
    for name, where in bundles.items():
        if where is not None and (not isinstance(where, str) or not where.strip()):
            raise ConfigError(f"suite {str(path)!r}: [tune] {name} must be the path of a runs bundle, got {where!r}")
    return grid, tuple(dict.fromkeys(seeds)), bundles["shared"], bundles["before"]


def _budget_table(doc: dict[str, Any], path: Path) -> str | None:
    """A suite's ``[budget]`` table, checked: the bundle of its settings' runs at a shorter budget (or None)."""
    budget = doc.get("budget", {})
    if not isinstance(budget, dict) or [k for k in budget if k != "short"]:
        raise ConfigError(f"suite {str(path)!r}: [budget] must be a table with one key, short, got {budget!r}")
    short = budget.get("short")
    if short is not None and (not isinstance(short, str) or not short.strip()):
        raise ConfigError(f"suite {str(path)!r}: [budget] short must be the path of a runs bundle, got {short!r}")
    return short


def load_plan(name_or_path: str, overrides: dict[str, Any] | None = None) -> Plan:
    """A suite as a :class:`Plan`: its evaluation runs (:func:`load_suite`) and, with a ``[tune]`` table, each one's
    grid of rates (``tune_lr`` in its ``[[grid]]`` table, else ``[tune]``'s ``lr``) and the tuning seeds."""
    path = suite_path(name_or_path)
    doc, grids = _expanded(path, overrides)
    short = _budget_table(doc, path)
    if "tune" not in doc:
        return Plan(list(dict.fromkeys(spec for _, specs in grids for spec in specs)), short=short)
    if "lr" in (overrides or {}):
        raise ConfigError(f"suite {str(path)!r} chooses each activation's learning rate ([tune]): drop --lr")
    default, seeds, shared, before = _tune_table(doc, path)
    plan = Plan([], {}, seeds, shared=shared, short=short, before=before)
    for i, (grid, specs) in enumerate(grids, start=1):
        where = f"suite {str(path)!r} grid {i}: {GRID_TUNE_KEY}"
        rates = _rates(grid[GRID_TUNE_KEY], where) if GRID_TUNE_KEY in grid else default
        if rates is None:
            raise ConfigError(f"suite {str(path)!r} grid {i}: no rates to tune (give [tune] lr or {GRID_TUNE_KEY})")
        plan.specs += specs
        plan.grids.update(dict.fromkeys((s.key for s in specs), rates))
    if overlap := sorted({s.seed for s in plan.specs} & set(seeds)):
        raise ConfigError(f"suite {str(path)!r}: tuning seeds {overlap} are also evaluation seeds; choose others")
    plan.specs = list(dict.fromkeys(plan.specs))
    return plan
