"""Bulk reading: many files, streamed, in a pool of worker processes (the bulk issue).

`iter_identifiers` yields a `Record` per file as soon as it is ready, in input order by default,
with memory independent of the number of files: paths are found lazily (folders walked like
`get_files`), sent to the workers in chunks, and only a bounded number of chunks is in flight.
The workers run exactly the serial code (`deid_fast.reader.read_record`) on their chunk; the
parent only walks folders, logs skips and hands records on. Threads would not help here: the
decoder holds the GIL (see benchmarks/README.md).
"""
import contextlib
import logging
import marshal
import pickle
import signal

from pydicom.dataset import Dataset

from deid_fast import inputs, pool
from deid_fast.decode import decoded, read_header
from deid_fast.dicomjson import dicom_json, reported
from deid_fast.errors import InvalidDicomError
from deid_fast.inputs import name_of
from deid_fast.reader import (DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_HEADER_BYTES,
                              UNGROUPED, Limits, Record, check_errors, identifiers_job,
                              log_skip, log_ungrouped, read_record, skipped_record)
from deid_fast.session import PydicomSession

logger = logging.getLogger("deid_fast")

#: Files per task: large enough that the cost of a task (~50 us: pickling, a pipe round trip)
#: stays small next to the files it holds (15-80 us each), small enough to spread the load.
CHUNK_FILES = 64
#: Bytes of paths per task, so that the tasks sent ahead always fit in the pipe.
CHUNK_BYTES = 16384


def files(sources, exclude=inputs.NOTHING_EXCLUDED, pattern=None):
    """What to read, in order (`deid_fast.inputs.items`): a path per file, folders walked in
    sorted order (R1), a (name, Dataset) pair, or the InvalidDicomError of what cannot be
    read. `pattern`: an fnmatch pattern file names must match."""
    return inputs.items(sources, pattern, exclude)


def chunked(items, count=None, size=CHUNK_BYTES):
    """Lists of at most `count` items (default `CHUNK_FILES`, read when called) and about
    `size` bytes of paths."""
    count = count or CHUNK_FILES
    chunk = []
    room = size
    for item in items:
        chunk.append(item)
        room -= len(item) if type(item) is str else 256
        if len(chunk) >= count or room <= 0:
            yield chunk
            chunk = []
            room = size
    if chunk:
        yield chunk


def _name_and_source(item):
    return (item, item) if type(item) is str else item


# --- what a worker does with a chunk: one function per kind of output ---------------------------


def portable(error):
    """`error` without its chain of causes (which can hold a scanned header, and which some
    libraries' pickling, Dask's among them, would send along): what crosses processes."""
    return InvalidDicomError(error.path, error.kind, error.reason, error.offset)


def read_each(job, items):
    """In a worker: a Record, or the InvalidDicomError, per item, one at a time (a chunk's
    fields are never all held at once by the writers that use this)."""
    with PydicomSession() as session:
        flush = session.flush
        for item in items:
            if isinstance(item, InvalidDicomError):     # found unreadable by the walk
                yield item
                continue
            name, source = _name_and_source(item)
            try:
                yield read_record(source, name, job, flush)
            except InvalidDicomError as exc:
                yield portable(exc)


def read_for_output(job, items):
    """In a worker: `(record, skip)` per item, for the writers: the Record (a bad file's is its
    skipped Record) and, for a file that is skipped or has no group, `(path, kind, reason,
    offset)` (offset None for "no-entity" and "no-item"), else None."""
    for outcome in read_each(job, items):
        if isinstance(outcome, InvalidDicomError):
            yield skipped_record(outcome), (outcome.path, outcome.kind, outcome.reason,
                                             outcome.offset)
        elif outcome.skipped is not None:
            yield outcome, (outcome.path, outcome.skipped, outcome.reason, None)
        else:
            yield outcome, None


def read_identifiers(job, items, offset=0, context=None):
    """A Record, or the InvalidDicomError, per item."""
    return list(read_each(job, items))


def read_dicom_json(job, items, offset=0, context=None):
    """The DICOM JSON text, or the InvalidDicomError, per item."""
    outcomes = []
    with PydicomSession() as session:
        flush = session.flush
        for item in items:
            if isinstance(item, InvalidDicomError):     # found unreadable by the walk
                outcomes.append(item)
                continue
            name, source = _name_and_source(item)
            try:
                if isinstance(source, Dataset):
                    dataset, file_meta, header = source, getattr(source, "file_meta", None), None
                else:
                    header = job.limits.scan(source, job.force, job.stop_after, checked=True)
                    dataset, file_meta = decoded(name, lambda: read_header(header), header)
                meta, kept = decoded(name, lambda: reported(dataset, file_meta, job.options),
                                     header)
                try:
                    outcomes.append(dicom_json(meta, kept))
                except Exception as exc:  # noqa: BLE001 - pydicom's writer, on any value
                    raise InvalidDicomError(
                        name, "undecodable", "pydicom cannot write it as DICOM JSON: "
                        f"{type(exc).__name__}: {exc}") from exc
            except InvalidDicomError as exc:
                outcomes.append(portable(exc))
            finally:
                flush(name)
    return outcomes


def check(job, items, offset=0, context=None):
    """None for a file the scanner accepts as DICOM, else the InvalidDicomError, per item."""
    outcomes = []
    for item in items:
        if isinstance(item, InvalidDicomError):         # found unreadable by the walk
            outcomes.append(item)
            continue
        name, source = _name_and_source(item)
        if isinstance(source, Dataset):
            outcomes.append(None)
            continue
        try:
            job.limits.scan(source, job.force, checked=True)
        except InvalidDicomError as exc:
            outcomes.append(portable(exc))
        else:
            outcomes.append(None)
    return outcomes


class _Captured(logging.Handler):
    """In a worker: keeps deid_fast's log records, which the parent logs in input order."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        record.msg, record.args, record.exc_info = record.getMessage(), None, None
        self.records.append(record)


def _worker_handler(work, job, level):
    deid_logger = logging.getLogger("deid_fast")
    captured = _Captured()
    deid_logger.handlers = [captured]
    deid_logger.propagate = False
    deid_logger.setLevel(level)

    def handle(items, offset, context):
        result = work(job, items, offset, context)
        records, captured.records = captured.records, []
        return encode(result), records
    return handle


def encode(result):
    """A chunk's result as bytes to cross a process boundary: marshal, twice as fast as pickle
    on the builtins that fields are made of (in a list of outcomes, a Record as its 6-tuple and
    an InvalidDicomError as a 5-tuple starting with None); pickle for anything marshal cannot
    hold."""
    plain = result
    if type(result) is list:
        plain = [tuple(outcome) if type(outcome) is Record else
                 (None, outcome.path, outcome.kind, outcome.reason, outcome.offset)
                 if type(outcome) is InvalidDicomError else outcome for outcome in result]
    try:
        return b"M" + marshal.dumps(plain)
    except ValueError:
        return b"P" + pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data):
    """`encode`'s result back."""
    if data[:1] == b"P":
        return pickle.loads(data[1:])
    result = marshal.loads(memoryview(data)[1:])
    if type(result) is list:
        return [_decoded(outcome) if type(outcome) is tuple else outcome for outcome in result]
    return result


def _decoded(plain):
    if len(plain) == 6:
        return Record._make(plain)
    if len(plain) == 5 and plain[0] is None:
        return InvalidDicomError(*plain[1:])
    return plain


def _lost(item, exitcode):
    name = name_of(item)
    how = (f"killed by signal {signal.Signals(-exitcode).name}" if exitcode and exitcode < 0
           else f"exit code {exitcode}")
    return InvalidDicomError(name, "worker-died",
                             f"the worker process reading it died twice ({how})")


def worker_count(workers):
    """`workers` checked: None is one per core."""
    if workers is None:
        return pool.default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int or None, not {workers!r}")
    return workers


def run_chunks(work, chunks, job, workers, ordered=True):
    """`(items, context, results)` for each `(items, context)` of `chunks`, where `results` is
    a list of `(offset, result)` of `work(job, items, offset, context)` run in `workers`
    processes (None: one per core; in this one when 1, or when there is only one chunk): see
    `pool.imap` for how a chunk is split after a worker dies. An item lost with its worker has
    the InvalidDicomError of kind "worker-died" as its result."""
    workers = worker_count(workers)
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if workers == 1 or second is None:
        for items, context in (first, second) if second else (first,):
            yield items, context, [(0, work(job, items, 0, context))]
        for items, context in chunks:
            yield items, context, [(0, work(job, items, 0, context))]
        return

    def all_chunks():
        yield first
        yield second
        yield from chunks

    level = logger.getEffectiveLevel()
    # closed on the way out whatever ends the caller's loop, so that the workers stop first
    with contextlib.closing(pool.imap(all_chunks(), workers, _worker_handler,
                                      (work, job, level), _lost, ordered, decode)) as chunks_done:
        for items, context, results, log_records in chunks_done:
            for record in log_records:
                logger.handle(record)
            yield items, context, results


def outcomes(read, items, job, workers, ordered=True):
    """`(item, outcome)` per item of `files()`, where `read(job, chunk)` gives an outcome per
    item of a chunk, run in `workers` processes (see `run_chunks`)."""
    for chunk, _context, results in run_chunks(
            read, ((chunk, None) for chunk in chunked(items)), job, workers, ordered):
        for offset, result in results:
            if isinstance(result, InvalidDicomError):      # lost with its worker
                yield chunk[offset], result
            else:
                yield from zip(chunk[offset:offset + len(result)], result)


def records(items, job, errors, workers, ordered=True, warn_each=False):
    """A Record per item of `files()`; skips are logged, and raise with errors="raise" (see
    `records_of`)."""
    return records_of(outcomes(read_identifiers, items, job, workers, ordered), errors,
                      warn_each)


def records_of(pairs, errors, warn_each=False):
    """The Records of `read_identifiers`' `(item, outcome)` pairs, in their order: a skip is
    logged, or raised with errors="raise". A file without its entity or item is logged at INFO
    and their number in one WARNING at the end; with `warn_each` (get_identifiers, which
    leaves them out: SPEC R3), a WARNING each."""
    ungrouped = Ungrouped()
    for _item, outcome in pairs:
        if isinstance(outcome, InvalidDicomError):
            outcome = skip(outcome, errors)
        elif outcome.skipped is not None:
            if warn_each:
                log_skip(outcome)
            else:
                ungrouped.add(outcome)
        yield outcome
    ungrouped.log()


class Ungrouped:
    """Counts the files read whole but without an entity or item value (written with their
    fields, not skipped): each is logged at INFO, their number once at WARNING (`log`)."""

    def __init__(self):
        self.counts = dict.fromkeys(UNGROUPED, 0)

    def add(self, record):
        self.counts[record.skipped] += 1
        log_ungrouped(record)

    def log(self):
        if any(self.counts.values()):
            what = {"no-entity": "without an entity value", "no-item": "without an item value"}
            logger.warning("%s: kept with their fields but not grouped (each is logged at INFO)",
                           ", ".join(f"{count:,} files {what[kind]}"
                                     for kind, count in self.counts.items() if count))


def report_skips(skipped, errors, ungrouped):
    """Log the files a chunk skipped, `(path, kind, reason, offset)` each (kind "no-entity" or
    "no-item" for a file written without a group: counted in `ungrouped`, an `Ungrouped`);
    with errors="raise", the first that is not DICOM is raised instead."""
    for path, kind, reason, offset in skipped:
        if kind in UNGROUPED:
            ungrouped.add(Record(path, None, None, None, kind, reason))
        else:
            skip(InvalidDicomError(path, kind, reason, offset), errors)


def skip(error, errors):
    """The Record of a bad file, logged at WARNING; with errors="raise", `error` is raised."""
    if errors == "raise":
        raise error
    record = skipped_record(error)
    log_skip(record)
    return record


def iter_identifiers(sources, workers=None, ordered=True, errors="warn", **options):
    """Yield a `Record` (`path`, `entity`, `item`, `fields`, `skipped`, `reason`) per file of
    `sources` (files, folders walked like `get_files`, Datasets, or an iterable of them), as soon
    as it is ready: in input order, or as files finish with `ordered=False`.

    `options` are those of `get_identifiers`; a file `get_identifiers` leaves out is yielded
    with `skipped` set to the reason's kind (its fields kept when it only lacks an entity or
    item value) and logged at WARNING; with `errors="raise"` the first bad file raises
    `InvalidDicomError`. Duplicates are not resolved: every file gets its record. `workers`
    processes read the files (None: one per core; 1: this process)."""
    job = identifiers_job(**options)
    check_errors(errors)
    workers = worker_count(workers)
    return records(files(sources), job, errors, workers, ordered)


def check_files(sources, force=False, workers=None, max_depth=DEFAULT_MAX_DEPTH,
                max_header_bytes=DEFAULT_MAX_HEADER_BYTES, max_elements=DEFAULT_MAX_ELEMENTS,
                exclude=inputs.NOTHING_EXCLUDED, pattern=None):
    """`(path, error)` per file of `sources`: error is None when the scanner accepts it as DICOM
    (as `get_files(check=True)` decides), else the InvalidDicomError saying why."""
    job = _CheckJob(Limits(max_depth, max_header_bytes, max_elements), force)
    for item, outcome in outcomes(check, files(sources, exclude, pattern), job, workers):
        yield name_of(item), outcome


class _CheckJob:
    __slots__ = ("limits", "force")

    def __init__(self, limits, force):
        self.limits = limits
        self.force = force
