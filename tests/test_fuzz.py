"""Property tests: spec strings round-trip, keys are stable and sensitive, garbage never escapes as a crash."""

import dataclasses
import keyword

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import activations
from activations import InputError
from bench.config import FIELDS, RunSpec

identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s))
literals = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.tuples(st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False)),
)


@given(name=identifiers, kwargs=st.dictionaries(identifiers, literals, max_size=4))
def test_spec_strings_round_trip(name, kwargs):
    text = activations.format_spec(name, kwargs)
    assert activations.parse_spec(text) == (name, kwargs)
    assert activations.format_spec(*activations.parse_spec(text)) == text


@given(
    name=st.sampled_from(["elu", "leaky_relu", "celu", "softplus", "squareplus", "sine"]),
    value=st.floats(0.01, 10, allow_nan=False),
)
def test_canonical_form_is_a_fixed_point(name, value):
    arg = next(iter(activations.info(name).defaults))
    spec = activations.format_spec(name.upper(), {arg: value})
    once = activations.canonical(spec)
    assert activations.canonical(once) == once
    assert activations.parse_spec(once)[0] == name


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(st.text(max_size=40))
def test_garbage_spec_strings_raise_only_input_errors(text):
    try:
        activations.create(text)
    except InputError:
        pass


@settings(max_examples=300)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_()=,.:'\"0123456789 -+*[]{}", max_size=40))
def test_spec_like_garbage_raises_only_input_errors(text):
    try:
        activations.create(text)
    except InputError:
        pass


spec_changes = st.fixed_dictionaries(
    {},
    optional={
        "lr": st.floats(1e-5, 1.0),
        "seed": st.integers(0, 10**6),
        "epochs": st.integers(1, 100),
        "batch_size": st.integers(1, 4096),
        "dropout": st.floats(0, 0.9),
        "weight_decay": st.floats(0, 1),
        "activation": st.sampled_from(["relu", "tanh", "elu(alpha=0.5)", "swish", "silu", "maxout(k=3)"]),
        "augment": st.booleans(),
        "hidden": st.lists(st.integers(1, 512), min_size=1, max_size=3).map(tuple),
    },
)


@settings(max_examples=200)
@given(a=spec_changes, b=spec_changes)
def test_key_changes_exactly_when_the_spec_changes(a, b):
    spec_a = dataclasses.replace(RunSpec(), **a)
    spec_b = dataclasses.replace(RunSpec(), **b)
    assert (spec_a.key == spec_b.key) == (spec_a == spec_b)
    settable = {k: v for k, v in dataclasses.asdict(RunSpec()).items() if k in FIELDS}  # activation_sha is derived
    assert spec_a.key == RunSpec(**{**settable, **a}).key
