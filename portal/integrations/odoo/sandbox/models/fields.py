"""The vocabulary the sandbox's models are written in: fields as `fields_get` describes them, a
model's spec, and the defaults and numbering that several models share."""

from dataclasses import dataclass
from typing import Any

RELATIONAL = frozenset({"many2one", "one2many", "many2many"})
X2MANY = frozenset({"one2many", "many2many"})
NUMERIC = frozenset({"integer", "float", "monetary"})
TEXTUAL = frozenset({"char", "text", "html"})


@dataclass(frozen=True)
class Field:
    type: str
    string: str = ""
    relation: str | None = None
    inverse: str | tuple[str, str] | None = None
    selection: tuple[tuple[str, str], ...] | None = None
    required: bool = False
    default: Any = None
    compute: Any = None

    @property
    def stored(self) -> bool:
        return self.compute is None and self.type != "one2many"

    def describe(self, name: str) -> dict:
        """The field as `fields_get` reports it."""
        info = {
            "type": self.type,
            "string": self.string or name.replace("_", " ").title(),
            "required": self.required,
            "readonly": self.compute is not None,
            "store": self.stored,
            "searchable": True,
            "sortable": self.stored,
        }
        if self.relation:
            info["relation"] = self.relation
        if self.type == "one2many" and isinstance(self.inverse, str):
            info["relation_field"] = self.inverse
        if self.selection is not None:
            info["selection"] = [list(pair) for pair in self.selection]
        return info


@dataclass
class ModelSpec:
    name: str
    description: str
    fields: dict[str, Field]
    order: str = "id"
    display: Any = None  # callable(env, row) -> str; else the `name` field
    parent_store: bool = False  # keeps parent_path for child_of / parent_of
    parent_name: str = "parent_id"
    mail_thread: bool = False
    sequence: Any = None  # callable(env, vals) -> name, when `name` is left to the server


def char(string="", **kw):
    return Field("char", string, **kw)


def text(string="", **kw):
    return Field("text", string, **kw)


def html(string="", **kw):
    return Field("html", string, **kw)


def integer(string="", **kw):
    return Field("integer", string, **kw)


def float_(string="", **kw):
    return Field("float", string, **kw)


def monetary(string="", **kw):
    return Field("monetary", string, **kw)


def boolean(string="", **kw):
    return Field("boolean", string, **kw)


def date(string="", **kw):
    return Field("date", string, **kw)


def datetime_(string="", **kw):
    return Field("datetime", string, **kw)


def selection(pairs, string="", **kw):
    return Field("selection", string, selection=tuple(pairs), **kw)


def many2one(relation, string="", **kw):
    return Field("many2one", string, relation=relation, **kw)


def one2many(relation, inverse, string="", **kw):
    return Field("one2many", string, relation=relation, inverse=inverse, **kw)


def many2many(relation, string="", **kw):
    return Field("many2many", string, relation=relation, **kw)


# Defaults, called with the environment of the create that needs them.
def now(env):
    return env.now


def today(env):
    return env.now[:10]


def current_uid(env):
    return env.uid


def current_company(env):
    return env.company_id


def company_currency(env):
    return env.company_currency_id


def titled(*names):
    return [(n, n.replace("_", " ").title()) for n in names]


def prefixed_sequence(prefix: str, width: int = 5):
    """Names a new record by its prefix and the next number of it, as an ir.sequence does."""

    def name(env, vals) -> str:
        return f"{prefix}{env.next_number(prefix):0{width}d}"

    return name


# Purchase orders and transfers share Odoo's two priorities.
PRIORITY = [("0", "Normal"), ("1", "Urgent")]
