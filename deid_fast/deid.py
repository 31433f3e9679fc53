"""A drop-in for the deid that `pip install deid` installs today (0.4.x): change
`from deid.dicom import get_files, get_identifiers` to `from deid_fast.deid import ...`.

`get_identifiers` gives deid 0.4.13's `{path: {uid: DicomField}}`: the same keys in the same
order, the same `name`, `uid`, `tag`, `stripped_tag` and `is_filemeta`, and an `element` equal
to the pydicom DataElement deid gives. Hand it to deid's own `replace_identifiers(ids=...)`.
The seed's `deid_fast.dicom.get_identifiers` gives `{entity: {item: {field: value}}}` instead:
never pass that to `replace_identifiers`, whose lookup is by path: it matches no file, and
deid changes nothing without a word.

The headers are read by the native scanner; nothing is decoded until a field's `element` is
read, and then pydicom makes the elements of that file from the header's bytes (once per file,
under the caller's pydicom settings, as deid reads). What differs from deid, on purpose
(README, "From deid"):

- elements after the first top-level pixel data element are not read (deid reads the whole
  file); the pixel data element itself is a field unless the config skips it (deid's does),
  read from the file when its `element` is asked for;
- a file deid_fast cannot read whole (not DICOM, cut short, undecodable) gives an empty lookup
  and a WARNING naming the file and why: never fields made up from garbage bytes, which deid
  can report (pydicom reads random bytes with force=True);
- a path that cannot be opened (missing, a folder, a named pipe, no permission) raises
  `InvalidDicomError` naming it (deid exits the process on a missing file and blocks forever
  on a named pipe);
- `get_files` extracts a `.zip` into a new private temporary folder and yields every file in
  it; deid extracts into the current folder and yields one file.
"""
import fnmatch
import gc
import json
import logging
import os
import shutil
import stat
import tempfile
import zipfile
from io import BytesIO

from pydicom import config as pydicom_config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import dcmread
from pydicom.sequence import Sequence

from deid_fast._deid_keys import DicomField, add_pixel_data_field, deid_fields
from deid_fast._flatten import NativeUnsupported
from deid_fast.decode import count_fallback, read_header, undecodable
from deid_fast.errors import InvalidDicomError
from deid_fast.inputs import path_text
from deid_fast.reader import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_HEADER_BYTES, Limits

__all__ = ["get_identifiers", "get_files", "DicomField"]

logger = logging.getLogger("deid_fast")

#: deid 0.4.13's `get.skip` (deid/dicom/config.json), used when `config` is None.
DEID_SKIP = ("PixelData", "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
             "BluePaletteColorLookupTableData", "VOILUTSequence", "FileMetaInformationGroupLength",
             "FileMetaInformationVersion", "TransferSyntaxUID", "ImplementationClassUID")

_LIMITS = Limits(DEFAULT_MAX_DEPTH, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_ELEMENTS)


def _skip_of(config):
    """The `get.skip` of a deid config file (deid 0.4's format), as a set of names."""
    if config is None:
        return frozenset(DEID_SKIP)
    with open(config, encoding="utf-8") as handle:
        settings = json.load(handle)
    skip = settings.get("get", {}).get("skip", []) if isinstance(settings, dict) else []
    if not isinstance(skip, list):
        raise ValueError(f"{config}: 'get.skip' must be a list of keywords and tags, "
                         f"not {type(skip).__name__}")
    return frozenset(name for name in skip if isinstance(name, str))


def _structure_as_default():
    """Whether pydicom is set up as the native walk assumes: these settings change which
    elements pydicom reads as sequences, or make it raise on values."""
    settings = pydicom_config.settings
    return (pydicom_config.replace_un_with_known_vr is True
            and settings.infer_sq_for_un_vr is True
            and pydicom_config.assume_implicit_vr_switch is True
            and settings.reading_validation_mode != pydicom_config.RAISE)


class HeaderSource:
    """The bytes of one file's header, kept (a copy, a few kB) so that its fields' elements can
    be made when first read; pydicom reads them once per file."""

    __slots__ = ("path", "force", "file_meta", "command_set", "dataset", "is_implicit_vr",
                 "is_little_endian", "stopped_at", "_datasets")

    def __init__(self, header, path, force):
        self.path = path
        self.force = force
        self.file_meta = header.file_meta
        self.command_set = header.command_set
        self.dataset = header.dataset
        self.is_implicit_vr = header.is_implicit_vr
        self.is_little_endian = header.is_little_endian
        self.stopped_at = header.stopped_at
        self._datasets = None

    def datasets(self):
        """pydicom's (data set, file meta) of the header."""
        if self._datasets is None:
            try:
                self._datasets = read_header(self)
            except (InvalidDicomError, MemoryError, KeyboardInterrupt):
                raise
            except Exception as exc:
                raise undecodable(self.path, exc) from exc
        return self._datasets

    def element(self, uid, is_filemeta):
        """The DataElement at `uid` ('(gggg,eeee)', items as '__index__' between tags)."""
        parts = uid.split("__")
        tags = [int(part[1:5] + part[6:10], 16) for part in parts[::2]]
        dataset, file_meta = self.datasets()
        try:
            if tags == [self.stopped_at]:
                # the pixel data element the header ends at: read from the file, as deid does
                return dcmread(self.path, force=self.force)[tags[0]]
            where = file_meta if is_filemeta else dataset
            for tag, index in zip(tags, parts[1::2]):
                where = where[tag].value[int(index)]
            return where[tags[-1]]
        except (InvalidDicomError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise InvalidDicomError(self.path, "undecodable",
                                    f"pydicom cannot decode element {uid}: "
                                    f"{type(exc).__name__}: {exc}") from exc


def dataset_fields(dataset, file_meta, skip, expand_sequences, source=None):
    """deid 0.4's `_get_fields_inner` over pydicom data sets (a Dataset given by the caller, or
    the header of `source`, a HeaderSource the native walk hands over): breadth first, the
    elements made as deid makes them. For a header, the pixel data element it ends at follows
    the top level."""
    fields = {}
    queue = [(where, None, None, isinstance(where, FileMetaDataset))
             for where in (dataset, file_meta) if where]
    if not dataset and source is not None:    # a header of nothing but its pixel data
        add_pixel_data_field(fields, source.stopped_at, skip, source)
    head = 0
    while head < len(queue):
        where, prefix, parent_uid, is_filemeta = queue[head]
        head += 1
        for element in where:
            keyword = element.keyword
            uid = str(element.tag)
            if keyword in skip or uid in skip:
                continue
            name = keyword if prefix is None else f"{prefix}__{keyword}"
            if parent_uid is not None:
                uid = f"{parent_uid}__{uid}"
            if uid not in fields:
                fields[uid] = DicomField(element, name, uid, is_filemeta)
            if expand_sequences and isinstance(element.value, Sequence):
                for index, item in enumerate(element.value):
                    if isinstance(item, Dataset):
                        queue.append((item, name, f"{uid}__{index}", False))
        if where is dataset and source is not None:
            add_pixel_data_field(fields, source.stopped_at, skip, source)
    return fields


def _not_read(exc):
    """deid_fast's answer for a file it cannot read whole: no fields, and a WARNING naming it."""
    logger.warning("Not read, no fields: %s: %s [%s]", path_text(exc.path), exc.reason, exc.kind)
    return {}


def _file_fields(path, force, skip, expand_sequences, native):
    """The fields of one file; {} with a WARNING when its header cannot be read whole."""
    try:
        header = _LIMITS.scan(path, force)
    except MemoryError:
        return _not_read(InvalidDicomError(path, "too-large", "ran out of memory reading its header"))
    except InvalidDicomError as exc:
        if exc.kind == "unreadable" or exc.kind == "no-preamble":
            raise
        return _not_read(exc)
    source = HeaderSource(header, path, force)
    if native:
        try:
            return deid_fields(header, skip, expand_sequences, source)
        except NativeUnsupported as exc:
            count_fallback(path, exc)
    try:
        dataset, file_meta = source.datasets()
        return dataset_fields(dataset, file_meta, skip, expand_sequences, source)
    except InvalidDicomError as exc:
        return _not_read(exc)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:      # pydicom failed on a value while the fields were made
        return _not_read(undecodable(path, exc))


def _key_of_dataset(dataset):
    """deid's key for a Dataset input: the absolute path it was read from, else None."""
    name = dataset.get("filename")
    if isinstance(name, BytesIO) or not name:
        return None
    return os.path.abspath(name)


def get_identifiers(dicom_files, force=True, config=None, strip_sequences=False,
                    remove_private=False, disable_skip=False, expand_sequences=True):
    """deid 0.4.13's `get_identifiers`: `{absolute path: {uid: DicomField}}`.

    `dicom_files`: a path, a pydicom Dataset, or a list (any iterable) of them. `config`: a deid
    config file (JSON) whose `get.skip` lists the keywords and '(gggg,eeee)' tags to leave out;
    None uses deid's. `strip_sequences`, `remove_private` and `disable_skip` are accepted and
    ignored, as deid 0.4 ignores them here. Sequences are fields, and with `expand_sequences`
    (exactly True, as deid tests it) their items' elements too.

    The result is made for deid's `replace_identifiers(ids=...)`. deid_fast.dicom's
    entity-keyed result is not: passed there it matches no path and deid changes nothing."""
    if isinstance(dicom_files, (str, bytes, os.PathLike, Dataset)):
        dicom_files = [dicom_files]
    skip = _skip_of(config)
    expand = expand_sequences is True
    native = _structure_as_default()
    # The lookup holds no reference cycles: with the collector on, a large run would have it
    # traverse the growing lookup again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _lookup(dicom_files, force, skip, expand, native)
    finally:
        if collecting:
            gc.enable()


def _lookup(dicom_files, force, skip, expand, native):
    lookup = {}
    for dicom_file in dicom_files:
        if isinstance(dicom_file, Dataset):
            lookup[_key_of_dataset(dicom_file)] = dataset_fields(
                dicom_file, dicom_file.get("file_meta"), skip, expand)
            continue
        path = os.fspath(dicom_file)
        lookup[os.path.abspath(path)] = _file_fields(path, force, skip, expand, native)
    return lookup


# --- finding files ----------------------------------------------------------------------------


def _walk(folder, pattern):
    """deid's `recursive_find`: os.walk's order, `pattern` matched against file names."""
    for root, _, names in os.walk(folder):
        for name in fnmatch.filter(names, pattern or "*"):
            yield os.path.join(root, name)


def _extract_zip(archive, tempdir):
    """The member files of a zip archive, extracted into a new private folder (made with
    tempfile.mkdtemp, in `tempdir` when given), in archive order. A member whose name would
    land outside that folder, a link, a member larger than half the free disk space, a repeated
    name and a damaged member are left out with a WARNING naming the archive and member."""
    try:
        opened = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
        logger.warning("Cannot read zip archive %s, skipping: %s", path_text(archive), exc)
        return []
    with opened:
        members = [member for member in opened.infolist() if not member.is_dir()]
        if not members:
            return []
        # a tempdir that cannot take the folder is the caller's to know: raised
        folder = tempfile.mkdtemp(prefix="deid_fast-zip-", dir=tempdir)
        logger.info("Extracting %s into %s", path_text(archive), path_text(folder))
        root = os.path.realpath(folder)
        extracted = []
        for member in members:
            target = _member_target(archive, member, root)
            if target is not None and _extract_member(archive, opened, member, target, root):
                extracted.append(target)
        return extracted


def _member_target(archive, member, root):
    """Where a member goes inside `root`, or None (with a WARNING) when it must not be written."""
    name = member.filename
    if stat.S_ISLNK(member.external_attr >> 16):
        reason = "is a symbolic link"
    elif name.startswith(("/", "\\")) or os.path.splitdrive(name)[0] or "\x00" in name:
        reason = "has an absolute name"
    else:
        target = os.path.realpath(os.path.join(root, name))
        if os.path.commonpath([root, target]) == root and target != root:
            return target
        reason = "would land outside the extraction folder"
    logger.warning("Zip member %r of %s %s: left out", name, path_text(archive), reason)
    return None


def _extract_member(archive, opened, member, target, root):
    """Write one member to `target` (created, never replaced); False with a WARNING on failure.
    A member may take at most half the free space left (its declared size bounds what zipfile
    inflates), so that an archive cannot fill the disk."""
    try:
        free = shutil.disk_usage(root).free
        if member.file_size > free // 2:
            raise OSError(f"its {member.file_size} bytes are more than half the free disk space "
                          f"({free} bytes)")
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        with opened.open(member) as source, open(target, "xb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        return True
    except FileExistsError:
        reason = "repeats a name already extracted (the first is kept)"
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError,
            NotImplementedError) as exc:
        reason = f"cannot be extracted: {exc}"
        try:
            os.unlink(target)      # never leave a partial file to be read as a whole one
        except OSError:
            pass
    logger.warning("Zip member %r of %s %s: left out", member.filename, path_text(archive), reason)
    return False


def _valid(path, force):
    """deid's `validate_dicoms` for one file, with deid_fast's reader: whether its header reads."""
    try:
        _LIMITS.scan(path, force)
        return True
    except InvalidDicomError as exc:
        logger.warning("Cannot read input file %s, skipping: %s [%s]", path_text(path),
                       exc.reason, exc.kind)
        return False


def get_files(contenders, check=True, pattern=None, force=False, tempdir=None):
    """deid 0.4.13's `get_files`: yield the files named by `contenders` (a path or a list of
    them; folders walked in os.walk's order, `pattern` an fnmatch pattern on file names), with
    `check` only those whose DICOM header reads (`force` as pydicom's). A `.zip` file is
    extracted into a new private temporary folder (under `tempdir` when given) and its member
    files are yielded instead, as real files for deid's `replace_identifiers`; the folder is
    left for the caller to remove."""
    if not isinstance(contenders, list):
        contenders = [contenders]
    for contender in contenders:
        if os.path.isdir(contender):
            found = _walk(contender, pattern)
        else:
            found = [contender]
        for path in found:
            if os.path.splitext(path)[1].lower() == ".zip" and os.path.isfile(path):
                paths = _extract_zip(path, tempdir)
            else:
                paths = [path]
            for candidate in paths:
                if not check or _valid(candidate, force):
                    logger.debug("Found contender file %s", path_text(candidate))
                    yield candidate
