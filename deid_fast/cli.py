"""The command line, `deid-fast`: knows arguments, outputs and the terminal.

    deid-fast get PATH... -o OUT [options]     the identifiers of every file, as a table
    deid-fast check PATH...                    what is and is not DICOM, and why

PATH is a file or folder (walked recursively), a glob the tool expands itself (`**` for any
depth), `-` for paths read from standard input (one per line, or NUL-separated with `-0`), or
`@FILE` for paths listed in FILE; `./-` and `./@x` name such files literally.

Exit status: 0 when the run finished (skipped files are reported, not fatal), 1 when
`--errors raise` stopped at a bad file or the output could not be written, 2 for a usage
error (found before any file is read), 130 when interrupted by Ctrl-C, 143 by SIGTERM and 129
by SIGHUP (what was written stays for --resume).
"""
import argparse
import collections
import contextlib
import difflib
import glob
import itertools
import logging
import os
import signal
import sys
import textwrap
import threading
import time

from deid_fast import __version__, bulk, inputs, names, pool, writers
from deid_fast.config import load_config
from deid_fast.dicom import group
from deid_fast.errors import InvalidDicomError
from deid_fast.inputs import path_text
from deid_fast.outfiles import describe
from deid_fast.reader import (DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_HEADER_BYTES,
                              ENGINES, UNGROUPED, check_errors, identifiers_job, skipped_record)

logger = logging.getLogger("deid_fast")

EXAMPLES = """\
examples:
  deid-fast get /data/export -o ids.parquet           one row per file, a column per field
  deid-fast get /data/export -o ids.jsonl --resume    continue a run that was interrupted
  deid-fast get a.dcm b.dcm -o - --format jsonl       to standard output
  deid-fast get /data/export -o ids.json --entity-id PatientName --item-id SOPInstanceUID
  deid-fast check /data/export                        which files are DICOM, and why not
"""

SHOW_EXAMPLES = """\
examples:
  deid-fast show image.dcm                                   the whole header
  deid-fast show image.dcm PatientName 0008,0020 "(0009,0010)"
  deid-fast show rtplan.dcm "BeamSequence[0].BeamName"       a nested field
  deid-fast show image.dcm --json                            the fields dict, as JSON
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


def _positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _common(parser):
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="DICOM files, folders (walked recursively, in sorted order), globs "
                             "('**' for any depth), - for paths on standard input, @FILE for "
                             "a list of paths")
    parser.add_argument("--pattern", metavar="GLOB",
                        help="read only files whose name matches this fnmatch pattern "
                             "('*.dcm'), in folders and among the files named")
    parser.add_argument("-0", "--null", action="store_true",
                        help="the paths of - and @FILE are separated by NUL, not newlines")
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


class _Parser(argparse.ArgumentParser):
    """argparse, with a close match suggested for an unknown option, and unknown options told
    before missing ones (a typo in `--ouput` is about --output, not a missing -o)."""

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if getattr(parsed, "command", None) == "show":
            # FIELD arguments after an option (show FILE --json PatientName) are still fields
            parsed.fields += [extra for extra in extras if not extra.startswith("-")]
            extras = [extra for extra in extras if extra.startswith("-")]
        if extras:
            command = self._command_parser(parsed)
            unknown = extras[0]
            options = [option for action in command._actions for option in action.option_strings
                       if option.startswith("--")]
            near = difflib.get_close_matches(unknown.split("=", 1)[0], options, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            command.error(f"unrecognized argument {unknown}{hint}")
        if getattr(parsed, "command", None) == "get" and parsed.output is None:
            self._command_parser(parsed).error("the following arguments are required: "
                                               "-o/--output")
        return parsed

    def _command_parser(self, parsed):
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices.get(getattr(parsed, "command", None), self)
        return self


def parser():
    main = _Parser(
        prog="deid-fast", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The identifying header fields of DICOM files, fast and exactly as pydicom "
                    "reads them.", epilog=EXAMPLES)
    main.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                   parser_class=argparse.ArgumentParser)

    get = commands.add_parser(
        "get", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="write the identifiers of every file to OUT",
        description=textwrap.fill(
            "Write the identifying header fields of every DICOM file under PATH to OUT. Files "
            "that are not DICOM are reported (a WARNING each, and a row saying why in jsonl, "
            "csv and parquet) and the run goes on.", 88),
        epilog=FORMAT_HELP + "\n" + EXAMPLES)
    _common(get)
    get.add_argument("-o", "--output", metavar="OUT",
                     help="the output file, or - for standard output (required)")
    get.add_argument("--format", choices=writers.FORMATS, help="the output format (see below)")
    get.add_argument("--resume", action="store_true",
                     help="continue an interrupted jsonl or parquet run (made with the same "
                          "options): files already in OUT are not read again")
    get.add_argument("--overwrite", action="store_true",
                     help="discard what an interrupted run left (OUT.partial) and start again")
    get.add_argument("--csv-raw", action="store_true",
                     help="csv: write text cells as they are (by default text that a "
                          "spreadsheet would run as a formula gets a leading ')")
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
    fields.add_argument("--fields", action="append", metavar="FIELD",
                        help="report only these top-level fields (and the entity and item): "
                             "keywords or tags ((0010,0010), 0010,0010, 00100010); repeat it, "
                             "or separate names with commas")
    fields.add_argument("--skip", action="append", metavar="FIELD", default=[],
                        help="leave out this field at any depth (a keyword or tag); repeat it, "
                             "or separate names with commas")
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
    get.add_argument("--scheduler-timeout", type=_positive_seconds, default=20, metavar="S",
                     help="seconds to wait for the Dask scheduler to answer (default 20)")
    get.add_argument("--errors", choices=("warn", "raise"), default="warn",
                     help="warn (default): skip bad files; raise: stop at the first (exit 1)")

    show = commands.add_parser(
        "show", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="print one file's header, a line per element (as dcmdump)",
        description=textwrap.fill(
            "Print the header of FILE as a person reads it: a line per element with its tag, "
            "VR, value (long values and bytes cut, with their length) and keyword (for a "
            "private element its creator), the items of a sequence indented under it, the file "
            "meta first. Values are those get_fields reports. Nothing after the first top-level "
            "pixel data element is read.", 88),
        epilog=SHOW_EXAMPLES)
    show.add_argument("file", metavar="FILE", help="a DICOM file")
    show.add_argument("fields", nargs="*", metavar="FIELD",
                      help="show only these: keywords, tags ((0010,0010), 0010,0010, 00100010) "
                           "or paths (ReferencedSeriesSequence[0].SeriesInstanceUID)")
    show.add_argument("--json", action="store_true",
                      help="the fields dict of get_fields (with FIELD: get_fields(fields=...)) "
                           "as JSON")
    show.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                      help="colour the lines: auto (default) on a terminal, unless NO_COLOR "
                           "is set")
    show.add_argument("--no-force", dest="force", action="store_false",
                      help="reject a file without the 128-byte preamble and DICM")

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


# --- inputs --------------------------------------------------------------------------------------

_GLOB_CHARACTERS = frozenset("*?[")


def _paths_listed(handle, separator):
    """The paths of a list (a binary file), one per line or NUL-separated; empty ones left out."""
    rest = b""
    for block in iter(lambda: handle.read(1 << 16), b""):
        *complete, rest = (rest + block).split(separator)
        for line in complete:
            if separator == b"\n" and line.endswith(b"\r"):
                line = line[:-1]
            if line:
                yield os.fsdecode(line)
    if rest:
        yield os.fsdecode(rest)


def _listed(name, separator):
    try:
        handle = open(name, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read the list @{name}: {exc.strerror}") from exc

    def paths():
        with handle:
            yield from _paths_listed(handle, separator)
    return paths()


def input_sources(arguments, null=False):
    """What the PATH arguments name, checked before any work: a path that does not exist is a
    usage error, unless it holds glob characters (expanded here, sorted; no match is a usage
    error); `-` is the paths on standard input, `@FILE` those listed in FILE (not checked: each
    path of a list that cannot be read is a record). Returns `(sources, again)`: an
    iterable for `bulk.files`, and a list of the same sources to count them again for the
    progress total (None when they cannot be read twice: standard input, lists)."""
    separator = b"\0" if null else b"\n"
    sources, countable, stdin_used = [], True, False
    for argument in arguments:
        if argument == "-":
            if stdin_used:
                raise UsageError("- (standard input) is given twice")
            stdin_used, countable = True, False
            sources.append(_paths_listed(sys.stdin.buffer, separator))
        elif argument.startswith("@") and len(argument) > 1:
            sources.append(_listed(argument[1:], separator))
            countable = False
        elif os.path.lexists(argument):
            sources.append([argument])
        elif _GLOB_CHARACTERS & set(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            if not matches:
                raise UsageError(f"no file matches {argument!r}")
            sources.append(matches)
        else:
            raise UsageError(f"{path_text(argument)} does not exist")
    again = [path for source in sources for path in source] if countable else None
    return itertools.chain.from_iterable(sources), again


# --- progress and summary -----------------------------------------------------------------------


class Progress:
    """Files done, files/s and ETA on stderr; the total is counted by a background walk (when
    the inputs can be listed twice: not for paths on standard input)."""

    def __init__(self, show, paths, already_done=0, pattern=None):
        self.bar = None
        self.paths = paths
        self.pattern = pattern
        self.already_done = already_done
        if show:
            from tqdm import tqdm
            self.bar = tqdm(total=None, unit=" files", file=sys.stderr, dynamic_ncols=True,
                            smoothing=0.1, mininterval=0.5)
        self.counter = None

    def update(self, files=1):
        if self.bar is None:
            return
        if self.counter is None and self.paths is not None:  # after the workers' fork
            self.counter = threading.Thread(target=self._count, daemon=True)
            self.counter.start()
        self.bar.update(files)

    def _count(self):
        total = sum(1 for _ in bulk.files(self.paths, pattern=self.pattern)) - self.already_done
        self.bar.total = max(total, self.bar.n)
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


class Summary:
    """What happened to the files of a run, for the last line on stderr: read (of which kept
    without an entity or item value), and not read, by kind."""

    def __init__(self):
        self.started = time.perf_counter()
        self.files = 0
        self.ungrouped = collections.Counter()
        self.bad = collections.Counter()

    def count_many(self, files, kinds):
        self.files += files
        for kind in kinds:
            (self.ungrouped if kind in UNGROUPED else self.bad)[kind] += 1

    def line(self, outcome, read_as="read", bad_as="not DICOM"):
        """`deid-fast: N files, R read (U without an entity value), B not DICOM (kind: n, ...);
        <outcome>; T s, F files/s` (no outcome when it is None)."""
        seconds = time.perf_counter() - self.started
        bad = sum(self.bad.values())
        kinds = ", ".join(f"{kind}: {count:,}" for kind, count in self.bad.most_common())
        what = {"no-entity": "without an entity value", "no-item": "without an item value"}
        ungrouped = ", ".join(f"{count:,} {what[kind]}" for kind, count in self.ungrouped.items())
        return (f"deid-fast: {self.files:,} files, {self.files - bad:,} {read_as}"
                f"{f' ({ungrouped})' if ungrouped else ''}, {bad:,} {bad_as}"
                f"{f' ({kinds})' if kinds else ''}; {f'{outcome}; ' if outcome else ''}"
                f"{seconds:.1f} s, "
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
    """WARNING lines (ERROR with -q) of deid_fast's logger on stderr while a command runs;
    `_stop_logging` puts the logger back as it was (main() may be called in a process that
    logs otherwise)."""
    handler = _ProgressSafeHandler(progress)
    handler.saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.ERROR if quiet else logging.WARNING)
    return handler


def _stop_logging(handler):
    logger.removeHandler(handler)
    level, logger.propagate = handler.saved
    logger.setLevel(level)


# --- the commands ---------------------------------------------------------------------------------


def _check_shape(fmt, args):
    if args.resume and fmt not in writers.RESUMABLE:
        raise UsageError(f"--resume works for jsonl and parquet output, not {fmt}")
    if args.resume and args.output == "-":
        raise UsageError("--resume needs an output file, not standard output")
    if args.resume and args.overwrite:
        raise UsageError("--resume continues what --overwrite would discard: give one")
    if args.flat and fmt != "jsonl":
        raise UsageError(f"--flat is a shape of jsonl output, not of {fmt} (parquet has it "
                         "already)")
    if args.single_file and fmt != "parquet":
        raise UsageError(f"--single-file is for parquet output, not {fmt}")
    if args.single_file and args.resume:
        raise UsageError("--single-file makes one file at the end, which cannot be resumed: "
                         "resume the dataset, then make the file")
    if args.csv_raw and fmt != "csv":
        raise UsageError(f"--csv-raw is for csv output, not {fmt}")


def _output(fmt, args, options):
    """The checked `writers.Output` of OUT (None for standard output): locked, and for the
    resumable formats with the sidecar of what makes it."""
    if args.output == "-":
        return None
    made_by = None
    if fmt in writers.RESUMABLE:
        # the engine is left out: both engines give the same rows (the tests hold them to it)
        described = {name: value for name, value in options.items() if name != "engine"}
        described.update(config=load_config(options["config"]), flat=args.flat)
        made_by = writers.fingerprint(__version__, fmt, described)
    return writers.Output(args.output, made_by, args.resume, args.overwrite,
                          dataset=fmt == "parquet")


def _writer(fmt, args, job, output, group_records):
    """The writer of `fmt`: a `writers.ChunkWriter` (its workers write the output), or, for
    json, the `JsonWriter` of the Records."""
    stdout = args.output == "-"
    if fmt == "parquet":
        from deid_fast.parquet import DatasetWriter
        return DatasetWriter(job, output, sys.stdout.buffer if stdout else None, args.single_file)
    if fmt == "json":
        return writers.JsonWriter(group_records, output, sys.stdout.buffer if stdout else None)
    if fmt == "csv":
        return writers.CsvWriter(job, output, sys.stdout if stdout else None, args.csv_raw)
    shape = writers.DICOM_JSON if fmt == "dicom-json" else (
        writers.FLAT if args.flat else writers.NESTED)
    return writers.LineWriter(job, shape, output, sys.stdout.buffer if stdout else None)


def _options(args, fmt):
    fields = None if args.fields is None else names.split_option(args.fields)
    # the table's layout keeps each sequence in its column, whatever --no-expand-sequences says
    expand_sequences = args.expand_sequences and not (fmt == "parquet" or args.flat)
    return dict(force=args.force, config=args.config, entity_id=args.entity_id,
                item_id=args.item_id, expand_sequences=expand_sequences,
                skip_fields=names.split_option(args.skip), include_private=args.include_private,
                include_file_meta=args.include_file_meta, delimiter=args.delimiter,
                max_depth=args.max_depth, engine=args.engine, fields=fields,
                max_header_bytes=args.max_header_bytes, max_elements=args.max_elements)


def _get(args):
    output = None
    try:
        fmt = writers.format_of(args.output if args.output != "-" else "",
                                args.format or ("jsonl" if args.output == "-" else None))
        if fmt == "parquet" and args.output == "-" and sys.stdout.isatty():
            raise UsageError("parquet is binary: not written to a terminal (give -o FILE, or "
                             "redirect standard output)")
        _check_shape(fmt, args)
        options = _options(args, fmt)
        job = identifiers_job(**options)
        check_errors(args.errors)
        sources, again = input_sources(args.paths, args.null)
        cluster = _cluster(args.scheduler, args.scheduler_timeout) if args.scheduler else None
        output = _output(fmt, args, options)
        writer = _writer(fmt, args, job, output, lambda records: group(records, job))
    except writers.DamagedOutput:
        output.release()
        raise
    except (ValueError, TypeError, OSError, writers.OutputError) as exc:
        if output is not None:
            output.release()
        raise UsageError(str(exc)) from exc
    try:
        return _run(args, fmt, options, job, sources, again, cluster, output, writer)
    finally:
        if output is not None:
            output.release()
        if cluster is not None:
            cluster.client.close()


def _run(args, fmt, options, job, sources, again, cluster, output, writer):
    done = writer.done_paths()
    items = bulk.files(sources, inputs.Exclude(None if output is None else args.output),
                       args.pattern)
    if done:
        items = (item for item in items if not done.take(path_text(inputs.name_of(item))))
    progress = Progress(_show_progress(args), again, len(done), args.pattern)
    handler = _log_to_stderr(progress, args.quiet)
    summary = Summary()
    ungrouped = bulk.Ungrouped()
    finished = False
    try:
        if cluster is not None and fmt != "json":
            writer.for_cluster()
        if fmt == "json":     # the Records, grouped at the end
            records = (bulk.records_of(cluster.outcomes(bulk.read_identifiers, items, options,
                                                        cluster.client), args.errors)
                       if cluster else bulk.records(items, job, args.errors, args.workers))
            with contextlib.closing(records):
                for record in records:
                    writer.write(record)
                    summary.count_many(1, [] if record.skipped is None else [record.skipped])
                    progress.update()
        else:
            _write_chunks(writer, items, options, cluster, args, summary, progress, ungrouped)
        with _signals_held():
            writer.finish(args.workers)
            finished = True
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise writers.OutputError(_write_failure(exc, args, output)) from exc
    except pool.TaskFailed as exc:
        if isinstance(exc.error, OSError):
            raise writers.OutputError(_write_failure(exc.error, args, output)) from exc
        raise
    finally:
        if not finished:
            writer.abandon()
        ungrouped.log()
        progress.close()
        _stop_logging(handler)
        done.close()
    where = "standard output" if args.output == "-" else path_text(args.output)
    what = {"json": "items", "dicom-json": "objects"}.get(fmt, "rows")
    done_note = f" ({len(done):,} done before)" if done else ""
    print(summary.line(f"{writer.written:,} {what} written to {where}{done_note}"),
          file=sys.stderr)
    return 0


def _write_failure(error, args, output):
    """The one line of a failed write: the file, the reason, what is kept."""
    name = error.filename if isinstance(error.filename, str) else args.output
    kept = (f" (what was written is kept in {path_text(args.output)}.partial for --resume)"
            if output is not None and output.made_by is not None else "")
    return describe(error, path_text(name)) + kept


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C, SIGTERM and SIGHUP wait while an output takes its name (they are handled
    right after)."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _write_chunks(writer, items, options, cluster, args, summary, progress, ungrouped):
    """The workers (local, or on the cluster) write each chunk of `items`; the writer puts
    their results into the output in input order. A bad file stops the run before its chunk
    is put in place with --errors raise."""
    chunks = writer.chunks(items, cluster)
    if cluster is not None:
        results = cluster.run_chunks(writer.work, chunks, options, writer.job, cluster.client)
    else:
        results = bulk.run_chunks(writer.work, chunks, writer.job, args.workers)
    with contextlib.closing(results):        # the workers stop before the caller cleans up
        for chunk, context, chunk_results in results:
            skipped = [skip for _offset, result in chunk_results for skip in (
                [(result.path, result.kind, result.reason, result.offset)]
                if isinstance(result, InvalidDicomError) else result[1])]
            bulk.report_skips(skipped, args.errors, ungrouped)   # raises before the chunk is put
            writer.take(chunk, context, chunk_results)
            summary.count_many(len(chunk), [kind for _path, kind, _reason, _offset in skipped])
            progress.update(len(chunk))


def _cluster(address, timeout):
    """deid_fast.dask, with a client of the Dask scheduler at `address` as `.client`."""
    try:
        from distributed import Client

        from deid_fast import dask as cluster
    except ImportError as exc:
        raise UsageError(f"--scheduler needs Dask: pip install 'deid-fast[dask]' ({exc})") from exc
    try:
        cluster.client = Client(address, timeout=timeout)
    except OSError as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    return cluster


def _one_line(text):
    """`text` on one line: a reason never forges a line of `check` output."""
    return " ".join(text.split())


def _check(args):
    output = None
    try:
        sources, again = input_sources(args.paths, args.null)
        if args.output != "-":
            output = writers.Output(args.output)
    except (ValueError, OSError, writers.OutputError) as exc:
        raise UsageError(str(exc)) from exc
    progress = Progress(_show_progress(args), again, pattern=args.pattern)
    handler = _log_to_stderr(progress, args.quiet)
    summary = Summary()
    exclude = inputs.Exclude(None if output is None else args.output)

    def produce(out):
        for path, error in bulk.check_files(sources, args.force, args.workers, args.max_depth,
                                            args.max_header_bytes, args.max_elements, exclude,
                                            args.pattern):
            if error is None:
                line = f"dicom\t{path_text(path)}\n"
            else:
                line = (f"{error.kind}\t{path_text(path)}\t"
                        f"{_one_line(skipped_record(error).reason)}\n")
            out.write(line.encode("utf-8"))
            summary.count_many(1, [] if error is None else [error.kind])
            progress.update()

    try:
        if output is None:
            produce(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            output.write_whole(produce)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise writers.OutputError(_write_failure(exc, args, output)) from exc
    finally:
        progress.close()
        _stop_logging(handler)
        if output is not None:
            output.release()
    print(summary.line(None, read_as="DICOM"), file=sys.stderr)
    return 0


def _show(args):
    """`show`: one file's header on standard output; 1 when the file cannot be read."""
    from deid_fast import show
    try:
        if args.json:
            text = _show_json(args)
        else:
            colour = (args.color == "always" or args.color == "auto" and sys.stdout.isatty()
                      and not os.environ.get("NO_COLOR"))
            text = "\n".join(show.header_lines(args.file, args.fields, colour, args.force))
    except InvalidDicomError as exc:
        print(f"deid-fast show: error: {path_text(exc.path)}: {exc.reason} [{exc.kind}]",
              file=sys.stderr)
        return 1
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return 0


def _show_json(args):
    """The fields dict of get_fields (with FIELD arguments, `fields=` them) as JSON."""
    import json

    from deid_fast import get_fields, jsontext
    fields = get_fields(args.file, force=args.force, fields=args.fields or None)
    return json.dumps(json.loads(jsontext.dumps(fields)), indent=2, ensure_ascii=False)


def _show_progress(args):
    return sys.stderr.isatty() if args.progress is None else args.progress


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP: handled as Ctrl-C is (what was written stays for --resume)."""

    def __init__(self, number):
        super().__init__(number)
        self.number = number


def _stop(number, _frame):
    raise Stopped(number)


@contextlib.contextmanager
def _stopped_by_signals():
    """SIGTERM and SIGHUP raise `Stopped` while the command runs (in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _stop) for number in (signal.SIGTERM,
                                                                      signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv=None):
    # Arrow's own allocators keep what a worker freed between parts; the C library's gives it
    # back, which keeps a Parquet run's memory flat (benchmarks/README.md)
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:             # `deid-fast` alone: the help, not one line of usage
        parser().print_help()
        return 0
    args = parser().parse_args(argv)
    try:
        with _stopped_by_signals():
            return {"get": _get, "check": _check, "show": _show}[args.command](args)
    except UsageError as exc:
        print(f"deid-fast {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except InvalidDicomError as exc:
        print(f"deid-fast: error: {path_text(exc.path)}: {exc.reason} [{exc.kind}] "
              "(--errors raise)", file=sys.stderr)
        return 1
    except writers.OutputError as exc:
        print(f"deid-fast: error: {exc}", file=sys.stderr)
        return 1
    except Stopped as exc:
        name = signal.Signals(exc.number).name
        print(f"deid-fast: stopped by {name}; what was written is kept for --resume",
              file=sys.stderr)
        return 128 + exc.number
    except KeyboardInterrupt:
        print("deid-fast: interrupted; what was written is kept for --resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `deid-fast get ... -o - | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
