"""The package's shape: imports among our own modules point one way (no cycles, function-local
imports included), each layer imports only the layers below it, the engine never imports gradio, and the
package installs as `wan-studio`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tomllib

from tests.conftest import ROOT

PACKAGES = ("wan_studio", "pipelines", "presets", "ui")
# The layers, bottom to top (docs/development.md's Layers section lists the same order): a layer is one of our
# top-level modules or subpackages, and it imports only layers at or below it, function-local imports
# included. `wan_studio` is the package's own __init__ (its version), `__main__` is `python -m
# wan_studio`, `app` is app.py, the studio's (and the Space's) app file.
LAYERS = ("wan_studio", "errors", "disk", "settings", "safety", "backend", "media", "catalog", "presets", "models",
          "pipelines", "extract", "memory", "loras", "requests", "queue", "runtime", "cli", "ui", "__main__", "app")
# imports that point up anyway: (from layer, to layer) -> the reason, in a line
UPWARD_EXCEPTIONS: dict[tuple[str, str], str] = {}


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


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    modules = modules or module_files()
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


def layer_of(module: str) -> str:
    """`wan_studio.memory.choose` -> memory, `wan_studio.errors` -> errors, `ui.panels` -> ui."""
    parts = module.split(".")
    return parts[1] if parts[0] == "wan_studio" and len(parts) > 1 else parts[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a layer up to a higher one that UPWARD_EXCEPTIONS does not allow."""
    rank = {layer: index for index, layer in enumerate(LAYERS)}
    return sorted(f"{module} -> {target} ({layer_of(module)} is below {layer_of(target)})"
                  for module, targets in graph.items() for target in targets
                  if rank[layer_of(target)] > rank[layer_of(module)]
                  and (layer_of(module), layer_of(target)) not in UPWARD_EXCEPTIONS)


def layered_graph() -> dict[str, set[str]]:
    """The import graph of the packages and of app.py, which sits on top of them all."""
    return import_graph({**module_files(), "app": ROOT / "app.py"})


def test_the_layer_check_finds_an_import_that_points_up():
    graph = {"wan_studio.memory.choose": {"wan_studio.queue.pool", "wan_studio.backend"},
             "wan_studio.queue.pool": {"wan_studio.backend", "wan_studio.queue.job"}, "wan_studio.backend": set()}
    assert upward_imports(graph) == ["wan_studio.memory.choose -> wan_studio.queue.pool (memory is below queue)"]
    assert layer_of("wan_studio") == "wan_studio" and layer_of("ui.panels") == "ui" and layer_of("app") == "app"


def test_every_module_is_in_a_layer():
    unplaced = sorted({layer_of(module) for module in layered_graph()} - set(LAYERS))
    assert unplaced == [], f"add {unplaced} to LAYERS here and to docs/development.md's Layers section"


def test_each_layer_imports_only_the_layers_below_it():
    graph = layered_graph()
    assert upward_imports(graph) == []
    used = {(layer_of(module), layer_of(target)) for module, targets in graph.items() for target in targets}
    assert sorted(set(UPWARD_EXCEPTIONS) - used) == [], "an allowed upward import is gone: remove its exception"


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


# A function-local import is for what is slow to import or optional: the packages in pyproject.toml's
# banned-module-level-imports (ruff keeps them out of module tops), and our own modules (deferred so
# `python -m wan_studio --help` and the page open fast; the layer test above keeps them pointing
# down). The standard library, light packages such as numpy, the leaf `errors` module and anything
# the file already imports at its top go at the top, where a reader sees what the module needs.
LEAF_MODULES = ("wan_studio.errors",)
# (module, imported name) -> why it stays inside a function
LOCAL_IMPORT_EXCEPTIONS = {
    ("wan_studio.runtime.stats", "psutil"): "importing the stats module probes nothing (tests/test_stats.py)",
}


def lazy_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(config["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-module-level-imports"])


def split_imports(module: str, path: Path, modules: dict) -> tuple[set[str], list[tuple[int, str]]]:
    """(names imported at the module's top, [(line, name)] imported inside its functions).

    Imports under `if TYPE_CHECKING:` never run and count as neither."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def names_of(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join(parent + ([base] if base else []))
        return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]

    top, local = set(), []

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if in_function:
                    local.extend((child.lineno, name) for name in names_of(child))
                else:
                    top.update(names_of(child))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return top, local


def is_ours(name: str, modules: dict) -> bool:
    return any(name == module or name.startswith(module + ".") for module in modules)


def needless_local_imports(modules: dict, lazy: set[str]) -> list[str]:
    found = []
    for module, path in sorted(modules.items()):
        top, local = split_imports(module, path, modules)
        for line, name in sorted(set(local)):
            if is_ours(name, modules):
                needless = name in LEAF_MODULES or name in top
            else:
                needless = name.split(".")[0] not in lazy
            if needless and (module, name) not in LOCAL_IMPORT_EXCEPTIONS:
                shown = path.name if path.is_absolute() and ROOT not in path.parents else path.relative_to(ROOT)
                found.append(f"{shown}:{line} imports {name} inside a function")
    return found


def test_the_local_import_check_finds_light_imports_inside_a_function(tmp_path):
    (tmp_path / "user.py").write_text("import os\nfrom pkg import errors\n\n"
                                      "def f():\n    import json, torch, os\n    from pkg import errors, heavy\n")
    modules = {f"pkg.{name}": tmp_path / f"{name}.py" for name in ("errors", "heavy", "user")}
    for name in ("errors", "heavy"):
        (tmp_path / f"{name}.py").write_text("")
    found = needless_local_imports(modules, {"torch"})
    assert found == ["user.py:5 imports json inside a function", "user.py:5 imports os inside a function",
                     "user.py:6 imports pkg.errors inside a function"]


def test_function_local_imports_are_only_for_heavy_or_optional_modules():
    modules = {**module_files(), "app": ROOT / "app.py"}
    found = needless_local_imports(modules, lazy_packages())
    assert found == [], f"{len(found)} imports to move to the top of their file:\n" + "\n".join(found)
