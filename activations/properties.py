"""Property cards: an activation's shape and statistics, computed numerically from the module itself.

Curve properties use a float64 grid on [-10, 10] (step 1e-4) and autograd for f'. Expectations under
z ~ N(0, s^2) integrate on a grid over +-12 s. Activations that are not elementwise (maxout) get
their statistics by Monte Carlo over k independent inputs and no curve properties.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import asdict, dataclass
from functools import cache

import torch
import torch.nn as nn

from activations.registry import canonical, create, info, learnable_parameters, width_factor

WIDE_STD = math.sqrt(500.0)  # N(0,1) weights, 500 of 1000 inputs equal to 1: pre-activation std ~ 22.4
SATURATION = 0.01  # |f'| below 1 % of its maximum counts as saturated
ZERO_CENTRED_TOL = 0.05


@dataclass(frozen=True)
class Card:
    """Numerical properties of one activation (NaN where a property does not apply)."""

    name: str
    family: str
    source: str
    learnable: int
    width_factor: float
    range_min: float
    range_max: float
    f0: float
    df0: float
    max_abs_df: float
    mean: float
    var: float
    zero_centred: bool
    gain: float
    monotonic: bool | None
    continuous_df: bool | None
    saturated_n01: float
    saturated_wide: float
    dead_region: bool | None
    cost_vs_relu: float = math.nan

    def as_dict(self) -> dict:
        return asdict(self)


def f_and_df(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and f'(x) by autograd, elementwise (for maxout: 1 for each winning input, else 0); grad mode forced on."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        y = module(x)
        (dy,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), dy


def _float64(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).double().eval()


def _normal_grid(std: float, n: int = 400_001) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid points and quadrature weights (summing to 1) for z ~ N(0, std^2)."""
    z = torch.linspace(-12 * std, 12 * std, n, dtype=torch.float64)
    w = torch.exp(-0.5 * (z / std) ** 2)
    return z, w / w.sum()


def _statistics(module: nn.Module, max_abs_df: float) -> dict[str, float]:
    z, w = _normal_grid(1.0)
    f, df = f_and_df(module, z)
    mean = float((w * f).sum())
    second = float((w * f * f).sum())
    thr = SATURATION * max_abs_df
    z_wide, w_wide = _normal_grid(WIDE_STD)
    _, df_wide = f_and_df(module, z_wide)
    return {
        "mean": mean,
        "var": second - mean * mean,
        "gain": 1.0 / math.sqrt(second) if second > 0 else math.nan,
        "saturated_n01": float(w[df.abs() < thr].sum()),
        "saturated_wide": float(w_wide[df_wide.abs() < thr].sum()),
    }


def _monte_carlo_statistics(module: nn.Module, pieces: int, n: int = 1 << 20) -> dict[str, float]:
    """Statistics of a non-elementwise unit fed ``pieces`` independent normal inputs."""
    gen = torch.Generator().manual_seed(0)
    out: dict[str, float] = {}
    for std, label in ((1.0, "n01"), (WIDE_STD, "wide")):
        z = torch.randn(n, pieces, generator=gen, dtype=torch.float64) * std
        f, df = f_and_df(module, z)
        thr = SATURATION * float(df.abs().max())
        out[f"saturated_{label}"] = float((df.abs() < thr).double().mean())
        if label == "n01":
            mean, second = float(f.mean()), float((f * f).mean())
            out.update(mean=mean, var=second - mean * mean, gain=1.0 / math.sqrt(second))
    return out


def compute_card(spec: str, timing: bool = False) -> Card:
    """The property card of an activation spec (``"elu"``, ``"elu(alpha=0.5)"``, ``"pkg.mod:Class"``)."""
    meta = info(spec)
    module = create(spec)
    m64 = _float64(module)
    common = {
        "name": spec,
        "family": meta.family,
        "source": meta.source,
        "learnable": learnable_parameters(module),
        "width_factor": width_factor(module),
        "cost_vs_relu": cost_vs_relu(spec) if timing else math.nan,
    }
    if not meta.elementwise:
        stats = _monte_carlo_statistics(m64, round(1.0 / width_factor(module)))
        nan = math.nan
        return Card(
            **common,
            range_min=nan,
            range_max=nan,
            f0=nan,
            df0=nan,
            max_abs_df=nan,
            zero_centred=abs(stats["mean"]) < ZERO_CENTRED_TOL,
            monotonic=None,
            continuous_df=None,
            dead_region=None,
            **stats,
        )

    x = torch.linspace(-10.0, 10.0, 200_001, dtype=torch.float64)
    f, df = f_and_df(m64, x)
    f0, df0 = f_and_df(m64, torch.zeros(1, dtype=torch.float64))
    max_abs_df = float(df.abs().max())
    steps = f.diff()
    slope_jumps = df.diff().abs()
    stats = _statistics(m64, max_abs_df)
    return Card(
        **common,
        range_min=float(f.min()),
        range_max=float(f.max()),
        f0=float(f0),
        df0=float(df0),
        max_abs_df=max_abs_df,
        zero_centred=abs(stats["mean"]) < ZERO_CENTRED_TOL,
        monotonic=bool((steps >= -1e-12).all() or (steps <= 1e-12).all()),
        # a smooth f' moves by at most |f''|*1e-4 between grid points; a kink jumps by O(f')
        continuous_df=bool(slope_jumps.max() < 1e-2 * max(1.0, max_abs_df)),
        # f' exactly zero on an interval of length >= 0.1 within [-5, 5]; farther out, float64
        # rounding alone zeroes the derivative of saturating functions (gelu_tanh at x < -10)
        dead_region=bool((df[x.abs() <= 5] == 0).sum() >= 1000),
        **stats,
    )


@cache
def card(name: str, timing: bool = False) -> Card:
    """Cached :func:`compute_card`; other modules (init gains, probes) read cards through this."""
    return compute_card(name, timing=timing)


def _fwd_bwd_seconds(module: nn.Module, x: torch.Tensor, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        xi = x.detach().requires_grad_(True)
        start = time.perf_counter()
        module(xi).sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def relative_cost(specs: list[str], rounds: int = 5, numel: int = 1 << 21, repeats: int = 3) -> dict[str, tuple]:
    """Forward+backward time of each activation alone over ReLU's: (median, min, max) of the ratio over rounds.

    Interleaved rounds: each round times ReLU, then every activation once (median of ``repeats`` passes on a
    float32 tensor of ~``numel`` elements), and divides by that round's ReLU time, so that a machine that slows down
    or speeds up during the measurement moves ReLU's time with the others. ReLU's own ratio is 1 by construction.
    One warm-up round is not counted.
    """
    gen = torch.Generator().manual_seed(0)
    modules = {spec: create(spec) for spec in specs}
    inputs = {}
    for spec, module in modules.items():
        pieces = round(1.0 / width_factor(module))
        inputs[spec] = torch.randn(numel // (256 * pieces), 256 * pieces, generator=gen)
    relu, x_relu = nn.ReLU(), torch.randn(numel // 256, 256, generator=gen)
    ratios: dict[str, list[float]] = {spec: [] for spec in specs}
    for round_ in range(rounds + 1):
        base = _fwd_bwd_seconds(relu, x_relu, repeats)
        for spec in specs:
            seconds = base if canonical(spec) == "relu" else _fwd_bwd_seconds(modules[spec], inputs[spec], repeats)
            if round_:
                ratios[spec].append(seconds / base)
    return {spec: (statistics.median(r), min(r), max(r)) for spec, r in ratios.items()}


def cost_vs_relu(spec: str) -> float:
    """Median forward+backward time of ``spec`` alone over ReLU's, from :func:`relative_cost`."""
    return relative_cost([spec])[spec][0]
