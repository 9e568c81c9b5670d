"""Where the sandbox keeps its records: one SQLite file, read through a committed cache.

Every RPC call runs as one transaction, as in Odoo: it either commits all its writes or none.
One lock serialises the transactions (the sandbox's whole database is small), so the single
SQLite connection is never used by two threads at once. Committed rows are cached in memory
per model; a transaction copies a model's table on its first write to it and publishes the
copy only when it commits, so an error leaves the cache and the file as they were. Rows are
plain dicts in storage form and are never changed in place: an update stores a new dict.
"""

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    model TEXT NOT NULL, id INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (model, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    """The sandbox database file, shared by every request thread."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._cache: dict[str, dict[int, dict]] = {}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator["Transaction"]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            tx = Transaction(self._conn, self._cache)
            try:
                yield tx
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            self._cache.update(tx.written_tables())

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def is_empty(self) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None

    def wipe(self) -> None:
        with self._lock:
            self._conn.executescript(
                "BEGIN; DELETE FROM records; DELETE FROM counters; DELETE FROM meta; COMMIT;"
            )
            self._cache.clear()


class Transaction:
    """Reads and writes of one call; see the module docstring for the copy-on-write rule."""

    def __init__(self, conn: sqlite3.Connection, committed: dict[str, dict[int, dict]]):
        self._conn = conn
        self._committed = committed
        self._tables: dict[str, dict[int, dict]] = {}
        self._written: set[str] = set()

    def table(self, model: str) -> dict[int, dict]:
        """Every row of a model, by id; treat the mapping and its rows as read-only."""
        if model in self._tables:
            return self._tables[model]
        if model not in self._committed:
            cursor = self._conn.execute("SELECT id, data FROM records WHERE model = ?", (model,))
            self._committed[model] = {rid: json.loads(data) for rid, data in cursor}
        return self._committed[model]

    def _writable(self, model: str) -> dict[int, dict]:
        if model not in self._written:
            self._tables[model] = dict(self.table(model))
            self._written.add(model)
        return self._tables[model]

    # Each write takes the writable copy before touching SQL, so that a first read of the
    # table can never load this transaction's own uncommitted rows into the committed cache.

    def insert(self, model: str, row: dict) -> int:
        table = self._writable(model)
        row_id = row.get("id") or self.next_counter(f"id:{model}")
        if row.get("id"):
            self._set_counter(f"id:{model}", max(row_id, self._counter(f"id:{model}") or 0))
        row = {**row, "id": row_id}
        self._conn.execute(
            "INSERT INTO records (model, id, data) VALUES (?, ?, ?)",
            (model, row_id, json.dumps(row)),
        )
        table[row_id] = row
        return row_id

    def update(self, model: str, row_id: int, values: dict) -> dict:
        table = self._writable(model)
        row = {**table[row_id], **values}
        self._conn.execute(
            "UPDATE records SET data = ? WHERE model = ? AND id = ?",
            (json.dumps(row), model, row_id),
        )
        table[row_id] = row
        return row

    def delete(self, model: str, row_id: int) -> None:
        table = self._writable(model)
        self._conn.execute("DELETE FROM records WHERE model = ? AND id = ?", (model, row_id))
        table.pop(row_id, None)

    def next_counter(self, name: str) -> int:
        """The next number of a named counter (record ids, document sequences)."""
        if name.startswith("id:") and self._counter(name) is None:
            model = name[3:]
            self._set_counter(name, max(self.table(model), default=0))
        value = (self._counter(name) or 0) + 1
        self._set_counter(name, value)
        return value

    def _counter(self, name: str) -> int | None:
        row = self._conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def _set_counter(self, name: str, value: int) -> None:
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def written_tables(self) -> dict[str, dict[int, dict]]:
        return {model: self._tables[model] for model in self._written}
