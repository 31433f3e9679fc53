"""The one exception of deid_fast: a file that is not a whole, decodable DICOM header."""
import pydicom.errors

#: Every `InvalidDicomError.kind`, for callers that sort failures.
KINDS = (
    "unreadable",   # missing, a directory, no permission, a read error, not a regular file
    "already-walked",  # a link to a folder already walked in the run (a loop, or a 2nd way)
    "empty",        # zero bytes
    "no-preamble",  # no preamble and DICM prefix, with force=False
    "not-dicom",    # bytes that do not form DICOM data elements
    "truncated",    # a declared length runs past the end, or an undefined length is never closed
    "too-deep",     # sequences nest deeper than max_depth
    "too-large",    # past max_header_bytes (inflated, when deflated) or max_elements
    "no-elements",  # nothing but a file meta group and group lengths
    "undecodable",  # a structure or value pydicom cannot decode
    "worker-died",  # the worker process reading it died (killed, or crashed), twice
)


class InvalidDicomError(pydicom.errors.InvalidDicomError):
    """A file that is not a readable DICOM header: names the file, the byte offset and the reason."""

    def __init__(self, path, kind, reason, offset=None):
        if kind not in KINDS:
            raise ValueError(f"unknown kind of invalid DICOM: {kind!r}")
        self.path = path
        self.kind = kind
        self.reason = reason
        self.offset = offset
        where = "" if offset is None else f" (at byte {offset})"
        super().__init__(f"{path}: {reason}{where}")

    def __reduce__(self):  # keeps the attributes across process boundaries
        return (type(self), (self.path, self.kind, self.reason, self.offset))
