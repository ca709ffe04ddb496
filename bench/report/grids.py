"""The grid sections of a suite's page: heatmaps over initializers, regularizers and learning rates, the train/test
gap, and gradient flow and unit health from the per-layer probes."""

from __future__ import annotations

from bench.analysis import stats
from bench.report import figures, findings, tables
from bench.report.context import Context


def _heatmap_section(ctx: Context, column: str, title: str, what: str) -> str:
    """The mean test metric, activation x ``column``, one heatmap per other setting; "" if ``column`` doesn't vary."""
    if column not in ctx.setting_cols:
        return ""
    table = stats.summarize(ctx.runs, ctx.metric.test, by=ctx.by)
    table["panel"] = ctx.label(table, drop=[column])
    panels = [p for p, rows in table.groupby("panel", sort=False) if rows[column].nunique() > 1]
    if not panels:
        return ""
    levels = list(dict.fromkeys(ctx.runs[column]))  # suite order
    fig = figures.heatmaps(table, column, panels, levels, ctx.activations, what, ctx.metric.higher_is_better)
    caption = (
        f"Mean final test {ctx.metric.label} (over seeds) for each activation and {what}: read across a row for the "
        f"{what} that suits an activation; a blank cell means no run of it finished ok (see the diverged and failed "
        "runs)."
    )
    return f"## {title}\n\n" + ctx.figure(fig, f"heatmap_{column}", caption)


def section_init(ctx: Context) -> str:
    return _heatmap_section(ctx, "init", "Activation x initializer", "initializer")


def section_regularizer(ctx: Context) -> str:
    return _heatmap_section(ctx, "regularizer", "Activation x regularizer", "regularizer")


def section_gap(ctx: Context) -> str:
    """Where the suite varies regularizers: the train-test gap of the metric per activation and regularizer."""
    metric = ctx.metric
    if "regularizer" not in ctx.setting_cols or metric.train not in ctx.runs.columns:
        return ""
    gap = stats.generalisation_gap(ctx.runs, by=ctx.by)
    test = stats.summarize(ctx.runs, metric.test, by=ctx.by)
    order = {
        column: {v: i for i, v in enumerate(dict.fromkeys(ctx.runs[column]))}
        for column in ("activation", "regularizer")
    }
    gap = gap.assign(setting=ctx.label(gap, drop=["regularizer"]))
    gap = gap.sort_values(
        ["setting", "activation", "regularizer"], key=lambda c: c.map(order[c.name]) if c.name in order else c
    )
    first, second = findings.gap_sides(metric, "training")
    note = (
        f"Final {first} {metric.label} minus final {second} {metric.label}, mean over seeds with 95 % interval (ok "
        f"runs only), beside the test {metric.label}: a regularizer that works narrows the gap without "
        f"{'lowering' if metric.higher_is_better else 'raising'} the test {metric.label}."
    )
    return "## Train-test gap\n\n" + note + "\n\n" + tables.gap_table(gap, test, ctx.by, metric) + "\n"


def section_lr(ctx: Context) -> str:
    """The validation metric against learning rate; best lr per activation chosen on validation, test reported."""
    metric = ctx.metric
    if "lr" not in ctx.setting_cols:
        return ""
    val = stats.summarize(ctx.runs, metric.val, by=ctx.by)
    test = stats.summarize(ctx.runs, metric.test, by=ctx.by)
    val["setting"] = ctx.label(val, drop=["lr"])
    keys = [c for c in ctx.by if c != "lr"]
    val = val[val.groupby(keys, dropna=False)["lr"].transform("nunique") > 1]  # settings run at a single lr: no curve
    if val.empty:
        return ""
    caption = (
        f"Final validation {metric.label} against learning rate (log scale), mean over seeds with 95 % band: a wide "
        "plateau means an activation is forgiving to tune; a missing point means no seed finished ok at that rate."
    )
    figure = ctx.figure(figures.lr_sensitivity(val, ctx.palette(), metric), "lr_sensitivity", caption)
    note = (
        f"Best learning rate per activation, chosen on mean final **validation** {metric.label} over seeds; the test "
        f"{metric.label} at that rate is reported, never used to choose. n_diverged / n_failed count runs over the "
        "whole lr grid."
    )
    table = tables.best_lr_table(val, test, ctx.by, metric)
    return "## Learning-rate sensitivity\n\n" + figure + "\n" + note + "\n\n" + table + "\n"


def section_gradient_flow(ctx: Context) -> str:
    """Per-layer gradient norm at initialisation (log scale), then dead and saturated fractions per epoch."""
    parts = []
    grad = stats.layer_profile(ctx.layers, ctx.runs, "grad_norm", epoch=0, by=ctx.by)
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
        data = stats.layer_profile(ctx.layers, ctx.runs, metric, epoch=None, by=ctx.by)
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
