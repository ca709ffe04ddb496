"""Every registered activation: builds, runs both ways in float32/float64, keeps its shape, stays finite,
pickles, deep-copies, equals its reference formula and passes gradcheck."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from scipy.special import erf, expit

import activations

SELU_L, SELU_A = 1.0507009873554805, 1.6732632423543772
RRELU_EVAL_SLOPE = (1 / 8 + 1 / 3) / 2

# Reference formulas in numpy, written from the papers, independent of the torch implementations.
REFERENCES = {
    "sigmoid": expit,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "prelu": lambda x: np.where(x > 0, x, 0.25 * x),
    "rrelu": lambda x: np.where(x >= 0, x, RRELU_EVAL_SLOPE * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "celu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: SELU_L * np.where(x > 0, x, SELU_A * np.expm1(np.minimum(x, 0))),
    "gelu": lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    "silu": lambda x: x * expit(x),
    "mish": lambda x: x * np.tanh(np.logaddexp(0, x)),
    "softplus": lambda x: np.logaddexp(0, x),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "hardtanh": lambda x: np.clip(x, -1, 1),
    "hardsigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "hardswish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "relu6": lambda x: np.clip(x, 0, 6),
    "logsigmoid": lambda x: -np.logaddexp(0, -x),
    "tanhshrink": lambda x: x - np.tanh(x),
    "identity": lambda x: x,
    "swish_beta": lambda x: x * expit(x),
    "lecun_tanh": lambda x: 1.7159 * np.tanh(2 * x / 3),
    "penalized_tanh": lambda x: np.where(x > 0, np.tanh(x), 0.25 * np.tanh(x)),
    "isrlu": lambda x: np.where(x >= 0, x, x / np.sqrt(1 + x**2)),
    "squareplus": lambda x: (x + np.sqrt(x**2 + 4)) / 2,
    "bent_identity": lambda x: (np.sqrt(x**2 + 1) - 1) / 2 + x,
    "abs": np.abs,
    "gaussian": lambda x: np.exp(-(x**2)),
    "sine": np.sin,
    "snake": lambda x: x + np.sin(x) ** 2,
    "arctan": np.arctan,
    "squared_relu": lambda x: np.maximum(x, 0) ** 2,
    # maxout over pairs of adjacent features
    "maxout": lambda x: x.reshape(x.shape[0], -1, 2).max(axis=-1),
    "maxout_matched": lambda x: x.reshape(x.shape[0], -1, 2).max(axis=-1),  # the function of maxout; the net narrows
}
# gated linear units: the first half of the features times a gate of the second half (Shazeer 2020)
GATES = {
    "glu": expit,
    "reglu": REFERENCES["relu"],
    "geglu": lambda x: 0.5 * (1 + erf(x / np.sqrt(2))) * x,
    "swiglu": REFERENCES["silu"],
}
for _name, _gate in GATES.items():
    for _variant in (_name, f"{_name}_matched"):  # the matched variant is the same function in a narrower network
        REFERENCES[_variant] = lambda x, g=_gate: x[:, : x.shape[1] // 2] * g(x[:, x.shape[1] // 2 :])

NAMES = activations.names()
KINKS = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0, 6.0], dtype=torch.float64)


def test_every_registered_activation_has_a_reference_and_at_least_30_exist():
    assert len(NAMES) >= 30
    assert set(NAMES) == set(REFERENCES), "add a reference formula for every registered activation"


def _make(name):
    return activations.create(name).eval()  # eval: rrelu uses its deterministic mean slope


@pytest.mark.parametrize("name", NAMES)
def test_matches_reference_formula(name):
    x = torch.linspace(-20, 20, 4002, dtype=torch.float64).reshape(-1, 2)
    if activations.info(name).elementwise:
        x = x.reshape(-1)
    got = _make(name).double()(x).detach().numpy()
    want = REFERENCES[name](x.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(8, 6), (2, 6, 3, 3)])
def test_forward_backward_and_shape(name, dtype, shape):
    module = activations.create(name).to(dtype)
    x = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(0), requires_grad=True)
    y = module(x)
    assert y.dtype == dtype
    factor = activations.width_factor(module)
    assert y.shape == (shape[0], round(shape[1] * factor), *shape[2:])
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for p in module.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_nan_at_extreme_inputs(name, dtype):
    x = torch.linspace(-1e4, 1e4, 20002, dtype=dtype).reshape(-1, 2).requires_grad_(True)
    y = activations.create(name).to(dtype)(x)
    y.sum().backward()
    assert not torch.isnan(y).any()
    assert not torch.isnan(x.grad).any()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_gives_no_nan_at_extreme_inputs(name, dtype):
    x = torch.cat([torch.linspace(-1e4, 1e4, 2000), torch.linspace(-8, 8, 2000)]).to(dtype).reshape(-1, 2)
    assert not torch.isnan(_make(name).to(dtype)(x)).any()


@pytest.mark.parametrize("name", NAMES)
def test_pickles_and_deep_copies(name):
    module = _make(name)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    for clone in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        assert type(clone) is type(module)
        torch.testing.assert_close(clone(x), module(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name):
    module = _make(name).double()
    x = torch.randn(16, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 3
    near_kink = (x.unsqueeze(-1) - KINKS).abs().amin(-1) < 1e-3
    x = torch.where(near_kink, x + 0.01, x).requires_grad_(True)
    params = dict(module.named_parameters())
    names = list(params)

    def f(inp, *values):
        return torch.func.functional_call(module, dict(zip(names, values, strict=True)), (inp,))

    inputs = (x, *(p.detach().clone().requires_grad_(True) for p in params.values()))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_metadata_is_complete(name):
    meta = activations.info(name)
    assert meta.family in activations.FAMILIES
    assert meta.source in ("builtin", "custom")
    assert meta.description and meta.reference
    module = activations.create(name)
    assert getattr(module, "inplace", False) is False
    assert meta.learnable == activations.learnable_parameters(module)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("layout", ["dense", "nchw", "channels_last"])
def test_maxout_has_the_maxima_and_winners_of_a_max_over_each_group_in_every_layout(k, layout):
    """The same values as a max over each group, and the gradient goes to the same winner: the first of a tie (ties
    are common: a zero background gives equal channels; 0 and -0 tie), a NaN where there is one. With and without
    autograd (evaluation takes the maxima alone)."""
    torch.manual_seed(0)
    shape = (8, 6 * k) if layout == "dense" else (8, 6 * k, 5, 5)
    x = torch.randn(shape).round()  # integers: many ties
    x.view(-1)[::7], x.view(-1)[::11] = -0.0, math.nan
    x = x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x
    mine, ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    maxout = activations.create(f"maxout(k={k})")
    out = maxout(mine)
    expected = ref.unflatten(1, (-1, k)).max(dim=2).values
    g = torch.randn(expected.shape)
    out.backward(g)
    expected.backward(g)
    with torch.no_grad():
        evaluated = maxout(x)
    tied = (x.unflatten(1, (-1, k)) == expected.detach().unsqueeze(2)).sum(2) > 1
    assert expected.isnan().any() and (tied.any() or k == 1)
    torch.testing.assert_close(out, expected, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(evaluated, expected.detach(), rtol=0, atol=0, equal_nan=True)
    assert torch.equal(mine.grad.view(torch.int32), ref.grad.view(torch.int32))  # bit for bit, zeros' signs too
    if layout == "channels_last":
        assert out.is_contiguous(memory_format=torch.channels_last)
