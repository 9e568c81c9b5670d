"""Turning Odoo rows into typed records: None for False, Ref, Decimal, aware UTC times."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from portal.integrations.odoo.records import (
    FIELDS,
    RECORDS,
    AccountMove,
    PurchaseOrder,
    Ref,
    StockPicking,
    Warehouse,
)


def row_for(record_class, **values) -> dict:
    """A row as Odoo sends it for an empty record, with `values` set."""
    return {"id": 1} | dict.fromkeys(record_class.FIELDS, False) | values


def test_a_purchase_order_row_becomes_typed_values():
    row = row_for(
        PurchaseOrder,
        name="P00042",
        state="to approve",
        partner_id=[7, "Azure Interior"],
        currency_id=[1, "EUR"],
        amount_total=1234.1,
        date_order="2025-03-01 09:30:00",
        order_line=[11, 12],
    )

    order = PurchaseOrder.from_odoo(row)

    assert order.partner == Ref(7, "Azure Interior")
    assert order.currency.name == "EUR"
    assert order.amount_total == Decimal("1234.1")
    assert order.date_order == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert order.line_ids == (11, 12)
    assert order.partner_ref is None
    assert order.date_approve is None
    assert order.user is None


def test_many2one_read_as_a_bare_id_keeps_the_id():
    picking = StockPicking.from_odoo(row_for(StockPicking, partner_id=9))

    assert picking.partner == Ref(9, None)


def test_money_keeps_the_decimal_digits_odoo_shows():
    move = AccountMove.from_odoo(row_for(AccountMove, amount_residual=0.1 + 0.2))

    assert move.amount_residual == Decimal("0.30000000000000004")
    assert AccountMove.from_odoo(row_for(AccountMove, amount_tax=21.0)).amount_tax == Decimal(
        "21.0"
    )


def test_date_fields_are_dates_and_datetime_fields_are_utc():
    move = AccountMove.from_odoo(
        row_for(AccountMove, date="2025-02-28", write_date="2025-03-01 23:59:59")
    )

    assert move.accounting_date == date(2025, 2, 28)
    assert move.write_date.tzinfo is UTC


def test_booleans_stay_booleans():
    assert Warehouse.from_odoo(row_for(Warehouse, active=True)).active is True
    assert Warehouse.from_odoo(row_for(Warehouse)).active is False


def test_a_row_missing_a_listed_field_is_refused():
    row = row_for(PurchaseOrder)
    del row["state"]

    with pytest.raises(ValueError, match="'state'"):
        PurchaseOrder.from_odoo(row)


@pytest.mark.parametrize("record_class", RECORDS, ids=lambda cls: cls.MODEL)
def test_every_model_reads_an_explicit_field_list(record_class):
    assert FIELDS[record_class.MODEL] == record_class.FIELDS
    assert record_class.FIELDS
    assert "id" not in record_class.FIELDS
    assert len(set(record_class.FIELDS)) == len(record_class.FIELDS)
    assert record_class.from_odoo(row_for(record_class)).id == 1
