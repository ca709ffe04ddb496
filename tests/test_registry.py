"""The registry: names, aliases, spec parsing, helpful errors, user classes and plugins."""

import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

import activations
from activations import InputError, registry


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made inside a test are forgotten afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_LOOKUP", dict(registry._LOOKUP))


def test_builtin_names_from_the_issue_are_all_registered():
    wanted = (
        "sigmoid tanh relu leaky_relu prelu rrelu elu celu selu gelu gelu_tanh silu mish softplus softsign "
        "hardtanh hardsigmoid hardswish relu6 logsigmoid tanhshrink identity"
    ).split()
    assert set(wanted) <= set(activations.names(source="builtin"))
    custom = "swish_beta lecun_tanh penalized_tanh isrlu squareplus bent_identity abs gaussian sine maxout".split()
    custom += "glu reglu geglu swiglu".split()
    assert set(custom) <= set(activations.names(source="custom"))


@pytest.mark.parametrize(
    "spelling, name",
    [
        ("swish", "silu"),
        ("SiLU", "silu"),
        ("leakyrelu", "leaky_relu"),
        ("LeakyReLU", "leaky_relu"),
        ("leaky-relu", "leaky_relu"),
        ("ELU", "elu"),
        ("linear", "identity"),
    ],
)
def test_names_are_case_insensitive_with_aliases(spelling, name):
    assert activations.info(spelling).name == name
    assert type(activations.create(spelling)) is type(activations.create(name))


def test_leaky_relu_default_slope_and_keyword_arguments():
    assert activations.create("leaky_relu").negative_slope == 0.01
    assert activations.create("leaky_relu(negative_slope=0.02)").negative_slope == 0.02
    assert activations.create("elu(alpha=0.5)").alpha == 0.5
    assert activations.create("elu", alpha=0.3).alpha == 0.3
    assert activations.create("maxout(k=3)").k == 3


def test_unknown_name_lists_the_closest_names():
    with pytest.raises(InputError, match=r"unknown activation 'reluu'.*did you mean.*relu"):
        activations.create("reluu")
    with pytest.raises(InputError, match="gelu"):
        activations.create("gleu")


def test_unknown_keyword_names_the_valid_ones():
    with pytest.raises(InputError, match=r"'elu' has no argument 'beta'; valid arguments: alpha"):
        activations.create("elu(beta=2)")
    with pytest.raises(InputError, match="valid arguments: none"):
        activations.create("tanh(alpha=1)")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("elu(alpha=foo)", "not a literal"),
        ("elu(alpha=1", "not valid"),
        ("elu(1.0)", "positional"),
        ("elu(**{'alpha': 1})", r"\*\*"),
        ("elu(alpha=1) + 1", "not valid|after the closing"),
        ("", "cannot parse"),
        ("el u", "cannot parse"),
    ],
)
def test_bad_specs_say_what_could_not_be_parsed(spec, message):
    with pytest.raises(InputError, match=message):
        activations.create(spec)


def test_code_in_a_spec_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    for spec in (
        "__import__('os')",
        f"elu(alpha=__import__('os').system('touch {marker}'))",
        f"elu(alpha=(lambda: open('{marker}', 'w'))())",
        f"os:system('touch {marker}')",
    ):
        with pytest.raises(InputError):
            activations.create(spec)
    assert not marker.exists()


def test_bad_values_are_input_errors():
    with pytest.raises(InputError, match="maxout"):
        activations.create("maxout(k=0)")
    with pytest.raises(InputError, match="inplace=True is not supported"):
        activations.create("relu(inplace=True)")


def test_canonical_spelling_drops_defaults_and_sorts():
    assert activations.canonical("ELU(alpha=1.0)") == "elu"
    assert activations.canonical("swish") == "silu"
    assert activations.canonical("LeakyReLU(negative_slope=0.02)") == "leaky_relu(negative_slope=0.02)"
    assert activations.canonical("hardtanh(max_val=2.0, min_val=-2.0)") == "hardtanh(max_val=2.0, min_val=-2.0)"
    name, kwargs = activations.parse_spec(activations.canonical("hardtanh(max_val=2.0, min_val=-2.0)"))
    assert (name, kwargs) == ("hardtanh", {"max_val": 2.0, "min_val": -2.0})


def test_create_takes_a_class_a_factory_or_an_instance():
    class Cube(nn.Module):
        def forward(self, x):
            return x**3

    assert isinstance(activations.create(Cube), Cube)
    assert isinstance(activations.create(lambda: nn.Tanh()), nn.Tanh)
    original = activations.create("prelu")
    copied = activations.create(original)
    assert copied is not original and copied.weight is not original.weight
    with pytest.raises(InputError, match="not a torch.nn.Module"):
        activations.create(lambda: 3)


def test_names_filter_by_family_and_source():
    rect = activations.names(family="rectifier")
    assert "relu" in rect and "tanh" not in rect
    assert "tanh" in activations.names(family="sigmoid-like")
    assert activations.names(source="custom") and set(activations.names(source="custom")) <= set(activations.names())
    with pytest.raises(InputError, match="unknown family"):
        activations.names(family="squiggly")


def test_metadata_learnable_and_width_factor():
    assert activations.info("prelu").learnable == 1
    assert activations.info("swish_beta").learnable == 1
    assert activations.info("relu").learnable == 0
    assert activations.info("maxout").width_factor == 0.5
    assert activations.width_factor(activations.create("maxout(k=4)")) == 0.25
    assert activations.info("maxout").elementwise is False


def test_register_a_new_activation_with_the_decorator(scratch_registry):
    @activations.register("cube_test", family="other", description="x^3", reference="test", aliases=("cubic_test",))
    class Cube(nn.Module):
        def __init__(self, *, scale: float = 1.0):
            super().__init__()
            self.scale = scale

        def forward(self, x):
            return self.scale * x**3

    assert "cube_test" in activations.names(source="plugin")
    m = activations.create("CubicTest(scale=2.0)")
    assert m(torch.tensor([2.0])).item() == 16.0
    with pytest.raises(InputError, match="already names"):
        activations.register("relu", nn.ReLU)
    with pytest.raises(InputError, match="family"):
        activations.register("odd_test", nn.ReLU, family="squiggly")


def test_user_module_class_spec(tmp_path, monkeypatch):
    (tmp_path / "my_acts.py").write_text(
        textwrap.dedent(
            """
            import torch.nn as nn

            class Scaled(nn.Module):
                family = "rectifier"

                def __init__(self, *, s: float = 1.0):
                    super().__init__()
                    self.s = s

                def forward(self, x):
                    return self.s * x.clamp(min=0)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    m = activations.create("my_acts:Scaled(s=3.0)")
    assert m(torch.tensor([-1.0, 2.0])).tolist() == [0.0, 6.0]
    meta = activations.info("my_acts:Scaled")
    assert (meta.source, meta.family) == ("plugin", "rectifier")
    with pytest.raises(InputError, match="no argument 't'; valid arguments: s"):
        activations.create("my_acts:Scaled(t=1)")
    with pytest.raises(InputError, match="has no attribute 'Nope'"):
        activations.create("my_acts:Nope")
    with pytest.raises(InputError, match="cannot import module"):
        activations.create("no_such_module_xyz:Cls")


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch, scratch_registry):
    (tmp_path / "ab_plugin_demo.py").write_text(
        "import torch\nimport torch.nn as nn\n\n"
        "class Cube(nn.Module):\n"
        "    '''Cubic unit.'''\n"
        "    family = 'other'\n"
        "    def forward(self, x):\n"
        "        return x ** 3\n"
    )
    dist = tmp_path / "ab_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ab-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[actbench.activations]\ncube_ep = ab_plugin_demo:Cube\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    assert activations.create("cube_ep")(torch.tensor([2.0])).item() == 8.0
    meta = activations.info("cube_ep")
    assert meta.source == "plugin" and meta.description == "Cubic unit."
    assert "cube_ep" in activations.names(source="plugin")


def test_the_card_command_line(tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "activations", "--no-timing", "--json", "sigmoid", "tanh"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert len(ok.stdout.strip().splitlines()) == 2
    bad = subprocess.run([sys.executable, "-m", "activations", "sigmoyd"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "did you mean sigmoid" in bad.stderr
