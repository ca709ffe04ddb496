"""What a report page is built from: a suite's runs (:class:`bench.analysis.frames.SuiteRuns`), the metric they are
scored by and how its settings are named."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from activations.errors import InputError
from bench.analysis import frames, stats
from bench.config import RunSpec
from bench.report import figures
from bench.report.tables import cell, regularizer_label
from bench.tasks import ACCURACY, BASELINE, DEFAULT_TASK, TASKS, Metric

MIN_WILCOXON_PAIRS = 6  # below this Wilcoxon's exact p-value cannot reach 0.05
HIGHLIGHTED = 3  # with many activations, the best and the worst this many (mean rank over settings) get a colour
REGULARIZER_FIELDS = ("weight_decay", "dropout", "augment", "dropout_kind")


class ReportError(InputError):
    """Nothing to report (no runs of the suite in the store); the message says what to run."""


@dataclass
class Context:
    """Everything a section needs: the suite, its runs (only those), their metric and where figures go."""

    suite: str
    description: str
    specs: list[RunSpec]
    runs: pd.DataFrame  # the suite's runs, any status, with a ``regularizer`` column
    epochs: pd.DataFrame
    layers: pd.DataFrame
    missing: list[RunSpec]
    other_runs: int  # runs in the store that are not part of the suite
    duplicates: int  # older runs of the same configuration and seed (another device), not used
    command: str
    out: Path
    timing: bool
    setting_cols: list[str]  # with ``activation``, the columns that identify a configuration of this suite
    label_cols: list[str]  # setting columns shown in panel titles besides dataset/model
    detailed_regularizers: bool
    metric: Metric = ACCURACY  # what the runs are scored by (their columns, direction and unit): Metric.of(runs)
    highlight: list[str] = field(default_factory=list)  # coloured in every figure when most activations are grey
    choices: pd.DataFrame | None = None  # a tuned suite: each setting's chosen rate (spec columns, lr, edge, grid)
    tuning_runs: pd.DataFrame | None = None  # a tuned suite's tuning runs (its bundle, the sensitivity figure)
    shared_runs: pd.DataFrame | None = None  # a tuned suite's evaluation runs at the shared rates (kept as data)
    shared_source: str = ""  # where they came from, or why there are none
    before_runs: pd.DataFrame | None = None  # a tuned suite's evaluation runs as published before ([tune] before)
    before_choices: pd.DataFrame | None = None  # and the rates chosen there, from its fewer tuning seeds
    before_source: str = ""  # where they came from, or why there are none
    short_runs: pd.DataFrame | None = None  # [budget] short: the same settings' runs at a shorter budget, published
    short_source: str = ""  # where they came from, or why there are none
    own_rates: bool = False  # each activation at its own rate per setting (tuned here, or chosen before)
    highlight_why: str = f"are the {HIGHLIGHTED} best and worst by mean rank over the settings"

    @property
    def by(self) -> list[str]:
        """The analysis ``by`` columns: one group per configuration of the suite."""
        return [*self.setting_cols, "activation"]

    @property
    def tuned(self) -> bool:
        return self.choices is not None

    @property
    def pair_by(self) -> list[str] | None:
        """What makes a configuration for paired tests: every spec column, less ``lr`` where each activation trains
        at its own rate."""
        return [c for c in stats.config_columns(self.runs) if c != "lr"] if self.own_rates else None

    @property
    def activations(self) -> list[str]:
        """The suite's activations in suite order."""
        return list(dict.fromkeys(s.activation for s in self.specs))

    @property
    def references(self) -> list[str]:
        """What every activation is compared with: ReLU, then the activation the runs' task ships with (GELU in the
        transformer), each where the suite trains it."""
        kinds = self.runs["task"].fillna(DEFAULT_TASK) if "task" in self.runs.columns else [DEFAULT_TASK]
        shipped = [TASKS[t].reference for t in dict.fromkeys(kinds) if t in TASKS and TASKS[t].reference]
        return [r for r in dict.fromkeys([BASELINE, *shipped]) if r in set(self.runs["activation"])]

    @property
    def n_seeds(self) -> int:
        return len({s.seed for s in self.specs})

    @property
    def paired_test(self) -> str:
        return "ttest" if self.n_seeds < MIN_WILCOXON_PAIRS else "wilcoxon"

    def palette(self) -> figures.Palette:
        """One colour per activation, the same in every figure: ReLU black, many activations grey but a few."""
        return figures.palette(self.activations, self.highlight)

    def with_regularizer(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the ``regularizer`` label column (from weight_decay, dropout and augment)."""
        if "regularizer" in frame.columns or not set(REGULARIZER_FIELDS) <= set(frame.columns):
            return frame
        return frame.assign(regularizer=_regularizers(frame, self.detailed_regularizers))

    def label(self, frame: pd.DataFrame, drop: Iterable[str] = ()) -> pd.Series:
        """Panel titles: ``dataset/model`` plus the varying fields (except ``drop``) as ``field=value``.

        When more than two fields vary, those at their RunSpec default are left out (still unique: two settings
        differ in a field that is not at its default in at least one of them).
        """
        frame = self.with_regularizer(frame)
        cols = [c for c in self.label_cols if c not in set(drop)]
        defaults = {**RunSpec().flat(), "regularizer": "none"}

        def one(row: pd.Series) -> str:
            shown = [c for c in cols if len(cols) <= 2 or row[c] != defaults.get(c)]
            extra = ", ".join(f"{c}={cell(row[c], 'g')}" for c in shown)
            return f"{row['dataset']}/{row['model']}" + (f", {extra}" if extra else "")

        return frame.apply(one, axis=1) if len(frame) else pd.Series(dtype=object)

    def figure(self, fig: plt.Figure, name: str, caption: str) -> str:
        """Save ``fig`` as figures/<name>.png, close it, and return its markdown with the one-line caption."""
        figures.save(fig, self.out / "figures" / f"{name}.png")
        return f"![{name}](figures/{name}.png)\n\n*{caption}*\n"


def _regularizers(frame: pd.DataFrame, detailed: bool = False) -> list[str]:
    """The regularizer label of each row of ``frame``."""
    fields = zip(*(frame[c] for c in REGULARIZER_FIELDS), strict=True)
    return [regularizer_label(float(w), float(d), bool(a), detailed, k) for w, d, a, k in fields]


def _varying(frame: pd.DataFrame) -> tuple[list[str], list[str], bool]:
    """(setting columns, label columns, detailed regularizer labels) of a suite's spec frame."""
    plain = _regularizers(frame[list(REGULARIZER_FIELDS)].drop_duplicates())
    detailed = len(set(plain)) < len(plain)
    varying = [c for c in stats.SPEC_COLUMNS if c != "activation" and frame[c].nunique(dropna=False) > 1]
    if any(c in varying for c in REGULARIZER_FIELDS):
        varying = [c for c in varying if c not in REGULARIZER_FIELDS] + ["regularizer"]
        frame = frame.assign(regularizer=_regularizers(frame, detailed))
    setting = ["dataset", "model", *[c for c in varying if c not in ("dataset", "model")]]
    per_panel = frame.groupby(["dataset", "model"])
    labels = [c for c in setting[2:] if per_panel[c].nunique(dropna=False).max() > 1]
    return setting, labels, detailed


def context(
    name: str,
    description: str,
    found: frames.SuiteRuns,
    out: Path,
    command: str,
    timing: bool,
    highlight: list[str] | None = None,
    choices: pd.DataFrame | None = None,
) -> Context:
    """A report's context from runs already found (``highlight``: the coloured activations; default the extremes;
    ``choices``: a tuned suite's chosen rates). Where each activation has its own rate per setting (``choices``, or a
    suite that gives each one rate, as chosen before), ``lr`` is no setting of its own."""
    specs = frames.spec_frame(found.specs)
    own_rates = choices is not None or _one_rate_each(specs)
    setting, labels, detailed = _varying(specs.assign(lr=0.0) if own_rates else specs)
    ctx = Context(
        suite=name,
        description=description,
        specs=found.specs,
        runs=found.runs,
        epochs=found.epochs,
        layers=found.layers,
        missing=found.missing,
        other_runs=found.other_runs,
        duplicates=found.duplicates,
        command=command,
        out=out,
        timing=timing,
        setting_cols=setting,
        label_cols=labels,
        detailed_regularizers=detailed,
        choices=choices,
        own_rates=own_rates,
        metric=Metric.of(found.runs),
    )
    ctx.runs = ctx.with_regularizer(ctx.runs)
    ctx.highlight = _extremes(ctx.runs, setting, ctx.metric) if highlight is None else highlight
    return ctx


def _one_rate_each(specs: pd.DataFrame) -> bool:
    """Whether each activation has one rate in each setting and the rates differ between activations in one."""
    if specs.empty or specs["lr"].nunique() < 2:
        return False
    setting = [c for c in stats.SPEC_COLUMNS if c not in ("lr", "seed", "activation") and c in specs.columns]
    one_each = specs.groupby([*setting, "activation"], dropna=False)["lr"].nunique().eq(1).all()
    return bool(one_each and specs.groupby(setting, dropna=False)["lr"].nunique().gt(1).any())


def _extremes(runs: pd.DataFrame, setting: list[str], metric: Metric) -> list[str]:
    """The HIGHLIGHTED best and worst activations by mean rank of the test metric over the settings, ReLU aside."""
    if runs["status"].ne("ok").all() or metric.test not in runs.columns:
        return []
    order = stats.ranks(runs, metric.test, group=setting, higher_is_better=metric.higher_is_better)["activation"]
    order = [a for a in order if a != BASELINE]
    return list(dict.fromkeys(order[:HIGHLIGHTED] + order[-HIGHLIGHTED:]))
