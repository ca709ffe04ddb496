"""The section of a suite that repeats another's settings with more epochs (``[budget] short``): do the activations'
ranking and their verdicts against ReLU at the shorter budget hold at this one?"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analysis import effects, stats
from bench.config import SUITES_DIR
from bench.plan import load_plan
from bench.report import findings, tables
from bench.report.comparisons import pairs
from bench.report.context import MIN_WILCOXON_PAIRS, Context
from bench.report.tuned import side_by_side, verdict_cell
from bench.tasks import BASELINE, Metric

RESAMPLES = 2000


def _fate(short: str, long: str) -> str:
    """What became of a verdict against ReLU at the short budget: ``persists`` (the same at the long one), ``shrinks``
    (no evidence at the long one), ``flips`` (the opposite verdict), and for a tie at the short budget ``appears``
    (a difference at the long one) or ``tied at both``; ``not tested`` where a run on either side did not learn at
    either budget (no verdict to follow)."""
    if not {short, long} <= {"better", "worse", "tied"}:
        return "not tested"
    if short == "tied":
        return "tied at both" if long == "tied" else "appears"
    return "persists" if long == short else "shrinks" if long == "tied" else "flips"


def _match_columns(ctx: Context) -> list[str]:
    """What a setting is at either budget: the configuration without epochs, rate and seed."""
    return [c for c in stats.config_columns(ctx.runs) if c not in ("epochs", "lr", "activation")]


def verdicts(ctx: Context) -> pd.DataFrame:
    """Per setting and activation of this suite, its paired difference to ReLU and verdict at both budgets (the short
    one as its own report gives it: paired by seed over all its seeds, Holm over all its activations) and the fate."""
    short = ctx.with_regularizer(ctx.short_runs)
    match = _match_columns(ctx)
    test = "ttest" if short["seed"].nunique() < MIN_WILCOXON_PAIRS else "wilcoxon"
    by = [c for c in stats.config_columns(short) if c != "lr"]
    higher = ctx.metric.higher_is_better
    before = stats.paired_tests(short, ctx.metric.test, baseline=BASELINE, test=test, higher_is_better=higher, by=by)
    after = pairs(ctx)
    keys = [*match, "activation"]
    both = side_by_side(before, after, keys, ("short", "long")).merge(after[[*keys, "setting"]], on=keys)
    return both.assign(fate=[_fate(a, b) for a, b in zip(both["verdict_short"], both["verdict_long"], strict=True)])


def _epochs(ctx: Context, match: list[str]) -> pd.DataFrame:
    """Per setting: its label and the epochs at the short and at the long budget."""
    long = ctx.runs.groupby(match, dropna=False, sort=False)["epochs"].max().rename("epochs_long")
    short = ctx.short_runs.groupby(match, dropna=False)["epochs"].max().rename("epochs_short")
    out = pd.concat([long, short], axis=1, join="inner").reset_index()
    return out.assign(setting=ctx.label(out.assign(epochs=out["epochs_long"])).to_numpy())


def section_budget(ctx: Context) -> str:
    """Spearman's rank correlation per setting between the two budgets, with a bootstrap interval over seeds, and
    which of the short budget's verdicts against ReLU persist, shrink, flip or appear."""
    if ctx.short_runs is None and not ctx.short_source:
        return ""
    match = _match_columns(ctx)
    settings = _epochs(ctx, match) if ctx.short_runs is not None else pd.DataFrame()
    ratios = sorted({round(r, 2) for r in settings["epochs_long"] / settings["epochs_short"]}) if len(settings) else []
    title = (
        f"## Do the rankings hold with {ratios[0]:g}x the epochs?\n\n"
        if len(ratios) == 1
        else ("## Do the rankings hold with more epochs?\n\n")
    )
    if settings.empty:
        return title + f"No runs of the same settings at a shorter budget: {ctx.short_source or 'none named'}.\n"
    if not {BASELINE} <= set(ctx.runs["activation"]) & set(ctx.short_runs["activation"]):
        return title + f"No {BASELINE} runs at both budgets to compare the verdicts with ({ctx.short_source}).\n"
    short = ctx.short_runs[ctx.short_runs["activation"].isin(ctx.activations)]
    agreement = effects.rank_agreement(short, ctx.runs, match, ctx.metric.test, resamples=RESAMPLES)
    agreement = agreement.merge(settings, on=match)
    both = verdicts(ctx)
    counts = both.groupby("setting", sort=False)["fate"].value_counts().unstack(fill_value=0)
    rows = []
    for _, r in agreement.iterrows():
        fates = counts.loc[r["setting"]] if r["setting"] in counts.index else pd.Series(dtype=int)
        rows.append(
            {
                "setting": r["setting"],
                "epochs": f"{r['epochs_short']:g} -> {r['epochs_long']:g}",
                "activations": int(r["n_items"]),
                "seeds": f"{r['n_short_seeds']} / {r['n_long_seeds']}",
                "Spearman rho [95 % CI]": (
                    f"{r['rho']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
                    if pd.notna(r["rho"])
                    else "not computed (fewer than 3 activations, or all equal)"
                ),
                **{fate: int(fates.get(fate, 0)) for fate in ("persists", "shrinks", "flips", "appears", "not tested")},
            }
        )
    note = (
        f"The same settings, activations and learning rates at the shorter budget, from {ctx.short_source}, against "
        "this suite's runs. Spearman's rho is the rank correlation of the activations' mean final test "
        f"{ctx.metric.label} between the two budgets (1: the same order; an activation without an ok run ranks "
        f"last), with a 95 % percentile bootstrap interval over seeds ({RESAMPLES} resamples, all activations "
        "together; a seed both budgets ran is one draw for both, as it is the same initial weights and data order, "
        "and a seed only one ran is drawn for that one alone). Verdicts against ReLU (paired by seed, Holm within the "
        "setting) at the short budget as its own report gives them (all its seeds and activations) and at this one: "
        "**persists** (the same difference), **shrinks** (a difference there, no evidence here; the mean difference "
        "may even change sign), **flips** (the opposite difference here), **appears** (no evidence there, a "
        "difference here), **not tested** (a run on one side did not learn at either budget). With fewer seeds "
        "here, a difference must be larger to be found, and the Holm family "
        "differs (there all the shorter suite's activations, here this suite's): a verdict at the threshold can "
        "shrink or appear for that alone. Read the intervals."
    )
    changed = both[both["fate"].ne("tied at both")].sort_values(["setting", "fate", "activation"], kind="stable")
    changed = changed.assign(
        **{
            "short budget": [verdict_cell(r, "short", ctx.metric) for _, r in changed.iterrows()],
            "long budget": [verdict_cell(r, "long", ctx.metric) for _, r in changed.iterrows()],
        }
    )
    listing = tables.markdown_table(changed[["setting", "activation", "short budget", "long budget", "fate"]])
    tied = int(both["fate"].eq("tied at both").sum())
    listed = (
        f"Every verdict that is not a tie at both budgets (the other {tied} of {len(both)} are):\n\n{listing}\n"
        if len(changed)
        else f"All {len(both)} comparisons with ReLU are ties at both budgets.\n"
    )
    table = tables.markdown_table(pd.DataFrame(rows))
    return f"{title}{summary(agreement, both, ctx.metric)}\n\n{note}\n\n{table}\n\n{listed}"


def summary(agreement: pd.DataFrame, both: pd.DataFrame, metric: Metric) -> str:
    """One sentence: the range of rho over the settings and how many verdicts persist, shrink, flip or appear."""
    fates = both["fate"].value_counts()
    differed = int(fates.get("persists", 0) + fates.get("shrinks", 0) + fates.get("flips", 0))
    computed = agreement["rho"].dropna()
    low, high = computed.min(), computed.max()
    rho = (
        "not computed" if computed.empty else f"between {low:.2f} and {high:.2f}" if len(computed) > 1 else f"{low:.2f}"
    )

    def named(rows: pd.DataFrame, what: str) -> str:
        listed = "; ".join(
            f"{r['activation']} in {r['setting']}: {r['verdict_short']} {metric.diff(r['mean_diff_short'])}, "
            f"then {r['verdict_long']} {metric.diff(r['mean_diff_long'])}"
            for _, r in rows.iterrows()
        )
        return f" ({what}{listed})" if listed else ""

    turned = named(both[both["fate"].eq("shrinks") & sign_changed(both)], "the mean difference changes sign for ")
    flipped = named(both[both["fate"].eq("flips")], "")
    return (
        f"Spearman's rho between the budgets is {rho} over the {findings.counted(len(computed), 'setting')}. Of the "
        f"{findings.counted(differed, 'difference')} from ReLU at the short budget, {int(fates.get('persists', 0))} "
        f"persist, {int(fates.get('shrinks', 0))} shrink to no evidence{turned} and {int(fates.get('flips', 0))} flip "
        f"to the opposite verdict{flipped}; {int(fates.get('appears', 0))} appear only with the longer budget."
    )


def sign_changed(both: pd.DataFrame) -> pd.Series:
    """Whether the mean difference to ReLU has the other sign at the long budget."""
    return (both["mean_diff_short"] > 0) != (both["mean_diff_long"] > 0)


def section_longer(ctx: Context) -> str:
    """One sentence that links the report of each suite that repeats this one's settings with more epochs (its
    ``[budget] short`` names this report)."""
    lines = []
    for path in sorted(SUITES_DIR.glob("*.toml")):
        plan = load_plan(str(path))
        if not plan.short or Path(plan.short).resolve() != ctx.out.resolve():
            continue
        long = pd.DataFrame([s.flat() for s in plan.specs])
        mine = ctx.runs.groupby(["dataset", "model"])["epochs"].max()
        ratios = {
            round(e / mine[d, m], 2)
            for d, m, e in long[["dataset", "model", "epochs"]].itertuples(index=False)
            if (d, m) in mine.index
        }
        more = f"{ratios.pop():g}x the epochs" if len(ratios) == 1 else "more epochs"
        lines.append(
            f"Do these verdicts hold with {more}? The suite `{path.stem}` trains {long['activation'].nunique()} of "
            f"these activations in these settings at their rates with {more}: [its report](../{path.stem}/README.md) "
            "says which verdicts persist, shrink or flip."
        )
    return "\n\n".join(lines) + "\n" if lines else ""
