"""deid_fast: the identifying header fields of DICOM files, fast and exactly.

A drop-in for the `get_identifiers` step of deid: `get_identifiers`, `get_fields`, `get_files`
and `get_dataset`, with values equal to what pydicom reads (see SPEC.md and README.md).
"""
from deid_fast.data import get_dataset
from deid_fast.dicom import get_fields, get_files, get_identifiers
from deid_fast.errors import InvalidDicomError

__version__ = "0.1.0"
__all__ = ["get_identifiers", "get_fields", "get_files", "get_dataset", "InvalidDicomError"]
