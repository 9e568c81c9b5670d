"""The environment of one RPC call and the generic ORM every model answers.

`Env` plays the part of Odoo's `self.env` plus the ORM methods the external API reaches:
search, read, create, write, unlink. It works on one store transaction, so a call that fails
changes nothing. Values cross three forms: storage (None for NULL, ids for relations), the
wire (False for NULL, `[id, name]` pairs for many2one under the default load) and the values a
client writes (x2many commands, False for empty).

`write_date` and `create_date` take the call's start time in naive UTC, as Odoo's do. Editing
a line also stamps its order, bill or transfer, because in Odoo the line edit changes a stored
total or state on the parent.
"""

import bisect

from portal.integrations.odoo.sandbox.domain import compile_domain, names_field, sort_rows
from portal.integrations.odoo.sandbox.errors import (
    UserError,
    ValidationError,
    missing_record,
)
from portal.integrations.odoo.sandbox.models import NUMERIC, REGISTRY, ModelSpec

LOG_FIELDS = frozenset({"id", "display_name", "create_date", "write_date", "create_uid"})
LOG_FIELDS |= {"write_uid"}
PARENT_OF_LINE = {
    "purchase.order.line": ("purchase.order", "order_id"),
    "sale.order.line": ("sale.order", "order_id"),
    "account.move.line": ("account.move", "move_id"),
    "stock.move": ("stock.picking", "picking_id"),
}
NON_NEGATIVE = {
    "purchase.order.line": ("product_qty",),
    "sale.order.line": ("product_uom_qty",),
    "stock.move": ("product_uom_qty", "quantity"),
    "stock.scrap": ("scrap_qty",),
}
CANNOT_COMPLETE = "The operation cannot be completed: "


class Env:
    """One call's view of the database, as a given user with a given context."""

    def __init__(self, tx, *, uid: int, context: dict, now: str, version: str, faults=None):
        self.tx = tx
        self.uid = uid
        self.context = context
        self.now = now
        self.version = version
        self.faults = faults
        self._index: dict[tuple, dict] = {}

    # -- lookups -------------------------------------------------------------------------

    @property
    def major(self) -> int:
        return int(version_numbers(self.version)[0])

    def spec(self, model: str) -> ModelSpec:
        spec = REGISTRY.get(model) if isinstance(model, str) else None
        if spec is None:
            raise UserError(f"Object {model} doesn't exist")
        return spec

    def rows(self, model: str) -> dict[int, dict]:
        return self.tx.table(model)

    def row(self, model: str, record_id) -> dict | None:
        if not isinstance(record_id, int) or isinstance(record_id, bool):
            return None
        return self.tx.table(model).get(record_id)

    @property
    def active_test(self) -> bool:
        return self.context.get("active_test", True) is not False

    @property
    def company_id(self) -> int:
        return (self.row("res.users", self.uid) or {}).get("company_id") or 1

    @property
    def company_currency_id(self) -> int | None:
        return (self.row("res.company", self.company_id) or {}).get("currency_id")

    def next_number(self, prefix: str) -> int:
        return self.tx.next_counter(f"seq:{prefix}")

    def get(self, model: str, row: dict, name: str):
        """A field's value in storage form, computing it when Odoo would."""
        if name == "id":
            return row["id"]
        if name == "display_name":
            return self._display(model, row)
        field = self.spec(model).fields[name]
        if field.compute:
            return field.compute(self, row)
        if field.type == "one2many":
            return self.children(field.relation, field.inverse, row["id"])
        if field.type == "many2many":
            return list(row.get(name) or [])
        return row.get(name)

    def display_name(self, model: str, record_id) -> str:
        row = self.row(model, record_id)
        return self._display(model, row) if row else ""

    def _display(self, model: str, row: dict) -> str:
        spec = self.spec(model)
        if spec.display:
            return spec.display(self, row)
        return row.get("name") or f"{model},{row['id']}"

    def children(self, model: str, field, value) -> list[int]:
        """Ids of `model` rows whose `field` (or tuple of fields) equals `value`."""
        index = self._index.get((model, field))
        if index is None:
            index = {}
            for record_id, row in sorted(self.rows(model).items()):
                index.setdefault(_index_key(row, field), []).append(record_id)
            self._index[(model, field)] = index
        return list(index.get(value, ()))

    def hierarchy(self, model: str, ids: set[int], descendants: bool) -> set[int]:
        """`ids` with their descendants (child_of) or ancestors (parent_of)."""
        spec = self.spec(model)
        if not spec.parent_store:
            return self._walk(model, spec.parent_name, ids, descendants)
        rows = self.rows(model)
        if descendants:
            return {rid for rid, row in rows.items() if ids.intersection(_path_ids(row))}
        found = set()
        for record_id in ids:
            found.update(_path_ids(rows.get(record_id) or {}))
        return found

    def _walk(self, model: str, parent: str, ids: set[int], descendants: bool) -> set[int]:
        """child_of / parent_of on a tree without parent_path (res.partner), step by step."""
        if parent not in self.spec(model).fields:
            return set(ids)
        found, todo = set(), [i for i in ids if self.row(model, i)]
        while todo:
            record_id = todo.pop()
            if record_id in found:
                continue
            found.add(record_id)
            if descendants:
                todo.extend(self.children(model, parent, record_id))
            elif self.row(model, record_id).get(parent):
                todo.append(self.row(model, record_id)[parent])
        return found

    # -- search and read -----------------------------------------------------------------

    def search_ids(self, model, domain, offset=0, limit=None, order=None, active_test=None):
        spec = self.spec(model)
        predicate = compile_domain(self, model, domain)
        if active_test is None:
            active_test = self.active_test
        only_active = active_test and "active" in spec.fields
        only_active = only_active and not names_field(domain, "active")
        rows = [
            row
            for row in self.rows(model).values()
            if (not only_active or row.get("active", True) is not False) and predicate(row)
        ]
        rows = sort_rows(self, model, rows, order)
        offset = offset or 0
        rows = rows[offset : offset + limit] if limit else rows[offset:]
        return [row["id"] for row in rows]

    def read(self, model: str, ids: list[int], fields=None, load="_classic_read") -> list:
        spec = self.spec(model)
        names = list(fields) if fields else list(spec.fields)
        for name in names:
            if name not in spec.fields:
                raise ValueError(f"Invalid field {name!r} on model {model!r}")
        records, seen = [], set()
        for record_id in ids:
            row = self.row(model, record_id)
            if row is None or record_id in seen:
                continue
            seen.add(record_id)
            record = {"id": record_id}
            for name in names:
                if name != "id":
                    record[name] = self.to_wire(model, row, name, load)
            records.append(record)
        return records

    def to_wire(self, model: str, row: dict, name: str, load="_classic_read"):
        field = self.spec(model).fields.get(name)
        value = self.get(model, row, name)
        if field is None or name == "display_name":
            return value if value is not None else False
        if field.type == "many2one":
            if value is None or self.row(field.relation, value) is None:
                return False
            return (
                [value, self.display_name(field.relation, value)]
                if load == "_classic_read"
                else value
            )
        if field.type in ("one2many", "many2many"):
            return list(value)
        if value is None:
            return {"integer": 0, "float": 0.0, "monetary": 0.0}.get(field.type, False)
        if field.type == "boolean":
            return bool(value)
        return value

    def existing(self, model: str, ids: list[int]) -> list[int]:
        """The ids, or MissingError naming those that no longer exist."""
        self.spec(model)
        missing = [i for i in ids if self.row(model, i) is None]
        if missing:
            raise missing_record(model, missing, self.uid)
        return list(dict.fromkeys(ids))

    # -- writes --------------------------------------------------------------------------

    def create(self, model: str, vals: dict) -> int:
        spec = self.spec(model)
        self._check_names(model, vals)
        stored, o2m = self._split(spec, vals, current={})
        for name, field in spec.fields.items():
            if field.stored and name not in stored and field.default is not None:
                default = field.default
                stored[name] = default(self) if callable(default) else default
        if spec.sequence and stored.get("name") in (None, False, "", "New", "/"):
            stored["name"] = spec.sequence(self, stored)
        self._check(model, stored)
        stored.update(
            create_date=self.now, write_date=self.now, create_uid=self.uid, write_uid=self.uid
        )
        record_id = self._insert(model, stored)
        if spec.parent_store:
            self._set_parent_path(model, record_id)
        for name, commands in o2m.items():
            self._apply_o2m(spec.fields[name], record_id, commands)
        self._touch_parent(model, self.row(model, record_id))
        return record_id

    def write(self, model: str, ids: list[int], vals: dict) -> bool:
        spec = self.spec(model)
        ids = self.existing(model, ids)
        self._check_names(model, vals)
        for record_id in ids:
            row = self.row(model, record_id)
            changes, o2m = self._split(spec, vals, current=row)
            self._check(model, {**row, **changes})
            changes.update(write_date=self.now, write_uid=self.uid)
            self._update(model, record_id, changes)
            if spec.parent_store and spec.parent_name in changes:
                self._set_parent_path(model, record_id)
            for name, commands in o2m.items():
                self._apply_o2m(spec.fields[name], record_id, commands)
            self._touch_parent(model, self.row(model, record_id))
        return True

    def set_state(self, model: str, ids: list[int], **values) -> None:
        """A state change made by an action: written and stamped like a write."""
        if ids:
            self.write(model, ids, values)

    def unlink(self, model: str, ids: list[int]) -> bool:
        spec = self.spec(model)
        ids = self.existing(model, ids)
        for record_id in ids:
            row = self.row(model, record_id)
            if row is None:
                continue
            self._cascade(spec, record_id)
            self._delete(model, record_id)
            self._touch_parent(model, row)
        return True

    def _cascade(self, spec: ModelSpec, record_id: int) -> None:
        for field in spec.fields.values():
            if field.type != "one2many" or field.compute or not isinstance(field.inverse, str):
                continue
            if self.spec(field.relation).fields[field.inverse].required:
                children = list(self.children(field.relation, field.inverse, record_id))
                if children:
                    self.unlink(field.relation, children)

    def _check_names(self, model: str, vals) -> None:
        if not isinstance(vals, dict):
            raise TypeError(f"Values for {model} must be a dictionary, not {vals!r}")
        fields = self.spec(model).fields
        for name in vals:
            if name not in fields:
                raise ValueError(f"Invalid field {name!r} on model {model!r}")

    def _split(self, spec: ModelSpec, vals: dict, current: dict) -> tuple[dict, dict]:
        stored, o2m = {}, {}
        for name, value in vals.items():
            field = spec.fields[name]
            if name in LOG_FIELDS or (field.compute and field.type != "one2many"):
                continue
            if field.type == "one2many":
                if not field.compute:
                    o2m[name] = value
            elif field.type == "many2many":
                stored[name] = self._m2m_ids(field, current.get(name) or [], value)
            else:
                stored[name] = to_storage(spec, name, value)
        return stored, o2m

    def _m2m_ids(self, field, current: list[int], commands) -> list[int]:
        if not commands:
            return [] if commands is False else list(current)
        if all(isinstance(c, int) for c in commands):
            return list(commands)
        ids = list(current)
        for command in commands:
            code = command[0]
            if code == 0:
                ids.append(self.create(field.relation, command[2]))
            elif code == 1:
                self.write(field.relation, [command[1]], command[2])
            elif code in (2, 3):
                if code == 2:
                    self.unlink(field.relation, [command[1]])
                ids = [i for i in ids if i != command[1]]
            elif code == 4 and command[1] not in ids:
                ids.append(command[1])
            elif code == 5:
                ids = []
            elif code == 6:
                ids = list(command[2])
        return ids

    def _apply_o2m(self, field, parent_id: int, commands) -> None:
        comodel, inverse = field.relation, field.inverse
        if commands and all(isinstance(c, int) for c in commands):
            commands = [(6, 0, commands)]
        for command in commands or []:
            code = command[0]
            if code == 0:
                self.create(comodel, {**command[2], inverse: parent_id})
            elif code == 1:
                self.write(comodel, [command[1]], command[2])
            elif code in (2, 3):
                self._detach(comodel, inverse, [command[1]])
            elif code == 4:
                self.write(comodel, [command[1]], {inverse: parent_id})
            elif code in (5, 6):
                keep = set(command[2]) if code == 6 else set()
                current = self.children(comodel, inverse, parent_id)
                self._detach(comodel, inverse, [i for i in current if i not in keep])
                for child_id in sorted(keep):
                    self.write(comodel, [child_id], {inverse: parent_id})

    def _detach(self, comodel: str, inverse: str, ids: list[int]) -> None:
        if not ids:
            return
        if self.spec(comodel).fields[inverse].required:
            self.unlink(comodel, ids)
        else:
            self.write(comodel, ids, {inverse: False})

    def _check(self, model: str, row: dict) -> None:
        spec = self.spec(model)
        for name, field in spec.fields.items():
            if field.required and field.stored and row.get(name) in (None, ""):
                raise ValidationError(
                    f"{CANNOT_COMPLETE}\n- Create/update: a mandatory field is not set.\n"
                    "- Delete: another model requires the record being deleted. If possible, "
                    f"archive it instead.\n\nModel: {spec.description} ({model})\n"
                    f"Field: {field.string} ({name})"
                )
        for name in NON_NEGATIVE.get(model, ()):
            if (row.get(name) or 0) < 0:
                raise ValidationError(
                    f"{CANNOT_COMPLETE}{spec.fields[name].string} on {spec.description} "
                    f"cannot be negative (got {row[name]})."
                )
        if model == "stock.warehouse":
            self._check_warehouse(row)

    def _check_warehouse(self, row: dict) -> None:
        code = row.get("code") or ""
        if len(code) > 5:
            raise ValidationError(f"{CANNOT_COMPLETE}the short name {code!r} is over 5 characters.")
        for other in self.rows("stock.warehouse").values():
            same_company = other.get("company_id") == row.get("company_id")
            if other["id"] != row.get("id") and same_company and other.get("code") == code:
                raise ValidationError(
                    f"{CANNOT_COMPLETE}The short name of the warehouse must be unique per company!"
                )

    def _set_parent_path(self, model: str, record_id: int) -> None:
        spec = self.spec(model)
        row = self.row(model, record_id)
        parent = self.row(model, row.get(spec.parent_name))
        path = f"{(parent or {}).get('parent_path') or ''}{record_id}/"
        self._update(model, record_id, {"parent_path": path})
        for child_id in list(self.children(model, spec.parent_name, record_id)):
            self._set_parent_path(model, child_id)

    def _touch_parent(self, model: str, row: dict | None) -> None:
        if model not in PARENT_OF_LINE or row is None:
            return
        parent_model, link = PARENT_OF_LINE[model]
        parent = self.row(parent_model, row.get(link))
        if parent and parent.get("write_date") != self.now:
            self._update(parent_model, parent["id"], {"write_date": self.now})

    # Every write goes through these three, which keep the `children` indexes current.

    def _insert(self, model: str, row: dict) -> int:
        record_id = self.tx.insert(model, row)
        self._reindex(model, None, self.row(model, record_id))
        return record_id

    def _update(self, model: str, record_id: int, values: dict) -> None:
        old = self.row(model, record_id)
        self._reindex(model, old, self.tx.update(model, record_id, values))

    def _delete(self, model: str, record_id: int) -> None:
        old = self.row(model, record_id)
        self.tx.delete(model, record_id)
        self._reindex(model, old, None)

    def _reindex(self, model: str, old: dict | None, new: dict | None) -> None:
        for (indexed_model, field), index in self._index.items():
            if indexed_model != model:
                continue
            old_key, new_key = _index_key(old, field), _index_key(new, field)
            if old is not None and new is not None and old_key == new_key:
                continue
            if old is not None:
                index[old_key].remove(old["id"])
            if new is not None:
                bisect.insort(index.setdefault(new_key, []), new["id"])


def _index_key(row: dict | None, field):
    if row is None:
        return None
    if isinstance(field, tuple):
        return tuple(row.get(name) for name in field)
    return row.get(field)


def _path_ids(row: dict) -> set[int]:
    return {int(part) for part in (row.get("parent_path") or "").split("/") if part}


def version_numbers(version: str) -> list[int]:
    """`"17.0"` -> [17, 0]; `"saas~17.2"` -> [17, 2], as OdooRPC reads it."""
    head = version.split("-")[0]
    digits = "".join(ch for ch in head if ch.isdigit() or ch == ".")
    return [int(part) for part in digits.split(".") if part] or [0]


def to_storage(spec: ModelSpec, name: str, value):
    """A client's value for a non-x2many field, as stored (None for NULL)."""
    field = spec.fields[name]
    if field.type in NUMERIC:
        if value is False or value is None:
            return 0
        return int(value) if field.type == "integer" else float(value)
    if field.type == "boolean":
        return bool(value)
    if value is False or value is None:
        return None
    if field.type == "many2one":
        if isinstance(value, list | tuple) and value:
            value = value[0]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"Wrong value for {spec.name}.{name}: {value!r}")
        return value
    if field.type == "selection" and value not in {key for key, _ in field.selection}:
        raise ValueError(f"Wrong value for {spec.name}.{name}: {value!r}")
    return str(value)
