"""The report's seaborn figures, each drawn from an analysis DataFrame; ``palette`` maps activations (in suite
order) to their colour, the same in every figure."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import MaxNLocator

import activations

DPI = 110
MAX_LAYER_PANELS = 6
GALLERY_X = torch.linspace(-5.0, 5.0, 401, dtype=torch.float64)

Palette = dict[str, tuple]


def palette(names: list[str]) -> Palette:
    """One colour per activation."""
    colors = sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colors, strict=True))


def save(fig: plt.Figure, path: Path) -> None:
    """Write ``fig`` as a PNG at ``path`` and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def wrap(title: str, width: int = 48) -> str:
    """A long panel title on several lines."""
    return textwrap.fill(title, width)


def _band(data: pd.DataFrame, x: str, color: object = None, label: str | None = None, **_: object) -> None:
    """Mean line with its confidence band on the current axes (FacetGrid.map_dataframe)."""
    data = data.sort_values(x)
    ax = plt.gca()
    ax.plot(data[x], data["mean"], color=color, label=label, marker="o" if len(data) < 12 else None, ms=3, lw=1.4)
    ax.fill_between(data[x], data["ci_low"], data["ci_high"], color=color, alpha=0.15, lw=0)


def _present(data: pd.DataFrame, colors: Palette) -> list[str]:
    """The activations of ``data`` in suite order."""
    return [a for a in colors if a in set(data["activation"])]


def facets(data: pd.DataFrame, colors: Palette, x: str, ylabel: str, xlabel: str | None = None) -> sns.FacetGrid:
    """One panel per ``setting``, one coloured mean-and-band line per activation."""
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
    return grid


def finish(grid: sns.FacetGrid) -> plt.Figure:
    """Lay out the panels (wrapped titles included), then add the activation legend on the right."""
    grid.tight_layout()
    grid.add_legend(title="activation", ncol=1 if len(grid.hue_names or ()) <= 16 else 2)
    return grid.figure


def lr_sensitivity(val: pd.DataFrame, colors: Palette) -> plt.Figure:
    """Validation accuracy against learning rate (log scale), one panel per setting."""
    grid = facets(val, colors, x="lr", ylabel="final validation accuracy", xlabel="learning rate")
    grid.set(xscale="log")
    return finish(grid)


def accuracy(table: pd.DataFrame, colors: Palette) -> plt.Figure:
    """Mean and interval per activation, one panel per setting, best at the top; * marks a "best"."""
    settings = list(dict.fromkeys(table["setting"]))
    n_acts = table.groupby("setting")["activation"].nunique().max()
    ncols = min(3, len(settings))
    nrows = -(-len(settings) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.8 * ncols, nrows * (1.2 + 0.26 * n_acts)), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[len(settings) :]:
        ax.set_visible(False)
    for ax, setting in zip(axes.flat, settings, strict=False):
        rows = table[table["setting"].eq(setting) & table["mean"].notna()].iloc[::-1]
        y = np.arange(len(rows))
        err = np.vstack([rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]])
        ax.errorbar(rows["mean"], y, xerr=np.nan_to_num(err), fmt="none", ecolor="0.4", capsize=2, lw=1)
        ax.scatter(rows["mean"], y, c=[colors.get(a, "0.3") for a in rows["activation"]], zorder=3, s=22)
        ax.set_yticks(
            y, [f"{a} *" if m == "best" else a for a, m in zip(rows["activation"], rows["mark"], strict=True)]
        )
        ax.set_title(wrap(setting))
        ax.set_xlabel("test accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        if rows.empty:
            ax.text(0.5, 0.5, "no run finished ok", transform=ax.transAxes, ha="center", va="center")
            ax.set_xticks([])
    return fig


def heatmaps(
    table: pd.DataFrame, column: str, panels: list[str], levels: list, names: list[str], what: str
) -> plt.Figure:
    """Mean per activation (rows, in ``names`` order) x ``column`` (in ``levels`` order), one heatmap per panel."""
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
        sns.heatmap(grid, annot=True, fmt=".3f", cmap="viridis", cbar=len(panels) == 1, ax=ax, annot_kws={"size": 8})
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
    xs = GALLERY_X.numpy()
    frames = []
    for spec in names:
        if not activations.info(spec).elementwise:
            continue
        f, df = activations.f_and_df(activations.create(spec).double().eval(), GALLERY_X)
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


def cost(cards: pd.DataFrame) -> plt.Figure:
    """Each activation's forward+backward time relative to ReLU, fastest first, with ReLU's 1 as a red line."""
    order = cards.sort_values("cost_vs_relu")["name"].tolist()
    fig, ax = plt.subplots(figsize=(6, 0.9 + 0.26 * len(cards)))
    sns.barplot(data=cards, x="cost_vs_relu", y="name", order=order, color="C0", ax=ax)
    ax.axvline(1.0, color="C3", lw=1)
    ax.set_xlabel("forward+backward time / ReLU's (median, large float32 tensor, this machine)")
    ax.set_ylabel("")
    return fig
