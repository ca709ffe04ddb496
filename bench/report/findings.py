""" "What this benchmark found": each activation against ReLU per setting, in sentences that carry their numbers.

The input is :func:`bench.analysis.stats.paired_tests` (paired by seed, Holm within each setting) with a ``setting``
label and each activation's parameter count relative to ReLU's in that setting (``params_ratio``). A sentence says
"better" or "worse" only where the Holm-adjusted p-value is below 0.05; an activation whose interval excludes zero
before the correction but not after is named as such, never counted as a difference. A comparison in which a run
did not learn has no test: it is named "unstable (k of n seeds did not learn)" or "did not learn". Differences are
in the runs' metric's unit (:class:`bench.tasks.Metric`).
"""

from __future__ import annotations

import pandas as pd

from bench.analysis import outcomes
from bench.tasks import BASELINE, Metric

MAX_NAMED = 8  # beyond this many activations in one sentence, the rest are counted
CAPACITY_TOLERANCE = 0.01  # a parameter count within 1 % of ReLU's is the same capacity
UNIT_WORDS = {"pt": ("point", "points", "percentage points")}  # a unit that is no word: one, several, in full
ADJECTIVES = {"accuracy": "accurate"}  # "as accurate as ReLU"; a metric without one is "as good as"


def plural(noun: str) -> str:
    """``settings``, ``accuracies``, ``losses``: a regular English noun in the plural."""
    if noun.endswith("y"):
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith("s") else "s")


def counted(n: int, noun: str) -> str:
    """``1 setting``, ``4 settings``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural(noun)}"


def unit_words(metric: Metric) -> tuple[str, str, str]:
    """How a sentence names the metric's unit: one, several, in full (``point``, ``points``, ``percentage points``
    for accuracy's pt; a unit that is a word, such as nats, is all three)."""
    return UNIT_WORDS.get(metric.unit, (metric.unit,) * 3)


def level(metric: Metric, value: float) -> str:
    """A value of the metric itself (not a difference): ``10 %`` of a share shown in points, else ``4.17 nats``."""
    return f"{100 * value:.0f} %" if metric.scale == 100 else f"{value:.3g} {metric.unit}"


def gap_sides(metric: Metric, train: str = "train") -> tuple[str, str]:
    """The train-test gap's two sides in the order :meth:`bench.tasks.Metric.gap` subtracts them (positive: the
    network fits its training data better): train first where higher is better, test first where lower is."""
    return (train, "test") if metric.higher_is_better else ("test", train)


def difference(row: pd.Series, metric: Metric, suffix: str = "") -> str:
    """``+0.81 pt [+0.50, +1.12]``: a mean paired difference (columns ending in ``suffix``) with its 95 % interval."""
    interval = metric.interval(row[f"ci_low{suffix}"], row[f"ci_high{suffix}"])
    return f"{metric.diff(row[f'mean_diff{suffix}'])} {interval}"


def effect(row: pd.Series, metric: Metric) -> str:
    """``sine +0.81 pt [+0.50, +1.12]``: an activation's mean paired difference with its 95 % interval."""
    return f"{row['activation']} {difference(row, metric)}"


def capacity_note(ratio: float) -> str:
    """`` (2.00x ReLU's parameters)`` where the network's size differs from ReLU's, else ""."""
    if pd.isna(ratio) or abs(ratio - 1) <= CAPACITY_TOLERANCE:
        return ""
    return f" ({ratio:.2f}x ReLU's parameters)"


def _named(rows: pd.DataFrame, metric: Metric) -> str:
    listed = [effect(r, metric) + capacity_note(r["params_ratio"]) for _, r in rows.head(MAX_NAMED).iterrows()]
    more = len(rows) - MAX_NAMED
    return "; ".join(listed) + (f"; and {more} more (see the paired tests)" if more > 0 else "")


def setting_findings(setting: str, tests: pd.DataFrame, reference: str, metric: Metric, against: str = "ReLU") -> str:
    """One bullet: which activations beat or lose to ReLU (or ``against``, the tests' reference) in ``setting``, by how
    much, and what is tied."""
    tested = tests[tests["n_pairs"] >= 2]
    gain = tested.assign(_gain=metric.sign * tested["mean_diff"])  # larger is better
    better = gain[gain["better"].eq("better")].sort_values("_gain", ascending=False)
    worse = gain[gain["better"].eq("worse")].sort_values("_gain")
    tied = gain[gain["better"].eq("no evidence")].sort_values("_gain", ascending=False)
    stuck = gain[~outcomes.tested(gain["better"])]
    n, n_tests = len(tested), len(tested) - len(stuck)
    pairs = int(tested["n_pairs"].median()) if n else 0
    test = "paired t-test" if (tested["test"] == "ttest").all() else "Wilcoxon signed-rank test"
    holm = f"Holm over the {n_tests} tested" if n_tests > 1 else "one test: no correction"
    lines = [
        f"- **{setting}** ({reference}; {counted(n, 'activation')} compared with {against} over "
        f"{counted(pairs, 'seed')}, "
        f"two-sided {test}, {holm}): {len(better)} better, {len(worse)} worse, {len(tied)} without "
        "evidence of a difference"
        + (f", {len(stuck)} not tested because a run did not learn" if len(stuck) else "")
        + "."
    ]
    if not better.empty:
        lines.append(f"  - Better than {against}: {_named(better, metric)}.")
    if not worse.empty:
        lines.append(f"  - Worse than {against}: {_named(worse, metric)}.")
    if len(tied) == 1:
        lines.append(f"  - No evidence of a difference for {effect(tied.iloc[0], metric)}.")
    elif not tied.empty:
        low, high = tied["mean_diff"].min(), tied["mean_diff"].max()
        suggestive = tied[(tied["ci_low"] > 0) | (tied["ci_high"] < 0)]
        text = (
            f"  - No evidence of a difference for the other {len(tied)}: their mean differences lie between "
            f"{metric.diff(low)} and {metric.diff(high)}"
        )
        if not suggestive.empty:
            text += (
                f"; of these, {len(suggestive)} {'has' if len(suggestive) == 1 else 'have'} a 95 % interval that "
                "excludes zero before the Holm correction "
                f"but not after it ({', '.join(suggestive['activation'])}), which is not evidence with "
                f"{n} comparisons"
            )
        lines.append(text + ".")
    if not stuck.empty:
        listed = [f"{effect(r, metric)}, {r['better']}" for _, r in stuck.head(MAX_NAMED).iterrows()]
        more = f"; and {len(stuck) - MAX_NAMED} more" if len(stuck) > MAX_NAMED else ""
        lines.append(
            f"  - Not tested, because a run did not learn (its final validation {metric.label} under a quarter of the "
            f"way from chance to the setting's best; a mean over a bimodal outcome says nothing): "
            f"{'; '.join(listed)}{more}."
        )
    untested = tests[tests["n_pairs"] < 2]
    if not untested.empty:
        names = ", ".join(untested["activation"])
        lines.append(f"  - Not compared (fewer than 2 seeds where both runs ended ok; see the diverged runs): {names}.")
    return "\n".join(lines)


def capacity_findings(
    tests: pd.DataFrame, metric: Metric, wide: str = "maxout", matched: str = "maxout_matched"
) -> str:
    """Per setting, maxout (wider network) beside maxout_matched (ReLU's parameter count): capacity or function."""
    both = tests[tests["activation"].isin([wide, matched])]
    if set(both["activation"]) != {wide, matched}:
        return ""
    lines = [
        f"- **Capacity**: {wide} widens the layer before it, {matched} is the same function in a network narrowed to "
        "ReLU's parameter count. Against ReLU, per setting:"
    ]
    for setting, rows in both.groupby("setting", sort=False):
        parts = []
        for name in (wide, matched):
            row = rows[rows["activation"].eq(name)].iloc[0]
            verdict = {"no evidence": "no evidence of a difference"}.get(row["better"], row["better"])
            parts.append(f"{effect(row, metric)}{capacity_note(row['params_ratio']) or ' (ReLU-sized)'}, {verdict}")
        lines.append(f"  - {setting}: {parts[0]}; {parts[1]}.")
    return "\n".join(lines)


def speed_findings(tied: pd.DataFrame, speed: pd.DataFrame, metric: Metric) -> str:
    """Of the activations tied with ReLU on the test metric in one setting, those that reach the validation target
    sooner or later than ReLU by the median epochs (``speed``: that setting's rows of the time-to-target table, a run
    that never reaches it counted as never)."""
    median = speed.set_index("activation")["epoch_median"] if not speed.empty else pd.Series(dtype=float)
    if BASELINE not in median.index or tied.empty:
        return ""
    relu = median[BASELINE]

    def epochs(value: float) -> str:
        return "never in most runs" if value == float("inf") else f"{value:g} epoch{'' if value == 1 else 's'}"

    sooner = [a for a in tied["activation"] if median.get(a, float("nan")) < relu]
    later = [a for a in tied["activation"] if median.get(a, float("nan")) > relu]
    target = speed["target"].iloc[0]
    parts = []
    for names, word in ((sooner, "sooner"), (later, "later")):
        if names:
            listed = ", ".join(f"{a} ({epochs(median[a])})" for a in names[:MAX_NAMED])
            more = f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
            parts.append(f"{word}: {listed}{more}")
    if not parts:
        return ""
    alike = f"As {ADJECTIVES.get(metric.label, 'good')} as ReLU"
    return (
        f"  - {alike} (no evidence of a difference) but reaching the validation target ({target:.4f}) "
        f"{'; '.join(parts)}, by median epochs over the seeds; ReLU: {epochs(relu)}."
    )


def markdown(
    tests: pd.DataFrame,
    references: dict[str, str],
    metric: Metric,
    speed: pd.DataFrame | None = None,
    own_rates: bool = False,
) -> str:
    """The section: a count over all settings, a bullet per setting (with ``speed``, the time-to-target table, the
    tied activations that reach the validation target sooner or later than ReLU), and the capacity comparison;
    ``own_rates``: each activation trained at its own rate, chosen on validation, which the opening says."""
    tests = tests[tests.groupby("setting")["n_pairs"].transform("max") >= 2]  # settings with a comparison
    if tests.empty:
        return ""
    tested = tests[tests["n_pairs"] >= 2]
    better, worse = int(tested["better"].eq("better").sum()), int(tested["better"].eq("worse").sum())
    stuck = int((~outcomes.tested(tested["better"])).sum())
    settings = list(dict.fromkeys(tests["setting"]))
    scope = "In the one setting" if len(settings) == 1 else f"Over the {len(settings)} settings"
    unit = unit_words(metric)[2]
    unit = unit if unit == metric.unit else f"{unit} ({metric.unit})"
    head = (
        f"Each activation's final test {metric.label} against ReLU's in the same setting, "
        + ("each at its own learning rate, chosen on validation, " if own_rates else "")
        + "paired by seed (same initial "
        f"weights, data order and dropout masks), with a 95 % interval of the mean difference in {unit}. "
        "A difference is claimed only where the Holm-adjusted p-value (the family: the activations of one "
        f"setting) is below 0.05. {scope}, {better + worse} of {counted(len(tested), 'comparison')} "
        f"{'differs' if better + worse == 1 else 'differ'} from ReLU: {better} better, {worse} worse"
        + (
            f"; {stuck} {'is' if stuck == 1 else 'are'} not tested because a run on one side did not learn "
            "(unstable where some seeds learned)"
            if stuck
            else ""
        )
        + "."
    )
    bullets = []
    for s in settings:
        rows = tests[tests["setting"].eq(s)]
        bullets.append(setting_findings(s, rows, references.get(s, ""), metric))
        if speed is not None and not speed.empty:
            tied = rows[rows["n_pairs"].ge(2) & rows["better"].eq("no evidence")]
            bullets.append(speed_findings(tied, speed[speed["setting"].eq(s)], metric))
    bullets = [b for b in bullets if b]
    capacity = capacity_findings(tests, metric)
    body = "\n".join([*bullets, capacity] if capacity else bullets)
    return f"## What this benchmark found\n\n{head}\n\n{body}\n"
