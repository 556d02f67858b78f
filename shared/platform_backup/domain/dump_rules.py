"""What a restore applies: the statements ``mariadb-dump`` writes for the recorded databases, and
nothing else.

A statement arrives here as mariadb's client would send it (adapters feed the stream to
``domain.dump_statements``, which splits it the way the client does), normalized: strings
replaced by ``'?N'`` (N indexes ``strings``), plain comments dropped, the markers of conditional
comments (``/*!50003`` ... ``*/``) removed so their content counts as code. The rules are an
allowlist of the forms mariadb-dump writes with the options this service runs it with; anything
else is refused, naming why.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_NAME = r"(?:`(?:[^`]|``)+`|[A-Za-z_$][A-Za-z0-9_$]*)"
_STRING = r"'\?\d+'"
_USER = rf"(?:{IDENT}|{_STRING})@(?:{IDENT}|{_STRING})|CURRENT_USER(?: ?\( ?\))?"
_DEFINER = rf"(?:DEFINER ?= ?(?:{_USER}) )?"
_WORD = r"[A-Za-z0-9_]+"

# Session settings mariadb-dump saves, sets and restores; any other SET changes more than the
# restore's own session (a global, a password, a role, the binary log).
SESSION_VARIABLES = frozenset(
    {
        "character_set_client",
        "character_set_results",
        "collation_connection",
        "time_zone",
        "unique_checks",
        "foreign_key_checks",
        "sql_mode",
        "sql_notes",
    }
)
# Modes under which the client and this check would read quotes differently than the server.
QUOTING_MODES = frozenset(
    {"ANSI", "ANSI_QUOTES", "NO_BACKSLASH_ESCAPES", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL"}
)
# Schemas whose tables hold the server's own state: never named by what a restore applies.
SYSTEM_SCHEMAS = frozenset({"mysql", "performance_schema", "sys"})
# Readable by anyone and unwritable: routines of the platform schema query it.
READ_ONLY_SCHEMAS = frozenset({"information_schema"})

_I = re.I | re.S

# The only forms in which a database is named, each on a line of its own: exactly what the
# restore's rewriter (adapters/dump_rewrite.py) renames. Another spelling would pass it unrenamed.
DB_NAME = rb"`((?:[^`]|``)+)`"
CREATE_DB_LINE = re.compile(
    rb"CREATE DATABASE (/\*!32312 IF NOT EXISTS\*/ )?" + DB_NAME + rb"(.*)", re.S
)
USE_LINE = re.compile(rb"USE " + DB_NAME + rb"(;.*)", re.S)
ALTER_DB_LINE = re.compile(rb"ALTER DATABASE " + DB_NAME + rb"( CHARACTER SET .*)", re.S)
DATABASE_LINES = (CREATE_DB_LINE, USE_LINE, ALTER_DB_LINE)


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, _I)


_SET = _full(r"SET (.+)")
_ASSIGN_USER = _full(r"@[A-Za-z0-9_$.]+ ?:? ?= ?(.+)")
_ASSIGN_SESSION = _full(rf"(?:SESSION )?({_WORD}) ?= ?(.+)")
_ASSIGN_NAMES = _full(rf"(?:NAMES|CHARACTER SET) {_WORD}(?: COLLATE {_WORD})?")
_VALUE = _full(rf"@@(?:SESSION\.|GLOBAL\.)?{_WORD}|@[A-Za-z0-9_$]+|{_STRING}|-?\d+|{_WORD}")

_CREATE_DB = _full(
    rf"CREATE DATABASE (?:IF NOT EXISTS )?({IDENT})(?: DEFAULT)?"
    rf"(?: CHARACTER SET {_WORD})?(?: COLLATE {_WORD})?"
)
_USE = _full(rf"USE ({IDENT})")
_ALTER_DB = _full(
    rf"ALTER DATABASE ({IDENT})(?: DEFAULT)? CHARACTER SET {_WORD}(?: COLLATE {_WORD})?"
)
_DROP_OBJECT = _full(
    rf"DROP (?:TABLE|VIEW|SEQUENCE|PROCEDURE|FUNCTION|EVENT|TRIGGER) IF EXISTS {IDENT}"
)
_TABLE_KEYS = _full(
    rf"LOCK TABLES {IDENT} (?:READ|WRITE)|UNLOCK TABLES|ALTER TABLE {IDENT} (?:DISABLE|ENABLE) KEYS"
)
_SETVAL = _full(rf"(?:DO|SELECT) SETVAL ?\( ?{IDENT} ?, ?-?\d+ ?, ?\d+(?: ?, ?\d+)? ?\)")
# B608: a pattern that recognises the dump's INSERTs, not a query.
_INSERT = _full(rf"INSERT INTO {IDENT}(?: ?\((?: ?{IDENT} ?,?)+\))? VALUES ?(.*)")  # nosec B608
_CREATE_TABLE = _full(rf"CREATE TABLE {IDENT} ?\((.*)")
_CREATE_SEQUENCE = _full(rf"CREATE SEQUENCE {IDENT}((?: [^.`]*)?)")
_CREATE_VIEW = _full(
    rf"CREATE (?:OR REPLACE )?(?:ALGORITHM ?= ?{_WORD} )?{_DEFINER}(?:SQL SECURITY {_WORD} )?"
    rf"VIEW {IDENT}(.*)"
)
_CREATE_ROUTINE = _full(rf"CREATE (?:OR REPLACE )?{_DEFINER}(?:PROCEDURE|FUNCTION) {IDENT}(.*)")
_CREATE_TRIGGER = _full(
    rf"CREATE (?:OR REPLACE )?{_DEFINER}TRIGGER {IDENT} (?:BEFORE|AFTER) (?:INSERT|UPDATE|DELETE)"
    rf" ON {IDENT} (.*)"
)
_CREATE_EVENT = _full(rf"CREATE (?:OR REPLACE )?{_DEFINER}EVENT {IDENT} ON SCHEDULE (.*)")

# A row's values as mariadb-dump writes them, strings taken out: numbers, NULL, 0x... literals.
_VALUES_CHARS = frozenset(b"0123456789abcdefABCDEFxXNUL+-.,() \t\r\n'?")
_QUALIFIED = re.compile(rf"({_NAME}) ?\. ?({_NAME})(?: ?\. ?({_NAME}))?")
_PRIVILEGED = re.compile(
    r"\b(?:GRANT|REVOKE|UNINSTALL|SHUTDOWN|PURGE|LOAD_FILE|"
    r"(?:CREATE|DROP|ALTER|RENAME) (?:USER|ROLE|SERVER|DATABASE|SCHEMA)|"
    r"SET (?:GLOBAL|@@GLOBAL|PASSWORD|ROLE|DEFAULT ROLE)|INSTALL (?:PLUGIN|SONAME)|"
    r"INTO (?:OUTFILE|DUMPFILE)|LOAD (?:DATA|XML)|CHANGE MASTER|(?:START|STOP) (?:SLAVE|REPLICA)|"
    r"RESET (?:MASTER|SLAVE|REPLICA)|FLUSH (?:PRIVILEGES|LOGS|BINARY))\b",
    re.I,
)
_TABLE_OPTIONS = re.compile(
    r"\b(?:DATA DIRECTORY|INDEX DIRECTORY|CONNECTION ?=|ENGINE ?= ?(?:CONNECT|FEDERATED|SPIDER))\b",
    re.I,
)


def unquote(name: str) -> str:
    if name.startswith("`"):
        return name[1:-1].replace("``", "`")
    return name


def check_statement(
    code: str, strings: Sequence[str], databases: Collection[str], line: bytes | None = None
) -> str | None:
    """Why the normalized statement ``code`` may not be applied, or None when it may.

    ``databases`` are the backup's recorded databases (as named in the dump); ``line`` is the
    statement's own line when it starts one (the form a database may be named in)."""
    if not code:
        return None
    if match := _SET.fullmatch(code):
        return _check_set(match.group(1), strings)
    for pattern, what in ((_CREATE_DB, "creates"), (_USE, "uses"), (_ALTER_DB, "alters")):
        if match := pattern.fullmatch(code):
            name = unquote(match.group(1))
            if name not in databases:
                return f"{what} database `{name}`, which the backup does not hold"
            if line is None or not any(p.fullmatch(line) for p in DATABASE_LINES):
                return "names a database in a form mariadb-dump does not write"
            return None
    if _DROP_OBJECT.fullmatch(code) or _TABLE_KEYS.fullmatch(code) or _SETVAL.fullmatch(code):
        return None
    if match := _INSERT.fullmatch(code):
        return values_problem(match.group(1).encode())
    if match := _CREATE_TABLE.fullmatch(code):
        if _TABLE_OPTIONS.search(match.group(1)):
            return "creates a table stored outside the server's own tablespaces"
        return _names_problem(match.group(1), databases, strict=True)
    if match := _CREATE_SEQUENCE.fullmatch(code):
        return None
    for pattern in (_CREATE_VIEW, _CREATE_ROUTINE, _CREATE_TRIGGER, _CREATE_EVENT):
        if match := pattern.fullmatch(code):
            return _body_problem(match.group(1), databases)
    return "is not a statement mariadb-dump writes for the backed-up databases"


def _check_set(assignments: str, strings: Sequence[str]) -> str | None:
    for raw in assignments.split(","):
        part = raw.strip()
        if _ASSIGN_NAMES.fullmatch(part):
            continue
        if match := _ASSIGN_USER.fullmatch(part):
            value = match.group(1)
        elif (match := _ASSIGN_SESSION.fullmatch(part)) and match.group(
            1
        ).lower() in SESSION_VARIABLES:
            value = match.group(2)
            if match.group(1).lower() == "sql_mode" and _quoting_mode(value, strings):
                return "sets an sql_mode that changes how quotes and backslashes are read"
        else:
            return "changes server, global or account state (only session settings are applied)"
        if not _VALUE.fullmatch(value.strip()):
            return "sets a value computed by an expression"
    return None


def _quoting_mode(value: str, strings: Sequence[str]) -> bool:
    found = re.fullmatch(r" ?'\?(\d+)' ?", value)
    text = strings[int(found.group(1))] if found else value
    modes = {mode.strip().upper() for mode in text.strip("'\"").split(",")}
    return bool(modes & QUOTING_MODES)


def values_problem(values: bytes) -> str | None:
    """Rows as mariadb-dump writes them, strings already taken out (``'?N'`` or nothing):
    nothing but literals, so nothing another table's, a variable or a function can reach."""
    if values.translate(None, bytes(_VALUES_CHARS)) or b"--" in values:
        return "inserts something other than literal values"
    return None


def _names_problem(body: str, databases: Collection[str], strict: bool) -> str | None:
    """Qualified names: ``a.b.c`` names database a; ``a.b`` names database a in a table
    definition (strict), and may be a table's column elsewhere (only system schemas refused)."""
    if "." not in body:
        return None
    for match in _QUALIFIED.finditer(body):
        first = unquote(match.group(1))
        three = match.group(3) is not None
        if first.lower() in SYSTEM_SCHEMAS:
            return f"names the system schema `{first}`"
        if (three or strict) and first not in databases and first.lower() not in READ_ONLY_SCHEMAS:
            return f"names database `{first}`, which the backup does not hold"
    return None


def _body_problem(body: str, databases: Collection[str]) -> str | None:
    """A view's, routine's, trigger's or event's body: runs later, with its definer's rights."""
    keywords = re.sub(r"`(?:[^`]|``)+`", "``", body)
    if found := _PRIVILEGED.search(keywords):
        return f"holds {' '.join(found.group(0).upper().split())}, which a backup never contains"
    return _names_problem(body, databases, strict=False)
