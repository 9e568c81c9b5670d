"""How a record's id may be written where a person or a program types it (paths, cursors)."""

# Plain ASCII digits, at most 18 of them: every such number fits a 64-bit key, so a longer one
# is refused as "no such record" instead of overflowing the database's integer.
ID_PATTERN = r"[0-9]{1,18}"
