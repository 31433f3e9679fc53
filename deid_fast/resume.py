"""The paths an interrupted run already wrote, for `--resume`: a set in memory up to a bound,
then an SQLite table in a temporary file, so that resuming a run of millions of files does
not hold them all in memory."""
import os
import sqlite3
import tempfile

#: Paths kept in memory before they move to disk (about 150 bytes each in a set).
IN_MEMORY = 100_000


def _key(path):
    # any str, lone surrogates (a file name that is not UTF-8) included
    return path.encode("utf-8", "surrogatepass")


class DonePaths:
    """A set of paths (str) that spills to SQLite past `IN_MEMORY` entries."""

    def __init__(self, in_memory=None):
        self.in_memory = IN_MEMORY if in_memory is None else in_memory
        self.paths = set()
        self.folder = None
        self.database = None
        self.count = 0

    def add_many(self, paths):
        for path in paths:
            self.add(path)

    def add(self, path):
        if self.database is None:
            if path not in self.paths:
                self.paths.add(path)
                self.count += 1
            if len(self.paths) > self.in_memory:
                self._spill()
            return
        cursor = self.database.execute("INSERT OR IGNORE INTO done VALUES (?)", (_key(path),))
        self.count += cursor.rowcount

    def _spill(self):
        self.folder = tempfile.TemporaryDirectory(prefix="deid-fast-resume-")
        self.database = sqlite3.connect(os.path.join(self.folder.name, "done.sqlite"))
        self.database.execute("PRAGMA journal_mode=OFF")
        self.database.execute("PRAGMA synchronous=OFF")
        self.database.execute("CREATE TABLE done (path BLOB PRIMARY KEY) WITHOUT ROWID")
        self.database.executemany("INSERT INTO done VALUES (?)",
                                  ((_key(path),) for path in self.paths))
        self.paths = set()

    def __contains__(self, path):
        if self.database is None:
            return path in self.paths
        return self.database.execute("SELECT 1 FROM done WHERE path = ?",
                                     (_key(path),)).fetchone() is not None

    def __len__(self):
        return self.count

    def __bool__(self):
        return self.count > 0

    def close(self):
        if self.database is not None:
            self.database.close()
            self.folder.cleanup()
            self.database = self.folder = None
        self.paths = set()
