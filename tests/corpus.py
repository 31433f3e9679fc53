"""The shipped DICOM test data of SPEC §5, listed straight from the installed packages.

Three packages ship the files:

- pydicom: every ``*.dcm`` under ``pydicom/data/test_files`` (recursively) and
  ``pydicom/data/charset_files``;
- deid-data (module ``deid_data``): every ``*.dcm`` in the folders of ``deid_data/data``;
  the members of its ``.zip`` archives are listed apart (``archived_files``), as
  ``ARCHIVE!/member`` names deid_fast reads in place;
- pydicom-data (module ``data_store``): every file of ``data_store/data``, listed
  directly, because pydicom's ``get_testdata_file`` tries the network for files the
  wheel lacks.

A missing package or folder raises (``CorpusMissing``): the conformance tests must fail,
never skip, when the data they are meant to cover is not there.
"""
from __future__ import annotations

import importlib
from pathlib import Path

__all__ = [
    "CorpusMissing",
    "pydicom_files",
    "deid_data_files",
    "archived_files",
    "pydicom_data_files",
    "shipped_files",
]


class CorpusMissing(RuntimeError):
    """A package or folder that SPEC §5 names as test data is not installed."""


def _package_dir(module: str, install_hint: str) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise CorpusMissing(
            f"test data package {module!r} is not installed: pip install {install_hint}"
        ) from exc
    return Path(mod.__file__).resolve().parent


def _folder(path: Path) -> Path:
    if not path.is_dir():
        raise CorpusMissing(f"test data folder {path} does not exist")
    return path


def _sorted_files(paths) -> list[str]:
    return sorted((str(p) for p in paths if p.is_file()), key=lambda p: (p.lower(), p))


def pydicom_files() -> list[str]:
    """Every ``*.dcm`` under pydicom's ``data/test_files`` and ``data/charset_files``."""
    data = _package_dir("pydicom", "pydicom") / "data"
    files = []
    for sub in ("test_files", "charset_files"):
        files += _sorted_files(_folder(data / sub).rglob("*.dcm"))
    if not files:
        raise CorpusMissing(f"no *.dcm files under {data}")
    return files


def deid_data_files() -> list[str]:
    """Every ``*.dcm`` in deid-data's data folders (``deid_data/data/*/``)."""
    data = _folder(_package_dir("deid_data", "deid-data") / "data")
    files = _sorted_files(
        p for sub in sorted(data.iterdir()) if sub.is_dir() for p in sub.rglob("*.dcm")
    )
    if not files:
        raise CorpusMissing(f"no *.dcm files under {data}")
    return files


def pydicom_data_files() -> list[str]:
    """Every file of pydicom-data's ``data_store/data`` folder."""
    data = _folder(_package_dir("data_store", "pydicom-data") / "data")
    files = _sorted_files(data.iterdir())
    if not files:
        raise CorpusMissing(f"no files in {data}")
    return files


def archived_files() -> list[str]:
    """The members of deid-data's zip files, named ``ARCHIVE!/member`` (read in place)."""
    import zipfile

    data = _folder(_package_dir("deid_data", "deid-data") / "data")
    archives = sorted(str(p) for p in data.rglob("*.zip"))
    if not archives:
        raise CorpusMissing(f"no zip files under {data}")
    names = []
    for archive in archives:
        with zipfile.ZipFile(archive) as opened:
            names += [f"{archive}!/{info.filename}" for info in opened.infolist()
                      if not info.is_dir()]
    return names


def shipped_files() -> list[str]:
    """All shipped test files of SPEC §5: pydicom's, deid-data's, pydicom-data's."""
    return pydicom_files() + deid_data_files() + pydicom_data_files()


if __name__ == "__main__":
    for path in shipped_files():
        print(path)
