"""deid_fast: the identifying header fields of DICOM files, fast and exactly.

A drop-in for the `get_identifiers` step of deid: `get_identifiers`, `get_fields`, `get_files`
and `get_dataset`, with values equal to what pydicom reads (see SPEC.md and README.md).
"""
try:
    from deid_fast import _flatten, _scan, _values  # noqa: F401  (the compiled core)
except ImportError as exc:  # pragma: no cover - depends on how it was imported
    raise ImportError(
        f"deid_fast's compiled modules are missing in {__path__[0]}: this is the source tree, "
        "not an installed deid_fast. Install it (pip install .) and run from another folder, "
        "or build in place with: python setup.py build_ext --inplace") from exc

from deid_fast.bulk import iter_identifiers
from deid_fast.data import get_dataset
from deid_fast.dicom import get_fields, get_files, get_identifiers
from deid_fast.errors import InvalidDicomError

__version__ = "0.1.0"
__all__ = ["get_identifiers", "get_fields", "get_files", "get_dataset", "InvalidDicomError",
           "iter_identifiers"]
