"""Parse a prototxt collecting every field the schema does not know, not just the first.

``text_format`` stops at the first unknown field. To report them all at once, each unknown
field (with its value or ``{ … }`` block) is blanked out — newlines kept, so line numbers stay
right — and the text is parsed again, until it parses or fails for another reason. The caller
gets the net without those fields and one problem line per distinct (message, field), with
every ``file:line`` it occurs at.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from trtimport.importers.caffe.proto import caffe_pb2

_UNKNOWN_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(\w+)"')
#: One scalar value token: a quoted string or a bare word/number.
_SCALAR = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[^\s{}\[\]<>:;,#"']+""")
_SPACE = re.compile(r"(?:\s|#[^\n]*)*")
#: More rounds than this means something else is wrong; the parse error is then reported.
MAX_ROUNDS = 10_000


class UnknownFields:
    """Unknown fields found so far: ``(message, field) -> [line, …]`` in file order."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, str], list[tuple[int, int]]] = {}

    def add(self, message: str, field: str, line: int, column: int) -> None:
        """Record one occurrence."""
        self.lines.setdefault((message, field), []).append((line, column))

    def problems(self, source: str, where: Callable[[int], str]) -> list[str]:
        """One line per distinct field: ``source:line:col: unknown field 'x' in Message (…)``."""
        out = []
        for (message, field), places in self.lines.items():
            (line, column), rest = places[0], [n for n, _ in places[1:]]
            shown = ", ".join(str(n) for n in rest[:8]) + (" …" if len(rest) > 8 else "")
            more = f"; also at line(s) {shown}" if rest else ""
            out.append(
                f"{source}:{line}:{column}: unknown field '{field}' in "
                f"{message.removeprefix('caffe.')}{where(line)}{more}"
            )
        return out


def parse_collecting_unknown(
    text: str, parse: Callable[[str], caffe_pb2.NetParameter]
) -> tuple[caffe_pb2.NetParameter, UnknownFields]:
    """Parse with ``parse``, blanking out every unknown field; the net and what was removed.

    Errors other than unknown fields propagate from ``parse`` (a ``text_format.ParseError``).
    """
    from google.protobuf import text_format

    found = UnknownFields()
    for _ in range(MAX_ROUNDS):
        try:
            return parse(text), found
        except text_format.ParseError as err:
            match = _UNKNOWN_FIELD.search(str(err))
            if match is None:
                raise
            line = err.GetLine()
            start = _field_start(text, line, err.GetColumn(), match.group(2))
            if start is None:
                raise
            found.add(match.group(1), match.group(2), line, err.GetColumn())
            text = _blank(text, start, _field_end(text, start + len(match.group(2))))
    return parse(text), found


def _line_offset(text: str, line: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = text.index("\n", offset) + 1
    return offset


def _field_start(text: str, line: int, column: int, name: str) -> int | None:
    """Offset of the occurrence of ``name`` on ``line`` closest to the error's column."""
    base = _line_offset(text, line)
    end = text.find("\n", base)
    row = text[base : end if end >= 0 else len(text)]
    hits = [m.start() for m in re.finditer(rf"(?<![\w.]){re.escape(name)}(?!\w)", row)]
    if not hits:
        return None
    return base + min(hits, key=lambda h: abs(h - (column - 1)))


def _skip_space(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def _field_end(text: str, pos: int) -> int:
    """The end of a field's value (``: value``, ``: [a, b]`` or ``{ … }``) starting at ``pos``."""
    pos = _skip_space(text, pos)
    if pos < len(text) and text[pos] == ":":
        pos = _skip_space(text, pos + 1)
    if pos >= len(text):
        return pos
    opener = text[pos]
    if opener in "{<[":
        return _matching_close(text, pos)
    match = _SCALAR.match(text, pos)
    if match is None:
        return pos
    end = match.end()
    while match.group().startswith(("'", '"')):  # adjacent strings concatenate
        after = _skip_space(text, end)
        match = _SCALAR.match(text, after)
        if match is None or not match.group().startswith(("'", '"')):
            break
        end = match.end()
    return end


def _matching_close(text: str, pos: int) -> int:
    """The offset after the bracket closing the one at ``pos`` (skipping strings, comments)."""
    depth = 0
    token = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|#[^\n]*|[{}<>\[\]]""")
    for match in token.finditer(text, pos):
        char = match.group()[0]
        if char in "{<[":
            depth += 1
        elif char in "}>]":
            depth -= 1
            if depth == 0:
                return match.end()
    return len(text)


def _blank(text: str, start: int, end: int) -> str:
    """``text`` with ``[start, end)`` replaced by spaces, newlines kept."""
    middle = "".join("\n" if c == "\n" else " " for c in text[start:end])
    return text[:start] + middle + text[end:]
