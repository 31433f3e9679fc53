"""The Parquet output: a Parquet dataset (a folder of part files) in the layout of
`deid_fast.table`, written by the workers (needs pyarrow: `pip install 'deid-fast[parquet]'`).

- Each worker reads a chunk of `CHUNK_FILES` files and writes it as one part (more when its
  values pass `PART_BYTES`), under a temporary name; the parent renames the parts of each chunk
  into place in input order, so the complete parts are always a prefix of the run, and their
  names (`part-CCCCCCCC-OOOOO.parquet`: chunk number, then the index in the chunk of the part's
  first file) sort in input order. The parent never touches the data.
- A part's columns are the keyword columns the parent knew when it sent the chunk, plus those
  of its own files, so the columns settle after the first chunks. At the end, the parts that
  lack a column of the run are rewritten by the workers with that column all null (in practice
  the first few), `_common_metadata` gets the run's schema, and the folder takes OUT's name:
  every part then has the same schema, which every reader reads as one table.
- While it runs the folder is `OUT.partial/`; `--resume` continues it (or a finished OUT), and
  new chunks are numbered after the highest. Every part is created under a new name in the
  folder the run made (checked by device and inode in the workers), never through a link.
- `single_file()` puts a dataset into one file: an explicit step (`--single-file`, or standard
  output), with memory bounded by one row group.
"""
import array
import io
import os
import re
import shutil
import tempfile

from deid_fast import bulk, outfiles, table
from deid_fast.errors import InvalidDicomError
from deid_fast.outfiles import Folder, OutputError
from deid_fast.reader import skipped_record
from deid_fast.resume import DonePaths
from deid_fast.writers import ChunkWriter

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - the message is tested with pyarrow installed
    pa = pq = None

#: Files per chunk, and so at most rows per part: large enough that a million files make about
#: two thousand parts, small enough that a worker holds little (about 70 MB for the test files).
CHUNK_FILES = 512
#: Bytes of paths per chunk: two tasks sent ahead to a worker must fit in its pipe (the
#: local pool's rule, see bulk.CHUNK_BYTES), so very long paths make smaller parts.
CHUNK_BYTES = 64 << 10
#: About this many bytes of values make a part of their own (a chunk of large headers is
#: written as several parts, so a worker's memory is bounded by about this, not by the chunk).
PART_BYTES = 32 << 20
#: Columns of a part that are not keyword columns: the record's and the two maps.
_OTHER_COLUMNS = len(table.RECORD_COLUMNS) + 2
#: Rows of a row group of `single_file()` (and about 128 MB of values at most).
SINGLE_FILE_ROWS = 65536
SINGLE_FILE_BYTES = 128 << 20
COMMON_METADATA = "_common_metadata"


def _need_pyarrow():
    if pa is None:
        raise OutputError("Parquet output needs pyarrow: pip install 'deid-fast[parquet]'")


def part_name(chunk, offset):
    return f"part-{chunk:08d}-{offset:05d}.parquet"


_PART_NAME = re.compile(r"part-(\d{8})-(\d{5})\.parquet\Z")


def chunk_of(name):
    """The chunk number of a part's file name, or None for another file."""
    match = _PART_NAME.match(name)
    return None if match is None else int(match[1])


def part_names(folder):
    """The part files of a dataset folder (a path, or an open `Folder`), in input order."""
    names = folder.names() if isinstance(folder, Folder) else os.listdir(folder)
    return sorted(name for name in names if chunk_of(name) is not None)


def remove_temporary(folder):
    """Remove what a killed run left under temporary names in `folder` (a `Folder`)."""
    for name in folder.names():
        if name.startswith(".") and name.endswith(".tmp"):
            folder.remove(name)


# --- in a worker -------------------------------------------------------------------------------


class PartJob:
    """What a worker needs to write parts: the reading job and the dataset folder's
    `(path, (device, inode))`."""

    __slots__ = ("job", "folder")

    def __init__(self, job, folder):
        self.job = job
        self.folder = folder


def write_table(data, folder, name):
    """Write `data` (an Arrow table) in `folder` (an open `Folder`) under a new temporary name
    (created exclusively, never through a link), flushed to disk; returns that name."""
    return folder.write_temporary(f".{name}.", lambda handle: pq.write_table(data, handle))


def write_parts(part_job, items, offset, context):
    """In a worker: read `items` (files `offset`... of chunk `context[0]`) and write them as
    parts, each with at least the keyword columns `context[1]`. Returns `(rows, skipped,
    (parts, keywords))` (see `writers.ChunkWriter`): the rows written, the files skipped as
    `(path, kind, reason, offset)` tuples, the `(temporary name, final name, keyword columns)`
    of each part, and the keyword columns the parts have that `context[1]` has not."""
    chunk, known = context
    parts, skipped, keywords = [], [], set(known)
    builder, first = table.TableBuilder(), offset
    folder = outfiles.reopen(*part_job.folder)
    try:
        for index, (record, skip) in enumerate(bulk.read_for_output(part_job.job, items),
                                               offset):
            if skip is not None:
                skipped.append(skip)
            builder.add(record)
            if builder.size >= PART_BYTES:
                parts.append(_flush(builder, known, folder, chunk, first, keywords))
                builder, first = table.TableBuilder(), index + 1
        if builder.rows:
            parts.append(_flush(builder, known, folder, chunk, first, keywords))
    except BaseException:
        for temporary, _name, _columns in parts:
            folder.remove(temporary)
        raise
    finally:
        folder.close()
    return len(items), skipped, (parts, sorted(keywords - set(known)))


def _flush(builder, known, folder, chunk, first, keywords):
    keywords.update(builder.keywords())
    name = part_name(chunk, first)
    data = builder.table(known)
    return write_table(data, folder, name), name, data.num_columns - _OTHER_COLUMNS


def conform_parts(conform_job, names, offset=0, context=None):
    """In a worker: rewrite each part of `names` that lacks a column of the run's keyword
    columns with that column all null, one row group at a time. `conform_job` is `(keywords,
    (folder path, (device, inode)))`. Returns the number rewritten."""
    keywords, where = conform_job
    target = table.schema(keywords)
    rewritten = 0
    folder = outfiles.reopen(*where)
    try:
        for name in names:
            with folder.open_file(name) as source:
                part = pq.ParquetFile(source)
                if part.schema_arrow.equals(target):
                    continue

                def rewrite(handle, part=part):
                    with pq.ParquetWriter(handle, target) as writer:
                        for group in range(part.num_row_groups):
                            writer.write_table(conformed(part.read_row_group(group), target))
                folder.write_atomically(name, rewrite)
            rewritten += 1
    finally:
        folder.close()
    return rewritten


def conformed(data, target):
    """`data` (a table in this layout) with the columns of `target`, the missing ones null."""
    columns = []
    for field in target:
        index = data.schema.get_field_index(field.name)
        columns.append(data.column(index) if index >= 0 else
                       pa.nulls(data.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=target)


# --- in the parent -----------------------------------------------------------------------------


class DatasetWriter(ChunkWriter):
    """The parent's side of a Parquet run into the dataset folder of `output` (an
    `writers.Output`; with `stream`, a temporary folder, then one file to the stream): hands
    out chunks, renames the workers' parts into place, and finishes the dataset (the protocol
    of `writers.ChunkWriter`)."""

    work = staticmethod(write_parts)

    def __init__(self, job, output=None, stream=None, single_file=False):
        _need_pyarrow()
        self.output, self.stream, self.single_file = output, stream, single_file
        if stream is not None:
            path = tempfile.mkdtemp(prefix="deid-fast-parquet-")
            self.folder = Folder(path, os.open(path, os.O_RDONLY | os.O_DIRECTORY |
                                               os.O_NOFOLLOW | os.O_CLOEXEC))
        else:
            self.folder = output.partial_folder()
            remove_temporary(self.folder)
        self.job = PartJob(job, (self.folder.path, self.folder.key))
        try:     # pyarrow imports pandas when it first builds an array: done here, before the
            import pandas  # noqa: F401   workers fork, their copies share its memory
        except ImportError:
            pass
        self.keywords = set()
        # the keyword columns of each part, to find those that lack some at the end: 12 bytes
        # a part (a million files make about two thousand parts)
        self.part_ids, self.part_columns = array.array("Q"), array.array("I")
        highest = -1
        for name in part_names(self.folder):
            highest = max(highest, chunk_of(name))
            names = [field.name for field in self._read(name, pq.read_schema)
                     if table.is_column(field.name)]
            self.keywords.update(names)
            self._add_part(name, len(names))
        if job.options.select is not None:   # fields=: the columns are known from the start
            self.keywords.update(name for name in job.options.select if table.is_column(name))
        self.next_chunk = highest + 1
        self.written = 0

    def _read(self, name, read, **options):
        """`read(file, **options)` of the part `name`, opened without following a link."""
        with self.folder.open_file(name) as handle:
            return read(handle, **options)

    def done_paths(self):
        """The paths in the complete parts, as written (`deid_fast.inputs.path_text`)."""
        done = DonePaths()
        for name in part_names(self.folder):
            done.add_many(self._read(name, pq.read_table, columns=["path"]).column(0).to_pylist())
        return done

    def chunks(self, items, cluster=None):
        """`(items, context)` per chunk of `items`, for `write_parts`: the chunk's number and
        the columns known when it is taken (the same chunks on a cluster: the same parts)."""
        for number, chunk in enumerate(bulk.chunked(items, CHUNK_FILES, CHUNK_BYTES),
                                       self.next_chunk):
            self.next_chunk = number + 1
            yield chunk, (number, tuple(sorted(self.keywords)))

    def lost(self, error, context, offset):
        """A file lost with its worker (twice) is a part of its own, of one skipped row."""
        builder = table.TableBuilder()
        builder.add(skipped_record(error))
        name = part_name(context[0], offset)
        return 1, [(error.path, error.kind, error.reason, error.offset)], (
            [(write_table(builder.table(), self.folder, name), name, 0)], [])

    def put(self, payload):
        """Put a chunk's parts into place (in input order, so the complete parts are always a
        prefix of the run)."""
        parts, keywords = payload
        for temporary, final, columns in parts:
            self.folder.rename(temporary, final)
            self._add_part(final, columns)
        self.keywords.update(keywords)

    def _add_part(self, name, columns):
        match = _PART_NAME.match(name)
        self.part_ids.append(int(match[1]) << 20 | int(match[2]))
        self.part_columns.append(columns)

    def for_cluster(self):
        """Workers of a cluster write parts into the folder as local ones do; the folder is
        checked by its inode only (the device number differs between the nodes that mount a
        shared filesystem)."""
        self.job = PartJob(self.job.job, (self.folder.path, (None, self.folder.key[1])))

    def finish(self, workers=None):
        """Give every part the run's columns (in `workers` processes), write
        `_common_metadata`, and give the dataset OUT's name (or write it to the stream)."""
        remove_temporary(self.folder)      # what dead workers left
        keywords = tuple(sorted(self.keywords))
        lacking = [part_name(ident >> 20, ident & 0xFFFFF)
                   for ident, columns in zip(self.part_ids, self.part_columns)
                   if columns < len(keywords)]
        self.rewritten = 0
        if lacking:
            conform_job = (keywords, (self.folder.path, self.folder.key))
            self.rewritten = sum(result for _items, _context, results in bulk.run_chunks(
                conform_parts, ((chunk, None) for chunk in bulk.chunked(lacking, 4, 1 << 62)),
                conform_job, workers) for _offset, result in results
                if not isinstance(result, InvalidDicomError))
        schema = table.schema(keywords)
        self.columns = len(schema)
        if self.stream is not None:
            single_file(self.folder, self.stream)
            self.stream.flush()
            self._remove_stream_folder()
            return
        metadata = io.BytesIO()
        pq.write_metadata(schema, metadata)
        self.folder.write_file(COMMON_METADATA, metadata.getvalue())
        self.folder.sync()
        if self.single_file:
            self.output.write_whole(lambda handle: single_file(self.folder, handle))
            self.folder.close()
            self.output.folder.remove_tree(self.output.partial)
            self.output.folder.remove(self.output.sidecar)     # one file is not resumable
        else:
            self.folder.close()
            self.output.finish()

    def _remove_stream_folder(self):
        path = self.folder.path
        self.folder.close()
        shutil.rmtree(path, ignore_errors=True)

    def abandon(self):
        """A run stopped early: the parts in place stay for --resume."""
        if self.stream is not None:
            self._remove_stream_folder()
        elif self.folder.descriptor is not None:
            remove_temporary(self.folder)
            self.folder.close()


def single_file(folder, where):
    """The parts of the dataset `folder` (a `Folder`; the parts all have its schema) as one
    Parquet file written to `where` (a writable binary stream), in input order, the rows
    regrouped into row groups of up to `SINGLE_FILE_ROWS` rows (`SINGLE_FILE_BYTES`): memory
    is bounded by one row group."""
    names = part_names(folder)
    if names:
        with folder.open_file(names[0]) as handle:
            schema = pq.read_schema(handle)
    else:
        schema = table.schema(())
    with pq.ParquetWriter(pa.PythonFile(where, mode="w"), schema) as writer:
        pending, rows, size = [], 0, 0
        for name in names:
            with folder.open_file(name) as handle:
                source = pq.ParquetFile(handle)
                for group in range(source.num_row_groups):
                    data = conformed(source.read_row_group(group), schema)
                    pending.append(data)
                    rows += data.num_rows
                    size += data.nbytes
                    if rows >= SINGLE_FILE_ROWS or size >= SINGLE_FILE_BYTES:
                        writer.write_table(pa.concat_tables(pending), row_group_size=rows)
                        pending, rows, size = [], 0, 0
        if pending or not names:
            data = pa.concat_tables(pending) if pending else schema.empty_table()
            writer.write_table(data, row_group_size=max(rows, 1))
