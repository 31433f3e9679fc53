"""Output formats of the command line: knows line shapes and output files, not DICOM.

- json: the nested `{entity: {item: fields}}` of `get_identifiers` (held in memory).
- jsonl: one object per file: path, entity, item, skipped, reason, fields; or, with `--flat`,
  the table's layout (`deid_fast.table`): one top-level key per field, typed by the dictionary.
- csv: one row per file, one column per field key across the run.
- parquet: a dataset in the table's layout (`deid_fast.parquet`).
- dicom-json: one DICOM JSON object per line.

The line formats (jsonl, csv, dicom-json) are written by the workers: each writes a chunk's
lines (`write_lines`) into a file of its own in a private folder (`Spill`), and the parent only
appends those files, in input order, to the output (in the kernel, with copy_file_range), so
neither its time nor its memory depends on how large the headers are. CSV goes through a
spool, turned into the table at the end, since its columns are known only then. On a Dask
cluster the chunks' lines come back in memory instead.

An output file is an `Output`: locked against a second run, written under a temporary name
(`OUT.partial` for the resumable formats, which `--resume` continues) and renamed when
complete; the resumable ones carry a sidecar `OUT.deid-fast.json` naming the options that made
them (`--resume` continues only an output made with the same). Paths are written as
`deid_fast.inputs.path_text` writes them; values as `deid_fast.jsontext` writes them: bytes as
base64 text; in CSV a multi-value is joined with `\\`, a sequence kept whole is its JSON text,
and text that a spreadsheet would run as a formula is neutralised (`csv_cell`).
"""
import csv
import errno
import hashlib
import io
import json
import os
import re
import stat
import tempfile
import threading

from deid_fast import bulk, outfiles
from deid_fast.errors import InvalidDicomError
from deid_fast.inputs import not_a_file, path_text
from deid_fast.jsontext import base64_text, dumps, dumps_text, loads
from deid_fast.outfiles import (DamagedOutput, Folder, Lock,  # noqa: F401 (re-exported)
                                OutputError)
from deid_fast.reader import skipped_record
from deid_fast.resume import DonePaths
from deid_fast.table import RECORD_COLUMNS, flat_line

FORMATS = ("json", "jsonl", "csv", "parquet", "dicom-json")
EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
              ".parquet": "parquet", ".pq": "parquet"}
RESUMABLE = ("jsonl", "parquet")

NESTED, FLAT, DICOM_JSON = "nested", "flat", "dicom-json"
#: A line output is flushed to disk every this many bytes.
SYNC_BYTES = 64 << 20
SIDECAR = ".deid-fast.json"
_PART_NAME = re.compile(r"part-\d{8}-\d{5}\.parquet\Z")


#: The formats a file named with each extension may hold (a text extension never holds
#: Parquet, nor .parquet text); another extension takes the format given.
FORMATS_OF_EXTENSION = {".json": ("json", "dicom-json"), ".jsonl": ("jsonl", "dicom-json"),
                        ".ndjson": ("jsonl", "dicom-json"), ".csv": ("csv",),
                        ".parquet": ("parquet",), ".pq": ("parquet",)}


def format_of(path, explicit=None):
    """The format of the output `path` ("" for standard output): `explicit` when given and
    allowed under the path's extension, else the extension's."""
    extension = os.path.splitext(path)[1].lower()
    if explicit is not None:
        if explicit not in FORMATS:
            raise OutputError(f"unknown format {explicit!r}: one of {', '.join(FORMATS)}")
        allowed = FORMATS_OF_EXTENSION.get(extension, FORMATS)
        if explicit not in allowed:
            raise OutputError(f"{explicit} cannot be written to {path!r}: a {extension} file "
                              f"holds {' or '.join(allowed)}; name the output for its format")
        return explicit
    if extension not in EXTENSIONS:
        raise OutputError(f"cannot tell the format of {path!r} from its extension: name it "
                          f"{', '.join(EXTENSIONS)} or give --format")
    return EXTENSIONS[extension]


def jsonl_line(record):
    """The JSONL line (bytes, with its newline) of a Record: path, entity, item, skipped,
    reason, fields."""
    head = dumps({"path": path_text(record.path), "entity": record.entity, "item": record.item,
                  "skipped": record.skipped, "reason": record.reason})
    return head[:-1] + b',"fields":' + dumps(record.fields) + b"}\n"


def fingerprint(version, fmt, options):
    """What made an output, for the sidecar: the tool's version, the format and every option
    that changes its rows (`options`, JSON-able), with a digest of them all."""
    made_by = {"tool": "deid-fast", "version": version, "format": fmt, "options": options}
    made_by["fingerprint"] = hashlib.sha256(
        json.dumps(made_by, sort_keys=True).encode()).hexdigest()
    return made_by


def _differences(old, new):
    keys = ("version", "format")
    changed = [f"{key} {old.get(key)!r} -> {new[key]!r}" for key in keys if old.get(key) != new[key]]
    before = old.get("options") or {}
    changed += [f"{name} {before.get(name)!r} -> {value!r}"
                for name, value in new["options"].items() if before.get(name) != value]
    return "; ".join(changed) or "the sidecar's digest does not match"


# --- the output file or dataset ------------------------------------------------------------------


class Output:
    """The output `path` of a run and what surrounds it: its folder (opened once; every name
    is created in it without following links), the lock, and for the resumable formats the
    partial name and the sidecar. Checked when made, before any file is read: the folder exists
    and is writable (the lock is created in it), OUT is not a folder (a Parquet dataset of
    deid-fast excepted), no other run writes it, and an interrupted run's `.partial` is only
    continued with `resume` (with the same options) or discarded with `overwrite`."""

    def __init__(self, path, made_by=None, resume=False, overwrite=False, dataset=False):
        self.path = path
        self.base = os.path.basename(os.path.abspath(path))
        self.folder = outfiles.output_folder(path)
        self.partial = self.base + ".partial"
        self.sidecar = self.base + SIDECAR
        self.made_by = made_by
        self.resuming = False
        try:
            self._check_target(dataset)
            self.lock = Lock(self.folder, self.base)
        except BaseException:
            self.folder.close()
            raise
        try:
            self._remove_leftovers()
        except BaseException:
            self.release()
            raise
        try:
            if made_by is not None:
                self._check_resumable(resume, overwrite)
        except BaseException:
            self.release()
            raise

    def _remove_leftovers(self):
        """Remove what an earlier run on this output left when it was killed (SIGKILL gives no
        chance to clean up): its chunk folder, temporary files, an old output moved aside. The
        lock says no run is using them; only names of the run's own patterns are touched."""
        pattern = re.compile(re.escape(f".{self.base}.") +
                             r"(?:[0-9a-f]{12}\.(?:chunks|tmp)|\d+\.old)\Z")
        for name in self.folder.names():
            if pattern.match(name):
                self.folder.remove_tree(name)

    def _check_target(self, dataset):
        info = self.folder.lstat(self.base)
        if info is not None and stat.S_ISDIR(info.st_mode) and not (
                dataset and self.is_dataset(self.base)):
            raise OutputError(f"{self.path} is a folder: name a file (or a Parquet dataset of "
                              "deid-fast) as the output")
        if info is not None and not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)
                                     or stat.S_ISLNK(info.st_mode)):
            # the output takes its name by a rename, which would replace the device or pipe
            # (`-o /dev/null` run as root replaced /dev/null with a file)
            raise OutputError(f"{self.path} {not_a_file(info.st_mode).split(':')[0]}: name a "
                              "file as the output, or - for standard output")

    def is_dataset(self, name):
        """Whether the folder `name` is a Parquet dataset deid-fast wrote."""
        try:
            inner = self.folder.subfolder(name)
        except OutputError:
            return False
        try:
            names = inner.names()
        finally:
            inner.close()
        return "_common_metadata" in names and all(
            name == "_common_metadata" or _PART_NAME.match(name) or
            (name.startswith(".") and name.endswith(".tmp")) for name in names)

    def _check_resumable(self, resume, overwrite):
        partial, finished = self.folder.lstat(self.partial), self.folder.lstat(self.base)
        if not resume:
            if partial is not None and not overwrite:
                raise OutputError(f"{self.folder.join(self.partial)} holds an interrupted run: "
                                  "continue it with --resume, or discard it with --overwrite")
            if partial is not None:
                self.folder.remove_tree(self.partial)
            return
        if partial is None and finished is None:
            return                                   # nothing to continue: a new run
        for name, info in ((self.partial, partial), (self.base, finished)):
            if info is not None and stat.S_ISLNK(info.st_mode):
                raise OutputError(f"{self.folder.join(name)} is a symbolic link: not resumed "
                                  "through it; nothing was changed")
        made_by = outfiles.read_sidecar(self.folder, self.sidecar)
        if made_by is None:
            raise OutputError(f"{self.path} has no sidecar {self.sidecar}: it was not written by "
                              "deid-fast (or by a version before sidecars); nothing was changed")
        if made_by.get("fingerprint") != self.made_by["fingerprint"]:
            raise OutputError(f"{self.path} was made with other options ("
                              f"{_differences(made_by, self.made_by)}): --resume continues only "
                              "the same run; nothing was changed")
        if partial is None:
            self.folder.rename(self.base, self.partial)  # a finished run: continue it
        self.resuming = True

    def write_sidecar(self):
        """Record what makes the output (after its partial name exists, so that a crash in
        between leaves the older sidecar, which then refuses a resume with new options)."""
        self.folder.write_file(self.sidecar, json.dumps(self.made_by, indent=1).encode())

    def open_partial(self):
        """The `.partial` file for writing at its end (for `resume`, after its torn last line,
        if any, is dropped), and the paths it holds already (a `DonePaths`)."""
        # buffered writers: their write() writes everything, where a raw one may stop short
        if self.made_by is None:    # not resumable: a new temporary name, removed on failure
            descriptor, self.partial = self.folder.create_temporary(f".{self.base}.")
            return os.fdopen(descriptor, "wb"), DonePaths()
        if self.resuming:
            descriptor = self.folder.open_own(self.partial)
            raw = os.fdopen(descriptor, "rb+", buffering=0)
            try:
                done = _done_lines(raw, self.folder.join(self.partial))
            except BaseException:
                raw.close()
                raise
            raw.seek(0, os.SEEK_END)
            return io.BufferedWriter(raw), done
        descriptor = self.folder.create(self.partial)
        self.write_sidecar()
        return os.fdopen(descriptor, "wb"), DonePaths()

    def abandon(self):
        """A run that failed: a resumable `.partial` stays, a temporary one goes."""
        if self.made_by is None:
            self.folder.remove(self.partial)

    def partial_folder(self):
        """The `.partial` folder of a dataset: the one to continue, or a new one."""
        if self.resuming:
            return self.folder.subfolder(self.partial)
        folder = self.folder.make_folder(self.partial)
        self.write_sidecar()
        return folder

    def finish(self):
        """The `.partial` file or folder takes OUT's name."""
        self._take_name(self.partial)

    def _take_name(self, name):
        """`name` (a complete file or folder) becomes OUT, made durable; an earlier OUT is
        removed (a folder cannot be renamed over, nor onto a file: it is moved aside first)."""
        info = self.folder.lstat(self.base)
        if info is not None and (stat.S_ISDIR(info.st_mode) or
                                 stat.S_ISDIR(self.folder.lstat(name).st_mode)):
            self._move_aside()
        self.folder.rename(name, self.base)
        self.folder.sync()

    def _move_aside(self):
        old = f".{self.base}.{os.getpid()}.old"
        self.folder.rename(self.base, old)
        self.folder.remove_tree(old)

    def write_whole(self, produce):
        """Write the output in one go: `produce(handle)` writes it into a new temporary file
        (binary), which then takes OUT's name."""
        temporary = self.folder.write_temporary(f".{self.base}.", produce)
        try:
            self._take_name(temporary)
        except BaseException:
            self.folder.remove(temporary)
            raise

    def release(self):
        self.lock.release()
        self.folder.close()


def _done_lines(handle, name):
    """The paths of the complete lines of a partial JSONL output (a `DonePaths`), after
    checking every line; a last line cut short by a killed run is then dropped. A damaged line
    is an OutputError naming it, and nothing is changed."""
    done = DonePaths()
    handle.seek(0)
    reader = io.BufferedReader(handle, 1 << 20)
    complete, number = 0, 0
    for number, line in enumerate(reader, 1):
        if not line.endswith(b"\n"):
            break                       # cut short: dropped below
        try:
            path = loads(line)["path"]
            if not isinstance(path, str):
                raise ValueError("it has no path")
        except (ValueError, KeyError, TypeError) as exc:
            done.close()
            raise DamagedOutput(f"{name}, line {number:,}: not a line deid-fast wrote ({exc}); "
                              "nothing was changed: fix or remove the line, or start again "
                              "with --overwrite") from None
        done.add(path)
        complete += len(line)
    reader.detach()
    if handle.seek(0, os.SEEK_END) != complete:
        handle.truncate(complete)
    return done


# --- in a worker: a chunk's lines ----------------------------------------------------------------


class LineJob:
    """What a worker needs to write a chunk's lines: the reading job, the shape of a line, the
    spill folder's `(path, (device, inode))` (None: keep the lines in memory), and whether to
    list the field keys (CSV)."""

    __slots__ = ("job", "shape", "spill", "keys")

    def __init__(self, job, shape, spill=None, keys=False):
        self.job, self.shape, self.spill, self.keys = job, shape, spill, keys


class _ChunkText:
    """A chunk's text: written to a new file in the spill folder (the parent then copies it in
    the kernel: cheaper than the pipe for the parent, which would otherwise be the bottleneck
    of a run, and a chunk of large headers is never held whole), or held in memory when there
    is no spill folder."""

    def __init__(self, spill):
        self.pieces, self.name, self.handle = [], None, None
        if spill is not None:
            folder = outfiles.reopen(*spill)
            try:
                descriptor, self.name = folder.create_temporary("chunk-", mode=0o600)
            finally:
                folder.close()
            self.handle = os.fdopen(descriptor, "wb", buffering=1 << 20)

    def write(self, data):
        if self.handle is not None:
            self.handle.write(data)
        else:
            self.pieces.append(data)

    def result(self):
        if self.handle is not None:
            self.handle.close()
            return b"", self.name
        return b"".join(self.pieces), None

    def discard(self):
        if self.handle is not None:
            self.handle.close()


def write_lines(line_job, items, offset=0, context=None):
    """In a worker: the lines of `items` in `line_job.shape`. Returns `(rows, skipped,
    (text, spill, keys))`: the number of lines; the files skipped as `(path, kind, reason,
    offset)` tuples (kind "no-entity" or "no-item", offset None, for files written without a
    group); the lines (bytes), or the name of the spill file holding them; the field keys in
    first-seen order when `line_job.keys`, else None."""
    text = _ChunkText(line_job.spill)
    skipped, keys, rows = [], {} if line_job.keys else None, 0
    try:
        if line_job.shape == DICOM_JSON:
            for outcome in bulk.read_dicom_json(line_job.job, items):
                if isinstance(outcome, InvalidDicomError):
                    skipped.append((outcome.path, outcome.kind, outcome.reason, outcome.offset))
                else:
                    text.write(outcome)
                    text.write(b"\n")
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
    except BaseException:
        text.discard()
        raise


# --- in the parent: copying the chunks -------------------------------------------------------


class Spill:
    """The private folder of a run's chunk files: next to the output (on its filesystem, so
    that copying them stays in the kernel), or a new temporary folder for standard output."""

    def __init__(self, output=None):
        self.own_parent = output is None
        if output is not None:
            self.parent = output.folder
            self.folder = output.folder.make_temporary_folder(f".{output.base}.", ".chunks")
        else:
            path = tempfile.mkdtemp(prefix="deid-fast-chunks-")
            self.parent = Folder(os.path.dirname(path))
            self.folder = self.parent.subfolder(os.path.basename(path))
        self.where = (self.folder.path, self.folder.key)      # what the workers get

    def append(self, name, target):
        """Append the chunk file `name` to `target` (an open binary file), then remove it.
        Returns its size."""
        with self.folder.open_file(name) as handle:
            size = append_file(handle, target)
        self.folder.remove(name)
        return size

    def remove(self):
        if self.folder.descriptor is None:
            return
        name = os.path.basename(self.folder.path)
        self.folder.close()
        self.parent.remove_tree(name)
        if self.own_parent:
            self.parent.close()


def append_file(handle, target):
    """Append the open file `handle` to the open binary file `target`: in the kernel
    (copy_file_range) where it can, else through a buffer. Returns its size."""
    target.flush()
    size = total = os.fstat(handle.fileno()).st_size
    try:
        while size > 0:
            copied = os.copy_file_range(handle.fileno(), target.fileno(), size)
            if copied == 0:
                break
            size -= copied
    except (AttributeError, OSError) as exc:      # not Linux, or not between these two files
        if isinstance(exc, OSError) and exc.errno not in _NO_COPY_RANGE:
            raise
        handle.seek(total - size)
        while True:
            block = handle.read(1 << 20)
            if not block:
                break
            target.write(block)
    return total


_NO_COPY_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF,
                  errno.ETXTBSY}


class _Target:
    """Where lines go: standard output, or the output's `.partial` file, flushed to disk as
    the run goes and renamed to OUT when finished."""

    def __init__(self, output=None, stream=None):
        self.output, self.unsynced = output, 0
        if output is None:
            self.handle, self.done = stream, DonePaths()
            self.syncer = None
            return
        self.handle, self.done = output.open_partial()
        self.syncer = _Syncer(self.handle.fileno())

    def copy(self, text, spill, name):
        if name is None:
            self.handle.write(text)
            self.unsynced += len(text)
        else:
            self.unsynced += spill.append(name, self.handle)
        if self.syncer is not None and self.unsynced >= SYNC_BYTES:
            self.handle.flush()
            self.syncer.request()
            self.unsynced = 0

    def close(self):
        self.handle.flush()
        if self.output is not None:
            self.syncer.stop()
            os.fsync(self.handle.fileno())
            self.handle.close()
            self.output.finish()

    def abandon(self):
        if self.output is not None:
            self.syncer.stop()
            self.handle.close()
            self.output.abandon()


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


class ChunkWriter:
    """What the writers of chunks share (the protocol `cli` drives): `work(job, items, offset,
    context)` is what a worker does with a chunk, `chunks(items)` cuts the files into
    `(items, context)`, `take(items, context, results)` puts a chunk's results into the output
    in input order (results as `bulk.run_chunks` gives them: a file lost with its worker has
    its InvalidDicomError), then `finish(workers)` or `abandon()`. Every result is `(rows,
    skipped, payload)`. `done_paths()` is what an output being resumed holds already."""

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

    def for_cluster(self):
        """This writer's job for a Dask cluster, whose workers cannot see the spill folder:
        they send their lines back."""
        self.job = LineJob(self.job.job, self.job.shape, None, self.job.keys)


class LineWriter(ChunkWriter):
    """JSONL (nested or flat) and DICOM JSON: the chunks' lines copied in input order, to
    `output` (an `Output`) or to `stream`."""

    def __init__(self, job, shape, output=None, stream=None):
        self.output = output
        self.target = _Target(output, stream)
        try:
            self.spill = Spill(output)
        except BaseException:
            self.target.abandon()
            raise
        self.job = LineJob(job, shape, self.spill.where)

    def done_paths(self):
        return self.target.done

    def put(self, payload):
        text, spill_name, _keys = payload
        self.target.copy(text, self.spill, spill_name)

    def finish(self, workers=None):
        self.spill.remove()
        self.target.close()

    def abandon(self):
        self.spill.remove()
        self.target.abandon()


class CsvWriter(ChunkWriter):
    """The chunks' nested JSONL lines are spooled (the columns are known only at the end), then
    written as CSV: one row per file, a column per field key in first-seen order."""

    def __init__(self, job, output=None, stream=None, raw=False):
        self.output, self.stream, self.raw = output, stream, raw
        self.spill = Spill(output)
        self.job = LineJob(job, NESTED, self.spill.where, keys=True)
        descriptor, self.spool_name = self.spill.folder.create_temporary(
            "spool-", ".jsonl", mode=0o600, readable=True)
        self.spool = os.fdopen(descriptor, "w+b")
        self.keys = {}   # every field key of the run, in first-seen order

    def done_paths(self):
        return DonePaths()

    def put(self, payload):
        text, spill_name, keys = payload
        if keys:
            self.keys.update(dict.fromkeys(keys))
        if spill_name is None:
            self.spool.write(text)
        else:
            self.spill.append(spill_name, self.spool)

    def finish(self, workers=None):
        header = list(RECORD_COLUMNS) + list(self.keys)
        self.spool.flush()
        if self.stream is not None:
            self._write(self.stream, header)
            self.stream.flush()
        else:
            def produce(handle):
                text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=True)
                self._write(text, header)
                text.flush()
                text.detach()      # the handle stays open for write_whole's fsync
            self.output.write_whole(produce)
        self.abandon()

    def _write(self, target, header):
        writer = csv.writer(target)
        writer.writerow(header)
        position = {key: number for number, key in enumerate(header)}
        self.spool.seek(0)
        for line in self.spool:
            row = loads(line)
            cells = [""] * len(header)      # rows are sparse: fill only what a file has
            for number, column in enumerate(RECORD_COLUMNS):
                cells[number] = csv_cell(row[column], self.raw)
            for key, value in (row["fields"] or {}).items():
                cells[position[key]] = csv_cell(value, self.raw)
            writer.writerow(cells)

    def abandon(self):
        self.spool.close()
        self.spill.remove()


#: The first characters that make a spreadsheet read a cell as a formula (OWASP, "CSV
#: injection"), and the quote that neutralises them.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value, raw=False):
    """A CSV cell of a value as read back from JSON (bytes are base64 text already):
    multi-values joined with `\\`, sequences JSON. Unless `raw`, text that begins with = + - @
    tab or carriage return gets a leading `'`, and text that begins with `'` gets one more, so
    that a spreadsheet shows it as text and the rule can be undone (drop one leading `'`);
    numbers, and multi-values of numbers, are not text and stay as they are."""
    if value is None:
        return ""
    if isinstance(value, list):
        if any(isinstance(item, dict) for item in value):
            return _safe(dumps_text(value), raw)
        if all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in value):
            return "\\".join(str(item) for item in value)
        return _safe("\\".join(csv_cell(item, True) for item in value), raw)
    if isinstance(value, dict):
        return _safe(dumps_text(value), raw)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _safe(str(value), raw)


def _safe(text, raw):
    if raw or not text or not (text.startswith(_FORMULA_START) or text[0] == "'"):
        return text
    return "'" + text


class JsonWriter:
    """The nested dict of `get_identifiers`, grouped as it groups (deid_fast.dicom.group)."""

    def __init__(self, group, output=None, stream=None):
        self.output, self.stream, self.group = output, stream, group
        self.records = []
        self.written = 0

    def done_paths(self):
        return DonePaths()

    def write(self, record):
        if record.skipped is None:
            self.records.append(record)

    def finish(self, workers=None):
        lookup = self.group(self.records)
        self.written = sum(len(items) for items in lookup.values())
        text = json.dumps(lookup, ensure_ascii=False, indent=1, default=base64_text) + "\n"
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:       # a lone surrogate in a value: escaped, still JSON
            data = (json.dumps(lookup, indent=1, default=base64_text) + "\n").encode("ascii")
        if self.stream is not None:
            self.stream.write(data)
            self.stream.flush()
            return
        self.output.write_whole(lambda handle: handle.write(data))

    def abandon(self):
        pass
