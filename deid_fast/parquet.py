"""The Parquet output: one table, one row per file, one column per field key, types unified
across the run (needs pyarrow: `pip install 'deid-fast[parquet]'`).

Rows are written in parts of bounded size (`PART_ROWS` rows, `PART_CELLS` rows x columns, or
about `PART_BYTES` bytes of values) to `OUT.parts/`, each under a temporary name renamed when complete, so a killed run
leaves only whole parts, which `resume` continues from. `finish()` writes the parts into one
file, each part a row group, converting the columns whose type the run widened, and renames it
to OUT.

Types: int (64-bit), float, str, bytes, and lists of these. Two kinds of one key unify to the
wider: int and float to float; any other two different scalars to str (an int's or float's
`str()`, bytes as base64); a scalar and a list to a list (the scalar as a one-item list). A
sequence item (`expand_sequences=False`) is its JSON text. An int beyond 64 bits is its str.
"""
import base64
import os
import shutil
import tempfile

from deid_fast.writers import RECORD_COLUMNS, OutputError, check_folder, to_json

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - the message is tested with pyarrow installed
    pa = pq = None

PART_ROWS = 8192
PART_BYTES = 64 << 20
#: Rows x columns per part: a run over heterogeneous files has thousands of sparse columns,
#: and a part's memory (and the writer's, per column) grows with both.
PART_CELLS = 4_000_000

INT, FLOAT, STR, BYTES, LIST = "int", "float", "str", "bytes", "list"
# Kinds stored as str whose values need converting: a sequence item, an int beyond 64 bits.
JSON, BIG = "json", "big"
MIXED = "mixed"   # marks the kind of a list whose items are of several kinds
_INT64 = (-(1 << 63), (1 << 63) - 1)


def kind_of(value):
    """The type of one value: a scalar kind, or (LIST, kind of its items)."""
    kind = type(value)
    if kind is str:
        return STR
    if kind is float:
        return FLOAT
    if kind is int:
        return INT if _INT64[0] <= value <= _INT64[1] else BIG
    if kind is bytes:
        return BYTES
    if kind is list:
        items = None
        mixed = False
        for item in value:
            if item is not None:
                item_kind = kind_of(item)
                mixed = mixed or (items is not None and item_kind != items)
                items = unify(items, item_kind)
        return (LIST, items or STR, MIXED) if mixed else (LIST, items or STR)
    if kind is dict:
        return JSON
    return STR


def unify(first, second):
    """The narrowest kind both kinds convert to (None is the kind of no value)."""
    if first is None or first == second:
        return second
    if second is None:
        return first
    first_list, second_list = isinstance(first, tuple), isinstance(second, tuple)
    if first_list or second_list:
        return LIST, unify(first[1] if first_list else first, second[1] if second_list else second)
    if {first, second} == {INT, FLOAT}:
        return FLOAT
    return STR


def convert(value, kind):
    """`value` as a value of `kind` (a kind it unifies to)."""
    if value is None:
        return None
    if isinstance(kind, tuple):
        return [convert(item, kind[1]) for item in (value if type(value) is list else [value])]
    if kind in (STR, JSON, BIG):
        if type(value) is str:
            return value
        if type(value) is bytes:
            return base64.b64encode(value).decode("ascii")
        if type(value) is dict:
            return to_json(value)
        return str(value)
    if kind == FLOAT:
        return float(value)
    return value


def arrow_type(kind):
    if isinstance(kind, tuple):
        return pa.list_(arrow_type(kind[1]))
    return {INT: pa.int64(), FLOAT: pa.float64(), STR: pa.string(), BYTES: pa.binary(),
            JSON: pa.string(), BIG: pa.string()}[kind]


def _as_is(kind):
    """Whether values all of this kind go to Arrow unconverted."""
    if isinstance(kind, tuple):
        return len(kind) == 2 and _as_is(kind[1])
    return kind not in (JSON, BIG)


def kind_of_arrow(data_type):
    if pa.types.is_list(data_type):
        return LIST, kind_of_arrow(data_type.value_type)
    for kind in (INT, FLOAT, STR, BYTES):
        if data_type == arrow_type(kind):
            return kind
    if pa.types.is_null(data_type):
        return None
    raise OutputError(f"a part file has a column of type {data_type}, which deid_fast does "
                      "not write: is it from another program?")


def _size(fields):
    return 16 * len(fields) + sum(len(value) for value in fields.values()
                                  if type(value) is str or type(value) is bytes)


def table_of(rows, final=None):
    """The Arrow table of `rows` (Records) and the kinds its values need, by key. With
    `final` (key -> kind for every field column of the run, in order) the table has exactly
    those columns, values converted to them."""
    # column by column in one pass over the values: a run's table is wide and sparse
    values = {}
    kinds = {}
    mixed = set()     # keys whose values are of more than one kind: converted one by one
    count = len(rows)
    for row, record in enumerate(rows):
        if record.fields:
            for key, value in record.fields.items():
                kind = kind_of(value)
                column = values.get(key)
                if column is None:
                    column = values[key] = [None] * count
                    kinds[key] = kind
                elif kind != kinds[key]:
                    kinds[key] = unify(kinds[key], kind)
                    mixed.add(key)
                column[row] = value
    if final is not None and not kinds.keys() <= final.keys():
        raise ValueError(f"columns missing from the final schema: {set(kinds) - set(final)}")
    columns = {column: pa.array([getattr(record, column) for record in rows], pa.string())
               for column in RECORD_COLUMNS}
    for key, kind in (kinds if final is None else final).items():
        column = values.get(key)
        if column is None:
            columns[key] = pa.nulls(count, arrow_type(kind))
            continue
        if key in mixed or not _as_is(kind) or kinds[key] != kind:
            column = [convert(value, kind) for value in column]
        columns[key] = pa.array(column, arrow_type(kind))
    return pa.table(columns), kinds


def part_path(parts, number):
    """The name of part `number` in the folder `parts`: parts are put together in name order."""
    return os.path.join(parts, f"part-{number:06d}.parquet")


def write_part(table, path):
    """Write a part under a temporary name, renamed when complete."""
    pq.write_table(table, path + ".tmp")
    os.replace(path + ".tmp", path)


def schema_of(kinds):
    """The run's Arrow schema: the record columns, then a column per field key."""
    return pa.schema([(column, pa.string()) for column in RECORD_COLUMNS] +
                     [(key, arrow_type(kind)) for key, kind in kinds.items()])


def unified(table, schema):
    """`table` (a row group of a part) in the run's schema."""
    columns = []
    present = {name: number for number, name in enumerate(table.column_names)}
    for field in schema:
        if field.name not in present:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(present[field.name])
        if column.type == field.type:
            columns.append(column)
            continue
        kind = kind_of_arrow(field.type) if field.name not in RECORD_COLUMNS else STR
        columns.append(pa.array([convert(value, kind) for value in column.to_pylist()],
                                field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def merge(parts, kinds, where):
    """Write the part files `parts`, in order, as one Parquet file at `where` (a path or a
    writable binary stream), each row group in the run's schema."""
    schema = schema_of(kinds)
    writer = pq.ParquetWriter(where if isinstance(where, str) else pa.PythonFile(where, mode="w"),
                              schema)
    try:
        for path in parts:
            part = pq.ParquetFile(path)
            for group in range(part.num_row_groups):
                writer.write_table(unified(part.read_row_group(group), schema))
    finally:
        writer.close()


class ParquetWriter:
    def __init__(self, path, resume=False, stream=None):
        if pa is None:
            raise OutputError("Parquet output needs pyarrow: pip install 'deid-fast[parquet]'")
        self.path, self.stream = path, stream
        if stream is None:
            check_folder(path)
            self.parts = path + ".parts"
            if not resume and os.path.isdir(self.parts):
                shutil.rmtree(self.parts)
            os.makedirs(self.parts, exist_ok=True)
            if resume and os.path.exists(path) and not self._part_names():
                os.replace(path, self._part_name(0))   # a finished run: continue it
        else:
            self.parts = tempfile.mkdtemp(prefix="deid-fast-parquet-")
        self.kinds = {}       # field key -> kind unified over the run, in first-seen order
        self.rows = []
        self.bytes = 0
        self.part_keys = set()
        self.written = 0
        for name in self._part_names():
            schema = pq.read_schema(os.path.join(self.parts, name))
            for field in schema:
                if field.name not in RECORD_COLUMNS:
                    self.kinds[field.name] = unify(self.kinds.get(field.name),
                                                   kind_of_arrow(field.type))
        # after the highest: parts written by Dask workers can leave gaps when a run is killed
        self.next_part = 1 + max((int(name[5:-8]) for name in self._part_names()), default=-1)

    def _part_name(self, number):
        return part_path(self.parts, number)

    def _part_names(self):
        return sorted(name for name in os.listdir(self.parts) if name.endswith(".parquet"))

    def add_part(self, kinds, rows):
        """Count a part written elsewhere, whose values need `kinds`."""
        for key, kind in kinds.items():
            self.kinds[key] = unify(self.kinds.get(key), kind)
        self.written += rows

    def done_paths(self):
        paths = set()
        for name in self._part_names():
            paths.update(pq.read_table(os.path.join(self.parts, name),
                                       columns=["path"]).column(0).to_pylist())
        return paths

    def write(self, record):
        self.rows.append(record)
        self.written += 1
        if record.fields:
            self.bytes += _size(record.fields)
            self.part_keys.update(record.fields)
        if (len(self.rows) >= PART_ROWS or self.bytes >= PART_BYTES or
                len(self.rows) * (len(self.part_keys) + len(RECORD_COLUMNS)) >= PART_CELLS):
            self._write_part()

    def _write_part(self):
        rows, self.rows, self.bytes = self.rows, [], 0
        self.part_keys = set()
        if not rows:
            return
        table, kinds = table_of(rows)
        for key, kind in kinds.items():
            self.kinds[key] = unify(self.kinds.get(key), kind)
        final = self._part_name(self.next_part)
        write_part(table, final)
        self.next_part += 1

    def finish(self):
        self._write_part()
        parts = [os.path.join(self.parts, name) for name in self._part_names()]
        if self.stream is None:
            partial = self.path + ".partial"
            merge(parts, self.kinds, partial)
            os.replace(partial, self.path)
        else:
            merge(parts, self.kinds, self.stream)
            self.stream.flush()
        shutil.rmtree(self.parts)

    def abandon(self):
        """A run stopped early: what is written stays in the parts, for --resume."""
        self._write_part()
        if self.stream is not None:
            shutil.rmtree(self.parts)
