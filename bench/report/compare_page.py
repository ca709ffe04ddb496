"""The page ``python -m bench.compare`` writes: new activations ranked among a published suite's, and the control.

The field is the suite's published runs plus the new activations' runs (ReLU's are the control's when the control
drifted); the sections reuse the suite report's tables and figures (:mod:`bench.report`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import pandas as pd
import seaborn as sns

from bench import provenance
from bench.analysis import frames, outcomes, stats
from bench.report import comparisons, figures, findings, page, tables
from bench.report.context import Context, context
from bench.tasks import BASELINE, Metric

NEIGHBOURS = ("relu", "gelu", "silu")  # the property cards shown beside the compared activations'


def _join(*found: frames.SuiteRuns, drop: frozenset[str] = frozenset()) -> frames.SuiteRuns:
    """Several runs' frames as one, without the runs of the activations in ``drop``."""
    runs = pd.concat([f.runs[~f.runs["activation"].isin(drop)] for f in found], ignore_index=True)
    keys = set(runs["key"])

    def pick(name: str) -> pd.DataFrame:
        rows = pd.concat([getattr(f, name) for f in found], ignore_index=True)
        return rows[rows["key"].isin(keys)]

    return frames.SuiteRuns(
        specs=[s for f in found for s in f.specs],
        runs=runs,
        epochs=pick("epochs").reset_index(drop=True),
        layers=pick("layers").reset_index(drop=True),
        missing=[s for f in found for s in f.missing],
        other_runs=0,
        duplicates=0,
    )


def against(ctx: Context, name: str) -> pd.DataFrame:
    """``name`` minus every other activation of the field per setting, paired by seed, Holm within the setting."""
    higher = ctx.metric.higher_is_better
    tests = stats.paired_tests(
        ctx.runs, ctx.metric.test, baseline=name, test=ctx.paired_test, higher_is_better=higher, by=ctx.pair_by
    )
    flip = {"better": "worse", "worse": "better"}
    stuck = ~outcomes.tested(tests["better"])  # said again from ``name``'s side: its own seeds first
    tests.loc[stuck, "better"] = [
        outcomes.verdict(r.n_pairs, r.n_base_not_learned, r.n_not_learned, r.activation)
        for r in tests[stuck].itertuples()
    ]
    return tests.assign(
        setting=ctx.label(tests),
        mean_diff=-tests["mean_diff"],
        ci_low=-tests["ci_high"],
        ci_high=-tests["ci_low"],
        better=tests["better"].map(lambda b: flip.get(b, b)),
        versus=tests["activation"],
        activation=name,
    )


# what changes float rounding
ENVIRONMENT = ("device", "device_name", "cpu_capability", "flush_denormal", "threads", "torch_version")


def _environment(runs: pd.DataFrame) -> str:
    """Where runs were made, as the drift statement names it: device, code, host, torch, threads."""
    return (
        f"{tables.values(runs, 'device')} {tables.values(runs, 'device_name')}, "
        f"git SHA {tables.values(runs, 'git_sha')}, host {tables.values(runs, 'host')}, "
        f"torch {tables.values(runs, 'torch_version')}, "
        f"{tables.values(runs, 'threads')} thread(s) per run"
    )


def _control_section(
    table: pd.DataFrame, expected: int, published: pd.DataFrame, control: pd.DataFrame, metric: Metric
) -> tuple[str, bool]:
    """The control's verdict (markdown) and whether it matched: every control run identical to the published one."""
    matched = len(table) == expected and bool(table["identical"].all())
    where = _environment(published)
    if matched:
        text = (
            f"**The control matched.** All {expected} {BASELINE} runs trained here equal the published ones bit for "
            "bit (every result field and every per-epoch and per-layer value; training times aside): this environment "
            f"reproduces the published one ({where}), so every comparison below pairs runs of one environment."
        )
        return f"## Control\n\n{text}\n", True
    per = table.groupby("setting").agg(
        runs=("seed", "size"),
        identical=("identical", "sum"),
        median_abs_diff=("abs_diff", "median"),
        max_abs_diff=("abs_diff", "max"),
    )
    per[["median_abs_diff", "max_abs_diff"]] *= metric.scale
    missing = expected - len(table)
    lost = f" ({missing} control runs are missing: failed or not trained)" if missing else ""
    differ, digits = int((~table["identical"]).sum()), metric.decimals
    text = (
        f"**The control drifted.** {differ} of {len(table)} {BASELINE} runs trained here differ from"
        f" the published ones (published: {where}; here: {_environment(control)}){lost}. |Δ test {metric.label}| per "
        f"run in {findings.unit_words(metric)[1]}, median {metric.scale * table['abs_diff'].median():.{digits}f}, max "
        f"{metric.scale * table['abs_diff'].max():.{digits}f}. Comparisons with {BASELINE} "
        "below use the control (both trained here: one environment); comparisons with every other activation use its "
        "published runs (the published environment), so differences of the size of the drift are not evidence. "
        "Each run: `control.csv`."
    )
    differing = [c for c in ENVIRONMENT if tables.values(published, c) != tables.values(control, c)]
    if differing:
        text += (
            f" The two environments differ in {', '.join(differing)}: float rounding differs between processor models, "
            "devices, thread counts and torch versions, so runs of one spec are not expected to be equal bit for bit "
            "across them; the same environment as the published runs would reproduce them."
        )
    columns = {"median_abs_diff": f"median |Δ| ({metric.unit})", "max_abs_diff": f"max |Δ| ({metric.unit})"}
    shown = per.reset_index().rename(columns=columns)
    shown = tables.markdown_table(shown, dict.fromkeys(columns.values(), f".{digits}f"))
    return f"## Control\n\n{text}\n\n{shown}\n", False


def _verdicts(ctx: Context, names: list[str], ranks: pd.DataFrame, pairs: pd.DataFrame, matched: bool) -> str:
    """Per activation and setting: rank with interval, difference to ReLU, and how many it beats or loses to."""
    lines = ["## Verdict", ""]
    relu = f"{BASELINE}" + ("" if matched else " (the control)")
    mine = ctx.runs[ctx.runs["activation"].isin(names)].assign(setting=lambda f: ctx.label(f))
    for name in names:
        lines.append(f"**{name}**, per setting (paired by seed, Holm p < 0.05 within the setting):\n")
        ranked = ranks[ranks["activation"].eq(name)]
        runs = mine[mine["activation"].eq(name)]
        for setting, part in runs[~runs["setting"].isin(ranked["setting"])].groupby("setting", sort=False):
            counts = ", ".join(f"{n} {status}" for status, n in part["status"].value_counts().items())
            lines.append(f"- {setting}: not ranked, no run ended ok ({counts}; see 'Diverged and failed runs').")
        for _, r in ranked.iterrows():
            compared = pairs[pairs["activation"].eq(name) & pairs["setting"].eq(r["setting"])]
            rows = compared[compared["p_value"].notna()]
            base = compared[compared["versus"].eq(BASELINE) & compared["n_pairs"].ge(2)]
            stuck = int((~outcomes.tested(compared["better"])).sum())
            if len(base):
                b = base.iloc[0]
                versus = f"vs {relu} {findings.difference(b, ctx.metric)} ({b['better']})"
            else:
                versus = f"no pair with {relu}"
            lines.append(
                f"- {r['setting']}: rank **{r['rank']}** of {r['n_items']} [{r['rank_low']}, {r['rank_high']}], "
                f"test {ctx.metric.label} {r['mean']:.4f}; {versus}; better than "
                f"{int(rows['better'].eq('better').sum())} and worse than {int(rows['better'].eq('worse').sum())} of "
                f"the {len(rows)} others"
                + (f"; not tested against {stuck} (a run did not learn)" if stuck else "")
                + "."
            )
        lines.append("")
    return "\n".join(lines)


def _ranks(ctx: Context, names: list[str]) -> pd.DataFrame:
    metric, higher = ctx.metric.test, ctx.metric.higher_is_better
    parts = [
        stats.bootstrap_rank(ctx.runs, n, metric, ctx.setting_cols, higher_is_better=higher).assign(activation=n)
        for n in names
    ]
    table = pd.concat(parts, ignore_index=True)
    return table.assign(setting=ctx.label(table))


def _rates_section(ctx: Context, names: list[str]) -> str:
    """A tuned suite: the rate each compared activation chose per setting, beside ReLU's, on the suite's grid."""
    if not ctx.tuned:
        return ""
    shown = [*names, BASELINE]
    choices = ctx.choices[ctx.choices["activation"].isin(shown)].drop_duplicates([*ctx.setting_cols, "activation"])
    choices = choices.assign(setting=ctx.label(choices).to_numpy())
    rate = choices["lr"].map(lambda lr: f"{lr:g}") + choices["edge"].map(lambda e: f" ({e} edge)" if e else "")
    table = choices.assign(rate=rate).pivot(index="setting", columns="activation", values="rate")
    grids = sorted({", ".join(f"{r:g}" for r in grid) for grid in choices["grid"]})
    note = (
        f"The suite chooses each activation's learning rate on validation ([tune]), and {', '.join(names)} "
        f"{'were' if len(names) > 1 else 'was'} tuned here the same way: the rate of its setting's grid "
        f"({'; '.join(grids)}, one rate more past an edge where the best was at it) with the best final validation "
        f"{ctx.metric.label} on the suite's tuning seeds, then its evaluation seeds at that rate. Every comparison "
        "above pairs each activation at its own chosen rate."
    )
    shown_cols = [c for c in shown if c in table.columns]
    return "## Learning rates\n\n" + note + "\n\n" + tables.markdown_table(table[shown_cols].reset_index()) + "\n"


def _rank_section(ranks: pd.DataFrame, metric: Metric) -> str:
    shown = ranks[["activation", "setting", "rank", "rank_low", "rank_high", "n_items", "mean", "best", "excluded"]]
    note = (
        f"Rank 1 is the best mean final test {metric.label} in the setting, among every activation with an ok run "
        "there (`excluded`: none ok). The interval is a 95 % bootstrap over seeds (2000 resamples; each draws the "
        "seeds with replacement and ranks every activation on the same draw, since the runs are paired by seed)."
    )
    return (
        "## Rank among the published activations\n\n"
        + note
        + "\n\n"
        + tables.markdown_table(shown, {"mean": ".4f"})
        + "\n"
    )


def _forest_section(ctx: Context, pairs: pd.DataFrame, matched: bool) -> str:
    parts = ["## Differences to every activation", ""]
    control = "" if matched else " (control, this machine)"
    for (name, setting), rows in pairs.groupby(["activation", "setting"], sort=False):
        if rows["n_pairs"].max() < 2:
            continue
        rows = rows.assign(label="vs " + rows["versus"] + rows["versus"].eq(BASELINE).map({True: control, False: ""}))
        title = f"{name}, {setting}: green/red = {name} better/worse (Holm p < 0.05 within the setting)"
        caption = (
            f"{setting}: {name}'s final test {ctx.metric.label} minus each activation's, paired by seed, mean (dot) "
            "and 95 % interval (line); filled green where it is better, red where worse (Holm within the setting), "
            "open grey where there is no evidence of a difference."
        )
        slug = re.sub(r"[^a-z0-9]+", "_", f"{name} {setting}".lower()).strip("_")
        xlabel = f"{name}'s test {ctx.metric.label} minus the listed activation's"
        fig = figures.forest(rows, title, ctx.metric, xlabel)
        parts.append(ctx.figure(fig, f"forest_{slug}", caption))
    return "\n".join(parts) if len(parts) > 2 else ""


def build(
    names: list[str],
    suite: str,
    header: dict,
    published: frames.SuiteRuns,
    here: frames.SuiteRuns,
    control: frames.SuiteRuns,
    drift: pd.DataFrame,
    out: Path,
    command: str,
    timing: bool = True,
    choices: pd.DataFrame | None = None,
) -> Path:
    """Write ``out/README.md``, its figures and CSV files; return the README path. ``choices``: a tuned suite's chosen
    rates (the published activations' and the new ones'), each activation then paired at its own rate."""
    matplotlib.use("Agg")
    metric = Metric.of(control.runs)  # as compare.drift reads it
    control_text, matched = _control_section(drift, len(control.specs), published.runs, control.runs, metric)
    # ReLU's runs are the published ones when the control matched them, else the control's (one environment)
    field = _join(published, here) if matched else _join(_join(published, drop=frozenset({BASELINE})), control, here)
    title = f"the compared activation{'s' if len(names) > 1 else ''}"
    # the suite's text is in its own report
    ctx = context(suite, "", field, out, command, timing, highlight=names, choices=choices)
    ctx.highlight_why = f"{'are' if len(names) > 1 else 'is'} {title}"
    local = context(suite, "", _join(here, control), out, command, timing, highlight=[], choices=choices)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / "figures").glob("*.png"):
        stale.unlink()
    pairs = pd.concat([against(ctx, n) for n in names], ignore_index=True)
    ranks = _ranks(ctx, names)
    written = f"written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at git SHA `{provenance.git_sha()}`"
    intro = (
        f"# actbench comparison: {', '.join(f'`{n}`' for n in names)} against suite `{suite}`\n\n"
        f"{', '.join(names)} trained here on every configuration and seed of suite `{suite}`, with {BASELINE} as a "
        f"control, and compared with the suite's {published.runs['activation'].nunique()} published activations "
        f"({len(published.runs)} runs from `runs.jsonl.gz`, written at git SHA `{header.get('git_sha')}`, not "
        f"trained again; the suite's settings and budget are in its own report, `reports/{suite}/README.md`).\n\n"
        "The runs trained here:\n\n" + tables.header_table(local.runs, command, written) + "\n"
    )
    shas = local.runs.get("activation_sha", pd.Series(dtype=str)).dropna()
    code = sorted({f"`{a}` {s}" for a, s in zip(local.runs["activation"], shas, strict=False) if s})
    if code:
        intro += f"\nSource hash of each plugin activation's module (its runs' key): {', '.join(code)}.\n"
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        sections = [
            intro,
            _verdicts(ctx, names, ranks, pairs, matched),
            _rates_section(ctx, names),
            control_text,
            _rank_section(ranks, ctx.metric),
            _forest_section(ctx, pairs, matched),
            comparisons.section_curves(ctx),
            page.section_activations(local, [*names, *NEIGHBOURS]),
            comparisons.section_cost(local),
            page.section_failures(local),
            "## Files\n\n- [results.csv](results.csv): the runs trained here (the compared activations and the "
            "control), every recorded field.\n- [comparison.csv](comparison.csv): every paired difference shown "
            "above.\n- [ranks.csv](ranks.csv): the ranks and their intervals.\n"
            "- [control.csv](control.csv): each control run against the published run of its setting and seed: "
            f"both test {findings.plural(ctx.metric.label)}, |Δ| and whether identical.\n",
        ]
    local.runs.to_csv(out / "results.csv", index=False)
    pairs.drop(columns=["baseline"]).to_csv(out / "comparison.csv", index=False)
    ranks.to_csv(out / "ranks.csv", index=False)
    drift.to_csv(out / "control.csv", index=False)
    readme = out / "README.md"
    readme.write_text("\n".join(s for s in sections if s))
    return readme
