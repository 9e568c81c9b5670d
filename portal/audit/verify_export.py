#!/usr/bin/env python3
"""Check an audit export from Tollgate against its signed manifest, without Tollgate.

Usage:  python3 -I verify_export.py MANIFEST [--public-key KEY ...]
        python3 -I verify_export.py DATA MANIFEST [--public-key KEY ...]

With only the manifest, every data file it lists (next to it) is checked; with DATA, that one
file. KEY is the installation's public key as `/.well-known/tollgate-audit-key` publishes it:
the base64 text of the raw key, a file holding that JSON document (its current and previous
keys are all accepted), a PEM public key file, or base64 text in a file. Repeat it to accept
several keys.

Needs only Python 3.11's standard library, so an auditor can run it on any machine. It checks

* the manifest's Ed25519 signature, when given the public key (RFC 8032, implemented below,
  since the standard library has none): the manifest, and so every hash in it, was written by
  the installation holding that key;
* the SHA-256 of each data file against the manifest;
* every row: its fields, put in the canonical form, hash to the row's `hash`;
* the row count and the first and last sequence and hash against the manifest;
* rows in increasing sequence order; wherever two rows are consecutive events, the later one's
  `prev_hash` is the earlier one's `hash`;
* for a manifest with `full_range` true, also that the rows are events 1, 2, 3, … with none
  missing and the first linked to the start of the ledger (`prev_hash` "").

Canonical form (version 1), kept in step with portal/audit/chain.py (a test compares them): a
JSON object with exactly the keys in FIELDS below, serialised with keys sorted, separators ","
and ":", non-ASCII characters kept, encoded as UTF-8; the hash is its SHA-256 in lower-case hex.
The manifest's signature covers the manifest without its `signature` key, in the same form.

Data files (see portal/audit/export.py): JSON Lines holds one canonical object per line plus
the key "hash" and the name columns (NAME_COLUMNS, read from the people and sites tables when
exported, so not covered by the hash). CSV (UTF-8, RFC 4180) has a header row naming FIELDS,
"hash" and the name columns; `sequence` is an integer, `actor_id`, `on_behalf_of_id` and
`site_id` are integers or empty for null, `before`, `after` and `context` are JSON text, every
other column is the text itself. When the manifest names a `csv_escaping` rule, text cells that
a spreadsheet would run as a formula carry one extra leading "'" (see `restore`).

Exit status: 0 verified, 1 rejected (the verdict names the first bad row by its sequence, or
what is wrong with the signature), 2 usage error (missing file, unreadable manifest or key,
unknown format or version).
"""

import base64
import binascii
import csv
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

CANONICAL_VERSION = 1
FIELDS = (
    "sequence",
    "at",
    "action",
    "actor_id",
    "actor",
    "on_behalf_of_id",
    "object_type",
    "object_id",
    "object_reference",
    "site_id",
    "policy_version",
    "before",
    "after",
    "comment",
    "context",
    "prev_hash",
)
COLUMNS = (*FIELDS, "hash")
# Names beside the ids, for people reading the file; not part of what the hashes cover.
NAME_COLUMNS = (
    "actor_username",
    "actor_name",
    "on_behalf_of_username",
    "on_behalf_of_name",
    "site_code",
    "site_name",
)
OPTIONAL_INTEGERS = frozenset({"actor_id", "on_behalf_of_id", "site_id"})
JSON_VALUED = frozenset({"before", "after", "context"})
GENESIS = ""
MANIFEST_KEYS = (
    "canonical_version",
    "row_count",
    "first_sequence",
    "first_hash",
    "last_sequence",
    "last_hash",
    "full_range",
)
SIGNATURE_ALGORITHM = "Ed25519"
_INTEGER = re.compile(r"[0-9]+")
_READ_SIZE = 1 << 20


class UsageError(Exception):
    """The files cannot be checked at all (exit status 2)."""


class BadRow(Exception):
    """A row that cannot even be read back into fields."""


# --- Ed25519 signature verification (RFC 8032, section 5.1) --------------------------------
# Points are kept in extended homogeneous coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z and
# x * y = T/Z (section 5.1.4). Only verification is needed here: nothing secret is handled, so
# plain Python integers (not constant-time) are fine.

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_MINUS_ONE = pow(2, (_P - 1) // 4, _P)


def _point_add(first: tuple, second: tuple) -> tuple:
    """Section 5.1.4: addition on the twisted Edwards curve, complete for every pair."""
    x1, y1, z1, t1 = first
    x2, y2, z2, t2 = second
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = 2 * t1 * t2 * _D % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _scalar_multiply(scalar: int, point: tuple) -> tuple:
    result = (0, 1, 1, 0)  # the neutral element
    while scalar:
        if scalar & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        scalar >>= 1
    return result


def _same_point(first: tuple, second: tuple) -> bool:
    x1, y1, z1, _ = first
    x2, y2, z2, _ = second
    return (x1 * z2 - x2 * z1) % _P == 0 and (y1 * z2 - y2 * z1) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    """Section 5.1.3, steps 2-4: the x with this sign bit on the curve at y; None if none."""
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x2 = u * pow(v, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_MINUS_ONE % _P
    if (x * x - x2) % _P != 0:
        return None
    if x & 1 != sign:
        x = _P - x
    return x


def _decode_point(encoded: bytes) -> tuple | None:
    """Section 5.1.3: a 32-byte encoding to a point; None when it encodes none."""
    if len(encoded) != 32:
        return None
    number = int.from_bytes(encoded, "little")
    sign, y = number >> 255, number & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


_BASE = _decode_point((4 * pow(5, _P - 2, _P) % _P).to_bytes(32, "little"))  # y = 4/5, x even


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Section 5.1.7: whether `signature` is `public_key`'s signature of `message`."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    point_a = _decode_point(public_key)
    point_r = _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if point_a is None or point_r is None or s >= _L:
        return False
    digest = hashlib.sha512(signature[:32] + public_key + message).digest()
    k = int.from_bytes(digest, "little") % _L
    left = _scalar_multiply(8 * s, _BASE)
    right = _scalar_multiply(8, _point_add(point_r, _scalar_multiply(k, point_a)))
    return _same_point(left, right)


# --- public keys ---------------------------------------------------------------------------

# DER of an Ed25519 SubjectPublicKeyInfo (RFC 8410) before the 32 key bytes.
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def key_id(public_key: bytes) -> str:
    """How Tollgate names a key: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def _raw_key(text: str) -> bytes | None:
    text = text.strip()
    try:
        if re.fullmatch(r"[0-9a-fA-F]{64}", text):
            raw = bytes.fromhex(text)
        else:
            raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) == len(_SPKI_PREFIX) + 32 and raw.startswith(_SPKI_PREFIX):
        raw = raw[len(_SPKI_PREFIX) :]
    return raw if len(raw) == 32 else None


def _keys_in_text(text: str) -> list[bytes]:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except ValueError:
            return []
        entries = [document.get("current") or {}, *(document.get("previous") or [])]
        keys = [_raw_key(str(entry.get("public_key", ""))) for entry in entries]
        return [key for key in keys if key]
    if "-----BEGIN PUBLIC KEY-----" in stripped:
        body = stripped.split("-----BEGIN PUBLIC KEY-----", 1)[1].split("-----END", 1)[0]
        stripped = "".join(body.split())
    key = _raw_key(stripped)
    return [key] if key else []


def load_public_keys(values: list[str]) -> dict[str, bytes]:
    """Key id → raw key for each --public-key value (text or a file holding it)."""
    keys: dict[str, bytes] = {}
    for value in values:
        text = value
        if len(value) < 1024 and Path(value).is_file():
            text = Path(value).read_text(encoding="utf-8", errors="replace")
        found = _keys_in_text(text)
        if not found:
            raise UsageError(
                f"{value[:60]!r} is not an Ed25519 public key (base64, PEM or Tollgate's "
                "published key document)"
            )
        keys.update((key_id(key), key) for key in found)
    return keys


# --- rows ------------------------------------------------------------------------------------

# The spreadsheet escaping rule, copied from portal/core/spreadsheet.py (a test compares them).
CSV_ESCAPE = "'"
CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")


def restore(cell: str) -> str:
    """A CSV cell as it was before a leading "'" made a spreadsheet read it as text."""
    if len(cell) >= 2 and cell[0] == CSV_ESCAPE and cell[1] in CSV_TRIGGERS:
        return cell[1:]
    return cell


def canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(fields: dict) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(_READ_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def jsonl_rows(path: Path, escaped: bool = False) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each line of a JSON Lines file (never escaped)."""
    with path.open(encoding="utf-8", newline="\n") as data:
        for number, line in enumerate(data, start=1):
            try:
                row = json.loads(line)
            except ValueError as error:
                raise BadRow(f"line {number} is not JSON ({error})") from None
            if not isinstance(row, dict):
                raise BadRow(f"line {number} is not a JSON object")
            yield number, row


def csv_rows(path: Path, escaped: bool = False) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each record of a CSV file, cells decoded to their JSON values."""
    with path.open(encoding="utf-8", newline="") as data:
        reader = csv.reader(data)
        header = next(reader, None) or []
        if len(set(header)) != len(header) or not set(COLUMNS) <= set(header) <= _KNOWN:
            raise BadRow(
                f"the header is not the columns {', '.join(COLUMNS)} (and names beside the ids)"
            )
        for record in reader:
            number = reader.line_num
            if len(record) != len(header):
                raise BadRow(f"line {number} has {len(record)} cells, not {len(header)}")
            if escaped:
                record = [restore(cell) for cell in record]
            cells = zip(header, record, strict=True)
            yield number, {name: _cell(name, cell, number) for name, cell in cells}


_KNOWN = frozenset(COLUMNS) | frozenset(NAME_COLUMNS)


def _cell(name: str, cell: str, number: int):
    if name == "sequence" or (name in OPTIONAL_INTEGERS and cell != ""):
        if not _INTEGER.fullmatch(cell):
            raise BadRow(f"line {number}: {name} {cell!r} is not an integer")
        return int(cell)
    if name in OPTIONAL_INTEGERS:
        return None
    if name in JSON_VALUED:
        try:
            return json.loads(cell)
        except ValueError:
            raise BadRow(f"line {number}: {name} is not JSON text") from None
    return cell


READERS = {"csv": csv_rows, "jsonl": jsonl_rows}


class Check:
    """Walks the rows once, stopping at the first bad one."""

    def __init__(self, manifest: dict):
        self.full_range = manifest["full_range"] is True
        self.count = 0
        self.first: tuple[int, str] | None = None
        self.last: tuple[int, str] | None = None

    def row(self, number: int, row: dict) -> str:
        """What is wrong with this row, '' if nothing."""
        if not set(COLUMNS) <= set(row) <= _KNOWN:
            return f"line {number} does not have exactly the fields {', '.join(COLUMNS)}"
        sequence, stored_hash = row["sequence"], row["hash"]
        if type(sequence) is not int:
            return f"line {number}: sequence {sequence!r} is not an integer"
        where = f"row with sequence {sequence} (line {number})"
        fields = {name: row[name] for name in FIELDS}
        if seal(fields) != stored_hash:
            return f"{where}: its fields do not match its hash — the row was changed"
        problem = self._placement(sequence, row["prev_hash"])
        if problem:
            return f"{where}: {problem}"
        self.count += 1
        self.first = self.first or (sequence, stored_hash)
        self.last = (sequence, stored_hash)
        return ""

    def _placement(self, sequence: int, prev_hash: str) -> str:
        previous = self.last
        if self.full_range:
            expected = previous[0] + 1 if previous else 1
            if sequence != expected:
                return f"expected event #{expected} here — events are missing or out of order"
            if previous is None and prev_hash != GENESIS:
                return "the first event of a full range must start the chain (prev_hash empty)"
        if previous is not None and sequence <= previous[0]:
            return f"it comes after sequence {previous[0]} — rows out of order or repeated"
        if previous is not None and sequence == previous[0] + 1 and prev_hash != previous[1]:
            return f"its prev_hash is not the hash of event #{previous[0]} — the chain is broken"
        return ""

    def totals(self, manifest: dict) -> list[str]:
        """Disagreements between the rows read and the manifest's counts."""
        found = {
            "row_count": self.count,
            "first_sequence": self.first[0] if self.first else None,
            "first_hash": self.first[1] if self.first else None,
            "last_sequence": self.last[0] if self.last else None,
            "last_hash": self.last[1] if self.last else None,
        }
        return [
            f"the manifest says {key} {manifest[key]!r}, the data has {value!r}"
            for key, value in found.items()
            if manifest[key] != value
        ]


# --- the manifest ----------------------------------------------------------------------------


def data_files(manifest: dict) -> list[dict]:
    """The data files the manifest describes: name, format, sha256 (and csv_escaping)."""
    if isinstance(manifest.get("files"), list):
        return manifest["files"]
    if "format" in manifest and "data_sha256" in manifest:  # a one-file manifest
        name = manifest.get("data_file", "")
        return [{"name": name, "format": manifest["format"], "sha256": manifest["data_sha256"]}]
    raise UsageError("the manifest lists no data files")


def load_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the manifest {path}: {error}") from None
    if not isinstance(manifest, dict):
        raise UsageError(f"the manifest {path} is not a JSON object")
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise UsageError(f"the manifest {path} lacks {', '.join(missing)}")
    if manifest["canonical_version"] != CANONICAL_VERSION:
        raise UsageError(
            f"canonical version {manifest['canonical_version']!r} is not {CANONICAL_VERSION}, "
            "the one this verifier implements"
        )
    for entry in data_files(manifest):
        if not isinstance(entry, dict) or entry.get("format") not in READERS:
            raise UsageError(f"a data file's format is not one of {', '.join(READERS)}")
    return manifest


def signed_bytes(manifest: dict) -> bytes:
    """What the signature covers: the manifest without its signature, in canonical form."""
    return canonical({key: value for key, value in manifest.items() if key != "signature"})


def signature_problem(manifest: dict, keys: dict[str, bytes]) -> str:
    """Why the manifest's signature is not good for `keys`; '' when it is."""
    signature = manifest.get("signature")
    if not isinstance(signature, dict):
        return "the manifest is not signed"
    if signature.get("algorithm") != SIGNATURE_ALGORITHM:
        return f"the manifest is signed with {signature.get('algorithm')!r}, not Ed25519"
    signer = str(signature.get("key_id", ""))
    if signer not in keys:
        return (
            f"the manifest is signed by key {signer}, which is not among the keys given "
            f"({', '.join(sorted(keys))})"
        )
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
    except (binascii.Error, ValueError):
        value = b""
    if not ed25519_verify(keys[signer], signed_bytes(manifest), value):
        return (
            f"the manifest's signature does not verify with key {signer} — the manifest "
            "was changed after it was signed, or signed by another key"
        )
    return ""


def _check_file(data: Path, entry: dict, manifest: dict) -> tuple[Check, list[str]]:
    problems = []
    digest = file_sha256(data)
    if digest != entry.get("sha256"):
        problems.append(f"the data file's SHA-256 is {digest}, the manifest says {entry['sha256']}")
    check = Check(manifest)
    row_problem = ""
    escaped = entry["format"] == "csv" and bool(entry.get("csv_escaping"))
    try:
        for number, row in READERS[entry["format"]](data, escaped):
            row_problem = check.row(number, row)
            if row_problem:
                break
    except (BadRow, UnicodeDecodeError, csv.Error) as error:
        row_problem = f"{error} (after {check.count} good rows)"
    if row_problem:
        problems.insert(0, f"first bad row: {row_problem}")
    else:
        problems.extend(check.totals(manifest))
    return check, problems


def _entry_for(data: Path, entries: list[dict]) -> dict:
    named = [entry for entry in entries if entry.get("name") == data.name]
    if named:
        return named[0]
    if len(entries) == 1:
        return entries[0]
    raise UsageError(f"the manifest does not describe a data file named {data.name}")


def verify(
    data: Path | None, manifest_path: Path, public_keys: dict[str, bytes] | None = None
) -> tuple[bool, list[str]]:
    """(verified, lines of the verdict). `data` None: every file the manifest lists."""
    manifest = load_manifest(manifest_path)
    entries = data_files(manifest)
    if data is None:
        targets = [(manifest_path.parent / Path(str(e.get("name", ""))).name, e) for e in entries]
    else:
        targets = [(data, _entry_for(data, entries))]
    for path, _ in targets:
        if not path.is_file():
            raise UsageError(f"no data file {path}")
    lines, verified = [], True
    if public_keys and (problem := signature_problem(manifest, public_keys)):
        return False, [f"REJECTED {manifest_path}:", f"  - {problem}"]
    for path, entry in targets:
        check, problems = _check_file(path, entry, manifest)
        if problems:
            verified = False
            lines += [f"REJECTED {path}:", *(f"  - {problem}" for problem in problems)]
        else:
            lines.append(_verified_line(path, check))
    if verified:
        lines += _signature_lines(manifest, public_keys) + _checkpoint_lines(manifest)
    return verified, lines


def _verified_line(path: Path, check: Check) -> str:
    span = f"sequences {check.first[0]}–{check.last[0]}" if check.first else "no events"
    chain = (
        "chain linked from its start, no event missing"
        if check.full_range
        else "a subset: each row checked on its own, links checked between consecutive events"
    )
    return (
        f"VERIFIED {path}: {check.count} rows, {span}; SHA-256 matches the manifest; "
        f"every row's hash recomputes; {chain}."
    )


def _signature_lines(manifest: dict, public_keys: dict[str, bytes] | None) -> list[str]:
    if public_keys:
        signer = manifest["signature"]["key_id"]
        return [f"  The manifest is signed by the installation's key {signer} (Ed25519)."]
    return [
        "  The manifest's signature was NOT checked: run again with --public-key, using the key "
        "published at the installation's /.well-known/tollgate-audit-key."
    ]


def _checkpoint_lines(manifest: dict) -> list[str]:
    checkpoint = manifest.get("checkpoint")
    if not isinstance(checkpoint, dict):
        return ["  The manifest names no checkpoint of the ledger."]
    lines = [
        f"  The ledger's latest checkpoint when exported: event #{checkpoint.get('sequence')} "
        f"at {checkpoint.get('at')}, head hash {checkpoint.get('hash')}; compare it with the "
        "copy kept outside Tollgate."
    ]
    last, sequence = manifest.get("last_sequence"), checkpoint.get("sequence")
    if isinstance(last, int) and isinstance(sequence, int):
        lines.append(
            "  Every event here comes at or before that checkpoint."
            if last <= sequence
            else f"  Events after #{sequence} came after that checkpoint and are not covered by it."
        )
    return lines


def _arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """(positional arguments, --public-key values)."""
    positional, keys = [], []
    items = iter(argv)
    for item in items:
        if item == "--public-key":
            value = next(items, None)
            if value is None:
                raise UsageError("--public-key needs a key or a file holding one")
            keys.append(value)
        elif item.startswith("--public-key="):
            keys.append(item.split("=", 1)[1])
        else:
            positional.append(item)
    return positional, keys


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        positional, key_values = _arguments(argv)
        if len(positional) not in (1, 2):
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
        keys = load_public_keys(key_values) if key_values else None
        data = Path(positional[0]) if len(positional) == 2 else None
        verified, verdict = verify(data, Path(positional[-1]), keys)
    except UsageError as error:
        print(f"verify_export: {error}", file=sys.stderr)
        return 2
    print("\n".join(verdict))
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
