"""``python -m bench.report --suite NAME``: a suite's runs rendered as README.md, seaborn figures and CSV files.

Reads only the suite's runs (:mod:`bench.frames`), takes every number from :mod:`bench.analysis` and writes
``reports/<suite>/README.md``, ``figures/*.png`` (:mod:`bench.report_figures`), ``results.csv`` (one row per run),
``summary.csv`` (one row per configuration) and ``runs.jsonl.gz`` (the runs themselves, :mod:`bench.bundle`).
The README is a list of sections (:data:`SECTIONS`): each is a
function of a :class:`~bench.report_context.Context` returning markdown ("" = nothing to show), its tables from
:mod:`bench.report_tables`; the seed-claims suite's verdicts (:mod:`bench.claims`) are one of them.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import pandas as pd
import seaborn as sns

import activations
from activations import errors
from bench import analysis, bundle, checks, claims, frames, provenance
from bench import report_figures as figures
from bench import report_findings as findings
from bench import report_tables as tables
from bench.config import Status
from bench.report_context import MIN_WILCOXON_PAIRS, Context, load

BASELINE = figures.REFERENCE
CLAIMS_SUITE = "seed-claims"  # the suite whose report has a verdict per textbook claim (bench/claims.py)
MAX_LISTED = 20
TARGET_SHARE = 0.99  # the speed section's target: this share of the setting's best mean final validation accuracy


def section_header(ctx: Context) -> str:
    """Title, description, command, code version, packages, machine, wall time and dates."""
    written = (
        f"written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.report --suite {ctx.suite}` "
        f"at git SHA `{provenance.git_sha()}`"
    )
    description = f"{ctx.description}\n\n" if ctx.description else ""
    table = tables.header_table(ctx.runs, ctx.command, written)
    return f"# actbench report: suite `{ctx.suite}`\n\n{description}{table}\n"


def section_claims(ctx: Context) -> str:
    """The seed-claims suite only: per textbook claim, the experiment, the measured numbers and a verdict."""
    if ctx.suite != CLAIMS_SUITE:
        return ""
    verdicts = claims.evaluate(ctx.runs, ctx.epochs, ctx.layers)
    if not verdicts:
        return ""
    return tables.verdicts_markdown(verdicts)


def section_coverage(ctx: Context) -> str:
    """How many of the suite's runs are in the store; never silently partial."""
    total, missing = len(ctx.specs), len(ctx.missing)
    status = ctx.runs["status"].value_counts()
    counts = ", ".join(f"{status.get(s, 0)} {s}" for s in Status)
    lines = ["## Runs", ""]
    if missing:
        lines.append(
            f"**{missing} of the suite's {total} runs are missing from the store**: this report covers "
            f"{total - missing} runs ({counts}). Run `{ctx.command}` again to complete it (finished runs are skipped)."
        )
        listed = frames.spec_frame(ctx.missing[:MAX_LISTED])
        listed["setting"] = ctx.label(listed)
        more = f"\n\n... and {missing - MAX_LISTED} more." if missing > MAX_LISTED else ""
        table = tables.markdown_table(listed[["key", "setting", "activation", "seed"]])
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
    lines += ["", f"Seeds per configuration: {ctx.n_seeds}. Intervals are 95 % Student t intervals over seeds."]
    return "\n".join(lines) + "\n"


def section_warnings(ctx: Context) -> str:
    """Known-bad combinations among the suite's runs (the warnings ``bench.run`` printed), so that no reader misses
    them."""
    lines = checks.known_bad(ctx.specs)
    if not lines:
        return ""
    items = "\n".join(f"- {line}." for line in lines)
    note = "They were trained as the suite asks (a suite may study them); read their results with this in mind."
    return f"## Known-bad combinations\n\n{items}\n\n{note}\n"


def section_curves(ctx: Context) -> str:
    """Validation loss and accuracy per epoch, mean and band over seeds, one panel per setting."""
    parts = []
    for metric, what, better in (("loss", "Validation loss", "lower"), ("acc", "Validation accuracy", "higher")):
        data = analysis.curves(ctx.epochs, ctx.runs, split="val", metric=metric, by=ctx.by)
        if data.empty:
            continue
        data = data.assign(setting=ctx.label(data))
        grid = figures.facets(data, ctx.palette(), "epoch", f"validation {metric}", higher_is_better=better == "higher")
        caption = (
            f"{what} per epoch (epoch 0 = before training), mean over seeds with 95 % band, ok runs only: "
            f"{better} is better; a curve that turns back is over-fitting, a wide band is seed-to-seed noise. "
            f"{_roles(ctx)}"
        )
        parts.append(ctx.figure(figures.finish(grid), f"curves_val_{metric}", caption))
    if not parts:
        return "## Convergence\n\nNo run finished ok, so there are no curves.\n"
    return "## Convergence\n\n" + "\n".join(parts)


def section_speed(ctx: Context) -> str:
    """Epochs and training seconds until validation accuracy first reaches a target set by the best activation."""
    ok = ctx.runs[ctx.runs["status"].eq(Status.OK)]
    if ok.empty:
        return ""
    best = analysis.summarize(ok, "val_acc", by=ctx.by).groupby(ctx.setting_cols, dropna=False)["mean"].max()
    per_run = []
    for setting, rows in ok.groupby(ctx.setting_cols, dropna=False):
        target = TARGET_SHARE * best[setting]
        if pd.notna(target) and rows["activation"].nunique() > 1:  # a speed is compared with another activation's
            per_run.append(analysis.time_to_target(ctx.epochs, rows, target).assign(target=target))
    if not per_run:
        return ""
    table = analysis.time_to_target_summary(ctx.with_regularizer(pd.concat(per_run)), by=[*ctx.by, "target"])
    order = {a: i for i, a in enumerate(ctx.activations)}
    table = table.assign(setting=ctx.label(table), _order=table["activation"].map(order))
    table = table.sort_values(["setting", "epoch_mean", "seconds_mean", "_order"], na_position="last")
    note = (
        f"How fast each activation learns: the epochs, and the training seconds (evaluation excluded), until its "
        f"validation accuracy first reaches the target, {TARGET_SHARE:.0%} of the best activation's mean final "
        "validation accuracy in that setting. Means are over the ok runs that reached it (*reached*: of the ok runs); "
        "seconds were measured on the machine in the header, so compare them within this report only."
    )
    return "## Time to a validation-accuracy target\n\n" + note + "\n\n" + tables.target_table(table) + "\n"


def _summary(ctx: Context) -> pd.DataFrame:
    """Final test accuracy per configuration with its interval, counts and best/tied mark (also summary.csv), and
    the parameter count with its ratio to ReLU's in the same setting."""
    table = analysis.summarize(ctx.runs, "test_acc", by=ctx.by)
    table["mark"] = analysis.best_marks(table, group=ctx.setting_cols)
    table["setting"] = ctx.label(table)
    if "parameters" in ctx.runs.columns:
        params = ctx.runs.groupby(ctx.by, dropna=False)["parameters"].median().rename("parameters").reset_index()
        table = table.merge(params, on=ctx.by, how="left")
        reference = table[table["activation"].eq(BASELINE)].set_index("setting")["parameters"]
        table["params_ratio"] = table["parameters"] / table["setting"].map(reference)
    else:
        table = table.assign(parameters=float("nan"), params_ratio=float("nan"))
    order = {a: i for i, a in enumerate(ctx.activations)}
    table["_order"] = table["activation"].map(order)
    table = table.sort_values(["setting", "mean", "_order"], ascending=[True, False, True], na_position="last")
    return table.drop(columns="_order").reset_index(drop=True)


def _roles(ctx: Context, mark: str = "thick black line") -> str:
    """How the figures draw the activations, for a caption."""
    if not ctx.highlight or len(ctx.activations) <= figures.MAX_COLOURED + 1:
        return f"{BASELINE} is the {mark}."
    return f"{BASELINE} is the {mark}; coloured {ctx.highlight_why} ({', '.join(ctx.highlight)}), the others grey."


def section_accuracy(ctx: Context) -> str:
    """Final test accuracy per activation with interval and parameter count, sorted; "best" only where it is."""
    table = _summary(ctx)
    note = (
        "`n` counts ok runs; diverged and failed runs are counted, not averaged. **best** is marked only where the "
        "top interval does not overlap the runner-up's; otherwise the top activations are `tied`. `parameters` is the "
        f"network's size with that activation; `x {BASELINE}` marks a network whose size differs from {BASELINE}'s "
        "(maxout widens the layer before it; maxout_matched is narrowed back to ReLU's count)."
    )
    return "## Final test accuracy\n\n" + tables.accuracy_table(table) + f"\n\n{note}\n"


def _pairs(ctx: Context) -> pd.DataFrame:
    """Each activation against ReLU per setting (paired, Holm within the setting), with parameter ratio and label."""
    tests = analysis.paired_tests(ctx.runs, "test_acc", baseline=BASELINE, test=ctx.paired_test)
    tests = tests.assign(setting=ctx.label(tests))
    ratios = _summary(ctx).set_index(["setting", "activation"])["params_ratio"]
    keys = zip(tests["setting"], tests["activation"], strict=True)
    tests["params_ratio"] = [ratios.get(key, float("nan")) for key in keys]
    tests["label"] = tests["activation"] + tests["params_ratio"].map(findings.capacity_note)
    return tests


def section_findings(ctx: Context) -> str:
    """The top of the report: per setting, who beats or loses to ReLU, by how much, and what is tied."""
    if BASELINE not in set(ctx.runs["activation"]) or ctx.runs["activation"].nunique() < 2:
        return ""
    summary = _summary(ctx)
    relu = summary[summary["activation"].eq(BASELINE)]
    references = {
        r["setting"]: f"ReLU {r['mean']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]" for _, r in relu.iterrows()
    }
    return findings.markdown(_pairs(ctx), references)


def section_forest(ctx: Context) -> str:
    """Per setting, each activation's paired difference to ReLU with its interval: the headline figures."""
    if BASELINE not in set(ctx.runs["activation"]) or ctx.runs["activation"].nunique() < 2:
        return ""
    tests = _pairs(ctx)
    parts = ["## Differences to ReLU", ""]
    for setting, rows in tests.groupby("setting", sort=False):
        if rows["n_pairs"].max() < 2:
            continue
        title = f"{setting}: test accuracy minus ReLU's; green/red = better/worse (Holm p < 0.05 within the setting)"
        caption = (
            f"{setting}: each activation's final test accuracy minus {BASELINE}'s, paired by seed, mean (dot) and 95 % "
            "interval (line), sorted; filled green or red where the Holm-adjusted p-value within this setting is below "
            "0.05, open grey where there is no evidence of a difference; a far-out mean is an arrow at the edge with "
            "its value."
        )
        slug = re.sub(r"[^a-z0-9]+", "_", setting.lower()).strip("_")
        parts.append(ctx.figure(figures.forest(rows, title), f"forest_{slug}", caption))
    return "\n".join(parts) if len(parts) > 2 else ""


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
    return "## Ranks\n\n" + note + "\n\n" + tables.markdown_table(table, {"overall": ".2f"}) + "\n"


def section_paired(ctx: Context) -> str:
    """Each activation against ReLU, paired on seed, with Holm-adjusted p-values."""
    if BASELINE not in set(ctx.runs["activation"]):
        return f"## Paired tests against {BASELINE}\n\nThe suite has no `{BASELINE}` runs, so no paired tests.\n"
    test = ctx.paired_test
    table = _pairs(ctx)
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
        f"and dropout masks), two-sided {why}; `ci` is the 95 % interval of the mean difference; `p_holm` is "
        "Holm-adjusted within each setting (the family is the activations compared with ReLU there). `better`/`worse` "
        "only where p_holm < 0.05.",
    ]
    if untested:
        lines += [
            "",
            f"{untested} comparison(s) have no complete pair (no ok {BASELINE} run of that setting) and are left out.",
        ]
    if table.empty:
        return "\n".join([*lines, "", "No complete pairs.", ""])
    return "\n".join([*lines, "", tables.paired_table(table), ""])


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
    fig = figures.heatmaps(table, column, panels, levels, ctx.activations, what)
    caption = (
        f"Mean final test accuracy (over seeds) for each activation and {what}: read across a row for the {what} "
        f"that suits an activation; a blank cell means no run of it finished ok (see the diverged and failed runs)."
    )
    return f"## {title}\n\n" + ctx.figure(fig, f"heatmap_{column}", caption)


def section_init(ctx: Context) -> str:
    return _heatmap_section(ctx, "init", "Activation x initializer", "initializer")


def section_regularizer(ctx: Context) -> str:
    return _heatmap_section(ctx, "regularizer", "Activation x regularizer", "regularizer")


def section_gap(ctx: Context) -> str:
    """Where the suite varies regularizers: train minus test accuracy per activation and regularizer."""
    if "regularizer" not in ctx.setting_cols or "train_acc" not in ctx.runs.columns:
        return ""
    gap = analysis.generalisation_gap(ctx.runs, by=ctx.by)
    test = analysis.summarize(ctx.runs, "test_acc", by=ctx.by)
    order = {
        column: {v: i for i, v in enumerate(dict.fromkeys(ctx.runs[column]))}
        for column in ("activation", "regularizer")
    }
    gap = gap.assign(setting=ctx.label(gap, drop=["regularizer"]))
    gap = gap.sort_values(
        ["setting", "activation", "regularizer"], key=lambda c: c.map(order[c.name]) if c.name in order else c
    )
    note = (
        "Final training accuracy minus final test accuracy, mean over seeds with 95 % interval (ok runs only), beside "
        "the test accuracy: a regularizer that works narrows the gap without lowering the test accuracy."
    )
    return "## Train-test gap\n\n" + note + "\n\n" + tables.gap_table(gap, test, ctx.by) + "\n"


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
    caption = (
        "Final validation accuracy against learning rate (log scale), mean over seeds with 95 % band: a wide plateau "
        "means an activation is forgiving to tune; a missing point means no seed finished ok at that rate."
    )
    figure = ctx.figure(figures.lr_sensitivity(val, ctx.palette()), "lr_sensitivity", caption)
    note = (
        "Best learning rate per activation, chosen on mean final **validation** accuracy over seeds; the test accuracy "
        "at that rate is reported, never used to choose. n_diverged / n_failed count runs over the whole lr grid."
    )
    table = tables.best_lr_table(val, test, ctx.by)
    return "## Learning-rate sensitivity\n\n" + figure + "\n" + note + "\n\n" + table + "\n"


def section_gradient_flow(ctx: Context) -> str:
    """Per-layer gradient norm at initialisation (log scale), then dead and saturated fractions per epoch."""
    parts = []
    grad = analysis.layer_profile(ctx.layers, ctx.runs, "grad_norm", epoch=0, by=ctx.by)
    if not grad.empty:
        caption = (
            "Gradient norm of each weight layer on a fixed batch before training (log scale, mean over seeds): "
            "a line that falls towards the input layers is a vanishing gradient, one that rises is exploding."
        )
        fig = figures.gradient_norms(grad.assign(setting=ctx.label(grad)), ctx.palette())
        parts.append(ctx.figure(fig, "gradient_norm_epoch0", caption))
    for metric, what, see in (
        ("dead_frac", "Dead-unit fraction", "units whose derivative is 0 on every probe input; they never learn again"),
        ("saturated_frac", "Saturated-unit fraction", "inputs where |f'| < 1 % of its maximum; gradients vanish there"),
    ):
        data = analysis.layer_profile(ctx.layers, ctx.runs, metric, epoch=None, by=ctx.by)
        if data.empty:
            continue
        fig, skipped = figures.unit_health(data.assign(setting=ctx.label(data)), ctx.palette(), what)
        shown = (
            f" (evenly spaced {figures.MAX_LAYER_PANELS} of the hidden layers where there are more)" if skipped else ""
        )
        caption = f"{what} per epoch and hidden layer, mean over seeds{shown}: {see}; a rising line is getting worse."
        parts.append(ctx.figure(fig, metric.replace("_frac", "_units"), caption))
    if not parts:
        return ""
    return "## Gradient flow and unit health\n\n" + "\n".join(parts)


def section_failures(ctx: Context) -> str:
    """Every diverged and failed run with its error: counted and shown, never dropped."""
    bad = ctx.runs[ctx.runs["status"].ne(Status.OK)]
    lines = ["## Diverged and failed runs", ""]
    if bad.empty:
        return "\n".join([*lines, f"None: all {len(ctx.runs)} runs finished ok.", ""])
    counts = bad["status"].value_counts()
    lines.append(
        f"{counts.get(Status.DIVERGED, 0)} diverged and {counts.get(Status.FAILED, 0)} failed of {len(ctx.runs)} runs; "
        "they are excluded from means and tests but counted in every table (n_diverged, n_failed)."
    )
    return "\n".join([*lines, "", tables.failures_table(bad.assign(setting=ctx.label(bad))), ""])


def section_activations(ctx: Context, names: list[str] | None = None) -> str:
    """Gallery of f and f' and the property cards of the suite's activations (or of ``names``)."""
    names = names or ctx.activations
    curves = figures.gallery_curves(names)
    skipped = [n for n in names if not activations.info(n).elementwise]
    parts = ["## The activations", ""]
    if not curves.empty:
        note = f" ({', '.join(skipped)}: not elementwise, no curve)" if skipped else ""
        caption = (
            "Each activation f (blue) and its derivative f' (red, autograd) on [-5, 5]: flat f' regions are where "
            f"gradients vanish, f' = 0 on an interval is where units can die{note}."
        )
        parts.append(ctx.figure(figures.gallery(curves), "activation_gallery", caption))
    cards = pd.DataFrame([activations.card(n).as_dict() for n in names])
    parts += [
        "### Property cards",
        "",
        "Computed numerically from each module (`python -m activations`): E and Var under z ~ N(0, 1); gain = "
        "1/sqrt(E f(z)^2), the variance-keeping init gain; saturated = share of inputs with |f'| < 1 % of its "
        "maximum, under N(0, 1) and under a wide N(0, 500) pre-activation.",
        "",
        tables.cards_table(cards),
        "",
    ]
    return "\n".join(parts)


def section_cost(ctx: Context) -> str:
    """Cost beside accuracy: time alone (interleaved rounds), throughput and memory from the runs, and a scatter."""
    summary = _summary(ctx)
    ok = ctx.runs[ctx.runs["status"].eq(Status.OK)]
    if ok.empty:
        return ""
    table = summary[[*ctx.by, "setting", "mean"]].rename(columns={"mean": "acc"})
    measured = ("samples_per_second", "saved_bytes_per_sample", "peak_memory_bytes")
    values = ok[ctx.by].assign(**{c: pd.to_numeric(ok.get(c, float("nan")), errors="coerce") for c in measured})
    table = table.merge(values.groupby(ctx.by, dropna=False)[list(measured)].median().reset_index(), on=ctx.by)
    table = table.rename(columns={"samples_per_second": "speed"})
    parts = ["## Cost and memory", ""]
    caption = (
        "Accuracy against training speed per setting, one point per activation (means over seeds, from the runs "
        "themselves, which trained side by side as the header says): up and to the right is better. "
        f"{_roles(ctx, 'black point')}"
    )
    parts.append(ctx.figure(figures.cost_scatter(table, ctx.palette()), "accuracy_vs_speed", caption))
    rounds = 5
    cost = activations.relative_cost(ctx.activations, rounds=rounds) if ctx.timing else {}
    alone = (
        "its forward+backward time alone relative to ReLU's, measured when this report was written in "
        f"{rounds} interleaved rounds (each round times ReLU and then every activation once; the ratio is taken "
        "within the round and the median over rounds is shown with its range, so ReLU is 1.00 by construction); then, "
        if ctx.timing
        else "(its time alone was not measured: `--no-timing`) "
    )
    gpu = " Peak CUDA memory is shown where the runs were on a GPU." if table["peak_memory_bytes"].notna().any() else ""
    parts += [
        f"Per activation: {alone}per setting, the training throughput of its runs relative to ReLU's runs (median "
        "over seeds), and the bytes autograd saves for the backward pass per training sample (exact, counted with "
        f"`torch.autograd.graph.saved_tensors_hooks`, machine-independent), with their ratio to ReLU's.{gpu}",
        "",
        tables.cost_table(table, cost, ctx.activations, BASELINE),
        "",
    ]
    return "\n".join(parts)


def section_files(ctx: Context) -> str:
    return (
        "## Files\n\n- [results.csv](results.csv): one row per run, every status, every recorded field.\n"
        "- [summary.csv](summary.csv): one row per configuration: n, mean, interval and counts of final test "
        "accuracy.\n"
        f"- [{bundle.FILENAME}]({bundle.FILENAME}): every run with its per-epoch and per-layer rows, the data this "
        f"report is made from (format: `bench/bundle.py`); `python -m bench.bundle import reports/{ctx.suite}` loads "
        f"it into a store, and `python -m bench.report --suite {ctx.suite}` then rebuilds this report.\n"
    )


Section = Callable[[Context], str]
SECTIONS: tuple[Section, ...] = (
    section_header,
    section_coverage,
    section_warnings,
    section_findings,
    section_claims,
    section_forest,
    section_curves,
    section_speed,
    section_accuracy,
    section_cost,
    section_ranks,
    section_paired,
    section_init,
    section_regularizer,
    section_gap,
    section_lr,
    section_gradient_flow,
    section_failures,
    section_activations,
    section_files,
)


def build(
    suite: str,
    store: str | Path = frames.DEFAULT_PATH,
    out: str | Path = "reports",
    command: str | None = None,
    timing: bool = True,
    sections: Iterable[Section] = SECTIONS,
) -> Path:
    """Write the report of ``suite`` into ``out/<suite>/`` and return the README path."""
    matplotlib.use("Agg")
    ctx = load(suite, store, out, command, timing)
    ctx.out.mkdir(parents=True, exist_ok=True)
    for stale in (ctx.out / "figures").glob("*.png"):  # a figure this build does not draw again must not linger
        stale.unlink()
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        text = "\n".join(part for part in (section(ctx) for section in sections) if part)
    ctx.runs.to_csv(ctx.out / "results.csv", index=False)
    _summary(ctx).to_csv(ctx.out / "summary.csv", index=False)
    bundle.write(store, ctx.runs["key"], ctx.out / bundle.FILENAME, ctx.suite, provenance.git_sha())
    readme = ctx.out / "README.md"
    readme.write_text(text)
    return readme


def build_parser() -> errors.Parser:
    p = errors.Parser(
        prog="python -m bench.report",
        description="Write reports/<suite>/README.md, figures/*.png, results.csv, summary.csv and runs.jsonl.gz (the "
        "runs, to import elsewhere with python -m bench.bundle) from the runs of a suite in the store.",
    )
    p.add_argument("--suite", required=True, help="a suite name from bench/suites or a .toml file")
    p.add_argument("--store", default=str(frames.DEFAULT_PATH), help=f"SQLite store (default {frames.DEFAULT_PATH})")
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


if __name__ == "__main__":
    raise SystemExit(main())
