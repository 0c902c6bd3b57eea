"""The library's modules import each other without a cycle (issue 15).

Read from the source, not from a running interpreter: every import a module makes when it is
imported (module level, ``try`` blocks included); imports under ``if TYPE_CHECKING:`` are for
annotations only and are left out, as are imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fastapi_serdes

PACKAGE = Path(fastapi_serdes.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The library modules ``name`` imports at import time."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for item in ast.walk(node) if isinstance(node, ast.Try) else [node]:
            if isinstance(item, ast.Import):
                found.update(alias.name for alias in item.names)
            elif isinstance(item, ast.ImportFrom):
                base = item.module or ""
                if item.level:
                    parent = package.split(".")[: len(package.split(".")) - (item.level - 1)]
                    base = ".".join([*parent, *([item.module] if item.module else [])])
                # `from . import x` imports the submodule x; `from .m import y` imports m.
                subs = {f"{base}.{alias.name}" for alias in item.names} & modules.keys()
                found.update(subs or {base})
    return (found & modules.keys()) - {name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None."""
    done: set[str] = set()
    for start in sorted(graph):
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        if start in done:
            continue
        path.append(start)
        on_path.add(start)
        while stack:
            node, pending = stack[-1]
            if not pending:
                stack.pop()
                done.add(node)
                on_path.discard(path.pop())
                continue
            child = pending.pop()
            if child in on_path:
                return [*path[path.index(child) :], child]
            if child not in done:
                stack.append((child, sorted(graph[child])))
                path.append(child)
                on_path.add(child)
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_library_has_no_import_cycle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "fastapi_serdes.middleware" in graph["fastapi_serdes"]  # the graph is read
    assert "fastapi_serdes.cache.response_cache" in graph["fastapi_serdes.cache.layer"]
    assert _cycle(graph) is None
