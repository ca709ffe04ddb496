"""The layout holds: bench/ is four rooms on the flow spec -> harness -> runs -> analysis -> report, read from the
source with ``ast`` (imports inside functions count) and checked in a fresh interpreter (what importing a module
loads). No import cycles; the spec is plain data; the harness knows no store; analysis and report pages take
DataFrames and import no harness, executor or store (only the report's command line opens a store)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
COMMANDS = {"bench.report.command", "bench.report.__main__"}  # the report's command line: it reads the store


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in BENCH.rglob("*.py")}


def _resolve(base: str, name: str) -> str:
    """``from base import name``: the module ``base.name`` if there is one, else ``base``."""
    return f"{base}.{name}" if f"{base}.{name}" in MODULES else base


def _imports(path: Path, module_level_only: bool = False) -> set[str]:
    """The bench modules a file imports, dotted (``bench.harness.loop``), anywhere in it or only at module level."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bench.")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bench":
            found |= {_resolve(node.module, a.name) for a in node.names}
    return found & set(MODULES)


def _graph(module_level_only: bool = False) -> dict[str, set[str]]:
    return {name: _imports(path, module_level_only) for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of module names, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def _room(prefix: str) -> list[str]:
    return sorted(n for n in MODULES if n == prefix or n.startswith(prefix + "."))


def _reaching(graph: dict[str, set[str]], module: str, forbidden: tuple[str, ...]) -> set[str]:
    return {m for m in graph[module] if m.startswith(forbidden)}


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_rooms_exist_and_every_module_is_in_one():
    rooms = ("bench.harness", "bench.runs", "bench.analysis", "bench.report")
    assert all(_room(room) for room in rooms)
    top = {n for n in MODULES if n.count(".") == 1 and not n.startswith(rooms)}
    spec_and_commands = (
        "config",
        "tasks",
        "plan",
        "checks",
        "provenance",
        "run",
        "compare",
        "export",
        "perf",
        "bundle",
    )
    assert top == {f"bench.{m}" for m in spec_and_commands}


def test_bench_has_no_import_cycles_even_through_imports_inside_functions():
    assert _cycle(_graph()) is None


def test_no_file_is_over_about_400_lines():
    lines = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in lines.items() if n > 420} == {}


def test_the_spec_imports_no_harness_module_when_imported():
    graph = _graph(module_level_only=True)
    for name in ("bench.config", "bench.tasks", "bench.plan", "bench.checks", "bench.provenance"):
        assert not _reaching(graph, name, ("bench.harness", "bench.runs", "bench.analysis", "bench.report")), name


def test_the_harness_imports_no_store_and_nothing_after_it():
    graph = _graph()
    for name in _room("bench.harness"):
        assert not _reaching(graph, name, ("bench.runs", "bench.analysis", "bench.report")), name


def test_analysis_and_report_pages_import_no_harness_executor_or_store():
    graph = _graph()
    for name in [*_room("bench.analysis"), *(n for n in _room("bench.report") if n not in COMMANDS)]:
        assert not _reaching(graph, name, ("bench.harness", "bench.runs")), name


def test_the_boundary_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from bench.runs import store\n")
    assert _imports(module) == {"bench.runs.store"} and _imports(module, module_level_only=True) == set()


@pytest.mark.parametrize(
    "module, absent",
    [
        ("bench.report.page", "torchvision"),
        ("bench.report.page", "bench.runs.store"),
        ("bench.report.compare_page", "bench.harness.loop"),
        ("bench.analysis.stats", "torchvision"),
        ("bench.analysis.claims", "bench.runs.store"),
        ("bench.harness.loop", "bench.runs.store"),
        ("bench.config", "torch"),
        ("bench.tasks", "pandas"),
        ("bench", "bench.runs.store"),
        ("activations.errors", "torch"),
    ],
)
def test_importing_a_module_does_not_load(module, absent):
    code = f"import {module}, sys; print({absent!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
