"""One file's header as a person reads it (`deid-fast show`): knows how an element looks on a
line, not where the lines go.

In the habit of dcmdump: a line per element, its tag, VR, value and name; the file meta first;
the items of a sequence indented under it. Values are the ones `get_fields` reports (pydicom's,
as plain builtins); a long value or bytes are abbreviated with their length. Every element of
the header is shown, private ones and empty ones included; nothing after the first top-level
pixel data element is read, which is shown as a line of its own.
"""
import os
import re

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from deid_fast import archives
from deid_fast._values import to_builtin
from deid_fast.decode import decoded, read_header
from deid_fast.errors import InvalidDicomError
from deid_fast.inputs import path_text
from deid_fast.names import path_steps
from deid_fast.reader import DEFAULT_MAX_DEPTH, Limits
from deid_fast._scan import DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_HEADER_BYTES
from deid_fast.session import PydicomSession

#: Characters of a value shown before it is cut (the line says how long the value is).
VALUE_WIDTH = 64
#: ANSI colours, used on a terminal only.
COLOURS = {"tag": "\033[2m", "vr": "\033[36m", "name": "\033[32m", "private": "\033[33m",
           "note": "\033[2m", "end": "\033[0m"}

_TRANSFER_SYNTAX = {(True, True): "implicit VR little endian",
                    (False, True): "explicit VR little endian",
                    (False, False): "explicit VR big endian"}


class Style:
    def __init__(self, colour):
        self.colour = colour

    def __call__(self, kind, text):
        if not self.colour or not text:
            return text
        return f"{COLOURS[kind]}{text}{COLOURS['end']}"


def value_text(value):
    """A builtin value (as get_fields reports it) on one line: text in [brackets], a list joined
    with backslashes, bytes as their first bytes in hex, cut with the full length when long."""
    if isinstance(value, bytes):
        more = " ..." if len(value) > 16 else ""
        return f"<{len(value):,} bytes{': ' if value else ''}{value[:16].hex(' ')}{more}>"
    if value is None or value == "" or value == []:
        return "(no value)"
    values = value if isinstance(value, list) else [value]
    text = "\\".join(_one(item) for item in values)
    if len(text) > VALUE_WIDTH:
        text = f"{text[:VALUE_WIDTH]}... ({len(text):,} chars)"
    if all(isinstance(item, str) for item in values):
        text = f"[{text}]"
    return text + (f" ({len(values)} values)" if len(values) > 1 else "")


def _one(item):
    return printable(item.hex(" ") if isinstance(item, bytes) else str(item))


#: What a value may not put on a terminal as it is: control characters (an escape sequence
#: would drive the terminal), line and paragraph separators, and the bidirectional controls
#: that reorder what is shown.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text):
    """`text` with what `_UNPRINTABLE` matches written as an escape (`\\n`, `\\x1b`, `\\u202e`)."""
    if not _UNPRINTABLE.search(text):
        return text
    return _UNPRINTABLE.sub(lambda match: _NAMED.get(match[0]) or (
        f"\\x{ord(match[0]):02x}" if ord(match[0]) < 0x100 else f"\\u{ord(match[0]):04x}"), text)


def element_name(element):
    """The keyword, or for a private element its creator and tag within the block."""
    if element.tag.is_private:
        if element.tag.is_private_creator:
            return "private creator", True
        creator = getattr(element, "private_creator", None)
        block = f"({element.tag.group:04X},xx{element.tag.element & 0xFF:02X})"
        label = element.name if element.name not in ("Private tag data", "") else ""
        return (f"private {printable(repr(creator))} {block}" + (f" {label}" if label else "")
                if creator else f"private, no creator {block}"), True
    return element.keyword or element.name or "unknown", False


def header_lines(path, fields=(), colour=False, force=True):
    """The lines of `show` for the file at `path` (a list of str). `fields`: names or paths
    (`Sequence[0].Keyword`) to show instead of the whole header. Raises InvalidDicomError."""
    style = Style(colour)
    limits = Limits(DEFAULT_MAX_DEPTH, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_ELEMENTS)
    source = path
    if not os.path.lexists(path):
        member = archives.member_item(path)          # ARCHIVE!/member
        if isinstance(member, InvalidDicomError):
            raise member
        if member is not None:
            path, source = member
    header = limits.scan(source, force)
    with PydicomSession() as session:
        try:
            dataset, file_meta = decoded(path, lambda: read_header(header), header)
            selected = [(text, _find(dataset, file_meta, text)) for text in fields]
            return decoded(path, lambda: _lines(header, dataset, file_meta, selected, style),
                           header)
        finally:
            session.flush(path)


def _find(dataset, file_meta, text):
    """The elements a name or path names (items, for a path ending in [index]): an index picks
    that item, no index every item. A top-level name is looked up in the data set, then the
    file meta."""
    steps = path_steps(text)
    found = [dataset if _get(dataset, steps[0][0]) is not None else file_meta]
    for number, (name, index) in enumerate(steps):
        last = number == len(steps) - 1
        following = []
        for where in found:
            element = _get(where, name)
            if element is None:
                continue
            if last and index is None:
                following.append(element)
            elif isinstance(element.value, Sequence):
                items = list(element.value)
                following += items if index is None else items[index:index + 1]
        found = following
    return found


def _get(where, name):
    if where is None:
        return None
    key = int(name[1:5] + name[6:10], 16) if name.startswith("(") else name
    return where[key] if key in where else None


def _lines(header, dataset, file_meta, selected, style):
    encoding = _TRANSFER_SYNTAX.get((header.is_implicit_vr, header.is_little_endian), "")
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    lines = [style("note", f"# {path_text(header.path)}: {encoding}" +
                   (f", {syntax} ({syntax.name})" if syntax else "") +
                   (", deflated" if header.deflated else ""))]
    if selected:
        for text, found in selected:
            if not found:
                lines.append(style("note", f"# {text}: not in this file"))
            for where in found:
                if isinstance(where, Dataset):
                    lines.append(style("note", f"# {text}: an item"))
                    lines += _walk(where, style, 1)
                else:
                    lines += _walk_elements([where], style, 0)
        return lines
    if file_meta:
        lines.append(style("note", "# file meta"))
        lines += _walk(file_meta, style, 0)
    lines.append(style("note", "# data set"))
    lines += _walk(dataset, style, 0)
    if header.stopped_at:
        tag = header.stopped_at
        lines.append(f"{style('tag', f'({tag >> 16:04X},{tag & 0xFFFF:04X})')}    "
                     f"{style('note', '(pixel data: not read; the header ends here)')}")
    return lines


def _walk(dataset, style, depth):
    return _walk_elements([dataset[tag] for tag in sorted(dataset.keys())], style, depth)


def _walk_elements(elements, style, depth):
    """Lines for `elements` and everything they hold, without recursion (depth is bounded by the
    scanner, not by Python's stack)."""
    lines = []
    stack = [iter([(element, depth) for element in elements])]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        element, level = entry
        indent = "  " * level
        if isinstance(element, str):            # the line that opens an item
            lines.append(f"{indent}{style('note', element)}")
            continue
        name, private = element_name(element)
        tag = f"({element.tag.group:04X},{element.tag.element:04X})"
        label = style("private" if private else "name", name)
        if isinstance(element.value, Sequence) or element.VR == "SQ":
            items = list(element.value or [])
            count = f"{len(items)} item" + ("" if len(items) == 1 else "s")
            lines.append(f"{indent}{style('tag', tag)} {style('vr', 'SQ')} {count}  # {label}")
            children = []
            for number, item in enumerate(items):
                children.append((f"(FFFE,E000) item {number + 1} of {len(items)}", level + 1))
                children += [(item[key], level + 2) for key in sorted(item.keys())]
            stack.append(iter(children))
            continue
        value = value_text(to_builtin(element.value))
        lines.append(f"{indent}{style('tag', tag)} {style('vr', element.VR)} {value}  # {label}")
    return lines
