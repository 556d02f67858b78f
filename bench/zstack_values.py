"""Generated values for the ZStack-shaped bench data set: for each column, one SQL expression of
``seq`` (the row number, from MariaDB's sequence engine) derived from the column's type in
information_schema.COLUMNS, so that a table fills server-side with ``INSERT ... SELECT ... FROM
seq_1_to_N``. Columns of a primary or unique key get values unique in ``seq``; a foreign key
column takes its parent's value of some parent row, when the parent is filled."""

from __future__ import annotations

import re
from dataclasses import dataclass

INT_MAX = {
    "tinyint": 127,
    "smallint": 32767,
    "mediumint": 8388607,
    "int": 2147483647,
    "bigint": 9223372036854775807,
}
NUMERIC = {*INT_MAX, "decimal", "float", "double", "bit", "year"}
TEXTS = {"tinytext", "text", "mediumtext", "longtext"}
BLOBS = {"tinyblob", "blob", "mediumblob", "longblob"}
EPOCH = 1600000000


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    data_type: str
    column_type: str
    max_length: int | None
    nullable: bool
    extra: str
    unique: bool

    @property
    def generated(self) -> bool:
        return "GENERATED" in self.extra.upper()

    @property
    def numeric(self) -> bool:
        return self.data_type in NUMERIC

    def members(self) -> int:
        """The number of an enum's or set's members."""
        return len(re.findall(r"'((?:[^']|'')*)'", self.column_type))


def row_cap(column: Column) -> int | None:
    """How many distinct values a unique column can take (None: more than any plan needs)."""
    if not column.unique:
        return None
    kind = column.data_type
    if kind in INT_MAX:
        limit = INT_MAX[kind] * (2 if "unsigned" in column.column_type else 1)
        return limit if limit < 10**9 else None
    if kind in ("enum", "set"):
        return column.members() if kind == "enum" else 2 ** min(column.members(), 30) - 1
    if kind in ("char", "varchar", "binary", "varbinary") and (column.max_length or 0) < 10:
        return 10 ** ((column.max_length or 1) - 1)
    if kind in ("date", "year"):
        return 100
    return None


def text_of(column: Column, seq: str, length: int) -> str:
    """Readable text of about ``length`` characters: the column's name, the row number, and
    filler with quotes, a backslash and non-ASCII (three-byte UTF-8 only: many ZStack tables are
    utf8mb3)."""
    filler = f"repeat(concat(md5({seq}), ' it''s \\\\ ü 中文 '), {max(1, length // 48)})"
    return f"left(concat('{column.name}-', {seq}, ' ', {filler}), {length})"


def json_of(column: Column, seq: str, length: int) -> str:
    """A JSON document (ZStack keeps inventories, request dumps and labels as JSON text)."""
    body = f"repeat(md5({seq} * 7), {max(1, length // 32)})"
    return (
        f'concat(\'{{"uuid":"\', md5({seq}), \'","field":"{column.name}","n":\', {seq},'
        f" ',\"detail\":\"', {body}, '\"}}')"
    )


def unique_value(column: Column, seq: str) -> str:
    kind, length = column.data_type, column.max_length or 0
    if kind in INT_MAX or kind in ("decimal", "float", "double"):
        return seq
    if kind in ("enum", "set"):
        return seq
    if kind in ("char", "varchar") and length >= 32:
        return f"md5(concat('{column.table}', {seq}))"
    if kind in ("char", "varchar", "binary", "varbinary"):
        return f"left(concat({seq}, '-', md5({seq})), {length})"
    if kind in ("datetime", "timestamp"):
        return f"from_unixtime({EPOCH} + {seq})"
    if kind == "date":
        return f"date(from_unixtime({EPOCH} + {seq} * 86400))"
    if kind == "year":
        return f"1950 + {seq}"
    if kind in TEXTS:
        return f"concat(md5(concat('{column.table}', {seq})), {seq})"
    if kind in BLOBS:
        return f"unhex(concat(md5({seq}), sha1({seq})))"
    raise ValueError(f"no unique value for {column.table}.{column.name} ({column.column_type})")


def plain_value(column: Column, seq: str) -> str:
    kind, length, name = column.data_type, column.max_length or 0, column.name.lower()
    if kind in INT_MAX:
        if kind == "bigint":
            return f"{EPOCH}000 + {seq} * 1000" if "time" in name or "date" in name else seq
        modulus = min(INT_MAX[kind], 2 if column.column_type.startswith("tinyint(1)") else 100000)
        return f"{seq} % {modulus}" if kind != "tinyint" else f"{seq} % {min(modulus, 100)}"
    if kind == "decimal":
        return f"({seq} % 1000) / 7"
    if kind in ("float", "double"):
        # Quarters: exact in binary, so every tool's text form of a FLOAT reloads it unchanged
        # (mydumper writes 17/7 as 2.42857, which reloads as another float).
        return f"({seq} % 100000) / 4"
    if kind == "bit":
        return f"{seq} % 2"
    if kind in ("enum", "set"):
        return f"1 + {seq} % {max(1, column.members())}"
    if kind in ("datetime", "timestamp"):
        return f"from_unixtime({EPOCH} + {seq} * 37)"
    if kind == "date":
        return f"date(from_unixtime({EPOCH} + {seq} * 37))"
    if kind == "time":
        return f"sec_to_time({seq} % 86400)"
    if kind == "year":
        return f"2000 + {seq} % 50"
    if kind in ("char", "varchar") and length >= 32 and "uuid" in name:
        return f"md5(concat('{name}', {seq} % 5000))"
    if kind in ("char", "varchar"):
        return text_of(column, seq, min(length, 24 if length <= 64 else 80))
    if kind in ("binary", "varbinary"):
        return f"left(unhex(md5({seq})), {length})"
    if kind in TEXTS:
        return json_of(column, seq, 240)
    if kind in BLOBS:
        return f"unhex(repeat(concat(md5({seq}), sha1({seq})), 4))"
    if column.nullable:
        return "NULL"
    raise ValueError(f"no value for {column.table}.{column.name} ({column.column_type})")


def value(column: Column, seq: str, parent: tuple[Column, int] | None = None) -> str:
    """The SQL expression of ``column``'s value in row ``seq``. ``parent``: the referenced
    column and its table's row count, for a foreign key whose parent is filled."""
    if parent is not None:
        referenced, rows = parent
        if column.unique:
            return unique_value(referenced, seq)
        return unique_value(referenced, f"(1 + ({seq} - 1) % {rows})")
    if column.unique or "auto_increment" in column.extra:
        return unique_value(column, seq)
    if column.name == "deleted" and column.nullable:
        # EO tables: the VO views show the rows not deleted.
        deleted = f"from_unixtime({EPOCH} + {seq})"
        if column.max_length:
            deleted = f"left({deleted}, {column.max_length})"
        return f"IF({seq} % 20 = 0, {deleted}, NULL)"
    if column.nullable and not column.numeric and column.data_type not in TEXTS:
        return f"IF({seq} % 11 = 0, NULL, {plain_value(column, seq)})"
    return plain_value(column, seq)


def sql_length(column: Column, expression: str) -> str:
    """The expression's length as mariadb-dump writes it (strings quoted, blobs in hex)."""
    if column.data_type in BLOBS or column.data_type in ("binary", "varbinary"):
        return f"coalesce(2 + 2 * length({expression}), 4)"
    if column.numeric:
        return f"coalesce(length({expression}), 4)"
    return f"coalesce(length(quote({expression})), 4)"
