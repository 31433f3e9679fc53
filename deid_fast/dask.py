"""Running on a Dask cluster (needs `pip install "deid-fast[dask]"`): knows Dask, not DICOM.

Folders are listed here, on the client; the paths go to the workers in chunks of `CHUNK_FILES`,
and each task runs the same code as a local worker process on the files of its chunk, which
the workers read themselves (a shared filesystem). A task is a pure function of its chunk, so
Dask may run it again when a worker dies: nothing is lost or counted twice.

- `to_bag(sources, **options)`: a dask bag of the Records `iter_identifiers` yields.
- `to_dataframe(sources, fields=None, **options)`: a dask DataFrame in the table layout of the
  Parquet output (`deid_fast.table`), its columns known without reading anything.
- `get_identifiers(sources, client=None, **options)`: the local result, computed on the cluster.
- `run_chunks(...)`: what `deid-fast get --scheduler` runs: the workers write the output's
  lines or Parquet parts of each chunk, as local workers do.
"""
import collections

try:
    import dask
    import dask.bag
    import dask.dataframe
    import pandas
except ImportError as exc:  # pragma: no cover - the extra is installed by `make test`
    raise ImportError("deid_fast.dask needs Dask: pip install 'deid-fast[dask]'") from exc

from deid_fast import bulk, table
from deid_fast.dicom import group
from deid_fast.errors import InvalidDicomError
from deid_fast.reader import check_errors, identifiers_job, skipped_record

#: Files per Dask task. A task costs some 30 ms of Dask's own work (measured on one core), and
#: 1,024 files take 0.1-0.2 s to read: large tasks keep that small; a million files are still
#: a thousand tasks to spread. It is also the Parquet output's chunk, so a task's part is a
#: local run's part.
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


def _chunk_frame(chunk, columns=None, *, options, errors, keywords):
    """A partition of `to_dataframe`: the table of one chunk. Dask's column projection passes
    `columns`, and only those are built."""
    builder = table.TableBuilder()
    for record in _records(options, errors, chunk):
        builder.add(record)
    if columns is not None:
        selected = set(columns)
        keywords = [name for name in keywords if name in selected]
    data = builder.table(keywords, exactly=True)
    if columns is not None:
        data = data.select(list(columns))
    return data.to_pandas(types_mapper=pandas.ArrowDtype)


def to_dataframe(sources, fields=None, errors="warn", chunk_files=CHUNK_FILES, **options):
    """A dask DataFrame of `sources`, one row per file, in the table layout of the Parquet
    output (`deid_fast.table`; pandas ArrowDtype columns): `path`, `entity`, `item`,
    `skipped`, `reason`, a column per keyword, `values_as_read`, `private`.

    The columns are known before anything is read: with `fields`, those keywords (and the
    entity and item); without, every keyword of the dictionary (about 5,000 columns, mostly
    null): select the columns you need, and only those are built when computed. Sequences are
    always one column each (`expand_sequences` does not apply)."""
    options = dict(options, fields=fields, expand_sequences=False)
    job = identifiers_job(**options)
    check_errors(errors)
    if job.options.select is not None:
        keywords = sorted(name for name in job.options.select if table.is_column(name))
    else:
        keywords = sorted(table.COLUMNS)
    meta = table.schema(keywords).empty_table().to_pandas(types_mapper=pandas.ArrowDtype)
    parts = chunks(sources, chunk_files)
    if not parts:
        return dask.dataframe.from_pandas(meta, npartitions=1)
    return dask.dataframe.from_map(_chunk_frame, parts, meta=meta, enforce_metadata=False,
                                   options=options, errors=errors, keywords=keywords)


def outcomes(read, items, options, client, window=None):
    """`(item, outcome)` of `read` for each of `items`, computed on `client`'s cluster chunk by
    chunk, in input order, with at most `window` chunks in flight or waiting."""
    for chunk, _context, results in run_chunks(
            read, ((chunk, None) for chunk in bulk.chunked(items, CHUNK_FILES, 1 << 62)),
            options, None, client, window):
        yield from zip(chunk, results[0][1])


def _with_job(template, job):
    """`template` (a `writers.LineJob`, a `parquet.PartJob`, or None for the job itself) with
    `job`. The client's job holds compiled objects that are not sent: workers make their own
    from the options (spill files are not used on a cluster: see `writers.ChunkWriter.for_cluster`)."""
    from deid_fast import parquet, writers
    if isinstance(template, writers.LineJob):
        return writers.LineJob(job, template.shape, template.spill, template.keys)
    if isinstance(template, parquet.PartJob):
        return parquet.PartJob(job, template.folder)
    return job


def _task(function, template, options, items, context):
    job = _with_job(template, identifiers_job(**options))
    return bulk.encode(function(job, items, 0, context))


def run_chunks(function, chunks, options, template, client, window=None):
    """`bulk.run_chunks` on `client`'s cluster: `(items, context, [(0, result)])` of
    `function(job, items, 0, context)` for each `(items, context)` of `chunks`, in input
    order, with at most `window` chunks in flight or waiting. The job is `template` made on
    the worker (see `_with_job`)."""
    window = window or 4 * max(1, len(client.scheduler_info().get("workers", {})))
    pending = collections.deque()
    for items, context in chunks:
        pending.append((items, context, client.submit(
            _task, function, _with_job(template, None), options, items, context, pure=False)))
        while len(pending) >= window:
            yield _take(pending)
    while pending:
        yield _take(pending)


def _take(pending):
    items, context, future = pending.popleft()
    return items, context, [(0, bulk.decode(_result(future)))]


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
    return group(bulk.records_of(zip(items, outcomes), errors, warn_each=True), job)


def _result(future):
    result = future.result()
    future.release()
    return result
