"""deid_fast: the identifying header fields of DICOM files, fast and exactly.

A drop-in for the `get_identifiers` step of deid: `get_identifiers`, `get_fields`, `get_files`
and `get_dataset`, with values equal to what pydicom reads (README.md, docs/spec.md); for
deid 0.4's lookup, `deid_fast.deid`.

The names below are imported when first used (PEP 562), so that a command that needs little,
`deid-fast show` or `--version`, does not pay for the rest at start-up.
"""
import importlib

__version__ = "0.1.0"
__all__ = ["get_identifiers", "get_fields", "get_files", "get_dataset", "InvalidDicomError",
           "iter_identifiers"]

_WHERE = {"get_identifiers": "deid_fast.dicom", "get_fields": "deid_fast.dicom",
          "get_files": "deid_fast.dicom", "get_dataset": "deid_fast.data",
          "InvalidDicomError": "deid_fast.errors", "iter_identifiers": "deid_fast.bulk"}


def compiled_core():
    """Import the compiled modules, with a clear error when they are not built."""
    try:
        from deid_fast import _flatten, _scan, _values  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on how it was imported
        if not (exc.name or "").startswith("deid_fast."):
            raise                   # a dependency is missing, not the build
        raise ImportError(
            f"deid_fast's compiled modules are missing in {__path__[0]}: this is the source "
            "tree, not an installed deid_fast. Install it (pip install .) and run from another "
            "folder, or build in place with: python setup.py build_ext --inplace") from exc


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'deid_fast' has no attribute {name!r}")
    compiled_core()
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
