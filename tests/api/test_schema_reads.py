"""The schema's reads from the database fail softly without spoiling a caller's transaction."""

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from portal.api.schema import read_while_describing


def _read_a_missing_table():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM tollgate_no_such_table")
        return cursor.fetchall()


def test_a_failed_read_gives_none_and_leaves_the_transaction_usable(db):
    users = get_user_model().objects
    with transaction.atomic():
        assert read_while_describing(_read_a_missing_table) is None
        # On PostgreSQL a failed statement aborts the transaction it ran in; only the
        # savepoint around the read lets this query run.
        assert users.filter(username="nobody-at-all").count() == 0


def test_a_read_that_works_gives_its_value(db):
    assert read_while_describing(lambda: get_user_model().objects.count()) == 0
