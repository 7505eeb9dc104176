"""Imports between apps run one way: tracking <- partners <- contactcentre <- hub (which wires them)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What each app may import from the others. A model may still point at another app's by string,
# and a type checker may look up (imports under `if TYPE_CHECKING:` never run).
ALLOWED = {
    "tracking": set(),
    "partners": {"tracking"},
    "contactcentre": {"tracking", "partners"},
}
# hub wires the apps together (URLs, the demo, commands); its other modules (errors, schema, logs,
# metrics, ...) are shared infrastructure any app may use.
WIRING = ("hub.urls", "hub.demo", "hub.management", "hub.wsgi", "hub.asgi", "hub.celery")
APPS = {"tracking", "partners", "contactcentre", "hub"}


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_apps(source: str) -> set[str]:
    """The apps a module imports at run time (anywhere but an `if TYPE_CHECKING:` block)."""
    modules: set[str] = set()
    pending: list[ast.AST] = [ast.parse(source)]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
        pending.extend(child for child in ast.iter_child_nodes(node) if not _type_checking_only(child))
    shared = {m for m in modules if m.startswith("hub.") and not m.startswith(WIRING)}
    return {m.split(".")[0] for m in modules - shared} & APPS


def wrong_way_imports(app: str) -> list[str]:
    found = []
    for path in sorted((ROOT / app).rglob("*.py")):
        for other in sorted(imported_apps(path.read_text()) - {app} - ALLOWED[app]):
            found.append(f"{path.relative_to(ROOT)} imports {other}")
    return found


@pytest.mark.parametrize("app", sorted(ALLOWED))
def test_an_app_imports_only_the_apps_below_it(app):
    assert wrong_way_imports(app) == []


def test_the_scan_sees_an_import_that_reaches_up_even_inside_a_function():
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import contactcentre\n"
    source += "def f():\n    from partners.services import hand_off\n"
    source += "from hub.errors import Conflict\n"

    assert imported_apps(source) == {"partners"}
    assert imported_apps("from hub.demo import seed_day\n") == {"hub"}
    assert imported_apps("from hub import metrics\nfrom hub import urls\n") == {"hub"}


def test_partner_services_are_split_by_concern_into_modules_a_newcomer_can_find():
    """Issue 9: the 544-line partners/services.py became a package, one module per concern."""
    package = Path(__file__).resolve().parent.parent / "partners" / "services"
    modules = {path.stem: len(path.read_text().splitlines()) for path in package.glob("*.py")}

    assert {"inbound", "matching", "custody", "polling", "idempotency", "uploads"} <= set(modules)
    # CONVENTIONS.md: split a module once it passes about 600 lines.
    assert max(modules.values()) <= 650, modules
