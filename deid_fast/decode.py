"""The pydicom engine: decodes the header bytes the scanner found, with pydicom as the parser of record.

pydicom gets only the header: the file meta bytes, the command set bytes and the data set up to
(not including) the first top-level pixel data element, inflated when the file is deflated. It
reads them with its default settings whatever the caller set in `pydicom.config` (SPEC R6), and
its warnings about odd values are logged at DEBUG instead of reaching the user (R9): see
`deid_fast.session`, which `decoded` arms.
"""
import io
import logging

from pydicom.dataset import FileMetaDataset
from pydicom.filereader import (
    _at_pixel_data,
    _read_command_set_elements,
    _read_file_meta_info,
    read_dataset,
)

from deid_fast._decode import handovers
from deid_fast._flatten import NativeUnsupported, UndecodableElement
from deid_fast.errors import InvalidDicomError
from deid_fast.session import use_pydicom

logger = logging.getLogger("deid_fast")

#: What the native engine handed to pydicom, by reason (the benchmarks print it): elements it
#: sent to pydicom's converter (counted by the decoder, whose Counter this is) and whole files
#: it handed to the pydicom engine (`count_fallback`).
fallbacks = handovers


def count_fallback(name, unsupported):
    """Count a file the native engine hands to pydicom (`NativeUnsupported`) under its reason."""
    fallbacks[unsupported.reason] += 1
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("native engine hands %s to pydicom: %s", name, unsupported)


def read_file_meta(header):
    """pydicom's file meta for a scanned `Header`."""
    return (_read_file_meta_info(io.BytesIO(header.file_meta))
            if header.file_meta else FileMetaDataset())


def read_header(header):
    """pydicom's data set and file meta for a scanned `Header`."""
    file_meta = read_file_meta(header)
    dataset = read_dataset(io.BytesIO(header.dataset), header.is_implicit_vr,
                           header.is_little_endian, stop_when=_at_pixel_data)
    if header.command_set:
        dataset.update(_read_command_set_elements(io.BytesIO(header.command_set)))
    return dataset, file_meta


def _file_offset(header, failure):
    """Where the failing element's top-level element has its value in the file, when known."""
    if header is None or header.deflated or failure.value_tell is None:
        return None
    group = failure.path[0][0] >> 16
    base = header.dataset_offset        # the raw offsets count from the start of their bytes
    if group in (0x0000, 0x0002):
        base -= len(header.command_set)
    if group == 0x0002:
        base -= len(header.file_meta)
    return base + failure.value_tell


def undecodable(path, exc, header=None):
    """The `InvalidDicomError` for a failure of pydicom (or of the native decoder's delegation
    to it) to decode a header; names the element and its offset where it can."""
    if isinstance(exc, RecursionError):
        return InvalidDicomError(path, "too-deep", "nesting too deep for pydicom to decode")
    if isinstance(exc, UndecodableElement):
        return InvalidDicomError(path, "undecodable", f"pydicom cannot decode {exc}",
                                 _file_offset(header, exc))
    return InvalidDicomError(path, "undecodable",
                             f"pydicom cannot decode it: {type(exc).__name__}: {exc}")


def decoded(path, compute, header=None):
    """Run `compute()` (which reads values through pydicom) and turn any failure of pydicom
    to decode into an `InvalidDicomError` that names the file, and where it can, the element
    and its byte offset (`header` is the scanned header, None for a Dataset)."""
    use_pydicom()
    try:
        return compute()
    except (InvalidDicomError, NativeUnsupported, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise undecodable(path, exc, header) from exc
