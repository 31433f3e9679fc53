"""The API: knows files and options (SPEC section 1, rules R1, R3, R9 and the bad-input policy).

`get_files` finds DICOM files, `get_fields` flattens one file, `get_identifiers` groups the
fields of many by entity and item. Finding the files is `deid_fast.inputs`' work, reading one
is `deid_fast.reader`'s, and many processes are `deid_fast.bulk`'s.
"""
import logging
import os

from deid_fast import archives, inputs
from deid_fast.session import PydicomSession
from deid_fast.errors import InvalidDicomError
from deid_fast.inputs import path_text
from deid_fast.reader import (DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_HEADER_BYTES,
                              Limits, check_errors, fields_job, identifiers_job, log_skip,
                              read_fields, read_record, skipped_record)

logger = logging.getLogger("deid_fast")


# --- finding files ----------------------------------------------------------------------------


def get_files(contenders, check=True, pattern=None, force=False, max_depth=DEFAULT_MAX_DEPTH,
              max_header_bytes=DEFAULT_MAX_HEADER_BYTES, max_elements=DEFAULT_MAX_ELEMENTS):
    """Yield the files named by `contenders` (a file, a folder or a list of them); folders are
    walked recursively in sorted order, `pattern` is an fnmatch pattern on the file name. The
    members of a zip, tar, tar.gz or gz archive are yielded as `ARCHIVE!/member` names (str),
    which every function of deid_fast reads in place. With
    `check=True` only the files whose header the scanner accepts as DICOM are yielded (the
    others are logged at INFO). What cannot be read at all (a missing path, a named pipe or
    device, a folder that cannot be listed) is never yielded, and is logged at WARNING."""
    limits = Limits(max_depth, max_header_bytes, max_elements)
    paths = []
    for contender in inputs.as_list(contenders):
        found = []
        for item in inputs.items(contender, pattern):
            if isinstance(item, InvalidDicomError):      # never dropped in silence (SPEC 3)
                log_skip(skipped_record(item))
            else:
                found.append(item)
        if os.path.isdir(contender):
            logger.debug("Found %d contender files in %s", len(found),
                         os.path.basename(os.path.normpath(os.fsdecode(contender))))
        paths += found
    if not check:
        yield from (inputs.name_of(path) for path in paths)
        return
    logger.debug("Checking %d dicom files for validation.", len(paths))
    valid = 0
    for path in paths:
        name = inputs.name_of(path)
        try:
            limits.scan(path if type(path) is str else path[1], force, checked=True)
        except InvalidDicomError as exc:
            logger.info("Not DICOM, left out: %s: %s [%s]", path_text(exc.path), exc.reason,
                        exc.kind)
            continue
        valid += 1
        yield name
    logger.debug("Found %d valid dicom files", valid)


# --- one file -----------------------------------------------------------------------------------


def get_fields(source, force=True, expand_sequences=True, skip_fields=None, include_private=False,
               include_file_meta=False, delimiter="_", max_depth=DEFAULT_MAX_DEPTH,
               engine="native", fields=None, max_header_bytes=DEFAULT_MAX_HEADER_BYTES,
               max_elements=DEFAULT_MAX_ELEMENTS):
    """The `{field: value}` dict of one file path or pydicom Dataset (SPEC R2, R4-R8).

    `fields`, a list of top-level keywords, reports only those (the header is then read up to
    the last of them). A file that is not a whole, decodable DICOM header raises
    `InvalidDicomError`."""
    job = fields_job(skip_fields, expand_sequences, include_private, include_file_meta,
                     delimiter, max_depth, engine, fields, max_header_bytes, max_elements, force)
    name = source if type(source) is str else inputs.display_name(source, 0)
    with PydicomSession() as session:
        try:
            return read_fields(source, name, job)[0]
        except InvalidDicomError as exc:
            member = archives.member_item(name) if exc.kind == "unreadable" else None
            if member is None:
                raise
            if isinstance(member, InvalidDicomError):
                raise member from None
            return read_fields(member[1], member[0], job)[0]     # ARCHIVE!/member
        finally:
            session.flush(name)


# --- many files -------------------------------------------------------------------------------


def serial_records(sources, job, errors, flush):
    """A Record per file named by `sources` (R1: folders walked like get_files), in order, read
    in this process. Skips are logged at WARNING; with errors="raise" a bad file raises."""
    for item in inputs.items(sources):
        if isinstance(item, InvalidDicomError):
            if errors == "raise":
                raise item
            record = skipped_record(item)
        else:
            name, source = (item, item) if type(item) is str else item
            try:
                record = read_record(source, name, job, flush)
            except InvalidDicomError as exc:
                if errors == "raise":
                    raise
                record = skipped_record(exc)
        if record.skipped is not None:
            log_skip(record)
        yield record


def group(records, job):
    """`{entity: {item: fields}}` of `records` (R3): skipped ones left out, the later of two
    files with the same (entity, item) wins with a WARNING, items in input order."""
    debug = logger.isEnabledFor(logging.DEBUG)
    warn = logger.isEnabledFor(logging.WARNING)
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
            if warn:    # (the names are escaped only for a line that is written)
                logger.warning("%s has the same %s %r and %s %r as %s: the later file wins",
                               path_text(name), entity_id, entity, item_id, item,
                               path_text(origin[entity, item]))
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
    processes read the files (None: one per core); the result is the same as with one.

    This is the result of deid's original documentation. Do not pass it to deid 0.4's
    `replace_identifiers(ids=...)`, which looks files up by path: it matches none, and deid
    changes nothing without a word. `deid_fast.deid.get_identifiers` gives deid 0.4's lookup."""
    job = identifiers_job(force, config, entity_id, item_id, expand_sequences, skip_fields,
                          include_private, include_file_meta, delimiter, max_depth, engine,
                          fields, max_header_bytes, max_elements)
    check_errors(errors)
    if workers != 1:
        from deid_fast import bulk  # the process pool is only loaded when asked for
        return group(bulk.records(bulk.files(dicom_files), job, errors, workers, warn_each=True),
                     job)
    with PydicomSession() as session:
        return group(serial_records(dicom_files, job, errors, session.flush), job)
