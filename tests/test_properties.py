"""Property cards match values derived analytically (scipy quadrature on the textbook formulas)."""

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats
from scipy.special import expit

import activations
from activations.properties import WIDE_STD


def gauss_moment(f, std=1.0, order=1):
    """E[f(z)^order] for z ~ N(0, std^2), by adaptive quadrature."""
    value, _ = integrate.quad(
        lambda z: f(z) ** order * stats.norm.pdf(z, scale=std), -12 * std, 12 * std, points=[0.0], limit=200
    )
    return value


def sat_fraction_symmetric(df, max_df, std):
    """P(|f'(z)| < 1% max) for f' symmetric and decreasing in |z|: find the threshold point, use the normal tail."""
    t = optimize.brentq(lambda z: df(z) - 0.01 * max_df, 0.0, 50.0)
    return 2 * stats.norm.sf(t / std)


SIGMOID_DF = lambda z: expit(z) * (1 - expit(z))
TANH_DF = lambda z: 1 - math.tanh(z) ** 2

ANALYTIC = {
    "sigmoid": dict(
        f=expit,
        f0=0.5,
        df0=0.25,
        max_abs_df=0.25,
        range=(expit(-10), expit(10)),
        sat=(sat_fraction_symmetric(SIGMOID_DF, 0.25, 1), sat_fraction_symmetric(SIGMOID_DF, 0.25, WIDE_STD)),
    ),
    "tanh": dict(
        f=math.tanh,
        f0=0.0,
        df0=1.0,
        max_abs_df=1.0,
        range=(math.tanh(-10), math.tanh(10)),
        sat=(sat_fraction_symmetric(TANH_DF, 1, 1), sat_fraction_symmetric(TANH_DF, 1, WIDE_STD)),
    ),
    # torch's ReLU takes f'(0) = 0; f' = 0 on the whole negative half: half the inputs are saturated
    "relu": dict(f=lambda z: max(z, 0.0), f0=0.0, df0=0.0, max_abs_df=1.0, range=(0.0, 10.0), sat=(0.5, 0.5)),
    "softplus": dict(
        f=lambda z: np.logaddexp(0, z),
        f0=math.log(2),
        df0=0.5,
        max_abs_df=expit(10),
        range=(np.logaddexp(0, -10), np.logaddexp(0, 10)),
        sat=(
            stats.norm.cdf(math.log(0.01 * expit(10) / (1 - 0.01 * expit(10)))),
            stats.norm.cdf(math.log(0.01 * expit(10) / (1 - 0.01 * expit(10))) / WIDE_STD),
        ),
    ),
    "identity": dict(f=lambda z: z, f0=0.0, df0=1.0, max_abs_df=1.0, range=(-10.0, 10.0), sat=(0.0, 0.0)),
}


@pytest.mark.parametrize("name", sorted(ANALYTIC))
def test_card_matches_analytic_values(name):
    a = ANALYTIC[name]
    card = activations.card(name)
    mean = gauss_moment(a["f"])
    second = gauss_moment(a["f"], order=2)
    expected = {
        "f0": a["f0"],
        "df0": a["df0"],
        "max_abs_df": a["max_abs_df"],
        "range_min": a["range"][0],
        "range_max": a["range"][1],
        "mean": mean,
        "var": second - mean**2,
        "gain": 1 / math.sqrt(second),
        "saturated_n01": a["sat"][0],
        "saturated_wide": a["sat"][1],
    }
    for field, value in expected.items():
        assert getattr(card, field) == pytest.approx(value, abs=1e-3), field


def test_textbook_facts_on_the_cards():
    sig, tanh, relu = activations.card("sigmoid"), activations.card("tanh"), activations.card("relu")
    assert sig.max_abs_df == pytest.approx(0.25, abs=1e-6)
    assert sig.mean == pytest.approx(0.5, abs=1e-6) and not sig.zero_centred
    assert tanh.max_abs_df == pytest.approx(1.0, abs=1e-6)
    assert tanh.mean == pytest.approx(0.0, abs=1e-9) and tanh.zero_centred
    assert relu.gain == pytest.approx(math.sqrt(2), abs=1e-4)
    # N(0,1) weights on 500 active inputs saturate most sigmoid units; N(0,1) pre-activations do not
    assert sig.saturated_wide > 0.75 and sig.saturated_n01 < 1e-6
    assert activations.card("selu").mean == pytest.approx(0.0, abs=1e-4)
    assert activations.card("selu").var == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "name, monotonic, continuous_df, dead_region",
    [
        ("relu", True, False, True),
        ("sigmoid", True, True, False),
        ("tanh", True, True, False),
        ("elu", True, True, False),
        ("selu", True, False, False),
        ("hardtanh", True, False, True),
        ("gelu", False, True, False),
        ("gelu_tanh", False, True, False),
        ("abs", False, False, False),
        ("sine", False, True, False),
        ("leaky_relu", True, False, False),
    ],
)
def test_shape_flags(name, monotonic, continuous_df, dead_region):
    card = activations.card(name)
    assert (card.monotonic, card.continuous_df, card.dead_region) == (monotonic, continuous_df, dead_region)


def test_maxout_card_from_its_statistics():
    card = activations.card("maxout")
    assert card.width_factor == 0.5
    assert card.mean == pytest.approx(1 / math.sqrt(math.pi), abs=3e-3)  # E[max of two N(0,1)]
    assert card.gain == pytest.approx(1.0, abs=3e-3)  # E[max^2] = 1 by symmetry
    assert card.saturated_n01 == pytest.approx(0.5, abs=1e-9)  # the losing input gets no gradient
    assert card.monotonic is None and math.isnan(card.max_abs_df)


@pytest.mark.parametrize("gated, gate", [("glu", "sigmoid"), ("reglu", "relu"), ("geglu", "gelu"), ("swiglu", "silu")])
def test_a_gated_units_card_follows_from_its_gate(gated, gate):
    """a*g(b) with a, b independent N(0, 1): mean 0 and E[(a g(b))^2] = E[g(b)^2], so the gain is the gate's own."""
    card, of_gate = activations.card(gated), activations.card(gate)
    assert card.width_factor == 0.5 and card.family == "gated-linear" and card.monotonic is None
    assert card.mean == pytest.approx(0.0, abs=3e-3) and card.zero_centred
    assert card.gain == pytest.approx(of_gate.gain, rel=3e-3)


def test_learnable_count_and_cost_ratio_are_measured():
    assert activations.card("prelu").learnable == 1
    card = activations.card("tanh", timing=True)
    assert card.cost_vs_relu > 0 and math.isfinite(card.cost_vs_relu)
