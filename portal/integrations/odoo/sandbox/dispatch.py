"""From `(model, method, args, kwargs)` to a result, the way `odoo/service/model.py` does it.

Both wire protocols end here: JSON-RPC's `execute`/`execute_kw` and JSON-2's named
arguments. The checks run in Odoo's order: unknown model, access, private method, missing
method; then the arguments bind to the method's Python signature, so a wrong argument fails
with the TypeError Odoo would give. `@api.model` methods take the positional arguments as
they come; every other method takes the record ids first.
"""

import inspect

from portal.integrations.odoo.sandbox import actions
from portal.integrations.odoo.sandbox.errors import AccessError, UserError
from portal.integrations.odoo.sandbox.models import REGISTRY


def _ids(value) -> list[int]:
    if value is None or value is False:
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list | tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return list(value)
    raise TypeError(f"Record ids must be a list of integers, not {value!r}")


# -- @api.model methods: (env, model, *args) ---------------------------------------------


def search(env, model, domain, offset=0, limit=None, order=None):
    return env.search_ids(model, domain, offset=offset, limit=limit, order=order)


def search_read(env, model, domain=None, fields=None, offset=0, limit=None, order=None, **kw):
    ids = env.search_ids(model, domain or [], offset=offset, limit=limit, order=order)
    return env.read(model, ids, fields, **kw)


def search_count(env, model, domain=None, limit=None):
    return len(env.search_ids(model, domain or [], limit=limit))


def create(env, model, vals_list):
    if isinstance(vals_list, dict):
        return env.create(model, vals_list)
    return [env.create(model, vals) for vals in vals_list]


def fields_get(env, model, allfields=None, attributes=None):
    described = {}
    for name, field in env.spec(model).fields.items():
        if allfields and name not in allfields:
            continue
        info = field.describe(name)
        if attributes:
            info = {key: value for key, value in info.items() if key in attributes}
        described[name] = info
    return described


def default_get(env, model, fields_list):
    spec = env.spec(model)
    values = {}
    for name in fields_list:
        field = spec.fields.get(name)
        if field is None or field.default is None or not field.stored:
            continue
        value = field.default(env) if callable(field.default) else field.default
        values[name] = value
    return values


def name_search(env, model, name="", args=None, operator="ilike", limit=100, domain=None):
    extra = list(domain or args or [])
    search_domain = [("display_name", operator, name), *extra] if name else extra
    ids = env.search_ids(model, search_domain, limit=limit)
    return [[i, env.display_name(model, i)] for i in ids]


def context_get(env, model):
    user = env.row("res.users", env.uid) or {}
    return {"lang": user.get("lang") or "en_US", "tz": user.get("tz") or False}


def check_object_reference(env, model, module, xml_id, raise_on_access_error=False):
    for row in env.rows("ir.model.data").values():
        if row["module"] == module and row["name"] == xml_id:
            return [row["model"], row["res_id"]]
    raise ValueError(f"External ID not found in the system: {module}.{xml_id}")


def xmlid_to_res_model_res_id(env, model, xmlid, raise_if_not_found=False):
    module, _, name = xmlid.partition(".")
    return check_object_reference(env, model, module, name)


# -- record methods: (env, model, ids, *args) --------------------------------------------


def read(env, model, ids, fields=None, load="_classic_read"):
    return env.read(model, ids, fields, load=load)


def write(env, model, ids, vals):
    return env.write(model, ids, vals)


def unlink(env, model, ids):
    _unlink_guard(env, model, ids)
    return env.unlink(model, ids)


def name_get(env, model, ids):
    return [[i, env.display_name(model, i)] for i in ids if env.row(model, i)]


def exists(env, model, ids):
    return [i for i in ids if env.row(model, i)]


UNLINK_GUARDS = {
    "purchase.order": (
        lambda row: row["state"] in ("draft", "cancel"),
        "In order to delete a purchase order, you must cancel it first.",
    ),
    "sale.order": (
        lambda row: row["state"] in ("draft", "cancel"),
        "You can not delete a sent quotation or a confirmed sales order. You must first cancel it.",
    ),
    "account.move": (
        lambda row: row["state"] == "draft" and row.get("name") in (None, "/"),
        "You cannot delete an entry which has been posted once.",
    ),
    "stock.picking": (
        lambda row: row["state"] != "done",
        "You cannot delete a transfer that is done.",
    ),
}


def _unlink_guard(env, model, ids):
    guard = UNLINK_GUARDS.get(model)
    if guard is None:
        return
    allowed, message = guard
    for record_id in env.existing(model, ids):
        if not allowed(env.row(model, record_id)):
            raise UserError(message)


MODEL_METHODS = {
    "search": search,
    "search_read": search_read,
    "search_count": search_count,
    "create": create,
    "fields_get": fields_get,
    "default_get": default_get,
    "name_search": name_search,
}
RECORD_METHODS = {"read": read, "write": write, "unlink": unlink, "exists": exists}
SPECIAL_MODEL_METHODS = {
    ("res.users", "context_get"): context_get,
    ("ir.model.data", "check_object_reference"): check_object_reference,
    ("ir.model.data", "xmlid_to_res_model_res_id"): xmlid_to_res_model_res_id,
}


def _record_method(env, model: str, method: str):
    if method in RECORD_METHODS:
        return RECORD_METHODS[method]
    if method == "name_get" and env.major < 18:
        return name_get
    if method == "message_post" and REGISTRY[model].mail_thread:
        return actions.message_post
    return actions.ACTIONS.get((model, method))


def _missing_method(env, model: str, method: str) -> AttributeError:
    if env.major >= 18:
        return AttributeError(f"The method '{model}.{method}' does not exist")
    return AttributeError(f"The method '{method}' does not exist on the model '{model}'")


def check_access(env, model: str, method: str) -> None:
    """Unknown model, faulted model, private method: refused before anything runs."""
    spec = env.spec(model)
    if env.faults is not None and model in env.faults.access_error_models:
        raise AccessError(
            f"You are not allowed to access '{spec.description}' ({model}) records.\n\n"
            "This operation is allowed for the following groups:\n\t- Administration/Settings"
            "\n\nContact your administrator to request access if necessary."
        )
    if method.startswith("_"):
        raise AccessError(
            f"Private methods (such as '{model}.{method}') cannot be called remotely."
        )


def call(env, model: str, method: str, args: list, kwargs: dict):
    """Run one model method for the external API and return its raw result."""
    check_access(env, model, method)
    kwargs = dict(kwargs or {})
    kwargs.pop("context", None)
    model_method = SPECIAL_MODEL_METHODS.get((model, method)) or MODEL_METHODS.get(method)
    if model_method is not None:
        return _bound(model_method, env, model, *args, **kwargs)
    record_method = _record_method(env, model, method)
    if record_method is None:
        raise _missing_method(env, model, method)
    ids = _ids(args[0]) if args else []
    return _bound(record_method, env, model, ids, *args[1:], **kwargs)


def _bound(func, *args, **kwargs):
    try:
        inspect.signature(func).bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{func.__name__}() {error}") from None
    return func(*args, **kwargs)


def call_named(env, model: str, method: str, ids, kwargs: dict):
    """Run one model method with named arguments only, as JSON-2 passes them."""
    check_access(env, model, method)
    kwargs = {k: v for k, v in (kwargs or {}).items() if k != "context"}
    model_method = SPECIAL_MODEL_METHODS.get((model, method)) or MODEL_METHODS.get(method)
    if model_method is not None:
        return _bound(model_method, env, model, **kwargs)
    record_method = _record_method(env, model, method)
    if record_method is None:
        raise _missing_method(env, model, method)
    return _bound(record_method, env, model, _ids(ids), **kwargs)
