"""Files with one job: no module is over 600 lines, outside migrations, the Odoo sandbox's seed
data and tests."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 600
PACKAGES = ("approvals", "exceptions", "sites", "portal")
NOT_CODE = ("portal/integrations/odoo/sandbox/seed.py",)  # the demo company's records, as data


def _lengths() -> dict[str, int]:
    lengths = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative in NOT_CODE:
                continue
            lengths[relative] = len(path.read_text().splitlines())
    return lengths


def test_no_module_is_over_600_lines():
    over = {module: length for module, length in _lengths().items() if length > LIMIT}
    assert over == {}
