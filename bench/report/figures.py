"""The report's seaborn figures, each drawn from an analysis DataFrame; ``palette`` maps activations (in suite
order) to their colour, the same in every figure: ReLU, the baseline, always black and thickest; with many
activations only a few highlighted ones get a colour and the rest are drawn thin and grey.

A value far out from the rest (Tukey's far-out fence, 3 IQR beyond a quartile) does not set an axis: it is drawn at
the axis edge or left off, and named with its value in the panel."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

import activations
from bench.analysis import outcomes
from bench.report.findings import unit_words
from bench.tasks import BASELINE, Metric

DPI = 110
MAX_LAYER_PANELS = 6
MAX_COLOURED = 9  # up to this many activations (besides ReLU) each get a colour; beyond, only the highlighted ones
GALLERY_RANGE = (-5.0, 5.0, 401)  # the gallery's x: from, to, points
BLACK = (0.0, 0.0, 0.0)
GREY = (0.72, 0.72, 0.72)
OTHERS = "other activations"
FAR_OUT = 3.0  # Tukey's far-out fence, in interquartile ranges
MIN_FIELD = 6  # a panel's y range follows the final values only when it has this many activations

Palette = dict[str, tuple]


def palette(names: list[str], highlight: Iterable[str] = ()) -> Palette:
    """ReLU black; every other activation its own colour when there are few, else ``highlight`` coloured, rest grey."""
    others = [n for n in names if n != BASELINE]
    coloured = others if len(others) <= MAX_COLOURED else [n for n in others if n in set(highlight)]
    colours = iter([c for i, c in enumerate(sns.color_palette("tab10")) if i != 7] * 2)  # tab10 without its grey
    shown = {n: next(colours) for n in coloured}
    return {n: BLACK if n == BASELINE else shown.get(n, GREY) for n in names}


def fences(values: pd.Series) -> tuple[float, float]:
    """Tukey's far-out fences of ``values``: what lies beyond them is an outlier that must not set an axis."""
    values = values.dropna()
    q1, q3 = values.quantile(0.25), values.quantile(0.75)
    spread = max(q3 - q1, 1e-12)
    return q1 - FAR_OUT * spread, q3 + FAR_OUT * spread


def _style(name: str, color: object) -> dict:
    """Line style by role: ReLU black and thick on top, highlighted coloured, the rest thin grey underneath."""
    if name == BASELINE:
        return {"lw": 2.4, "zorder": 5, "label": name}
    if color == GREY:
        return {"lw": 0.8, "zorder": 1, "alpha": 0.8, "label": OTHERS}
    return {"lw": 1.5, "zorder": 3, "label": name}


def save(fig: plt.Figure, path: Path) -> None:
    """Write ``fig`` as a PNG at ``path`` and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def wrap(title: str, width: int = 48) -> str:
    """A long panel title on several lines."""
    return textwrap.fill(title, width)


def _band(data: pd.DataFrame, x: str, color: object = None, label: str | None = None, **_: object) -> None:
    """Mean line with its confidence band on the current axes (FacetGrid.map_dataframe); grey lines get no band."""
    data = data.sort_values(x)
    ax = plt.gca()
    style = _style(str(label), color)
    ax.plot(data[x], data["mean"], color=color, marker="o" if len(data) < 12 else None, ms=3, **style)
    if color != GREY:
        ax.fill_between(data[x], data["ci_low"], data["ci_high"], color=color, alpha=0.15, lw=0, zorder=style["zorder"])


def _clip_outliers(grid: sns.FacetGrid, data: pd.DataFrame, x: str, higher_is_better: bool) -> None:
    """Per panel, a y range that shows where the activations end: its bad side at the worst final value that is not
    far out (the far-out ones are named in the panel), so that early epochs and outliers do not squash the field."""
    for setting, ax in grid.axes_dict.items():
        rows = data[data["setting"].eq(setting)]
        final = rows.sort_values(x).groupby("activation")["mean"].last()
        if len(final) < MIN_FIELD:  # a few lines: nothing squashes them, keep the whole curve in view
            continue
        low, high = fences(final)
        outliers = final[(final < low) if higher_is_better else (final > high)]
        kept = final.drop(outliers.index)
        means = rows[rows["activation"].isin(kept.index)]["mean"]
        pad = 0.15 * max(kept.max() - kept.min(), 1e-3)
        if higher_is_better:  # the bad side is set by the kept finals (early epochs below it are cut)
            ax.set_ylim(kept.min() - pad, means.max() + pad)
        else:
            ax.set_ylim(means.min() - pad, kept.max() + pad)
        if outliers.empty:
            continue
        named = ", ".join(f"{a} {v:.3g}" for a, v in outliers.sort_values(ascending=not higher_is_better).items())
        where = "below" if higher_is_better else "above"
        ax.text(  # in the corner the curves leave empty: top left for accuracy, bottom left for a loss
            0.02,
            0.98 if higher_is_better else 0.02,
            wrap(f"off the scale ({where}, final): {named}", 44),
            transform=ax.transAxes,
            fontsize=7,
            color="0.3",
            va="top" if higher_is_better else "bottom",
        )


def _present(data: pd.DataFrame, colors: Palette) -> list[str]:
    """The activations of ``data`` in suite order."""
    return [a for a in colors if a in set(data["activation"])]


def facets(
    data: pd.DataFrame,
    colors: Palette,
    x: str,
    ylabel: str,
    xlabel: str | None = None,
    higher_is_better: bool | None = None,
) -> sns.FacetGrid:
    """One panel per ``setting``, one mean-and-band line per activation; with ``higher_is_better`` set, activations
    whose final value is far out on the bad side are named in the panel instead of setting its y range."""
    panels = data["setting"].nunique()
    grid = sns.FacetGrid(
        data,
        col="setting",
        col_wrap=min(3, panels) if panels > 1 else None,
        hue="activation",
        hue_order=_present(data, colors),
        palette=colors,
        sharey=False,
        sharex=False,
        height=3.4,
        aspect=1.35,
    )
    grid.map_dataframe(_band, x=x)
    grid.set_titles("{col_name}")
    for ax in grid.axes.flat:
        ax.set_title(wrap(ax.get_title()))
    if x == "epoch":
        for ax in grid.axes.flat:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.set_axis_labels(xlabel or x, ylabel)
    if higher_is_better is not None:
        _clip_outliers(grid, data, x, higher_is_better)
    return grid


def finish(grid: sns.FacetGrid) -> plt.Figure:
    """Lay out the panels (wrapped titles included), then a legend on the right: ReLU, the coloured activations in
    suite order, and one entry for the grey ones."""
    grid.tight_layout()
    found: dict[str, object] = {}
    for ax in grid.axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(label, handle)
    order = [n for n in (BASELINE, *(grid.hue_names or ()), OTHERS) if n in found]
    grid.add_legend(legend_data=found, label_order=list(dict.fromkeys(order)), title="activation")
    return grid.figure


def lr_sensitivity(val: pd.DataFrame, colors: Palette, metric: Metric) -> plt.Figure:
    """The validation metric against learning rate (log scale), one panel per setting."""
    grid = facets(val, colors, x="lr", ylabel=f"final validation {metric.label}", xlabel="learning rate")
    grid.set(xscale="log")
    return finish(grid)


def forest(rows: pd.DataFrame, title: str, metric: Metric, xlabel: str) -> plt.Figure:
    """One setting's paired differences to ReLU in the metric's unit (mean and interval per activation, sorted), zero
    line drawn; green and filled where Holm says better, red where worse, grey otherwise, an orange cross where a run
    did not learn (no test: unstable, or did not learn). A far-out mean is drawn at the axis edge as an arrow with its
    value; ``label`` names each row."""
    rows = rows.dropna(subset=["mean_diff"]).sort_values("mean_diff").reset_index(drop=True)
    mean, low, high = (metric.scale * rows[c] for c in ("mean_diff", "ci_low", "ci_high"))
    lo_fence, hi_fence = fences(mean)
    inside = mean.between(lo_fence, hi_fence)
    left = min(0.0, low[inside].min(skipna=True) if inside.any() else 0.0, mean[inside].min())
    right = max(0.0, high[inside].max(skipna=True) if inside.any() else 0.0, mean[inside].max())
    pad = 0.06 * max(right - left, 0.1)
    left, right = left - pad, right + pad
    stuck = ~outcomes.tested(rows["better"])
    colour = rows["better"].map({"better": "C2", "worse": "C3"}).fillna("0.55").where(~stuck, "C1")
    labels = rows["label"].where(
        ~stuck, rows["label"] + " (" + rows["better"].str.replace(r" \(.*", "", regex=True) + ")"
    )
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(6.4, 1.1 + 0.24 * len(rows)), layout="constrained")
    ax.axvline(0.0, color="0.2", lw=1, zorder=1)
    for i in y:
        ax.plot([low[i], high[i]], [i, i], color=colour[i], lw=1.6, zorder=2, solid_capstyle="butt")
        significant = rows["better"][i] in ("better", "worse")
        if left <= mean[i] <= right:  # far out or not, it fits the axis the others set
            if stuck[i]:
                ax.scatter(mean[i], i, s=40, zorder=3, color=colour[i], marker="X")
            else:
                ax.scatter(
                    mean[i], i, s=30, zorder=3, color=colour[i], facecolors=colour[i] if significant else "white"
                )
        else:
            edge, marker = (left, "<") if mean[i] < left else (right, ">")
            ax.scatter(edge, i, s=40, marker=marker, color=colour[i], zorder=3, clip_on=False)
            ax.annotate(
                f"{mean[i]:+.{metric.decimals - 1}f}",
                (edge, i),
                xytext=(6 if marker == "<" else -6, 0),
                textcoords="offset points",
                ha="left" if marker == "<" else "right",
                va="center",
                fontsize=7,
            )
    ax.set_xlim(left, right)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"{xlabel} ({unit_words(metric)[2]}), paired by seed, 95 % interval")
    ax.set_title(wrap(title, 70))
    ax.grid(axis="y", visible=False)
    return fig


def cost_scatter(table: pd.DataFrame, colors: Palette, metric: Metric) -> plt.Figure:
    """Per setting, each activation's mean test metric (``score``) against its mean training samples/s from the
    runs; ReLU and the coloured activations named; a far-out bad score named in the panel instead of setting the
    axis."""
    settings = list(dict.fromkeys(table["setting"]))
    ncols = min(2, len(settings))
    nrows = -(-len(settings) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.6 * ncols, 4.2 * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(settings) :]:
        ax.set_visible(False)
    for ax, setting in zip(axes.flat, settings, strict=False):
        rows = table[table["setting"].eq(setting)].dropna(subset=["score", "speed"])
        low, high = fences(rows["score"])
        far = rows[rows["score"] < low] if metric.higher_is_better else rows[rows["score"] > high]
        for _, r in rows.drop(far.index).iterrows():
            color = colors.get(r["activation"], GREY)
            style = _style(r["activation"], color)
            ax.scatter(r["speed"], r["score"], color=color, s=36 if color != GREY else 18, zorder=style["zorder"])
            if color != GREY:
                ax.annotate(
                    r["activation"],
                    (r["speed"], r["score"]),
                    xytext=(4, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color=color,
                )
        if not far.empty:
            named = ", ".join(f"{a} {v:.3f}" for a, v in zip(far["activation"], far["score"], strict=True))
            where = "below" if metric.higher_is_better else "above"
            ax.text(0.02, 0.02, wrap(f"{where} the axis: {named}", 60), transform=ax.transAxes, fontsize=7, color="0.3")
        ax.set_title(wrap(setting))
        ax.set_xlabel("training samples/s (mean over seeds, from the runs)")
        ax.set_ylabel(f"test {metric.label} (mean over seeds)")
    return fig


def heatmaps(
    table: pd.DataFrame, column: str, panels: list[str], levels: list, names: list[str], what: str, higher: bool
) -> plt.Figure:
    """Mean per activation (rows, in ``names`` order) x ``column`` (in ``levels`` order), one heatmap per panel;
    bright is better (``higher``: where higher values are)."""
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(len(panels) * (1.1 * len(levels) + 3.5), 0.45 * len(names) + 1.5),
        layout="constrained",
    )
    for ax, panel in zip(np.atleast_1d(axes), panels, strict=True):
        rows = table[table["panel"].eq(panel)]
        grid = rows.pivot(index="activation", columns=column, values="mean")
        grid = grid.reindex(index=[a for a in names if a in grid.index], columns=[v for v in levels if v in grid])
        sns.heatmap(
            grid,
            annot=True,
            fmt=".3f",
            cmap="viridis" if higher else "viridis_r",
            cbar=len(panels) == 1,
            ax=ax,
            annot_kws={"size": 8},
        )
        ax.grid(False)
        ax.set_title(wrap(panel))
        ax.set_xlabel(what)
    return fig


def gradient_norms(grad: pd.DataFrame, colors: Palette) -> plt.Figure:
    """Per-layer gradient norm (log scale) from input to output, each panel's x axis labelled with layer names."""
    grid = facets(grad, colors, x="layer", ylabel="gradient norm at epoch 0", xlabel="layer (input to output)")
    grid.set(yscale="log")
    for setting, ax in grid.axes_dict.items():
        names = grad[grad["setting"].eq(setting)].drop_duplicates("layer").sort_values("layer")
        ax.set_xticks(names["layer"], names["name"], rotation=45 if len(names) > 6 else 0)
    return finish(grid)


def _layer_slots(data: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Number each setting's hidden layers 0, 1, ... as panel columns, keeping at most MAX_LAYER_PANELS of them
    (evenly spaced, first and last included); also whether any were left out."""
    frames, skipped = [], False
    for _, rows in data.groupby("setting", sort=False):
        layers = sorted(rows["layer"].unique())
        if len(layers) > MAX_LAYER_PANELS:
            skipped = True
            layers = sorted({layers[round(i)] for i in np.linspace(0, len(layers) - 1, MAX_LAYER_PANELS)})
        slots = {layer: i for i, layer in enumerate(layers)}
        frames.append(rows[rows["layer"].isin(slots)].assign(slot=lambda f, s=slots: f["layer"].map(s)))
    return pd.concat(frames, ignore_index=True), skipped


def unit_health(data: pd.DataFrame, colors: Palette, what: str) -> tuple[plt.Figure, bool]:
    """A probe metric per epoch, one row of panels per setting and one panel per hidden layer (at most
    MAX_LAYER_PANELS of them: also returned is whether some were left out)."""
    data, skipped = _layer_slots(data)
    grid = sns.FacetGrid(
        data,
        row="setting",
        col="slot",
        hue="activation",
        hue_order=_present(data, colors),
        palette=colors,
        height=2.6,
        aspect=1.5,
    )
    grid.map_dataframe(_band, x="epoch")
    names = data.drop_duplicates(["setting", "slot"]).set_index(["setting", "slot"])["name"]
    for (setting, slot), ax in grid.axes_dict.items():
        if (setting, slot) not in names.index:  # this setting has fewer hidden layers
            ax.set_visible(False)
            continue
        ax.set_title(wrap(f"{setting}, {names[setting, slot]}", 40))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.set_axis_labels("epoch", what.lower())
    return finish(grid), skipped


def gallery_curves(names: list[str]) -> pd.DataFrame:
    """f and f' (autograd, float64, eval mode) on [-5, 5] of each elementwise activation of ``names``."""
    import torch  # the activations' own code: loaded here, not with the report's --help

    x = torch.linspace(*GALLERY_RANGE, dtype=torch.float64)
    xs = x.numpy()
    frames = []
    for spec in names:
        if not activations.info(spec).elementwise:
            continue
        f, df = activations.f_and_df(activations.create(spec).double().eval(), x)
        frames += [
            pd.DataFrame({"activation": spec, "x": xs, "curve": "f(x)", "y": f.numpy()}),
            pd.DataFrame({"activation": spec, "x": xs, "curve": "f'(x)", "y": df.numpy()}),
        ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def gallery(curves: pd.DataFrame) -> plt.Figure:
    """One small panel per activation: f in blue, f' in red, with the axes through 0."""
    drawn = list(dict.fromkeys(curves["activation"]))
    grid = sns.FacetGrid(
        curves, col="activation", col_order=drawn, col_wrap=min(6, len(drawn)), height=2.2, sharey=False
    )
    grid.map_dataframe(sns.lineplot, x="x", y="y", hue="curve", style="curve", palette=["C0", "C3"])
    grid.set_titles("{col_name}")
    grid.set_axis_labels("x", "")
    for ax in grid.axes.flat:
        ax.axhline(0, color="0.7", lw=0.6, zorder=0)
        ax.axvline(0, color="0.7", lw=0.6, zorder=0)
    grid.add_legend()
    return grid.figure
