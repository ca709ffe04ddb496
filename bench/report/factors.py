""" "What this benchmark found" for a suite that varies something besides the activation: the initializer (each
against the activation's own gain, ``auto``), the regularizer (each against none, on the test metric and on the
train-test gap, with the activation x regularizer interaction) or the learning rate (each activation's best rate and
its mean over the grid). Sentences that carry their numbers, as :mod:`bench.report.findings` writes for activations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis import effects, outcomes, stats, tuning
from bench.config import Status
from bench.report import findings
from bench.report.context import Context
from bench.tasks import Metric

ALPHA = 0.05
PLATEAU = 0.01  # a rate whose mean validation metric is this close to the best (accuracy: 1 point) is on the plateau
LEVEL_NAMES = {"normal": "N(0, 1)"}  # the textbook's name of our initializer
VERDICT_WORDS = {"test": {"better": "better", "worse": "worse"}, "gap": {"better": "narrower", "worse": "wider"}}


def factor(ctx: Context) -> str | None:
    """The factor this suite varies besides the activation (``init``, ``regularizer`` or ``lr``), or None: the one of
    them among the setting columns that vary within a dataset/model panel; any other such column (the regularizers'
    epochs and training subset) makes panels of its own."""
    named = [c for c in ctx.label_cols if c in ("init", "regularizer", "lr")]
    return named[0] if len(named) == 1 else None


def section_findings(ctx: Context) -> str:
    """The opening of an init, regularizer or learning-rate suite's page ("" for other suites)."""
    name = factor(ctx)
    if name is None or ctx.runs["status"].ne(Status.OK).all():
        return ""
    body = {"init": init_findings, "regularizer": regularizer_findings, "lr": lr_findings}[name](ctx)
    return f"## What this benchmark found\n\n{body}\n"


def _level(value: object) -> str:
    return LEVEL_NAMES.get(str(value), f"{value:g}" if isinstance(value, float) else str(value))


def _groups(ctx: Context, name: str, frame: pd.DataFrame):
    """(panel label, activation, rows) for each panel (the setting without ``name``) and activation of ``frame``, the
    activations in suite order."""
    frame = frame.assign(_panel=ctx.label(frame, drop=[name]).to_numpy())
    order = {a: i for i, a in enumerate(ctx.activations)}
    groups = frame.groupby(["_panel", "activation"], sort=False)
    for (panel, activation), rows in sorted(groups, key=lambda g: order.get(g[0][1], len(order))):
        yield panel, activation, rows


def _against(ctx: Context, name: str, reference: str, gap: bool = False) -> pd.DataFrame:
    """Each level of ``name`` against ``reference`` per panel and activation on the test metric (``gap``: on the
    train-test gap, where narrower is better), paired by seed, Holm within each."""
    runs = ctx.runs.assign(gap=stats.gap_values(ctx.runs)) if gap else ctx.runs
    return stats.paired_tests(
        runs,
        "gap" if gap else ctx.metric.test,
        baseline=reference,
        item=name,
        test=ctx.paired_test,
        by=ctx.by,
        higher_is_better=False if gap else ctx.metric.higher_is_better,
    )


def _effect(row: pd.Series, metric: Metric, kind: str = "test", suffix: str = "") -> str:
    """``+0.31 pt [+0.10, +0.52], better``: a paired difference (columns ending in ``suffix``) of the test metric or
    the gap (``kind``) with its verdict."""
    verdict = VERDICT_WORDS[kind].get(row[f"better{suffix}"], row[f"better{suffix}"])  # else: no evidence, unstable
    return f"{findings.difference(row, metric, suffix)}, {verdict}"


def _test_name(ctx: Context) -> str:
    return "paired t-test" if ctx.paired_test == "ttest" else "Wilcoxon signed-rank test"


def _health(ctx: Context) -> pd.DataFrame:
    """Per configuration: the test metric (summarize's columns), how many of its runs did not learn (``n_stuck``: not
    ok, or :func:`bench.analysis.outcomes.not_learned` among the activation's initializers in its panel), whether most
    did not (``failed``), and the shares of units saturated and dead before training (epoch 0, mean over hidden layers
    and seeds, runs that diverged later included)."""
    metric = ctx.metric
    table = stats.summarize(ctx.runs, metric.test, by=ctx.by)
    panel = [c for c in ctx.by if c != "init"]
    not_ok = ctx.runs["status"].ne(Status.OK)
    stuck = ctx.runs[ctx.by].assign(n_stuck=not_ok | outcomes.not_learned(ctx.runs, panel, metric))
    table = table.merge(stuck.groupby(ctx.by, dropna=False)["n_stuck"].sum().reset_index(), on=ctx.by)
    table["failed"] = table["n_stuck"] > (table["n"] + table["n_diverged"] + table["n_failed"]) / 2
    for metric in ("saturated_frac", "dead_frac"):
        profile = stats.layer_profile(ctx.layers, ctx.runs, metric, 0, ctx.by, statuses=(Status.OK, Status.DIVERGED))
        means = profile.groupby(ctx.by, dropna=False)["mean"].mean().rename(metric) if len(profile) else None
        table = table.merge(means, on=ctx.by, how="left") if means is not None else table.assign(**{metric: None})
    return table


def _units(row: pd.Series) -> str:
    """``test 0.1612, 4 of 5 runs did not learn, 93 % saturated, 0 % dead`` for one configuration."""
    acc = "no ok run" if pd.isna(row["mean"]) else f"test {row['mean']:.4f}"
    if row["n_stuck"]:
        runs = int(row["n"] + row["n_diverged"] + row["n_failed"])
        broken = f", {int(row['n_diverged'] + row['n_failed'])} of them diverged or failed" if row["n"] < runs else ""
        acc += f", {int(row['n_stuck'])} of {runs} runs did not learn{broken}"
    sat, dead = row.get("saturated_frac"), row.get("dead_frac")
    if pd.notna(sat) and pd.notna(dead):
        acc += f", {100 * sat:.0f} % saturated, {100 * dead:.0f} % dead"
    return acc


def _chance(ctx: Context) -> str:
    """``10 %``: the runs' chance level, each where datasets differ (ten and a hundred classes: ``10 %, 1 %``)."""
    levels = pd.to_numeric(ctx.runs["chance"]).drop_duplicates()
    return ", ".join(findings.level(ctx.metric, c) for c in levels)


def init_findings(ctx: Context) -> str:
    """Per activation: which initializers fail (most runs diverged, or the test metric at chance), which train worse
    or better than the activation's own gain (``auto``, paired by seed), with the units saturated and dead before
    training; then N(0, 1) over all activations."""
    health, label = _health(ctx), ctx.metric.label
    tests = _against(ctx, "init", "auto") if "auto" in set(ctx.runs["init"]) else None
    head = (
        f"Each initializer against the activation's own variance-keeping gain (`auto`): final test {label}, paired by "
        f"seed (same data order), two-sided {_test_name(ctx)}, Holm within each activation (the family: its other "
        f"initializers); worse or better only where p_holm < {ALPHA}. A run **did not learn** where it diverged or "
        f"failed or its final validation {label} went less than a quarter of the way from chance ({_chance(ctx)}) to "
        "the best mean of the activation's initializers; an initializer **fails** where most of its runs did not "
        "learn. Before training "
        "(epoch 0, on the probe batch, mean over hidden layers and seeds): saturated, the share of pre-activations "
        "(units x inputs) where |f'| < 1 % of its maximum (relu's negative half, where f' = 0, counts); dead, the "
        "share of units with f' = 0 on every input. N(0, 1) is the textbook's plain normal init (`normal`)."
    )
    bullets = []
    for panel, activation, rows in _groups(ctx, "init", health):
        rows = rows.set_index("init").reindex([i for i in dict.fromkeys(ctx.runs["init"]) if i in set(rows["init"])])
        failed = [i for i in rows.index if rows.at[i, "failed"]]
        trains = [i for i in rows.index if i not in failed]
        auto = f"; auto: {_units(rows.loc['auto'])}" if "auto" in rows.index else ""
        parts = [f"trains with {', '.join(map(_level, trains)) or 'none'}"]
        if failed:
            parts.append("fails with " + "; ".join(f"{_level(i)} ({_units(rows.loc[i])})" for i in failed))
        if tests is not None:
            mine = tests[tests["activation"].eq(activation) & ~tests["init"].isin(failed)]
            mine = mine[ctx.label(mine, drop=["init"]).to_numpy() == panel] if len(mine) else mine
            differ = mine[mine["better"].ne("no evidence")]
            differ = differ.assign(_gain=ctx.metric.sign * differ["mean_diff"]).sort_values("_gain")  # worst first
            listed = "; ".join(f"{_level(r['init'])} {_effect(r, ctx.metric)}" for _, r in differ.iterrows())
            parts.append(f"against auto: {listed}" if len(differ) else "no initializer that trains differs from auto")
        bullets.append(f"- **{activation}** ({panel}{auto}): " + "; ".join(parts) + ".")
    return "\n".join([head, "", *bullets, "", _normal_sentence(health)]).rstrip()


def _normal_sentence(health: pd.DataFrame) -> str:
    """N(0, 1) against auto over all activations: for how many it fails, and each one's saturation before training."""
    if not {"normal", "auto"} <= set(health["init"]):
        return ""
    normal = health[health["init"].eq("normal")]
    failing = normal[normal["failed"]]
    named = f" ({', '.join(failing['activation'])})" if len(failing) else ""
    saturated = health.pivot_table(index="activation", columns="init", values="saturated_frac", sort=False)
    shares = ", ".join(
        f"{a} {100 * saturated.at[a, 'normal']:.0f} / {100 * saturated.at[a, 'auto']:.0f} %"
        for a in normal["activation"]
        if a in saturated.index and saturated.loc[a, ["normal", "auto"]].notna().all()
    )
    return (
        f"N(0, 1) (`normal`) fails for {len(failing)} of {findings.counted(len(normal), 'activation')}{named}. "
        + (f"Saturated pre-activations before training, N(0, 1) / auto: {shares}." if shares else "")
    ).rstrip()


def regularizer_findings(ctx: Context) -> str:
    """Per activation: each regularizer's paired effect on the test metric and on the train-test gap against none;
    then per regularizer, whether the activations gain differently (the interaction, with its test)."""
    if "none" not in set(ctx.runs["regularizer"]):
        return "The suite has no runs without a regularizer to compare with."
    metric = ctx.metric
    test, gap = _against(ctx, "regularizer", "none"), _against(ctx, "regularizer", "none", gap=True)
    both = test.merge(gap, on=ctx.by, suffixes=("", "_gap"))
    none = ctx.runs[ctx.runs["regularizer"].eq("none")]
    base = stats.summarize(none, metric.test, by=ctx.by).merge(
        stats.generalisation_gap(none, by=ctx.by)[[*ctx.by, "mean"]], on=ctx.by, suffixes=("", "_gap")
    )
    base = base.assign(_panel=ctx.label(base, drop=["regularizer"]).to_numpy()).set_index(["_panel", "activation"])
    head = (
        "Each regularizer against none, per activation: the paired difference (same initial weights and data order) "
        f"in final test {metric.label} and in the train-test gap ({' minus '.join(findings.gap_sides(metric))} "
        f"{metric.label}; narrower is better), two-sided {_test_name(ctx)}, Holm within each activation (the family: "
        f"its regularizers); better, worse, narrower or wider only where p_holm < {ALPHA}."
    )
    bullets = []
    order = {r: i for i, r in enumerate(dict.fromkeys(ctx.runs["regularizer"]))}
    both = both.sort_values("regularizer", key=lambda c: c.map(order), kind="stable")
    for panel, activation, rows in _groups(ctx, "regularizer", both):
        me = base.loc[panel, activation] if (panel, activation) in base.index else None
        ref = f"; none: test {me['mean']:.4f}, gap {metric.diff(me['mean_gap'])}" if me is not None else ""
        effects_ = [
            f"{r['regularizer']}: test {_effect(r, metric)}; gap {_effect(r, metric, 'gap', '_gap')}"
            for _, r in rows.iterrows()
        ]
        bullets.append(f"- **{activation}** ({panel}{ref}):\n  - " + "\n  - ".join(effects_))
    return "\n".join([head, "", overfitting(ctx), "", *bullets, "", interaction_findings(ctx)]).rstrip()


OVERFIT_GAP = 0.05  # a train-test gap (in the metric's own scale) from which a network without regularizer overfits


def overfitting(ctx: Context) -> str:
    """Per panel, whether the network overfits without a regularizer, where a regularizer has something to do: its
    train-test gap (at least OVERFIT_GAP) and its validation loss rising after its lowest epoch, over the activations
    and seeds without regularizer."""
    none = ctx.runs[ctx.runs["regularizer"].eq("none")]
    panels = [c for c in ctx.setting_cols if c != "regularizer"]
    loss = stats.curves(ctx.epochs, none, split="val", metric="loss", by=panels)
    gap = stats.generalisation_gap(none, by=panels)
    if loss.empty or gap.empty:
        return ""
    lines = ["Where a regularizer has something to do: without one, per panel (means over the activations and seeds):"]
    for (_, g), label in zip(gap.iterrows(), ctx.label(gap.assign(regularizer="none")), strict=True):
        curve = loss.merge(g[panels].to_frame().T, on=panels).set_index("epoch")["mean"].astype(float)
        lowest, last = int(curve.idxmin()), int(curve.index.max())
        rising = curve[last] > curve[lowest] and lowest < last
        overfits = g["mean"] >= OVERFIT_GAP and rising
        lines.append(
            f"- {label}: train-test gap {ctx.metric.diff(g['mean'])}; validation loss lowest at epoch {lowest} "
            f"({curve[lowest]:.3f}), {curve[last]:.3f} at the end (epoch {last}): "
            + (
                "**it overfits**."
                if overfits
                else f"it does not overfit by this measure (a gap under {ctx.metric.diff(OVERFIT_GAP)} or a "
                "validation loss still at its lowest)."
            )
        )
    return "\n".join(lines)


def interaction_findings(ctx: Context) -> str:
    """Per regularizer: do the activations gain differently from it over none (one-way ANOVA of the per-seed gains
    in the test metric across activations: the activation x regularizer interaction), with its test."""
    panels, metric = [c for c in ctx.setting_cols if c != "regularizer"], ctx.metric
    table = effects.interaction(
        ctx.runs, "regularizer", "none", metric.test, panels, higher_is_better=metric.higher_is_better
    )
    if table.empty:
        return ""
    lines = [
        "Do the activations gain differently? Per regularizer, an analysis of variance of the per-seed gains in test "
        f"{metric.label} (each run minus its seed's run without regularizer) across the activations, blocked by seed "
        "(a seed's runs share their data order: the seeds every activation has a gain for): the test of the "
        f"activation x regularizer interaction, Holm over the regularizers; a difference only where p_holm < {ALPHA}."
    ]
    several = len(table.drop_duplicates(panels)) > 1
    table = table.assign(
        _level=[
            f"{r['regularizer']} in {p}" if several else r["regularizer"]
            for p, (_, r) in zip(ctx.label(table, drop=["regularizer"]), table.iterrows(), strict=True)
        ]
    )
    for _, r in table.iterrows():
        test = f"F({r['df_between']}, {r['df_within']}) = {r['F']:.2f}, p_holm = {r['p_holm']:.3g}"
        gains = ", ".join(f"{a} {metric.diff(g)}" for a, g in r["gains"].items())
        spread = f"mean gains {gains}: {metric.scale * r['spread']:.{metric.decimals}f} {metric.unit} apart"
        if pd.isna(r["p_holm"]):
            lines.append(f"- {r['_level']}: not tested (fewer than 2 activations or seeds with gains).")
        elif r["p_holm"] < ALPHA:
            lines.append(f"- **{r['_level']}**: the activations gain differently ({test}): {spread}.")
        else:
            lines.append(f"- {r['_level']}: no evidence that the activations gain differently ({test}; {spread}).")
    return "\n".join(lines)


def _plateau(metric: Metric, article: bool = False) -> str:
    """``1 point`` (``a point`` with ``article``): the plateau's width, PLATEAU, in the metric's unit."""
    amount, one = metric.scale * PLATEAU, findings.unit_words(metric)[0]
    return f"{'a' if article and amount == 1 else f'{amount:g}'} {one}"


def _rates(ctx: Context, panel: str, activation: str, best: pd.Series, scores: pd.DataFrame, test: pd.DataFrame):
    """One activation's bullet of the rate findings and its (best, mean over the grid, rates on the plateau)."""
    sign = ctx.metric.sign
    mine = scores[(scores["activation"] == activation) & (ctx.label(scores, drop=["lr"]).to_numpy() == panel)]
    plateau = mine[sign * mine["score"] >= sign * best["score"] - PLATEAU]["lr"]
    broken = mine[mine["n_broken"] > 0]["lr"]
    at = test[(test["activation"] == activation) & (test["lr"] == best["lr"])]
    at = at[ctx.label(at, drop=["lr"]).to_numpy() == panel]
    edge = f" ({best['edge']} edge of the grid)" if best["edge"] else ""
    bullet = (
        f"- **{activation}** ({panel}): best {best['lr']:g}{edge}, validation {best['score']:.4f}, test "
        f"{at['mean'].iloc[0]:.4f}; within {_plateau(ctx.metric, article=True)} of its best at "
        f"{', '.join(f'{r:g}' for r in sorted(plateau))}; mean over the grid {mine['score'].mean():.4f}; "
        + (f"diverged or failed at {', '.join(f'{r:g}' for r in broken)}." if len(broken) else "no run broke.")
    )
    return bullet, (best["score"], mine["score"].mean(), len(plateau))


def lr_findings(ctx: Context) -> str:
    """Per activation: its best rate (on validation), the test metric there, the rates within the plateau width of its
    best (:func:`_plateau`), its mean over the grid (a rate with a diverged or failed run counts as the worst score,
    :func:`bench.analysis.tuning.worst`) and the rates that broke; then which activation is best at its best rate
    and which is the most forgiving."""
    metric, others = ctx.metric, [c for c in ctx.setting_cols if c != "lr"]
    choice = tuning.choose(ctx.runs, others, metric)
    raw = tuning.scores(ctx.runs, others, metric)
    scores = tuning.floored(raw, metric)
    test = stats.summarize(ctx.runs, metric.test, by=ctx.by)
    label = metric.label
    head = (
        f"Each activation over the grid of learning rates: its best rate, chosen on mean final **validation** {label} "
        "over seeds (a rate where a run diverged or failed is never chosen; ties go to the smaller rate), the test "
        f"{label} there, the rates whose validation {label} is within {_plateau(metric)} of the best (its "
        "plateau: how forgiving it is), its mean over the whole grid (a rate where a run diverged or failed counts "
        f"as {tuning.worst(metric, raw['score']):.3g}) and the rates where runs diverged."
    )
    bullets, summary = [], []
    for panel, activation, rows in _groups(ctx, "lr", choice):
        best = rows.iloc[0]
        if not np.isfinite(best["score"]):  # every rate had a run that diverged or failed
            bullets.append(f"- **{activation}** ({panel}): no rate trained on every seed; diverged or failed at each.")
            continue
        bullet, numbers = _rates(ctx, panel, activation, best, scores, test)
        bullets.append(bullet)
        summary.append((panel, activation, *numbers))
    frame = pd.DataFrame(summary, columns=["panel", "activation", "best", "mean", "plateau"])
    closing = []
    for panel, rows in frame.groupby("panel", sort=False):
        top, forgiving = (rows.loc[(metric.sign * rows[c]).idxmax()] for c in ("best", "mean"))
        closing.append(
            f"In {panel}, the best at its best rate is {top['activation']} (validation {top['best']:.4f}); the most "
            f"forgiving, by the mean over the grid, is {forgiving['activation']} ({forgiving['mean']:.4f}, "
            f"{findings.counted(int(forgiving['plateau']), 'rate')} on its plateau)."
        )
    return "\n".join([head, "", *bullets, "", *closing])
