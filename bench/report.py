"""``python -m bench.report --suite NAME``: a suite's runs rendered as README.md, seaborn figures and CSV files.

Reads only the suite's runs from the store (matched on every RunSpec field except device and compile, which do not
change a result), takes every number from :mod:`bench.analysis` and writes ``reports/<suite>/README.md``,
``figures/*.png``, ``results.csv`` (one row per run) and ``summary.csv`` (one row per configuration). The README is
a list of sections (:data:`SECTIONS`): each is a function of a :class:`Context` returning markdown ("" = nothing to
show); the seed-claims suite's verdicts (:mod:`bench.claims`) are one of them.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import MaxNLocator

import activations
from activations.errors import InputError
from bench import analysis, claims, train
from bench.config import FIELDS, RunSpec, load_suite, suite_description, suite_path
from bench.run import Parser
from bench.store import DEFAULT_PATH, Store

BASELINE = "relu"
CLAIMS_SUITE = "seed-claims"  # the suite whose report has a verdict per textbook claim (bench/claims.py)
MIN_WILCOXON_PAIRS = 6  # below this Wilcoxon's exact p-value cannot reach 0.05
MATCH_COLUMNS = tuple(f for f in FIELDS if f not in ("device", "compile"))
REGULARIZER_FIELDS = ("weight_decay", "dropout", "augment")
MAX_LAYER_PANELS = 6
MAX_LISTED = 20
DPI = 110
GALLERY_X = torch.linspace(-5.0, 5.0, 401, dtype=torch.float64)


class ReportError(InputError):
    """Nothing to report (no runs of the suite in the store); the message says what to run."""


def regularizer_label(weight_decay: float, dropout: float, augment: bool, detailed: bool = False) -> str:
    """none, L2, dropout, augment, all (all three) or a '+' combination; ``detailed`` adds the values."""
    parts = [
        *([f"L2 {weight_decay:g}" if detailed else "L2"] if weight_decay > 0 else []),
        *([f"dropout {dropout:g}" if detailed else "dropout"] if dropout > 0 else []),
        *(["augment"] if augment else []),
    ]
    if not parts:
        return "none"
    return "all" if len(parts) == 3 and not detailed else "+".join(parts)


def _fmt(value: object, spec: str = ".4g") -> str:
    """A table cell: floats formatted, NaN/None as an empty cell, pipes escaped."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, float | np.floating):
        return format(float(value), spec)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    """A GitHub markdown table of ``frame`` (index dropped); ``formats`` maps columns to format specs."""
    formats = formats or {}
    head = "| " + " | ".join(_fmt(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(_fmt(v, formats.get(c, ".4g")) for c, v in zip(frame.columns, row, strict=True)) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([head, rule, *rows])


def _interval(frame: pd.DataFrame, mean: str = "mean", low: str = "ci_low", high: str = "ci_high") -> pd.Series:
    """``mean [low, high]`` strings (no interval with one seed, empty without a mean)."""

    def cell(row: pd.Series) -> str:
        if pd.isna(row[mean]):
            return ""
        ci = f" [{row[low]:.4f}, {row[high]:.4f}]" if pd.notna(row[low]) else ""
        return f"{row[mean]:.4f}{ci}"

    return frame.apply(cell, axis=1) if len(frame) else pd.Series(dtype=object)


def _wrap(title: str, width: int = 48) -> str:
    """A long panel title on several lines."""
    return textwrap.fill(title, width)


def _seconds(total: float) -> str:
    """``1 h 16 min (4587 s)``."""
    hours, rest = divmod(int(round(total)), 3600)
    return f"{hours} h {rest // 60} min ({total:.0f} s)" if hours else f"{rest // 60} min {rest % 60} s ({total:.0f} s)"


@dataclass
class Context:
    """Everything a section needs: the suite, its runs (only those) and where figures go."""

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

    @property
    def by(self) -> list[str]:
        """The analysis ``by`` columns: one group per configuration of the suite."""
        return [*self.setting_cols, "activation"]

    @property
    def activations(self) -> list[str]:
        """The suite's activations in suite order."""
        return list(dict.fromkeys(s.activation for s in self.specs))

    @property
    def n_seeds(self) -> int:
        return len({s.seed for s in self.specs})

    @property
    def paired_test(self) -> str:
        return "ttest" if self.n_seeds < MIN_WILCOXON_PAIRS else "wilcoxon"

    def palette(self) -> dict[str, tuple]:
        """One colour per activation, the same in every figure."""
        acts = self.activations
        colors = sns.color_palette("tab10" if len(acts) <= 10 else "husl", len(acts))
        return dict(zip(acts, colors, strict=True))

    def with_regularizer(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the ``regularizer`` label column (from weight_decay, dropout and augment)."""
        if "regularizer" in frame.columns or not set(REGULARIZER_FIELDS) <= set(frame.columns):
            return frame
        labels = [
            regularizer_label(float(w), float(d), bool(a), self.detailed_regularizers)
            for w, d, a in zip(*(frame[c] for c in REGULARIZER_FIELDS), strict=True)
        ]
        return frame.assign(regularizer=labels)

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
            extra = ", ".join(f"{c}={_fmt(row[c], 'g')}" for c in shown)
            return f"{row['dataset']}/{row['model']}" + (f", {extra}" if extra else "")

        return frame.apply(one, axis=1) if len(frame) else pd.Series(dtype=object)

    def figure(self, fig: plt.Figure, name: str, caption: str) -> str:
        """Save ``fig`` as figures/<name>.png, close it, and return its markdown with the one-line caption."""
        path = self.out / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        return f"![{name}](figures/{name}.png)\n\n*{caption}*\n"


# ----------------------------------------------------------------------------------------------------------------
# Loading


def _spec_frame(specs: list[RunSpec]) -> pd.DataFrame:
    """One row per spec: key, the flat spec fields, and ``_spec``, its index in the suite."""
    return pd.DataFrame([{"key": s.key, **s.flat()} for s in specs]).assign(_spec=range(len(specs)))


def _varying(frame: pd.DataFrame) -> tuple[list[str], list[str], bool]:
    """(setting columns, label columns, detailed regularizer labels) of a suite's spec frame."""
    triples = frame[list(REGULARIZER_FIELDS)].drop_duplicates()
    plain = [regularizer_label(float(w), float(d), bool(a)) for w, d, a in triples.itertuples(index=False)]
    detailed = len(set(plain)) < len(plain)
    varying = [c for c in analysis.SPEC_COLUMNS if c != "activation" and frame[c].nunique(dropna=False) > 1]
    if any(c in varying for c in REGULARIZER_FIELDS):
        varying = [c for c in varying if c not in REGULARIZER_FIELDS] + ["regularizer"]
        frame = frame.assign(
            regularizer=[
                regularizer_label(float(w), float(d), bool(a), detailed)
                for w, d, a in frame[list(REGULARIZER_FIELDS)].itertuples(index=False)
            ]
        )
    setting = ["dataset", "model", *[c for c in varying if c not in ("dataset", "model")]]
    per_panel = frame.groupby(["dataset", "model"])
    labels = [c for c in setting[2:] if per_panel[c].nunique(dropna=False).max() > 1]
    return setting, labels, detailed


def load(suite: str, store: str | Path, out: str | Path, command: str | None, timing: bool) -> Context:
    """The suite's specs and exactly its runs from the store; InputError if there is nothing to report."""
    specs = load_suite(suite)
    name = suite_path(suite).stem
    with Store(store, readonly=True) as db:
        stored = db.runs()
        wanted = _spec_frame(specs)
        if stored.empty or not set(MATCH_COLUMNS) <= set(stored.columns):
            matched = stored.iloc[0:0].assign(_spec=pd.Series(dtype=int))
        else:
            # Compare as the store holds them: JSON scalars, widths joined by commas.
            matched = stored.merge(wanted[[*MATCH_COLUMNS, "_spec"]], on=list(MATCH_COLUMNS), how="inner")
        if matched.empty:
            raise ReportError(
                f"the store {store} has no runs of suite {suite!r} ({len(specs)} runs defined); "
                f"run `python -m bench.run --suite {suite} --store {store}` first"
            )
        n_matched = len(matched)
        matched = matched.drop_duplicates(subset="_spec", keep="last")  # runs() is oldest first: keep the latest
        keys = matched["key"].tolist()
        epochs, layers = db.epochs(keys), db.layers(keys)
    found = set(matched["_spec"])
    setting, labels, detailed = _varying(wanted)
    ctx = Context(
        suite=name,
        description=suite_description(suite),
        specs=specs,
        runs=pd.DataFrame(),
        epochs=epochs,
        layers=layers,
        missing=[s for i, s in enumerate(specs) if i not in found],
        other_runs=len(stored) - n_matched,
        duplicates=n_matched - len(matched),
        command=command or f"python -m bench.run --suite {suite}",
        out=Path(out) / name,
        timing=timing,
        setting_cols=setting,
        label_cols=labels,
        detailed_regularizers=detailed,
    )
    ctx.runs = ctx.with_regularizer(matched.sort_values("_spec").drop(columns="_spec").reset_index(drop=True))
    return ctx


# ----------------------------------------------------------------------------------------------------------------
# Plot helpers


def _band(data: pd.DataFrame, x: str, color: object = None, label: str | None = None, **_: object) -> None:
    """Mean line with its confidence band on the current axes (FacetGrid.map_dataframe)."""
    data = data.sort_values(x)
    ax = plt.gca()
    ax.plot(data[x], data["mean"], color=color, label=label, marker="o" if len(data) < 12 else None, ms=3, lw=1.4)
    ax.fill_between(data[x], data["ci_low"], data["ci_high"], color=color, alpha=0.15, lw=0)


def _facets(data: pd.DataFrame, ctx: Context, x: str, ylabel: str, xlabel: str | None = None, **kw) -> sns.FacetGrid:
    """One panel per setting, one coloured mean-and-band line per activation."""
    panels = data["setting"].nunique()
    present = [a for a in ctx.activations if a in set(data["activation"])]
    grid = sns.FacetGrid(
        data,
        col="setting",
        col_wrap=min(3, panels) if panels > 1 else None,
        hue="activation",
        hue_order=present,
        palette=ctx.palette(),
        sharey=False,
        sharex=False,
        height=3.4,
        aspect=1.35,
        **kw,
    )
    grid.map_dataframe(_band, x=x)
    grid.set_titles("{col_name}")
    for ax in grid.axes.flat:
        ax.set_title(_wrap(ax.get_title()))
    if x == "epoch":
        for ax in grid.axes.flat:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.set_axis_labels(xlabel or x, ylabel)
    return grid


def _finish(grid: sns.FacetGrid) -> plt.Figure:
    """Lay out the panels (wrapped titles included), then add the activation legend on the right."""
    grid.tight_layout()
    grid.add_legend(title="activation", ncol=1 if len(grid.hue_names or ()) <= 16 else 2)
    return grid.figure


# ----------------------------------------------------------------------------------------------------------------
# Sections: each returns markdown, or "" when the suite has no data for it.


def section_header(ctx: Context) -> str:
    """Title, description, command, code version, packages, machine, wall time and dates."""
    runs = ctx.runs

    def values(column: str) -> str:
        if column not in runs.columns:
            return "not recorded"
        counts = runs[column].fillna("not recorded").astype(str).value_counts()
        if len(counts) == 1:
            return f"`{counts.index[0]}`"
        listed = ", ".join(f"`{v}` ({n} runs)" for v, n in counts.items())
        return f"**several:** {listed}"

    shas = runs["git_sha"].dropna().unique() if "git_sha" in runs.columns else []
    sha_note = " (results may mix code versions)" if len(shas) > 1 else ""
    dirty = any(str(s).endswith("-dirty") for s in shas)
    packages = ", ".join(
        f"{label} {values(col)}"
        for label, col in (("actbench", "actbench_version"), ("torch", "torch_version"), ("python", "python_version"))
    )
    wall = pd.to_numeric(runs.get("wall_seconds", pd.Series(dtype=float)), errors="coerce")
    started = runs["started_at"].dropna().sort_values() if "started_at" in runs.columns else pd.Series(dtype=str)
    dates = f"{started.iloc[0]} to {started.iloc[-1]} (run start times)" if len(started) else "not recorded"
    rows = [
        ("Command", f"`{ctx.command}`"),
        ("Git SHA", values("git_sha") + sha_note + (" (uncommitted changes)" if dirty else "")),
        ("Packages", packages),
        ("Device", f"{values('device')} {values('device_name')}"),
        ("Threads", values("threads")),
        ("Host", values("host")),
        ("Wall time", f"{_seconds(float(np.nansum(wall)))}, sum of wall_seconds over {len(runs)} runs"),
        ("Dates", dates),
        (
            "Report",
            f"written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.report --suite {ctx.suite}` "
            f"at git SHA `{train.git_sha()}`",
        ),
    ]
    table = markdown_table(pd.DataFrame(rows, columns=["", ""]))
    description = f"{ctx.description}\n\n" if ctx.description else ""
    return f"# actbench report: suite `{ctx.suite}`\n\n{description}{table}\n"


def section_claims(ctx: Context) -> str:
    """The seed-claims suite only: per textbook claim, the experiment, the measured numbers and a verdict."""
    if ctx.suite != CLAIMS_SUITE:
        return ""
    verdicts = claims.evaluate(ctx.runs, ctx.epochs, ctx.layers)
    if not verdicts:
        return ""
    overview = pd.DataFrame([{"#": v.number, "claim": v.claim, "verdict": f"**{v.verdict}**"} for v in verdicts])
    parts = [
        "## Verdicts",
        "",
        "Each claim, tested on this suite's runs. Numbers are means over seeds with [min, max]; a difference counts "
        "only if it has the same sign in every seed (runs are paired by seed). Diverged runs are counted in "
        "*runs ok*, never averaged. *depends* says on what.",
        "",
        markdown_table(overview),
        "",
    ]
    for v in verdicts:
        parts += [
            f"### {v.number}. {v.claim[0].upper()}{v.claim[1:]}",
            "",
            f"**Experiment.** {v.experiment}",
            "",
            markdown_table(v.table),
            "",
            f"**Verdict: {v.verdict}.** {v.reason}",
            "",
        ]
    return "\n".join(parts)


def section_coverage(ctx: Context) -> str:
    """How many of the suite's runs are in the store; never silently partial."""
    total, missing = len(ctx.specs), len(ctx.missing)
    status = ctx.runs["status"].value_counts()
    counts = ", ".join(f"{status.get(s, 0)} {s}" for s in ("ok", "diverged", "failed"))
    lines = ["## Runs", ""]
    if missing:
        lines.append(
            f"**{missing} of the suite's {total} runs are missing from the store**: this report covers "
            f"{total - missing} runs ({counts}). Run `{ctx.command}` again to complete it (finished runs are skipped)."
        )
        listed = _spec_frame(ctx.missing[:MAX_LISTED])
        listed["setting"] = ctx.label(listed)
        more = f"\n\n... and {missing - MAX_LISTED} more." if missing > MAX_LISTED else ""
        table = markdown_table(listed[["key", "setting", "activation", "seed"]])
        lines += ["", "Missing runs:", "", table + more]
    else:
        lines.append(f"All {total} runs of the suite are in the store ({counts}); none is missing.")
    if ctx.other_runs:
        lines += ["", f"The store holds {ctx.other_runs} other runs that are not part of this suite; they are ignored."]
    if ctx.duplicates:
        lines += [
            "",
            f"{ctx.duplicates} older runs repeat a configuration and seed of the suite (another device or compile "
            "setting); only the latest of each is used.",
        ]
    seeds = ctx.n_seeds
    lines += ["", f"Seeds per configuration: {seeds}. Intervals are 95 % Student t intervals over seeds."]
    return "\n".join(lines) + "\n"


def section_curves(ctx: Context) -> str:
    """Validation loss and accuracy per epoch, mean and band over seeds, one panel per setting."""
    parts = []
    for metric, what, better in (("loss", "Validation loss", "lower"), ("acc", "Validation accuracy", "higher")):
        data = analysis.curves(ctx.epochs, ctx.runs, split="val", metric=metric, by=ctx.by)
        if data.empty:
            continue
        data = data.assign(setting=ctx.label(data))
        grid = _facets(data, ctx, x="epoch", ylabel=f"validation {metric}")
        caption = (
            f"{what} per epoch (epoch 0 = before training), mean over seeds with 95 % band, ok runs only: "
            f"{better} is better; a curve that turns back is over-fitting, a wide band is seed-to-seed noise."
        )
        parts.append(ctx.figure(_finish(grid), f"curves_val_{metric}", caption))
    if not parts:
        return "## Convergence\n\nNo run finished ok, so there are no curves.\n"
    return "## Convergence\n\n" + "\n".join(parts)


def _summary(ctx: Context) -> pd.DataFrame:
    """Final test accuracy per configuration with its interval, counts and best/tied mark (also summary.csv)."""
    table = analysis.summarize(ctx.runs, "test_acc", by=ctx.by)
    table["mark"] = analysis.best_marks(table, group=ctx.setting_cols)
    table["setting"] = ctx.label(table)
    order = {a: i for i, a in enumerate(ctx.activations)}
    table["_order"] = table["activation"].map(order)
    table = table.sort_values(["setting", "mean", "_order"], ascending=[True, False, True], na_position="last")
    return table.drop(columns="_order").reset_index(drop=True)


def section_accuracy(ctx: Context) -> str:
    """Final test accuracy per activation with interval, sorted; "best" only where best_marks says so."""
    table = _summary(ctx)
    settings = list(dict.fromkeys(table["setting"]))
    n_acts = table.groupby("setting")["activation"].nunique().max()
    ncols = min(3, len(settings))
    nrows = -(-len(settings) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.8 * ncols, nrows * (1.2 + 0.26 * n_acts)), squeeze=False, layout="constrained"
    )
    colors = ctx.palette()
    for ax in axes.flat[len(settings) :]:
        ax.set_visible(False)
    for ax, setting in zip(axes.flat, settings, strict=False):
        rows = table[table["setting"].eq(setting) & table["mean"].notna()].iloc[::-1]
        y = np.arange(len(rows))
        err = np.vstack([rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]])
        ax.errorbar(rows["mean"], y, xerr=np.nan_to_num(err), fmt="none", ecolor="0.4", capsize=2, lw=1)
        ax.scatter(rows["mean"], y, c=[colors.get(a, "0.3") for a in rows["activation"]], zorder=3, s=22)
        ax.set_yticks(
            y, [f"{a} *" if m == "best" else a for a, m in zip(rows["activation"], rows["mark"], strict=True)]
        )
        ax.set_title(_wrap(setting))
        ax.set_xlabel("test accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        if rows.empty:
            ax.text(0.5, 0.5, "no run finished ok", transform=ax.transAxes, ha="center", va="center")
            ax.set_xticks([])
    caption = (
        "Final test accuracy per activation, mean over seeds with 95 % interval, best at the top: activations whose "
        "intervals overlap are not distinguishable; * marks a best whose interval clears the runner-up's."
    )
    figure = ctx.figure(fig, "test_accuracy", caption)
    shown = table.assign(
        **{"test acc [95 % CI]": _interval(table)},
        mark=table["mark"].map({"best": "**best**", "tied": "tied"}).fillna(""),
    )
    shown.loc[table["mark"].eq("best"), "test acc [95 % CI]"] = "**" + shown["test acc [95 % CI]"] + "**"
    columns = ["setting", "activation", "n", "test acc [95 % CI]", "std", "n_diverged", "n_failed", "mark"]
    note = (
        "`n` counts ok runs; diverged and failed runs are counted, not averaged. **best** is marked only where the "
        "top interval does not overlap the runner-up's; otherwise the top activations are `tied`."
    )
    return (
        "## Final test accuracy\n\n" + figure + "\n" + markdown_table(shown[columns], {"std": ".4f"}) + f"\n\n{note}\n"
    )


def section_ranks(ctx: Context) -> str:
    """Mean rank of each activation over the suite's settings."""
    table = analysis.ranks(ctx.runs, "test_acc", group=ctx.setting_cols)
    if table.empty:
        return ""
    settings = ctx.runs[ctx.setting_cols].drop_duplicates()
    names = dict(zip(settings.astype(str).agg("/".join, axis=1), ctx.label(settings), strict=True))  # as ranks names
    table = table.rename(columns=names)
    note = (
        "Rank of each activation's mean final test accuracy within each setting (1 = best, ties averaged); "
        "`overall` is the mean over the settings it ran in. An activation without an ok run ranks last there."
    )
    return "## Ranks\n\n" + note + "\n\n" + markdown_table(table, {"overall": ".2f"}) + "\n"


def section_paired(ctx: Context) -> str:
    """Each activation against ReLU, paired on seed, with Holm-adjusted p-values."""
    if BASELINE not in set(ctx.runs["activation"]):
        return f"## Paired tests against {BASELINE}\n\nThe suite has no `{BASELINE}` runs, so no paired tests.\n"
    test = ctx.paired_test
    table = analysis.paired_tests(ctx.runs, "test_acc", baseline=BASELINE, test=test)
    table = table.assign(setting=ctx.label(table))
    untested = int(table["n_pairs"].eq(0).sum())
    table = table[table["n_pairs"] > 0].sort_values(["setting", "mean_diff"], ascending=[True, False])
    why = (
        f"paired t-test, because with {ctx.n_seeds} seeds (pairs) the Wilcoxon signed-rank test cannot reach "
        f"p < 0.05 (it needs at least {MIN_WILCOXON_PAIRS} pairs)"
        if test == "ttest"
        else f"Wilcoxon signed-rank test ({ctx.n_seeds} seeds)"
    )
    lines = [
        f"## Paired tests against {BASELINE}",
        "",
        f"Final test accuracy of each activation minus {BASELINE}'s, paired on seed (same initial weights, data order "
        f"and dropout masks), two-sided {why}; `p_holm` is Holm-adjusted over the table. `better`/`worse` only where "
        "p_holm < 0.05.",
    ]
    if untested:
        lines += [
            "",
            f"{untested} comparison(s) have no complete pair (no ok {BASELINE} run of that setting) and are left out.",
        ]
    if table.empty:
        return "\n".join([*lines, "", "No complete pairs.", ""])
    columns = ["setting", "activation", "n_pairs", "mean_diff", "sd_diff", "d_z", "p_value", "p_holm", "better"]
    formats = {"mean_diff": "+.4f", "sd_diff": ".4f", "d_z": ".2f", "p_value": ".3g", "p_holm": ".3g"}
    return "\n".join([*lines, "", markdown_table(table[columns], formats), ""])


def _heatmap_section(ctx: Context, column: str, title: str, what: str) -> str:
    """Mean test accuracy, activation x ``column``, one heatmap per other setting; "" if ``column`` doesn't vary."""
    if column not in ctx.setting_cols:
        return ""
    table = analysis.summarize(ctx.runs, "test_acc", by=ctx.by)
    table["panel"] = ctx.label(table, drop=[column])
    panels = [p for p, rows in table.groupby("panel", sort=False) if rows[column].nunique() > 1]
    if not panels:
        return ""
    levels = list(dict.fromkeys(ctx.runs[column]))  # suite order
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(len(panels) * (1.1 * len(levels) + 3.5), 0.45 * len(ctx.activations) + 1.5),
        layout="constrained",
    )
    for ax, panel in zip(np.atleast_1d(axes), panels, strict=True):
        rows = table[table["panel"].eq(panel)]
        grid = rows.pivot(index="activation", columns=column, values="mean")
        grid = grid.reindex(
            index=[a for a in ctx.activations if a in grid.index], columns=[v for v in levels if v in grid]
        )
        sns.heatmap(grid, annot=True, fmt=".3f", cmap="viridis", cbar=len(panels) == 1, ax=ax, annot_kws={"size": 8})
        ax.grid(False)
        ax.set_title(_wrap(panel))
        ax.set_xlabel(what)
    caption = (
        f"Mean final test accuracy (over seeds) for each activation and {what}: read across a row for the {what} "
        f"that suits an activation; a blank cell means no run of it finished ok (see the diverged and failed runs)."
    )
    name = f"heatmap_{column}"
    return f"## {title}\n\n" + ctx.figure(fig, name, caption)


def section_init(ctx: Context) -> str:
    return _heatmap_section(ctx, "init", "Activation x initializer", "initializer")


def section_regularizer(ctx: Context) -> str:
    return _heatmap_section(ctx, "regularizer", "Activation x regularizer", "regularizer")


def section_lr(ctx: Context) -> str:
    """Validation accuracy against learning rate; best lr per activation chosen on validation, test reported."""
    if "lr" not in ctx.setting_cols:
        return ""
    val = analysis.summarize(ctx.runs, "val_acc", by=ctx.by)
    test = analysis.summarize(ctx.runs, "test_acc", by=ctx.by)
    val["setting"] = ctx.label(val, drop=["lr"])
    keys = [c for c in ctx.by if c != "lr"]
    val = val[val.groupby(keys, dropna=False)["lr"].transform("nunique") > 1]  # settings run at a single lr: no curve
    if val.empty:
        return ""
    grid = _facets(val, ctx, x="lr", ylabel="final validation accuracy", xlabel="learning rate")
    grid.set(xscale="log")
    caption = (
        "Final validation accuracy against learning rate (log scale), mean over seeds with 95 % band: a wide plateau "
        "means an activation is forgiving to tune; a missing point means no seed finished ok at that rate."
    )
    figure = ctx.figure(_finish(grid), "lr_sensitivity", caption)
    chosen = val[val["mean"].notna()].sort_values("mean", ascending=False).drop_duplicates(subset=keys)
    chosen = chosen.merge(test, on=ctx.by, suffixes=("_val", ""))
    bad = val.groupby(keys, dropna=False)[["n_diverged", "n_failed"]].sum().reset_index()
    chosen = chosen.drop(columns=["n_diverged", "n_failed"]).merge(bad, on=keys, how="left")
    chosen = chosen.sort_values(["setting", "mean"], ascending=[True, False])
    shown = chosen.assign(**{"val acc": chosen["mean_val"], "test acc [95 % CI]": _interval(chosen)})
    columns = ["setting", "activation", "lr", "val acc", "test acc [95 % CI]", "n_diverged", "n_failed"]
    note = (
        "Best learning rate per activation, chosen on mean final **validation** accuracy over seeds; the test accuracy "
        "at that rate is reported, never used to choose. n_diverged / n_failed count runs over the whole lr grid."
    )
    formats = {"lr": "g", "val acc": ".4f"}
    return (
        "## Learning-rate sensitivity\n\n"
        + figure
        + "\n"
        + note
        + "\n\n"
        + markdown_table(shown[columns], formats)
        + "\n"
    )


def _layer_ticks(grid: sns.FacetGrid, data: pd.DataFrame) -> None:
    """Label each panel's x axis with its layer names (fc1, conv2, out)."""
    for setting, ax in grid.axes_dict.items():
        names = data[data["setting"].eq(setting)].drop_duplicates("layer").sort_values("layer")
        ax.set_xticks(names["layer"], names["name"], rotation=45 if len(names) > 6 else 0)


def _layer_slots(data: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Number each setting's hidden layers 0, 1, ... as panel columns, keeping at most MAX_LAYER_PANELS of them
    (evenly spaced, first and last included); also whether any were left out."""
    frames, skipped = [], False
    for _, rows in data.groupby("setting", sort=False):
        layers = sorted(rows["layer"].unique())
        if len(layers) > MAX_LAYER_PANELS:
            skipped = True
            layers = sorted({layers[round(i)] for i in np.linspace(0, len(layers) - 1, MAX_LAYER_PANELS)})
        slots = {layer: i for i, layer in enumerate(layers)}
        frames.append(rows[rows["layer"].isin(slots)].assign(slot=lambda f, s=slots: f["layer"].map(s)))
    return pd.concat(frames, ignore_index=True), skipped


def section_gradient_flow(ctx: Context) -> str:
    """Per-layer gradient norm at initialisation (log scale), then dead and saturated fractions per epoch."""
    parts = []
    grad = analysis.layer_profile(ctx.layers, ctx.runs, "grad_norm", epoch=0, by=ctx.by)
    if not grad.empty:
        grad = grad.assign(setting=ctx.label(grad))
        grid = _facets(grad, ctx, x="layer", ylabel="gradient norm at epoch 0", xlabel="layer (input to output)")
        grid.set(yscale="log")
        _layer_ticks(grid, grad)
        caption = (
            "Gradient norm of each weight layer on a fixed batch before training (log scale, mean over seeds): "
            "a line that falls towards the input layers is a vanishing gradient, one that rises is exploding."
        )
        parts.append(ctx.figure(_finish(grid), "gradient_norm_epoch0", caption))
    for metric, what, see in (
        ("dead_frac", "Dead-unit fraction", "units whose derivative is 0 on every probe input; they never learn again"),
        ("saturated_frac", "Saturated-unit fraction", "inputs where |f'| < 1 % of its maximum; gradients vanish there"),
    ):
        data = analysis.layer_profile(ctx.layers, ctx.runs, metric, epoch=None, by=ctx.by)
        if data.empty:
            continue
        data, skipped = _layer_slots(data.assign(setting=ctx.label(data)))
        grid = sns.FacetGrid(
            data,
            row="setting",
            col="slot",
            hue="activation",
            hue_order=[a for a in ctx.activations if a in set(data["activation"])],
            palette=ctx.palette(),
            height=2.6,
            aspect=1.5,
        )
        grid.map_dataframe(_band, x="epoch")
        names = data.drop_duplicates(["setting", "slot"]).set_index(["setting", "slot"])["name"]
        for (setting, slot), ax in grid.axes_dict.items():
            if (setting, slot) not in names.index:  # this setting has fewer hidden layers
                ax.set_visible(False)
                continue
            ax.set_title(_wrap(f"{setting}, {names[setting, slot]}", 40))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        grid.set_axis_labels("epoch", what.lower())
        shown = f" (evenly spaced {MAX_LAYER_PANELS} of the hidden layers where there are more)" if skipped else ""
        caption = f"{what} per epoch and hidden layer, mean over seeds{shown}: {see}; a rising line is getting worse."
        parts.append(ctx.figure(_finish(grid), metric.replace("_frac", "_units"), caption))
    if not parts:
        return ""
    return "## Gradient flow and unit health\n\n" + "\n".join(parts)


def section_failures(ctx: Context) -> str:
    """Every diverged and failed run with its error: counted and shown, never dropped."""
    bad = ctx.runs[ctx.runs["status"].ne("ok")]
    lines = ["## Diverged and failed runs", ""]
    if bad.empty:
        return "\n".join([*lines, f"None: all {len(ctx.runs)} runs finished ok.", ""])
    counts = bad["status"].value_counts()
    lines.append(
        f"{counts.get('diverged', 0)} diverged and {counts.get('failed', 0)} failed of {len(ctx.runs)} runs; they are "
        "excluded from means and tests but counted in every table (n_diverged, n_failed)."
    )
    table = bad.assign(setting=ctx.label(bad))
    if "diverged_epoch" not in table.columns:
        table["diverged_epoch"] = np.nan
    columns = ["key", "setting", "activation", "seed", "status", "diverged_epoch", "error"]
    return "\n".join([*lines, "", markdown_table(table[columns], {"diverged_epoch": ".0f"}), ""])


def _curve(spec: str) -> pd.DataFrame | None:
    """f and f' (autograd, float64, eval mode) of an elementwise activation on [-5, 5]; None for maxout-like."""
    if not activations.info(spec).elementwise:
        return None
    module = activations.create(spec).double().eval()
    x = GALLERY_X.clone().requires_grad_(True)
    y = module(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    xs = GALLERY_X.numpy()
    return pd.concat(
        [
            pd.DataFrame({"activation": spec, "x": xs, "curve": "f(x)", "y": y.detach().numpy()}),
            pd.DataFrame({"activation": spec, "x": xs, "curve": "f'(x)", "y": dy.numpy()}),
        ]
    )


CARD_COLUMNS = {
    "name": "activation",
    "family": "family",
    "learnable": "learnable",
    "range_min": "min f",
    "range_max": "max f",
    "f0": "f(0)",
    "df0": "f'(0)",
    "max_abs_df": "max |f'|",
    "mean": "E f(z)",
    "var": "Var f(z)",
    "zero_centred": "zero-centred",
    "gain": "gain",
    "monotonic": "monotonic",
    "continuous_df": "smooth f'",
    "saturated_n01": "saturated N(0,1)",
    "saturated_wide": "saturated wide",
    "dead_region": "dead region",
    "cost_vs_relu": "cost vs relu",
}


def section_activations(ctx: Context) -> str:
    """Gallery of f and f', the property cards, and (with timing) forward+backward cost relative to ReLU."""
    names = ctx.activations
    curves = [c for c in map(_curve, names) if c is not None]
    skipped = [n for n in names if not activations.info(n).elementwise]
    parts = ["## The activations", ""]
    if curves:
        data = pd.concat(curves, ignore_index=True)
        drawn = list(dict.fromkeys(data["activation"]))
        grid = sns.FacetGrid(
            data, col="activation", col_order=drawn, col_wrap=min(6, len(drawn)), height=2.2, sharey=False
        )
        grid.map_dataframe(sns.lineplot, x="x", y="y", hue="curve", style="curve", palette=["C0", "C3"])
        grid.set_titles("{col_name}")
        grid.set_axis_labels("x", "")
        for ax in grid.axes.flat:
            ax.axhline(0, color="0.7", lw=0.6, zorder=0)
            ax.axvline(0, color="0.7", lw=0.6, zorder=0)
        grid.add_legend()
        note = f" ({', '.join(skipped)}: not elementwise, no curve)" if skipped else ""
        caption = (
            "Each activation f (blue) and its derivative f' (red, autograd) on [-5, 5]: flat f' regions are where "
            f"gradients vanish, f' = 0 on an interval is where units can die{note}."
        )
        parts.append(ctx.figure(grid.figure, "activation_gallery", caption))
    cards = pd.DataFrame([activations.card(n, timing=ctx.timing).as_dict() for n in names])
    columns = [c for c in CARD_COLUMNS if ctx.timing or c != "cost_vs_relu"]
    parts += [
        "### Property cards",
        "",
        "Computed numerically from each module (`python -m activations`): E and Var under z ~ N(0, 1); gain = "
        "1/sqrt(E f(z)^2), the variance-keeping init gain; saturated = share of inputs with |f'| < 1 % of its "
        "maximum, under N(0, 1) and under a wide N(0, 500) pre-activation.",
        "",
        markdown_table(cards[columns].rename(columns=CARD_COLUMNS), {c: ".3g" for c in CARD_COLUMNS.values()}),
        "",
    ]
    if ctx.timing:
        order = cards.sort_values("cost_vs_relu")["name"].tolist()
        fig, ax = plt.subplots(figsize=(6, 0.9 + 0.26 * len(names)))
        sns.barplot(data=cards, x="cost_vs_relu", y="name", order=order, color="C0", ax=ax)
        ax.axvline(1.0, color="C3", lw=1)
        ax.set_xlabel("forward+backward time / ReLU's (median, large float32 tensor, this machine)")
        ax.set_ylabel("")
        caption = (
            "Forward+backward time of each activation alone relative to ReLU (red line = 1): the cost an activation "
            "adds per element, before the matrix multiplies that dominate a whole network."
        )
        parts += ["### Cost", "", ctx.figure(fig, "cost_vs_relu", caption)]
    else:
        parts += ["Cost relative to ReLU was not measured (`--no-timing`).", ""]
    return "\n".join(parts)


def section_files(ctx: Context) -> str:
    return (
        "## Files\n\n- [results.csv](results.csv): one row per run, every status, every recorded field.\n"
        "- [summary.csv](summary.csv): one row per configuration: n, mean, interval and counts of final test accuracy."
        "\n"
    )


Section = Callable[[Context], str]
SECTIONS: tuple[Section, ...] = (
    section_header,
    section_coverage,
    section_claims,
    section_curves,
    section_accuracy,
    section_ranks,
    section_paired,
    section_init,
    section_regularizer,
    section_lr,
    section_gradient_flow,
    section_failures,
    section_activations,
    section_files,
)


def build(
    suite: str,
    store: str | Path = DEFAULT_PATH,
    out: str | Path = "reports",
    command: str | None = None,
    timing: bool = True,
    sections: Iterable[Section] = SECTIONS,
) -> Path:
    """Write the report of ``suite`` into ``out/<suite>/`` and return the README path."""
    matplotlib.use("Agg")
    ctx = load(suite, store, out, command, timing)
    ctx.out.mkdir(parents=True, exist_ok=True)
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        text = "\n".join(part for part in (section(ctx) for section in sections) if part)
    ctx.runs.to_csv(ctx.out / "results.csv", index=False)
    _summary(ctx).to_csv(ctx.out / "summary.csv", index=False)
    readme = ctx.out / "README.md"
    readme.write_text(text)
    return readme


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(
        prog="python -m bench.report",
        description="Write reports/<suite>/README.md, figures/*.png, results.csv and summary.csv from the runs of "
        "a suite in the store.",
    )
    p.add_argument("--suite", required=True, help="a suite name from bench/suites or a .toml file")
    p.add_argument("--store", default=str(DEFAULT_PATH), help=f"SQLite store (default {DEFAULT_PATH})")
    p.add_argument("--out", default="reports", help="reports folder (default reports/)")
    p.add_argument("--command", help="the command that produced the runs (default: python -m bench.run --suite NAME)")
    p.add_argument("--no-timing", action="store_true", help="skip measuring each activation's cost relative to ReLU")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (2 for bad input, with one ``error:`` line on stderr)."""
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # usage errors (one line, status 2) and --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        readme = build(args.suite, args.store, args.out, args.command, timing=not args.no_timing)
    except InputError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (--debug for details)", file=sys.stderr)
        return 1
    print(f"report written to {readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
