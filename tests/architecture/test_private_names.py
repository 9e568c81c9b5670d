"""No module uses another module's private names.

A name that starts with an underscore is its module's own business: it may change or go without
notice, so code elsewhere that needs it asks for it to be made public (or moved) instead.

Read from the source (AST), every import counts, including those inside functions:
`from app.module import _name` where `app.module` is another of Tollgate's modules, and
`module._name` where `module` names one of Tollgate's modules (`from app import module`,
`import app.module as module`, `import app.module` then `app.module._name`). Python's own
dunder names (`__name__`, `__all__`) are not private; attributes of classes and objects, such as
Django's `Model._meta`, are not names of a module and are not looked at.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("approvals", "exceptions", "sites", "portal")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(dotted: str) -> bool:
    if dotted.split(".")[0] not in PACKAGES:
        return False
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _dotted(node: ast.expr) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"]; None for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _source_module(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def private_uses(source: str, importer: str, *, is_package: bool = False) -> list[str]:
    """Each use in `source` (the text of module `importer`) of another module's private name,
    as "module._name"."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> the project module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and _is_module(alias.name):
                    modules[alias.asname] = alias.name
                elif _is_module(alias.name.split(".")[0]):
                    modules[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = _source_module(node, importer, is_package)
            if not _is_module(module):
                continue
            for alias in node.names:
                if _is_private(alias.name) and module != importer:
                    found.append(f"{module}.{alias.name}")
                if _is_module(f"{module}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            chain = _dotted(node.value)
            if chain is None or chain[0] not in modules:
                continue
            owner = ".".join([modules[chain[0]], *chain[1:]])
            if _is_module(owner) and owner != importer:
                found.append(f"{owner}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    uses = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:  # they name what makemigrations found, as it was
                continue
            module = _module_name(path)
            found = private_uses(path.read_text(), module, is_package=path.name == "__init__.py")
            if found:
                uses[module] = sorted(set(found))
    assert uses == {}


def test_a_private_name_imported_from_another_module_is_found():
    source = "from approvals.selectors import _after, inbox_for\n"
    assert private_uses(source, "approvals.listing") == ["approvals.selectors._after"]


def test_a_private_name_read_off_another_module_is_found():
    source = (
        "from approvals import selectors\n"
        "import approvals.authority as authority\n"
        "import sites.policies\n"
        "def read(query):\n"
        "    selectors._after(query, None)\n"
        "    authority._visible()\n"
        "    return sites.policies._is_active(None)\n"
    )
    assert private_uses(source, "approvals.listing") == [
        "approvals.selectors._after",
        "approvals.authority._visible",
        "sites.policies._is_active",
    ]


def test_public_and_dunder_names_and_class_attributes_are_not_private_uses():
    source = (
        "from approvals import selectors\n"
        "from approvals.models import ApprovalRequest\n"
        "from django.db import _private_to_django\n"
        "selectors.inbox_for, selectors.__name__, ApprovalRequest._meta\n"
    )
    assert private_uses(source, "approvals.listing") == []


def test_a_module_may_use_its_own_private_names():
    source = "import approvals.selectors\napprovals.selectors._after(None, None)\n"
    assert private_uses(source, "approvals.selectors") == []
