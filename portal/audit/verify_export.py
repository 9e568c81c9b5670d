#!/usr/bin/env python3
"""Check an audit export from Tollgate against its manifest, without Tollgate.

Usage:  python3 portal/audit/verify_export.py DATA MANIFEST

Needs only Python 3.11's standard library, so an auditor can run it on any machine. It checks

* the SHA-256 of DATA against the manifest's `data_sha256`;
* every row: its fields, put in the canonical form, hash to the row's `hash`;
* the row count and the first and last sequence and hash against the manifest;
* rows in increasing sequence order; wherever two rows are consecutive events, the later one's
  `prev_hash` is the earlier one's `hash`;
* for a manifest with `full_range` true, also that the rows are events 1, 2, 3, … with none
  missing and the first linked to the start of the ledger (`prev_hash` "").

Canonical form (version 1), kept in step with portal/audit/chain.py (a test compares them): a
JSON object with exactly the keys in FIELDS below, serialised with keys sorted, separators ","
and ":", non-ASCII characters kept, encoded as UTF-8; the hash is its SHA-256 in lower-case hex.

Data files (see portal/audit/export.py): JSON Lines holds one canonical object per line plus
the key "hash". CSV (UTF-8, RFC 4180) has a header row naming FIELDS then "hash"; `sequence` is
an integer, `actor_id`, `on_behalf_of_id` and `site_id` are integers or empty for null,
`before`, `after` and `context` are JSON text, every other column is the text itself.

Exit status: 0 verified, 1 verification failed (the verdict names the first bad row by its
sequence), 2 usage error (missing file, unreadable manifest, unknown format or version).
"""

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
OPTIONAL_INTEGERS = frozenset({"actor_id", "on_behalf_of_id", "site_id"})
JSON_VALUED = frozenset({"before", "after", "context"})
GENESIS = ""
MANIFEST_KEYS = (
    "canonical_version",
    "format",
    "row_count",
    "first_sequence",
    "first_hash",
    "last_sequence",
    "last_hash",
    "full_range",
    "data_sha256",
)
_INTEGER = re.compile(r"[0-9]+")
_READ_SIZE = 1 << 20


class UsageError(Exception):
    """The files cannot be checked at all (exit status 2)."""


class BadRow(Exception):
    """A row that cannot even be read back into fields."""


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


def jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each line of a JSON Lines file."""
    with path.open(encoding="utf-8", newline="\n") as data:
        for number, line in enumerate(data, start=1):
            try:
                row = json.loads(line)
            except ValueError as error:
                raise BadRow(f"line {number} is not JSON ({error})") from None
            if not isinstance(row, dict):
                raise BadRow(f"line {number} is not a JSON object")
            yield number, row


def csv_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each record of a CSV file, cells decoded to their JSON values."""
    with path.open(encoding="utf-8", newline="") as data:
        reader = csv.reader(data)
        header = next(reader, None)
        if header != list(COLUMNS):
            raise BadRow(f"the header is not the columns {', '.join(COLUMNS)}")
        for record in reader:
            number = reader.line_num
            if len(record) != len(COLUMNS):
                raise BadRow(f"line {number} has {len(record)} cells, not {len(COLUMNS)}")
            cells = zip(COLUMNS, record, strict=True)
            yield number, {name: _cell(name, cell, number) for name, cell in cells}


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
        if set(row) != set(COLUMNS):
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
    if manifest["format"] not in READERS:
        raise UsageError(f"format {manifest['format']!r} is not one of {', '.join(READERS)}")
    return manifest


def verify(data: Path, manifest_path: Path) -> tuple[bool, list[str]]:
    """(verified, lines of the verdict)."""
    manifest = load_manifest(manifest_path)
    if not data.is_file():
        raise UsageError(f"no data file {data}")
    problems = []
    digest = file_sha256(data)
    if digest != manifest["data_sha256"]:
        problems.append(
            f"the data file's SHA-256 is {digest}, the manifest says {manifest['data_sha256']}"
        )
    check = Check(manifest)
    row_problem = ""
    try:
        for number, row in READERS[manifest["format"]](data):
            row_problem = check.row(number, row)
            if row_problem:
                break
    except (BadRow, UnicodeDecodeError, csv.Error) as error:
        row_problem = f"{error} (after {check.count} good rows)"
    if row_problem:
        problems.insert(0, f"first bad row: {row_problem}")
    else:
        problems.extend(check.totals(manifest))
    if problems:
        return False, [f"FAILED {data}:", *(f"  - {problem}" for problem in problems)]
    span = f"sequences {check.first[0]}–{check.last[0]}" if check.first else "no events"
    chain = (
        "chain linked from its start, no event missing"
        if check.full_range
        else "a subset: each row checked on its own, links checked between consecutive events"
    )
    return True, [
        f"VERIFIED {data}: {check.count} rows, {span}; SHA-256 matches the manifest; "
        f"every row's hash recomputes; {chain}."
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] in {"-h", "--help"}:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        verified, verdict = verify(Path(argv[0]), Path(argv[1]))
    except UsageError as error:
        print(f"verify_export: {error}", file=sys.stderr)
        return 2
    print("\n".join(verdict))
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
