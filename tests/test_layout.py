"""The package's shape: imports among our own modules point one way (no cycles, function-local
imports included), the engine never imports gradio, and the package installs as `wan-studio`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("wan_studio", "pipelines", "presets", "ui")


def module_files() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported_names(module: str, path: Path, modules: dict | None = None) -> set[str]:
    """Every module name an import statement anywhere in the file names (absolute form).

    `from package import name` counts `package.name` when that is a module of ours, else the
    package (a submodule's own parent `__init__` runs first either way, so it is not an edge)."""
    modules = modules or {}
    names = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(module, path, modules):
            while name and name not in modules:  # `from pkg import attr` names the package
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle_through_a_function_local_import(tmp_path, monkeypatch):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from wan_studio.runtime import engine\n")
    assert "wan_studio.runtime.engine" in imported_names("wan_studio.x", source, module_files())


def test_no_import_cycles_among_our_modules():
    found = cycles(import_graph())
    assert found == [], "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_engine_and_the_wrappers_never_import_gradio():
    graph_names = {m: imported_names(m, p) for m, p in module_files().items() if not m.startswith("ui")}
    offenders = sorted(m for m, names in graph_names.items() if any(n.split(".")[0] == "gradio" for n in names))
    assert offenders == []


def test_pipelines_import_only_leaf_engine_modules():
    allowed = ("pipelines", "wan_studio.media", "wan_studio.errors", "wan_studio.catalog")
    graph = import_graph()
    bad = {m: sorted(t for t in targets if not t.startswith(allowed))
           for m, targets in graph.items() if m.startswith("pipelines")}
    assert {m: t for m, t in bad.items() if t} == {}


def test_the_package_is_installed_with_its_command():
    # `make` installs the package editable; the command is the same CLI as `python -m wan_studio`
    command = Path(sys.executable).with_name("wan-studio")
    result = subprocess.run([str(command), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "generate" in result.stdout and "queue" in result.stdout
    where = subprocess.run([sys.executable, "-c", "import wan_studio; print(wan_studio.__file__)"], cwd="/",
                           capture_output=True, text=True, timeout=120)
    assert Path(where.stdout.strip()).resolve() == (ROOT / "wan_studio" / "__init__.py").resolve()
