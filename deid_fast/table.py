"""The table layout of the bulk outputs (Parquet, flat JSONL, Dask frames): one row per file,
one column per top-level keyword, its type fixed by pydicom's dictionary.

Because a column's type follows from the keyword alone, every worker writes rows that agree
with every other worker's without seeing them: there is no unification pass, and a table of
any archive has at most one column per keyword of the dictionary (a few hundred in practice),
however many files, items or private tags it holds.

Columns, in this order:

- `path`, `entity`, `item`, `skipped`, `reason` (text), as in a `Record` (the path as
  `deid_fast.inputs.path_text` writes it: valid UTF-8 whatever the file name);
- a column per top-level keyword, in tag order, typed by the keyword's VR and VM in pydicom's
  dictionary: text VRs (AE AS CS DA DT LO LT PN SH ST TM UC UI UR UT) are strings; US, SS, UL,
  SL, SV, IS, AT and "US or SS" are 64-bit integers (UV unsigned); FL, FD and DS are 64-bit
  floats; OB, OW, OD, OF, OL, OV, UN and "OB or OW" are binary; a keyword whose VM is not 1
  ("1-n", "3", ...) is a list of those (a single value is a one-item list); a sequence is the
  JSON text of its items (each item a `{field: value}` object, as
  `get_fields(expand_sequences=False)` gives it);
- `values_as_read` (map of text to text): a value that does not fit its column (the `str`
  pydicom keeps for an invalid DS or IS, several values where the dictionary says VM 1, a
  value of another type because the file's VR differs from the dictionary's), under its
  keyword, as JSON text; the typed column is null for that row. Nothing is lost;
- `private` (map of text to text): private elements (with `include_private=True`), keyed by
  their tag as the fields are (`"(0019,1001)"`), each value as JSON text.

JSON text is `deid_fast.jsontext`'s: bytes as base64, floats that are not finite as `NaN`,
`Infinity`, `-Infinity`.
"""
import math
from typing import NamedTuple

from pydicom.datadict import DicomDictionary, RepeatersDictionary

from deid_fast.inputs import path_text
from deid_fast.jsontext import dumps, dumps_text

RECORD_COLUMNS = ("path", "entity", "item", "skipped", "reason")
VALUES_AS_READ = "values_as_read"
PRIVATE = "private"

TEXT, INT, UINT, FLOAT, BINARY, SEQUENCE = "text", "int", "uint", "float", "binary", "sequence"

_KIND_OF_VR = {
    **dict.fromkeys(("AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
                     "UI", "UR", "UT"), TEXT),
    **dict.fromkeys(("US", "SS", "UL", "SL", "SV", "IS", "AT", "US or SS",
                     "US or SS or OW", "US or OW"), INT),
    "UV": UINT,
    **dict.fromkeys(("FL", "FD", "DS"), FLOAT),
    **dict.fromkeys(("OB", "OW", "OD", "OF", "OL", "OV", "UN", "OB or OW"), BINARY),
    "SQ": SEQUENCE,
}


class Column(NamedTuple):
    """A keyword's column: its name, where it sorts (the tag; x of a repeating group as 0),
    the type of its values and whether it holds a list of them."""

    name: str
    order: int
    kind: str
    multiple: bool


def _columns():
    columns = {}
    for tag, (vr, vm, _name, _retired, keyword) in DicomDictionary.items():
        if keyword and vr in _KIND_OF_VR:
            columns[keyword] = Column(keyword, tag, _KIND_OF_VR[vr], vm != "1")
    for mask, (vr, vm, _name, _retired, keyword) in RepeatersDictionary.items():
        if keyword and vr in _KIND_OF_VR and keyword not in columns:
            columns[keyword] = Column(keyword, int(mask.replace("x", "0"), 16),
                                      _KIND_OF_VR[vr], vm != "1")
    return columns


#: keyword -> Column, for every keyword of pydicom's dictionary that can hold a value.
COLUMNS = _columns()


def is_column(name):
    return name in COLUMNS


def ordered(names):
    """Keyword column names in table order (by tag)."""
    return sorted(names, key=lambda name: (COLUMNS[name].order, name))


class _Misfit(Exception):
    pass


def _text(value, finite):
    if type(value) is str:
        return value
    raise _Misfit


def _float(value, finite):
    if type(value) is float and (not finite or math.isfinite(value)):
        return value
    raise _Misfit


def _binary(value, finite):
    if type(value) is bytes:
        return value
    raise _Misfit


def _int(value, finite):
    if type(value) is int and -(1 << 63) <= value < (1 << 63):
        return value
    raise _Misfit


def _uint(value, finite):
    if type(value) is int and 0 <= value < (1 << 64):
        return value
    raise _Misfit


_FIT = {TEXT: _text, FLOAT: _float, BINARY: _binary, INT: _int, UINT: _uint}


def fitted(column, value, finite=False):
    """`value` as `column` holds it; raises _Misfit when it does not fit. With `finite`, a
    float that is not finite does not fit (JSON has no number for it)."""
    kind = column.kind
    if kind == SEQUENCE:
        if type(value) is list and all(type(item) is dict for item in value):
            return dumps_text(value)
        raise _Misfit
    fit = _FIT[kind]
    if column.multiple:
        if type(value) is list:
            return [fit(item, finite) for item in value]
        return [fit(value, finite)]
    return fit(value, finite)


class Row(NamedTuple):
    """One file's fields split as the table holds them."""

    typed: dict         # keyword -> value of its column's type, in the fields' order
    as_read: dict       # keyword -> JSON text, values that do not fit their column
    private: dict       # "(gggg,eeee)" -> JSON text


#: keyword -> the Python type its values have, for keyword columns of one value that is not a
#: sequence: the common case, checked inline by `split`.
_SCALAR_TYPE = {name: {TEXT: str, INT: int, UINT: int, FLOAT: float, BINARY: bytes}[column.kind]
                for name, column in COLUMNS.items()
                if not column.multiple and column.kind != SEQUENCE}
_INT64 = 1 << 63


def split(fields, finite=False):
    """The `Row` of a fields dict read with `expand_sequences=False`."""
    typed, as_read, private = {}, {}, {}
    if not fields:
        return Row(typed, as_read, private)
    scalar_type = _SCALAR_TYPE.get
    for key, value in fields.items():
        value_type = type(value)
        if value_type is scalar_type(key):
            if value_type is str or value_type is bytes or (
                    value_type is int and -_INT64 <= value < _INT64 and
                    COLUMNS[key].kind == INT) or (
                    value_type is float and (not finite or math.isfinite(value))):
                typed[key] = value
                continue
        column = COLUMNS.get(key)
        if column is None:
            private[key] = dumps_text(value)
            continue
        try:
            typed[key] = fitted(column, value, finite)
        except _Misfit:
            as_read[key] = dumps_text(value)
    return Row(typed, as_read, private)


def flat_line(record):
    """The flat JSONL line (bytes, with its newline) of a Record read with
    `expand_sequences=False`: the record's columns, then one key per typed field, then
    `values_as_read` and `private` when they hold anything. Types are the table's."""
    row = split(record.fields, finite=True)
    head = dumps({"path": path_text(record.path), "entity": record.entity,
                  "item": record.item, "skipped": record.skipped, "reason": record.reason})
    parts = [head[:-1]]
    if row.typed:
        parts.append(dumps(row.typed)[1:-1])
    for name, value in ((VALUES_AS_READ, row.as_read), (PRIVATE, row.private)):
        if value:
            parts.append(b'"' + name.encode() + b'":' + dumps(value))
    return b",".join(parts) + b"}\n"


# --- Arrow (pyarrow is imported by the callers that need it) -----------------------------------


def arrow_type(column):
    import pyarrow as pa
    scalar = {TEXT: pa.string(), INT: pa.int64(), UINT: pa.uint64(), FLOAT: pa.float64(),
              BINARY: pa.binary(), SEQUENCE: pa.string()}[column.kind]
    return pa.list_(scalar) if column.multiple else scalar


def schema(keywords):
    """The Arrow schema of a table with these keyword columns (in table order)."""
    import pyarrow as pa
    text_map = pa.map_(pa.string(), pa.string())
    return pa.schema([(name, pa.string()) for name in RECORD_COLUMNS] +
                     [(name, arrow_type(COLUMNS[name])) for name in ordered(keywords)] +
                     [(VALUES_AS_READ, text_map), (PRIVATE, text_map)])


class TableBuilder:
    """Rows gathered column by column, then one Arrow table: what a worker holds for one part.
    `size` estimates the bytes the values take, to bound a part."""

    def __init__(self):
        self.records = {name: [] for name in RECORD_COLUMNS}
        self.values = {}          # keyword -> ([row numbers], [values]): columns are sparse
        self.as_read = []
        self.private = []
        self.rows = 0
        self.size = 0

    def add(self, record):
        for name, value in zip(RECORD_COLUMNS, (path_text(record.path), record.entity,
                                                record.item, record.skipped, record.reason)):
            self.records[name].append(value)
        row = split(record.fields)
        size = 64
        for key, value in row.typed.items():
            column = self.values.get(key)
            if column is None:
                column = self.values[key] = ([], [])
            column[0].append(self.rows)
            column[1].append(value)
            size += _size(value)
        for texts in (row.as_read, row.private):
            size += sum(len(key) + len(text) for key, text in texts.items())
        self.as_read.append(list(row.as_read.items()) if row.as_read else None)
        self.private.append(list(row.private.items()) if row.private else None)
        self.rows += 1
        self.size += size

    def keywords(self):
        return self.values.keys()

    def table(self, keywords=(), exactly=False):
        """The Arrow table of the rows, with a column for each of `keywords` and each keyword
        a row has (only `keywords` when `exactly`), in table order (a column no row has is all
        null)."""
        import pyarrow as pa
        target = schema(set(keywords) if exactly else set(keywords) | self.values.keys())
        arrays = []
        for field in target:
            if field.name in self.records:
                arrays.append(pa.array(self.records[field.name], field.type))
            elif field.name == VALUES_AS_READ:
                arrays.append(pa.array(self.as_read, field.type))
            elif field.name == PRIVATE:
                arrays.append(pa.array(self.private, field.type))
            elif field.name in self.values:
                rows, values = self.values[field.name]
                if len(rows) < self.rows:
                    full = [None] * self.rows
                    for row, value in zip(rows, values):
                        full[row] = value
                    values = full
                arrays.append(pa.array(values, field.type))
            else:
                arrays.append(pa.nulls(self.rows, field.type))
        return pa.Table.from_arrays(arrays, schema=target)


def _size(value):
    kind = type(value)
    if kind is str or kind is bytes:
        return 16 + len(value)
    if kind is list:
        return 16 + sum(_size(item) for item in value)
    return 16
