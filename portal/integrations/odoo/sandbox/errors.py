"""The exceptions the sandbox raises, named and worded the way Odoo names and words them.

A client tells Odoo errors apart by `data.name` (the fully qualified class name), so each
class here carries the name Odoo would report; Python's own ValueError, TypeError and
AttributeError keep their `builtins.` names, as they do in a real server.
"""


class OdooError(Exception):
    """Base of the `odoo.exceptions` family; `UserError` in Odoo itself."""

    odoo_name = "odoo.exceptions.UserError"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UserError(OdooError):
    odoo_name = "odoo.exceptions.UserError"


class AccessDenied(OdooError):
    odoo_name = "odoo.exceptions.AccessDenied"

    def __init__(self, message: str = "Access Denied"):
        super().__init__(message)


class AccessError(OdooError):
    odoo_name = "odoo.exceptions.AccessError"


class MissingError(OdooError):
    odoo_name = "odoo.exceptions.MissingError"


class ValidationError(OdooError):
    odoo_name = "odoo.exceptions.ValidationError"


class DatabaseMissing(OdooError):
    """What the server's database layer reports for a database name it does not host."""

    odoo_name = "psycopg2.OperationalError"


def error_name(error: BaseException) -> str:
    if isinstance(error, OdooError):
        return error.odoo_name
    cls = type(error)
    return f"{cls.__module__}.{cls.__qualname__}"


def error_message(error: BaseException) -> str:
    if isinstance(error, OdooError):
        return error.message
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


def error_data(error: BaseException, context: dict | None = None) -> dict:
    """The `data` part of an Odoo error reply: name, message, arguments, debug, context."""
    name = error_name(error)
    message = error_message(error)
    arguments = list(error.args) if error.args else [message]
    return {
        "name": name,
        "debug": f"Traceback (most recent call last):\n  (Odoo sandbox)\n{name}: {message}\n",
        "message": message,
        "arguments": [a if isinstance(a, str | int | float) else str(a) for a in arguments],
        "context": context or {},
    }


def recordset(model: str, ids: list[int]) -> str:
    """A recordset as Odoo prints it: `purchase.order(7,)`, `purchase.order(7, 8)`."""
    return f"{model}{tuple(ids)!r}"


def missing_record(model: str, ids: list[int], uid: int) -> MissingError:
    return MissingError(
        "Record does not exist or has been deleted.\n"
        f"(Record: {recordset(model, ids)}, User: {uid})"
    )


def singleton_expected(model: str, ids: list[int]) -> ValueError:
    return ValueError(f"Expected singleton: {recordset(model, ids)}")
