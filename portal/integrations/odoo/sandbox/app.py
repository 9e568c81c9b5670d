"""What both wire protocols share: the database, its name, the version, credentials, faults.

Credentials live on `res.users` rows in two hidden columns that no RPC can read: `_password`
(accepted by `common.login` and on object calls) and `_api_keys` (accepted wherever a password
is, and the only thing a JSON-2 bearer token may be), as in Odoo 14 and later.
"""

from datetime import UTC, datetime
from pathlib import Path

from portal.integrations.odoo.sandbox import dispatch
from portal.integrations.odoo.sandbox.errors import AccessDenied, DatabaseMissing
from portal.integrations.odoo.sandbox.faults import CallStats, Faults
from portal.integrations.odoo.sandbox.orm import Env, version_numbers
from portal.integrations.odoo.sandbox.store import Store

DEFAULT_DB = "tollgate-demo"


def utc_now() -> str:
    """The call's timestamp as Odoo writes it: naive UTC, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


class SandboxApp:
    def __init__(
        self,
        db_path: Path | str,
        *,
        version: str = "17.0",
        db_name: str = DEFAULT_DB,
        faults: Faults | None = None,
    ):
        self.db_path = Path(db_path)
        self.version = version
        self.db_name = db_name
        self.faults = faults or Faults()
        self.stats = CallStats()
        self.store = Store(self.db_path)

    @property
    def major(self) -> int:
        return version_numbers(self.version)[0]

    def reopen(self) -> None:
        """Close and reopen the database file, as a restarted server would."""
        self.store.close()
        self.store = Store(self.db_path)

    def version_info(self) -> dict:
        numbers = [*version_numbers(self.version), 0, 0][:2]
        return {
            "server_version": self.version,
            "server_version_info": [*numbers, 0, "final", 0, ""],
            "server_serie": f"{numbers[0]}.{numbers[1]}",
            "protocol_version": 1,
        }

    def check_db(self, db) -> None:
        if db != self.db_name:
            raise DatabaseMissing(
                f'connection to server failed: FATAL:  database "{db}" does not exist'
            )

    def login(self, db, login, password) -> int | bool:
        """`common.login`: the uid, or False for wrong credentials."""
        self.check_db(db)
        with self.store.transaction() as tx:
            for user in tx.table("res.users").values():
                if user.get("login") == login and user.get("active") and _secret_ok(user, password):
                    return user["id"]
        return False

    def uid_for_key(self, tx, key) -> int | None:
        for user in tx.table("res.users").values():
            if user.get("active") and key and key in (user.get("_api_keys") or []):
                return user["id"]
        return None

    def execute(self, db, uid, password, model, method, args, kwargs):
        """One object call, checked and run in its own transaction."""
        self.check_db(db)
        with self.store.transaction() as tx:
            user = tx.table("res.users").get(uid) if isinstance(uid, int) else None
            if not user or not user.get("active") or not _secret_ok(user, password):
                raise AccessDenied()
            env = self.env(tx, uid, (kwargs or {}).get("context") or {})
            return dispatch.call(env, model, method, list(args or []), kwargs or {})

    def execute_named(self, tx, uid, model, method, ids, kwargs, context):
        env = self.env(tx, uid, context)
        return dispatch.call_named(env, model, method, ids, kwargs)

    def env(self, tx, uid: int, context: dict) -> Env:
        if not isinstance(context, dict):
            raise TypeError("The context must be a dictionary")
        return Env(
            tx, uid=uid, context=context, now=utc_now(), version=self.version, faults=self.faults
        )


def _secret_ok(user: dict, secret) -> bool:
    if not isinstance(secret, str) or not secret:
        return False
    return secret == user.get("_password") or secret in (user.get("_api_keys") or [])
