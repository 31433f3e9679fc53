"""Inputs: knows paths and folders, not DICOM.

- `items(sources)` turns what a caller names (files, folders, Datasets, lists of them) into
  what to read, in order: a path (str) per file, a `(name, Dataset)` pair, or, for an entry
  that cannot be read, the `InvalidDicomError` saying why (kind "unreadable", or
  "already-walked" for a folder reached a second time). Nothing is dropped without a record.
- `walk(folder)` lists a folder recursively, sorted by name at each level (the files of a
  folder, then its subfolders), with an explicit stack (no depth limit from Python's), taking
  each entry's type from the directory entry: named pipes, sockets and devices are never
  opened; links to folders are followed once, a folder already walked (by device and inode) is
  not walked again.
- `path_text(path)` is how a path is written in every output and log line: valid UTF-8 and
  reversible (`path_from_text`), see its docstring.
"""
import fnmatch
import os
import posixpath
import re
import stat

from pydicom.dataset import Dataset

from deid_fast import archives
from deid_fast.errors import InvalidDicomError

# --- writing a path as text -------------------------------------------------------------------

#: What `path_text` escapes: a byte that is not UTF-8 (held as a lone surrogate by
#: os.fsdecode), a control character (C0, DEL, C1, the Unicode line and paragraph
#: separators), a "%" that would read as an escape, and the "!/" that names an archive member.
_ESCAPED = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]|%(?=[0-9A-Fa-f]{2})|!(?=/)")
_UNESCAPE = re.compile("%([0-9A-Fa-f]{2})")


def _escape(match):
    char = match[0]
    try:
        data = char.encode("utf-8", "surrogateescape")   # a byte os.fsdecode could not decode
    except UnicodeEncodeError:                            # a surrogate no file name holds
        data = char.encode("utf-8", "surrogatepass")
    return "".join(f"%{byte:02X}" for byte in data)


def path_text(path):
    """`path` (a str as os.fsdecode gives it, or bytes) as valid UTF-8 text that no reader can
    split into two lines or records, and that `path_from_text` turns back into the same path:
    a byte that is not part of valid UTF-8, a control character (newline and tab included) and
    U+2028/U+2029 are written `%HH` (their bytes in hex); a "%" followed by two hex digits is
    written "%25" and "!/" is written "%21/" so that neither can be mistaken. Every other path
    is written as it is. An archive member (`archives.MemberName`) is its archive's path and its
    member's, each written so, joined by the one `!/` left unescaped."""
    if type(path) is archives.MemberName:
        return f"{path_text(path.archive)}{archives.SEPARATOR}{path_text(path.member)}"
    if type(path) is not str:
        path = os.fsdecode(path)
    if path.isascii() and path.isprintable() and "%" not in path and "!/" not in path:
        return path
    return _ESCAPED.sub(_escape, path)


def path_from_text(text):
    """The path (a str as os.fsdecode gives it) that `path_text` wrote as `text`."""
    if "%" not in text:
        return text
    raw, position = bytearray(), 0
    for match in _UNESCAPE.finditer(text):
        raw += text[position:match.start()].encode("utf-8", "surrogateescape")
        raw.append(int(match[1], 16))
        position = match.end()
    raw += text[position:].encode("utf-8", "surrogateescape")
    return os.fsdecode(bytes(raw))


# --- finding the files --------------------------------------------------------------------------

_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def not_a_file(mode):
    """Why a file of this st_mode, not a regular file, is not read."""
    for test, what in _SPECIAL:
        if test(mode):
            return f"is {what}, not a regular file: not opened"
    return "is not a regular file: not opened"


def unreadable(path, reason):
    return InvalidDicomError(path, "unreadable", reason)


class Exclude:
    """The run's own outputs and temporary files, which are never inputs: in the folder of the
    output, the names the run writes (`OUT`, `OUT.` + anything it adds, `.OUT.` + anything)."""

    def __init__(self, output):
        self.folder_key = None
        if output is None:
            return
        folder, self.base = os.path.split(os.path.abspath(output))
        try:
            info = os.stat(folder)
        except OSError:
            return
        self.folder_key = (info.st_dev, info.st_ino)

    def __call__(self, folder_key, name):
        return (folder_key == self.folder_key and
                (name == self.base or name.startswith(self.base + ".") or
                 name.startswith("." + self.base + ".")))


NOTHING_EXCLUDED = Exclude(None)


def walk(folder, pattern=None, exclude=NOTHING_EXCLUDED, seen=None):
    """Every file under `folder` (a path or an InvalidDicomError per entry that cannot be read),
    recursively, sorted by name at each level: a folder's files, then its subfolders. `pattern`
    (fnmatch) filters file names; `seen` holds the (device, inode) of the folders walked so far
    in the run (links to folders are followed, each folder is walked once)."""
    seen = set() if seen is None else seen
    try:
        info = os.stat(folder)
    except OSError as exc:
        yield unreadable(folder, f"cannot list the folder: {exc.strerror}")
        return
    stack = [iter([(folder, (info.st_dev, info.st_ino))])]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if type(entry) is not tuple:        # a file, or a record of an entry not read
            if type(entry) is str and archives.kind_of(entry):
                yield from _archive(entry, pattern)
            else:
                yield entry
            continue
        path, key = entry
        if key in seen:
            yield InvalidDicomError(path, "already-walked", "a link to a folder already walked in "
                                    "this run (a loop, or a second way to it): not walked again")
            continue
        seen.add(key)
        listed = _list(path, key, pattern, exclude)
        if isinstance(listed, InvalidDicomError):
            yield listed
            continue
        stack.append(iter(listed))


def _list(folder, folder_key, pattern, exclude):
    """The entries of one folder in walking order: file paths and records first, then
    `(path, (device, inode))` of each subfolder; or the InvalidDicomError of a folder that
    cannot be listed."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        return unreadable(folder, f"cannot list the folder: {exc.strerror}")
    files, folders = [], []
    for entry in entries:
        name, path = entry.name, entry.path
        if exclude(folder_key, name):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                folders.append((path, (info.st_dev, info.st_ino)))
                continue
            if entry.is_file(follow_symlinks=False):
                # an archive is opened whatever its name; `pattern` then picks its members
                if pattern is None or fnmatch.fnmatch(name, pattern) or archives.kind_of(name):
                    files.append(path)
                continue
            if entry.is_symlink():
                try:
                    info = os.stat(path)
                except OSError as exc:
                    files.append(unreadable(path, f"a broken link: {exc.strerror}"))
                    continue
                if stat.S_ISDIR(info.st_mode):
                    folders.append((path, (info.st_dev, info.st_ino)))
                    continue
                mode = info.st_mode
            else:
                mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as exc:
            files.append(unreadable(path, f"cannot stat: {exc.strerror}"))
            continue
        if pattern is not None and not fnmatch.fnmatch(name, pattern) and not (
                stat.S_ISREG(mode) and archives.kind_of(name)):
            continue
        files.append(path if stat.S_ISREG(mode) else unreadable(path, not_a_file(mode)))
    return files + folders


def _archive(path, pattern):
    """The items of an archive, members whose file name matches `pattern` (when given)."""
    for item in archives.items(path):
        if (pattern is None or isinstance(item, InvalidDicomError)
                or fnmatch.fnmatch(posixpath.basename(item[1].member), pattern)):
            yield item


def as_list(sources):
    """R1: a single path or Dataset counts as a list of one."""
    if isinstance(sources, (str, bytes, os.PathLike, Dataset)):
        return [sources]
    return sources


def display_name(source, index):
    if isinstance(source, Dataset):
        filename = getattr(source, "filename", None)
        return filename if isinstance(filename, str) and filename else f"<Dataset #{index}>"
    return os.fsdecode(source)


def items(sources, pattern=None, exclude=NOTHING_EXCLUDED):
    """What to read, in order: a path (str) per file (folders walked, see `walk`), a
    `(name, Dataset)` pair, a `(name, archives.Member)` pair per member of an archive (named
    `ARCHIVE!/member`, given so or met as an archive file), or an InvalidDicomError for what
    cannot be read (a missing path, a pipe or device, a folder that cannot be listed, a damaged
    archive)."""
    seen = set()
    for index, source in enumerate(as_list(sources)):
        if isinstance(source, Dataset):
            yield display_name(source, index), source
            continue
        path = os.fsdecode(source)
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            member = archives.member_item(path)       # ARCHIVE!/member
            if member is None:
                yield unreadable(path, f"cannot open: {exc.strerror}")
            elif (pattern is None or isinstance(member, InvalidDicomError)
                  or fnmatch.fnmatch(posixpath.basename(member[1].member), pattern)):
                yield member
            continue
        if stat.S_ISDIR(mode):
            yield from walk(path, pattern, exclude, seen)
        elif stat.S_ISREG(mode) and archives.kind_of(path):
            yield from _archive(path, pattern)
        elif pattern is None or fnmatch.fnmatch(os.path.basename(path), pattern):
            yield path if stat.S_ISREG(mode) else unreadable(path, not_a_file(mode))


def name_of(item):
    """The path or display name of an item of `items`."""
    if type(item) is str:
        return item
    if isinstance(item, InvalidDicomError):
        return item.path
    return item[0]
