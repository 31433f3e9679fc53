"""The paths an interrupted run already wrote (as the output holds them: `path_text`), for
`--resume`: a multiset in memory up to a bound, then an SQLite table in a temporary file, so
that resuming a run of millions of files does not hold them all in memory. A path counts as often as it was written, so that a path
given twice is read twice, in a resumed run as in a whole one."""
import os
import sqlite3
import tempfile

#: Paths kept in memory before they move to disk (about 150 bytes each in a dict).
IN_MEMORY = 100_000


def _key(path):
    # any str, lone surrogates (a file name that is not UTF-8) included
    return path.encode("utf-8", "surrogatepass")


class DonePaths:
    """A multiset of paths (str) that spills to SQLite past `IN_MEMORY` distinct entries."""

    def __init__(self, in_memory=None):
        self.in_memory = IN_MEMORY if in_memory is None else in_memory
        self.paths = {}            # path -> times written
        self.folder = None
        self.database = None
        self.count = 0

    def add_many(self, paths):
        for path in paths:
            self.add(path)

    def add(self, path):
        self.count += 1
        if self.database is None:
            self.paths[path] = self.paths.get(path, 0) + 1
            if len(self.paths) > self.in_memory:
                self._spill()
            return
        self.database.execute("INSERT INTO done VALUES (?, 1) ON CONFLICT(path) DO UPDATE SET "
                              "times = times + 1", (_key(path),))

    def _spill(self):
        self.folder = tempfile.TemporaryDirectory(prefix="deid-fast-resume-")
        self.database = sqlite3.connect(os.path.join(self.folder.name, "done.sqlite"))
        self.database.execute("PRAGMA journal_mode=OFF")
        self.database.execute("PRAGMA synchronous=OFF")
        self.database.execute("CREATE TABLE done (path BLOB PRIMARY KEY, times INTEGER) "
                              "WITHOUT ROWID")
        self.database.executemany("INSERT INTO done VALUES (?, ?)",
                                  ((_key(path), times) for path, times in self.paths.items()))
        self.paths = {}

    def take(self, path):
        """Whether `path` is among the done paths; if so, one of its times is used up (the
        next occurrence of the same path is then read)."""
        if self.database is None:
            times = self.paths.get(path)
            if not times:
                return False
            self.paths[path] = times - 1
            return True
        cursor = self.database.execute("UPDATE done SET times = times - 1 WHERE path = ? AND "
                                       "times > 0", (_key(path),))
        return cursor.rowcount > 0

    def __contains__(self, path):
        if self.database is None:
            return self.paths.get(path, 0) > 0
        return self.database.execute("SELECT 1 FROM done WHERE path = ? AND times > 0",
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
        self.paths = {}
