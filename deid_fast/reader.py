"""Reading one source into a Record: knows one file (or Dataset) and the options of a read.

The card's pipeline for one file: the scanner finds the header and its element table, the
native decoder and flattener build the fields from it (or, with engine="pydicom" and for what
the native path hands over, pydicom decodes the header's bytes), and the entity and item
texts are looked up (SPEC R3). The public API (`deid_fast.dicom`), the bulk runner and Dask
all read through here.
"""
import logging
import re
from typing import NamedTuple, Optional

from pydicom.datadict import keyword_dict, tag_for_keyword
from pydicom.dataset import Dataset

from deid_fast._flatten import (NativeUnsupported, Options, UndecodableElement, flatten,
                                flatten_header, options_key, read_native)
from deid_fast.archives import Member
from deid_fast._scan import DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_HEADER_BYTES, scan, scan_stream
from deid_fast._values import is_empty, to_builtin
from deid_fast.config import check_id_keyword, load_config
from deid_fast.decode import count_fallback, decoded, read_header, undecodable
from deid_fast.errors import InvalidDicomError
from deid_fast.inputs import path_text
from deid_fast.names import field_name, field_names, path_steps, tag_of

logger = logging.getLogger("deid_fast")

DEFAULT_MAX_DEPTH = 128
ENGINES = ("native", "pydicom")
_ERRORS = ("warn", "raise")

def _options(skip, expand_sequences, include_private, include_file_meta, delimiter, select=None):
    return Options(expand_sequences=expand_sequences, skip=skip, include_private=include_private,
                   include_file_meta=include_file_meta, delimiter=delimiter, select=select)


def _selection(fields, ids=()):
    """The `fields=` selection: top-level names (keywords or tags, see `deid_fast.names`) plus
    the entity and item keywords, the last tag the scanner must walk to, and the paths
    (`Sequence[0].Keyword`) that narrow a top-level sequence, by its name. None, None, None when
    every field is wanted."""
    if fields is None:
        return None, None, None
    if isinstance(fields, str):
        fields = [fields]
    tags = {name: tag_for_keyword(name) for name in ids}
    whole, paths = set(ids), {}
    for text in fields:
        if not isinstance(text, str):
            raise TypeError(f"fields must hold keywords or tags as str, not {type(text).__name__}")
        steps = path_steps(text) if ("." in text or "[" in text) else None
        name = steps[0][0] if steps else field_name(text)
        tag = tag_for_keyword(name) if name in keyword_dict else tag_of(name) or tag_of(text)
        if tag is None:
            raise ValueError(f"field {text!r} names a repeating group's element: give its tag")
        tags[name] = tag
        if steps is None or len(steps) == 1 and steps[0][1] is None:
            whole.add(name)
        else:
            paths.setdefault(name, []).append(steps)
    narrowed = {name: tuple(steps) for name, steps in paths.items() if name not in whole}
    return frozenset(tags), max(tags.values(), default=0), narrowed or None


def narrow(fields, paths, options):
    """`fields` with each top-level sequence named in `paths` holding only what its paths name:
    an index picks that item, no index every item (`deid_fast.names` writes paths). Expanded
    keys are matched by the key rule R7, an unexpanded sequence keeps its items, those not
    picked empty (`{}`)."""
    if options.expand_sequences:
        delimiter = re.escape(options.delimiter)
        rules = [re.compile(_key_pattern(steps, delimiter)) for all_steps in paths.values()
                 for steps in all_steps]
        tops = tuple(name + options.delimiter for name in paths)
        return {key: value for key, value in fields.items()
                if not key.startswith(tops) or any(rule.fullmatch(key) for rule in rules)}
    for name, all_steps in paths.items():
        if isinstance(fields.get(name), list):
            fields[name] = _narrow_items(fields[name], all_steps)
    return fields


def _key_pattern(steps, delimiter):
    pattern = re.escape(steps[0][0])
    for number, (_name, index) in enumerate(steps):
        if index is None:
            pattern += f"(?:{delimiter}\\d+)?"
        else:      # a one-item sequence's keys carry no index: item 0 may stand alone
            pattern += f"(?:{delimiter}{index})" + ("?" if index == 0 else "")
        if number + 1 < len(steps):
            pattern += delimiter + re.escape(steps[number + 1][0])
    return pattern + f"(?:{delimiter}.+)?"


def _narrow_items(items, all_steps):
    """The items of an unexpanded sequence with only what the paths (from this sequence down)
    name; a path's depth is bounded by `path_steps`."""
    kept = [{} for _ in items]
    for steps in all_steps:
        index = steps[0][1]
        for number, item in enumerate(items):
            if index is not None and number != index:
                continue
            if len(steps) == 1:
                kept[number] = item
                continue
            child, rest = steps[1][0], steps[1:]
            if child not in item:
                continue
            value = item[child]
            if isinstance(value, list) and value and isinstance(value[0], dict) and (
                    len(rest) > 1 or rest[0][1] is not None):
                value = _narrow_items(value, [rest])
            kept[number][child] = value
    return kept


def _skip_list(settings, skip_fields):
    """The names to leave out: the config's, then the caller's (keywords or tags)."""
    if skip_fields is None:
        skip_fields = []
    return field_names(list(settings["skip"])) + field_names(skip_fields)


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

    def scan(self, source, force, stop_after=0xFFFFFFFF, checked=False):
        """The scanned header of a path or an archive `Member`."""
        if type(source) is Member:
            return source.scan(scan_stream, force=force, max_depth=self.max_depth,
                               stop_after=stop_after, max_header_bytes=self.max_header_bytes,
                               max_elements=self.max_elements)
        return scan(source, force, self.max_depth, stop_after, self.max_header_bytes,
                    self.max_elements, checked)


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


class Job:
    """The settings of one call, checked once: field options, scanner bounds, engine, ids."""

    __slots__ = ("options", "force", "limits", "engine", "ids", "id_tags", "stop_after", "paths")

    def __init__(self, options, force, limits, engine, ids=(), stop_after=None, paths=None):
        check_engine(engine)
        self.options = options
        self.force = force
        self.limits = limits
        self.engine = engine
        self.ids = ids
        self.id_tags = tuple(tag_for_keyword(keyword) for keyword in ids) + (0, 0)[len(ids):]
        self.stop_after = 0xFFFFFFFF if stop_after is None else stop_after
        self.paths = paths          # {top-level sequence: its paths}: `narrow`, or None


def read_fields(source, name, job, checked=False):
    """The fields of one path or Dataset (the header only), and the R3 texts of the job's id
    keywords; raises InvalidDicomError. The native engine hands what it does not handle to
    pydicom, counted in `deid_fast.decode.fallbacks`. Running out of memory on one file makes
    it a bad file of kind "too-large", not the end of the caller's run. `checked`: the path
    comes from `deid_fast.inputs`, which looked at its type already (the scanner then only
    checks the open file)."""
    try:
        fields, ids = _read(source, name, job, checked)
    except MemoryError:
        raise InvalidDicomError(name, "too-large", "ran out of memory reading its header") from None
    if job.paths is not None:
        fields = narrow(fields, job.paths, job.options)
    return fields, ids


def _read(source, name, job, checked):
    if isinstance(source, Dataset):
        return _read_dataset(source, getattr(source, "file_meta", None), None, name, job.options,
                             job.ids)
    limits = job.limits
    header = None
    if job.engine == "native":
        try:
            if type(source) is Member:     # an archive member: scanned from its stream
                header = limits.scan(source, job.force, job.stop_after)
                fields, entity, item = flatten_header(header, job.options, {}, job.id_tags[0],
                                                      job.id_tags[1])
            else:
                header, fields, entity, item = read_native(
                    name, job.force, limits.max_depth, job.stop_after, limits.max_header_bytes,
                    limits.max_elements, job.options, job.id_tags[0], job.id_tags[1], checked)
        except NativeUnsupported as exc:
            count_fallback(name, exc)
        except (InvalidDicomError, MemoryError):
            raise                               # MemoryError: see read_fields
        except UndecodableElement as exc:
            raise undecodable(name, exc, getattr(exc, "header", header)) from exc
        except Exception as exc:
            raise undecodable(name, exc) from exc
        else:
            return fields, ([_id_text(entity), _id_text(item)] if job.ids else [])
    if header is None:      # (a member's header is kept: its stream is read once)
        header = limits.scan(source if type(source) is Member else name, job.force,
                             job.stop_after, checked)
    dataset, file_meta = decoded(name, lambda: read_header(header), header)
    return _read_dataset(dataset, file_meta, header, name, job.options, job.ids)


def check_engine(engine):
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")


#: The checked jobs of `get_fields`, by their options: a caller reading file after file with
#: the same options pays for checking them once (bounded: cleared when full).
_FIELDS_JOBS = {}
_FIELDS_JOBS_BOUND = 64


def fields_job(*settings):
    """The checked Job of `get_fields`' options (`skip_fields, expand_sequences,
    include_private, include_file_meta, delimiter, max_depth, engine, fields,
    max_header_bytes, max_elements, force`), made once per distinct set (see `options_key`)."""
    key = options_key(settings)
    job = _FIELDS_JOBS.get(key) if key is not None else None
    if job is None:
        job = _fields_job(*settings)
        if key is not None:
            if len(_FIELDS_JOBS) >= _FIELDS_JOBS_BOUND:
                _FIELDS_JOBS.clear()
            _FIELDS_JOBS[key] = job
    return job


def _fields_job(skip_fields, expand_sequences, include_private, include_file_meta, delimiter,
                max_depth, engine, fields, max_header_bytes, max_elements, force):
    select, stop_after, paths = _selection(fields)
    return Job(_options(_skip_list(load_config(), skip_fields), expand_sequences,
                        include_private, include_file_meta, delimiter, select),
               force, Limits(max_depth, max_header_bytes, max_elements), engine, (), stop_after,
               paths)


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


#: The `skipped` values of a file read whole but without a value to group it by.
UNGROUPED = ("no-entity", "no-item")


def log_skip(record):
    """A WARNING naming a file left out and why (its path written as `path_text` writes it, so
    that no file name can forge a log line)."""
    logger.warning("Skipping %s: %s [%s]", path_text(record.path), record.reason, record.skipped)


def log_ungrouped(record):
    """An INFO line for a file read but without its entity or item (the bulk runner counts
    them and logs one WARNING for the run)."""
    logger.info("No group for %s: %s [%s]", path_text(record.path), record.reason,
                record.skipped)


def identifiers_job(force=True, config=None, entity_id=None, item_id=None, expand_sequences=True,
                    skip_fields=None, include_private=False, include_file_meta=False,
                    delimiter="_", max_depth=DEFAULT_MAX_DEPTH, engine="native", fields=None,
                    max_header_bytes=DEFAULT_MAX_HEADER_BYTES, max_elements=DEFAULT_MAX_ELEMENTS):
    """The checked `Job` of `get_identifiers`' options (every check happens before any file
    is read)."""
    settings = load_config(config)
    entity_id = check_id_keyword(entity_id or settings["ids"]["entity"], "entity_id")
    item_id = check_id_keyword(item_id or settings["ids"]["item"], "item_id")
    select, stop_after, paths = _selection(fields, (entity_id, item_id))
    return Job(_options(_skip_list(settings, skip_fields), expand_sequences, include_private,
                        include_file_meta, delimiter, select), force,
               Limits(max_depth, max_header_bytes, max_elements), engine, (entity_id, item_id),
               stop_after, paths)


def check_errors(errors):
    if errors not in _ERRORS:
        raise ValueError(f"errors must be one of {_ERRORS}, not {errors!r}")


def read_record(source, name, job, flush):
    """The Record of one file or Dataset (R3), an item of `deid_fast.inputs.items`; raises
    InvalidDicomError for a bad one."""
    try:
        fields, (entity, item) = read_fields(source, name, job, checked=True)
    finally:
        flush(name)
    if entity is None:
        return Record(name, entity, item, fields, "no-entity",
                      f"it has no {job.ids[0]} value to group by")
    if item is None:
        return Record(name, entity, item, fields, "no-item",
                      f"it has no {job.ids[1]} value to group by")
    return Record(name, entity, item, fields)


