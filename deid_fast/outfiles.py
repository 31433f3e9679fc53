"""Files a run writes: knows the filesystem, not formats.

Every file or folder a run creates next to its output (the output, `.partial`, spools, chunk
files, Parquet parts, the lock, the sidecar) is created through a `Folder`: relative to an open
descriptor of the folder, exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`), so that no write
ever follows a link the run did not create, and no name is taken twice. An existing file is
only opened for writing when it is a regular file of this user with one link (a resumed
output). Outputs get the permissions a plain `open()` gives under the user's umask; the
folders of chunk files, which hold patient data only while the run lasts, are private (0700).

`Lock` makes a second run on the same output a usage error naming the first run's process
(`fcntl.flock`: it does not span the nodes of a network filesystem).
"""
import errno
import fcntl
import json
import os
import secrets
import stat

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class OutputError(Exception):
    """The output cannot be written as asked (a usage error of the command line when found
    before reading, else a failed run)."""


class DamagedOutput(OutputError):
    """An output to be resumed holds what deid-fast did not write (a failed run, exit 1)."""


def describe(error, path):
    """One line naming the file and the reason of an OSError."""
    return f"cannot write {path}: {error.strerror or error}"


class Folder:
    """An open folder, in which names are created, opened, renamed and removed without
    following links. `Folder(path)` opens a folder the user named (links in `path` are the
    user's choice); `subfolder(name)` one the run made, never through a link."""

    def __init__(self, path, descriptor=None):
        self.path = path
        if descriptor is None:
            try:
                descriptor = os.open(path, _FOLDER)
            except OSError as exc:
                raise OutputError(f"cannot use the folder {path}: {exc.strerror}") from exc
        self.descriptor = descriptor
        info = os.fstat(descriptor)
        self.key = (info.st_dev, info.st_ino)

    def close(self):
        if self.descriptor is not None:
            os.close(self.descriptor)
            self.descriptor = None

    def join(self, name):
        return os.path.join(self.path, name)

    def lstat(self, name):
        """The lstat of `name`, or None when there is nothing by that name."""
        try:
            return os.stat(name, dir_fd=self.descriptor, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def create(self, name, mode=0o666, readable=False):
        """A new file `name`, opened for writing, and reading when `readable` (it must not
        exist, not even as a link)."""
        flags = _CREATE if not readable else (_CREATE & ~os.O_WRONLY) | os.O_RDWR
        return os.open(name, flags, mode, dir_fd=self.descriptor)

    def create_temporary(self, prefix, suffix=".tmp", mode=0o666, readable=False):
        """A new file under a new random name: `(descriptor, name)`."""
        while True:
            name = f"{prefix}{secrets.token_hex(6)}{suffix}"
            try:
                return self.create(name, mode, readable), name
            except FileExistsError:
                continue

    def open_own(self, name, flags=os.O_RDWR):
        """An existing file `name` of the run's earlier self, opened for reading and writing:
        refused when it is a link, not a regular file, another user's, or has other links."""
        try:
            descriptor = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 dir_fd=self.descriptor)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputError(f"{self.join(name)} is a symbolic link: not written through"
                                  ) from None
            raise
        info = os.fstat(descriptor)
        problem = (not stat.S_ISREG(info.st_mode) and "not a regular file" or
                   info.st_uid != os.geteuid() and "another user's file" or
                   info.st_nlink != 1 and "a file with other hard links")
        if problem:
            os.close(descriptor)
            raise OutputError(f"{self.join(name)} is {problem}: not written")
        return descriptor

    def open_file(self, name):
        """The file `name` of this folder, opened for reading (binary), never through a link."""
        return open(os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                            dir_fd=self.descriptor), "rb")

    def make_folder(self, name, mode=0o777):
        """A new folder `name` (it must not exist), opened."""
        os.mkdir(name, mode, dir_fd=self.descriptor)
        return self.subfolder(name)

    def make_temporary_folder(self, prefix, suffix, mode=0o700):
        while True:
            name = f"{prefix}{secrets.token_hex(6)}{suffix}"
            try:
                return self.make_folder(name, mode)
            except FileExistsError:
                continue

    def subfolder(self, name):
        """The existing folder `name`, opened: refused when it is a link or not a folder."""
        try:
            descriptor = os.open(name, _FOLDER | os.O_NOFOLLOW, dir_fd=self.descriptor)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise OutputError(f"{self.join(name)} is not a folder of this run (a link, or "
                                  "a file): not written into") from None
            raise
        return Folder(self.join(name), descriptor)

    def rename(self, source, target, into=None):
        """Rename `source` to `target` (in `into`, another Folder, or this one), replacing it."""
        os.replace(source, target, src_dir_fd=self.descriptor,
                   dst_dir_fd=(into or self).descriptor)

    def remove(self, name):
        try:
            os.unlink(name, dir_fd=self.descriptor)
        except FileNotFoundError:
            pass

    def remove_tree(self, name):
        """Remove the folder `name` and what it holds, never following a link."""
        try:
            inner = self.subfolder(name)
        except (OutputError, FileNotFoundError):
            self.remove(name)
            return
        try:
            for entry in os.listdir(inner.descriptor):
                info = inner.lstat(entry)
                if info is not None and stat.S_ISDIR(info.st_mode):
                    inner.remove_tree(entry)
                else:
                    inner.remove(entry)
        finally:
            inner.close()
        os.rmdir(name, dir_fd=self.descriptor)

    def names(self):
        return os.listdir(self.descriptor)

    def sync(self):
        """Flush the folder's entries (a rename made durable)."""
        os.fsync(self.descriptor)

    def write_temporary(self, prefix, produce):
        """A new file under a new temporary name, written by `produce(handle)` (a binary
        file) and flushed to disk; returns its name (removed again if writing fails)."""
        descriptor, temporary = self.create_temporary(prefix)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                produce(handle)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            self.remove(temporary)
            raise
        return temporary

    def write_atomically(self, name, produce):
        """The file `name` written by `produce(handle)`: under a temporary name, flushed,
        then renamed, so that `name` is never seen half-written."""
        temporary = self.write_temporary(f".{name}.", produce)
        try:
            self.rename(temporary, name)
        except BaseException:
            self.remove(temporary)
            raise

    def write_file(self, name, data):
        """The file `name` holding `data` (bytes), written atomically."""
        self.write_atomically(name, lambda handle: handle.write(data))


def reopen(path, key):
    """In a worker: the folder at `path` that the run made, opened again; refused unless it is
    still that folder (the same device and inode, where `key` gives them; not a link)."""
    try:
        descriptor = os.open(path, _FOLDER | os.O_NOFOLLOW)
    except OSError as exc:
        raise OutputError(f"cannot open the run's folder {path}: {exc.strerror}") from exc
    folder = Folder(path, descriptor)
    if any(mine != theirs for mine, theirs in zip(folder.key, key) if theirs is not None):
        folder.close()
        raise OutputError(f"{path} was replaced while the run was writing into it")
    return folder


def output_folder(path):
    """The Folder of the output `path` (which must exist)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"the folder of {path} does not exist")
    return Folder(folder)


class Lock:
    """An exclusive lock on the output `base` in `folder`: the file `base + ".lock"`, holding
    the process id of the run that has it, removed when released."""

    def __init__(self, folder, base):
        self.folder, self.name = folder, base + ".lock"
        self.descriptor = None
        for _attempt in range(100):
            try:
                descriptor = os.open(self.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW |
                                     os.O_CLOEXEC, 0o666, dir_fd=folder.descriptor)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise OutputError(f"{folder.join(self.name)} is a symbolic link: remove it"
                                      ) from None
                raise OutputError(describe(exc, folder.join(self.name))) from exc
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(descriptor, 64, 0).decode("ascii", "replace").strip()
                os.close(descriptor)
                raise OutputError(f"another deid-fast run (process {holder or 'unknown'}) is "
                                  f"writing {folder.join(base)}: wait for it, or choose another "
                                  "output") from None
            info, now = os.fstat(descriptor), folder.lstat(self.name)
            if now is None or (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
                os.close(descriptor)        # removed by the run that held it: take the new one
                continue
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                os.close(descriptor)
                raise OutputError(f"{folder.join(self.name)} is not a lock file of deid-fast")
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
            self.descriptor = descriptor
            return
        raise OutputError(f"cannot take the lock {folder.join(self.name)}")  # pragma: no cover

    def release(self):
        if self.descriptor is not None:
            self.folder.remove(self.name)
            os.close(self.descriptor)
            self.descriptor = None


def read_sidecar(folder, name):
    """The JSON object in the file `name` of `folder`, or None when there is none."""
    try:
        descriptor = folder.open_own(name, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        try:
            return json.loads(handle.read())
        except ValueError:
            raise OutputError(f"{folder.join(name)} is not a sidecar of deid-fast") from None
