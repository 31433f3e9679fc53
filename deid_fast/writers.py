"""Output formats of the command line: knows files on disk and table types, not DICOM.

Every writer takes the Records of a run, one `write()` each, then `finish()`. None leaves a
half-written file under the output's name: each writes to a temporary name next to it and
renames when complete. JSONL and Parquet can resume an interrupted run (`done_paths()`).

- json: the nested `{entity: {item: fields}}` of `get_identifiers` (held in memory).
- jsonl: one object per file: path, entity, item, skipped, reason, fields.
- csv: one row per file, one column per field key across the run.
- parquet: one row per file, one column per field key, types unified across the run.
- dicom-json: one DICOM JSON object per line (written by `DicomJsonWriter`).

Values that JSON or a table cell cannot hold as they are: bytes become base64 text; in CSV a
multi-value is joined with `\\` and a sequence (`expand_sequences=False`) is its JSON text.
"""
import base64
import csv
import json
import os

from deid_fast.dicom import Record

FORMATS = ("json", "jsonl", "csv", "parquet", "dicom-json")
EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
              ".parquet": "parquet", ".pq": "parquet"}
RESUMABLE = ("jsonl", "parquet")
#: The columns every row starts with, before the field keys (which are DICOM keywords or
#: private tags, so they never clash with these).
RECORD_COLUMNS = ("path", "entity", "item", "skipped", "reason")


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


def _base64(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value):
    """JSON text (one line) of a value made of R6 builtins: bytes as base64."""
    return json.dumps(value, ensure_ascii=False, default=_base64)


def jsonl_line(record):
    return to_json({"path": record.path, "entity": record.entity, "item": record.item,
                    "skipped": record.skipped, "reason": record.reason,
                    "fields": record.fields}) + "\n"


def _partial_name(path):
    return path + ".partial"


def check_folder(path):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"the folder of {path!r} does not exist")


class _Stdout:
    """`-o -`: written straight through (no temporary name, no resume)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        self.stream.write(text)

    def close(self):
        self.stream.flush()


class _LineFile:
    """A text file of lines written under `path + ".partial"` and renamed to `path` when
    finished. On resume it continues the partial file (or the finished one), dropping a last
    line cut short by a killed run."""

    def __init__(self, path, resume):
        check_folder(path)
        self.path = path
        self.partial = _partial_name(path)
        if resume and not os.path.exists(self.partial) and os.path.exists(path):
            os.replace(path, self.partial)      # a finished run: continue it with new files
        if resume and os.path.exists(self.partial):
            _drop_torn_line(self.partial)
            self.handle = open(self.partial, "a", encoding="utf-8", newline="\n")
        else:
            self.handle = open(self.partial, "w", encoding="utf-8", newline="\n")

    def write(self, text):
        self.handle.write(text)

    def close(self):
        self.handle.close()
        os.replace(self.partial, self.path)

    def abandon(self):
        self.handle.close()


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
    paths = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n"):
                paths.add(json.loads(line)["path"])
    return paths


def read_jsonl(job, items):
    """In a worker, `bulk.read_identifiers` with each Record already its JSONL line, as
    `(line, skipped, reason)`: the parent then only writes lines (errors stay errors)."""
    from deid_fast.bulk import read_identifiers   # bulk is the layer above
    return [(jsonl_line(outcome), outcome.skipped, outcome.reason)
            if type(outcome) is Record else outcome for outcome in read_identifiers(job, items)]


class JsonlWriter:
    def __init__(self, path, resume=False, stream=None):
        self.out = _Stdout(stream) if stream is not None else _LineFile(path, resume)
        self.written = 0

    def done_paths(self):
        return _jsonl_paths(self.out.partial) if isinstance(self.out, _LineFile) else set()

    def write(self, record):
        self.write_line(jsonl_line(record))

    def write_line(self, line):
        self.out.write(line)
        self.written += 1

    def finish(self):
        self.out.close()

    def abandon(self):
        if isinstance(self.out, _LineFile):
            self.out.abandon()


class DicomJsonWriter(JsonlWriter):
    """One DICOM JSON object per line, for each file read (skipped files have no line)."""

    def write(self, path, text):  # noqa: D102 - a file's DICOM JSON text, not a Record
        self.out.write(text + "\n")
        self.written += 1


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

    def finish(self):
        lookup = self.group(self.records)
        self.written = sum(len(items) for items in lookup.values())
        text = json.dumps(lookup, ensure_ascii=False, indent=1, default=_base64) + "\n"
        if self.stream is not None:
            self.stream.write(text)
            self.stream.flush()
            return
        partial = _partial_name(self.path)
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(partial, self.path)

    def abandon(self):
        pass


def csv_cell(value):
    """A CSV cell of an R6 value: multi-values joined with `\\`, bytes base64, sequences JSON."""
    if value is None:
        return ""
    if isinstance(value, list):
        if any(isinstance(item, dict) for item in value):
            return to_json(value)
        return "\\".join(csv_cell(item) for item in value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return to_json(value)
    return str(value)


class CsvWriter:
    """Rows are spooled as JSONL (the columns are known only at the end), then written."""

    def __init__(self, path, stream=None):
        # bytes are base64 text in the spool, which is also their CSV cell
        self.path, self.stream = path, stream
        if stream is None:
            check_folder(path)
            self.spool_name = path + ".spool.jsonl"
        else:
            import tempfile
            descriptor, self.spool_name = tempfile.mkstemp(suffix=".jsonl")
            os.close(descriptor)
        self.spool = open(self.spool_name, "w", encoding="utf-8", newline="\n")
        self.keys = {}   # every field key of the run, in first-seen order
        self.written = 0

    def write(self, record):
        if record.fields:
            self.keys.update(dict.fromkeys(record.fields))
        self.spool.write(jsonl_line(record))
        self.written += 1

    def finish(self):
        self.spool.close()
        header = list(RECORD_COLUMNS) + list(self.keys)
        target = self.stream
        partial = None
        if target is None:
            partial = _partial_name(self.path)
            target = open(partial, "w", encoding="utf-8", newline="")
        try:
            writer = csv.writer(target)
            writer.writerow(header)
            with open(self.spool_name, encoding="utf-8") as spool:
                for line in spool:
                    row = json.loads(line)
                    fields = row.pop("fields") or {}
                    writer.writerow([csv_cell(row[column]) for column in RECORD_COLUMNS] +
                                    [csv_cell(fields.get(key))
                                     for key in self.keys])
        finally:
            if partial is not None:
                target.close()
        if partial is not None:
            os.replace(partial, self.path)
        else:
            target.flush()
        os.remove(self.spool_name)

    def abandon(self):
        self.spool.close()
        os.remove(self.spool_name)

