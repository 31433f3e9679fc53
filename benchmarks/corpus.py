"""The benchmark corpora: built once, idempotently, under ``benchmarks/corpus/`` (git-ignored).

Three corpora, each a list of file paths:

- ``cookies``: the 7 dicom-cookies files of deid-data, hard-linked (copied where a hard link
  cannot be made) into nested folders ``patientNN/seriesNN/imageK.dcm`` until there are
  ``COOKIES_FILES`` (1,400) of them: many small single-frame headers, the archive case.
- ``mixed``: every shipped test file (pydicom, deid-data, pydicom-data, as ``tests/corpus.py``
  lists them) that ``deid_fast.get_fields`` accepts, since a file deid_fast rejects gives no
  comparable result. Linked into ``mixed/NNNN_<name>`` and listed in ``mixed/MANIFEST.txt``.
- ``longseq``: one file per N in ``LONGSEQ_SIZES`` (150, 1,500, 15,000), generated with pydicom:
  a multi-frame header whose PerFrameFunctionalGroupsSequence holds N items, each with 5 nested
  one-item sequences and 10 leaf elements, as an enhanced MR or CT has, followed by a small
  PixelData (8 x 8 bytes a frame).

``python benchmarks/corpus.py`` builds them all and prints what it has.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
TESTS_DIR = ROOT / "tests"
CORPUS_DIR = BENCH_DIR / "corpus"

COOKIES_FILES = 1400
COOKIES_PATIENTS = 20  # 20 patients x 10 series x 7 images = 1,400 files
COOKIES_SERIES = 10
LONGSEQ_SIZES = (150, 1500, 15000)
LONGSEQ_VERSION = 1  # bump when the generator changes, so old files are rebuilt


# --------------------------------------------------------------------------------------
# The test helpers in tests/ (written by others: imported, never copied)
# --------------------------------------------------------------------------------------

def load_test_module(name: str):
    """Import ``tests/<name>.py`` under a private module name.

    ``benchmarks/corpus.py`` and ``tests/corpus.py`` share a name, so the test modules are
    loaded by path. The tests dir is appended to ``sys.path`` so that their own imports of
    sibling test modules work.
    """
    path = TESTS_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (yet): the benchmarks need it")
    if str(TESTS_DIR) not in sys.path:
        sys.path.append(str(TESTS_DIR))
    modname = f"_deid_fast_tests_{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module


def shipped_files() -> list[str]:
    """Every shipped test file, as ``tests/corpus.py`` lists them, in its order."""
    tc = load_test_module("corpus")
    for name in ("shipped_files", "all_files", "all_shipped_files", "list_files"):
        fn = getattr(tc, name, None)
        if callable(fn):
            return [os.fspath(p) for p in fn()]
    # Otherwise: the union of its per-source listers, in the order the module defines them.
    files: list[str] = []
    seen: set[str] = set()
    for name in dir(tc):
        fn = getattr(tc, name)
        if name.startswith("_") or not callable(fn) or getattr(fn, "__module__", None) != tc.__name__:
            continue
        if not (name.endswith("_files") or name.startswith("list_")):
            continue
        for p in fn():
            p = os.fspath(p)
            if p not in seen:
                seen.add(p)
                files.append(p)
    if not files:
        raise RuntimeError("tests/corpus.py lists no files: cannot build the mixed corpus")
    return files


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------

def _link(src: Path, dst: Path) -> None:
    """Make ``dst`` the same file as ``src``: a hard link, or a copy across devices."""
    if dst.exists():
        try:
            if os.path.samefile(src, dst):
                return
            if dst.stat().st_size == src.stat().st_size and _digest(dst) == _digest(src):
                return
        except OSError:
            pass
        dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cookies_sources() -> list[Path]:
    from deid_data.data import get_dataset  # deid-data's own accessor

    base = Path(get_dataset("dicom-cookies"))
    files = sorted(p for p in base.iterdir() if p.is_file() and p.suffix == ".dcm")
    if len(files) != 7:
        raise RuntimeError(f"expected the 7 dicom-cookies files in {base}, found {len(files)}")
    return files


# --------------------------------------------------------------------------------------
# (a) cookies: 1,400 hard links in nested folders
# --------------------------------------------------------------------------------------

def build_cookies(n_files: int = COOKIES_FILES) -> list[str]:
    """The dicom-cookies files linked into ``cookies/patientNN/seriesNN/``; returns the paths."""
    sources = cookies_sources()
    root = CORPUS_DIR / "cookies"
    paths: list[str] = []
    p = 0
    while len(paths) < n_files:
        for s in range(COOKIES_SERIES):
            for src in sources:
                if len(paths) >= n_files:
                    break
                dst = root / f"patient{p:02d}" / f"series{s:02d}" / src.name
                _link(src, dst)
                paths.append(str(dst))
        p += 1
    return paths


# --------------------------------------------------------------------------------------
# (b) mixed: every shipped test file deid_fast accepts
# --------------------------------------------------------------------------------------

def _accepted_by_deid_fast(paths: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    try:
        import deid_fast
    except ImportError as exc:  # pragma: no cover - depends on the build state
        raise RuntimeError(
            "the mixed corpus keeps only the files deid_fast.get_fields accepts, "
            f"so deid_fast must be importable: {exc}"
        ) from exc
    import logging
    import warnings

    accepted, rejected = [], []
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for path in paths:
                try:
                    deid_fast.get_fields(path)
                except deid_fast.InvalidDicomError as exc:
                    rejected.append((path, str(exc)))
                else:
                    accepted.append(path)
    finally:
        logging.disable(logging.NOTSET)
    return accepted, rejected


def build_mixed() -> list[str]:
    """Link the accepted shipped files into ``mixed/``; returns the linked paths in order."""
    sources = shipped_files()
    accepted, rejected = _accepted_by_deid_fast(sources)
    root = CORPUS_DIR / "mixed"
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "MANIFEST.txt"
    wanted = {}
    for i, src in enumerate(accepted):
        wanted[f"{i:04d}_{Path(src).name}"] = src
    # Drop what an earlier build left and this one does not want.
    for old in root.iterdir():
        if old.name != manifest.name and old.name not in wanted:
            old.unlink()
    for name, src in wanted.items():
        _link(Path(src), root / name)
    lines = [f"# {len(accepted)} files deid_fast accepts of {len(sources)} shipped; "
             f"{len(rejected)} rejected are listed at the end"]
    lines += [f"{name}\t{src}" for name, src in wanted.items()]
    lines += [f"# rejected\t{src}\t{reason}" for src, reason in rejected]
    text = "\n".join(lines) + "\n"
    if not manifest.exists() or manifest.read_text() != text:
        manifest.write_text(text)
    return [str(root / name) for name in wanted]


def mixed_rejected() -> list[str]:
    """The shipped files deid_fast rejected at the last build (from the manifest)."""
    manifest = CORPUS_DIR / "mixed" / "MANIFEST.txt"
    if not manifest.exists():
        return []
    return [line.split("\t")[1] for line in manifest.read_text().splitlines()
            if line.startswith("# rejected\t")]


# --------------------------------------------------------------------------------------
# (c) longseq: a sequence of N items, like per-frame functional groups
# --------------------------------------------------------------------------------------

def _longseq_dataset(n_items: int):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_class = "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR Image Storage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{n_items}.1"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = "20240102"
    ds.ContentDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC0001"
    ds.Modality = "MR"
    ds.Manufacturer = "Benchmark"
    ds.InstitutionName = "Synthetic Hospital"
    ds.ReferringPhysicianName = "Doe^Jane"
    ds.PatientName = "Long^Sequence"
    ds.PatientID = f"longseq-{n_items}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.3.{n_items}"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n_items

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.5]
    measures.SliceThickness = 1.0
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])

    items = []
    for i in range(n_items):
        item = Dataset()
        content = Dataset()
        content.FrameAcquisitionNumber = i % 65536
        content.StackID = "1"
        content.InStackPositionNumber = i + 1
        content.DimensionIndexValues = [1, i + 1]
        item.FrameContentSequence = Sequence([content])
        position = Dataset()
        position.ImagePositionPatient = [-100.0, -100.0, round(i * 0.5, 2)]
        item.PlanePositionSequence = Sequence([position])
        orientation = Dataset()
        orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        item.PlaneOrientationSequence = Sequence([orientation])
        pix = Dataset()
        pix.PixelSpacing = [0.5, 0.5]
        pix.SliceThickness = 1.0
        item.PixelMeasuresSequence = Sequence([pix])
        voi = Dataset()
        voi.WindowCenter = 40
        voi.WindowWidth = 400
        item.FrameVOILUTSequence = Sequence([voi])
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 8
    ds.Columns = 8
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(64 * n_items)
    return ds


def build_longseq(sizes=LONGSEQ_SIZES) -> dict[int, str]:
    """One generated file per N; rebuilt only when missing or made by another generator."""
    import pydicom

    root = CORPUS_DIR / "longseq"
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for n in sizes:
        path = root / f"perframe_{n}.dcm"
        stamp = root / f"perframe_{n}.json"
        want = {"version": LONGSEQ_VERSION, "items": n, "pydicom": pydicom.__version__}
        ok = path.exists() and stamp.exists()
        if ok:
            try:
                ok = json.loads(stamp.read_text()) == want
            except ValueError:
                ok = False
        if not ok:
            tmp = path.with_suffix(".tmp")
            _longseq_dataset(n).save_as(tmp, enforce_file_format=True)
            os.replace(tmp, path)
            stamp.write_text(json.dumps(want))
        out[n] = str(path)
    return out


# --------------------------------------------------------------------------------------

def build_all(mixed: bool = True, longseq_sizes=LONGSEQ_SIZES) -> dict:
    corpora = {"cookies": build_cookies(), "longseq": build_longseq(longseq_sizes)}
    if mixed:
        corpora["mixed"] = build_mixed()
    return corpora


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-mixed", action="store_true",
                        help="skip the mixed corpus (it needs deid_fast and tests/corpus.py)")
    args = parser.parse_args(argv)
    corpora = build_all(mixed=not args.no_mixed)
    print(f"corpus dir: {CORPUS_DIR}")
    print(f"cookies: {len(corpora['cookies'])} files")
    for n, path in corpora["longseq"].items():
        print(f"longseq N={n}: {path} ({os.path.getsize(path):,} bytes)")
    if "mixed" in corpora:
        print(f"mixed: {len(corpora['mixed'])} files accepted by deid_fast, "
              f"{len(mixed_rejected())} rejected (see corpus/mixed/MANIFEST.txt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
