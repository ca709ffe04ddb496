"""Name -> activation module registry: spec parsing, aliases, plugins and helpful errors.

A spec is a registered name (``"elu"``), a name with literal keyword arguments
(``"leaky_relu(negative_slope=0.02)"``, parsed with :mod:`ast`, never evaluated) or
``"package.module:ClassName"`` for a user's own ``nn.Module`` (arguments allowed there too).
"""

from __future__ import annotations

import ast
import copy
import difflib
import hashlib
import importlib
import inspect
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from activations import FAMILIES, SOURCES
from activations.errors import InputError

ENTRY_POINT_GROUP = "actbench.activations"

_HEAD = re.compile(r"^[A-Za-z_][\w.-]*(:[A-Za-z_]\w*)?$")


@dataclass(frozen=True)
class ActivationInfo:
    """Registry metadata of one activation; learnable parameters and width come from an instance."""

    name: str
    factory: Callable[..., nn.Module]
    family: str
    source: str
    description: str
    reference: str
    aliases: tuple[str, ...] = ()
    elementwise: bool = True

    @property
    def defaults(self) -> dict[str, Any]:
        """Hyper-parameters the factory accepts, with their defaults (``inplace`` left out)."""
        return {
            k: p.default
            for k, p in _keyword_params(self.factory).items()
            if k != "inplace" and p.default is not inspect.Parameter.empty
        }

    @property
    def learnable(self) -> int:
        """Number of learnable parameters of a default instance."""
        return learnable_parameters(self.factory())

    @property
    def width_factor(self) -> float:
        """Output width over input width of a default instance (1/k for maxout)."""
        return width_factor(self.factory())


_REGISTRY: dict[str, ActivationInfo] = {}
_LOOKUP: dict[str, str] = {}  # normalised name or alias -> canonical name
_plugins_loaded = False


def _norm(name: str) -> str:
    """Lookup key: case-insensitive, and '_' / '-' ignored (``LeakyReLU`` = ``leaky_relu``)."""
    return name.lower().replace("_", "").replace("-", "")


def learnable_parameters(module: nn.Module) -> int:
    """Count of trainable scalars in an activation module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def width_factor(module: nn.Module) -> float:
    """How the activation changes the feature width: models make the layer before it wider by 1/this."""
    return float(getattr(module, "width_factor", 1.0))


def register(
    name: str,
    factory: Callable[..., nn.Module] | None = None,
    *,
    family: str = "other",
    description: str = "",
    reference: str = "",
    aliases: tuple[str, ...] = (),
    source: str = "plugin",
    elementwise: bool = True,
):
    """Register an ``nn.Module`` class or a factory under ``name``; usable as a decorator."""

    def add(obj: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if family not in FAMILIES:
            raise InputError(f"family {family!r} for {name!r} is not one of {', '.join(FAMILIES)}")
        if source not in SOURCES:
            raise InputError(f"source {source!r} for {name!r} is not one of {', '.join(SOURCES)}")
        if not callable(obj):
            raise InputError(f"cannot register {name!r}: {obj!r} is not a class or a callable")
        canonical = name.lower()
        for key in (canonical, *aliases):
            taken = _LOOKUP.get(_norm(key))
            if taken is not None and _REGISTRY[taken].factory is not obj:
                raise InputError(f"cannot register {name!r}: {key!r} already names {taken!r}")
        _REGISTRY[canonical] = ActivationInfo(
            name=canonical,
            factory=obj,
            family=family,
            source=source,
            description=description,
            reference=reference,
            aliases=tuple(a.lower() for a in aliases),
            elementwise=elementwise,
        )
        for key in (canonical, *aliases):
            _LOOKUP[_norm(key)] = canonical
        return obj

    return add if factory is None else add(factory)


def _load_plugins() -> None:
    """Register activations that installed packages declare under the entry point group, once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the registry, but is reported
            warnings.warn(f"activation plugin {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)
            continue
        if _norm(ep.name) in _LOOKUP:
            continue  # the plugin's module registered itself on import
        register(
            ep.name,
            obj,
            family=getattr(obj, "family", "other"),
            description=getattr(obj, "description", "") or _first_line(obj.__doc__),
            reference=getattr(obj, "reference", ""),
            source="plugin",
        )


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""


def _resolve(name: str) -> str:
    """Canonical registered name for a name or alias, or an error listing the closest names."""
    key = _norm(name)
    if key not in _LOOKUP:
        _load_plugins()
    if key in _LOOKUP:
        return _LOOKUP[key]
    close = difflib.get_close_matches(key, list(_LOOKUP), n=4, cutoff=0.5)
    suggestions = list(dict.fromkeys(_LOOKUP[c] for c in close))  # closest first, no repeats
    hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
    raise InputError(f"unknown activation {name!r}{hint} (run `python -m activations` for the list)")


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name(k=literal, ...)"`` into the name and its keyword arguments, without evaluating code."""
    if not isinstance(spec, str):
        raise InputError(f"an activation spec must be a string, not {type(spec).__name__}")
    text = spec.strip()
    head, paren, rest = text.partition("(")
    head = head.strip()
    if not _HEAD.match(head):
        raise InputError(
            f"cannot parse activation spec {spec!r}: expected a name, name(key=value, ...) or package.module:Class"
        )
    if not paren:
        return head, {}
    try:
        call = ast.parse("f(" + rest, mode="eval").body
    except SyntaxError:
        raise InputError(
            f"cannot parse the arguments of activation spec {spec!r}: not valid name(key=value, ...) syntax"
        ) from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise InputError(f"cannot parse activation spec {spec!r}: text after the closing parenthesis")
    if call.args:
        raise InputError(f"activation spec {spec!r}: positional arguments are not allowed, write key=value")
    kwargs: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise InputError(f"activation spec {spec!r}: ** arguments are not allowed, write key=value")
        try:
            kwargs[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise InputError(
                f"activation spec {spec!r}: the value of {kw.arg!r} is not a literal "
                "(numbers, strings, True/False/None, tuples and lists of them)"
            ) from None
    return head, kwargs


def format_spec(name: str, kwargs: dict[str, Any]) -> str:
    """The inverse of :func:`parse_spec`, with arguments sorted by name."""
    if not kwargs:
        return name
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in sorted(kwargs.items()))})"


def _keyword_params(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    return {
        k: p
        for k, p in sig.parameters.items()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def _accepts_any_keyword(factory: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _import_object(target: str) -> Callable[..., nn.Module]:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"activation {target!r}: cannot import module {module_name!r} ({exc})") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise InputError(f"activation {target!r}: module {module_name!r} has no attribute {attr!r}") from None
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise InputError(f"activation {target!r} is not an nn.Module class")
    return obj


def info(name: str) -> ActivationInfo:
    """Metadata of a registered activation (name or alias) or of a ``module:Class`` spec."""
    head, _ = parse_spec(name)
    if ":" in head:
        obj = _import_object(head)
        return ActivationInfo(
            name=head,
            factory=obj,
            family=getattr(obj, "family", "other"),
            source="plugin",
            description=getattr(obj, "description", "") or _first_line(obj.__doc__),
            reference=getattr(obj, "reference", ""),
            elementwise=getattr(obj, "elementwise", True),
        )
    return _REGISTRY[_resolve(head)]


def _check_kwargs(label: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    if _accepts_any_keyword(factory):
        return
    valid = [k for k in _keyword_params(factory) if k != "inplace"]
    for k in kwargs:
        if k not in valid and k != "inplace":
            listing = ", ".join(valid) if valid else "none"
            raise InputError(f"activation {label!r} has no argument {k!r}; valid arguments: {listing}")
    if kwargs.get("inplace"):
        raise InputError(
            f"activation {label!r}: inplace=True is not supported (in-place activations corrupt gradients)"
        )


def _build(label: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> nn.Module:
    _check_kwargs(label, factory, kwargs)
    try:
        module = factory(**kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise InputError(f"activation {format_spec(label, kwargs)!r}: {exc}") from None
    if not isinstance(module, nn.Module):
        raise InputError(f"activation {label!r} returned {type(module).__name__}, not a torch.nn.Module")
    return module


def canonical(spec: str) -> str:
    """One spelling per activation: canonical name, arguments equal to their defaults dropped, sorted."""
    head, kwargs = parse_spec(spec)
    meta = info(head)
    _check_kwargs(head, meta.factory, kwargs)
    defaults = meta.defaults
    kept = {k: v for k, v in kwargs.items() if k == "inplace" or k not in defaults or defaults[k] != v}
    kept.pop("inplace", None)
    return format_spec(meta.name, kept)


def source_sha(spec: str) -> str:
    """sha256 (16 hex digits) of the source file of the module that defines a plugin activation (``module:Class`` or
    an entry point), so that a run's key follows its code; "" for the built-in and custom activations."""
    meta = info(parse_spec(spec)[0])
    if meta.source != "plugin":
        return ""
    try:
        text = Path(inspect.getsourcefile(meta.factory) or "").read_bytes()
    except (TypeError, OSError):  # no file (defined in an interactive session): the object's own source
        try:
            text = inspect.getsource(meta.factory).encode()
        except (TypeError, OSError):
            raise InputError(
                f"activation {spec!r}: its source cannot be read, and a run's key needs it; define it in a module file"
            ) from None
    return hashlib.sha256(text).hexdigest()[:16]


def create(spec: str | type | Callable[..., nn.Module] | nn.Module, **overrides: Any) -> nn.Module:
    """A new activation module from a spec string, an ``nn.Module`` class, a factory or an instance (copied)."""
    if isinstance(spec, nn.Module):
        if overrides:
            raise InputError("keyword overrides cannot be applied to an activation instance; pass its class")
        return copy.deepcopy(spec)
    if isinstance(spec, str):
        head, kwargs = parse_spec(spec)
        meta = info(head)
        return _build(meta.name, meta.factory, {**kwargs, **overrides})
    if callable(spec):
        return _build(getattr(spec, "__name__", repr(spec)), spec, dict(overrides))
    raise InputError(f"cannot make an activation from {type(spec).__name__}: give a name, a class or a callable")


def names(family: str | None = None, source: str | None = None) -> list[str]:
    """Sorted canonical names of registered activations, optionally of one family or source."""
    if family is not None and family not in FAMILIES:
        raise InputError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    if source is not None and source not in SOURCES:
        raise InputError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")
    _load_plugins()
    return sorted(
        n
        for n, meta in _REGISTRY.items()
        if (family is None or meta.family == family) and (source is None or meta.source == source)
    )


CHECK_BATCH = (16, 840)  # a standard-normal batch; 840 is divisible by every small maxout k


def check(spec: str) -> None:
    """Build ``spec`` and run it once on a standard-normal batch, before any training: InputError naming the spec
    if it cannot be built, raises, changes the batch's shape unlike its width factor says, or returns NaN/inf."""
    try:
        module = create(spec)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"activation {spec!r} cannot be built: {type(exc).__name__}: {exc}") from None
    rows, width = CHECK_BATCH
    x = torch.randn(rows, width, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            y = module(x)
    except Exception as exc:
        raise InputError(f"activation {spec!r} fails on a standard-normal batch: {type(exc).__name__}: {exc}") from None
    want = (rows, round(width * width_factor(module)))
    got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
    if got != want:
        raise InputError(
            f"activation {spec!r} turns a {rows}x{width} batch into {got}, expected {want[0]}x{want[1]} "
            "(an activation that changes the width declares it: a width_factor attribute)"
        )
    if not torch.isfinite(y).all():
        bad = int((~torch.isfinite(y)).sum())
        raise InputError(f"activation {spec!r} returns NaN or infinity for {bad} of {y.numel()} standard-normal inputs")
    _check_backward(spec, module, x)


def _check_backward(spec: str, module: nn.Module, x: torch.Tensor) -> None:
    """What training needs beyond a finite forward pass: the input's dtype kept, an output autograd can follow back to
    the input (not detached), and a backward pass that runs and gives finite gradients. The input is a leaf that
    requires grad, as in the per-layer probes, so an activation that works in place on its input fails here."""
    z = x.clone().requires_grad_()
    try:
        y = module(z)
        if y.dtype != z.dtype:
            raise InputError(f"activation {spec!r} returns {y.dtype} for a {z.dtype} batch: it must keep the dtype")
        if not y.requires_grad:
            raise InputError(
                f"activation {spec!r} returns an output that does not require grad (detached from its input?): "
                "no gradient would reach the layers before it"
            )
        y.sum().backward()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"activation {spec!r} fails in a backward pass: {type(exc).__name__}: {exc}") from None
    if z.grad is None or not torch.isfinite(z.grad).all():
        raise InputError(f"activation {spec!r} gives no finite gradient for its standard-normal input")
