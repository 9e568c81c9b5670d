"""One row inserted unless a unique constraint already holds its twin, in one statement.

`INSERT … ON CONFLICT (…) DO NOTHING RETURNING id`: a copy racing this one waits for it and then
inserts nothing, with no error to recover from and no savepoint, where `get_or_create` needs a
read, a savepoint, the insert and its release. Both PostgreSQL and SQLite speak it.
"""

import functools

from django.db import connection


@functools.cache
def _fields(model) -> tuple:
    return tuple(field for field in model._meta.concrete_fields if not field.primary_key)


@functools.cache
def insert_once_sql(model, conflict: tuple[str, ...]) -> str:
    """The statement for a row of `model`, skipped when the columns `conflict` (those of a
    unique constraint) already hold its values; it returns the new id, or no row."""
    columns = [field.column for field in _fields(model)]
    return (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "  # noqa: S608 - model names
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING id"
    )


def insert_values(obj) -> list:
    """`obj`'s values in the order of `insert_once_sql`'s columns, as a save would write them."""
    return [
        field.get_db_prep_save(field.pre_save(obj, True), connection)
        for field in _fields(type(obj))
    ]


def mark_stored(obj, pk: int) -> None:
    """`obj` as if it had been saved: its new id, and no longer waiting to be added."""
    obj.pk = pk
    obj._state.adding, obj._state.db = False, connection.alias


def insert_once(obj, conflict: tuple[str, ...]) -> bool:
    """Insert `obj` unless `conflict`'s columns already hold its values; whether it was (its id
    set when it was)."""
    with connection.cursor() as cursor:
        cursor.execute(insert_once_sql(type(obj), conflict), insert_values(obj))
        row = cursor.fetchone()
    if row is None:
        return False
    mark_stored(obj, row[0])
    return True
