"""The package structure: no import cycles, layers point down, no private names across modules.

Every import statement counts, also those inside functions (a lazy import still ties two
modules together: ``vx_engine.export.onnx_export`` and ``vx_engine.export.quantize`` once imported each other that way).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# folder -> import name, as pyproject.toml's [tool.setuptools.package-dir] maps them
PACKAGES = {"engine": "vx_engine", "export": "vx_engine.export", "kernels": "vx_engine.kernels"}


def _module_name(path: Path, folder: str) -> str:
    parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGES[folder], *parts])


def _modules() -> dict[str, Path]:
    return {
        _module_name(path, folder): path
        for folder in PACKAGES
        for path in (ROOT / folder).rglob("*.py")
    }


def _folder(name: str) -> str:
    """The top folder a module lives in: vx_engine.export.x -> export, vx_engine.x -> engine."""
    return next(
        f
        for f, pkg in sorted(PACKAGES.items(), key=lambda i: -len(i[1]))
        if name == pkg or name.startswith(pkg + ".")
    )


def _imports(path: Path, name: str, known: set[str]) -> list[tuple[str, list[str]]]:
    """(imported project module, names taken from it) for every import in the file."""
    found = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name in known]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [alias.name for alias in node.names]
            # ``from vx_engine.export import registry`` imports a module
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in known]
            if submodules:
                found += [(module, []) for module in submodules]
            elif base in known:
                found.append((base, names))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: {target for target, _ in _imports(path, name, known) if target != name}
        for name, path in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _without_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Package ``__init__`` modules re-export their children; an edge child -> package is
    an edge to the child's siblings, which is what the cycle check must see."""
    modules = _modules()
    packages = {name for name in graph if modules[name].name == "__init__.py"}
    return {name: {t for t in targets if t not in packages} for name, targets in graph.items()}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert _cycles(_without_packages(_graph())) == []


def test_layers_point_down() -> None:
    """export/ and kernels/ never import the runtime's backends, pipeline or faces."""
    upper = tuple(f"vx_engine.{name}" for name in ("backends", "pipeline", "api", "cli", "server"))
    wrong = [
        (name, target)
        for name, targets in _graph().items()
        if _folder(name) in ("export", "kernels")
        for target in targets
        if target.startswith(upper)
    ]
    assert wrong == []


def test_no_private_names_imported_across_modules() -> None:
    modules = _modules()
    known = set(modules)
    private = [
        (name, target, imported)
        for name, path in modules.items()
        for target, names in _imports(path, name, known)
        for imported in names
        if imported.startswith("_") and not imported.startswith("__")
    ]
    assert private == []


def test_no_private_modules_imported_from_another_package() -> None:
    modules = _modules()
    known = set(modules)
    private = [
        (name, target)
        for name, path in modules.items()
        for target, _ in _imports(path, name, known)
        if any(part.startswith("_") and part != "__init__" for part in target.split("."))
        and _folder(target) != _folder(name)
    ]
    assert private == []


def _size_check():
    spec = importlib.util.spec_from_file_location("size_check", ROOT / "tools" / "size_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_function_over_80_lines_and_no_module_over_400() -> None:
    """The size bar of the style guide, over engine/, export/ and kernels/ (tools/size_check.py)."""
    assert _size_check().oversized(ROOT) == []


def test_the_size_check_finds_a_long_function(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(80))  # def line + 80 = 81 lines
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "long.py").write_text(f"def long():\n{body}")
    assert _size_check().oversized(tmp_path) == ["engine/long.py:1: long of 81 lines"]
