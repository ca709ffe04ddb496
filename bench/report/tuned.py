"""The sections of a tuned suite's page: the chosen rates, how sensitive each activation is to its rate, and which
verdicts tuning changed against the runs at the shared rates."""

from __future__ import annotations

import pandas as pd

from bench.analysis import stats, tuning
from bench.report import figures, findings, tables
from bench.report.comparisons import pairs
from bench.report.context import Context
from bench.tasks import BASELINE, Metric


def section_tuning(ctx: Context) -> str:
    """A tuned suite's chosen rates: per setting and activation, the rate its evaluation runs trained at."""
    if not ctx.tuned or ctx.choices.empty:
        return ""
    choices = ctx.choices.drop_duplicates([*ctx.setting_cols, "activation"]).reset_index(drop=True)
    choices = choices.assign(setting=ctx.label(choices).to_numpy())
    shown = choices["lr"].map(lambda lr: f"{lr:g}") + choices["edge"].map(lambda e: f" ({e} edge)" if e else "")
    table = choices.assign(rate=shown).pivot(index="activation", columns="setting", values="rate")
    table = table.reindex([a for a in ctx.activations if a in table.index]).reset_index()
    at_edge = choices[choices["edge"].ne("")]
    grids = sorted({", ".join(f"{r:g}" for r in grid) for grid in choices["grid"]})
    relu = choices[choices["activation"].eq(BASELINE)].set_index("setting")["lr"]
    others = choices[choices["activation"].ne(BASELINE) & choices["setting"].isin(relu.index)]
    differ = int(others["setting"].map(relu).ne(others["lr"]).sum())
    return (
        "## Learning rates, chosen per activation\n\n"
        "Each activation trained at its own rate, chosen by the same rule for ReLU as for every other: the rate of "
        f"its setting's grid with the best mean final validation {ctx.metric.label} over the tuning seeds (a diverged "
        "or failed run counts as worst, one that did not learn as chance; equal scores go to the smaller rate; the "
        "test split is never read), one rate "
        f"more past the grid's edge where the best was at the edge. Grids: {'; '.join(grids)}. "
        f"{differ} of {findings.counted(len(others), 'activation')} chose another rate than ReLU in the same setting; "
        f"{len(at_edge)} {'is' if len(at_edge) == 1 else 'are'} still at an edge of the extended grid"
        f"{' (the best rate may lie beyond it)' if len(at_edge) else ''}.\n\n"
        + tables.markdown_table(table)
        + "\n"
        + _sensitivity(ctx)
    )


def _sensitivity(ctx: Context) -> str:
    """A tuned suite's tuning runs: the validation metric against rate per setting, and each activation's rank at its
    best rate beside its rank over the whole grid (a rate where no run ended ok counts as the worst score)."""
    if ctx.tuning_runs is None or ctx.tuning_runs.empty:
        return ""
    metric, runs = ctx.metric, ctx.with_regularizer(ctx.tuning_runs)
    val = stats.summarize(runs, metric.val, by=[*ctx.by, "lr"])
    val["setting"] = ctx.label(val).to_numpy()
    caption = (
        f"Tuning runs: final validation {metric.label} against learning rate (log scale), mean over the tuning seeds "
        "with 95 % band. A flat curve is an activation that forgives its rate."
    )
    figure = ctx.figure(figures.lr_sensitivity(val, ctx.palette(), metric), "tuning_sensitivity", caption)
    raw = tuning.scores(runs, ctx.setting_cols, metric)
    score = tuning.floored(raw, metric)  # a rate with a broken run: the worst
    score = score.assign(setting=ctx.label(score).to_numpy())
    per = score.groupby(["setting", "activation"])["score"]
    ranks = pd.DataFrame({"best": per.max() if metric.higher_is_better else per.min(), "over the grid": per.mean()})
    ranks = ranks.reset_index()
    for column in ("best", "over the grid"):
        rank = ranks.groupby("setting")[column].rank(ascending=not metric.higher_is_better, method="min")
        ranks[f"rank ({column})"] = rank.astype(int)
    note = (
        f"Best and forgiving are different questions: each activation's mean validation {metric.label} at its best "
        "rate and averaged over its grid (a rate where a tuning run diverged or failed counts as "
        f"{tuning.worst(metric, raw['score']):.3g}), with its rank by each within the setting."
    )
    return (
        "\n"
        + figure
        + "\n"
        + note
        + "\n\n"
        + tables.markdown_table(ranks, {"best": ".4f", "over the grid": ".4f"})
        + "\n"
    )


VERDICT = {"better": "better", "worse": "worse", "no evidence": "tied"}


def section_flips(ctx: Context) -> str:
    """A tuned suite against the same runs at the shared rates (every activation at the suite's own rate): per setting,
    how many activations differ from ReLU under each protocol, and every verdict that tuning changed."""
    if not ctx.tuned:
        return ""
    title = "## What tuning changed\n\n"
    if ctx.shared_runs is None or ctx.shared_runs.empty:
        return title + f"No runs at the shared rates to compare with: {ctx.shared_source or 'the suite names none'}.\n"
    shared = ctx.with_regularizer(ctx.shared_runs)
    before = stats.paired_tests(
        shared,
        ctx.metric.test,
        baseline=BASELINE,
        test=ctx.paired_test,
        higher_is_better=ctx.metric.higher_is_better,
        by=ctx.pair_by,
    )
    before = before.assign(setting=ctx.label(before).to_numpy())
    after = pairs(ctx)
    keys = ["setting", "activation"]
    both = side_by_side(before, after, keys, ("shared", "tuned"))
    if both.empty:
        return title + f"No activation has at least 2 paired seeds under both protocols ({ctx.shared_source}).\n"
    rates = _rates(ctx, shared)
    both = both.merge(rates, on=keys, how="left")
    both["flipped"] = both["verdict_shared"].ne(both["verdict_tuned"])
    # neither the activation's rate nor ReLU's moved: a change there is the re-run's and the Holm family's, not tuning's
    both["same_rates"] = both["lr_shared"].eq(both["lr_tuned"]) & both["relu_shared"].eq(both["relu_tuned"])
    both["rerun"] = both["flipped"] & both["same_rates"]
    counts = both.groupby("setting", sort=False).agg(
        compared=("activation", "size"),
        differ_shared=("verdict_shared", lambda v: int(v.isin(["better", "worse"]).sum())),
        differ_tuned=("verdict_tuned", lambda v: int(v.isin(["better", "worse"]).sum())),
        flipped=("flipped", "sum"),
        rerun=("rerun", "sum"),
        own_rate=("own_rate", "sum"),
    )
    counts["flipped"] = [
        f"{f} ({r} at the same rates)" if r else f"{f}" for f, r in zip(counts.flipped, counts.rerun, strict=True)
    ]
    counts = counts.drop(columns="rerun").reset_index()
    counts = counts.rename(
        columns={
            "compared": "activations compared",
            "differ_shared": "differ from ReLU at the shared rate",
            "differ_tuned": "differ from ReLU at their own rates",
            "flipped": "verdicts changed",
            "own_rate": "chose another rate than ReLU",
        }
    )
    flips = both[both["flipped"]].sort_values(["setting", "same_rates", "verdict_tuned", "activation"], kind="stable")
    rates = [
        f"{r['lr_shared']:g} -> {r['lr_tuned']:g} ({r['relu_tuned']:g})" + (", same rates" if r["same_rates"] else "")
        for _, r in flips.iterrows()
    ]
    flips = flips.assign(
        **{
            "at the shared rate": [verdict_cell(r, "shared", ctx.metric) for _, r in flips.iterrows()],
            "at its own rate": [verdict_cell(r, "tuned", ctx.metric) for _, r in flips.iterrows()],
            "rates (ReLU's)": rates,
        }
    )
    note = (
        f"The same comparison with ReLU (final test {ctx.metric.label}, paired by seed, Holm within each setting) made "
        "twice: with every activation at the suite's shared rate, from the runs published before tuning "
        f"({ctx.shared_source}), and with each activation at its own chosen rate (this report). *tied* means no "
        f"evidence of a difference. {findings.counted(int(both['flipped'].sum()), 'verdict')} of "
        f"{findings.counted(len(both), 'comparison')} changed; {int(both['rerun'].sum())} of these at the same rates "
        "(neither the activation's nor ReLU's moved), which is not tuning's doing but the re-run's (another code "
        "version, and maybe another processor: compare the headers) and the Holm family's (each protocol's own "
        "activations): changes at the threshold of the test."
    )
    table = tables.markdown_table(
        flips[["setting", "activation", "at the shared rate", "at its own rate", "rates (ReLU's)"]]
    )
    listing = (
        f"\n\nEvery verdict that changed (rates: shared -> own, ReLU's own in brackets):\n\n{table}"
        if len(flips)
        else ""
    )
    return title + note + "\n\n" + tables.markdown_table(counts) + listing + "\n"


def side_by_side(before: pd.DataFrame, after: pd.DataFrame, keys: list[str], sides: tuple[str, str]) -> pd.DataFrame:
    """Two tables of paired tests against ReLU of the same comparisons (``keys``) side by side, their columns
    suffixed ``_<side>``, each with its ``verdict_<side>``; only comparisons with at least 2 pairs under both."""
    cols = [*keys, "mean_diff", "ci_low", "ci_high", "better", "n_pairs"]
    both = before[cols].merge(after[cols], on=keys, suffixes=tuple(f"_{side}" for side in sides))
    both = both[both[f"n_pairs_{sides[0]}"].ge(2) & both[f"n_pairs_{sides[1]}"].ge(2)]
    return both.assign(**{f"verdict_{side}": both[f"better_{side}"].map(lambda b: VERDICT.get(b, b)) for side in sides})


def _chosen(ctx: Context, frame: pd.DataFrame) -> pd.DataFrame:
    """Per setting and activation of ``frame`` (choices, or runs): its rate, with the setting's label."""
    chosen = frame.drop_duplicates([*ctx.setting_cols, "activation"])
    return chosen.assign(setting=ctx.label(chosen).to_numpy())[["setting", "activation", "lr"]]


def _rates(ctx: Context, shared: pd.DataFrame) -> pd.DataFrame:
    """Per setting and activation: the shared rate, the chosen one, ReLU's chosen one and whether they differ."""
    keys = ["setting", "activation"]
    out = _chosen(ctx, shared).merge(_chosen(ctx, ctx.choices), on=keys, suffixes=("_shared", "_tuned"))
    relu = out[out["activation"].eq(BASELINE)].set_index("setting")["lr_tuned"]
    out["relu_tuned"] = out["setting"].map(relu)
    out["relu_shared"] = out["setting"].map(out[out["activation"].eq(BASELINE)].set_index("setting")["lr_shared"])
    out["own_rate"] = out["lr_tuned"].ne(out["relu_tuned"]) & out["activation"].ne(BASELINE)
    return out


def verdict_cell(row: pd.Series, side: str, metric: Metric) -> str:
    """``worse, -1.47 pt [-2.01, -0.93]``: a verdict with its paired difference to ReLU."""
    return f"{row[f'verdict_{side}']}, {findings.difference(row, metric, f'_{side}')}"


def section_before(ctx: Context) -> str:
    """A tuned suite against its runs as published before, on fewer tuning seeds (``[tune] before``): which chosen
    rates moved and which verdicts against ReLU changed, those at unmoved rates counted apart."""
    if not ctx.tuned or not ctx.before_source:
        return ""
    title = "## What the added tuning seeds changed\n\n"
    if ctx.before_runs is None or ctx.before_runs.empty or ctx.before_choices is None:
        return title + f"No runs published before to compare with: {ctx.before_source}.\n"
    keys = ["setting", "activation"]
    rates = _chosen(ctx, ctx.before_choices).merge(_chosen(ctx, ctx.choices), on=keys, suffixes=("_before", "_now"))
    relu = rates[rates["activation"].eq(BASELINE)].set_index("setting")
    rates["relu_before"], rates["relu_now"] = (rates["setting"].map(relu[f"lr_{side}"]) for side in ("before", "now"))
    moved = rates[rates["lr_before"].ne(rates["lr_now"])].sort_values(keys, kind="stable")
    before = stats.paired_tests(
        ctx.with_regularizer(ctx.before_runs),
        ctx.metric.test,
        baseline=BASELINE,
        test=ctx.paired_test,
        higher_is_better=ctx.metric.higher_is_better,
        by=ctx.pair_by,
    )
    both = side_by_side(before.assign(setting=ctx.label(before).to_numpy()), pairs(ctx), keys, ("before", "now"))
    both = both.merge(rates, on=keys, how="left")
    both["same_rates"] = both["lr_before"].eq(both["lr_now"]) & both["relu_before"].eq(both["relu_now"])
    changed = both[both["verdict_before"].ne(both["verdict_now"])]
    changed = changed.sort_values(["setting", "same_rates", "activation"], kind="stable")
    note = (
        f"The choices and verdicts of this suite as published before ({ctx.before_source}), each rate chosen there "
        "on that bundle's tuning seeds, against this report's, chosen on all of its tuning seeds by the same rule. "
        f"{findings.counted(len(moved), 'chosen rate')} of {len(rates)} moved; "
        f"{findings.counted(len(changed), 'verdict')} against ReLU of {findings.counted(len(both), 'comparison')} "
        f"changed, {int(changed['same_rates'].sum())} of them where neither the activation's rate nor ReLU's moved "
        "(the verdict rule, the re-run or the Holm family: compare the headers). Both sides are judged by this "
        "report's rules, a run that did not learn included."
    )
    parts = [title + note + "\n"]
    if len(moved):
        shown = moved.assign(**{"rate before": moved["lr_before"], "rate now": moved["lr_now"]})
        table = tables.markdown_table(shown[[*keys, "rate before", "rate now"]], {"rate before": "g", "rate now": "g"})
        parts.append(f"Every rate that moved:\n\n{table}\n")
    if len(changed):
        shown = changed.assign(
            **{
                "before": [verdict_cell(r, "before", ctx.metric) for _, r in changed.iterrows()],
                "now": [verdict_cell(r, "now", ctx.metric) for _, r in changed.iterrows()],
                "rates (ReLU's)": [
                    f"{r['lr_before']:g} -> {r['lr_now']:g} ({r['relu_before']:g} -> {r['relu_now']:g})"
                    for _, r in changed.iterrows()
                ],
            }
        )
        table = tables.markdown_table(shown[[*keys, "before", "now", "rates (ReLU's)"]])
        parts.append(f"Every verdict that changed:\n\n{table}\n")
    return "\n".join(parts)
