"""Models contain only the injected activation, honour width factors, and are initialised reproducibly."""

import copy
import functools
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import activations
from bench.config import RunSpec
from bench.harness import models
from bench.harness.images import IMAGE_CLASSIFICATION
from bench.harness.init import FIXED_GAINS, INITS
from bench.harness.regularize import param_groups
from bench.tasks import IMAGE_MODELS

IN_SHAPE, CLASSES = (1, 28, 28), 10


def build(model, act="relu", **kw):
    return models.build(model, IN_SHAPE, CLASSES, functools.partial(activations.create, act), **kw)


@pytest.mark.parametrize("model", models.FEATURES)
@pytest.mark.parametrize("act", ["relu", "tanh", "prelu", "maxout", "maxout(k=3)", "swish_beta"])
def test_only_the_injected_activation_appears(model, act):
    net = build(model, act, dropout=0.2, batch_norm=True)
    act_type = type(activations.create(act))
    found = models.activation_modules(net)
    assert len(found) == len(models.weight_layers(net)) - 1  # one after every layer but the classifier
    assert all(type(m) is act_type for m in found)
    for m in net.modules():
        assert isinstance(m, models.STRUCTURAL) or type(m) is act_type, f"unexpected module {m}"
    out = net.eval()(torch.randn(4, *IN_SHAPE))
    assert out.shape == (4, CLASSES)


@pytest.mark.parametrize("model", ["mlp", "deep_mlp"])
def test_with_the_identity_activation_the_network_is_affine(model):
    # had the model any nonlinearity of its own, f(a) + f(b) - f(0) would differ from f(a + b)
    net = build(model, "identity").double().eval()
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(3, *IN_SHAPE, generator=gen, dtype=torch.float64) for _ in range(2))
    zero = torch.zeros(1, *IN_SHAPE, dtype=torch.float64)
    torch.testing.assert_close(net(a + b), net(a) + net(b) - net(zero))
    relu_net = build(model, "relu").double().eval()
    assert not torch.allclose(relu_net(a + b), relu_net(a) + relu_net(b) - relu_net(zero))


def test_default_shapes_and_maxout_width():
    mlp = build("mlp")
    assert [(m.in_features, m.out_features) for m in models.weight_layers(mlp)] == [(784, 256), (256, 256), (256, 10)]
    deep = build("deep_mlp")
    assert len(models.weight_layers(deep)) == 11 and models.weight_layers(deep)[3].out_features == 64
    maxout = build("mlp", "maxout(k=3)", hidden=(100, 50))
    assert [(m.in_features, m.out_features) for m in models.weight_layers(maxout)] == [(784, 300), (100, 150), (50, 10)]
    cnn = build("cnn", "maxout", channels=(8, 16), hidden=(32,))
    convs = [m for m in cnn.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 16), (8, 32)]
    assert models.weight_layers(cnn)[-2].in_features == 16 * 7 * 7


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("wide", ["maxout", "glu", "reglu", "geglu", "swiglu"])
@pytest.mark.parametrize("model", ["mlp", "deep_mlp", "cnn"])
def test_a_matched_variant_has_relus_parameter_count_within_one_width_step(model, wide):
    relu, unmatched, matched = (build(model, a) for a in ("relu", wide, f"{wide}_matched"))
    assert _count(unmatched) > 1.9 * _count(relu)
    assert abs(_count(matched) - _count(relu)) <= 0.02 * _count(relu)
    # no network with every width scaled by one factor comes closer (brute force over the scale, step 1/400)
    hidden, channels = IMAGE_MODELS[model]["hidden"], IMAGE_MODELS[model]["channels"]
    best = min(
        abs(_count(build(model, wide, hidden=scale(hidden, s), channels=scale(channels, s))) - _count(relu))
        for s in np.arange(0.5, 0.9, 1 / 400)
    )
    assert abs(_count(matched) - _count(relu)) <= best


def scale(widths: tuple[int, ...], s: float) -> tuple[int, ...]:
    return tuple(max(1, round(w * s)) for w in widths)


def test_maxout_matched_mlp_widths():
    matched = build("mlp", "maxout_matched")
    shapes = [(m.in_features, m.out_features) for m in models.weight_layers(matched)]
    assert shapes == [(784, 288), (144, 288), (144, 10)]
    assert _count(matched) == 269_290 and _count(build("mlp", "relu")) == 269_322


def test_dropout_and_batch_norm_are_optional():
    plain = build("mlp")
    assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm1d)) for m in plain.modules())
    reg = build("mlp", dropout=0.3, batch_norm=True)
    assert sum(isinstance(m, nn.Dropout) for m in reg.modules()) == 2
    assert sum(isinstance(m, nn.BatchNorm1d) for m in reg.modules()) == 2
    alpha = build("mlp", "selu", dropout=0.1, dropout_kind="alpha")
    assert sum(isinstance(m, nn.AlphaDropout) for m in alpha.modules()) == 2
    assert not any(isinstance(m, nn.Dropout) for m in alpha.modules())
    assert [type(m).__name__ for m in models.activation_modules(alpha)] == ["SELU", "SELU"]


def init(net, scheme, gain, seed, bias=0.0):
    """The image task's initialisation: the first layer at gain 1, every later one at the activation's ``gain``."""
    IMAGE_CLASSIFICATION.initialize(RunSpec(init=scheme, seed=seed, bias_init=bias), net, gain)


def _weights(net):
    return [m.weight.detach().clone() for m in models.weight_layers(net)]


def test_auto_init_gives_every_activation_the_same_draws_scaled_by_its_gain():
    gains = {a: activations.card(a).gain for a in ("relu", "tanh")}
    nets = {a: build("mlp", a) for a in gains}
    for a, net in nets.items():
        init(net, "auto", gains[a], seed=3)
    w_relu, w_tanh = _weights(nets["relu"]), _weights(nets["tanh"])
    torch.testing.assert_close(w_relu[0], w_tanh[0])  # first layer: data inputs, gain 1
    for r, t in zip(w_relu[1:], w_tanh[1:], strict=True):
        torch.testing.assert_close(t, r * gains["tanh"] / gains["relu"])
    # He init for ReLU: std sqrt(2/fan_in) on the layers that see activations
    assert w_relu[1].std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.02)


def test_layers_with_equal_shapes_get_equal_draws_even_when_others_differ():
    relu, maxout = build("mlp", "relu"), build("mlp", "maxout")
    init(relu, "lecun", 1.0, seed=1)
    init(maxout, "lecun", 1.0, seed=1)
    torch.testing.assert_close(_weights(relu)[-1], _weights(maxout)[-1])  # classifier: (10, 256) in both


@pytest.mark.parametrize("scheme", INITS)
def test_every_initializer_is_seeded_and_sets_biases(scheme):
    a, b, c = build("mlp"), build("mlp"), build("mlp")
    init(a, scheme, math.sqrt(2), seed=0, bias=0.1)
    init(b, scheme, math.sqrt(2), seed=0, bias=0.1)
    init(c, scheme, math.sqrt(2), seed=1, bias=0.1)
    for wa, wb, wc in zip(_weights(a), _weights(b), _weights(c), strict=True):
        assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert all(torch.all(m.bias == 0.1) for m in models.weight_layers(a))


def test_textbook_normal_init_has_unit_std_and_lecun_one_over_root_n():
    net = build("mlp")
    init(net, "normal", 1.0, seed=0)
    assert _weights(net)[0].std().item() == pytest.approx(1.0, rel=0.01)
    init(net, "lecun", 1.0, seed=0)
    assert _weights(net)[0].std().item() == pytest.approx(1 / math.sqrt(784), rel=0.01)


def test_weight_decay_applies_to_weights_only():
    net = build("mlp", "prelu", batch_norm=True)
    decay, no_decay = param_groups(net, 1e-3)
    weights = {id(m.weight) for m in models.weight_layers(net)}
    assert {id(p) for p in decay["params"]} == weights
    assert decay["weight_decay"] == 1e-3 and no_decay["weight_decay"] == 0.0
    prelu_slopes = {id(m.weight) for m in models.activation_modules(net)}
    assert prelu_slopes <= {id(p) for p in no_decay["params"]}
    decay, _ = param_groups(net, 1e-3, decay_act_params=True)
    assert prelu_slopes <= {id(p) for p in decay["params"]}


@pytest.mark.parametrize("scheme", FIXED_GAINS)
def test_the_fixed_gain_of_an_initializer_is_what_it_draws(scheme):
    weight = torch.empty(512, 512)
    INITS[scheme](weight, 3.0, torch.Generator().manual_seed(0))  # a fixed gain ignores the activation's
    assert weight.std().item() * math.sqrt(512) == pytest.approx(FIXED_GAINS[scheme], rel=0.01)


def _one_step(net, x, y):
    """One Adam step on (x, y); the weights after it."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    nn.functional.cross_entropy(net(x), y).backward()
    optimizer.step()
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("act", ["relu", "isrlu", "maxout"])
def test_the_cnn_flattens_channels_last_features_into_a_channels_last_gradient_with_the_same_bits(act):
    torch.manual_seed(0)
    x = torch.randn(64, *IN_SHAPE).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (64,))
    net = build("cnn", act, channels=(8, 16), hidden=(32,)).to(memory_format=torch.channels_last)
    plain = copy.deepcopy(net)
    plain[[type(m) for m in plain].index(models.Flatten)] = nn.Flatten()  # autograd's own flatten
    seen = {}
    pool = [m for m in net if isinstance(m, nn.MaxPool2d)][-1]
    pool.register_full_backward_hook(lambda m, gin, gout: seen.update(grad=gout[0]))
    assert all(torch.equal(a, b) for a, b in zip(_one_step(net, x, y), _one_step(plain, x, y), strict=True))
    assert seen["grad"].is_contiguous(memory_format=torch.channels_last) and not seen["grad"].is_contiguous()
    nchw = torch.randn(4, 16, 7, 7, requires_grad=True)  # any other input: nn.Flatten's way
    models.Flatten()(nchw).sum().backward()
    assert nchw.grad.is_contiguous()
