"""``python -m bench.report --suite NAME``: a suite's runs in the store rendered as its page (:mod:`bench.report.page`),
with ``runs.jsonl.gz`` beside it (the runs themselves, :mod:`bench.runs.bundle`). The only part of the report that
opens a store."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from activations import errors
from bench import provenance
from bench.analysis import frames, tuning
from bench.config import BUNDLE_FILE, DEFAULT_STORE, ConfigError, RunSpec, suite_description, suite_path
from bench.plan import Plan, load_plan, setting_id
from bench.report import page
from bench.report.context import Context, ReportError, context
from bench.runs import bundle, results


def evaluation(plan: Plan, store: str | Path) -> tuple[list[RunSpec], pd.DataFrame | None, pd.DataFrame | None]:
    """A suite's runs as its report shows them. A tuned suite's evaluation runs are at each setting's chosen rate
    (those whose rate is not chosen yet at the suite's own, so that they are listed as missing); with them come the
    choices (one row per evaluation spec: its spec columns, ``edge`` and ``grid``) and its tuning runs in the store
    (in the bundle and the sensitivity figure, not in the tables of the evaluation runs)."""
    if not plan.tuned:
        return plan.specs, None, None
    if not Path(store).exists():  # nothing chosen yet: every evaluation run missing, as the store will say
        return plan.specs, pd.DataFrame(columns=["activation", "lr", "edge", "grid"]), None
    stored = results.runs(store)
    now = tuning.state(plan, stored)
    by_setting = now.chosen.set_index("setting")
    rows = [
        {**s.flat(), "edge": by_setting.at[setting_id(s), "edge"], "grid": by_setting.at[setting_id(s), "grid"]}
        for s in now.ready
    ]
    choices = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["activation", "lr", "edge", "grid"])
    return now.ready + now.waiting, choices, frames.match(now.tuning, stored)[0]


def load(suite: str, store: str | Path, out: str | Path, command: str | None, timing: bool) -> Context:
    """The suite's specs and exactly its runs from the store; InputError if there is nothing to report."""
    plan = load_plan(suite)
    specs, choices, tuning_runs = evaluation(plan, store)
    found = results.suite_runs(specs, store)
    found.other_runs -= 0 if tuning_runs is None else len(tuning_runs)
    if found.runs.empty:
        raise ReportError(
            f"the store {store} has no runs of suite {suite!r} ({len(plan.specs)} runs defined); "
            f"run `python -m bench.run --suite {suite} --store {store}` first"
        )
    name = suite_path(suite).stem
    command = command or f"python -m bench.run --suite {suite}"
    ctx = context(name, suite_description(suite), found, Path(out) / name, command, timing, choices=choices)
    ctx.tuning_runs = tuning_runs
    if plan.shared:
        ctx.shared_runs, ctx.shared_source = shared(plan)
    if plan.before:
        ctx.before_runs, ctx.before_choices, ctx.before_source = before(plan)
    if plan.short:
        ctx.short_runs, ctx.short_source = short(plan)
    return ctx


def published(path: str, table: str, specs: Callable[[dict, Path], list[RunSpec]]) -> tuple[pd.DataFrame | None, str]:
    """The runs ``specs(header, store)`` of the bundle at ``path`` that a suite's ``table`` names, read through a
    scratch store as an import would, and where they came from; (None, why) where the bundle cannot be read."""
    try:
        with tempfile.TemporaryDirectory() as scratch:
            store = Path(scratch) / "published.sqlite"
            header, _, _ = bundle.load(path, store)
            runs = results.suite_runs(specs(header, store), store).runs
    except (bundle.BundleError, ConfigError) as exc:
        return None, f"the suite's {table} table names `{path}`, which cannot be read ({exc})"
    return runs, f"`{path}` (suite `{header.get('suite')}`, git SHA `{header.get('git_sha', 'not recorded')}`)"


def shared(plan: Plan) -> tuple[pd.DataFrame | None, str]:
    """A tuned suite's evaluation runs at its shared rates, from the bundle its ``[tune]`` table names."""
    return published(plan.shared, "[tune]", lambda header, store: plan.specs)


def before(plan: Plan) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str]:
    """A tuned suite's evaluation runs and choices as published before (``[tune] before``), each setting's rate
    chosen from the tuning seeds that bundle has (the seeds of its runs that are not evaluation seeds)."""
    chosen: list[pd.DataFrame] = []

    def specs(header: dict, store: Path) -> list[RunSpec]:
        seeds = set(results.runs(store)["seed"]) - {s.seed for s in plan.specs}
        found, choices, _ = evaluation(dataclasses.replace(plan, tune_seeds=tuple(sorted(seeds))), store)
        chosen.append(choices)
        return found

    runs, source = published(plan.before, "[tune]", specs)
    return runs, chosen[0] if chosen and runs is not None else None, source


def short(plan: Plan) -> tuple[pd.DataFrame | None, str]:
    """The evaluation runs of the suite whose bundle ``[budget] short`` names (at their chosen rates where it tunes),
    as its own report reads them."""
    return published(plan.short, "[budget]", lambda header, store: evaluation(load_plan(header["suite"]), store)[0])


def build(
    suite: str,
    store: str | Path = DEFAULT_STORE,
    out: str | Path = "reports",
    command: str | None = None,
    timing: bool = True,
    sections: Iterable[page.Section] = page.SECTIONS,
) -> Path:
    """Write the report of ``suite`` into ``out/<suite>/`` (its page and its runs as a bundle); the README path."""
    ctx = load(suite, store, out, command, timing)
    readme = page.write(ctx, sections)
    tuning_keys = [] if ctx.tuning_runs is None else ctx.tuning_runs["key"].tolist()
    keys = [*ctx.runs["key"], *tuning_keys]  # a tuned suite's tuning runs travel with it: its choices re-made
    bundle.write(store, keys, ctx.out / BUNDLE_FILE, ctx.suite, provenance.git_sha())
    return readme


def build_parser() -> errors.Parser:
    p = errors.Parser(
        prog="python -m bench.report",
        description="Write reports/<suite>/README.md, figures/*.png, results.csv, summary.csv and runs.jsonl.gz (the "
        "runs, to import elsewhere with python -m bench.bundle) from the runs of a suite in the store.",
    )
    p.add_argument("--suite", required=True, help="a suite name from bench/suites or a .toml file")
    p.add_argument("--store", default=str(DEFAULT_STORE), help=f"SQLite store (default {DEFAULT_STORE})")
    p.add_argument("--out", default="reports", help="reports folder (default reports/)")
    p.add_argument("--command", help="the command that produced the runs (default: python -m bench.run --suite NAME)")
    p.add_argument("--no-timing", action="store_true", help="skip measuring each activation's cost relative to ReLU")
    return p


def _body(args: argparse.Namespace) -> int:
    readme = build(args.suite, args.store, args.out, args.command, timing=not args.no_timing)
    print(f"report written to {readme}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (2 for bad input, with one ``error:`` line on stderr)."""
    return errors.main(build_parser(), _body, argv)
