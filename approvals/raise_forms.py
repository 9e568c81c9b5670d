"""The form a requester fills in to raise a request of one kind, in the browser.

It asks for exactly what approvals.kinds says the kind needs, plus the lines of products where
the kind has them; the services validate again and have the last word (their errors come back
to the field they concern, through `add_service_errors`).
"""

from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from approvals import uploads
from approvals.kinds import KINDS
from approvals.models import MONEY, CurrencyRate, RequestKind
from sites.models import Site

CENT = Decimal("0.01")
MAX_LINES = 50
MAX_FILES = 10
CUSTOMER_CLASSES = [
    ("", "Choose the customer's class"),
    ("key", "Key account"),
    ("standard", "Standard"),
    ("wholesale", "Wholesale"),
    ("new", "New customer"),
]
COUNTERPARTY_LABELS = {"vendor": "Vendor", "customer": "Customer"}
DETAIL_LABELS = {
    "destination_site": "Destination site",
    "product": "Product",
    "unit_price": "Requested unit price",
    "floor_price": "Floor price",
    "credit_limit": "Credit limit",
    "exposure": "Exposure if approved",
    "carrier": "Carrier",
}
DETAIL_HELP = {
    "floor_price": "The lowest price the price list allows for this product.",
    "exposure": "What the customer would owe in all, this order included.",
    "carrier": "Who carries it, and how fast (e.g. DHL Express, next morning).",
}
KIND_INTRO = {
    RequestKind.PURCHASE: "Buy from a vendor: list what you order and why it cannot wait.",
    RequestKind.TRANSFER: "Move stock to another site: list the products and quantities.",
    RequestKind.WRITE_OFF: "Write stock off (damaged, expired, lost): list what goes.",
    RequestKind.PRICE_OVERRIDE: "Sell below the price list to a customer.",
    RequestKind.CREDIT_EXCEPTION: "Let a customer order beyond their credit limit.",
    RequestKind.RETURN_AUTHORIZATION: "Take goods back from a customer: list what comes back.",
    RequestKind.EXPEDITED_FREIGHT: "Pay for faster transport than the standard service.",
}
REFS = {"product": r"^product\.product,\d+$", "partner": r"^res\.partner,\d+$"}


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; each is checked by its content in the form's clean."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": uploads.ACCEPT}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


def _money_field(label: str, **extra) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        max_digits=MONEY["max_digits"],
        decimal_places=MONEY["decimal_places"],
        min_value=Decimal(0),
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal"}),
        **extra,
    )


class LineForm(forms.Form):
    """One product line: what, how many, at what unit price."""

    product = forms.CharField(
        label="Product",
        max_length=200,
        widget=forms.TextInput(attrs={"data-search": "products", "autocomplete": "off"}),
    )
    product_ref = forms.RegexField(regex=REFS["product"], required=False, widget=forms.HiddenInput)
    uom = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    quantity = forms.DecimalField(
        label="Quantity",
        max_digits=12,
        decimal_places=3,
        min_value=Decimal("0.001"),
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "inputmode": "decimal"}),
    )
    unit_price = _money_field("Unit price")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].error_messages["required"] = "Name the product."
        self.fields["quantity"].error_messages["required"] = "Give the quantity."
        self.fields["unit_price"].error_messages["required"] = "Give the unit price."
        self.fields["product_ref"].error_messages["invalid"] = "Choose the product again."

    def line(self) -> dict:
        """The line in the shared shape: strings, with the subtotal worked out."""
        data = self.cleaned_data
        subtotal = (data["quantity"] * data["unit_price"]).quantize(CENT)
        line = {
            "product": data["product"].strip(),
            "quantity": _plain(data["quantity"]),
            "unit_price": str(data["unit_price"].quantize(CENT)),
            "subtotal": str(subtotal),
        }
        for optional in ("product_ref", "uom"):
            if data.get(optional):
                line[optional] = data[optional]
        return line


class BaseLineFormSet(forms.BaseFormSet):
    """Every row may be left empty (it is then ignored), so a blank row never blocks a save."""

    def initial_form_count(self):
        return 0

    def lines(self) -> list[dict]:
        return [form.line() for form in self.forms if form.has_changed() and form.is_valid()]


LineFormSet = forms.formset_factory(
    LineForm,
    formset=BaseLineFormSet,
    extra=0,
    max_num=MAX_LINES,
    absolute_max=MAX_LINES,
    validate_max=True,
)


def line_formset(kind: str, *, data=None, lines=()) -> BaseLineFormSet | None:
    """The line rows of a kind that has them: the saved lines, or one empty row to start."""
    if not KINDS[kind].line_items:
        return None
    formset = LineFormSet(data, prefix="lines", initial=list(lines) or None)
    formset.extra = max(1, len(lines))
    return formset


def currency_choices() -> list[tuple[str, str]]:
    """The base currency, those with a rate, and those of the sites (one query each)."""
    codes = {settings.TOLLGATE_BASE_CURRENCY}
    codes |= set(CurrencyRate.objects.values_list("currency", flat=True).distinct())
    codes |= set(Site.objects.values_list("currency", flat=True).distinct())
    return [(code, code) for code in sorted(codes)]


class RequestForm(forms.Form):
    """What the kind needs; `fixed` names fields shown but not changeable (a resubmission)."""

    site = forms.ModelChoiceField(queryset=Site.objects.none(), label="Site", empty_label=None)
    title = forms.CharField(
        label="Title",
        max_length=200,
        help_text="One line that says what this is; approvers see it in their inbox.",
    )
    amount = _money_field("Amount", required=False)
    currency = forms.ChoiceField(label="Currency")
    reason = forms.CharField(
        label="Justification",
        max_length=8000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Why it is needed, and why now. Approvers decide on this.",
    )
    attachments = MultipleFileField(
        label="Add files (optional)",
        required=False,
        help_text=f"PDFs and photos (PNG, JPEG, WebP), each up to {uploads.describe_limit()}.",
    )

    def __init__(self, *args, kind: str, sites, fixed=(), lines=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.spec = KINDS[kind]
        self.lines_formset = lines
        self.sites = sites = list(sites)
        self.fields["site"].queryset = Site.objects.filter(
            pk__in=[site.pk for site in sites]
        ).select_related("region")
        choices = [(site.pk, f"{site.code} · {site.name}") for site in sites]
        self.fields["site"].choices = choices if len(sites) == 1 else [("", "Choose the site")]
        if len(sites) != 1:
            self.fields["site"].choices += choices
        self.fields["currency"].choices = currency_choices()
        self._add_kind_fields()
        self._order_fields()
        for name in fixed:
            if name in self.fields:
                self.fields[name].disabled = True
        self._messages()

    def _add_kind_fields(self) -> None:
        spec = self.spec
        if spec.counterparty:
            label = COUNTERPARTY_LABELS[spec.counterparty]
            self.fields["counterparty"] = forms.CharField(
                label=label,
                max_length=200,
                widget=forms.TextInput(
                    attrs={"data-search": spec.counterparty, "autocomplete": "off"}
                ),
                help_text=f"Type part of the name to search Odoo's {label.lower()}s.",
            )
            self.fields["counterparty_ref"] = forms.RegexField(
                regex=REFS["partner"], required=False, widget=forms.HiddenInput
            )
        if spec.needs_category:
            self.fields["category"] = forms.CharField(
                label="Product category",
                max_length=100,
                help_text="As Odoo names it, e.g. All / Goods / Frozen; filled in from the "
                "first product chosen from Odoo.",
            )
        if spec.needs_customer_class:
            self.fields["customer_class"] = forms.ChoiceField(
                label="Customer class", choices=CUSTOMER_CLASSES
            )
        regions = {site.region_id for site in self.sites}
        for name, expected in spec.details.items():
            self.fields[f"detail_{name}"] = _detail_field(name, expected, regions)

    def _order_fields(self) -> None:
        order = ["site", "title", "counterparty", "counterparty_ref"]
        order += [name for name in self.fields if name.startswith("detail_")]
        order += ["category", "customer_class", "amount", "currency", "reason", "attachments"]
        self.order_fields(order)

    def _messages(self) -> None:
        required = {
            "site": "Choose the site.",
            "title": "Give the request a title.",
            "reason": "Say why this is needed.",
            "counterparty": f"Name the {self.spec.counterparty}.",
            "category": "Give the product category.",
            "customer_class": "Choose the customer's class.",
        }
        for name, message in required.items():
            if name in self.fields:
                self.fields[name].error_messages["required"] = message
        self.fields["site"].error_messages["invalid_choice"] = (
            "You may not raise requests at that site; choose one of yours."
        )
        if self.spec.line_items:
            self.fields["amount"].help_text = (
                "With lines, the amount is the sum of their subtotals; "
                "type it only when you list no lines."
            )

    @property
    def detail_fields(self) -> list:
        return [self[name] for name in self.fields if name.startswith("detail_")]

    def clean_currency(self):
        return self.cleaned_data["currency"].upper()

    def clean_attachments(self):
        files = self.cleaned_data.get("attachments") or []
        if len(files) > MAX_FILES:
            raise ValidationError(uploads.too_many(len(files), MAX_FILES))
        errors = []
        for upload in files:
            try:
                uploads.check(upload)
            except ValidationError as error:
                errors.extend(error.messages)
        if errors:
            raise ValidationError(errors)
        return files

    def clean(self):
        data = super().clean()
        lines = self._lines()
        if lines:
            data["amount"] = sum((Decimal(line["subtotal"]) for line in lines), Decimal(0))
        elif data.get("amount") is None and "amount" not in self.errors:
            message = (
                "Give the amount, or list the lines it is made of."
                if self.spec.line_items
                else "Give the amount."
            )
            self.add_error("amount", message)
        data["line_items"] = lines
        return data

    def _lines(self) -> list[dict]:
        formset = self.lines_formset
        if formset is None:
            return []
        if not formset.is_valid():
            # The rows show their own errors; this keeps the form from saving without them.
            self.add_error(None, "Some lines need fixing; see the lines below.")
            return []
        return formset.lines()

    def request_fields(self, *, details: dict | None = None) -> dict:
        """The cleaned values as keyword arguments of approvals.services.request_create."""
        data = self.cleaned_data
        details = dict(details or {})
        for name in self.spec.details:
            value = data.get(f"detail_{name}")
            details[name] = value.code if isinstance(value, Site) else _detail_value(value)
        if self.spec.line_items:
            details["line_items"] = data["line_items"]
            if not data["line_items"]:
                details.pop("line_items")
        fields = {
            "site": data["site"],
            "title": data["title"].strip(),
            "reason": data["reason"].strip(),
            "amount": data["amount"],
            "currency": data["currency"],
            "category": data.get("category", "").strip(),
            "customer_class": data.get("customer_class", ""),
            "details": details,
        }
        if self.spec.counterparty:
            fields["counterparty"] = data["counterparty"].strip()
            fields["counterparty_ref"] = data.get("counterparty_ref", "")
        return fields

    def add_service_errors(self, error: ValidationError) -> None:
        """Show the services' errors next to the fields they name."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error.messages)
            return
        for key, messages in error.message_dict.items():
            name = f"detail_{key.removeprefix('details.')}" if key.startswith("details.") else key
            self.add_error(name if name in self.fields else None, messages)


def initial_from(request) -> dict:
    """A saved request's values as the form's initial data."""
    initial = {
        "site": request.site_id,
        "title": request.title,
        "amount": request.amount,
        "currency": request.currency,
        "reason": request.reason,
        "category": request.category,
        "customer_class": request.customer_class,
        "counterparty": request.counterparty,
        "counterparty_ref": request.counterparty_ref,
    }
    details = request.details or {}
    for name in KINDS[request.kind].details:
        value = details.get(name, "")
        if name == "destination_site":
            value = Site.objects.filter(code=value).values_list("pk", flat=True).first()
        initial[f"detail_{name}"] = value
    return initial


def _detail_field(name: str, expected: type, regions: set[int]) -> forms.Field:
    label = DETAIL_LABELS.get(name, name.replace("_", " ").capitalize())
    help_text = DETAIL_HELP.get(name, "")
    if name == "destination_site":
        # Transfers go between the sites of the requester's own regions; other regions' sites
        # are out of their scope and not named to them.
        field = forms.ModelChoiceField(
            queryset=Site.objects.filter(active=True, region__in=regions).order_by("code"),
            label=label,
            empty_label="Choose the site that receives the stock",
        )
        field.label_from_instance = lambda site: f"{site.code} · {site.name}"
    elif expected is Decimal:
        field = _money_field(label, help_text=help_text)
    else:
        attrs = {"data-search": "products", "autocomplete": "off"} if name == "product" else {}
        field = forms.CharField(
            label=label,
            max_length=200,
            help_text=help_text,
            widget=forms.TextInput(attrs=attrs),
        )
    field.error_messages["required"] = f"{label} is required."
    return field


def _detail_value(value):
    if isinstance(value, Decimal):
        return str(value)
    return value.strip() if isinstance(value, str) else value


def _plain(number: Decimal) -> str:
    """A quantity without trailing zeros: "12", "2.5"."""
    return format(number.normalize(), "f")
