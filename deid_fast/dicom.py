"""The API: knows files and options (SPEC section 1, rules R1, R3, R9 and the bad-input policy).

`get_files` finds DICOM files, `get_fields` flattens one file, `get_identifiers` groups the
fields of many by entity and item. The work is the card's pipeline: the scanner finds the
header and its element table, the native decoder and flattener build the dict from it (or, with
engine="pydicom" and for what the native path hands over, pydicom decodes the header's bytes).
"""
import fnmatch
import logging
import os
import re
from typing import NamedTuple, Optional

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from deid_fast._flatten import (NativeUnsupported, Options, UndecodableElement, flatten,
                                read_native)
from deid_fast._scan import DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_HEADER_BYTES, scan
from deid_fast._values import is_empty, to_builtin
from deid_fast.config import check_id_keyword, load_config
from deid_fast.decode import (count_fallback, decoded, pydicom_defaults, pydicom_messages_to_debug,
                              read_file_meta, read_header, undecodable)
from deid_fast.errors import InvalidDicomError

logger = logging.getLogger("deid_fast")

DEFAULT_MAX_DEPTH = 128
ENGINES = ("native", "pydicom")
_ERRORS = ("warn", "raise")
_EMPTY = Dataset()


# --- finding files ----------------------------------------------------------------------------


def _walk(folder, pattern=None):
    """Every file under `folder`, recursively, sorted by name at each level."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if pattern is None or fnmatch.fnmatch(name, pattern):
                yield os.path.join(root, name)


def _as_list(items):
    """R1: a single path or Dataset counts as a list of one."""
    if isinstance(items, (str, bytes, os.PathLike, Dataset)):
        return [items]
    return items


def _candidates(contenders, pattern=None):
    """The paths named by `contenders` (files as given, folders walked), as str."""
    for contender in _as_list(contenders):
        path = os.fsdecode(contender)
        if os.path.isdir(path):
            found = list(_walk(path, pattern))
            logger.debug("Found %d contender files in %s", len(found),
                         os.path.basename(os.path.normpath(path)))
            yield from found
        else:
            yield path


def get_files(contenders, check=True, pattern=None, force=False, max_depth=DEFAULT_MAX_DEPTH,
              max_header_bytes=DEFAULT_MAX_HEADER_BYTES, max_elements=DEFAULT_MAX_ELEMENTS):
    """Yield the files named by `contenders` (a file, a folder or a list of them); folders are
    walked recursively in sorted order, `pattern` is an fnmatch pattern on the file name. With
    `check=True` only the files whose header the scanner accepts as DICOM are yielded."""
    limits = Limits(max_depth, max_header_bytes, max_elements)
    paths = list(_candidates(contenders, pattern))
    if not check:
        yield from paths
        return
    logger.debug("Checking %d dicom files for validation.", len(paths))
    valid = 0
    for path in paths:
        try:
            limits.scan(path, force)
        except InvalidDicomError as exc:
            logger.info("Not DICOM, left out: %s [%s]", exc, exc.kind)
            continue
        valid += 1
        yield path
    logger.debug("Found %d valid dicom files", valid)


# --- one file -----------------------------------------------------------------------------------


def _options(skip, expand_sequences, include_private, include_file_meta, delimiter, select=None):
    return Options(expand_sequences=expand_sequences, skip=skip, include_private=include_private,
                   include_file_meta=include_file_meta, delimiter=delimiter, select=select)


_PRIVATE_NAME = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)\Z")


def _selection(fields, ids=()):
    """The `fields=` selection: top-level names (keywords, or private tags as pydicom prints
    them) plus the entity and item keywords, and the last tag the scanner must walk to.
    None, None when every field is wanted."""
    if fields is None:
        return None, None
    if isinstance(fields, str):
        fields = [fields]
    tags = {name: tag_for_keyword(name) for name in ids}
    for name in fields:
        if not isinstance(name, str):
            raise TypeError(f"fields must hold keywords as str, not {type(name).__name__}")
        private = _PRIVATE_NAME.match(name)
        tag = tag_for_keyword(name) if private is None else int(private[1] + private[2], 16)
        if tag is None:
            raise ValueError(f"field {name!r} is neither a keyword of pydicom's dictionary nor a "
                             "private tag written as '(gggg,eeee)'")
        tags[name] = tag
    return frozenset(tags), max(tags.values(), default=0)


def _skip_list(settings, skip_fields):
    if skip_fields is None:
        skip_fields = []
    elif isinstance(skip_fields, str):
        skip_fields = [skip_fields]
    return list(settings["skip"]) + list(skip_fields)


class Limits:
    """The resource bounds of the scanner (SPEC section 3; the README's decisions on bad input)."""

    __slots__ = ("max_depth", "max_header_bytes", "max_elements")

    def __init__(self, max_depth, max_header_bytes, max_elements):
        for name, value in (("max_depth", max_depth), ("max_header_bytes", max_header_bytes),
                            ("max_elements", max_elements)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, not {value!r}")
        self.max_depth = max_depth
        self.max_header_bytes = max_header_bytes
        self.max_elements = max_elements

    def scan(self, path, force, stop_after=0xFFFFFFFF):
        return scan(path, force, self.max_depth, stop_after, self.max_header_bytes,
                    self.max_elements)


def _id_text(value):
    """R3: the entity or item text of an R6 value; None when empty."""
    if is_empty(value):
        return None
    if isinstance(value, list):
        return "\\".join(str(item) for item in value)
    return str(value)


def _lookup(dataset, file_meta, keyword):
    """R3: the R6 value of `keyword` from the top level, else the file meta (skip list or not)."""
    for where in (dataset, file_meta):
        if where is not None and keyword in where:
            value = to_builtin(where[keyword].value)
            if not is_empty(value):
                return value
    return None


def _read_dataset(dataset, file_meta, header, name, options, ids):
    """The pydicom engine's fields, and the texts of the `ids` keywords."""
    def compute():
        fields = flatten(dataset, file_meta, options)
        return fields, [_id_text(_lookup(dataset, file_meta, keyword)) for keyword in ids]
    return decoded(name, compute, header)


class _Job:
    """The settings of one call, checked once: field options, scanner bounds, engine, ids."""

    __slots__ = ("options", "force", "limits", "engine", "ids", "id_tags", "stop_after")

    def __init__(self, options, force, limits, engine, ids=(), stop_after=None):
        _check_engine(engine)
        self.options = options
        self.force = force
        self.limits = limits
        self.engine = engine
        self.ids = ids
        self.id_tags = tuple(tag_for_keyword(keyword) for keyword in ids) + (0, 0)[len(ids):]
        self.stop_after = 0xFFFFFFFF if stop_after is None else stop_after


def _ids_from_file_meta(header, name, job, texts):
    """R3: ids absent from the top level are looked up in the file meta."""
    file_meta = decoded(name, lambda: read_file_meta(header), header)
    return [text if text is not None else
            decoded(name, lambda: _id_text(_lookup(None, file_meta, keyword)), header)
            for keyword, text in zip(job.ids, texts)]


def _read(source, name, job):
    """The fields of one path or Dataset (the header only), and the R3 texts of the job's id
    keywords; raises InvalidDicomError. The native engine hands what it does not handle to
    pydicom, counted in `deid_fast.decode.fallbacks`."""
    if isinstance(source, Dataset):
        return _read_dataset(source, getattr(source, "file_meta", None), None, name, job.options,
                             job.ids)
    limits = job.limits
    if job.engine == "native":
        try:
            header, fields, entity, item = read_native(
                name, job.force, limits.max_depth, job.stop_after, limits.max_header_bytes,
                limits.max_elements, job.options, job.id_tags[0], job.id_tags[1])
        except NativeUnsupported as exc:
            count_fallback(name, str(exc))
        except (InvalidDicomError, MemoryError):
            raise
        except UndecodableElement as exc:
            raise undecodable(name, exc, exc.header) from exc
        except Exception as exc:
            raise undecodable(name, exc) from exc
        else:
            if job.options.include_file_meta and header.has_file_meta:   # R2: file meta first
                file_meta = decoded(name, lambda: read_file_meta(header), header)
                fields = {**decoded(name, lambda: flatten(_EMPTY, file_meta, job.options), header),
                          **fields}
            if not job.ids:
                return fields, []
            texts = [_id_text(entity), _id_text(item)]
            if None in texts and header.has_file_meta:
                texts = _ids_from_file_meta(header, name, job, texts)
            return fields, texts
    header = limits.scan(name, job.force, job.stop_after)
    dataset, file_meta = decoded(name, lambda: read_header(header), header)
    return _read_dataset(dataset, file_meta, header, name, job.options, job.ids)


def _check_engine(engine):
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")


def _display_name(source, index):
    if isinstance(source, Dataset):
        filename = getattr(source, "filename", None)
        return filename if isinstance(filename, str) and filename else f"<Dataset #{index}>"
    return os.fsdecode(source)


def get_fields(source, force=True, expand_sequences=True, skip_fields=None, include_private=False,
               include_file_meta=False, delimiter="_", max_depth=DEFAULT_MAX_DEPTH,
               engine="native", fields=None, max_header_bytes=DEFAULT_MAX_HEADER_BYTES,
               max_elements=DEFAULT_MAX_ELEMENTS):
    """The `{field: value}` dict of one file path or pydicom Dataset (SPEC R2, R4-R8).

    `fields`, a list of top-level keywords, reports only those (the header is then read up to
    the last of them). A file that is not a whole, decodable DICOM header raises
    `InvalidDicomError`."""
    select, stop_after = _selection(fields)
    job = _Job(_options(_skip_list(load_config(), skip_fields), expand_sequences,
                        include_private, include_file_meta, delimiter, select),
               force, Limits(max_depth, max_header_bytes, max_elements), engine, (), stop_after)
    name = _display_name(source, 0)
    with pydicom_defaults(), pydicom_messages_to_debug() as flush:
        try:
            return _read(source, name, job)[0]
        finally:
            flush(name)


# --- many files -------------------------------------------------------------------------------


class Record(NamedTuple):
    """One file's result: its `fields` grouped under `entity` and `item` (SPEC R3), or why it
    was skipped. `skipped` is None for a file read and grouped, an `InvalidDicomError` kind for a
    file that is not DICOM, or "no-entity"/"no-item" for a file that has no value to group by
    (its fields are kept); `reason` says why in words."""

    path: str
    entity: Optional[str]
    item: Optional[str]
    fields: Optional[dict]
    skipped: Optional[str] = None
    reason: Optional[str] = None


def skipped_record(error):
    """The Record of a file that raised `error`, an InvalidDicomError."""
    where = "" if error.offset is None else f" (at byte {error.offset})"
    return Record(error.path, None, None, None, error.kind, error.reason + where)


def log_skip(record):
    logger.warning("Skipping %s: %s [%s]", record.path, record.reason, record.skipped)


def identifiers_job(force=True, config=None, entity_id=None, item_id=None, expand_sequences=True,
                    skip_fields=None, include_private=False, include_file_meta=False,
                    delimiter="_", max_depth=DEFAULT_MAX_DEPTH, engine="native", fields=None,
                    max_header_bytes=DEFAULT_MAX_HEADER_BYTES, max_elements=DEFAULT_MAX_ELEMENTS):
    """The checked `_Job` of `get_identifiers`' options (every check happens before any file
    is read)."""
    settings = load_config(config)
    entity_id = check_id_keyword(entity_id or settings["ids"]["entity"], "entity_id")
    item_id = check_id_keyword(item_id or settings["ids"]["item"], "item_id")
    select, stop_after = _selection(fields, (entity_id, item_id))
    return _Job(_options(_skip_list(settings, skip_fields), expand_sequences, include_private,
                         include_file_meta, delimiter, select), force,
                Limits(max_depth, max_header_bytes, max_elements), engine, (entity_id, item_id),
                stop_after)


def check_errors(errors):
    if errors not in _ERRORS:
        raise ValueError(f"errors must be one of {_ERRORS}, not {errors!r}")


def read_record(source, name, job, flush):
    """The Record of one file or Dataset (R3); raises InvalidDicomError for a bad one."""
    try:
        fields, (entity, item) = _read(source, name, job)
    finally:
        flush(name)
    if entity is None:
        return Record(name, entity, item, fields, "no-entity",
                      f"it has no {job.ids[0]} value to group by")
    if item is None:
        return Record(name, entity, item, fields, "no-item",
                      f"it has no {job.ids[1]} value to group by")
    return Record(name, entity, item, fields)


def is_folder(source, error):
    """Folders are found when the scanner cannot open them as files: no extra stat per file."""
    return error.kind == "unreadable" and not isinstance(source, Dataset) and os.path.isdir(
        error.path)


def serial_records(sources, job, errors, flush):
    """A Record per file named by `sources` (R1: folders walked like get_files), in order, read
    in this process. Skips are logged at WARNING; with errors="raise" a bad file raises."""
    for index, source in enumerate(_as_list(sources)):
        name = source if type(source) is str else _display_name(source, index)
        try:
            record = read_record(source, name, job, flush)
        except InvalidDicomError as exc:
            if not is_folder(source, exc):
                if errors == "raise":
                    raise
                record = skipped_record(exc)
            else:
                yield from serial_records(_candidates(name), job, errors, flush)
                continue
        if record.skipped is not None:
            log_skip(record)
        yield record


def group(records, job):
    """`{entity: {item: fields}}` of `records` (R3): skipped ones left out, the later of two
    files with the same (entity, item) wins with a WARNING, items in input order."""
    debug = logger.isEnabledFor(logging.DEBUG)
    entity_id, item_id = job.ids
    lookup = {}
    origin = {}  # (entity, item) -> the file it came from
    for record in records:
        if record.skipped is not None:
            continue
        entity, item, name = record.entity, record.item, record.path
        if debug:
            logger.debug("entity id: %s", entity)
            logger.debug("item id: %s", item)
            logger.debug("Found %d defined fields for %s", len(record.fields),
                         os.path.basename(name))
        items = lookup.setdefault(entity, {})
        if item in items:
            logger.warning("%s has the same %s %r and %s %r as %s: the later file wins",
                           name, entity_id, entity, item_id, item, origin[entity, item])
            del items[item]  # the item takes the position of the file that wins
        items[item] = record.fields
        origin[entity, item] = name
    return lookup


def get_identifiers(dicom_files, force=True, config=None, entity_id=None, item_id=None,
                    expand_sequences=True, skip_fields=None, include_private=False,
                    include_file_meta=False, delimiter="_", errors="warn",
                    max_depth=DEFAULT_MAX_DEPTH, engine="native", fields=None,
                    max_header_bytes=DEFAULT_MAX_HEADER_BYTES, max_elements=DEFAULT_MAX_ELEMENTS,
                    workers=1):
    """`{entity: {item: {field: value}}}` for `dicom_files` (SPEC section 1, R1-R9).

    Files that are not DICOM are left out with a WARNING naming them (`errors="warn"`) or raise
    `InvalidDicomError` (`errors="raise"`). `fields`, a list of top-level keywords, reports only
    those and the entity and item (the header is then read up to the last of them). `workers`
    processes read the files (None: one per core); the result is the same as with one."""
    job = identifiers_job(force, config, entity_id, item_id, expand_sequences, skip_fields,
                          include_private, include_file_meta, delimiter, max_depth, engine,
                          fields, max_header_bytes, max_elements)
    check_errors(errors)
    if workers != 1:
        from deid_fast import bulk  # the process pool is only loaded when asked for
        return group(bulk.records(bulk.files(dicom_files), job, errors, workers), job)
    with pydicom_defaults(), pydicom_messages_to_debug() as flush:
        return group(serial_records(dicom_files, job, errors, flush), job)
