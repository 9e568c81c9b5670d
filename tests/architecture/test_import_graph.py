"""The apps' import graph has no cycle: a lower app never imports a higher one.

Read from the source (AST), every `import` counts, including those inside functions, which is
where cycles hide. A node is a Django app (its package, modules and subpackages). Apps tell
higher apps what happened through events (portal.core.events) instead of importing them.

A lower app that needs something only a higher one has asks a registry that the higher app
fills in its AppConfig.ready(): sites and API tokens record in the ledger through
portal.core.ledger, approvals and cases link to and search Odoo through portal.core.erp, the
ledger's trails follow the ties approvals and cases register (portal.audit.trails), and the
notification outbox names its rows with the labels they register (portal.notify.labels).

Left out, because they wire every app together rather than belong to one: the project's own
modules (settings, URLs, the Celery app: `portal/*.py`), the API's table of routes, and the
demo data, which stages a company through every app's public services as a person would.
"""

import ast
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = (
    "approvals",
    "exceptions",
    "sites",
    "portal.core",
    "portal.audit",
    "portal.api",
    "portal.notify",
    "portal.webhooks",
    "portal.inbox",
    "portal.integrations.odoo",
    "portal.integrations.mail",
)
WIRING = ("portal.api.routes",)
DEMO_MODULES = ("demo", "demo_history", "seed_demo")


def app_of(module: str) -> str | None:
    owners = [app for app in APPS if module == app or module.startswith(f"{app}.")]
    return max(owners, key=len) if owners else None


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def app_graph() -> dict[tuple[str, str], set[str]]:
    """(importing app, imported app) -> the importing modules."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for package in ("approvals", "exceptions", "sites", "portal"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            module = _module_name(path)
            source = app_of(module)
            if source is None or module in WIRING or module.split(".")[-1] in DEMO_MODULES:
                continue
            for name in _imported(ast.parse(path.read_text())):
                target = app_of(name)
                if target is not None and target != source:
                    edges[(source, target)].add(module)
    return edges


def find_cycle(edges) -> list[str]:
    """One cycle of the graph as [a, b, ..., a], or [] when there is none."""
    graph = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_the_apps_import_graph_has_no_cycle():
    edges = app_graph()
    cycle = find_cycle(edges)
    assert cycle == [], " -> ".join(
        f"{a} ({', '.join(sorted(edges[(a, b)]))})" for a, b in pairwise(cycle)
    )


def test_approvals_and_cases_do_not_import_the_apps_that_react_to_them():
    # Odoo is linked to and searched through portal.core.erp, which the integration fills.
    reacting = ("exceptions", "portal.integrations.odoo", "portal.webhooks")
    assert {("approvals", app) for app in reacting} & set(app_graph()) == set()
    assert {("exceptions", app) for app in reacting} & set(app_graph()) == set()


def test_an_import_that_closes_a_cycle_is_found():
    edges = {
        ("exceptions", "approvals"): {"exceptions.services"},
        ("approvals", "sites"): {"approvals.models"},
        # A function-level import in approvals, the way the old write-off hand-back was made.
        ("approvals", "exceptions"): {"approvals.services"},
    }
    assert find_cycle(edges) == ["approvals", "exceptions", "approvals"]
    del edges[("approvals", "exceptions")]
    assert find_cycle(edges) == []


def test_imports_inside_functions_count():
    source = "def decide():\n    from exceptions.services import case_raise\n"
    assert "exceptions.services" in set(_imported(ast.parse(source)))
