"""From a message's words to an event: a sender's template where one fits, else the general reader.

Each value found is kept with the words it came from, so that a person in triage sees why
Tollgate read what it read. An extraction is only as sure as its weakest part: the template
(or the general reader's signals), every required field found, the document it names known to
Tollgate from Odoo, and a site to raise the event at.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

from portal.integrations.mail.models import EventKind, Purpose, SenderTemplate
from portal.integrations.mail.reading import Letter

K = EventKind


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    required: bool = True


FIELDS: dict[str, list[FieldSpec]] = {
    K.SHIPMENT_DELAYED: [
        FieldSpec("picking_ref", "Shipment (Odoo transfer)"),
        FieldSpec("tracking_number", "Tracking number"),
        FieldSpec("status", "Carrier status"),
        FieldSpec("new_eta", "New delivery date", required=False),
    ],
    K.DELIVERY_FAILED: [
        FieldSpec("picking_ref", "Shipment (Odoo transfer)"),
        FieldSpec("tracking_number", "Tracking number"),
        FieldSpec("status", "Carrier status"),
    ],
    K.SHORT_SHIPMENT: [
        FieldSpec("order_ref", "Purchase order"),
        FieldSpec("product", "Product"),
        FieldSpec("quantity", "Quantity shipped"),
        FieldSpec("ordered_quantity", "Quantity ordered"),
    ],
    K.INVOICE_QUERY: [
        FieldSpec("invoice_ref", "Invoice"),
        FieldSpec("vendor", "Vendor"),
        FieldSpec("amount", "Amount"),
        FieldSpec("currency", "Currency"),
        FieldSpec("order_ref", "Purchase order", required=False),
    ],
}
ALL_FIELDS: dict[str, str] = {s.name: s.label for specs in FIELDS.values() for s in specs}

# What each kind of mailbox may announce.
KINDS_BY_PURPOSE = {
    Purpose.CARRIER: (K.SHIPMENT_DELAYED, K.DELIVERY_FAILED),
    Purpose.SUPPLIER: (K.SHORT_SHIPMENT,),
    Purpose.ACCOUNTS_PAYABLE: (K.INVOICE_QUERY,),
}
DEFAULT_STATUS = {K.SHIPMENT_DELAYED: "delayed", K.DELIVERY_FAILED: "delivery failed"}


@dataclass(frozen=True)
class Found:
    value: str
    text: str  # the words it was read from


@dataclass
class Extraction:
    kind: str = ""
    fields: dict[str, Found] = field(default_factory=dict)
    confidence: Decimal = Decimal("0")
    template: SenderTemplate | None = None
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "fields": {n: {"value": f.value, "text": f.text} for n, f in self.fields.items()},
            "confidence": str(self.confidence),
            "template": self.template.name if self.template else "",
            "reasons": self.reasons,
        }

    def missing(self) -> list[str]:
        specs = FIELDS.get(self.kind, [])
        return [s.label for s in specs if s.required and s.name not in self.fields]


# --- the general reader's patterns ------------------------------------------------------------

PICKING = re.compile(r"\b[A-Z][A-Z0-9]{0,5}/(?:OUT|IN|INT|PICK|PACK|RET)/\d{3,6}\b")
ORDER = re.compile(r"\bP(?:O)?\d{4,6}\b")
INVOICE = re.compile(
    r"\b(?:INV|BILL|RE|FA)[-/](?:\d{2,4}[-/])?\d{3,8}\b|"
    r"(?:invoice|rechnung|facture|factuur)\s*(?:no\.?|number|nr\.?|n°|#)?\s*:?\s*([A-Z0-9][\w/-]{3,30})",
    re.IGNORECASE,
)
TRACKING = re.compile(
    r"(?:tracking(?:\s*(?:no\.?|number|#|id))?|sendungsnummer|numéro de suivi|"
    r"n° de suivi|zendingnummer|track\s*&\s*trace)\s*:?\s*([A-Z0-9]{8,30})\b|"
    r"\b(1Z[0-9A-Z]{16}|JJD\d{12,20})\b",
    re.IGNORECASE,
)
ETA = re.compile(
    r"(?:new (?:delivery |estimated )?(?:date|eta)|expected (?:delivery|on)|now expected|"
    r"rescheduled (?:to|for)|neuer (?:liefertermin|zustelltermin)|voraussichtlich(?:e zustellung)?|"
    r"nouvelle date(?: de livraison)?|nieuwe leverdatum)\s*:?\s*(?:on\s+)?([^\n]{6,40})",
    re.IGNORECASE,
)
QUANTITIES = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(?:units?|pcs|pieces|stück|stk|pièces|stuks|x)?\s*"
    r"(?:of|out of|instead of|statt|anstatt|von|au lieu de|sur|in plaats van)\s+"
    r"(?:the\s+)?(\d+(?:[.,]\d+)?)",
    re.IGNORECASE,
)
PRODUCT = re.compile(
    r"(?:product|article|item|artikel|sku|produit)\s*:?\s*([^\n,;()]{2,80}?)(?=\s*(?:[,;(\n]|$|:\s))",
    re.IGNORECASE,
)
AMOUNT = re.compile(
    r"(EUR|USD|GBP|SEK|NOK|DKK|€|£|\$)\s?(\d{1,3}(?:[.,' ]\d{3})*(?:[.,]\d{2})?|\d+(?:[.,]\d{2})?)"
    r"|(\d{1,3}(?:[.,' ]\d{3})*(?:[.,]\d{2})|\d+(?:[.,]\d{2}))\s?(EUR|USD|GBP|SEK|NOK|DKK|€|£)",
)
CURRENCY_SIGNS = {"€": "EUR", "£": "GBP", "$": "USD"}

KEYWORDS = {
    K.DELIVERY_FAILED: re.compile(
        r"deliver\w* (?:attempt )?(?:failed|unsuccessful|was not possible)|could not be delivered|"
        r"failed delivery|undeliverable|zustellung (?:nicht möglich|fehlgeschlagen)|"
        r"nicht zugestellt|échec de (?:la )?livraison|n'a pas pu être livré|niet bezorgd",
        re.IGNORECASE,
    ),
    K.SHIPMENT_DELAYED: re.compile(
        r"\bdelay(?:ed|s)?\b|\blate\b|verspät|verzöger|\bretard|vertraag",
        re.IGNORECASE,
    ),
    K.SHORT_SHIPMENT: re.compile(
        r"short[- ]?ship|partial (?:shipment|delivery)|backorder|only (?:able to )?ship|"
        r"teillieferung|livraison partielle|deellevering|cannot ship the full",
        re.IGNORECASE,
    ),
    K.INVOICE_QUERY: re.compile(
        r"(?:invoice|rechnung|facture|factuur).{0,120}(?:unpaid|overdue|outstanding|short[- ]?paid|"
        r"dispute|query|question|not (?:yet )?(?:been )?paid|remittance|offen|impayée)|"
        r"(?:unpaid|overdue|outstanding|short[- ]?paid|payment reminder|zahlungserinnerung|"
        r"relance).{0,120}(?:invoice|rechnung|facture|factuur)",
        re.IGNORECASE | re.DOTALL,
    ),
}

QUOTED_ONLY = "Only the quoted earlier messages mention an event; the new text does not."
NOTHING_FOUND = "No delay, failed delivery, short shipment or invoice query found."
GENERAL_KIND = Decimal("0.35")
GENERAL_FIELDS = Decimal("0.35")
KNOWN_DOCUMENT = Decimal("0.15")
SITE_KNOWN = Decimal("0.05")


def extract(letter: Letter, *, purpose: str, templates: list[SenderTemplate]) -> Extraction:
    """What `letter` announces, as its sender's template or the general reader sees it."""
    for template in templates:
        if template.purpose == purpose and _fits(template, letter):
            return _by_template(template, letter)
    return _general(letter, purpose)


def _fits(template: SenderTemplate, letter: Letter) -> bool:
    try:
        if not re.search(template.sender_pattern, letter.sender, re.IGNORECASE):
            return False
        subject = template.subject_pattern
        return not subject or bool(re.search(subject, letter.subject, re.IGNORECASE))
    except re.error:
        return False


def _by_template(template: SenderTemplate, letter: Letter) -> Extraction:
    text = f"{letter.subject}\n{letter.new_text}"
    found = {}
    for name, pattern in (template.field_patterns or {}).items():
        try:
            match = re.search(pattern, text, re.IGNORECASE | re.MULTILINE)
        except re.error:
            continue
        if match:
            value = next((g for g in match.groups() if g), match.group(0))
            found[name] = Found(value.strip(), _snippet(text, match))
    extraction = Extraction(kind=template.event_kind, fields=found, template=template)
    _fill_defaults(extraction, letter)
    missing = extraction.missing()
    if missing:
        share = Decimal(len(FIELDS[extraction.kind]) - len(missing)) / len(FIELDS[extraction.kind])
        extraction.confidence = (template.confidence * share).quantize(Decimal("0.01"))
        extraction.reasons.append(f"The {template.name} template found no {_and(missing)}.")
    else:
        extraction.confidence = template.confidence
    return extraction


# A reply's subject repeats what it answers: it says nothing new.
REPLY = re.compile(r"^\s*(?:re|aw|sv|antw|vs)\s*:", re.IGNORECASE)


def _general(letter: Letter, purpose: str) -> Extraction:
    subject = "" if REPLY.match(letter.subject) else letter.subject
    new_text = f"{subject}\n{letter.new_text}"
    kind = _kind(new_text, purpose)
    if not kind:
        if letter.quoted_text and _kind(f"{letter.subject}\n{letter.quoted_text}", purpose):
            return Extraction(reasons=[QUOTED_ONLY])
        return Extraction(reasons=[NOTHING_FOUND])
    extraction = Extraction(kind=kind, fields=_general_fields(kind, new_text, letter))
    _fill_defaults(extraction, letter)
    specs = [s for s in FIELDS[kind] if s.required]
    share = Decimal(sum(1 for s in specs if s.name in extraction.fields)) / len(specs)
    extraction.confidence = GENERAL_KIND + GENERAL_FIELDS * share
    missing = extraction.missing()
    if missing:
        extraction.reasons.append(f"No {_and(missing)} found.")
    extraction.reasons.insert(0, "No sender template fits; read by the general reader.")
    return extraction


def _kind(text: str, purpose: str) -> str:
    for kind in KINDS_BY_PURPOSE.get(purpose, ()):
        if KEYWORDS[kind].search(text):
            return kind
    return ""


def _general_fields(kind: str, text: str, letter: Letter) -> dict[str, Found]:
    found: dict[str, Found] = {}

    def take(name: str, pattern: re.Pattern, group: int | None = None) -> re.Match | None:
        match = pattern.search(text)
        if match:
            value = match.group(group) if group else next((g for g in match.groups() if g), None)
            found[name] = Found((value or match.group(0)).strip(), _snippet(text, match))
        return match

    if kind in (K.SHIPMENT_DELAYED, K.DELIVERY_FAILED):
        take("picking_ref", PICKING, 0)
        take("tracking_number", TRACKING)
        if kind == K.SHIPMENT_DELAYED:
            match = ETA.search(text)
            when = parse_day(match.group(1)) if match else None
            if when:
                found["new_eta"] = Found(when.isoformat(), _snippet(text, match))
    elif kind == K.SHORT_SHIPMENT:
        take("order_ref", ORDER, 0)
        take("product", PRODUCT, 1)
        match = QUANTITIES.search(text)
        if match:
            snippet = _snippet(text, match)
            found["quantity"] = Found(_number(match.group(1)), snippet)
            found["ordered_quantity"] = Found(_number(match.group(2)), snippet)
    elif kind == K.INVOICE_QUERY:
        take("invoice_ref", INVOICE)
        take("order_ref", ORDER, 0)
        match = AMOUNT.search(text)
        if match:
            sign = match.group(1) or match.group(4)
            snippet = _snippet(text, match)
            found["amount"] = Found(_amount(match.group(2) or match.group(3)), snippet)
            found["currency"] = Found(CURRENCY_SIGNS.get(sign, sign), snippet)
    return found


def _fill_defaults(extraction: Extraction, letter: Letter) -> None:
    """Values a mail rarely states because they go without saying."""
    status = DEFAULT_STATUS.get(extraction.kind)
    if status and "status" not in extraction.fields:
        extraction.fields["status"] = Found(status, letter.subject)
    vendor_missing = "vendor" not in extraction.fields
    if extraction.kind == K.INVOICE_QUERY and vendor_missing and letter.sender_name:
        extraction.fields["vendor"] = Found(letter.sender_name, f"From: {letter.sender_name}")
    if "new_eta" in extraction.fields:
        when = parse_day(extraction.fields["new_eta"].value)
        if when is None:
            extraction.fields.pop("new_eta")
        else:
            old = extraction.fields["new_eta"]
            extraction.fields["new_eta"] = Found(when.isoformat(), old.text)
    for name in ("quantity", "ordered_quantity"):
        if name in extraction.fields:
            old = extraction.fields[name]
            extraction.fields[name] = Found(_number(old.value), old.text)


def adjust(extraction: Extraction, *, known: bool, site_known: bool, reference: str) -> None:
    """Weigh what Tollgate knows: a document it has seen from Odoo, a site to raise it at."""
    if not extraction.kind:
        return
    if extraction.template is None:
        extraction.confidence += KNOWN_DOCUMENT if known else 0
        extraction.confidence += SITE_KNOWN if site_known else 0
    if reference and not known:
        extraction.reasons.append(f"{reference} is not a document Tollgate has seen from Odoo.")
    if not site_known:
        extraction.reasons.append("No site: neither the mailbox nor the documents named say which.")
    extraction.confidence = min(extraction.confidence, Decimal("1")).quantize(Decimal("0.01"))


# --- values -----------------------------------------------------------------------------------

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "januar", "janvier", "januari"),
            ("feb", "februar", "février", "fevrier", "februari"),
            ("mar", "märz", "maerz", "mars", "maart"),
            ("apr", "april", "avril"),
            ("may", "mai", "mei"),
            ("jun", "juni", "juin"),
            ("jul", "juli", "juillet"),
            ("aug", "august", "août", "aout", "augustus"),
            ("sep", "sept", "september", "septembre"),
            ("oct", "oktober", "octobre"),
            ("nov", "november", "novembre"),
            ("dec", "dez", "dezember", "décembre", "decembre", "december"),
        ],
        start=1,
    )
    for name in names
}
_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_NUMERIC_DAY = re.compile(r"(\d{1,2})[./](\d{1,2})[./](\d{4})")
_WORD_DAY = re.compile(r"(\d{1,2})\.?\s+([A-Za-zäéû]+)\.?\s+(\d{4})")
_MONTH_FIRST = re.compile(r"([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})")


def parse_day(text: str) -> date | None:
    """A calendar day written the ways European mails write them; None when there is none."""
    text = text.strip()
    for pattern, order in (
        (_ISO_DAY, "ymd"),
        (_NUMERIC_DAY, "dmy"),
        (_WORD_DAY, "dMy"),
        (_MONTH_FIRST, "Mdy"),
    ):
        match = pattern.search(text)
        if not match:
            continue
        parts = dict(zip(order, match.groups(), strict=True))
        month = (
            parts.get("m")
            or MONTHS.get(str(parts.get("M", "")).lower()[:9])
            or MONTHS.get(str(parts.get("M", "")).lower()[:3])
        )
        try:
            return date(int(parts["y"]), int(month), int(parts["d"]))
        except (TypeError, ValueError):
            continue
    return None


def day_as_time(day: date) -> str:
    """A delivery day as the ISO time a carrier event carries (noon UTC of that day)."""
    return datetime.combine(day, time(12, 0), tzinfo=UTC).isoformat()


def _number(text: str) -> str:
    try:
        return format(Decimal(text.replace(",", ".")).normalize(), "f")
    except InvalidOperation:
        return text


def _amount(text: str) -> str:
    digits = re.sub(r"[ ']", "", text)
    if re.search(r"[.,]\d{2}$", digits):
        whole, cents = digits[:-3], digits[-2:]
        digits = re.sub(r"[.,]", "", whole) + "." + cents
    else:
        digits = re.sub(r"[.,]", "", digits)
    return digits


def _snippet(text: str, match: re.Match, around: int = 40) -> str:
    start = text.rfind("\n", 0, match.start()) + 1
    start = max(start, match.start() - around)
    end = text.find("\n", match.end())
    end = min(end if end != -1 else len(text), match.end() + around)
    return " ".join(text[start:end].split())


def _and(labels: list[str]) -> str:
    labels = [label.lower() for label in labels]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]
