"""Who may do what is decided in one place.

Each app's `policies.py` and the decision authority (`approvals/authority.py`) answer "may this
person do X?" and "what may they see?". Anywhere else, reading `is_superuser`, calling
`has_perm`, or querying membership rows is a second statement of a rule, which drifts from the
first. Code elsewhere asks the policies instead.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("approvals", "exceptions", "sites", "portal")
DECIDERS = ("approvals/authority.py",)

FLAGS = ("is_superuser",)
PERMISSION_CALLS = ("has_perm", "has_perms")
MEMBERSHIP_MODELS = ("Membership", "SiteUserObjectPermission")
MEMBERSHIP_PATHS = ("membership__", "memberships__", "memberships")
QUERY_METHODS = ("filter", "exclude", "get", "get_or_create", "update_or_create")

# `module::function` (or `module` for module level) -> why the check there is not an access
# decision, or is one that cannot live in a policy.
EXCEPTIONS = {
    "sites/services.py::membership_update": "locks the membership it changes: writes rows, "
    "decides nothing (it asked sites.policies first)",
    "sites/services.py::membership_end": "locks the membership it ends: writes rows, "
    "decides nothing",
    "sites/services.py::_write_grants": "writes the grant rows a membership implies; the "
    "rows are what sites.policies reads",
    "sites/services.py::_sync_site_grants": "rewrites the grant rows of a region's memberships "
    "when a site moves; decides nothing",
    "sites/selectors.py::memberships_in_force": "lists a person's own roles for their page",
    "sites/selectors.py::memberships_administered_by": "the rows an administrator may see, "
    "scoped by sites.policies.sites_administered_by",
    "sites/management/commands/seed_demo.py::Command._personas": "the demo seed does not grant "
    "a persona's role twice",
    "approvals/lint.py::_role_holders": "warns a policy editor that a tier has no one to "
    "decide it; a report, not a decision",
    "approvals/selectors.py::role_holders": "names who holds a role, for previews and pickers; "
    "whether they may decide is the authority's",
    "approvals/selectors.py::delegate_candidates": "the people offered in the delegation form; "
    "the delegation service asks the policy again",
    "exceptions/selectors.py::workers_of": "the people offered in the assign form; the "
    "assignment service asks exceptions.policies again",
    "sites/admin_accounts.py::UserAdmin.save_model": "copies the stored privilege flags back so "
    "that no form can grant them; decides nothing",
}


def _is_query(func) -> bool:
    """A filter, by a queryset method or a Q object (not a create, which sets a flag)."""
    if isinstance(func, ast.Attribute):
        return func.attr in QUERY_METHODS
    return isinstance(func, ast.Name) and func.id == "Q"


class _Finder(ast.NodeVisitor):
    def __init__(self):
        self.scope: list[str] = []
        self.found: list[tuple[str, int, str]] = []

    def _note(self, node, what: str) -> None:
        where = "::" + ".".join(self.scope) if self.scope else ""
        self.found.append((where, node.lineno, what))

    def _visit_scope(self, node) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_scope

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in FLAGS and isinstance(node.ctx, ast.Load):
            self._note(node, f".{node.attr}")
        if node.attr == "memberships":
            self._note(node, ".memberships")
        if (
            node.attr == "objects"
            and isinstance(node.value, ast.Name)
            and node.value.id in MEMBERSHIP_MODELS
        ):
            self._note(node, f"{node.value.id}.objects")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and node.func.attr in PERMISSION_CALLS:
            self._note(node, f".{node.func.attr}()")
        for keyword in node.keywords if _is_query(node.func) else ():
            if keyword.arg and keyword.arg.startswith(MEMBERSHIP_PATHS):
                self._note(node, f"{keyword.arg}=")
            if keyword.arg in FLAGS:
                self._note(node, f"{keyword.arg}=")
        self.generic_visit(node)


def access_checks(source: str) -> list[tuple[str, int, str]]:
    """(`::function` or "", line, what) for every access check in a module's source."""
    finder = _Finder()
    finder.visit(ast.parse(source))
    return finder.found


def _checked_modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or path.name == "policies.py":
                continue
            if relative in DECIDERS:
                continue
            yield relative, path


def test_access_is_decided_only_in_the_policies_and_the_authority():
    stray, used = [], set()
    for relative, path in _checked_modules():
        for where, line, what in access_checks(path.read_text()):
            key = f"{relative}{where}"
            if key in EXCEPTIONS:
                used.add(key)
                continue
            stray.append(f"{relative}:{line} {what} (in {where[2:] or 'the module'})")
    assert stray == []
    assert used == set(EXCEPTIONS), "an allowed exception no longer exists; remove it"


def test_every_exception_says_why():
    for key, reason in EXCEPTIONS.items():
        assert len(reason.split()) >= 6, key


STRAY = """
from sites.models import Membership


def export_view(request):
    if not request.user.is_superuser:
        raise PermissionDenied
    if not request.user.has_perm("sites.role_finance", site):
        raise PermissionDenied
    held = Membership.objects.filter(user=request.user, valid_to__isnull=True).exists()
    mine = request.user.memberships.all()
    sites = Site.objects.filter(memberships__user=request.user)
    return held, mine, sites


class Admin:
    def rows(self, request):
        return User.objects.filter(is_superuser=False)
"""


def test_a_stray_check_is_found():
    assert [(where, what) for where, _line, what in access_checks(STRAY)] == [
        ("::export_view", ".is_superuser"),
        ("::export_view", ".has_perm()"),
        ("::export_view", "Membership.objects"),
        ("::export_view", ".memberships"),
        ("::export_view", "memberships__user="),
        ("::Admin.rows", "is_superuser="),
    ]


def test_setting_a_flag_is_not_a_check():
    made = "User.objects.create_user('ann', is_superuser=True)\nuser.is_superuser = False\n"
    assert access_checks(made) == []
