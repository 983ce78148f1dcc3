"""The code's shape: imports between modules go one way, and every file reads in one sitting.

Run it as a script (``python tests/test_layout.py``) to print the import cycles and the long
files instead of asserting.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The repository's folders and the import names the wheel gives them.
PACKAGES = {"simulator": "wsgiscope.simulator", "app": "wsgiscope.app"}
MAX_LINES = 400
#: Files (or folders, ending in "/") still allowed above MAX_LINES: empty it, don't grow it.
ALLOWED_LONG = [
    "app/lab/measure.py",
]


def modules() -> dict[str, Path]:
    """Every module of the packages, by its import name."""
    out: dict[str, Path] = {}
    for folder, name in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([name, *parts])] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``name`` imports anywhere in its file: at the top, in a
    function or under ``if TYPE_CHECKING`` (a type-only import is still a dependency)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            if node.level:
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name``
            # imports mod
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # ``import pkg.sub.mod`` depends on pkg.sub.mod, or the deepest known prefix
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def long_files() -> dict[str, int]:
    """Python files above MAX_LINES that ALLOWED_LONG does not name, with their length."""
    out = {}
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if any(rel == a or (a.endswith("/") and rel.startswith(a)) for a in ALLOWED_LONG):
                continue
            n = len(path.read_text().splitlines())
            if n > MAX_LINES:
                out[rel] = n
    return out


def test_the_import_scan_sees_the_engine_layers() -> None:
    edges = graph()
    sim = PACKAGES["simulator"]
    assert f"{sim}.engine" in edges[sim]
    assert f"{sim}.context" in edges[f"{sim}.servers.base"]
    assert f"{sim}.servers.base" in edges[f"{sim}.servers.gunicorn"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_package_runs_the_engine() -> None:
    """The models get what they need of a run through ``context.Sim``, never the engine."""
    sim = PACKAGES["simulator"]
    users = sorted(name for name, deps in graph().items() if f"{sim}.engine" in deps)
    assert users == [sim]


@pytest.mark.parametrize("package", list(PACKAGES))
def test_no_import_cycles(package: str) -> None:
    name = PACKAGES[package]
    found = [c for c in cycles(graph()) if any(m == name or m.startswith(name + ".") for m in c)]
    assert found == []


def test_files_stay_small() -> None:
    assert long_files() == {}


if __name__ == "__main__":
    for component in cycles(graph()):
        print("cycle:", " <-> ".join(component))
    for rel, n in long_files().items():
        print(f"long: {rel} ({n} lines)")
