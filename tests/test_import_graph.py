"""The engine's and the web app's modules import one another in a line, never in a circle (function-level imports
count too: a lazy import only hides a circle). Read with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that ``name`` imports anywhere in its source (its own packages aside)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]) if node.level else ""
            module = base.strip(".") if node.level else node.module or ""
            targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                out.add(target)
    return out


def circles(package: str) -> list[list[str]]:
    """Groups of 2+ modules of ``package`` that reach one another by imports (strongly connected)."""
    known = _modules(package)
    graph = {name: _imports(name, path, known) for name, path in known.items()}

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {name: reach(name) for name in graph}
    groups = {frozenset({name} | {o for o in reachable[name] if name in reachable[o]}) for name in graph}
    return sorted(sorted(group) for group in groups if len(group) > 1)


def test_the_engine_and_the_web_app_have_no_import_circle():
    assert circles("nas_engine") == []
    assert circles("webapp") == []


def private_imports(package: str) -> list[str]:
    """``module: name`` for each private name (one underscore) that a module of ``package`` imports
    from another module of the project."""
    found = []
    for name, path in _modules(package).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith(("nas_engine", "webapp"))
            ):
                found += [
                    f"{name}: {a.name}" for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
                ]
    return found


def test_no_module_imports_a_private_name_of_another():
    assert private_imports("nas_engine") == []
    assert private_imports("webapp") == []


def test_the_check_finds_a_circle_where_there_is_one(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from .a import thing\n")  # a lazy import still closes it
    (package / "c.py").write_text("import pkg.a\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert circles("pkg") == [["pkg.a", "pkg.b"]]
