"""Odoo's JSON-RPC: `/web/webclient/version_info`, `/jsonrpc` and the reply envelope.

Replies follow PROTOCOL.md sections 1 and 2: HTTP 200 always, `{"jsonrpc", "id", "result"}`
on success with `result` left out when the method returned None, and on failure
`{"error": {"code": 200, "message": "Odoo Server Error", "data": {...}}}` (code 0 from
Odoo 19 on).
"""

from portal.integrations.odoo.sandbox.errors import error_data


def object_target(params: dict) -> tuple[str, str] | None:
    """(model, method) of an object-service call, for counting and fault injection."""
    if not isinstance(params, dict) or params.get("service") != "object":
        return None
    args = params.get("args")
    if isinstance(args, list) and len(args) >= 5:
        return str(args[3]), str(args[4])
    return None


def reply(app, payload: dict, result=None, error: BaseException | None = None) -> dict:
    message = {"jsonrpc": "2.0", "id": payload.get("id") if isinstance(payload, dict) else None}
    if error is not None:
        message["error"] = {
            "code": 0 if app.major >= 19 else 200,
            "message": "Odoo Server Error",
            "data": error_data(error),
        }
    elif result is not None:
        message["result"] = result
    return message


def handle_version_info(app, payload: dict) -> dict:
    return reply(app, payload, app.version_info())


def handle_database_list(app, payload: dict) -> dict:
    return reply(app, payload, [app.db_name])


def handle_jsonrpc(app, payload: dict) -> dict:
    try:
        params = payload.get("params") or {}
        return reply(app, payload, _service(app, params))
    except Exception as error:  # every failure becomes an Odoo error reply
        return reply(app, payload, error=error)


def _service(app, params: dict):
    service, method = params.get("service"), params.get("method")
    args = list(params.get("args") or [])
    if service == "common":
        return _common(app, method, args)
    if service == "object":
        return _object(app, method, args)
    if service == "db" and method == "list":
        return [app.db_name]
    if service == "db" and method == "server_version":
        return app.version
    raise NameError(f"No such service or method: {service}.{method}")


def _common(app, method: str, args: list):
    if method == "login":
        db, login, password = args[:3]
        return app.login(db, login, password)
    if method == "authenticate":
        db, login, password = args[:3]
        return app.login(db, login, password)
    if method == "version":
        return app.version_info()
    raise NameError(f"Method not available {method}")


def _object(app, method: str, args: list):
    if method not in ("execute", "execute_kw") or len(args) < 5:
        raise NameError(f"Method not available {method}")
    db, uid, password, model, name = args[:5]
    if method == "execute":
        return app.execute(db, uid, password, model, name, args[5:], {})
    positional = args[5] if len(args) > 5 else []
    kwargs = args[6] if len(args) > 6 else {}
    return app.execute(db, uid, password, model, name, positional, kwargs)
