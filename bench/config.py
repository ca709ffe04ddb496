"""RunSpec, the frozen description of one run, and suites: TOML grids expanded into RunSpecs.

Everything that changes a run's result is a RunSpec field; its ``key`` (a hash of the canonical JSON)
is the store's primary key, so a repeated run is skipped and an interrupted suite resumes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

import activations
from activations.errors import InputError, choose, close_names
from bench import tasks

DEVICES = ("auto", "cpu", "cuda", "mps")
DROPOUT_KINDS = ("plain", "alpha")  # alpha: AlphaDropout, which keeps SELU's self-normalisation
DTYPES = ("float32", "float64")
AMPS = ("none", "bf16")
RECORD_SCHEMA = 1
DEFAULT_STORE = Path("results/actbench.sqlite")  # where runs go unless --store says otherwise
BUNDLE_FILE = "runs.jsonl.gz"  # a report folder's runs as data (bench/runs/bundle.py)
SUITES_DIR = Path(__file__).parent / "suites"


class Status(StrEnum):
    """How a run ended; stored as these strings. A diverged run is a result, a failed one is not."""

    OK = "ok"
    DIVERGED = "diverged"
    FAILED = "failed"


class ConfigError(InputError):
    """An invalid RunSpec field or suite file."""


@functools.cache
def harness_names() -> dict[str, tuple[str, ...]]:
    """Valid names per RunSpec field that every task shares, the keys of the harness's own tables (name ->
    implementation); a task's datasets, models and losses are the task's (:mod:`bench.tasks`).

    Imported on first validation, not with this module: importing the spec (or the analysis and report built on it)
    loads no harness.
    """
    from bench.harness import init, optim

    return {
        "init": tuple(init.INITS),
        "optimizer": tuple(optim.OPTIMIZERS),
        "schedule": tuple(optim.SCHEDULES),
    }


def resolve_device(device: str) -> str:
    """``auto`` becomes cuda, then mps, then cpu; an unavailable device is an input error."""
    import torch

    choose("device", device.split(":")[0], DEVICES, ConfigError)
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine (use --device cpu)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but MPS is not available on this machine (use --device cpu)")
    return device


def _widths(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.replace(" ", "").split(",") if v]
        except ValueError:
            raise ConfigError(f"{name} must be comma-separated positive integers like 512,256, got {value!r}") from None
    value = tuple(value)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ConfigError(f"{name} must be positive integers, got {value!r}")
    return value


@dataclass(frozen=True)
class RunSpec:
    """Everything that changes a run's result. Validated and normalised on construction."""

    dataset: str = ""  # "" = the task's default (its first dataset): mnist for image classification
    model: str = ""  # "" = the task's default (its first model): mlp
    hidden: tuple[int, ...] = ()  # dense hidden widths; () = the model's default
    channels: tuple[int, ...] = ()  # conv widths (cnn only); () = the model's default
    activation: str = "relu"
    init: str = "auto"
    bias_init: float = 0.0
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "cosine"
    batch_size: int = 128
    epochs: int = 10
    seed: int = 0
    weight_decay: float = 0.0
    decay_act_params: bool = False
    dropout: float = 0.0
    dropout_kind: str = "plain"  # plain (Dropout) or alpha (AlphaDropout, for SELU); "plain" when dropout is 0
    batch_norm: bool = False
    augment: bool = False
    patience: int = 0  # early stopping on the validation metric; 0 = off
    loss: str = "cross_entropy"
    device: str = "cpu"
    dtype: str = "float32"
    amp: str = "none"
    compile: bool = False
    # A plugin activation's code (module:Class or entry point): sha256 of its module's source, set from the file, so
    # that an edit is a new run. Empty for the built-in and custom activations, whose code the git SHA versions.
    activation_sha: str = field(default="", init=False)
    task: str = tasks.DEFAULT_TASK  # what the run does and how it is scored (bench.tasks): its datasets and models
    # The model's own arguments besides its widths, (name, value) pairs sorted by name; a dict is accepted. Every
    # argument the model has is filled in with its default, so that a default that changes is a new key.
    model_args: tuple[tuple[str, Any], ...] = ()
    beta2: float = 0.999  # Adam's and AdamW's second-moment decay (torch's default; nanoGPT's small models use 0.99)
    clip: float = 0.0  # the gradients' global norm is clipped to this before every step; 0 = off
    warmup: int = 0  # optimizer steps of linear warm-up (the warmup_cosine schedule)
    # training images used: a fixed subset of the training part, the same for every run (data.subset); 0 = all of it
    train_size: int = 0

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)
        task = tasks.TASKS[choose("task", self.task, tasks.TASKS, ConfigError)]
        for name, valid in (("dataset", task.datasets), ("model", task.models)):
            if getattr(self, name) == "":
                set_(name, task.defaults.get(name, next(iter(valid))))
        for name, valid in {**harness_names(), "dataset": task.datasets, "model": task.models}.items():
            choose("initializer" if name == "init" else name, getattr(self, name), valid, ConfigError)
        choose(f"loss of task {task.name!r}", self.loss, task.losses, ConfigError)
        choose("dtype", self.dtype, DTYPES, ConfigError)
        choose("amp", self.amp, AMPS, ConfigError)
        choose("dropout kind", self.dropout_kind, DROPOUT_KINDS, ConfigError)
        set_("activation", activations.canonical(self.activation))
        set_("activation_sha", activations.source_sha(self.activation))
        defaults = task.models[self.model]
        for name in WIDTH_FIELDS:
            widths = _widths(name, getattr(self, name)) or defaults.get(name, ())
            if widths and not defaults.get(name):
                takes = [m for m, args in task.models.items() if args.get(name)]
                where = f"the {', '.join(takes)} model only" if takes else f"no model of task {task.name!r}"
                raise ConfigError(f"{name} apply to {where}, not {self.model!r}")
            set_(name, widths)
        try:
            args = dict(self.model_args)
        except (TypeError, ValueError):
            raise ConfigError(f"model_args must be a table of the model's arguments, got {self.model_args!r}") from None
        try:
            set_("model_args", task.model_args(self.model, args))
        except tasks.TaskError as exc:
            raise ConfigError(str(exc)) from None
        set_("device", resolve_device(self.device))
        if self.amp != "none" and not self.device.startswith("cuda"):
            raise ConfigError(f"amp={self.amp!r} needs a CUDA device, not {self.device!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("seed", "patience", "warmup", "train_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("lr", "momentum", "weight_decay", "dropout", "bias_init", "beta2", "clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
            set_(name, float(value))
        if self.train_size and self.task != tasks.DEFAULT_TASK:
            raise ConfigError(f"train_size applies to the {tasks.DEFAULT_TASK} task only, not {self.task!r}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConfigError("weight_decay must be >= 0 and momentum in [0, 1)")
        if not 0 <= self.beta2 < 1 or self.clip < 0:
            raise ConfigError(f"beta2 must be in [0, 1) and clip >= 0, got beta2={self.beta2!r}, clip={self.clip!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.dropout == 0:
            set_("dropout_kind", "plain")  # no dropout: no kind, one key
        for name in ("nesterov", "decay_act_params", "batch_norm", "augment", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def canonical_json(self) -> str:
        """The key's text: every field, except a field added since the first store schema while at its default
        (so the keys of runs recorded before it was added stay the same)."""
        values = {k: v for k, v in self.as_dict().items() if k in KEYED_FIELDS or v != ADDED_FIELDS[k]}
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        """Stable across processes and Python versions: a hash of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def label(self) -> str:
        return f"{self.activation} {self.model}/{self.dataset} seed={self.seed}"

    def flat(self) -> dict[str, Any]:
        """Spec fields as scalars, for records and tables (:func:`flatten`)."""
        return flatten(self.as_dict())


FIELDS = tuple(f.name for f in fields(RunSpec) if f.init)  # what a user sets: command line, suite files
# The fields of the first store schema: always in a key. Every field added since is left out of a key while at its
# default (older records do not carry it), so a new field cannot change the key of a run recorded before it.
KEYED_FIELDS = (
    *("dataset", "model", "hidden", "channels", "activation", "init", "bias_init", "optimizer", "lr", "momentum"),
    *("nesterov", "schedule", "batch_size", "epochs", "seed", "weight_decay", "decay_act_params", "dropout"),
    *("batch_norm", "augment", "patience", "loss", "device", "dtype", "amp", "compile"),
)
ADDED_FIELDS = {f.name: f.default for f in fields(RunSpec) if f.name not in KEYED_FIELDS}
WIDTH_FIELDS = tasks.WIDTH_FIELDS


def flatten(values: dict[str, Any]) -> dict[str, Any]:
    """Spec field values as records and the store hold them: widths joined by commas, model arguments as JSON ("" for
    none)."""
    out = dict(values)
    out.update({name: ",".join(map(str, out[name])) for name in WIDTH_FIELDS if name in out})
    if "model_args" in out:
        out["model_args"] = json.dumps(dict(out["model_args"]), sort_keys=True) if out["model_args"] else ""
    return out


def make_spec(values: dict[str, Any]) -> RunSpec:
    """A RunSpec from a dict, naming unknown keys and bad types in the error; the fields it does not give are the
    task's defaults (its dataset, model and recipe: :attr:`bench.tasks.Task.defaults`), else RunSpec's."""
    unknown = [k for k in values if k not in FIELDS]
    if unknown:
        close = close_names(unknown[0], FIELDS, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown RunSpec field {unknown[0]!r}{hint}")
    task = values.get("task", tasks.DEFAULT_TASK)
    if isinstance(task, str) and task in tasks.TASKS:
        values = {**tasks.TASKS[task].defaults, **values}
    try:
        return RunSpec(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def _is_grid(name: str, value: Any) -> bool:
    if name in WIDTH_FIELDS:  # a list of ints is one value; a list of lists (or strings) is a grid
        return isinstance(value, list) and any(isinstance(v, list | str) for v in value)
    return isinstance(value, list)


def expand(values: dict[str, Any]) -> list[RunSpec]:
    """The cartesian product over list-valued fields; ``seeds = N`` is shorthand for ``seed = [0, ..., N-1]``."""
    values = dict(values)
    if "seeds" in values:
        n = values.pop("seeds")
        if "seed" in values:
            raise ConfigError("give either seeds (a count) or seed (a list), not both")
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ConfigError(f"seeds must be a positive integer, got {n!r}")
        values["seed"] = list(range(n))
    grid = {k: (v if _is_grid(k, v) else [v]) for k, v in values.items()}
    for k, v in grid.items():
        if not v:
            raise ConfigError(f"{k} is an empty list")
    names = list(grid)
    specs = [make_spec(dict(zip(names, combo, strict=True))) for combo in itertools.product(*grid.values())]
    return list(dict.fromkeys(specs))  # drop repeats (e.g. "swish" and "silu"), keep order


def suite_path(name_or_path: str) -> Path:
    """A suite name (``quick``) from bench/suites, or a path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"suite file {str(path)!r} does not exist")
        return path
    candidate = SUITES_DIR / f"{name_or_path}.toml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in SUITES_DIR.glob("*.toml"))
    choose("suite", name_or_path, known, ConfigError)
    raise AssertionError("unreachable")


def _document(path: Path) -> dict[str, Any]:
    """A suite file's TOML, its ``[[grid]]`` checked to be an array of tables."""
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"suite {str(path)!r} is not valid TOML: {exc}") from None
    grids = doc.get("grid", [{}])
    if not isinstance(grids, list) or not all(isinstance(g, dict) for g in grids):
        raise ConfigError(f"suite {str(path)!r}: [[grid]] must be an array of tables")
    return doc


def _expanded(path: Path, overrides: dict[str, Any] | None) -> tuple[dict[str, Any], list[tuple[dict, list[RunSpec]]]]:
    """A suite file read once: its document and, per ``[[grid]]`` table, the table and its RunSpecs (the top-level
    fields under the table's; ``description``, ``[tune]``, ``[budget]`` and ``tune_lr`` are no run fields)."""
    doc = _document(path)
    shared = {k: v for k, v in doc.items() if k not in ("description", "tune", "budget", "grid")}
    grids = doc.get("grid", [{}])
    overrides = overrides or {}
    replaced = {"seed", "seeds"} if {"seed", "seeds"} & set(overrides) else set()  # --seed replaces seeds, and back
    out = []
    for i, grid in enumerate(grids, start=1):
        values = {k: v for k, v in {**shared, **grid}.items() if k not in replaced and k != GRID_TUNE_KEY}
        try:
            out.append((grid, expand({**values, **overrides})))
        except ConfigError as exc:
            where = f" grid {i}" if len(grids) > 1 else ""
            raise ConfigError(f"suite {str(path)!r}{where}: {exc}") from None
    return doc, out


def load_suite(name_or_path: str, overrides: dict[str, Any] | None = None) -> list[RunSpec]:
    """All RunSpecs of a suite, validated before anything runs. ``overrides`` (e.g. device) apply to every grid.

    A suite's top-level keys are RunSpec fields shared by every grid; each ``[[grid]]`` table adds or
    replaces fields; list values are expanded as a cartesian product. A tuned suite's runs are its evaluation runs at
    the suite's own rate (:func:`bench.plan.load_plan` has their grids of rates).
    """
    _, grids = _expanded(suite_path(name_or_path), overrides)
    return list(dict.fromkeys(spec for _, specs in grids for spec in specs))


GRID_TUNE_KEY = "tune_lr"  # a [[grid]] table's own grid of rates (bench.plan)


def suite_description(name_or_path: str) -> str:
    return str(tomllib.loads(suite_path(name_or_path).read_text()).get("description", ""))
