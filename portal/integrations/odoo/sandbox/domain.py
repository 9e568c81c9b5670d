"""Odoo's domain language and `order` clauses, evaluated over the sandbox's rows.

Odoo turns a domain into SQL; the sandbox evaluates it in Python, so each operator below
spells out the NULL handling that SQL gives Odoo (PROTOCOL.md section 3):

- prefix `&`, `|`, `!`; consecutive terms joined by an implicit `&`; `[1, '=', 1]` is TRUE and
  `[0, '=', 1]` FALSE; `<>` means `!=`; a malformed domain raises the ValueError Odoo raises.
- `=`/`!=` with False: numbers match 0 or NULL, text '' or NULL, booleans False or NULL, any
  other type NULL only. `!=` with a real value also matches NULL.
- A datetime compared with a 10-character date gets ` 23:59:59` for `>` and `<=`, else
  ` 00:00:00`.
- Dotted paths become `any` on the first relation, so x2many paths match when any related
  record does. A many2one is followed even to archived records, as Odoo does.
- A relational field compared with text searches the related records by name.
"""

import re
from collections.abc import Callable

from portal.integrations.odoo.sandbox.models import NUMERIC, RELATIONAL, TEXTUAL, X2MANY

OPERATORS = frozenset(
    {
        "=",
        "!=",
        "<=",
        "<",
        ">",
        ">=",
        "=?",
        "=like",
        "=ilike",
        "like",
        "not like",
        "ilike",
        "not ilike",
        "in",
        "not in",
        "child_of",
        "parent_of",
        "any",
        "not any",
    }
)
POSITIVE_OF = {"!=": "=", "not like": "like", "not ilike": "ilike", "not in": "in"}
ARITY = {"&": 2, "|": 2, "!": 1}
COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})

Predicate = Callable[[dict], bool]


def _syntax_error(domain) -> ValueError:
    return ValueError(f"Domain {domain!r} is syntactically not correct.")


def _is_leaf(token) -> bool:
    return isinstance(token, list | tuple) and len(token) == 3


def normalize(domain) -> list:
    """The domain in prefix form with every implicit `&` written out (Odoo's algorithm)."""
    if not isinstance(domain, list | tuple):
        raise _syntax_error(domain)
    result, expected = [], 1
    for token in domain:
        if expected == 0:
            result.insert(0, "&")
            expected = 1
        if _is_leaf(token):
            expected -= 1
            token = tuple(token)
        elif isinstance(token, str) and token in ARITY:
            expected += ARITY[token] - 1
        else:
            raise _syntax_error(domain)
        result.append(token)
    if result and expected:
        raise _syntax_error(domain)
    return result


def _tree(tokens: list, pos: int = 0):
    token = tokens[pos]
    if isinstance(token, str):
        children, pos = [], pos + 1
        for _ in range(ARITY[token]):
            child, pos = _tree(tokens, pos)
            children.append(child)
        return (token, *children), pos
    return ("leaf", token), pos + 1


def parse(domain):
    """The domain as a tree of ('&', a, b), ('|', a, b), ('!', a) and ('leaf', leaf)."""
    tokens = normalize(domain)
    if not tokens:
        return ("leaf", (1, "=", 1))
    tree, _ = _tree(tokens)
    return tree


def names_field(domain, name: str) -> bool:
    """Whether some leaf of the domain starts its path with `name` (Odoo's active_test rule)."""
    for token in domain if isinstance(domain, list | tuple) else []:
        if _is_leaf(token) and isinstance(token[0], str) and token[0].split(".")[0] == name:
            return True
    return False


def compile_domain(env, model: str, domain) -> Predicate:
    return _compile(env, model, parse(domain))


def _compile(env, model: str, node) -> Predicate:
    kind = node[0]
    if kind == "leaf":
        return _compile_leaf(env, model, node[1])
    parts = [_compile(env, model, child) for child in node[1:]]
    if kind == "!":
        return lambda row: not parts[0](row)
    if kind == "&":
        return lambda row: parts[0](row) and parts[1](row)
    return lambda row: parts[0](row) or parts[1](row)


def _compile_leaf(env, model: str, leaf) -> Predicate:
    path, operator, value = leaf
    if path in (0, 1) and operator == "=" and value == 1 and not isinstance(path, bool):
        return (lambda row: True) if path == 1 else (lambda row: False)
    if not isinstance(path, str) or not isinstance(operator, str):
        raise ValueError(f"Invalid leaf {list(leaf)!r}")
    operator = "!=" if operator == "<>" else operator.lower()
    if operator not in OPERATORS:
        raise ValueError(f"Invalid leaf {list(leaf)!r}")
    head, _, rest = path.partition(".")
    spec = env.spec(model)
    field = spec.fields.get(head)
    if field is None:
        raise ValueError(f"Invalid field {model}.{head} in leaf {list(leaf)!r}")
    if rest:
        if field.type not in RELATIONAL:
            raise ValueError(f"Invalid field {model}.{path} in leaf {list(leaf)!r}")
        return _compile_any(env, model, head, field, [(rest, operator, value)], negate=False)
    return _compile_simple(env, model, head, field, operator, value)


def _compile_simple(env, model, name, field, operator, value) -> Predicate:
    if operator in ("any", "not any"):
        if field.type not in RELATIONAL:
            raise ValueError(f"Operator {operator!r} needs a relational field, not {name!r}")
        return _compile_any(env, model, name, field, value, negate=operator == "not any")
    if operator in ("child_of", "parent_of"):
        return _compile_hierarchy(env, model, name, field, operator, value)
    if field.type in RELATIONAL and _is_name_value(operator, value):
        return _compile_name_search(env, model, name, field, operator, value)
    get = _getter(env, model, name)
    if field.type in X2MANY:
        test = _x2many_test(operator, value)
    else:
        test = scalar_test(field.type, operator, value)
    return lambda row: test(get(row))


def _getter(env, model: str, name: str):
    return lambda row: env.get(model, row, name)


def _compile_any(env, model, name, field, subdomain, negate: bool) -> Predicate:
    if not isinstance(subdomain, list | tuple):
        raise _syntax_error(subdomain)
    # Odoo follows a many2one even to archived records; x2many keep the caller's active_test.
    active_test = False if field.type == "many2one" else None
    found = set(env.search_ids(field.relation, list(subdomain), active_test=active_test))
    get = _getter(env, model, name)
    if field.type == "many2one":
        return lambda row: (get(row) in found) != negate
    return lambda row: bool(found.intersection(get(row))) != negate


def _compile_hierarchy(env, model, name, field, operator, value) -> Predicate:
    comodel = model if name == "id" else field.relation
    if comodel is None:
        raise ValueError(f"Operator {operator!r} needs a relational field, not {name!r}")
    ids = _ids_of(env, comodel, value)
    found = env.hierarchy(comodel, ids, descendants=operator == "child_of")
    get = _getter(env, model, name)
    if field.type in X2MANY:
        return lambda row: bool(found.intersection(get(row)))
    return lambda row: get(row) in found


def _ids_of(env, comodel: str, value) -> set[int]:
    values = value if isinstance(value, list | tuple) else [value]
    ids = {v for v in values if isinstance(v, int) and not isinstance(v, bool)}
    for text in (v for v in values if isinstance(v, str)):
        ids.update(_name_ids(env, comodel, "ilike", text))
    return ids


def _is_name_value(operator: str, value) -> bool:
    if operator in ("like", "ilike", "not like", "not ilike", "=like", "=ilike"):
        return True
    if operator in ("in", "not in") and isinstance(value, list | tuple):
        return any(isinstance(v, str) for v in value)
    return isinstance(value, str)


def _name_ids(env, comodel: str, operator: str, value) -> list[int]:
    name_fields = [f for f in ("name", "display_name") if f in env.spec(comodel).fields]
    domain = [(f, operator, value) for f in name_fields]
    domain = ["|"] * (len(domain) - 1) + domain
    return env.search_ids(comodel, domain, active_test=False)


def _compile_name_search(env, model, name, field, operator, value) -> Predicate:
    operator = "=" if operator == "=?" else operator
    negate = operator in POSITIVE_OF
    found = set(_name_ids(env, field.relation, POSITIVE_OF.get(operator, operator), value))
    get = _getter(env, model, name)
    if field.type == "many2one":
        return lambda row: (get(row) in found) != negate
    return lambda row: bool(found.intersection(get(row))) != negate


def _is_false(value) -> bool:
    return value is False or value is None


def _falsy_test(field_type: str) -> Callable:
    if field_type in NUMERIC:
        return lambda v: v is None or v == 0
    if field_type in TEXTUAL:
        return lambda v: v is None or v == ""
    if field_type == "boolean":
        return lambda v: not v
    return lambda v: v is None


def _coerce(field_type: str, value):
    if field_type in NUMERIC and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _equal(stored, value) -> bool:
    if isinstance(stored, bool) or isinstance(value, bool):
        return stored is value or (not isinstance(stored, bool) and stored == value)
    return stored == value


def _compare(stored, operator: str, value) -> bool:
    try:
        if operator == "<":
            return stored < value
        if operator == "<=":
            return stored <= value
        if operator == ">":
            return stored > value
        return stored >= value
    except TypeError:
        return False


def _date_bound(field_type: str, operator: str, value):
    if field_type == "datetime" and isinstance(value, str) and len(value) == 10:
        return value + (" 23:59:59" if operator in (">", "<=") else " 00:00:00")
    return value


def scalar_test(field_type: str, operator: str, value) -> Callable:
    """A test on one stored value (None is NULL) for a non-x2many field."""
    if operator == "=?":
        if _is_false(value):
            return lambda v: True
        operator = "="
    if operator in COMPARISONS:
        value = _coerce(field_type, _date_bound(field_type, operator, value))
    if operator in ("=", "!="):
        return _equality_test(field_type, operator, value)
    if operator in ("<", "<=", ">", ">="):
        return lambda v: v is not None and not _is_false(value) and _compare(v, operator, value)
    if operator in ("in", "not in"):
        return _in_test(field_type, operator, value)
    return _like_test(operator, value)


def _equality_test(field_type: str, operator: str, value) -> Callable:
    if _is_false(value):
        falsy = _falsy_test(field_type)
        return falsy if operator == "=" else (lambda v: not falsy(v))
    if field_type == "boolean":
        value = bool(value)
        if operator == "=":
            return lambda v: bool(v) is value
        return lambda v: bool(v) is not value
    if operator == "=":
        return lambda v: v is not None and _equal(v, value)
    return lambda v: v is None or not _equal(v, value)


def _in_test(field_type: str, operator: str, value) -> Callable:
    values = list(value) if isinstance(value, list | tuple) else [value]
    with_null = any(_is_false(v) for v in values)
    real = [_coerce(field_type, v) for v in values if not _is_false(v)]
    if field_type == "boolean":
        real = [bool(v) for v in real]

        def contains(v):
            return bool(v) in real or (with_null and not v)
    else:

        def contains(v):
            return (v is None and with_null) or (v is not None and any(_equal(v, x) for x in real))

    if operator == "in":
        return contains
    return lambda v: not contains(v)


def _like_regex(pattern: str, ignore_case: bool) -> re.Pattern:
    parts, escaped = [], False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _as_text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _like_test(operator: str, value) -> Callable:
    empty = value is None or value is False or value == ""
    if operator in ("like", "ilike", "not like", "not ilike") and empty:
        return (lambda v: True) if operator in ("like", "ilike") else (lambda v: False)
    raw = _as_text(value)
    pattern = raw if operator.startswith("=") else f"%{raw}%"
    regex = _like_regex(pattern, ignore_case="ilike" in operator)

    def matches(v):
        return v is not None and regex.fullmatch(_as_text(v)) is not None

    if operator.startswith("not "):
        return lambda v: not matches(v)
    return matches


def _x2many_test(operator: str, value) -> Callable:
    if operator in ("=", "!=") and _is_false(value):
        return (lambda v: not v) if operator == "=" else (lambda v: bool(v))
    if operator in ("=", "!=", "in", "not in"):
        values = list(value) if isinstance(value, list | tuple) else [value]
        with_empty = any(_is_false(v) for v in values)
        wanted = {v for v in values if not _is_false(v)}

        def contains(v):
            return bool(wanted.intersection(v)) or (with_empty and not v)

        if operator in ("=", "in"):
            return contains
        return lambda v: not contains(v)
    raise ValueError(f"Operator {operator!r} cannot compare a one2many or many2many field")


def parse_order(spec, order: str | None) -> list[tuple[str, bool]]:
    """`"date_order desc, id"` as [(field, descending)], checked against the model."""
    keys = []
    for part in (order or spec.order).split(","):
        tokens = part.split()
        if not tokens:
            continue
        direction = tokens[1].lower() if len(tokens) > 1 else "asc"
        field = spec.fields.get(tokens[0])
        if field is None or field.type in X2MANY or direction not in ("asc", "desc"):
            raise ValueError(
                f'Invalid "order" specified ({order}). A valid "order" specification is a '
                "comma-separated list of valid field names (optionally followed by asc/desc "
                "for the direction)"
            )
        keys.append((tokens[0], direction == "desc"))
    if "id" not in (name for name, _ in keys):
        keys.append(("id", False))
    return keys


def sort_rows(env, model: str, rows: list[dict], order: str | None) -> list[dict]:
    """Rows sorted as PostgreSQL would: NULLs last going up, first going down; text ignores
    case."""
    spec = env.spec(model)
    for name, descending in reversed(parse_order(spec, order)):
        field = spec.fields[name]

        def key(row, name=name, field=field):
            value = env.get(model, row, name)
            if field.type == "many2one" and value is not None:
                value = env.display_name(field.relation, value).lower()
            elif field.type == "boolean":
                value = bool(value)
            elif isinstance(value, str):
                value = value.casefold()  # like a PostgreSQL en_US collation
            return (1, 0) if value is None else (0, value)

        rows.sort(key=key, reverse=descending)
    return rows
