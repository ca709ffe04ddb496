"""The report's markdown: cells, tables and the tables of its sections, from analysis DataFrames."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.report.findings import gap_sides
from bench.tasks import BASELINE, Metric

if TYPE_CHECKING:
    from bench.analysis.claims import Verdict

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
}
PACKAGES = (("actbench", "actbench_version"), ("torch", "torch_version"), ("python", "python_version"))


def regularizer_label(
    weight_decay: float, dropout: float, augment: bool, detailed: bool = False, dropout_kind: str = "plain"
) -> str:
    """none, L2, dropout (alpha dropout), augment, all (all three) or a '+' combination; ``detailed`` adds the
    values."""
    drop = "alpha dropout" if dropout_kind == "alpha" else "dropout"
    parts = [
        *([f"L2 {weight_decay:g}" if detailed else "L2"] if weight_decay > 0 else []),
        *([f"{drop} {dropout:g}" if detailed else drop] if dropout > 0 else []),
        *(["augment"] if augment else []),
    ]
    if not parts:
        return "none"
    return "all" if len(parts) == 3 and not detailed else "+".join(parts)


def cell(value: object, spec: str = ".4g") -> str:
    """A table cell: floats formatted, NaN/None as an empty cell, pipes escaped."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, float | np.floating):
        return format(float(value), spec)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    """A GitHub markdown table of ``frame`` (index dropped); ``formats`` maps columns to format specs."""
    formats = formats or {}
    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(cell(v, formats.get(c, ".4g")) for c, v in zip(frame.columns, row, strict=True)) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([head, rule, *rows])


def interval(
    frame: pd.DataFrame, mean: str = "mean", low: str = "ci_low", high: str = "ci_high", spec: str = ".4f"
) -> pd.Series:
    """``mean [low, high]`` strings (no interval with one seed, empty without a mean)."""

    def one(row: pd.Series) -> str:
        if pd.isna(row[mean]):
            return ""
        ci = f" [{row[low]:{spec}}, {row[high]:{spec}}]" if pd.notna(row[low]) else ""
        return f"{row[mean]:{spec}}{ci}"

    return frame.apply(one, axis=1) if len(frame) else pd.Series(dtype=object)


def duration(total: float) -> str:
    """``1 h 16 min (4587 s)``."""
    hours, rest = divmod(int(round(total)), 3600)
    return f"{hours} h {rest // 60} min ({total:.0f} s)" if hours else f"{rest // 60} min {rest % 60} s ({total:.0f} s)"


def values(runs: pd.DataFrame, column: str) -> str:
    """The values of a recorded column as a header cell: one value, or each with its number of runs."""
    if column not in runs.columns:
        return "not recorded"
    counts = runs[column].fillna("not recorded").astype(str).value_counts()
    if len(counts) == 1:
        return f"`{counts.index[0]}`"
    listed = ", ".join(f"`{v}` ({n} runs)" for v, n in counts.items())
    return f"**several:** {listed}"


def header_table(runs: pd.DataFrame, command: str, written: str) -> str:
    """Command, code version, packages, machine, wall time and dates of ``runs``; ``written`` is the last row."""
    shas = runs["git_sha"].dropna().unique() if "git_sha" in runs.columns else []
    sha_note = " (results may mix code versions)" if len(shas) > 1 else ""
    dirty = any(str(s).endswith("-dirty") for s in shas)
    packages = ", ".join(f"{label} {values(runs, col)}" for label, col in PACKAGES)
    wall = pd.to_numeric(runs.get("wall_seconds", pd.Series(dtype=float)), errors="coerce")
    started = runs["started_at"].dropna().sort_values() if "started_at" in runs.columns else pd.Series(dtype=str)
    starts = pd.to_datetime(runs.get("started_at", pd.Series(dtype=str)), errors="coerce", utc=True)
    elapsed = ((starts + pd.to_timedelta(wall, unit="s")).max() - starts.min()).total_seconds()
    span = f"{duration(elapsed)} from the first run's start to the last run's end; " if elapsed == elapsed else ""
    dates = f"{started.iloc[0]} to {started.iloc[-1]} (run start times)" if len(started) else "not recorded"
    recorded = "cpu_capability" in runs.columns and runs["cpu_capability"].notna().any()
    capability = f", CPU kernels {values(runs, 'cpu_capability')}" if recorded else ""
    if "flush_denormal" in runs.columns and runs["flush_denormal"].notna().any():
        capability += f", denormals flushed {values(runs, 'flush_denormal')}"
    rows = [
        ("Command", f"`{command}`"),
        ("Git SHA", values(runs, "git_sha") + sha_note + (" (uncommitted changes)" if dirty else "")),
        ("Packages", packages),
        ("Device", f"{values(runs, 'device')} {values(runs, 'device_name')}" + capability),
        ("Threads per run", values(runs, "threads")),
        ("Executor, workers", f"{values(runs, 'executor')}, {values(runs, 'workers')}"),
        ("Host", values(runs, "host")),
        ("Wall time", f"{span}{duration(float(np.nansum(wall)))} summed over {len(runs)} runs (run side by side)"),
        ("Dates", dates),
        *([("Data", data)] if (data := data_checksums(runs)) else []),
        ("Report", written),
    ]
    return markdown_table(pd.DataFrame(rows, columns=["", ""]))


def data_checksums(runs: pd.DataFrame) -> str:
    """Per dataset, the checksum of the decoded data its runs recorded; where machines decoded a dataset differently
    (JPEG decoders can differ by a grey level), each checksum with its runs' CPU models, said plainly."""
    if "data_checksum" not in runs.columns or runs["data_checksum"].isna().all():
        return ""
    parts = []
    for dataset, group in runs.dropna(subset=["data_checksum"]).groupby("dataset", sort=True):
        sums = group.groupby("data_checksum", sort=True)
        if sums.ngroups == 1:
            parts.append(f"{dataset} `{group['data_checksum'].iloc[0]}`")
            continue
        each = "; ".join(f"`{c}` in {len(g)} runs on {values(g, 'device_name')}" for c, g in sums)
        parts.append(
            f"**{dataset} was decoded differently on different machines** ({each}): its runs are not pixel "
            "for pixel the same data"
        )
    return "checksum of the decoded data: " + ", ".join(parts)


def accuracy_table(summary: pd.DataFrame, metric: Metric) -> str:
    """The final test metric's summary with its interval; the best row's interval in bold."""
    test = f"test {metric.name} [95 % CI]"
    shown = summary.assign(
        **{test: interval(summary)},
        mark=summary["mark"].map({"best": "**best**", "tied": "tied"}).fillna(""),
    )
    shown.loc[summary["mark"].eq("best"), test] = "**" + shown[test] + "**"
    shown["parameters"] = [
        f"{p:,.0f}" + (f" (x{r:.2f} {BASELINE})" if pd.notna(r) and abs(r - 1) > 0.01 else "") if pd.notna(p) else ""
        for p, r in zip(summary["parameters"], summary["params_ratio"], strict=True)
    ]
    bits = ["in bits"] if metric.unit == "nats" else []  # a loss in nats is read in bits too (bits per character)
    shown["in bits"] = summary["mean"] / math.log(2)
    columns = ["setting", "activation", "n", test, *bits, "std", "parameters", "n_diverged", "n_failed"]
    columns += [*(["n_not_learned"] if "n_not_learned" in shown.columns else []), "mark"]
    return markdown_table(shown[columns], {"std": ".4f", "in bits": ".4f"})


def best_lr_table(val: pd.DataFrame, test: pd.DataFrame, by: list[str], metric: Metric) -> str:
    """Per setting (``by`` without lr) and activation, the lr with the best mean validation metric (``val``, which
    has a ``setting`` column), the test metric there (``test``) and the bad runs over the whole lr grid."""
    keys = [c for c in by if c != "lr"]
    best_first = val[val["mean"].notna()].sort_values("mean", ascending=not metric.higher_is_better)
    chosen = best_first.drop_duplicates(subset=keys)
    chosen = chosen.merge(test, on=by, suffixes=("_val", ""))
    bad = val.groupby(keys, dropna=False)[["n_diverged", "n_failed"]].sum().reset_index()
    chosen = chosen.drop(columns=["n_diverged", "n_failed"]).merge(bad, on=keys, how="left")
    chosen = chosen.sort_values(["setting", "mean"], ascending=[True, not metric.higher_is_better])
    names = {"val": f"val {metric.name}", "test": f"test {metric.name} [95 % CI]"}
    shown = chosen.assign(**{names["val"]: chosen["mean_val"], names["test"]: interval(chosen)})
    columns = ["setting", "activation", "lr", names["val"], names["test"], "n_diverged", "n_failed"]
    return markdown_table(shown[columns], {"lr": "g", names["val"]: ".4f"})


def verdicts_markdown(verdicts: list[Verdict]) -> str:
    """The claim verdicts: an overview table, then each claim's experiment, numbers and verdict."""
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


def paired_table(tests: pd.DataFrame) -> str:
    """The paired tests against the baseline (with a ``setting`` column)."""
    shown = tests.assign(
        ci=[f"[{lo:+.4f}, {hi:+.4f}]" for lo, hi in zip(tests["ci_low"], tests["ci_high"], strict=True)]
    )
    columns = ["setting", "activation", "n_pairs", "mean_diff", "ci", "sd_diff", "d_z", "p_value", "p_holm", "better"]
    formats = {"mean_diff": "+.4f", "sd_diff": ".4f", "d_z": ".2f", "p_value": ".3g", "p_holm": ".3g"}
    return markdown_table(shown[columns], formats)


def failures_table(bad: pd.DataFrame) -> str:
    """Each diverged or failed run (with a ``setting`` column) and its error."""
    if "diverged_epoch" not in bad.columns:
        bad = bad.assign(diverged_epoch=np.nan)
    columns = ["key", "setting", "activation", "seed", "status", "diverged_epoch", "error"]
    return markdown_table(bad[columns], {"diverged_epoch": ".0f"})


def cards_table(cards: pd.DataFrame) -> str:
    """The activations' property cards."""
    shown = cards[list(CARD_COLUMNS)].rename(columns=CARD_COLUMNS)
    return markdown_table(shown, {c: ".3g" for c in CARD_COLUMNS.values()})


def _ratio(value: float, reference: float) -> str:
    return f"x{value / reference:.2f}" if pd.notna(value) and pd.notna(reference) and reference else ""


def cost_table(table: pd.DataFrame, cost: dict[str, tuple], names: list[str], reference: str) -> str:
    """One row per activation: time alone relative to ``reference`` (median [min, max] over rounds), then per
    setting the runs' milliseconds per training step and saved-for-backward KiB per sample, each with its ratio (and
    CUDA peak MiB)."""
    settings = list(dict.fromkeys(table["setting"]))
    rows = []
    for name in names:
        row = {"activation": name}
        if cost:
            median, low, high = cost[name]
            row[f"time alone x {reference} [range]"] = f"{median:.2f} [{low:.2f}, {high:.2f}]"
        for setting in settings:
            here = table[table["setting"].eq(setting)].set_index("activation")
            if name not in here.index:
                continue
            mine = here.loc[name]
            base = here.loc[reference] if reference in here.index else pd.Series(dtype=float)
            ratio = _ratio(mine["step_ms"], base.get("step_ms"))
            row[f"{setting}: ms/step"] = f"{mine['step_ms']:.1f}" + (f" ({ratio})" if ratio else "")
            saved = mine["saved_bytes_per_sample"]
            if pd.notna(saved):
                ratio = _ratio(saved, base.get("saved_bytes_per_sample"))
                row[f"{setting}: saved KiB/sample"] = (
                    f"{saved / 1024:.1f} ({ratio})" if ratio else f"{saved / 1024:.1f}"
                )
            if pd.notna(mine["peak_memory_bytes"]):
                row[f"{setting}: CUDA peak MiB"] = f"{mine['peak_memory_bytes'] / 2**20:.0f}"
        rows.append(row)
    frame = pd.DataFrame(rows)
    if cost:
        frame = frame.assign(_t=[cost[n][0] for n in names]).sort_values("_t", kind="stable").drop(columns="_t")
    return markdown_table(frame.fillna(""))


def gap_table(gap: pd.DataFrame, test: pd.DataFrame, by: list[str], metric: Metric) -> str:
    """The train-test gap per configuration (``gap``, with ``setting`` and ``regularizer`` columns) beside the final
    test metric (``test``)."""
    table = gap.merge(test[[*by, "mean", "ci_low", "ci_high"]], on=by, suffixes=("", "_test"))
    names = {"gap": f"{' - '.join(gap_sides(metric))} {metric.name} [95 % CI]", "test": f"test {metric.name} [95 % CI]"}
    shown = table.assign(
        **{
            names["gap"]: interval(table),
            names["test"]: interval(table, "mean_test", "ci_low_test", "ci_high_test"),
        }
    )
    return markdown_table(shown[["setting", "activation", "regularizer", "n", names["gap"], names["test"]]])


def target_table(summary: pd.DataFrame) -> str:
    """Epochs and training seconds to the validation-metric target, per configuration of a
    ``time_to_target_summary`` table with ``setting`` and ``target`` columns."""
    shown = summary.assign(
        reached=[f"{r}/{n}" for r, n in zip(summary["n_reached"], summary["n_runs"], strict=True)],
        **{
            "median epochs": summary["epoch_median"].map(lambda v: "never" if v == np.inf else f"{v:g}"),
            "median train seconds": summary["seconds_median"].map(lambda v: "never" if v == np.inf else f"{v:.1f}"),
            "epochs [95 % CI]": interval(summary, "epoch_mean", "epoch_ci_low", "epoch_ci_high", ".2f"),
            "train seconds [95 % CI]": interval(summary, "seconds_mean", "seconds_ci_low", "seconds_ci_high", ".1f"),
        },
    )
    columns = [
        "setting",
        "target",
        "activation",
        "reached",
        "median epochs",
        "median train seconds",
        "epochs [95 % CI]",
        "train seconds [95 % CI]",
    ]
    return markdown_table(shown[columns], {"target": ".4f"})
