"""One SQL text for both run databases: how SQLite's statements read on PostgreSQL.

The run store's statements and schema are written once, in the SQLite dialect they
were born in (:mod:`kernelflow.store._schema`). PostgreSQL gets them through the
few mechanical rules below, applied once per statement text and cached: ``?`` and
``?N`` placeholders, ``INSERT OR IGNORE``, null-safe ``IS``, two JSON functions,
the types of the DDL, and triggers (SQLite's ``BEGIN ... END`` body becomes a
PL/pgSQL function; dropping the trigger drops that function). What no rule can
express is written out beside its SQLite text in
:data:`kernelflow.store._schema.POSTGRES_OVERRIDES` (and ``POSTGRES_DDL_OVERRIDES``);
a migration added later is written once and read by both.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import NamedTuple

# A quoted string (left alone), a placeholder (? or ?N), or a % (escaped for psycopg).
_TOKEN = re.compile(r"'(?:[^']|'')*'|\?(\d*)|%")
_JSON_FIELD = re.compile(r"json_extract\(((?:[^()]|\([^()]*\))+), '\$\.(\w+)'\)")
_JSON_EACH = re.compile(r"json_each\(([^()]*)\)")
_NULL_SAFE_IS = re.compile(r"\bIS (\?\d*)")
_INSERT_OR_IGNORE = re.compile(r"^(\s*)INSERT OR IGNORE INTO(.*?)\s*;?\s*$", re.S)
_TRIGGER = re.compile(
    r"CREATE TRIGGER IF NOT EXISTS (\w+) (BEFORE|AFTER) (\w+) ON (\w+)\s+"
    r"WHEN (.*?)\s+BEGIN\s+(.*?)\s*END;?\s*$",
    re.S,
)
_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY( AUTOINCREMENT)?"), "BIGSERIAL PRIMARY KEY"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
)
# A trigger is a function and a trigger on PostgreSQL: dropping the function drops both.
_DROP_TRIGGER = re.compile(r"^\s*DROP TRIGGER IF EXISTS (\w+)\s*;?\s*$")
# SQLite gives every table a hidden ``rowid`` in insertion order; the run store
# orders runs started in the same instant by it, so PostgreSQL gets it as a column.
_WITH_ROWID = re.compile(r"(CREATE TABLE IF NOT EXISTS runs \()")


class Statement(NamedTuple):
    """A statement as psycopg takes it, and which parameter fills each ``%s``."""

    sql: str
    order: tuple[int, ...]


@functools.lru_cache(maxsize=256)
def postgres(sql: str) -> Statement:
    """A DML statement of the SQLite dialect, in PostgreSQL's, with its parameter order."""
    order: list[int] = []

    def placeholder(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "%":
            return "%%"
        if not text.startswith("?"):
            return text
        order.append(int(match.group(1)) - 1 if match.group(1) else len(order))
        return "%s"

    return Statement(_TOKEN.sub(placeholder, _functions(sql)), tuple(order))


def _functions(sql: str) -> str:
    """The functions and clauses that are spelled differently; placeholders untouched."""
    sql = _JSON_FIELD.sub(r"(\1::json ->> '\2')", sql)
    sql = _JSON_EACH.sub(r"json_array_elements_text(CAST(\1 AS json))", sql)
    sql = _NULL_SAFE_IS.sub(r"IS NOT DISTINCT FROM \1", sql)
    sql = re.sub(r"\binstr\(", "strpos(", sql)
    return _INSERT_OR_IGNORE.sub(r"\1INSERT INTO\2 ON CONFLICT DO NOTHING", sql)


def postgres_ddl(statement: str, *, events: Mapping[str, str]) -> list[str]:
    """A schema statement of the SQLite dialect as PostgreSQL statements.

    A trigger becomes a PL/pgSQL function and a trigger that calls it; SQLite's
    ``WHEN`` may hold a subquery, which PostgreSQL allows only in the body, so the
    condition moves there. ``events`` overrides a trigger's event by its name.
    """
    dropped = _DROP_TRIGGER.match(statement)
    if dropped is not None:
        return [f"DROP FUNCTION IF EXISTS {dropped.group(1)}() CASCADE"]
    trigger = _TRIGGER.search(statement)
    if trigger is not None:
        name, timing, event, table, when, body = trigger.groups()
        return _trigger(name, timing, events.get(name, event), table, when, body)
    for pattern, replacement in _TYPES:
        statement = pattern.sub(replacement, statement)
    return [_functions(_WITH_ROWID.sub(r"\1rowid BIGSERIAL, ", statement))]


def _trigger(name: str, timing: str, event: str, table: str, when: str, body: str) -> list[str]:
    parts = (part.strip() for part in body.split(";"))
    statements = "\n".join(f"    {_functions(part)};" for part in parts if part)
    function = (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n  IF {when} THEN\n{statements}\n  END IF;\n"
        "  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n  RETURN NEW;\nEND $$"
    )
    trigger = (
        f"CREATE OR REPLACE TRIGGER {name} {timing} {event} ON {table}"
        f" FOR EACH ROW EXECUTE FUNCTION {name}()"
    )
    return [function, trigger]
