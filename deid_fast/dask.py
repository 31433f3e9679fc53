"""Running on a Dask cluster (needs `pip install "deid-fast[dask]"`): knows Dask, not DICOM.

Folders are listed here, on the client; the paths go to the workers in chunks of `CHUNK_FILES`,
and each task runs the same code as a local worker process (`deid_fast.bulk.read_identifiers`)
on the files of its chunk, which the workers read themselves (a shared filesystem). A task is a
pure function of its chunk, so Dask may run it again when a worker dies: nothing is lost or
counted twice.

- `to_bag(sources, **options)`: a dask bag of the Records `iter_identifiers` yields.
- `to_dataframe(sources, fields=None, **options)`: a dask DataFrame, one row per file, typed as
  the Parquet output is (the same unification rules, as pandas ArrowDtype columns).
- `get_identifiers(sources, client=None, **options)`: the local result, computed on the cluster.
"""
import collections

try:
    import dask
    import dask.bag
    import dask.dataframe
    import pandas
except ImportError as exc:  # pragma: no cover - the extra is installed by `make test`
    raise ImportError("deid_fast.dask needs Dask: pip install 'deid-fast[dask]'") from exc

from deid_fast import bulk, parquet
from deid_fast.dicom import check_errors, group, identifiers_job, skipped_record
from deid_fast.errors import InvalidDicomError

#: Files per Dask task. A task costs some 30 ms of Dask's own work (measured on one core), and
#: 1,024 files take 0.1-0.2 s to read: large tasks keep that small; a million files are still
#: a thousand tasks to spread.
CHUNK_FILES = 1024


def chunks(sources, chunk_files=CHUNK_FILES):
    """The files of `sources`, listed here (folders walked like get_files), in chunks."""
    return list(bulk.chunked(bulk.files(sources), chunk_files, 1 << 62))


def read_chunk(read, options, chunk):
    """`read(job, chunk)` on a worker: the outcome per file (a Record or the InvalidDicomError
    of `read_identifiers`, the text or error of `read_dicom_json`)."""
    return read(identifiers_job(**options), chunk)


def read_encoded(read, options, chunk):
    """`read_chunk`'s outcomes as `bulk.encode` bytes: cheaper to send than pickled objects."""
    return bulk.encode(read_chunk(read, options, chunk))


def _records(options, errors, chunk):
    records = []
    for outcome in read_chunk(bulk.read_identifiers, options, chunk):
        if isinstance(outcome, InvalidDicomError):
            if errors == "raise":
                raise outcome
            outcome = skipped_record(outcome)
        records.append(outcome)
    return records


def _bag_of(function, parts, *args):
    """A bag with a partition per chunk of `parts`: `function(*args, chunk)`'s items."""
    if not parts:
        return dask.bag.from_sequence([], npartitions=1)
    return dask.bag.from_sequence(parts, partition_size=1).map_partitions(
        lambda partition: [item for chunk in partition for item in function(*args, chunk)])


def to_bag(sources, errors="warn", chunk_files=CHUNK_FILES, **options):
    """A dask bag of the Records of `sources`, one partition per chunk of files, in input
    order. `options` are those of get_identifiers; with errors="raise" a bad file fails its
    task (and the computation) with its InvalidDicomError."""
    identifiers_job(**options)      # checked here, before anything is sent
    check_errors(errors)
    return _bag_of(_records, chunks(sources, chunk_files), options, errors)


def _chunk_kinds(options, errors, chunk):
    return [parquet.table_of(_records(options, errors, chunk))[1]]


def _chunk_frame(chunk, options, errors, kinds):
    table, _ = parquet.table_of(_records(options, errors, chunk), kinds)
    return table.to_pandas(types_mapper=pandas.ArrowDtype)


def to_dataframe(sources, fields=None, errors="warn", chunk_files=CHUNK_FILES, **options):
    """A dask DataFrame of `sources`, one row per file: `path`, `entity`, `item`, `skipped`,
    `reason`, then a column per field key, typed as the Parquet output is (pandas ArrowDtype).

    The columns and their types depend on every file, so this reads the headers twice: a first
    computation (now) learns them, the DataFrame's partitions read them again when computed."""
    identifiers_job(fields=fields, **options)
    check_errors(errors)
    options = dict(options, fields=fields)
    parts = chunks(sources, chunk_files)
    kinds = {}
    for part_kinds in _bag_of(_chunk_kinds, parts, options, errors).compute():
        for key, kind in part_kinds.items():
            kinds[key] = parquet.unify(kinds.get(key), kind)
    meta = parquet.table_of([], kinds)[0].to_pandas(types_mapper=pandas.ArrowDtype)
    if not parts:
        return dask.dataframe.from_pandas(meta, npartitions=1)
    return dask.dataframe.from_map(_chunk_frame, parts, options=options, errors=errors,
                                   kinds=kinds, meta=meta, enforce_metadata=False)


def outcomes(read, items, options, client, window=None):
    """`(item, outcome)` of `read` for each of `items`, computed on `client`'s cluster chunk by
    chunk, in input order, with at most `window` chunks in flight or waiting."""
    window = window or 4 * max(1, len(client.scheduler_info().get("workers", {})))
    pending = collections.deque()
    chunked = bulk.chunked(items, CHUNK_FILES, 1 << 62)
    for chunk in chunked:
        pending.append((chunk, client.submit(read_encoded, read, options, chunk, pure=False)))
        while len(pending) >= window:
            yield from _take(pending)
    while pending:
        yield from _take(pending)


def _take(pending):
    chunk, future = pending.popleft()
    return zip(chunk, bulk.decode(_result(future)))


def get_identifiers(sources, client=None, errors="warn", chunk_files=CHUNK_FILES, **options):
    """`deid_fast.get_identifiers(sources, **options)`, computed on a Dask cluster: `client`,
    else the default client, else Dask's local scheduler. The result is the local one (skipped
    files are logged here, and errors="raise" raises at the first bad file in input order)."""
    job = identifiers_job(**options)
    check_errors(errors)
    parts = chunks(sources, chunk_files)
    bag = _bag_of(lambda *args: [read_encoded(*args)], parts, bulk.read_identifiers, options)
    blobs = bag.compute(scheduler=client) if client is not None else bag.compute()
    items = [item for chunk in parts for item in chunk]
    outcomes = [outcome for blob in blobs for outcome in bulk.decode(blob)]
    return group(bulk.records_of(zip(items, outcomes), errors), job)


def write_part(options, errors, chunk, path):
    """On a worker: read `chunk` and write its Parquet part at `path`; returns the kinds its
    values need, its row count and its skipped files (path, kind, reason)."""
    records = _records(options, errors, chunk)
    table, kinds = parquet.table_of(records)
    parquet.write_part(table, path)
    return kinds, len(records), [(r.path, r.skipped, r.reason) for r in records if r.skipped]


def write_parts(items, options, errors, parts, first, client, window=None):
    """Write a Parquet part per chunk of `items` into the folder `parts` (numbered from
    `first`) on `client`'s workers; yields `write_part`'s results in input order."""
    window = window or 4 * max(1, len(client.scheduler_info().get("workers", {})))
    pending = collections.deque()
    for number, chunk in enumerate(bulk.chunked(items, CHUNK_FILES, 1 << 62), first):
        pending.append(client.submit(write_part, options, errors, chunk,
                                     parquet.part_path(parts, number), pure=False))
        while len(pending) >= window:
            yield _result(pending.popleft())
    while pending:
        yield _result(pending.popleft())


def _result(future):
    result = future.result()
    future.release()
    return result
