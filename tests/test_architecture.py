"""The shape of the code: no import cycle between the project's modules (imports inside
functions count too; only ``if TYPE_CHECKING:`` blocks do not), and SQL only where it is
allowed."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("worker", "adapters", "rules")

# Modules of worker/ and rules/ that still hold SQLAlchemy statements, waiting to move into
# adapters/db/. The list may only shrink: a new module with SQL fails this test.
SQL_NOT_YET_MOVED = {
    "worker.config",  # reading the database URL (not a statement)
    "worker.errors",  # naming the table of a failed statement (not a statement)
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported_names(tree: ast.AST) -> list[str]:
    """Every absolute import in the module, at any depth, except under TYPE_CHECKING."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.extend(f"{node.module}.{a.name}" for a in node.names)
            names.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def with_packages(name: str) -> set[str]:
        """A module and the packages above it: importing ``a.b.c`` runs ``a/b/__init__`` too."""
        parts = name.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules.keys()

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for imported in _imported_names(ast.parse(path.read_text(encoding="utf-8"))):
            found = owner(imported)
            if found is not None:
                targets |= with_packages(found)
        # the packages above a module are being imported already when it runs: not an edge
        graph[name] = {t for t in targets if t != name and not name.startswith(t + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
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

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycle_between_the_projects_modules():
    assert _cycles(_graph()) == []


def test_the_cycle_detector_sees_a_cycle_through_a_function_level_import():
    tree = ast.parse("def f():\n    from worker.b import x\n")
    assert "worker.b.x" in _imported_names(tree)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_under_type_checking_is_not_an_import():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from worker.b import x\n")
    assert "worker.b.x" not in _imported_names(tree)


# The layers, lowest first (docs/architecture.md); a module imports from its own layer or below.
ENTRY, SERVICES, ADAPTERS, ANALYSIS, BASE = 4, 3, 2, 1, 0
_BASE = {"worker", "worker.states", "worker.errors", "worker.output", "worker.fmt", "worker.config", "worker.logs", "worker.systemd"}
_ANALYSIS = ("worker.channels", "worker.forms", "worker.signatures", "worker.scans", "worker.bank", "rules")

# Imports against the layering still to be removed; the list must match exactly.
UPWARD_NOT_YET_REMOVED = {
    ("adapters.scans", "worker.intake"),  # the scan inbox stores through the Intake service
}


def layer_of(module: str) -> int:
    if module in ("worker.cli", "worker.commands", "worker.__main__"):
        return ENTRY
    if module in _BASE or module.startswith("worker.domain"):
        return BASE
    if module.startswith("adapters"):
        return ADAPTERS
    if module in ("worker.pipeline", "worker.stages") or module.startswith(_ANALYSIS):
        return ANALYSIS
    return SERVICES


def test_one_polish_time_zone():
    """The zone is built once (worker.domain.clock.WARSAW); every other module imports it."""
    building = sorted(name for name, path in _modules().items() if 'ZoneInfo("Europe/Warsaw")' in path.read_text(encoding="utf-8"))
    assert building == ["worker.domain.clock"]


def test_the_layers_are_respected():
    upward = {(a, b) for a, targets in _graph().items() for b in targets if layer_of(b) > layer_of(a)}
    assert upward == UPWARD_NOT_YET_REMOVED


def test_the_layers_of_some_modules():
    assert [layer_of(m) for m in ("worker.domain.clock", "rules.periods", "worker.scans.stages", "adapters.db.ebok", "worker.processing", "worker.cli")] == [
        BASE, ANALYSIS, ANALYSIS, ADAPTERS, SERVICES, ENTRY]


def test_the_entry_points_are_imported_by_no_service():
    graph = _graph()
    entry = {"worker.cli", "worker.commands", "worker.__main__"}
    users = {m for m, targets in graph.items() if targets & entry and m not in entry}
    assert users == set()


def test_sql_only_in_adapters_or_in_the_shrinking_list():
    with_sql = {
        name
        for name, path in _modules().items()
        if not name.startswith("adapters.")
        and any(n == "sqlalchemy" or n.startswith("sqlalchemy.") for n in _imported_names(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert with_sql <= SQL_NOT_YET_MOVED, sorted(with_sql - SQL_NOT_YET_MOVED)
    assert SQL_NOT_YET_MOVED <= with_sql, f"moved to adapters/db, strike from the list: {sorted(SQL_NOT_YET_MOVED - with_sql)}"
    assert not any(name.startswith("rules.") for name in with_sql)
