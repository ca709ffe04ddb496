"""``python -m bench.run``: train networks with one or more activations and record every run in the store."""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import activations
from activations import errors
from bench import tasks
from bench.config import DEFAULT_STORE, DEVICES, FIELDS, ConfigError, RunSpec, Status, expand, harness_names
from bench.plan import Plan, load_plan, setting_id
from bench.runs.store import Store

if TYPE_CHECKING:
    from bench.runs.executors import Summary

NAMES = "--list shows the valid names"  # the name tables live with their torch code: --help does not load them

EXAMPLES = """\
examples:
  python -m bench.run --activation elu
  python -m bench.run --activation relu,gelu,"leaky_relu(negative_slope=0.1)" --dataset fashion_mnist --seeds 3
  python -m bench.run --model cnn --activation tanh --init normal,lecun --epochs 5
  python -m bench.run --suite quick --json
  python -m bench.run --suite my_grid.toml --device cuda
  python -m bench.run --suite default --executor ray --ray-address ray://head:10001

Runs already in the store (same RunSpec key) that ended ok or diverged are skipped, so rerunning a command
resumes it; a failed run is trained again, and --force trains them all again. The key of a module:Class
activation includes a hash of its module's source: an edit trains the new version. Read results with
`python -m bench.export` or the reports.
"""


def split_list(text: str) -> list[str]:
    """Split on commas that are not inside parentheses: ``relu,hardtanh(min_val=-2, max_val=2)``."""
    items, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    items.append(current.strip())
    return [i for i in items if i]


def build_parser() -> argparse.ArgumentParser:
    p = errors.Parser(
        prog="python -m bench.run",
        description="Train identical networks with each activation (paired by seed) and record every run in an "
        "SQLite store. Options that take several values (comma-separated or repeated) form a grid.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_argument_group(
        "what to train (defaults: relu, mnist, mlp 256-256, auto init, adam 1e-3 cosine, batch 128, 10 epochs; "
        "a task's own defaults, shown by --list, come first)"
    )
    what.add_argument(
        "--activation",
        "-a",
        action="append",
        metavar="SPEC",
        help="activation spec, repeatable or comma-separated: elu, 'elu(alpha=0.5)', pkg.module:Class",
    )
    what.add_argument(
        "--task", metavar="NAMES", help=f"what the network does and how it is scored (default {tasks.DEFAULT_TASK})"
    )
    what.add_argument("--dataset", metavar="NAMES", help=f"dataset(s) of the task (default mnist; {NAMES})")
    what.add_argument("--model", metavar="NAMES", help=f"network(s) of the task (default mlp; {NAMES})")
    what.add_argument(
        "--model-args", metavar="ARGS", help="the model's own arguments, e.g. n_layer=4,n_head=4 (default: its own)"
    )
    what.add_argument("--hidden", metavar="WIDTHS", help="dense hidden widths, e.g. 512,256 (default: the model's)")
    what.add_argument("--channels", metavar="WIDTHS", help="cnn conv widths, e.g. 32,64 (default 16,32)")
    what.add_argument(
        "--init",
        metavar="NAMES",
        help=f"initializer(s) (default auto: the activation's variance-keeping gain; {NAMES})",
    )
    what.add_argument("--bias-init", metavar="X", help="bias value (default 0)")
    what.add_argument(
        "--batch-norm", action="store_const", const="true", help="batch norm before each activation (default off)"
    )
    how = p.add_argument_group("how to train")
    how.add_argument("--optimizer", metavar="NAMES", help=f"optimizer(s) (default adam; {NAMES})")
    how.add_argument("--lr", metavar="X", help="learning rate(s), e.g. 1e-3 or 1e-3,1e-2 (default 1e-3)")
    how.add_argument("--momentum", metavar="X", help="for the momentum optimizer (default 0.9)")
    how.add_argument("--nesterov", action="store_const", const="true", help="Nesterov momentum (default off)")
    how.add_argument("--schedule", metavar="NAMES", help=f"learning-rate schedule(s) (default cosine; {NAMES})")
    how.add_argument("--beta2", metavar="X", help="adam's and adamw's second-moment decay (default 0.999)")
    how.add_argument(
        "--clip", metavar="X", help="clip the gradients' global norm to X before each step (default 0: off)"
    )
    how.add_argument("--warmup", metavar="N", help="steps of linear warm-up of the warmup_cosine schedule (default 0)")
    how.add_argument("--batch-size", metavar="N", help="examples per step (default 128)")
    how.add_argument("--epochs", metavar="N", help="passes over the training set (default 10)")
    how.add_argument(
        "--train-size",
        metavar="N",
        help="train on a fixed subset of N training images, the same in every run (default 0: all)",
    )
    how.add_argument("--loss", metavar="NAMES", help=f"loss(es) (default cross_entropy; {NAMES})")
    how.add_argument("--seeds", metavar="N", type=int, help="seeds 0..N-1 (default: seed 0)")
    how.add_argument("--seed", metavar="LIST", help="explicit seeds, e.g. 0,1,2")
    reg = p.add_argument_group("regularizers")
    reg.add_argument("--weight-decay", metavar="X", help="L2 on weights, never biases or norm parameters (default 0)")
    reg.add_argument(
        "--decay-act-params",
        action="store_const",
        const="true",
        help="also apply weight decay to an activation's learnable parameters (default off)",
    )
    reg.add_argument("--dropout", metavar="P", help="dropout after each dense hidden activation (default 0)")
    reg.add_argument(
        "--dropout-kind",
        metavar="KIND",
        help="plain (default) or alpha: AlphaDropout, which keeps SELU's self-normalisation",
    )
    reg.add_argument(
        "--augment",
        action="store_const",
        const="true",
        help="shifts/rotations (digits), crop+flip (CIFAR) (default off)",
    )
    reg.add_argument(
        "--patience",
        metavar="N",
        help="early stopping after N epochs without a better validation metric (default 0: off)",
    )
    where = p.add_argument_group("where")
    where.add_argument(
        "--device", metavar="NAME", help=f"{', '.join(DEVICES)} (default auto: cuda, then mps, then cpu)"
    )
    where.add_argument("--dtype", metavar="NAME", help="float32 (default) or float64")
    where.add_argument("--amp", metavar="NAME", help="bf16 autocast on CUDA (default none)")
    where.add_argument("--compile", action="store_const", const="true", help="torch.compile the model (default off)")
    where.add_argument("--data-dir", help="dataset folder (default: $ACTBENCH_DATA, else ~/.cache/actbench/data)")
    where.add_argument(
        "--download", action="store_true", help="download missing datasets into the data folder (default off)"
    )
    where.add_argument("--store", default=str(DEFAULT_STORE), help=f"SQLite store (default {DEFAULT_STORE})")
    where.add_argument(
        "--executor", default="local", help="local (a pool of worker processes; the default) or ray (Ray tasks)"
    )
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local worker processes (default: the usable CPU cores / --threads-per-run, on CUDA too)",
    )
    where.add_argument(
        "--threads-per-run",
        "--cpus-per-run",
        dest="threads",
        type=int,
        default=1,
        metavar="T",
        help="torch threads of each run, and CPUs of each Ray task (default 1; it changes float rounding)",
    )
    where.add_argument(
        "--ray-address", metavar="ADDR", help="join this Ray cluster, e.g. ray://head:10001 (default: a local Ray)"
    )
    where.add_argument(
        "--gpus-per-run", type=float, default=0.25, metavar="F", help="GPU share per Ray task on CUDA (default 0.25)"
    )
    p.add_argument(
        "--suite",
        help="a suite name from bench/suites (quick, default, ...) or a .toml file; "
        "options given here override the suite's",
    )
    p.add_argument("--force", action="store_true", help="train again runs that already have a result in the store")
    p.add_argument(
        "--dry-run", action="store_true", help="list the runs (key, done or todo) and exit; needs no store or data"
    )
    p.add_argument(
        "--list", action="store_true", help="print the tasks (datasets, models, metric) and every option's valid names"
    )
    p.add_argument("--json", action="store_true", help="one JSON record per finished run on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _convert(name: str, text: str) -> Any:
    default = getattr(RunSpec(), name) if name != "device" else ""
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {text!r}") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {text!r}") from None
    return text


def grid_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """RunSpec fields given on the command line; comma-separated values become lists (a grid)."""
    values: dict[str, Any] = {}
    if args.activation:
        values["activation"] = [s for chunk in args.activation for s in split_list(chunk)]
    for name in FIELDS:
        text = getattr(args, name, None)
        if name == "activation" or text is None:
            continue
        if name in ("hidden", "channels"):
            values[name] = text
            continue
        if name == "model_args":
            values[name] = _model_args(text)
            continue
        items = [_convert(name, t) for t in split_list(text)]
        values[name] = items if len(items) > 1 else items[0]
    if args.seeds is not None:
        values["seeds"] = args.seeds
    return values


def _model_args(text: str) -> dict[str, Any]:
    """``n_layer=4,dropout=0.1`` as a dict of Python literals (a bare word is a string)."""
    out = {}
    for item in split_list(text):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"model arguments are name=value pairs separated by commas, got {item!r}")
        try:
            out[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[name.strip()] = value.strip()
    return out


def _args(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in values.items() if v)


def _list() -> int:
    """Each task with its datasets, models, losses and metric; then the names every task shares."""
    for task in tasks.TASKS.values():
        metric = task.metric
        better = "higher" if metric.higher_is_better else "lower"
        print(f"task {task.name}: {task.description}")
        print(f"  datasets: {', '.join(f'{d} (chance {m.chance:.4g})' for d, m in task.datasets.items())}")
        print(f"  models: {', '.join(f'{m} ({args})' if (args := _args(a)) else m for m, a in task.models.items())}")
        print(f"  losses: {', '.join(task.losses)}")
        print(f"  metric: {metric.label} ({metric.name}, {better} is better; differences in {metric.unit})")
        if task.defaults:
            print(f"  defaults: {_args(task.defaults)}")
    for field, names in {**harness_names(), "activation": tuple(activations.names())}.items():
        print(f"{field}: {', '.join(names)}")
    return 0


def _warn(specs: list[RunSpec]) -> None:
    """Known-bad combinations: a warning line each, not an error (a suite may study them on purpose)."""
    from bench.checks import known_bad

    for line in known_bad(specs):
        print(f"warning: {line}", file=sys.stderr)


def _dry_run(plan: Plan, store: str) -> int:
    """Every run with ``done`` or ``todo``: a store that does not exist yet means every run is to do. A tuned suite
    lists its tuning runs (``tune``), then its evaluation runs (``eval``): at the chosen rate once their setting's
    tuning runs are all in the store, else at the suite's own rate with "rate not chosen yet"."""
    done: set[str] = set()
    stored = None
    if Path(store).exists():
        with Store(store, readonly=True) as s:
            done, stored = s.finished_keys(), s.runs()

    def show(spec: RunSpec, phase: str = "", note: str = "") -> None:
        status = "done" if spec.key in done else "todo"
        print(f"{spec.key}  {status}  {phase}{spec.label()}{note}  {spec.canonical_json()}")

    if not plan.tuned:
        for spec in plan.specs:
            show(spec)
        return 0
    from bench.analysis import tuning  # pandas: only a tuned suite's dry run needs it

    now = tuning.state(plan, stored)
    for spec in now.tuning:
        show(spec, "tune  ", f" lr={spec.lr:g}")
    for spec in now.ready:
        show(spec, "eval  ", f" lr={spec.lr:g} (chosen)")
    for spec in now.waiting:
        print(f"{'-' * 16}  todo  eval  {spec.label()} (rate not chosen yet: tuning runs missing)")
    return 0


def train(plan: Plan, store: Store, say: Callable[[str], None], **options: Any) -> Summary:
    """Train a plan: its runs; for a tuned suite the tuning runs first, then one rate past a grid's edge where the
    best is at it, then the evaluation runs at each setting's chosen rate."""
    from bench.runs.executors import execute

    if not plan.tuned:
        return execute(plan.specs, store, **options)
    from bench.analysis import tuning

    base = plan.tuning()
    say(f"tuning: {len(base)} runs (each setting's grid of rates x tuning seeds {list(plan.tune_seeds)})")
    summary = execute(base, store, **options)
    now = tuning.state(plan, store.runs())
    if now.extra:
        more = [s for s in now.tuning if s not in set(base)]
        edges = len({setting_id(s) for s in plan.specs if s.key in now.extra})
        say(f"tuning: {edges} settings are best at their grid's edge: {len(more)} runs one step past it")
        summary.add(execute(more, store, **options))
        now = tuning.state(plan, store.runs())
    moved = int(now.chosen["lr"].nunique()) if len(now.chosen) else 0
    say(f"evaluation: {len(now.ready)} runs at the chosen rates ({moved} distinct rates chosen)")
    if now.waiting:
        say(f"{len(now.waiting)} evaluation runs wait for their rate: their setting's tuning runs are not in the store")
    summary.add(execute(now.ready, store, **options))
    summary.total += len(now.waiting)
    return summary


def _body(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    values = grid_from_args(args)
    values.setdefault("device", "auto")
    plan = load_plan(args.suite, overrides=values) if args.suite else Plan(expand(values))
    if args.dry_run:
        return _dry_run(plan, args.store)
    from bench.harness.loop import check_data
    from bench.runs.executors import check, sendable  # torch: not needed for --help, --list or --dry-run

    specs = plan.specs
    check(args.executor, args.threads, args.workers, args.gpus_per_run, args.ray_address)
    sendable(specs)
    for spec in dict.fromkeys(s.activation for s in specs):  # a broken activation: now, before any store exists
        activations.check(spec)
    _warn(specs)
    check_data(specs, args.data_dir, args.download)  # bad data folder: fail now, not after an hour
    with Store(args.store) as store:

        def on_record(record: dict) -> None:
            if args.json:
                print(errors.json_line(record), flush=True)

        def say(line: str) -> None:
            if not args.quiet:
                print(line, file=sys.stderr, flush=True)

        try:
            summary = train(
                plan,
                store,
                say,
                data_dir=args.data_dir,
                download=args.download,
                force=args.force,
                progress=not args.quiet,
                on_record=on_record,
                executor=args.executor,
                workers=args.workers,
                threads=args.threads,
                ray_address=args.ray_address,
                gpus_per_run=args.gpus_per_run,
            )
        except KeyboardInterrupt:
            print(
                f"\ninterrupted: every finished run is saved in {args.store}; run the same command again to resume",
                file=sys.stderr,
            )
            return 130
        except errors.InputError:
            raise
        except Exception as exc:
            if args.debug:
                raise
            print(
                f"error: {type(exc).__name__}: {exc} (finished runs are saved in {args.store}; --debug for details)",
                file=sys.stderr,
            )
            return 1
    print(f"{summary.line()}; store: {args.store}", file=sys.stderr)
    return 1 if summary.count(Status.FAILED) else 0  # a diverged run is a result; a failed one is not


def main(argv: list[str] | None = None) -> int:
    return errors.main(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
