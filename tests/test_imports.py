"""The module boundaries, read from the source with ``ast``: no import cycles in bench/, the report reads only data,
the spec is plain data; and what importing a module loads (checked in a fresh interpreter)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path, module_level_only: bool = False) -> set[str]:
    """The ``bench`` modules that a file imports (``bench.x`` -> ``x``), anywhere in it or only at module level."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("bench.")}
        elif isinstance(node, ast.ImportFrom) and node.module == "bench":
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench."):
            found.add(node.module.split(".")[1])
    return found


def _graph(module_level_only: bool = False) -> dict[str, set[str]]:
    files = {p.stem: p for p in (ROOT / "bench").glob("*.py") if p.stem not in ("__init__", "__main__")}
    return {name: _imports(path, module_level_only) & set(files) for name, path in files.items()}


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


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_bench_has_no_import_cycles_even_through_imports_inside_functions():
    assert _cycle(_graph()) is None


def test_the_report_imports_neither_the_harness_nor_the_store_nor_the_command_line():
    graph = _graph()
    for name in (n for n in graph if n.startswith("report")):
        assert not graph[name] & {"train", "run", "store", "executors", "cluster", "data", "models", "init"}, name


def test_the_spec_imports_no_harness_module_when_imported():
    assert not _graph(module_level_only=True)["config"] & {"data", "models", "init", "train", "optim"}


@pytest.mark.parametrize(
    "module, absent",
    [
        ("bench.report", "torchvision"),
        ("bench.analysis", "torchvision"),
        ("bench.config", "torch"),
        ("activations.errors", "torch"),
    ],
)
def test_importing_a_module_does_not_load(module, absent):
    code = f"import {module}, sys; print({absent!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
