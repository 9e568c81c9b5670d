"""The registry of business buttons, and the lookups that several models' buttons share."""

from collections.abc import Callable

ACTIONS: dict[tuple[str, str], Callable] = {}


def action(model: str, name: str):
    def register(func):
        ACTIONS[(model, name)] = func
        return func

    return register


def xmlid_res_id(env, module: str, name: str) -> int | None:
    for row in env.rows("ir.model.data").values():
        if row["module"] == module and row["name"] == name:
            return row["res_id"]
    return None


def user_has_group(env, module: str, name: str) -> bool:
    group_id = xmlid_res_id(env, module, name)
    return group_id in ((env.row("res.users", env.uid) or {}).get("groups_id") or [])


def rows_of(env, model: str, ids: list[int]) -> list[dict]:
    """The rows of those of `ids` that exist."""
    return [env.row(model, i) for i in env.existing(model, ids)]
