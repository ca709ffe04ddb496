"""A suite's page: ``README.md`` as a list of sections (:data:`SECTIONS`), each a function of a
:class:`~bench.report.context.Context` returning markdown ("" = nothing to show), written beside its ``figures/*.png``,
``results.csv`` (one row per run) and ``summary.csv`` (one row per configuration). The sections that compare
activations are in :mod:`bench.report.comparisons`, the grids and probes in :mod:`bench.report.grids`; this module
holds the page's frame (what was run, what is missing, the claims, the activations, the files) and its order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import pandas as pd
import seaborn as sns

import activations
from bench import checks, provenance
from bench.analysis import claims, frames, outcomes
from bench.config import BUNDLE_FILE, Status
from bench.report import budget, comparisons, factors, figures, grids, tables, tuned
from bench.report.context import Context

CLAIMS_SUITE = "seed-claims"  # the suite whose report has a verdict per textbook claim (bench/analysis/claims/)

MAX_LISTED = 20


def section_header(ctx: Context) -> str:
    """Title, description, command, code version, packages, machine, wall time and dates."""
    written = (
        f"written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.report --suite {ctx.suite}` "
        f"at git SHA `{provenance.git_sha()}`"
    )
    description = f"{ctx.description}\n\n" if ctx.description else ""
    runs = ctx.runs if ctx.tuning_runs is None else pd.concat([ctx.tuning_runs, ctx.runs], ignore_index=True)
    table = tables.header_table(runs, ctx.command, written)  # a tuned suite: its tuning runs count as its runs
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


def section_not_learned(ctx: Context) -> str:
    """Every run that ended ok but did not learn (:mod:`bench.analysis.outcomes`), named with how far it went."""
    metric = ctx.metric
    went = outcomes.progress(ctx.runs, ctx.setting_cols, metric)
    stuck = ctx.runs[went.lt(outcomes.LEARNED)]
    lines = ["## Runs that did not learn", ""]
    rule = (
        f"A run that ended ok did not learn when its final validation {metric.label} went less than a quarter of the "
        "way from chance to the best mean of its setting (the best activation there, at its rate); such a run is in "
        "the means but no paired test is made with it: the comparison is *unstable (k of n seeds did not learn)*, or "
        "*did not learn* where no seed did."
    )
    if stuck.empty:
        return "\n".join([*lines, f"None of the {int(went.notna().sum())} ok runs. {rule}", ""])
    shown = stuck.assign(
        setting=ctx.label(stuck), progress=went[stuck.index], **{f"val {metric.name}": stuck[metric.val]}
    )
    columns = ["key", "setting", "activation", "seed", "lr", f"val {metric.name}", "progress"]
    table = tables.markdown_table(shown[columns], {"lr": "g", f"val {metric.name}": ".4f", "progress": ".3f"})
    head = f"{len(stuck)} of {int(went.notna().sum())} ok runs. {rule} `progress`: 0 at chance, 1 at the best mean."
    return "\n".join([*lines, head, "", table, ""])


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


def section_files(ctx: Context) -> str:
    return (
        "## Files\n\n- [results.csv](results.csv): one row per run, every status, every recorded field.\n"
        "- [summary.csv](summary.csv): one row per configuration: n, mean, interval and counts of final test "
        f"{ctx.metric.label}.\n"
        f"- [{BUNDLE_FILE}]({BUNDLE_FILE}): every run with its per-epoch and per-layer rows, the data this report is "
        f"made from (format: `bench/runs/bundle.py`); `python -m bench.bundle import reports/{ctx.suite}` loads it "
        f"into a store, and `python -m bench.report --suite {ctx.suite}` then rebuilds this report.\n"
    )


Section = Callable[[Context], str]

SECTIONS: tuple[Section, ...] = (
    section_header,
    section_coverage,
    section_warnings,
    comparisons.section_findings,
    factors.section_findings,
    budget.section_longer,
    budget.section_budget,
    tuned.section_flips,
    tuned.section_before,
    tuned.section_tuning,
    section_claims,
    comparisons.section_forest,
    comparisons.section_curves,
    comparisons.section_speed,
    comparisons.section_accuracy,
    comparisons.section_cost,
    comparisons.section_ranks,
    comparisons.section_paired,
    grids.section_init,
    grids.section_regularizer,
    grids.section_gap,
    grids.section_lr,
    grids.section_gradient_flow,
    section_failures,
    section_not_learned,
    section_activations,
    section_files,
)


def write(ctx: Context, sections: Iterable[Section] = SECTIONS) -> Path:
    """Write the page of ``ctx`` into ``ctx.out`` (README.md, its figures, results.csv, summary.csv); the README."""
    matplotlib.use("Agg")
    ctx.out.mkdir(parents=True, exist_ok=True)
    for stale in (ctx.out / "figures").glob("*.png"):  # a figure this build does not draw again must not linger
        stale.unlink()
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        text = "\n".join(part for part in (section(ctx) for section in sections) if part)
    ctx.runs.to_csv(ctx.out / "results.csv", index=False)
    comparisons.summary_frame(ctx).to_csv(ctx.out / "summary.csv", index=False)
    readme = ctx.out / "README.md"
    readme.write_text(text)
    return readme
