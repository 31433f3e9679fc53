"""Fills fuzz/corpus/ with small seeds made from the shipped DICOM files.

Sources: pydicom's data/test_files and data/charset_files, deid-data, and pydicom-data's
data_store/data. For every file it writes (at most `MAX_LEN` bytes each):
- the file itself if it is small, else its first 8 KiB (a header, possibly cut);
- the header alone (pixel data dropped, via pydicom `stop_before_pixels`) re-written in its own
  transfer syntax, when pydicom can read it and the result fits.
Usage: python fuzz/make_seeds.py OUTDIR
"""
import hashlib
import io
import os
import sys
import warnings

import pydicom

MAX_LEN = 16384
CUT = 8192


def sources():
    roots = []
    base = os.path.dirname(pydicom.__file__)
    roots += [os.path.join(base, "data", "test_files"), os.path.join(base, "data", "charset_files")]
    try:
        import deid_data
        roots.append(os.path.dirname(deid_data.__file__))
    except ImportError:
        pass
    try:
        import data_store
        roots.append(os.path.join(os.path.dirname(data_store.__file__), "data"))
    except ImportError:
        pass
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if name.endswith((".py", ".pyc", ".json", ".txt", ".md", ".gz", ".bz2", ".zip")):
                    continue
                yield os.path.join(folder, name)


def header_only(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=False)
        return out.getvalue()


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    written = set()

    def put(data):
        if not data or len(data) > MAX_LEN:
            return
        digest = hashlib.sha1(data).hexdigest()
        if digest not in written:
            written.add(digest)
            with open(os.path.join(outdir, digest), "wb") as handle:
                handle.write(data)

    for path in sources():
        with open(path, "rb") as handle:
            data = handle.read(MAX_LEN + 1)
        put(data if len(data) <= MAX_LEN else data[:CUT])
        try:
            put(header_only(path))
        except Exception:
            pass
    print(f"{len(written)} seeds in {outdir}")


if __name__ == "__main__":
    main(sys.argv[1])
