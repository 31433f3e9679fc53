"""The command line, `deid-fast`: knows arguments, outputs and the terminal.

    deid-fast get PATH... -o OUT [options]     the identifiers of every file, as a table
    deid-fast check PATH...                    what is and is not DICOM, and why

Exit status: 0 when the run finished (skipped files are reported, not fatal), 1 when
`--errors raise` stopped at a bad file (or the output could not be written), 2 for a usage
error, 130 when interrupted (what was written stays for --resume).
"""
import argparse
import collections
import logging
import os
import sys
import textwrap
import threading
import time

from deid_fast import bulk, writers
from deid_fast.dicom import (DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_HEADER_BYTES,
                             ENGINES, check_errors, group, identifiers_job, skipped_record)
from deid_fast.errors import InvalidDicomError

logger = logging.getLogger("deid_fast")

EXAMPLES = """\
examples:
  deid-fast get /data/export -o ids.parquet           one row per file, a column per field
  deid-fast get /data/export -o ids.jsonl --resume    continue a run that was interrupted
  deid-fast get a.dcm b.dcm -o - --format jsonl       to standard output
  deid-fast get /data/export -o ids.json --entity-id PatientName --item-id SOPInstanceUID
  deid-fast check /data/export                        which files are DICOM, and why not
"""

FORMAT_HELP = """\
formats (from the extension of OUT, or --format):
  json        .json     {entity: {item: {field: value}}}, as get_identifiers returns it
  jsonl       .jsonl    one object per file: path, entity, item, skipped, reason, fields
                        (--flat: one key per field, typed as the parquet columns)
  csv         .csv      one row per file, one column per field key of the run
  parquet     .parquet  a folder of parts read as one table: a column per top-level keyword,
                        typed by the DICOM dictionary; a sequence is the JSON of its items;
                        values_as_read and private hold the rest (pyarrow)
  dicom-json            one DICOM JSON object (PS3.18 F.2) per file read, one per line
bytes are base64 text in JSON and CSV; in csv a multi-value is joined with \\ and a sequence
is JSON.
"""


class UsageError(Exception):
    pass


def _whole_number(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value
    return parse


_positive, _non_negative = _whole_number(1), _whole_number(0)


def _common(parser):
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="DICOM files, or folders (walked recursively, in sorted order)")
    parser.add_argument("--workers", type=_positive, metavar="N",
                        help="processes reading files (default: one per core)")
    parser.add_argument("--no-force", dest="force", action="store_false",
                        help="reject files without the 128-byte preamble and DICM")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a progress bar on stderr (default: when stderr is a terminal)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no WARNING line per skipped file (the summary still counts them)")
    bounds = parser.add_argument_group("resource bounds (a file past one is skipped)")
    bounds.add_argument("--max-depth", type=_non_negative, default=DEFAULT_MAX_DEPTH,
                        metavar="N", help=f"sequence nesting (default {DEFAULT_MAX_DEPTH})")
    bounds.add_argument("--max-header-bytes", type=_non_negative, metavar="N",
                        default=DEFAULT_MAX_HEADER_BYTES,
                        help=f"header bytes read per file (default {DEFAULT_MAX_HEADER_BYTES})")
    bounds.add_argument("--max-elements", type=_non_negative, metavar="N",
                        default=DEFAULT_MAX_ELEMENTS,
                        help=f"elements per file (default {DEFAULT_MAX_ELEMENTS})")


def parser():
    main = argparse.ArgumentParser(
        prog="deid-fast", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The identifying header fields of DICOM files, fast and exactly as pydicom "
                    "reads them.", epilog=EXAMPLES)
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    get = commands.add_parser(
        "get", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="write the identifiers of every file to OUT",
        description=textwrap.fill(
            "Write the identifying header fields of every DICOM file under PATH to OUT. Files "
            "that are not DICOM are reported (a WARNING each, and a row saying why in jsonl, "
            "csv and parquet) and the run goes on.", 88),
        epilog=FORMAT_HELP + "\n" + EXAMPLES)
    _common(get)
    get.add_argument("-o", "--output", required=True, metavar="OUT",
                     help="the output file, or - for standard output")
    get.add_argument("--format", choices=writers.FORMATS, help="the output format (see below)")
    get.add_argument("--resume", action="store_true",
                     help="continue an interrupted jsonl or parquet run: files already in OUT "
                          "are not read again")
    get.add_argument("--flat", action="store_true",
                     help="jsonl in the table's layout: one key per field, typed by the DICOM "
                          "dictionary (what polars and duckdb read as columns)")
    get.add_argument("--single-file", action="store_true",
                     help="parquet: put the dataset's parts into one file at the end (an extra "
                          "pass over the table)")
    fields = get.add_argument_group("fields (as get_identifiers)")
    fields.add_argument("--entity-id", metavar="KEYWORD",
                        help="group files by this keyword (default PatientID)")
    fields.add_argument("--item-id", metavar="KEYWORD",
                        help="and within an entity by this one (default SOPInstanceUID)")
    fields.add_argument("--fields", metavar="K,K",
                        help="report only these top-level keywords (and the entity and item)")
    fields.add_argument("--skip", action="append", metavar="FIELD", default=[],
                        help="leave out this keyword, at any depth (repeat it for more)")
    fields.add_argument("--no-expand-sequences", dest="expand_sequences", action="store_false",
                        help="keep a sequence as a list of items instead of S_K keys")
    fields.add_argument("--include-private", action="store_true",
                        help="report private elements, keyed like (0019,1001)")
    fields.add_argument("--include-file-meta", action="store_true",
                        help="report the file meta group (0002) too, first")
    fields.add_argument("--delimiter", default="_",
                        help="joins sequence and element names (default _)")
    fields.add_argument("--config", metavar="JSON", help="a deid_fast config.json")
    fields.add_argument("--engine", choices=ENGINES, default="native",
                        help="native (default) or pydicom (the parser of record, slower)")
    get.add_argument("--scheduler", metavar="ADDRESS",
                     help="run on the Dask scheduler at ADDRESS (tcp://host:8786); its workers "
                          "read the files, so PATH must be on a filesystem they share "
                          "(needs deid-fast[dask])")
    get.add_argument("--errors", choices=("warn", "raise"), default="warn",
                     help="warn (default): skip bad files; raise: stop at the first (exit 1)")

    check = commands.add_parser(
        "check", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="list which files are DICOM, and why the others are not",
        description=textwrap.fill(
            "For every file under PATH, print a line: 'dicom<TAB>PATH' for a file whose header "
            "deid-fast reads, else 'KIND<TAB>PATH<TAB>REASON'. Only the header's structure is "
            "checked (as get_files(check=True) does), not its values.", 88))
    _common(check)
    check.add_argument("-o", "--output", default="-", metavar="OUT",
                       help="write the list here (default: standard output)")
    return main


# --- progress and summary -----------------------------------------------------------------------


class Progress:
    """Files done, files/s and ETA on stderr; the total is counted by a background walk."""

    def __init__(self, show, paths, already_done=0):
        self.bar = None
        self.paths = paths
        self.already_done = already_done
        if show:
            from tqdm import tqdm
            self.bar = tqdm(total=None, unit=" files", file=sys.stderr, dynamic_ncols=True,
                            smoothing=0.1, mininterval=0.5)
        self.counter = None

    def update(self, files=1):
        if self.bar is None:
            return
        if self.counter is None:  # started after the workers, which are forked
            self.counter = threading.Thread(target=self._count, daemon=True)
            self.counter.start()
        self.bar.update(files)

    def _count(self):
        total = sum(1 for _ in bulk.files(self.paths)) - self.already_done
        self.bar.total = max(total, self.bar.n)
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


class Summary:
    def __init__(self):
        self.started = time.perf_counter()
        self.files = 0
        self.skipped = collections.Counter()

    def count(self, skipped):
        self.files += 1
        if skipped is not None:
            self.skipped[skipped] += 1

    def count_many(self, files, skipped_kinds):
        self.files += files
        self.skipped.update(skipped_kinds)

    def line(self, outcome, skipped_as="skipped"):
        """`deid-fast: N files, <outcome>, M skipped (kind: n, ...), T s, R files/s`."""
        seconds = time.perf_counter() - self.started
        skipped = sum(self.skipped.values())
        kinds = ", ".join(f"{kind}: {count:,}" for kind, count in self.skipped.most_common())
        return (f"deid-fast: {self.files:,} files, {outcome}, {skipped:,} {skipped_as}"
                f"{f' ({kinds})' if kinds else ''}, {seconds:.1f} s, "
                f"{self.files / seconds if seconds else 0:,.0f} files/s")


class _ProgressSafeHandler(logging.StreamHandler):
    """WARNING lines on stderr that do not garble the progress bar."""

    def __init__(self, progress):
        super().__init__(sys.stderr)
        self.progress = progress
        self.setFormatter(logging.Formatter("deid-fast: %(levelname)s: %(message)s"))

    def emit(self, record):
        if self.progress.bar is not None:
            self.progress.bar.clear()
            super().emit(record)
            self.progress.bar.refresh()
        else:
            super().emit(record)


def _log_to_stderr(progress, quiet):
    handler = _ProgressSafeHandler(progress)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.ERROR if quiet else logging.WARNING)
    return handler


# --- the commands ---------------------------------------------------------------------------------


def _writer(fmt, args, job, group_records):
    """The writer of `fmt`: a `writers.ChunkWriter` (its workers write the output), or, for
    json, the `JsonWriter` of the Records."""
    if args.resume and fmt not in writers.RESUMABLE:
        raise UsageError(f"--resume works for jsonl and parquet output, not {fmt}")
    if args.resume and args.output == "-":
        raise UsageError("--resume needs an output file, not standard output")
    if args.flat and fmt != "jsonl":
        raise UsageError(f"--flat is a shape of jsonl output, not of {fmt} (parquet has it "
                         "already)")
    if args.single_file and fmt != "parquet":
        raise UsageError(f"--single-file is for parquet output, not {fmt}")
    stdout = args.output == "-"
    if fmt == "parquet":
        from deid_fast.parquet import DatasetWriter
        return DatasetWriter(args.output, job, args.resume, sys.stdout.buffer if stdout else None,
                             args.single_file)
    if fmt == "json":
        return writers.JsonWriter(args.output, group_records, sys.stdout if stdout else None)
    if fmt == "csv":
        return writers.CsvWriter(args.output, job, sys.stdout if stdout else None)
    shape = writers.DICOM_JSON if fmt == "dicom-json" else (
        writers.FLAT if args.flat else writers.NESTED)
    return writers.LineWriter(args.output, job, shape, args.resume,
                              sys.stdout.buffer if stdout else None)


def _options(args, fmt):
    fields = None
    if args.fields is not None:
        fields = [name.strip() for name in args.fields.split(",") if name.strip()]
    # the table's layout keeps each sequence in its column, whatever --no-expand-sequences says
    expand_sequences = args.expand_sequences and not (fmt == "parquet" or args.flat)
    return dict(force=args.force, config=args.config, entity_id=args.entity_id,
                item_id=args.item_id, expand_sequences=expand_sequences,
                skip_fields=args.skip, include_private=args.include_private,
                include_file_meta=args.include_file_meta, delimiter=args.delimiter,
                max_depth=args.max_depth, engine=args.engine, fields=fields,
                max_header_bytes=args.max_header_bytes, max_elements=args.max_elements)


def _get(args):
    try:
        fmt = writers.format_of(args.output if args.output != "-" else "",
                                args.format or ("jsonl" if args.output == "-" else None))
        options = _options(args, fmt)
        job = identifiers_job(**options)
        check_errors(args.errors)
        cluster = _cluster(args.scheduler) if args.scheduler else None
        writer = _writer(fmt, args, job, lambda records: group(records, job))
    except (ValueError, TypeError, OSError, writers.OutputError) as exc:
        raise UsageError(str(exc)) from exc
    done = writer.done_paths() if args.resume else ()
    items = bulk.files(args.paths)
    if done:
        items = (item for item in items if item not in done)
    progress = Progress(_show_progress(args), args.paths, len(done))
    handler = _log_to_stderr(progress, args.quiet)
    summary = Summary()
    finished = False
    try:
        if fmt == "json":     # the Records, grouped at the end
            records = (bulk.records_of(cluster.outcomes(bulk.read_identifiers, items, options,
                                                        cluster.client), args.errors)
                       if cluster else bulk.records(items, job, args.errors, args.workers))
            for record in records:
                writer.write(record)
                summary.count(record.skipped)
                progress.update()
        else:
            _write_chunks(writer, items, options, cluster, args, summary, progress)
        writer.finish(args.workers)
        finished = True
    finally:
        if not finished:
            writer.abandon()
        progress.close()
        logger.removeHandler(handler)
        if cluster is not None:
            cluster.client.close()
        if done:
            done.close()
    where = "standard output" if args.output == "-" else args.output
    what = {"json": "items", "dicom-json": "objects"}.get(fmt, "rows")
    done_note = f" ({len(done):,} done before)" if done else ""
    print(summary.line(f"{writer.written:,} {what} written to {where}") + done_note,
          file=sys.stderr)
    return 0


def _write_chunks(writer, items, options, cluster, args, summary, progress):
    """The workers (local, or on the cluster) write each chunk of `items`; the writer puts
    their results into the output in input order. A bad file stops the run before its chunk
    is put in place with --errors raise."""
    chunks = writer.chunks(items, cluster)
    if cluster is not None:
        results = cluster.run_chunks(writer.work, chunks, options, writer.job, cluster.client)
    else:
        results = bulk.run_chunks(writer.work, chunks, writer.job, args.workers)
    for chunk, context, chunk_results in results:
        skipped = [skip for _offset, result in chunk_results for skip in (
            [(result.path, result.kind, result.reason, result.offset)]
            if isinstance(result, InvalidDicomError) else result[1])]
        bulk.report_skips(skipped, args.errors)      # raises before the chunk is put in place
        writer.take(chunk, context, chunk_results)
        summary.count_many(len(chunk), [kind for _path, kind, _reason, _offset in skipped])
        progress.update(len(chunk))


def _cluster(address):
    """deid_fast.dask, with a client of the Dask scheduler at `address` as `.client`."""
    try:
        from distributed import Client

        from deid_fast import dask as cluster
    except ImportError as exc:
        raise UsageError(f"--scheduler needs Dask: pip install 'deid-fast[dask]' ({exc})") from exc
    try:
        cluster.client = Client(address, timeout=20)
    except OSError as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    return cluster


def _check(args):
    progress = Progress(_show_progress(args), args.paths)
    handler = _log_to_stderr(progress, args.quiet)
    summary = Summary()
    out = sys.stdout if args.output == "-" else open(args.output + ".partial", "w",
                                                     encoding="utf-8")
    try:
        for path, error in bulk.check_files(args.paths, args.force, args.workers,
                                            args.max_depth, args.max_header_bytes,
                                            args.max_elements):
            if error is None:
                out.write(f"dicom\t{path}\n")
            else:
                out.write(f"{error.kind}\t{path}\t{skipped_record(error).reason}\n")
            summary.count(None if error is None else error.kind)
            progress.update()
    finally:
        progress.close()
        logger.removeHandler(handler)
        if out is not sys.stdout:
            out.close()
    if out is not sys.stdout:
        os.replace(args.output + ".partial", args.output)
    dicom = summary.files - sum(summary.skipped.values())
    print(summary.line(f"{dicom:,} DICOM", "not DICOM"), file=sys.stderr)
    return 0


def _show_progress(args):
    return sys.stderr.isatty() if args.progress is None else args.progress


def main(argv=None):
    # Arrow's own allocators keep what a worker freed between parts; the C library's gives it
    # back, which keeps a Parquet run's memory flat (benchmarks/README.md)
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    args = parser().parse_args(argv)
    try:
        return _get(args) if args.command == "get" else _check(args)
    except UsageError as exc:
        print(f"deid-fast {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except InvalidDicomError as exc:
        print(f"deid-fast: error: {exc} [{exc.kind}] (--errors raise)", file=sys.stderr)
        return 1
    except writers.OutputError as exc:
        print(f"deid-fast: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("deid-fast: interrupted; what was written is kept for --resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `deid-fast get ... -o - | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
