"""The layers of src/wenu_stream, checked on the import graph (every import: top level, in functions, TYPE_CHECKING).

1. No import cycles.
2. Pure modules import no SDK, no I/O library and nothing but other pure modules and the base; they read no clock.
3. Each layer imports only its own layer and the layers below it (``LAYERS``, bottom up).
4. Nothing but the entry points (``cli``, ``devtools``) imports the composition root ``bootstrap`` or ``devtools``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "src" / "wenu_stream"

BASE = {
    "config",
    "errors",
    "log",
    "metrics",
    "health",
    "model",
    "tasks",
    "backoff",
    "timewindows",
    "timeparse",
    "ports",
    "testing",
}
PURE = {
    "model", "timewindows", "timeparse", "records.*", "ingest.batch", "ingest.dedup", "ingest.rebuild",
    "catalog.document", "catalog.directory", "catalog.enrichment", "alarms.rules", "alarms.engine", "alarms.shard",
    "alarms.durable", "alarms.preview", "alarms.shelving", "alarms.message", "catalog.changes", "catalog.impact", "stats.aggregates", "stats.engine", "stats.items", "warehouse.rows", "warehouse.manifests",
    "warehouse.sql",
}  # fmt: skip
# Bottom up: a module may import modules of its own layer or of a layer listed before it.
LAYERS: list[set[str]] = [
    {"__init__", "errors", "model", "timewindows", "timeparse", "config", "log", "backoff", "tasks", "metrics", "health"},
    {"records.*", "catalog.document", "catalog.directory", "catalog.enrichment", "alarms.rules", "alarms.engine",
     "alarms.shard", "alarms.durable", "alarms.preview", "alarms.shelving", "alarms.message", "catalog.changes",
     "catalog.impact",
     "stats.aggregates", "stats.engine", "stats.items", "ingest.batch",
     "ingest.dedup", "ingest.rebuild", "warehouse.rows", "warehouse.manifests", "warehouse.sql", "catalog",
     "alarms", "stats", "ingest", "warehouse", "records"},
    {"ports", "testing"},
    {"ingest.processor", "ingest.failures", "ingest.enriching", "alarms.sink", "stats.sink"},
    {"aws.*", "aws", "catalog.store", "catalog.workspace", "warehouse.staging", "warehouse.loader", "warehouse.metrics"},
    {"drivers.*", "drivers"},
    {"ops.*", "ops"},
    {"web.*", "web"},  # the API and backoffice: reads through aws/ and ops/, built by bootstrap
    {"bootstrap"},
    {"cli.*", "cli", "devtools.*", "devtools", "__main__"},
]  # fmt: skip
SDKS = {"boto3", "botocore", "aiobotocore", "aiohttp", "amazon_kclpy", "prometheus_client", "structlog", "psycopg",
        "sqlite3", "socket", "subprocess", "urllib", "http", "requests", "os"}  # fmt: skip
CLOCKS = {("time", "time"), ("time", "monotonic"), ("time", "time_ns"), ("datetime", "now"), ("datetime", "utcnow"),
          ("date", "today"), ("dt", "now")}  # fmt: skip


def name_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


MODULES = {name_of(p): p for p in sorted(ROOT.rglob("*.py"))}


def matches(module: str, patterns: set[str]) -> bool:
    return any(module == p or (p.endswith(".*") and module.startswith(p[:-1])) for p in patterns)


def layer_of(module: str) -> int:
    found = [i for i, layer in enumerate(LAYERS) if matches(module, layer)]
    assert found, f"{module} belongs to no layer: add it to LAYERS in tests/unit/test_layers.py"
    return found[0]


@cache
def imports(module: str) -> tuple[set[str], set[str]]:
    """(internal modules, external top-level packages) that ``module`` imports anywhere."""
    internal, external = set(), set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for full in names:
            if not full.startswith("wenu_stream"):
                external.add(full.split(".")[0])
                continue
            target = full.removeprefix("wenu_stream").removeprefix(".")
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                internal.add(target)
    return internal, external


def test_there_are_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in imports(v)[0]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize("module", [m for m in MODULES if matches(m, PURE)])
def test_pure_modules_do_no_io_and_read_no_clock(module: str) -> None:
    internal, external = imports(module)
    assert external & SDKS == set()
    assert {
        m
        for m in internal
        if not (
            matches(m, PURE)
            or m in BASE - {"ports", "testing", "log", "metrics", "health", "tasks", "backoff"}
        )
    } == set()
    calls = {(n.value.id, n.attr) for n in ast.walk(ast.parse(MODULES[module].read_text()))
             if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}  # fmt: skip
    assert calls & CLOCKS == set()


@pytest.mark.parametrize("module", list(MODULES))
def test_imports_point_down_the_layers(module: str) -> None:
    mine = layer_of(module)
    upward = {m: layer_of(m) for m in imports(module)[0] if layer_of(m) > mine}
    assert upward == {}, f"{module} (layer {mine}) imports modules of higher layers"


def test_only_entry_points_import_the_root_and_devtools() -> None:
    offenders = {m for m in MODULES if not matches(m, {"cli.*", "cli", "devtools.*", "devtools", "bootstrap", "__main__"})
                 and any(i == "bootstrap" or i.startswith("devtools") for i in imports(m)[0])}  # fmt: skip
    assert offenders == set()
