"""A dump's text split into statements the way the ``mariadb`` client splits it, each checked
by ``domain.dump_rules`` before anything is applied: one pass, fed in any chunking, holding one
line and one statement at a time (row data never more than a line).

The split follows the client (client/mysql.cc): ``DELIMITER`` at a statement's start, strings
in ' " and ` (a backslash escapes inside ' and "), ``/* */``, ``-- `` and ``#`` comments, while
``/*!NNNNN`` and ``/*M!`` comments are code. Where this split and the client's could differ
(a client command, an unclosed conditional comment, an sql_mode that changes quoting), the
statement is refused rather than guessed at. Rows take a fast path: mariadb-dump writes an
INSERT's rows one per line, so a row line is checked with its strings cut out and never held.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from platform_backup.domain.dump_rules import check_statement, values_problem

SANDBOX = b"/*M!999999\\- enable the sandbox mode */"
# mariadb-dump's schema statements are small; rows never reach the statement buffer.
MAX_STATEMENT = 16 << 20
_DELIMITERS = (b";", b";;")
_DELIMITER_LINE = re.compile(rb"\s*delimiter\s+(\S+)\s*", re.I)
_INSERT_HEAD = re.compile(rb"INSERT INTO `(?:[^`\n]|``)+`(?: \((?:`(?:[^`\n]|``)+`,?)+\))? VALUES")
_STRING_END = {q: re.compile(rb"\\.|" + re.escape(q), re.S) for q in (b"'", b'"')}
_TOKEN = re.compile(
    r"""(?P<s>'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*")
    |(?P<i>`[^`]*`)
    |(?P<c>/\*M?!\d*)
    |(?P<e>\*/)
    |(?P<m>/\*.*?\*/)
    |(?P<l>(?:--(?=\s|$)|\#)[^\n]*)""",
    re.S | re.X,
)
_SPACES = re.compile(r"\s+")
_AROUND = re.compile(r"\s*([=(),])\s*")
_DOTS = re.compile(r"\s*\.\s*")
_AT = re.compile(r"(?<=[`'])\s*@\s*|@\s+")


@dataclass(frozen=True)
class Refusal:
    line: int
    statement: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.statement} {self.reason}"


def normalize(raw: str) -> tuple[str, list[str], bool]:
    """The statement as the server runs it: strings as ``'?N'``, plain comments dropped,
    conditional-comment markers removed, whitespace collapsed; and whether those were balanced."""
    strings: list[str] = []
    open_conditionals = 0

    def token(match: re.Match[str]) -> str:
        nonlocal open_conditionals
        kind, text = match.lastgroup, match.group()
        if kind == "s":
            strings.append(text[1:-1])
            return f"'?{len(strings) - 1}'"
        if kind == "i":
            return text
        if kind == "c":
            open_conditionals += 1
        elif kind == "e":
            if not open_conditionals:
                return text
            open_conditionals -= 1
        return " "

    code = _TOKEN.sub(token, raw)
    code = _AT.sub("@", _DOTS.sub(".", _AROUND.sub(r" \1 ", code)))
    return _SPACES.sub(" ", code).strip(), strings, open_conditionals == 0


class DumpStatementCheck:
    """``feed`` the decompressed dump; ``refusal`` is the first statement a restore must not
    apply (None while there is none). Feeding stops mattering after the first refusal."""

    def __init__(self, databases: Collection[str]) -> None:
        self._databases = frozenset(databases)
        self.refusal: Refusal | None = None
        self._carry = b""
        self._line = 0
        self._delimiter = b";"
        self._rows = False  # inside an INSERT's rows (the fast path)
        self._rows_start = 0
        self._buffer: list[bytes] = []
        self._size = 0
        self._start = 0  # line of the buffered statement's first code
        self._column = 0
        self._quote: bytes | None = None
        self._comment = False

    def feed(self, data: bytes) -> None:
        if self.refusal is not None:
            return
        data = self._carry + data
        at, size = 0, len(data)
        while at < size and self.refusal is None:
            if self._rows:
                # Rows are crossed a block of whole lines at a time, up to their statement's end.
                end = data.find(b";\n", at)
                cut = end + 2 if end >= 0 else data.rfind(b"\n", at) + 1
                if cut <= at:
                    break
                self._row_lines(data[at:cut])
                at = cut
                continue
            cut = data.find(b"\n", at)
            if cut < 0:
                break
            self._line += 1
            self._take(data[at:cut])
            at = cut + 1
        self._carry = data[at:]

    def finish(self) -> Refusal | None:
        if self.refusal is None and self._carry:
            if self._rows:
                self._row_lines(self._carry)
            else:
                self._line += 1
                self._take(self._carry)
            self._carry = b""
        if self.refusal is None and (self._rows or self._pending()):
            self._refuse(self._start or self._rows_start, b"", "is not ended by a delimiter")
        return self.refusal

    # -- lines ------------------------------------------------------------------------------

    def _take(self, line: bytes) -> None:
        if not self._pending():
            stripped = line.strip()
            if stripped == SANDBOX and self._line == 1:
                return
            if match := _DELIMITER_LINE.fullmatch(line):
                if match.group(1) not in _DELIMITERS:
                    self._refuse(self._line, line, "sets a delimiter mariadb-dump never uses")
                else:
                    self._delimiter = match.group(1)
                return
            if self._delimiter == b";" and (head := _INSERT_HEAD.match(line)):
                self._rows, self._rows_start = True, self._line
                self._rows_in(line[head.end() :])
                return
        self._scan(line)

    def _row_lines(self, block: bytes) -> None:
        self._line += block.count(b"\n")
        self._rows_in(block)

    def _rows_in(self, rows: bytes) -> None:
        """Rows of an INSERT, whole lines (mariadb-dump ends each row's line; its strings never
        hold a raw newline). A quote left after the strings are cut out would open a string the
        client carries to the next line, where this check would read code as data: refused."""
        values = _outside_strings(rows).rstrip()
        if values.endswith(b";"):
            self._rows = False
            values = values[:-1]
        problem = values_problem(values)
        if problem is None and b"'" in values:
            problem = "leaves a string open at the end of a row"
        if problem:
            self._refuse(self._rows_start, b"INSERT", problem)

    def _pending(self) -> bool:
        return bool(self._buffer) or self._quote is not None or self._comment

    def _scan(self, line: bytes) -> None:
        """The client's split over one line: strings, comments, the delimiter."""
        at, end = 0, len(line)
        delimiter = self._delimiter
        while at < end:
            if self._comment:
                close = line.find(b"*/", at)
                if close < 0:
                    return
                self._comment, at = False, close + 2
                continue
            if self._quote is not None:
                at = self._in_string(line, at)
                continue
            found = self._next_special(line, at, delimiter)
            if found < 0:
                self._add(line[at:], at)
                break
            self._add(line[at:found], at)
            char = line[found : found + 1]
            if line.startswith(delimiter, found):
                self._complete()
                at = found + len(delimiter)
                if self.refusal is not None:
                    return
            elif char in (b"'", b'"', b"`"):
                self._add(char, found)
                self._quote, at = char, found + 1
            elif char == b"/":  # a plain comment (a conditional one is code, crossed by the run)
                self._add(b" ", found)
                self._comment, at = True, found + 2
            elif char == b"\\":
                self._refuse(self._line, line, "holds a mariadb client command")
                return
            else:  # -- or #: the rest of the line is a comment
                break
        if self._buffer and self._quote is None:
            self._add(b"\n", end)

    def _next_special(self, line: bytes, at: int, delimiter: bytes) -> int:
        """Past whole strings and names closed on this line, to the next byte that matters."""
        end = _run(delimiter).match(line, at).end()  # type: ignore[union-attr]
        return -1 if end == len(line) else end

    def _in_string(self, line: bytes, at: int) -> int:
        quote = self._quote or b"'"
        if quote == b"`":
            close = line.find(b"`", at)
            if close < 0:
                self._add(line[at:] + b"\n", at)
                return len(line)
            self._add(line[at : close + 1], at)
            self._quote = None
            return close + 1
        pattern = _STRING_END[quote]
        while True:
            match = pattern.search(line, at)
            if match is None:
                self._add(line[at:] + b"\n", at)
                return len(line)
            if match.group() == quote:
                self._add(line[at : match.end()], at)
                self._quote = None
                return match.end()
            self._add(line[at : match.end()], at)
            at = match.end()

    def _add(self, text: bytes, at: int) -> None:
        if not text:
            return
        if not self._buffer:
            if not text.strip():
                return
            self._start = self._line
            self._column = at + len(text) - len(text.lstrip())
        self._buffer.append(text)
        self._size += len(text)
        if self._size > MAX_STATEMENT:
            self._refuse(self._start, b"".join(self._buffer[:1]), "is longer than 16 MiB")

    def _complete(self) -> None:
        raw = b"".join(self._buffer)
        start, whole_line = self._start, self._column == 0 and b"\n" not in raw
        self._buffer, self._size, self._start = [], 0, 0
        text = raw.decode("utf-8", "replace")
        code, strings, balanced = normalize(text)
        if not balanced:
            self._refuse(start, raw, "leaves a conditional comment open")
            return
        line = raw + self._delimiter if whole_line else None
        if problem := check_statement(code, strings, self._databases, line):
            self._refuse(start, raw, problem)

    def _refuse(self, line: int, statement: bytes, reason: str) -> None:
        if self.refusal is None:
            shown = " ".join(statement.decode("utf-8", "replace").split())
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            self.refusal = Refusal(line, f"({shown})" if shown else "", reason)


def _outside_strings(rows: bytes) -> bytes:
    """The rows with each string replaced by 0 (and a quote left where one is open), at memory
    speed: escaped pairs become ZZ (a backslash pairs with the byte after it, from the left, as
    in the client; outside a string a Z is refused), then quotes simply alternate."""
    if b"\\" in rows:
        rows = rows.replace(b"\\\\", b"ZZ").replace(b"\\'", b"ZZ")
    parts = rows.split(b"'")
    if len(parts) % 2 == 0:
        return b"'"
    return b"0".join(parts[0::2])


_RUNS: dict[bytes, re.Pattern[bytes]] = {}


def _run(delimiter: bytes) -> re.Pattern[bytes]:
    """Code up to the next byte that matters: a quote left open on the line, a comment's start,
    a client command's backslash or the delimiter. Strings and names closed on the line are
    crossed whole, in one match."""
    pattern = _RUNS.get(delimiter)
    if pattern is None:
        first = re.escape(delimiter[:1])
        rest = re.escape(delimiter[1:])
        not_delimiter = rb"" if not rest else rb"|" + first + rb"(?!" + rest + rb")"
        pattern = re.compile(
            rb"(?:[^'\"`\\#/\-" + first + rb"]+"
            rb"|`[^`]*`"
            rb"|'[^'\\]*(?:\\.[^'\\]*)*'"
            rb'|"[^"\\]*(?:\\.[^"\\]*)*"'
            rb"|/\*M?!|/(?!\*)|-(?!-(?:[\s\x00-\x1f]|$))" + not_delimiter + rb")*",
            re.S,
        )
        _RUNS[delimiter] = pattern
    return pattern
