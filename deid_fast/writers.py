"""Output formats of the command line: knows files on disk and line shapes, not DICOM.

- json: the nested `{entity: {item: fields}}` of `get_identifiers` (held in memory).
- jsonl: one object per file: path, entity, item, skipped, reason, fields; or, with `--flat`,
  the table's layout (`deid_fast.table`): one top-level key per field, typed by the dictionary.
- csv: one row per file, one column per field key across the run.
- parquet: a dataset in the table's layout (`deid_fast.parquet`).
- dicom-json: one DICOM JSON object per line.

The line formats (jsonl, csv, dicom-json) are written by the workers: each writes a chunk's
lines (`write_lines`) into a file of its own in a private folder next to the output, and the
parent only appends those files, in input order, to the output (in the kernel, with
copy_file_range), so neither its time nor its memory depends on how large the headers are. CSV
goes through a spool, turned into the table at the end, since its columns are known only then.
To standard output, and on a Dask cluster, the chunks' lines come back in memory instead.

No output is half-written under its name: each is written under a temporary name next to it and
renamed when complete. JSONL and Parquet can resume an interrupted run (`done_paths()`).
Values are JSON as `deid_fast.jsontext` writes them: bytes as base64 text; in CSV a multi-value
is joined with `\\` and a sequence kept whole is its JSON text.
"""
import csv
import json
import os
import shutil
import tempfile
import threading

from deid_fast import bulk
from deid_fast.dicom import skipped_record
from deid_fast.errors import InvalidDicomError
from deid_fast.jsontext import base64_text, dumps, dumps_text, loads
from deid_fast.resume import DonePaths
from deid_fast.table import RECORD_COLUMNS, flat_line

FORMATS = ("json", "jsonl", "csv", "parquet", "dicom-json")
EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
              ".parquet": "parquet", ".pq": "parquet"}
RESUMABLE = ("jsonl", "parquet")

NESTED, FLAT, DICOM_JSON = "nested", "flat", "dicom-json"
#: A line output is flushed to disk every this many bytes.
SYNC_BYTES = 64 << 20


class OutputError(Exception):
    """The output cannot be written as asked (a usage error of the command line)."""


def format_of(path, explicit=None):
    if explicit is not None:
        if explicit not in FORMATS:
            raise OutputError(f"unknown format {explicit!r}: one of {', '.join(FORMATS)}")
        return explicit
    extension = os.path.splitext(path)[1].lower()
    if extension not in EXTENSIONS:
        raise OutputError(f"cannot tell the format of {path!r} from its extension: name it "
                          f"{', '.join(EXTENSIONS)} or give --format")
    return EXTENSIONS[extension]


def jsonl_line(record):
    """The JSONL line (bytes, with its newline) of a Record: path, entity, item, skipped,
    reason, fields."""
    head = dumps({"path": record.path, "entity": record.entity, "item": record.item,
                  "skipped": record.skipped, "reason": record.reason})
    return head[:-1] + b',"fields":' + dumps(record.fields) + b"}\n"


def check_folder(path):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"the folder of {path!r} does not exist")


def remove_temporary(folder):
    """Remove what a killed run left under temporary names in `folder`."""
    for name in os.listdir(folder):
        if name.endswith(".tmp"):
            os.unlink(os.path.join(folder, name))


def replace_output(path, produce):
    """`produce(name)` creates the output (a file or a folder) under a temporary name next to
    `path`, which then takes `path`'s place; an earlier output there is removed after."""
    folder, base = os.path.split(os.path.abspath(path))
    temporary = tempfile.mkdtemp(dir=folder, prefix=f".{base}.", suffix=".new")
    os.rmdir(temporary)              # a unique name: `produce` creates what it needs there
    produce(temporary)
    if os.path.isdir(path) and not os.path.islink(path):
        old = tempfile.mkdtemp(dir=folder, prefix=f".{base}.", suffix=".old")
        os.rmdir(old)
        os.replace(path, old)
        os.replace(temporary, path)
        shutil.rmtree(old)
    else:
        if os.path.isdir(temporary) and os.path.lexists(path):
            os.unlink(path)
        os.replace(temporary, path)


# --- in a worker: a chunk's lines ----------------------------------------------------------------


class LineJob:
    """What a worker needs to write a chunk's lines: the reading job, the shape of a line, the
    folder for spill files (None: never spill), and whether to list the field keys (CSV)."""

    __slots__ = ("job", "shape", "spill_folder", "keys")

    def __init__(self, job, shape, spill_folder=None, keys=False):
        self.job, self.shape, self.spill_folder, self.keys = job, shape, spill_folder, keys


class _ChunkText:
    """A chunk's text: written to a new spill file in `spill_folder` (the parent then copies it
    in the kernel: cheaper than the pipe for the parent, which would otherwise be the
    bottleneck of a run), or held in memory when there is no spill folder."""

    def __init__(self, spill_folder):
        self.pieces, self.spill, self.handle = [], None, None
        if spill_folder is not None:
            descriptor, self.spill = tempfile.mkstemp(dir=spill_folder, prefix="chunk-",
                                                      suffix=".tmp")
            self.handle = os.fdopen(descriptor, "wb", buffering=1 << 20)

    def write(self, data):
        if self.handle is not None:
            self.handle.write(data)
        else:
            self.pieces.append(data)

    def result(self):
        if self.handle is not None:
            self.handle.close()
            return b"", self.spill
        return b"".join(self.pieces), None


def write_lines(line_job, items, offset=0, context=None):
    """In a worker: the lines of `items` in `line_job.shape`. Returns `(rows, skipped,
    (text, spill, keys))`: the number of lines; the files skipped as `(path, kind, reason,
    offset)` tuples (kind "no-entity" or "no-item", offset None, for files written without a
    group); the lines (bytes), or the name of the spill file holding them; the field keys in
    first-seen order when `line_job.keys`, else None."""
    text = _ChunkText(line_job.spill_folder)
    skipped, keys, rows = [], {} if line_job.keys else None, 0
    if line_job.shape == DICOM_JSON:
        for outcome in bulk.read_dicom_json(line_job.job, items):
            if isinstance(outcome, InvalidDicomError):
                skipped.append((outcome.path, outcome.kind, outcome.reason, outcome.offset))
            else:
                text.write(outcome + b"\n")
                rows += 1
        return rows, skipped, (*text.result(), None)
    line_of = flat_line if line_job.shape == FLAT else jsonl_line
    for record, skip in bulk.read_for_output(line_job.job, items):
        if skip is not None:
            skipped.append(skip)
        if keys is not None and record.fields:
            keys.update(dict.fromkeys(record.fields))
        text.write(line_of(record))
        rows += 1
    return rows, skipped, (*text.result(), None if keys is None else list(keys))


# --- in the parent: copying the chunks -------------------------------------------------------


class _Target:
    """Where lines go: standard output, or a file written as `path + ".partial"` and renamed
    to `path` when finished (on resume, the partial file, or the finished one, is continued,
    dropping a last line cut short by a killed run)."""

    def __init__(self, path, resume=False, stream=None):
        self.path, self.stream = path, stream
        self.unsynced = 0
        if stream is not None:
            self.handle = stream
            self.partial = None
            return
        check_folder(path)
        self.partial = path + ".partial"
        if resume and not os.path.exists(self.partial) and os.path.exists(path):
            os.replace(path, self.partial)      # a finished run: continue it with new files
        if resume and os.path.exists(self.partial):
            _drop_torn_line(self.partial)
            self.handle = open(self.partial, "ab")
        else:
            self.handle = open(self.partial, "wb")
        self.syncer = _Syncer(self.handle.fileno())

    def copy(self, text, spill):
        if spill is None:
            self.handle.write(text)
            self.unsynced += len(text)
        else:
            self.unsynced += append_file(spill, self.handle)
        if self.partial is not None and self.unsynced >= SYNC_BYTES:
            self.handle.flush()
            self.syncer.request()
            self.unsynced = 0

    def close(self):
        self.handle.flush()
        if self.partial is not None:
            self.syncer.stop()
            os.fsync(self.handle.fileno())
            self.handle.close()
            os.replace(self.partial, self.path)

    def abandon(self):
        if self.partial is not None:
            self.syncer.stop()
            self.handle.close()


class _Syncer:
    """Flushes a file to disk in a thread of its own whenever asked, so that an output is
    written to disk as the run goes (the last fsync then has little left to do) while the
    parent keeps handing out work."""

    def __init__(self, descriptor):
        self.descriptor = descriptor
        self.wanted = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="deid-fast-sync", daemon=True)
        self.thread.start()

    def request(self):
        self.wanted.set()

    def _run(self):
        while True:
            self.wanted.wait()
            self.wanted.clear()
            if self.stopping:
                return
            try:
                os.fdatasync(self.descriptor)
            except OSError:       # the final fsync, in the parent, reports a write error
                pass

    def stop(self):
        self.stopping = True
        self.wanted.set()
        self.thread.join()


def append_file(source, target):
    """Append the file `source` to the open binary file `target`, then remove `source`: in
    the kernel (copy_file_range) where it can, else through a buffer. Returns its size."""
    target.flush()
    with open(source, "rb") as handle:
        size = total = os.fstat(handle.fileno()).st_size
        try:
            while size > 0:
                copied = os.copy_file_range(handle.fileno(), target.fileno(), size)
                if copied == 0:
                    break
                size -= copied
        except (AttributeError, OSError):        # not Linux, or not between these two files
            handle.seek(total - size)
            shutil.copyfileobj(handle, target, 1 << 20)
    os.unlink(source)
    return total


def _drop_torn_line(path):
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        keep = size
        while keep > 0:
            step = min(65536, keep)
            handle.seek(keep - step)
            block = handle.read(step)
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = keep - step + newline + 1
                break
            keep -= step
        if keep != size:
            handle.truncate(keep)


def _jsonl_paths(path):
    done = DonePaths()
    with open(path, "rb") as handle:
        for line in handle:
            if line.endswith(b"\n"):
                done.add(loads(line)["path"])
    return done


def spill_folder(path):
    """A new private folder next to the output `path` for the workers' chunk files (on the
    output's filesystem, so that copying them stays in the kernel); None for standard output
    (the chunks' lines then come back through the pipe)."""
    if path is None:
        return None
    folder, base = os.path.split(os.path.abspath(path))
    return tempfile.mkdtemp(dir=folder, prefix=f".{base}.", suffix=".chunks")


class ChunkWriter:
    """What the writers of chunks share (the protocol `cli` drives): `work(job, items, offset,
    context)` is what a worker does with a chunk, `chunks(items)` cuts the files into
    `(items, context)`, `take(items, context, results)` puts a chunk's results into the output
    in input order (results as `bulk.run_chunks` gives them: a file lost with its worker has
    its InvalidDicomError), then `finish(workers)` or `abandon()`. Every result is `(rows,
    skipped, payload)`."""

    work = staticmethod(write_lines)
    written = 0

    def chunks(self, items, cluster=None):
        if cluster is not None:       # a Dask task costs far more than a local one
            return ((chunk, None) for chunk in bulk.chunked(items, cluster.CHUNK_FILES, 1 << 62))
        return ((chunk, None) for chunk in bulk.chunked(items))

    def take(self, items, context, results):
        for offset, result in results:
            if isinstance(result, InvalidDicomError):
                result = self.lost(result, context, offset)
            rows, _skipped, payload = result
            self.put(payload)
            self.written += rows

    def lost(self, error, context, offset):
        """The result `work` would give for a file whose worker died (twice) reading it."""
        skipped = [(error.path, error.kind, error.reason, error.offset)]
        if self.job.shape == DICOM_JSON:
            return 0, skipped, (b"", None, None)
        line_of = flat_line if self.job.shape == FLAT else jsonl_line
        return 1, skipped, (line_of(skipped_record(error)), None, [])

    def _remove_spill(self):
        if self.job.spill_folder is not None:
            shutil.rmtree(self.job.spill_folder, ignore_errors=True)


class LineWriter(ChunkWriter):
    """JSONL (nested or flat) and DICOM JSON: the chunks' lines copied in input order."""

    def __init__(self, path, job, shape, resume=False, stream=None):
        self.target = _Target(path, resume, stream)
        self.job = LineJob(job, shape, spill_folder(None if stream is not None else path))

    def done_paths(self):
        return DonePaths() if self.target.partial is None else _jsonl_paths(self.target.partial)

    def put(self, payload):
        text, spill, _keys = payload
        self.target.copy(text, spill)

    def finish(self, workers=None):
        self.target.close()
        self._remove_spill()

    def abandon(self):
        self.target.abandon()
        self._remove_spill()


class CsvWriter(ChunkWriter):
    """The chunks' nested JSONL lines are spooled (the columns are known only at the end), then
    written as CSV: one row per file, a column per field key in first-seen order."""

    def __init__(self, path, job, stream=None):
        self.path, self.stream = path, stream
        if stream is None:
            check_folder(path)
        folder = spill_folder(path) if stream is None else tempfile.mkdtemp(
            prefix="deid-fast-csv-")
        self.job = LineJob(job, NESTED, folder, keys=True)
        self.spool_name = os.path.join(self.job.spill_folder, "spool.jsonl")
        self.spool = open(self.spool_name, "xb")
        self.keys = {}   # every field key of the run, in first-seen order

    def put(self, payload):
        text, spill, keys = payload
        if keys:
            self.keys.update(dict.fromkeys(keys))
        if spill is None:
            self.spool.write(text)
        else:
            append_file(spill, self.spool)

    def finish(self, workers=None):
        self.spool.close()
        header = list(RECORD_COLUMNS) + list(self.keys)
        if self.stream is not None:
            self._write(self.stream, header)
            self.stream.flush()
        else:
            def produce(temporary):
                with open(temporary, "w", encoding="utf-8", newline="") as target:
                    self._write(target, header)
            replace_output(self.path, produce)
        self._remove_spill()

    def _write(self, target, header):
        writer = csv.writer(target)
        writer.writerow(header)
        position = {key: number for number, key in enumerate(header)}
        with open(self.spool_name, "rb") as spool:
            for line in spool:
                row = loads(line)
                cells = [""] * len(header)      # rows are sparse: fill only what a file has
                for number, column in enumerate(RECORD_COLUMNS):
                    cells[number] = csv_cell(row[column])
                for key, value in (row["fields"] or {}).items():
                    cells[position[key]] = csv_cell(value)
                writer.writerow(cells)

    def abandon(self):
        self.spool.close()
        self._remove_spill()


def csv_cell(value):
    """A CSV cell of a value as read back from JSON (bytes are base64 text already):
    multi-values joined with `\\`, sequences JSON."""
    if value is None:
        return ""
    if isinstance(value, list):
        if any(isinstance(item, dict) for item in value):
            return dumps_text(value)
        return "\\".join(csv_cell(item) for item in value)
    if isinstance(value, dict):
        return dumps_text(value)
    return str(value)


class JsonWriter:
    """The nested dict of `get_identifiers`, grouped as it groups (deid_fast.dicom.group)."""

    def __init__(self, path, group, stream=None):
        self.path, self.stream, self.group = path, stream, group
        self.records = []
        if stream is None:
            check_folder(path)
        self.written = 0

    def write(self, record):
        if record.skipped is None:
            self.records.append(record)

    def finish(self, workers=None):
        lookup = self.group(self.records)
        self.written = sum(len(items) for items in lookup.values())
        text = json.dumps(lookup, ensure_ascii=False, indent=1, default=base64_text) + "\n"
        if self.stream is not None:
            self.stream.write(text)
            self.stream.flush()
            return

        def produce(temporary):
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text)
        replace_output(self.path, produce)

    def abandon(self):
        pass

