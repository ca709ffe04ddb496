"""``python -m bench.compare SPEC [SPEC ...]``: your activation against every activation of a published suite.

Trains only the given activations on every configuration and seed of the suite (default ``default``), plus ReLU as
a *control*, in this environment, and compares them with the suite's published runs (``reports/<suite>/
runs.jsonl.gz``, :mod:`bench.bundle`), which are not trained again. If the control equals the published ReLU bit for
bit (every result and every per-epoch and per-layer value), this environment reproduces the published one and every
pair is of one environment; if not, the drift is reported and ReLU's runs in the comparison are the control's.

Writes ``reports/compare-<name>/``: per setting the activation's rank among the published ones with a bootstrap
interval, its paired difference to each (forest plot, Holm within the setting), its curves over the field, its
property card beside ReLU's, GELU's and SiLU's, and its cost and memory against the control.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import activations
from activations import errors
from bench.config import DEFAULT_STORE, DEVICES, ConfigError, RunSpec, Status, load_suite, suite_path
from bench.plan import Plan, load_plan
from bench.run import split_list, train
from bench.runs import bundle
from bench.runs.store import Store
from bench.tasks import BASELINE, Metric

if TYPE_CHECKING:
    import pandas as pd

    from bench.analysis import frames

# What a run's result is, besides its metric's columns (result_fields): equal in two runs of one spec and seed when
# their environments compute alike. Timings and provenance are left out, and so is the per-epoch training time (split
# "train", metric "seconds").
RESULT_FIELDS = (
    "status",
    "epochs_run",
    "diverged_epoch",
    "best_epoch",
    "best_val_loss",
    "train_loss",
    "val_loss",
    "test_loss",
    "parameters",
    "saved_bytes_per_sample",
)


def result_fields(metric: Metric) -> tuple[str, ...]:
    """Every field of a run's result: RESULT_FIELDS and the columns of the metric it is scored by."""
    return (*RESULT_FIELDS, metric.best_val, f"{metric.test}_at_best", metric.train, metric.val, metric.test)


EXAMPLES = """\
examples:
  python -m bench.compare mypkg.acts:MyAct
  python -m bench.compare mypkg.acts:MyAct "mypkg.acts:MyAct(beta=2.0)" --workers 2
  python -m bench.compare mypkg.acts:MyAct --suite default --out reports/compare-myact

The published runs of the suite come from reports/<suite>/runs.jsonl.gz (written by `make bench SUITE=<suite>`).
Runs already in the store are skipped; editing the activation's module trains the new version.
"""


def build_parser() -> argparse.ArgumentParser:
    p = errors.Parser(
        prog="python -m bench.compare",
        description="Train your activation(s) on every configuration and seed of a published suite, plus ReLU as a "
        "control, and write a report that ranks them among the suite's published activations.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", nargs="+", metavar="SPEC", help="activation spec: pkg.module:Class, 'Class(k=1)', or a name")
    p.add_argument("--suite", default="default", help="the published suite to compare with (default: default)")
    p.add_argument(
        "--published", metavar="DIR", help="its published report folder (default: reports/<suite>, from this folder)"
    )
    p.add_argument(
        "--store", default=str(DEFAULT_STORE), help=f"SQLite store for the new runs (default {DEFAULT_STORE})"
    )
    p.add_argument("--out", metavar="DIR", help="report folder (default: reports/compare-<name>)")
    p.add_argument("--data-dir", help="dataset folder (default: $ACTBENCH_DATA, else ~/.cache/actbench/data)")
    p.add_argument(
        "--download", action="store_true", help="download missing datasets into the data folder (default off)"
    )
    p.add_argument("--device", default="auto", help=f"{', '.join(DEVICES)} (default auto: cuda, then mps, then cpu)")
    p.add_argument(
        "--workers", type=int, metavar="N", help="local worker processes (default: the usable CPU cores, on CUDA too)"
    )
    p.add_argument("--no-timing", action="store_true", help="skip measuring the activation's time alone against ReLU")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def report_name(specs: list[str]) -> str:
    """``compare-<name>``: the class or activation names of the specs, lower case, joined by '+'."""
    names = [re.sub(r"[^a-z0-9_.-]+", "_", activations.parse_spec(s)[0].split(":")[-1].lower()) for s in specs]
    return "compare-" + "+".join(dict.fromkeys(names))


def _same(a: object, b: object) -> bool:
    """Equal, or both missing (None in one frame is NaN in another whose column also holds numbers)."""
    import pandas as pd

    return bool(pd.isna(a) and pd.isna(b)) or a == b


def drift(published: frames.SuiteRuns, control: frames.SuiteRuns):
    """One row per control run paired with the published run of its spec and seed: both values of the test metric,
    their absolute difference, and ``identical`` (every result field and per-epoch and per-layer value equal)."""
    import pandas as pd

    from bench.analysis import frames

    metric = Metric.of(control.runs)
    on = [c for c in frames.MATCH_COLUMNS if c != "activation_sha"]
    pairs = control.runs.merge(published.runs, on=on, suffixes=("", "_published"))

    def rows(frame, key: str):
        part = frame[frame["key"].eq(key)].drop(columns="key")
        part = part[~(part.get("metric", "").eq("seconds"))]  # per-epoch training time: a timing, not a result
        return part.reset_index(drop=True)

    identical = []
    for _, pair in pairs.iterrows():
        here, there = pair["key"], pair["key_published"]
        fields = all(_same(pair.get(f), pair.get(f"{f}_published")) for f in result_fields(metric) if f in control.runs)
        same_rows = all(
            rows(mine, here).equals(rows(theirs, there))
            for mine, theirs in ((control.epochs, published.epochs), (control.layers, published.layers))
        )
        identical.append(fields and same_rows)
    setting = pairs["dataset"] + "/" + pairs["model"]
    return pd.DataFrame(
        {
            "setting": setting,
            "seed": pairs["seed"],
            "published": pairs[f"{metric.test}_published"],
            "control": pairs[metric.test],
            "abs_diff": (pairs[metric.test] - pairs[f"{metric.test}_published"]).abs(),
            "identical": identical,
        }
    )


def _published(where: Path, suite: str, folder: Path) -> tuple[dict, frames.SuiteRuns, pd.DataFrame | None]:
    """The suite's published runs, loaded from its bundle into a store in ``folder``; for a tuned suite its evaluation
    runs at their chosen rates (the bundle carries the tuning runs that choose them) and the choices."""
    from bench.report.command import evaluation
    from bench.runs import results

    path = folder / "published.sqlite"
    header, _, _ = bundle.load(where, path)
    if header.get("suite") != suite_path(suite).stem:
        raise bundle.BundleError(
            f"{bundle.bundle_path(where)} holds suite {header.get('suite')!r}, not {suite!r}; pass --published DIR"
        )
    specs, choices, _ = evaluation(load_plan(suite), path)
    found = results.suite_runs(specs, path)
    if BASELINE not in set(found.runs["activation"]):
        raise bundle.BundleError(f"{bundle.bundle_path(where)} has no {BASELINE} runs to compare with")
    return header, found, choices


def _expected(todo: list, published: frames.SuiteRuns) -> dict[str, float]:
    """Each run's expected seconds: per setting, a control run takes the published ReLU runs' mean wall time, a new
    activation's run the mean over every published activation's runs (its own cost is not known yet)."""
    runs = published.runs
    field = runs.groupby(["dataset", "model"])["wall_seconds"].mean()
    relu = runs[runs["activation"].eq(BASELINE)].groupby(["dataset", "model"])["wall_seconds"].mean()
    return {
        s.key: float((relu if s.activation == BASELINE else field).get((s.dataset, s.model), field.mean()))
        for s in todo
    }


def _plan(plan: Plan, control: list[RunSpec], expected: dict[str, float], workers: int) -> str:
    """The plan line: the runs to train and the expected time (with tuning: without the rates past an edge)."""
    runs = [*plan.tuning(), *plan.specs, *control]
    minutes = sum(expected.get(s.key, 0.0) for s in runs) / workers / 60
    tuned = f"{len(plan.tuning())} tuning runs, then " if plan.tuned else ""
    return (
        f"{len(runs)} runs to train on {workers} worker(s) ({tuned}{len(plan.specs)} evaluation runs and "
        f"{len(control)} control runs): about {minutes:.1f} min, from the published runs' times (ReLU's for the "
        "control, the average activation's for yours)"
        + ("; one tuning run more per setting whose best rate is at its grid's edge" if plan.tuned else "")
    )


def _body(args: argparse.Namespace) -> int:
    import pandas as pd

    from bench.analysis import tuning
    from bench.harness.loop import check_data
    from bench.report import compare_page
    from bench.report.command import evaluation
    from bench.runs import results
    from bench.runs.executors import default_workers, execute, sendable

    names = list(dict.fromkeys(activations.canonical(s) for chunk in args.spec for s in split_list(chunk)))
    field = set(s.activation for s in load_suite(args.suite))
    for name in names:  # bad input: before any store is opened or anything trains
        activations.check(name)
        if name in field:
            raise ConfigError(
                f"{name!r} is one of suite {args.suite!r}'s activations: its published results are in "
                f"reports/{suite_path(args.suite).stem}/README.md"
            )
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    plan = load_plan(args.suite, overrides={"activation": names, "device": args.device})  # tuned as the suite is
    where = Path(args.published or Path("reports") / suite_path(args.suite).stem)
    out = Path(args.out or Path("reports") / report_name(names))
    check_data(plan.specs, args.data_dir, args.download)  # each task's data, before anything trains
    sendable(plan.specs)
    with tempfile.TemporaryDirectory(prefix="actbench-published-") as folder:
        header, published, choices = _published(where, args.suite, Path(folder))
        # the control: ReLU's published evaluation runs (at its chosen rates in a tuned suite), trained here
        control_specs = [
            dataclasses.replace(s, device=args.device) for s in published.specs if s.activation == BASELINE
        ]
        with Store(args.store) as store:
            pub = {r["key"]: r for r in published.runs[["key", "started_at", "host"]].to_dict("records")}
            # The published runs themselves (imported into this store with bench.bundle): no control; train again.
            imported = [
                s for s in control_specs if s.key in pub and _started(store.record(s.key)) == _started(pub[s.key])
            ]
            candidates = tuning.candidates(plan) + control_specs
            todo = [s for s in candidates if not store.has(s.key) or s in imported]
            workers = args.workers or default_workers(todo or candidates, 1)
            expected = _expected(candidates, published)
            if not args.quiet:
                print(_plan(plan, control_specs, expected, workers), file=sys.stderr)
            options = dict(
                data_dir=args.data_dir,
                download=args.download,
                progress=not args.quiet,
                workers=workers,
                expected=expected,
            )

            def say(line: str) -> None:
                if not args.quiet:
                    print(line, file=sys.stderr, flush=True)

            try:
                summary = train(plan, store, say, **options)
                summary.add(execute(control_specs, store, **options))
                if imported:
                    summary.records += execute(imported, store, force=True, **options).records
                    summary.skipped -= len(imported)
            except KeyboardInterrupt:
                print(
                    f"\ninterrupted: every finished run is saved in {args.store}; run the same command again to "
                    "resume (no report was written)",
                    file=sys.stderr,
                )
                return 130
        new_specs, new_choices, _ = evaluation(plan, args.store)  # at the rates chosen here, in a tuned suite
        here = results.suite_runs(new_specs, args.store)
        control = results.suite_runs(control_specs, args.store)
        command = " ".join(
            ["python -m bench.compare", *args.spec, *(["--suite", args.suite] * (args.suite != "default"))]
        )
        readme = compare_page.build(
            names,
            suite_path(args.suite).stem,
            header,
            published,
            here,
            control,
            drift(published, control),
            out,
            command,
            timing=not args.no_timing,
            choices=None if choices is None else pd.concat([choices, new_choices], ignore_index=True),
        )
    print(f"{summary.line()}; store: {args.store}", file=sys.stderr)
    print(f"report written to {readme}", file=sys.stderr)
    return 1 if summary.count(Status.FAILED) else 0


def _started(record: dict | None) -> tuple:
    return (None, None) if record is None else (record.get("started_at"), record.get("host"))


def main(argv: list[str] | None = None) -> int:
    return errors.main(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
