"""Archives read in place: knows zip, tar and gzip files and their members, not DICOM.

A member of an archive is read where it lies, never extracted to disk, and only as much of it
as its header needs (the scanner asks; `deid_fast._scan.scan_stream`). It is named
`ARCHIVE!/member/path`: the archive's path, `!/`, the member's path inside it. In every output
a literal `!/` of a real path is written `%21/` (`deid_fast.inputs.path_text`), so the first
unescaped `!/` of a written name is always this separator.

- `.zip`: members in the archive's order, each read on its own (random access).
- `.tar`: members in the archive's order, each read at its offset (random access).
- `.tar.gz`, `.tgz`: a compressed stream cannot be entered in the middle, so the archive is
  read in one forward pass, by the walk: as it lists each member it has the scanner read the
  bytes the member's header needs (`_prefetch`), and those bytes go with the member to the
  process that reads it. (A member whose header could not be prefetched is read again from
  the archive, the stream kept open for the next such member.)
- `.gz` (not a tar): one member, the file without its `.gz`.

Bounds: at most `MAX_MEMBERS` members per archive (the rest is one record saying so), and a
member's header is bounded by `max_header_bytes` of inflated bytes like any file's. An archive
inside an archive is not opened (a record says so: extract it first), nor is a symbolic link
or device inside a tar followed; a hard link in a tar is read as the member it links to. A
damaged archive or member is a record with its reason.
"""
import collections
import gzip
import io
import os
import stat
import tarfile
import threading
import zipfile
import zlib

from deid_fast.errors import InvalidDicomError

SEPARATOR = "!/"
MAX_MEMBERS = 1_000_000
#: The most header bytes of a compressed tar's member kept from the walk's pass (4 MiB).
PREFETCH_MAX = 4 << 20
#: The header bytes kept per compressed tar for hard links to earlier members (64 MiB).
LINK_BUDGET = 64 << 20
_KINDS = ((".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar", "tar"), (".zip", "zip"),
          (".gz", "gz"))
_LAST = (".zip", ".tar", ".gz", ".tgz")
_READ_ERRORS = (OSError, EOFError, ValueError, RuntimeError, zlib.error, zipfile.BadZipFile,
                tarfile.TarError, NotImplementedError)


def kind_of(path):
    """"zip", "tar", "tar.gz" or "gz" for a file named as such an archive, else None."""
    name = path if type(path) is str else os.fsdecode(path)
    if not name[-4:].lower().endswith(_LAST):       # the common case, a file per walk: cheap
        return None
    name = name.lower()
    for suffix, kind in _KINDS:
        if name.endswith(suffix):
            return kind
    return None


class MemberName(str):
    """The name `ARCHIVE!/member` of an archive member, as a str, knowing its two parts (a
    literal `!/` in either is escaped apart from the separator when written)."""

    __slots__ = ("archive", "member")

    def __new__(cls, archive, member):
        name = super().__new__(cls, f"{archive}{SEPARATOR}{member}")
        name.archive = archive
        name.member = member
        return name

    def __reduce__(self):
        return (MemberName, (self.archive, self.member))


class Member:
    """Where a member is: its archive, kind, path inside it, and (from the archive's listing)
    its index, size and data offset. Picklable: a worker process opens the archive itself."""

    __slots__ = ("archive", "kind", "member", "index", "size", "offset", "prefetched", "stamp")

    def __init__(self, archive, kind, member, index=None, size=-1, offset=None, prefetched=None,
                 stamp=None):
        self.archive = archive
        self.kind = kind
        self.member = member
        self.index = index
        self.size = size
        self.offset = offset
        self.prefetched = prefetched     # a compressed tar member's header bytes, from the walk
        self.stamp = stamp               # the archive's (size, mtime) when it was listed

    def __reduce__(self):
        return (Member, (self.archive, self.kind, self.member, self.index, self.size,
                         self.offset, self.prefetched, self.stamp))

    @property
    def name(self):
        return MemberName(self.archive, self.member)

    def scan(self, scan_stream, **bounds):
        """`scan_stream` (the scanner) over this member's bytes."""
        with _opened(self) as (stream, size):
            return scan_stream(stream, self.name, size, **bounds)


# --- listing an archive: one pass ---------------------------------------------------------------


def _nested(member, name):
    """The record of a member that is itself an archive (not opened), else None."""
    if kind_of(member) is None:
        return None
    return InvalidDicomError(name, "unreadable",
                             "is an archive inside an archive: not opened (extract it first)")


def items(archive):
    """What to read in `archive`, in its order: a `(name, Member)` pair per member file, or an
    InvalidDicomError (a damaged archive, a member that is not a file or is an archive, past
    MAX_MEMBERS members)."""
    kind = kind_of(archive)
    try:
        if kind == "zip":
            yield from _zip_items(archive)
        elif kind == "gz":
            member = os.path.basename(archive)[:-3]
            name = MemberName(archive, member)
            yield _nested(member, name) or (name, Member(archive, "gz", member, 0))
        else:
            yield from _tar_items(archive, kind)
    except OSError as exc:
        if exc.errno is None:    # a damaged compressed stream (gzip says so with an OSError)
            kind_of_failure = "undecodable"
        else:                    # cannot be opened or read: no permission, gone...
            kind_of_failure = "unreadable"
        yield InvalidDicomError(archive, kind_of_failure,
                                f"the {kind} archive cannot be read: {exc.strerror or exc}")
    except _READ_ERRORS as exc:
        yield InvalidDicomError(archive, "undecodable",
                                f"the {kind} archive cannot be read: {type(exc).__name__}: {exc}")


def _bounded(archive, entries):
    """(index, entry) of an archive's entries, up to MAX_MEMBERS; past it, the record saying the
    rest is not read, in place of an entry, and no more."""
    for index, entry in enumerate(entries):
        if index == MAX_MEMBERS:
            yield index, InvalidDicomError(archive, "too-large", f"holds more than "
                                           f"{MAX_MEMBERS:,} members: the rest is not read")
            return
        yield index, entry


def _stamp(raw):
    """What tells an archive apart from another file, or the same file changed: its device and
    inode, size and modification time."""
    return _identity(os.fstat(raw.fileno()))


def _identity(info):
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _current(raw, archive):
    """Whether an archive kept open is still the file at its path (not replaced or changed
    since: a caller may rewrite an archive between two reads)."""
    try:
        return _stamp(raw) == _identity(os.stat(archive))
    except OSError:
        return False


def _zip_items(archive):
    with _open_regular(archive) as raw, zipfile.ZipFile(raw) as opened:
        stamp = _stamp(raw)
        for index, info in _bounded(archive, opened.infolist()):
            if isinstance(info, InvalidDicomError):
                yield info
                continue
            if info.is_dir():
                continue
            name = MemberName(archive, info.filename)
            if info.flag_bits & 0x1:
                yield InvalidDicomError(name, "unreadable", "is encrypted: not read")
            elif stat.S_ISLNK(info.external_attr >> 16):
                yield InvalidDicomError(name, "unreadable",
                                        "is a symbolic link inside the archive: not read")
            else:
                yield _nested(info.filename, name) or (
                    name, Member(archive, "zip", info.filename, index, info.file_size,
                                 stamp=stamp))


def _tar_items(archive, kind):
    # a plain tar is listed by seeking from header to header (its data is never read here); a
    # compressed one can only be read through, and its members' headers are prefetched
    mode = "r|gz" if kind == "tar.gz" else "r:"
    targets = {}        # member name -> Member: what a hard link later in the archive reads
    budget = [LINK_BUDGET]
    with _open_regular(archive) as raw, tarfile.open(fileobj=raw, mode=mode) as opened:
        stamp = _stamp(raw)
        for index, info in _bounded(archive, opened):
            if isinstance(info, InvalidDicomError):
                yield info
                continue
            if info.isdir():
                continue
            name = MemberName(archive, info.name)
            if info.islnk():         # a hard link: the data of a member before it
                yield _linked(name, info, targets)
                continue
            if not info.isreg():
                what = "a symbolic link" if info.issym() else "not a file"
                yield InvalidDicomError(name, "unreadable",
                                        f"is {what} inside the archive: not read")
                continue
            nested = _nested(info.name, name)
            if nested is not None:
                yield nested
                continue
            member = Member(archive, kind, info.name, index, info.size, info.offset_data,
                            stamp=stamp)
            if kind == "tar.gz":
                member.prefetched = _prefetch(opened.extractfile(info), member)
            _remember(targets, budget, member)
            yield name, member


def _remember(targets, budget, member):
    """Keep where a member's data is, for hard links to it; its prefetched header bytes too
    while LINK_BUDGET lasts (past it a link to it is read again from the archive)."""
    kept = Member(member.archive, member.kind, member.member, member.index, member.size,
                  member.offset, None, member.stamp)
    if member.prefetched is not None and len(member.prefetched) <= budget[0]:
        budget[0] -= len(member.prefetched)
        kept.prefetched = member.prefetched
    targets[member.member] = kept


def _linked(name, info, targets):
    """The item of a hard link: its own name, its target's data."""
    target = targets.get(info.linkname)
    if target is None:
        return InvalidDicomError(name, "unreadable", f"is a hard link to {info.linkname!r}, "
                                 "which is not a file before it in the archive: not read")
    return name, Member(target.archive, target.kind, name.member, target.index, target.size,
                        target.offset, target.prefetched, target.stamp)


def _prefetch(stream, member):
    """The bytes of a compressed tar's member that its header needs, read while the walk's one
    pass over the archive is there: the scanner, with its most permissive settings, reads
    them (a reader with the caller's settings, stricter or equal, needs no more). None when
    the scan fails or they pass PREFETCH_MAX: that member is then read again from the archive."""
    from deid_fast._scan import scan_stream     # (the scanner imports the walk, which imports this)
    recording = _Recording(stream)
    try:
        scan_stream(recording, member.name, member.size, True)
    except (InvalidDicomError, MemoryError) + _READ_ERRORS:
        return None
    return recording.data() if recording.count <= PREFETCH_MAX else None


class _Recording:
    """A stream that keeps what is read from it."""

    def __init__(self, stream):
        self.stream = stream
        self.chunks = []
        self.count = 0

    def read(self, size):
        data = self.stream.read(size)
        self.count += len(data)
        if self.count <= PREFETCH_MAX:
            self.chunks.append(data)
        return data

    def data(self):
        return b"".join(self.chunks)


class _Prefetched:
    """A compressed tar member's prefetched bytes, then, should more ever be asked for, the
    member read again from the archive past them."""

    def __init__(self, member):
        self.member = member
        self.data = io.BytesIO(member.prefetched)
        self.rest = None

    def read(self, size):
        data = self.data.read(size)
        if len(data) == size or self.data.tell() >= self.member.size:
            return data
        if self.rest is None:
            self.rest = _OPEN.tar_member(self.member)[0]
            self.rest.read(len(self.member.prefetched))
        return data + self.rest.read(size - len(data))


# --- reading a member -----------------------------------------------------------------------------


def _open_regular(path):
    """The file at `path` opened for reading, only if it is a regular file (never blocking on a
    named pipe swapped in since the walk looked)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{os.fsdecode(path)} is not a regular file")
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


class ArchiveChanged(OSError):
    """The archive is not the file that was listed."""


def _check_stamp(raw, stamp):
    if stamp is not None and _stamp(raw) != stamp:
        raise ArchiveChanged("the archive changed since it was listed: its members are listed "
                             "again by a new run")


class _Window:
    """`size` bytes of a file from `offset`: a tar member read in place."""

    def __init__(self, raw, offset, size):
        raw.seek(offset)
        self.raw = raw
        self.left = size

    def read(self, count):
        data = self.raw.read(min(count, self.left))
        self.left -= len(data)
        return data


class _Open:
    """The archives this process has open, so that members read one after another do not open
    their archive again: zip files (a few, least recently used closed first) and the compressed
    tar being read forward, and plain tars. One thread reads a member at a time (`lock`); a forked child starts
    with none open (it must not share the parent's file offsets) and a lock of its own."""

    def __init__(self):
        self.lock = threading.RLock()
        self.zips = collections.OrderedDict()
        self.files = collections.OrderedDict()
        self.tar = None          # [archive, TarFile in stream mode, its members, index, file]

    def file(self, archive, stamp):
        """The open file of a plain tar (a few, least recently used closed first)."""
        raw = self.files.pop(archive, None)
        if raw is not None and not _current(raw, archive):
            raw.close()
            raw = None
        if raw is None:
            raw = _open_regular(archive)
            try:
                _check_stamp(raw, stamp)
            except BaseException:
                raw.close()
                raise
            while len(self.files) >= 4:
                self.files.popitem(last=False)[1].close()
        self.files[archive] = raw
        return raw

    def zip(self, archive, stamp):
        pair = self.zips.pop(archive, None)
        if pair is not None and not _current(pair[1], archive):
            for opened in pair:
                opened.close()
            pair = None
        if pair is None:
            raw = _open_regular(archive)
            try:
                _check_stamp(raw, stamp)
                pair = (zipfile.ZipFile(raw), raw)
            except BaseException:
                raw.close()
                raise
            while len(self.zips) >= 4:
                for opened in self.zips.popitem(last=False)[1]:
                    opened.close()
        self.zips[archive] = pair
        return pair[0]

    def tar_member(self, member):
        """The stream of a compressed tar's member, continuing the pass in progress when the
        member lies ahead of it. A member named by the caller that is a hard link is read by
        its target's name, in a new pass (the target lies before it)."""
        wanted = member.member
        for _attempt in range(2):
            if (self.tar is None or self.tar[0] != member.archive
                    or self.tar[3] >= (member.index or 0)
                    or not _current(self.tar[4], member.archive)):
                self._open_tar(member)
            try:
                for index, info in self.tar[2]:
                    self.tar[3] = index
                    if member.index is not None:
                        if index == member.index:
                            return self.tar[1].extractfile(info), info.size
                    elif info.name == wanted and info.islnk():
                        wanted = info.linkname
                        break
                    elif info.name == wanted and info.isreg():
                        return self.tar[1].extractfile(info), info.size
                else:
                    break
            except BaseException:
                self.close_tar()          # a damaged stream is not read on from
                raise
            self.close_tar()
        self.close_tar()
        raise KeyError(member.member)

    def _open_tar(self, member):
        self.close_tar()
        raw = _open_regular(member.archive)
        try:
            _check_stamp(raw, member.stamp)
            opened = tarfile.open(fileobj=raw, mode="r|gz")
        except BaseException:
            raw.close()
            raise
        self.tar = [member.archive, opened, enumerate(opened), -1, raw]

    def close_tar(self):
        if self.tar is not None:
            self.tar[1].close()
            self.tar[4].close()
            self.tar = None


_OPEN = _Open()
os.register_at_fork(after_in_child=_OPEN.__init__)


class _opened:
    """`with _opened(member) as (stream, size)`: the member's bytes; read errors become the
    member's InvalidDicomError."""

    def __init__(self, member):
        self.member = member
        self.closing = []

    def __enter__(self):
        member = self.member
        _OPEN.lock.acquire()
        try:
            cache = _OPEN
            if member.kind == "zip":
                opened = cache.zip(member.archive, member.stamp)
                info = (opened.infolist()[member.index] if member.index is not None
                        else opened.getinfo(member.member))
                stream = opened.open(info)
                self.closing.append(stream)
                return stream, info.file_size
            if member.kind == "tar":
                raw = cache.file(member.archive, member.stamp)
                if member.offset is None:
                    raw.seek(0)
                    with tarfile.open(fileobj=raw, mode="r:") as opened:
                        info = opened.getmember(member.member)
                        if info.islnk():          # a hard link: its target's data
                            info = opened.getmember(info.linkname)
                        if not info.isreg():
                            raise KeyError(member.member)
                        member.offset, member.size = info.offset_data, info.size
                return _Window(raw, member.offset, member.size), member.size
            if member.kind == "tar.gz":
                if member.prefetched is not None:
                    return _Prefetched(member), member.size
                return cache.tar_member(member)
            raw = _open_regular(member.archive)
            self.closing.append(raw)
            stream = gzip.GzipFile(fileobj=raw)
            self.closing.insert(0, stream)
            return stream, -1
        except KeyError:
            self.__exit__()
            raise InvalidDicomError(member.name, "unreadable", "no such member in the archive") from None
        except BaseException as exc:
            self.__exit__()
            if not isinstance(exc, _READ_ERRORS):
                raise
            raise InvalidDicomError(member.name, "undecodable", f"the archive member cannot be "
                                    f"read: {type(exc).__name__}: {exc}") from exc

    def __exit__(self, *exc_info):
        try:
            for opened in self.closing:
                opened.close()
        finally:
            self.closing = []
            _OPEN.lock.release()
        return False


def split_name(path):
    """(archive, member) when `path` does not exist but names a member `ARCHIVE!/member` of an
    archive that does, else None."""
    text = os.fsdecode(path)
    start = 0
    while True:
        at = text.find(SEPARATOR, start)
        if at < 0:
            return None
        archive, member = text[:at], text[at + len(SEPARATOR):]
        if kind_of(archive) and member and os.path.isfile(archive):
            return archive, member
        start = at + 1


def member_item(path):
    """The `(name, Member)` item of a member named `ARCHIVE!/member`, or None."""
    parts = split_name(path)
    if parts is None:
        return None
    archive, member = parts
    nested = _nested(member, MemberName(archive, member))
    if nested is not None:
        return nested
    return MemberName(archive, member), Member(archive, kind_of(archive), member)
