"""The sandbox speaks Odoo's external API to the real, unmodified OdooRPC client.

Domain cases run against partners each test creates with known values, so every expected
result is worked out by hand here, not by the sandbox.
"""

import time

import odoorpc
import pytest

SCOPE = ("ref", "=like", "DOM-%")


@pytest.fixture
def partners(odoorpc_client):
    """Five partners with known values, by letter; E is archived."""
    env = odoorpc_client.env
    tags = {t["name"]: t["id"] for t in env["res.partner.category"].search_read([], ["name"])}
    Partner = env["res.partner"]
    ids = {}
    ids["A"] = Partner.create(
        {
            "name": "Alpha Foods",
            "ref": "DOM-A",
            "email": "a@x.test",
            "credit_limit": 1000,
            "customer_rank": 3,
            "is_company": True,
            "city": "Amsterdam",
            "category_id": [(6, 0, [tags["Key Account"]])],
        }
    )
    ids["B"] = Partner.create(
        {
            "name": "beta foods",
            "ref": "DOM-B",
            "email": "",
            "credit_limit": 0,
            "customer_rank": 0,
            "is_company": False,
            "parent_id": ids["A"],
        }
    )
    ids["C"] = Partner.create(
        {
            "name": "Gamma_Trade",
            "ref": "DOM-C",
            "credit_limit": 250.5,
            "customer_rank": 1,
            "is_company": True,
            "city": "Oslo",
            "category_id": [(6, 0, [tags["Retail"], tags["Wholesale"]])],
        }
    )
    ids["D"] = Partner.create(
        {
            "name": "Delta 100%",
            "ref": "DOM-D",
            "email": "d@y.test",
            "credit_limit": 5000,
            "customer_rank": 2,
            "is_company": False,
            "city": "Dublin",
            "parent_id": ids["C"],
            "category_id": [(6, 0, [tags["Wholesale"]])],
        }
    )
    ids["E"] = Partner.create(
        {
            "name": "Epsilon Archived",
            "ref": "DOM-E",
            "active": False,
            "credit_limit": 10,
            "parent_id": ids["A"],
            "city": "Amsterdam",
        }
    )
    return {"ids": ids, "letters": {v: k for k, v in ids.items()}, "tags": tags}


def _letters(partners, ids) -> set[str]:
    return {partners["letters"][i] for i in ids}


def _resolve(value, partners):
    """Test parameters name partners and tags symbolically; turn them into ids."""
    if isinstance(value, str) and value.startswith("@"):
        return partners["ids"][value[1:]]
    if isinstance(value, str) and value.startswith("#"):
        return partners["tags"][value[1:]]
    if isinstance(value, list):
        return [_resolve(v, partners) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, partners) for v in value)
    return value


DOMAIN_CASES = [
    ([("name", "=", "Alpha Foods")], "A"),
    ([("name", "!=", "Alpha Foods")], "BCD"),
    ([("name", "<>", "Alpha Foods")], "BCD"),
    ([("email", "=", False)], "BC"),
    ([("email", "!=", False)], "AD"),
    ([("city", "!=", "Oslo")], "ABD"),
    ([("city", "=", False)], "B"),
    ([("credit_limit", "=", False)], "B"),
    ([("credit_limit", "!=", False)], "ACD"),
    ([("credit_limit", ">", 250.5)], "AD"),
    ([("credit_limit", ">=", 250.5)], "ACD"),
    ([("credit_limit", "<", 1000)], "BC"),
    ([("credit_limit", "<=", 1000)], "ABC"),
    ([("city", "=?", False)], "ABCD"),
    ([("city", "=?", "Oslo")], "C"),
    ([("name", "like", "foods")], "B"),
    ([("name", "ilike", "FOODS")], "AB"),
    ([("name", "not like", "foods")], "ACD"),
    ([("name", "not ilike", "foods")], "CD"),
    ([("city", "not ilike", "ams")], "BCD"),
    ([("name", "ilike", "")], "ABCD"),
    ([("name", "not ilike", "")], ""),
    ([("name", "like", "100%")], "D"),
    ([("name", "=like", "Gamma_%")], "C"),
    ([("name", "=like", "gamma%")], ""),
    ([("name", "=ilike", "gamma%")], "C"),
    ([("customer_rank", "in", [1, 2])], "CD"),
    ([("customer_rank", "not in", [0])], "ACD"),
    ([("city", "in", ["Oslo", False])], "BC"),
    ([("city", "not in", ["Oslo"])], "ABD"),
    ([("city", "in", [])], ""),
    ([("city", "not in", [])], "ABCD"),
    ([("is_company", "=", True)], "AC"),
    ([("is_company", "=", False)], "BD"),
    ([("is_company", "!=", True)], "BD"),
    ([("parent_id", "=", False)], "AC"),
    ([("parent_id", "!=", False)], "BD"),
    ([("parent_id", "=", "@A")], "B"),
    ([("parent_id", "in", ["@A", "@C"])], "BD"),
    ([("parent_id", "not in", ["@A"])], "ACD"),
    ([("parent_id", "ilike", "gamma")], "D"),
    ([("parent_id.name", "=", "Alpha Foods")], "B"),
    ([("parent_id.city", "=", "Oslo")], "D"),
    ([("parent_id", "any", [("is_company", "=", True)])], "BD"),
    ([("parent_id", "not any", [("name", "=", "Alpha Foods")])], "ACD"),
    ([("category_id", "=", False)], "B"),
    ([("category_id", "in", ["#Wholesale"])], "CD"),
    ([("category_id", "not in", ["#Wholesale"])], "AB"),
    ([("category_id.name", "=", "Retail")], "C"),
    ([("category_id", "any", [("name", "=", "Key Account")])], "A"),
    ([("category_id", "not any", [("name", "=", "Wholesale")])], "AB"),
    ([("id", "child_of", "@A")], "AB"),
    ([("id", "parent_of", "@B")], "AB"),
    ([("parent_id", "child_of", "@C")], "D"),
    ([(1, "=", 1)], "ABCD"),
    ([(0, "=", 1)], ""),
    (["!", ("name", "=", "Alpha Foods")], "BCD"),
    (["|", ("name", "=", "Alpha Foods"), ("city", "=", "Oslo")], "AC"),
    ([("is_company", "=", True), ("city", "=", "Oslo")], "C"),
    (["&", ("is_company", "=", True), ("city", "=", "Oslo")], "C"),
    (
        [
            "|",
            "!",
            ("is_company", "=", True),
            "&",
            ("city", "=", "Oslo"),
            ("customer_rank", "=", 1),
        ],
        "BCD",
    ),
    ([("active", "=", False)], "E"),
    ([("active", "in", [True, False])], "ABCDE"),
]


@pytest.mark.parametrize(("domain", "expected"), DOMAIN_CASES, ids=lambda v: str(v))
def test_search_applies_domain_like_odoo(odoorpc_client, partners, domain, expected):
    Partner = odoorpc_client.env["res.partner"]
    found = Partner.search([SCOPE, *_resolve(domain, partners)])
    assert _letters(partners, found) == set(expected)


def test_search_read_returns_the_same_records_with_fields(odoorpc_client, partners):
    rows = odoorpc_client.env["res.partner"].search_read(
        [SCOPE, ("parent_id", "!=", False)], ["name", "parent_id", "category_id"], order="name"
    )
    assert [r["name"] for r in rows] == ["beta foods", "Delta 100%"]
    assert rows[0]["parent_id"] == [partners["ids"]["A"], "Alpha Foods"]
    assert rows[1]["category_id"] == [partners["tags"]["Wholesale"]]


def test_active_test_false_in_context_includes_archived(odoorpc_client, partners):
    found = odoorpc_client.execute_kw(
        "res.partner", "search", [[SCOPE]], {"context": {"active_test": False}}
    )
    assert _letters(partners, found) == set("ABCDE")


def test_search_count_counts_the_domain(odoorpc_client, partners):
    count = odoorpc_client.env["res.partner"].search_count([SCOPE, ("is_company", "=", True)])
    assert count == 2


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ([("date_order", ">", "2024-03-10")], ["11 00:00"]),
        ([("date_order", ">=", "2024-03-10")], ["10 00:00", "10 23:59", "11 00:00"]),
        ([("date_order", "<", "2024-03-10")], ["09 12:00"]),
        ([("date_order", "<=", "2024-03-10")], ["09 12:00", "10 00:00", "10 23:59"]),
        ([("date_order", "=", "2024-03-10 23:59:59")], ["10 23:59"]),
    ],
)
def test_datetime_compared_with_a_date_takes_the_day_bound(odoorpc_client, domain, expected):
    env = odoorpc_client.env
    vendor = env["res.partner"].create({"name": "Date Rule Vendor"})
    for moment in (
        "2024-03-09 12:00:00",
        "2024-03-10 00:00:00",
        "2024-03-10 23:59:59",
        "2024-03-11 00:00:00",
    ):
        env["purchase.order"].create(
            {"partner_id": vendor, "picking_type_id": 1, "date_order": moment}
        )
    rows = env["purchase.order"].search_read(
        [("partner_id", "=", vendor), *domain], ["date_order"], order="date_order"
    )
    assert [r["date_order"][8:16] for r in rows] == expected


def test_child_of_follows_the_category_tree(odoorpc_client):
    env = odoorpc_client.env
    beverages = env["product.category"].search([("name", "=", "Beverages")])
    categories = env["product.category"].search_read(
        [("id", "child_of", beverages)], ["name"], order="name"
    )
    assert [c["name"] for c in categories] == ["Beverages", "Soft Drinks", "Water"]
    products = env["product.product"].search_read(
        [("categ_id", "child_of", beverages)], ["categ_id"]
    )
    assert products
    assert {p["categ_id"][1].split(" / ")[-2] for p in products} <= {"Beverages"}
    parents = env["product.category"].search_read(
        [("id", "parent_of", env["product.category"].search([("name", "=", "Water")]))],
        ["name"],
        order="name",
    )
    assert [c["name"] for c in parents] == ["All", "Beverages", "Goods", "Water"]


def test_dotted_path_through_two_many2ones(odoorpc_client):
    PO = odoorpc_client.env["purchase.order"]
    orders = PO.search_read(
        [("picking_type_id.warehouse_id.code", "=", "MAN")], ["picking_type_id"]
    )
    assert orders
    man_types = odoorpc_client.env["stock.picking.type"].search([("warehouse_id", "=", 8)])
    assert {o["picking_type_id"][0] for o in orders} <= set(man_types)
    assert len(orders) == PO.search_count([("picking_type_id", "in", man_types)])


def test_dotted_path_through_one2many_matches_any_line(odoorpc_client):
    env = odoorpc_client.env
    line = env["purchase.order.line"].search_read([], ["order_id", "product_id"], limit=1)[0]
    found = env["purchase.order"].search([("order_line.product_id", "=", line["product_id"][0])])
    assert line["order_id"][0] in found
    expected = {
        row["order_id"][0]
        for row in env["purchase.order.line"].search_read(
            [("product_id", "=", line["product_id"][0])], ["order_id"]
        )
    }
    assert set(found) == expected


@pytest.mark.parametrize(
    "domain",
    [
        ["&", ("name", "=", "x")],
        ["|"],
        [("name", "=")],
        [("name", "=", "x"), "!"],
        "name = x",
    ],
)
def test_malformed_domain_is_a_value_error(odoorpc_client, domain):
    with pytest.raises(odoorpc.error.RPCError) as raised:
        odoorpc_client.execute_kw("res.partner", "search", [domain])
    assert raised.value.info["data"]["name"] == "builtins.ValueError"
    assert "is syntactically not correct" in raised.value.info["data"]["message"]


@pytest.mark.parametrize(
    "domain", [[("name", "~", "x")], [("no_such_field", "=", 1)], [("name.id", "=", 1)]]
)
def test_invalid_leaf_is_a_value_error(odoorpc_client, domain):
    with pytest.raises(odoorpc.error.RPCError) as raised:
        odoorpc_client.execute_kw("res.partner", "search", [domain])
    assert raised.value.info["data"]["name"] == "builtins.ValueError"


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("credit_limit desc", "DACB"),
        ("credit_limit", "BCAD"),
        ("name", "ABDC"),
        ("is_company desc, name asc", "ACBD"),
        ("parent_id, name", "BDAC"),
    ],
)
def test_order_sorts_like_odoo(odoorpc_client, partners, order, expected):
    found = odoorpc_client.env["res.partner"].search([SCOPE], order=order)
    assert "".join(partners["letters"][i] for i in found) == expected


def test_limit_and_offset_page_through_the_order(odoorpc_client, partners):
    Partner = odoorpc_client.env["res.partner"]
    page = Partner.search([SCOPE], order="credit_limit desc", limit=2, offset=1)
    assert "".join(partners["letters"][i] for i in page) == "AC"
    rows = Partner.search_read([SCOPE], ["name"], offset=3, limit=10, order="credit_limit desc")
    assert [r["name"] for r in rows] == ["beta foods"]


def test_default_order_of_purchase_orders_is_priority_then_newest(odoorpc_client):
    rows = odoorpc_client.env["purchase.order"].search_read([], ["priority"], limit=400)
    priorities = [r["priority"] for r in rows]
    assert priorities == sorted(priorities, reverse=True)
    urgent = [r["id"] for r in rows if r["priority"] == "1"]
    assert urgent == sorted(urgent, reverse=True)


def test_default_order_of_sale_orders_is_newest_first(odoorpc_client):
    rows = odoorpc_client.env["sale.order"].search_read([], ["date_order"], limit=50)
    dates = [r["date_order"] for r in rows]
    assert dates == sorted(dates, reverse=True)


def test_invalid_order_is_refused(odoorpc_client):
    with pytest.raises(odoorpc.error.RPCError) as raised:
        odoorpc_client.env["res.partner"].search([], order="no_such_field desc")
    assert raised.value.info["data"]["name"] == "builtins.ValueError"


def test_version_probe_and_login(odoo_sandbox):
    client = odoorpc.ODOO(odoo_sandbox.host, port=odoo_sandbox.port, protocol="jsonrpc")
    assert client.version == "17.0"
    client.login(odoo_sandbox.db, "admin", "admin")
    assert client.env.uid == 2
    assert client.env.context["tz"] == "Europe/Amsterdam"
    assert client.env.user.login == "admin"


def test_login_with_wrong_password_is_refused(odoo_sandbox):
    client = odoorpc.ODOO(odoo_sandbox.host, port=odoo_sandbox.port, protocol="jsonrpc")
    with pytest.raises(odoorpc.error.RPCError, match="Wrong login ID or password"):
        client.login(odoo_sandbox.db, "admin", "not-the-password")


def test_fields_get_describes_every_field(odoorpc_client):
    fields = odoorpc_client.execute("purchase.order", "fields_get")
    assert all("type" in f for f in fields.values())
    assert fields["partner_id"]["relation"] == "res.partner"
    assert ["to approve", "To Approve"] in fields["state"]["selection"]
    assert fields["order_line"]["relation"] == "purchase.order.line"
    for name in (
        "name",
        "partner_ref",
        "date_order",
        "date_approve",
        "date_planned",
        "currency_id",
        "amount_untaxed",
        "amount_tax",
        "amount_total",
        "company_id",
        "user_id",
        "invoice_ids",
        "invoice_status",
        "origin",
        "priority",
        "picking_type_id",
        "picking_ids",
        "receipt_status",
    ):
        assert name in fields
    assert odoorpc_client.env["purchase.order"].amount_total is not None


def test_model_exists_and_xml_ids_resolve(odoorpc_client):
    assert "stock.scrap" in odoorpc_client.env
    assert "no.such.model" not in odoorpc_client.env
    assert odoorpc_client.env.ref("base.main_company").id == 1


def test_browse_reads_records_with_classic_write(odoorpc_client):
    order = odoorpc_client.env["purchase.order"].browse(1)
    assert order.name == "P00001"
    assert order.partner_id.id > 0
    assert order.picking_type_id.warehouse_id.code in {
        "AMS",
        "RTM",
        "ANR",
        "STO",
        "OSL",
        "CPH",
        "LON",
        "MAN",
        "DUB",
    }
    with pytest.raises(ValueError, match=r"There is no 'purchase\.order' record"):
        odoorpc_client.env["purchase.order"].browse([1, 999999])


def test_read_loads_many2one_as_pair_or_id_and_skips_missing_ids(odoorpc_client):
    pairs = odoorpc_client.execute_kw("purchase.order", "read", [[1, 999999], ["partner_id"]])
    ids = odoorpc_client.execute_kw(
        "purchase.order", "read", [[1], ["partner_id"]], {"load": "_classic_write"}
    )
    assert len(pairs) == 1
    assert pairs[0]["partner_id"][0] == ids[0]["partner_id"]
    assert isinstance(pairs[0]["partner_id"][1], str)


def test_write_changes_the_record_and_bumps_write_date(odoorpc_client):
    PO = odoorpc_client.env["purchase.order"]
    first, second = PO.search([("state", "=", "draft")], limit=2)
    before = PO.read([first], ["write_date"])[0]["write_date"]
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    assert PO.write([first], {"origin": "Tollgate TG-1"}) is True
    after = PO.read([first], ["write_date", "origin"])[0]
    assert after["origin"] == "Tollgate TG-1"
    assert after["write_date"] >= started > before
    assert len(after["write_date"]) == len("2024-01-01 00:00:00")
    assert PO.search([("write_date", ">=", started), ("id", "in", [first, second])]) == [first]


def test_editing_a_line_bumps_its_order(odoorpc_client):
    env = odoorpc_client.env
    line = env["purchase.order.line"].search_read([("order_id", "=", 7)], ["id"], limit=1)[0]
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    env["purchase.order.line"].write([line["id"]], {"product_qty": 3})
    assert env["purchase.order"].read([7], ["write_date"])[0]["write_date"] >= started


def test_create_returns_an_id_or_a_list_of_ids(odoorpc_client):
    Partner = odoorpc_client.env["res.partner"]
    one = Partner.create({"name": "Single"})
    many = odoorpc_client.execute_kw(
        "res.partner", "create", [[{"name": "First"}, {"name": "Second"}]]
    )
    assert isinstance(one, int)
    assert len(many) == 2
    assert [r["name"] for r in Partner.read(many, ["name"])] == ["First", "Second"]


def test_create_with_lines_computes_totals(odoorpc_client):
    env = odoorpc_client.env
    order_id = env["purchase.order"].create(
        {
            "partner_id": 7,
            "picking_type_id": 1,
            "order_line": [
                (0, 0, {"product_id": 1, "product_qty": 4, "price_unit": 2.5}),
                (0, 0, {"product_id": 2, "product_qty": 1, "price_unit": 10}),
            ],
        }
    )
    order = env["purchase.order"].read([order_id], ["name", "amount_total", "state"])[0]
    assert order["amount_total"] == 20.0
    assert order["state"] == "draft"
    assert order["name"].startswith("P")


def test_default_get_gives_defaults(odoorpc_client):
    defaults = odoorpc_client.execute_kw(
        "purchase.order", "default_get", [["state", "company_id", "priority"]]
    )
    assert defaults == {"state": "draft", "company_id": 1, "priority": "0"}


def test_unlink_deletes_and_lines_go_with_the_order(odoorpc_client):
    env = odoorpc_client.env
    order_id = env["purchase.order"].create(
        {"partner_id": 7, "picking_type_id": 1, "order_line": [(0, 0, {"product_id": 1})]}
    )
    line_ids = env["purchase.order.line"].search([("order_id", "=", order_id)])
    assert env["purchase.order"].browse(order_id).unlink() is True
    assert env["purchase.order"].search([("id", "=", order_id)]) == []
    assert env["purchase.order.line"].search([("id", "in", line_ids)]) == []


def test_name_get_and_display_name_name_records_like_odoo(odoorpc_client):
    stock_id = odoorpc_client.env["stock.warehouse"].read([1], ["lot_stock_id"])[0]["lot_stock_id"]
    assert stock_id[1] == "AMS/Stock"
    assert odoorpc_client.execute_kw("stock.location", "name_get", [[stock_id[0]]]) == [stock_id]
    product = odoorpc_client.execute_kw("product.product", "read", [[1], ["display_name"]])
    assert product[0]["display_name"].startswith("[TG-0001] ")
