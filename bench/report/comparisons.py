"""The comparison sections of a suite's page: what differs from ReLU (findings, forest plots, paired tests, ranks), how
fast (curves, time to target), how well it scores on the runs' metric and at what cost."""

from __future__ import annotations

import re

import pandas as pd

import activations
from bench.analysis import outcomes, stats
from bench.config import Status
from bench.report import factors, figures, findings, tables
from bench.report.context import MIN_WILCOXON_PAIRS, Context
from bench.tasks import BASELINE, Metric

TARGET_SHARE = 0.99  # the speed section's target: this share of the setting's best mean final validation metric


def section_findings(ctx: Context) -> str:
    """The top of the report: per setting, who beats or loses to ReLU, by how much, and what is tied."""
    if BASELINE not in set(ctx.runs["activation"]) or ctx.runs["activation"].nunique() < 2 or factors.factor(ctx):
        return ""  # a suite that varies the initializer, regularizer or rate opens with that factor's findings
    summary = summary_frame(ctx)

    def means(reference: str) -> dict[str, str]:
        rows = summary[summary["activation"].eq(reference)]
        name = _name(reference)
        return {
            r["setting"]: f"{name} {r['mean']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]" for _, r in rows.iterrows()
        }

    text = findings.markdown(pairs(ctx), means(BASELINE), ctx.metric, speed_frame(ctx), own_rates=ctx.own_rates)
    for reference in ctx.references[1:]:
        tests, name = pairs(ctx, reference), _name(reference)
        bullets = [
            findings.setting_findings(setting, rows, means(reference).get(setting, ""), ctx.metric, against=name)
            for setting, rows in tests.groupby("setting", sort=False)
            if rows["n_pairs"].max() >= 2
        ]
        if bullets:
            text += (
                f"\nAgainst {name}, what this task's networks ship with: the same paired tests with {name} as the "
                f"reference (Holm over the activations of a setting).\n\n" + "\n".join(bullets) + "\n"
            )
    return text


def _name(reference: str) -> str:
    """How a reference is written in headings: ReLU, GELU."""
    return {"relu": "ReLU", "gelu": "GELU"}.get(reference, reference)


def section_forest(ctx: Context) -> str:
    """Per setting, each activation's paired difference to ReLU with its interval (the headline figures); then to the
    activation the task's networks ship with, where there is one (GELU in the transformer)."""
    if ctx.runs["activation"].nunique() < 2:
        return ""
    sections = []
    for reference in ctx.references:
        tests, label, name = pairs(ctx, reference), ctx.metric.label, _name(reference)
        shipped = "" if reference == BASELINE else " (what this task's networks ship with)"
        parts = [f"## Differences to {name}{shipped}", ""]
        for setting, rows in tests.groupby("setting", sort=False):
            if rows["n_pairs"].max() < 2:
                continue
            title = (
                f"{setting}: test {label} minus {name}'s; green/red = better/worse (Holm p < 0.05 within the setting)"
            )
            caption = (
                f"{setting}: each activation's final test {label} minus {reference}'s, paired by seed, mean (dot) and "
                "95 % interval (line), sorted; filled green or red where the Holm-adjusted p-value within this "
                "setting is below 0.05, open grey where there is no evidence of a difference, an orange cross where "
                "a run did not learn (no test; the label says unstable or did not learn); a far-out mean is an "
                "arrow at the edge with its value."
            )
            slug = re.sub(r"[^a-z0-9]+", "_", setting.lower()).strip("_")
            slug = slug if reference == BASELINE else f"{reference}_{slug}"
            fig = figures.forest(rows, title, ctx.metric, f"test {label} minus {name}'s")
            parts.append(ctx.figure(fig, f"forest_{slug}", caption))
        if len(parts) > 2:
            sections.append("\n".join(parts))
    return "\n".join(sections)


def _curve_metrics(metric: Metric) -> list[tuple[str, str, str]]:
    """The curves drawn: (per-epoch metric, its name in a caption, the better direction): the loss, then the runs'
    metric unless it is the loss."""
    shown = [("loss", "Validation loss", "lower")]
    if metric.name != "loss":
        shown.append((metric.name, f"Validation {metric.label}", "higher" if metric.higher_is_better else "lower"))
    return shown


def section_curves(ctx: Context) -> str:
    """Validation loss and the runs' metric per epoch, mean and band over seeds, one panel per setting."""
    parts = []
    for metric, what, better in _curve_metrics(ctx.metric):
        data = stats.curves(ctx.epochs, ctx.runs, split="val", metric=metric, by=ctx.by)
        if data.empty:
            continue
        data = data.assign(setting=ctx.label(data))
        grid = figures.facets(data, ctx.palette(), "epoch", f"validation {metric}", higher_is_better=better == "higher")
        caption = (
            f"{what} per epoch (epoch 0 = before training), mean over seeds with 95 % band, ok runs only: "
            f"{better} is better; a curve that turns back is over-fitting, a wide band is seed-to-seed noise. "
            f"{roles(ctx)}"
        )
        parts.append(ctx.figure(figures.finish(grid), f"curves_val_{metric}", caption))
    if not parts:
        return "## Convergence\n\nNo run finished ok, so there are no curves.\n"
    return "## Convergence\n\n" + "\n".join(parts)


def target_share(metric: Metric) -> float:
    """The speed target as a share of the best mean: TARGET_SHARE of it where higher is better, as far above it where
    lower is (a loss 1 % above the best)."""
    return TARGET_SHARE if metric.higher_is_better else 2 - TARGET_SHARE


def speed_frame(ctx: Context) -> pd.DataFrame:
    """Per setting and activation, the time to the validation-metric target (``stats.time_to_target_summary`` with
    ``setting`` and ``target``), fastest first by the median, never counted as never; empty if nothing to compare."""
    ok, metric = ctx.runs[ctx.runs["status"].eq(Status.OK)], ctx.metric
    if ok.empty:
        return pd.DataFrame()
    means = stats.summarize(ok, metric.val, by=ctx.by).groupby(ctx.setting_cols, dropna=False)["mean"]
    best = means.max() if metric.higher_is_better else means.min()
    per_run = []
    for setting, rows in ok.groupby(ctx.setting_cols, dropna=False):
        target = target_share(metric) * best[setting]
        if pd.notna(target) and rows["activation"].nunique() > 1:  # a speed is compared with another activation's
            reached = stats.time_to_target(ctx.epochs, rows, target, "val", metric.name, metric.higher_is_better)
            per_run.append(reached.assign(target=target))
    if not per_run:
        return pd.DataFrame()
    table = stats.time_to_target_summary(ctx.with_regularizer(pd.concat(per_run)), by=[*ctx.by, "target"])
    order = {a: i for i, a in enumerate(ctx.activations)}
    table = table.assign(setting=ctx.label(table), _order=table["activation"].map(order))
    return table.sort_values(["setting", "epoch_median", "seconds_median", "_order"], na_position="last")


def section_speed(ctx: Context) -> str:
    """Epochs and training seconds until the validation metric first reaches a target set by the best activation."""
    table, label = speed_frame(ctx), ctx.metric.label
    if table.empty:
        return ""
    note = (
        f"How fast each activation learns: the epochs, and the training seconds (evaluation excluded), until its "
        f"validation {label} first reaches the target, {target_share(ctx.metric):.0%} of the best activation's mean "
        f"final validation {label} in that setting. Sorted by the median over its ok runs, where a run that never "
        "reached the target counts as never (*never*: most of its runs did not reach it); the means with their "
        "interval are over the runs that reached it (*reached*: of the ok runs). Seconds were measured on the machine "
        "in the header, so compare them within this report only."
    )
    return f"## Time to a validation-{label} target\n\n" + note + "\n\n" + tables.target_table(table) + "\n"


def summary_frame(ctx: Context) -> pd.DataFrame:
    """The final test metric per configuration with its interval, counts and best/tied mark (also summary.csv), and
    the parameter count with its ratio to ReLU's in the same setting; the best first."""
    higher = ctx.metric.higher_is_better
    table = stats.summarize(ctx.runs, ctx.metric.test, by=ctx.by)
    stuck = ctx.runs.assign(n_not_learned=outcomes.not_learned(ctx.runs, ctx.setting_cols, ctx.metric))
    table = table.merge(stuck.groupby(ctx.by, dropna=False)["n_not_learned"].sum().reset_index(), on=ctx.by)
    table["mark"] = stats.best_marks(table, group=ctx.setting_cols, higher_is_better=higher)
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
    table = table.sort_values(["setting", "mean", "_order"], ascending=[True, not higher, True], na_position="last")
    return table.drop(columns="_order").reset_index(drop=True)


def roles(ctx: Context, mark: str = "thick black line") -> str:
    """How the figures draw the activations, for a caption."""
    if not ctx.highlight or len(ctx.activations) <= figures.MAX_COLOURED + 1:
        return f"{BASELINE} is the {mark}."
    return f"{BASELINE} is the {mark}; coloured {ctx.highlight_why} ({', '.join(ctx.highlight)}), the others grey."


def section_accuracy(ctx: Context) -> str:
    """The final test metric per activation with interval and parameter count, sorted; "best" only where it is."""
    table = summary_frame(ctx)
    note = (
        "`n` counts ok runs; diverged and failed runs are counted, not averaged; `n_not_learned` counts the ok runs "
        f"that did not learn (final validation {ctx.metric.label} under a quarter of the way from chance to the "
        "setting's best mean: see 'Runs that did not learn'), which are in the mean. **best** is marked only where the "
        "top interval does not overlap the runner-up's; otherwise the top activations are `tied`. `parameters` is the "
        f"network's size with that activation; `x {BASELINE}` marks a network whose size differs from {BASELINE}'s "
        "(maxout widens the layer before it; maxout_matched is narrowed back to ReLU's count)."
    )
    if ctx.metric.unit == "nats":
        note += " `in bits` is the mean in bits (nats / ln 2): bits per character, for a character model."
    return f"## Final test {ctx.metric.label}\n\n" + tables.accuracy_table(table, ctx.metric) + f"\n\n{note}\n"


def pairs(ctx: Context, reference: str = BASELINE) -> pd.DataFrame:
    """Each activation against ``reference`` per setting (paired, Holm within the setting), with parameter ratio and
    label."""
    tests = stats.paired_tests(
        ctx.runs,
        ctx.metric.test,
        baseline=reference,
        test=ctx.paired_test,
        higher_is_better=ctx.metric.higher_is_better,
        by=ctx.pair_by,
    )
    tests = tests.assign(setting=ctx.label(tests))
    ratios = summary_frame(ctx).set_index(["setting", "activation"])["params_ratio"]
    keys = zip(tests["setting"], tests["activation"], strict=True)
    tests["params_ratio"] = [ratios.get(key, float("nan")) for key in keys]
    tests["label"] = tests["activation"] + tests["params_ratio"].map(findings.capacity_note)
    return tests


def section_cost(ctx: Context) -> str:
    """Cost beside the metric: time alone (interleaved rounds), throughput and memory from the runs, and a scatter."""
    summary = summary_frame(ctx)
    ok = ctx.runs[ctx.runs["status"].eq(Status.OK)]
    if ok.empty:
        return ""
    table = summary[[*ctx.by, "setting", "mean"]].rename(columns={"mean": "score"})
    measured = ("samples_per_second", "saved_bytes_per_sample", "peak_memory_bytes", "step_ms")
    number = lambda column: pd.to_numeric(ok.get(column, float("nan")), errors="coerce")  # older records lack some
    ok = ok.assign(step_ms=1000 * number("batch_size") / number("samples_per_second"))
    values = ok[ctx.by].assign(**{c: pd.to_numeric(ok.get(c, float("nan")), errors="coerce") for c in measured})
    table = table.merge(values.groupby(ctx.by, dropna=False)[list(measured)].median().reset_index(), on=ctx.by)
    table = table.rename(columns={"samples_per_second": "speed"})
    parts, label = ["## Cost and memory", ""], ctx.metric.label
    caption = (
        f"{label.capitalize()} against training speed per setting, one point per activation (means over seeds, from "
        "the runs themselves, which trained side by side as the header says): "
        f"{'up' if ctx.metric.higher_is_better else 'down'} and to the right is better. {roles(ctx, 'black point')}"
    )
    fig = figures.cost_scatter(table, ctx.palette(), ctx.metric)
    parts.append(ctx.figure(fig, re.sub(r"\W+", "_", label) + "_vs_speed", caption))
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
        f"Per activation: {alone}per setting, the milliseconds of its runs per training step (forward, backward and "
        "optimizer step of one batch; median over seeds, evaluation excluded) with their ratio to ReLU's runs, and the "
        "bytes autograd saves for the backward pass per training sample (exact, counted with "
        f"`torch.autograd.graph.saved_tensors_hooks`, machine-independent), with their ratio to ReLU's.{gpu}",
        "",
        tables.cost_table(table, cost, ctx.activations, BASELINE),
        "",
    ]
    return "\n".join(parts)


def section_ranks(ctx: Context) -> str:
    """Mean rank of each activation over the suite's settings."""
    metric = ctx.metric
    table = stats.ranks(ctx.runs, metric.test, group=ctx.setting_cols, higher_is_better=metric.higher_is_better)
    if table.empty:
        return ""
    settings = ctx.runs[ctx.setting_cols].drop_duplicates()
    names = dict(zip(settings.astype(str).agg("/".join, axis=1), ctx.label(settings), strict=True))  # as ranks names
    table = table.rename(columns=names)
    note = (
        f"Rank of each activation's mean final test {metric.label} within each setting (1 = best, ties averaged); "
        "`overall` is the mean over the settings it ran in. An activation without an ok run ranks last there."
    )
    return "## Ranks\n\n" + note + "\n\n" + tables.markdown_table(table, {"overall": ".2f"}) + "\n"


def section_paired(ctx: Context) -> str:
    """Each activation against ReLU, paired on seed, with Holm-adjusted p-values; then against the activation the
    task's networks ship with, where there is one."""
    if BASELINE not in set(ctx.runs["activation"]):
        return f"## Paired tests against {BASELINE}\n\nThe suite has no `{BASELINE}` runs, so no paired tests.\n"
    return "\n".join(_paired(ctx, reference) for reference in ctx.references)


def _paired(ctx: Context, reference: str) -> str:
    test = ctx.paired_test
    table = pairs(ctx, reference)
    untested = int(table["n_pairs"].eq(0).sum())
    best_first = [True, not ctx.metric.higher_is_better]
    table = table[table["n_pairs"] > 0].sort_values(["setting", "mean_diff"], ascending=best_first)
    why = (
        f"paired t-test, because with {ctx.n_seeds} seeds (pairs) the Wilcoxon signed-rank test cannot reach "
        f"p < 0.05 (it needs at least {MIN_WILCOXON_PAIRS} pairs)"
        if test == "ttest"
        else f"Wilcoxon signed-rank test ({ctx.n_seeds} seeds)"
    )
    lines = [
        f"## Paired tests against {reference}",
        "",
        f"Final test {ctx.metric.label} of each activation minus {reference}'s, paired on seed (same initial weights, "
        f"data order and dropout masks), two-sided {why}; `ci` is the 95 % interval of the mean difference; `p_holm` "
        f"is Holm-adjusted within each setting (the family is the activations compared with {reference} there). "
        "`better`/`worse` only where p_holm < 0.05.",
    ]
    if untested:
        lines += [
            "",
            f"{untested} comparison(s) have no complete pair (no ok {reference} run of that setting) and are left out.",
        ]
    if table.empty:
        return "\n".join([*lines, "", "No complete pairs.", ""])
    return "\n".join([*lines, "", tables.paired_table(table), ""])
