"""Tasks: what a setting is. A task names its datasets (each with its metric), its networks (each with its default
arguments), its losses and the code that trains it; the harness runs that code, analysis and reports read the metric.

This module is plain data (no torch): a spec is checked against it, and analysis reads a run's metric from the run's
own record (:meth:`Metric.record`, :meth:`Metric.of`), so that a report needs no task code. A task's code is named
by ``implementation``, ``"module:attribute"`` (imported when a run trains, :mod:`bench.harness.tasks`), or is the
object itself. Register a new one with :func:`register`; the registry is a dict of name -> task, as timm's are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from activations.errors import InputError, choose

if TYPE_CHECKING:
    import pandas as pd


class TaskError(InputError):
    """An unknown task, or a dataset, model, loss or model argument that the task does not have."""


@dataclass(frozen=True)
class Metric:
    """How a task scores a run: records carry ``val_<name>``, ``test_<name>`` and ``train_<name>``.

    ``scale`` and ``unit`` say how a difference is shown (accuracy: x100, "pt"; a loss: x1 in its own unit, "nats").
    ``chance`` is what a network that learned nothing scores (ten classes: 0.1; a language model: the loss of the
    uniform distribution): the level a run that did not learn stays at.
    """

    name: str
    label: str
    higher_is_better: bool
    unit: str
    scale: float = 1.0
    chance: float = math.nan

    @property
    def val(self) -> str:
        return f"val_{self.name}"

    @property
    def test(self) -> str:
        return f"test_{self.name}"

    @property
    def train(self) -> str:
        return f"train_{self.name}"

    @property
    def best_val(self) -> str:
        return f"best_val_{self.name}"

    @property
    def sign(self) -> int:
        """+1 where higher is better, -1 where lower is: ``sign * value`` is larger for the better run."""
        return 1 if self.higher_is_better else -1

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return self.sign * a > self.sign * b

    def gap(self, train: float, test: float) -> float:
        """How much better the network does on its training data than on test (positive: it fits train better)."""
        return self.sign * (train - test)

    def diff(self, value: float) -> str:
        """A difference as the metric shows it: ``+0.81 pt``, ``-0.012 nats``."""
        return f"{self.scale * value:+.{self.decimals}f} {self.unit}"

    def interval(self, low: float, high: float) -> str:
        """``[+0.50, +1.12]``: an interval of a difference, in the unit of :meth:`diff`."""
        return f"[{self.scale * low:+.{self.decimals}f}, {self.scale * high:+.{self.decimals}f}]"

    @property
    def decimals(self) -> int:
        return 2 if self.scale >= 100 else 3

    def record(self) -> dict[str, Any]:
        """The record's columns that name this metric (see :meth:`of`)."""
        return {
            "metric": self.name,
            "metric_label": self.label,
            "metric_higher": self.higher_is_better,
            "metric_unit": self.unit,
            "metric_scale": self.scale,
            "chance": self.chance,
        }

    @classmethod
    def of(cls, runs: pd.DataFrame) -> Metric:
        """The one metric of ``runs`` (records, or a frame with :func:`fill_metric` applied): an error where the runs
        are scored by different metrics, which no table may mix. Its ``chance`` is the runs' only one, else NaN (read
        the ``chance`` column per run where datasets differ)."""
        import pandas as pd  # analysis reads runs as frames; the spec that imports this module needs no pandas

        columns = [c for c in METRIC_COLUMNS if c != "chance"]
        if runs.empty or not set(columns) <= set(runs.columns):
            return ACCURACY  # records from before the metric was recorded, which fill_metric has not seen
        kinds = runs[columns].dropna().drop_duplicates()
        if kinds.empty:
            raise TaskError("the runs carry no metric: their task is not registered in this process")
        if len(kinds) > 1:
            raise TaskError(f"the runs are scored by {len(kinds)} metrics ({', '.join(kinds['metric'])}): report apart")
        name, label, higher, unit, scale = kinds.iloc[0]
        chances = pd.to_numeric(runs["chance"]).drop_duplicates() if "chance" in runs.columns else []
        chance = float(chances.iloc[0]) if len(chances) == 1 else math.nan
        return cls(str(name), str(label), bool(higher), str(unit), float(scale), chance)


METRIC_COLUMNS = ("metric", "metric_label", "metric_higher", "metric_unit", "metric_scale", "chance")
ACCURACY = Metric("acc", "accuracy", True, "pt", 100.0)


def accuracy(classes: int) -> Metric:
    """Classification accuracy over ``classes`` classes: chance is guessing one class, 1 / classes."""
    return replace(ACCURACY, chance=1 / classes)


@dataclass(frozen=True)
class Task:
    """A kind of setting: ``datasets`` (name -> its metric), ``models`` (name -> default arguments: ``hidden`` and
    ``channels`` are RunSpec fields of their own, the rest go in ``model_args``), ``losses`` (the names it accepts)
    and ``implementation``, the code that loads, builds, trains and evaluates (:mod:`bench.harness.tasks`);
    ``check`` refuses model arguments that no network can be built from, before anything runs; ``defaults`` are the
    RunSpec fields (dataset, model, training recipe) that a run of the task takes where the command line or the suite
    does not give them (:func:`bench.config.make_spec`)."""

    name: str
    description: str
    datasets: dict[str, Metric]
    models: dict[str, dict[str, Any]]
    losses: tuple[str, ...]
    implementation: Any  # "module:attribute", or the object itself
    check: Any = None  # (model, its arguments) -> None, a TaskError where they cannot build a network; or None
    defaults: dict[str, Any] = field(default_factory=dict)  # RunSpec fields its runs take unless given (its recipe)
    reference: str = ""  # the activation its networks ship with, compared with besides ReLU (GPT-2's GELU); or ""

    def __post_init__(self) -> None:
        kinds = {replace(m, chance=math.nan) for m in self.datasets.values()}
        if len(kinds) != 1:
            raise TaskError(f"task {self.name!r}: its datasets must share one metric, not {len(kinds)}")
        if bad := [d for d, m in self.datasets.items() if not math.isfinite(m.chance)]:
            raise TaskError(f"task {self.name!r}: the metric of {', '.join(bad)} needs its chance level")
        if self.metric.name == "loss" and len(self.losses) != 1:
            raise TaskError(f"task {self.name!r} is scored by its loss: it takes one loss, not {len(self.losses)}")

    @property
    def metric(self) -> Metric:
        """The metric of every dataset of the task, without a chance level (each dataset has its own)."""
        return replace(next(iter(self.datasets.values())), chance=math.nan)

    def model_args(self, model: str, given: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        """``given`` model arguments checked against the model's own (names and types), the rest at their defaults;
        sorted (name, value) pairs. The width fields are RunSpec fields, not model arguments."""
        defaults = {k: v for k, v in self.models[model].items() if k not in WIDTH_FIELDS}
        if given and not defaults:
            raise TaskError(f"model {model!r} takes no model arguments, got {', '.join(given)}")
        for name, value in given.items():
            choose(f"argument of model {model!r}", name, defaults, TaskError)
            if not _fits(value, defaults[name]):
                raise TaskError(f"model argument {name} must be of type {type(defaults[name]).__name__}, got {value!r}")
        args = {**defaults, **{k: type(defaults[k])(v) for k, v in given.items()}}
        if self.check is not None:
            self.check(model, args)
        return tuple(sorted(args.items()))


def _fits(value: Any, default: Any) -> bool:
    """Whether ``value`` can stand for ``default``: the same type (an int where a float is wanted too; a bool is no
    number here)."""
    if isinstance(value, bool) or isinstance(default, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    return isinstance(value, type(default)) or isinstance(default, float) and isinstance(value, int)


WIDTH_FIELDS = ("hidden", "channels")
IMAGE_MODELS = {
    "mlp": {"hidden": (256, 256), "channels": ()},
    "deep_mlp": {"hidden": (64,) * 10, "channels": ()},
    "cnn": {"hidden": (128,), "channels": (16, 32)},
}
# cifar10_jpeg: the CIFAR-10 images as JPEG files (a public mirror), not the official pixels: a dataset of its own
IMAGE_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100, "cifar10_jpeg": 10}
TASKS: dict[str, Task] = {}


def register(task: Task, replace_existing: bool = False) -> Task:
    """Add ``task`` to the registry under its name (an error where the name is taken, unless ``replace_existing``)."""
    if task.name in TASKS and not replace_existing:
        raise TaskError(f"a task named {task.name!r} is registered already")
    TASKS[task.name] = task
    return task


def get(name: str) -> Task:
    """The registered task ``name``; an unknown name is one error line with the closest names."""
    return TASKS[choose("task", name, TASKS, TaskError)]


DEFAULT_TASK = "image_classification"
register(
    Task(
        name=DEFAULT_TASK,
        description="classify 28x28 or 32x32 images into 10 or 100 classes; scored by accuracy",
        datasets={name: accuracy(classes) for name, classes in IMAGE_CLASSES.items()},
        models=IMAGE_MODELS,
        losses=("cross_entropy", "mse_sigmoid", "mse_softmax"),
        implementation="bench.harness.images:IMAGE_CLASSIFICATION",
    )
)


def _check_gpt(model: str, args: dict[str, Any]) -> None:
    if bad := [k for k, v in args.items() if v <= 0]:
        raise TaskError(
            f"model {model!r}: {', '.join(bad)} must be positive, got {', '.join(str(args[k]) for k in bad)}"
        )
    if args["width"] % args["heads"]:
        raise TaskError(f"model {model!r}: width {args['width']} is not divisible by heads {args['heads']}")


# nanoGPT's "baby GPT" for a CPU (its README's shakespeare_char run on a CPU): the chance level is the loss of the
# uniform distribution over the corpus's 65 characters.
CHAR_LM_MODELS = {"gpt": {"layers": 4, "heads": 4, "width": 128, "context": 64}}
register(
    Task(
        name="char_lm",
        description="predict the next character of Tiny Shakespeare with a GPT-style decoder, the activation in its "
        "MLP; scored by the held-out loss in nats per character",
        datasets={"tinyshakespeare": Metric("loss", "loss", False, "nats", 1.0, chance=math.log(65))},
        models=CHAR_LM_MODELS,
        losses=("cross_entropy",),
        implementation="bench.harness.text:CHAR_LM",
        check=_check_gpt,
        reference="gelu",  # GPT-2's and nanoGPT's
        # nanoGPT's recipe: AdamW (betas 0.9, 0.99), weight decay 0.1 on the matrices, gradient norm clipped at 1,
        # 100 warm-up steps and a cosine to a tenth of the rate; 8 epochs of 250 steps of 12 windows = 2000 steps
        defaults={
            **{"dataset": "tinyshakespeare", "model": "gpt", "optimizer": "adamw", "lr": 1e-3, "beta2": 0.99},
            **{"weight_decay": 0.1, "clip": 1.0, "warmup": 100, "schedule": "warmup_cosine", "batch_size": 12},
            "epochs": 8,
        },
    )
)


def fill_metric(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the metric's columns of each run's task and dataset where a record lacks them (records written
    before the metric was recorded: the image classification task's, whose accuracy they carry)."""
    import pandas as pd

    if runs.empty or all(c in runs.columns and runs[c].notna().all() for c in METRIC_COLUMNS):
        return runs
    column = lambda name, default: runs[name].fillna(default) if name in runs.columns else [default] * len(runs)
    known = [
        TASKS[t].datasets[d].record() if t in TASKS and d in TASKS[t].datasets else {}
        for t, d in zip(column("task", DEFAULT_TASK), column("dataset", ""), strict=True)
    ]
    filled = pd.DataFrame(known, index=runs.index, columns=list(METRIC_COLUMNS))
    out = runs.copy()
    for column in METRIC_COLUMNS:
        out[column] = out[column].fillna(filled[column]) if column in out.columns else filled[column]
    return out


BASELINE = "relu"  # what every activation is compared with, in every task: findings, forest plots, compare
