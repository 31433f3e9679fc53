"""SPEC §3 bad input: a clear error, and nothing else lost.

Every bad input is checked three ways: with errors="warn" get_identifiers leaves it out
with a WARNING (logger deid_fast) naming the file and the reason, while the seven
dicom-cookies in the same call all come back; with errors="raise" it raises
deid_fast.InvalidDicomError carrying the path, the README's `.kind`, the byte `.offset`
where one applies and a reason; get_fields always raises.  Each call runs under a hang
guard (a worker thread with a join timeout, plus faulthandler as a backstop for a hang
that holds the GIL) - a guard against hangs, not a speed assertion.
"""
from __future__ import annotations

import faulthandler
import logging
import os
import pathlib
import random
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import zlib
from dataclasses import dataclass
from typing import Callable

import deid_data
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

try:
    from . import rawdicom
except ImportError:
    import rawdicom

import deid_fast
from deid_fast import InvalidDicomError, get_fields, get_files, get_identifiers

COOKIES_DIR = os.path.join(os.path.dirname(deid_data.__file__), "data", "dicom-cookies")
COOKIES = [os.path.join(COOKIES_DIR, f"image{i}.dcm") for i in range(1, 8)]
HANG_TIMEOUT = 60.0

# README kinds
UNREADABLE, EMPTY, NO_PREAMBLE, NOT_DICOM = "unreadable", "empty", "no-preamble", "not-dicom"
TRUNCATED, TOO_DEEP, NO_ELEMENTS, UNDECODABLE = "truncated", "too-deep", "no-elements", "undecodable"
# Bytes that are not DICOM at all: the README's `not-dicom`; a scanner reading such bytes as
# an element whose declared length runs past the end may call it `truncated` (SPEC §3 lists
# both as "not DICOM"; which of the two is not pinned down).
NOISE = {NOT_DICOM, TRUNCATED}


# -- the hang guard -----------------------------------------------------------------------


def guarded(fn, *args, timeout=HANG_TIMEOUT, **kwargs):
    """Run fn in a worker thread; fail the test if it has not returned after `timeout` s.
    faulthandler ends the process (with tracebacks) should the call hold the GIL forever."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    faulthandler.dump_traceback_later(timeout * 3, exit=True)
    try:
        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {timeout} s (hang)")
    finally:
        faulthandler.cancel_dump_traceback_later()
    if "error" in box:
        raise box["error"]
    return box.get("value")


# -- builders of bad files --------------------------------------------------------------------


def _random_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _png() -> bytes:
    """A minimal valid PNG: 1x1 grey pixel."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x80")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _pydicom_file(path: pathlib.Path, rows=16, cols=16, **extra) -> bytes:
    """A conformant explicit VR LE file with native pixel data; returns its bytes."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.3001"
    ds.PatientName = "Cut^Somewhere^In^The^Middle^Of^This^Long^Name"
    ds.PatientID = "bad-input"
    ds.Modality = "OT"
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(range(256)) * (rows * cols // 256) + bytes(rows * cols % 256)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


def _header_cut_in_value(tmp: pathlib.Path) -> bytes:
    data = _pydicom_file(tmp / "whole-for-cut.dcm")
    name = b"Cut^Somewhere^In^The^Middle"
    at = data.index(name)
    return data[: at + len(name) // 2]


def _length_past_eof(tmp: pathlib.Path) -> bytes:
    """The header of a good file, then an LT element declaring 1000 bytes with 10 present."""
    body = b"".join([
        rawdicom.element(0x00080018, "UI", "1.2.826.0.1.3680043.8.498.3002"),
        rawdicom.element(0x00100020, "LO", "bad-input"),
        rawdicom.element(0x00204000, "LT", b"0123456789", length=1000),
    ])
    return rawdicom.dicom_file(body, sop_instance="1.2.826.0.1.3680043.8.498.3002")


def _huge_length(tmp: pathlib.Path) -> bytes:
    """An OB element declaring 0xFFFFFFF0 bytes: must not allocate them."""
    body = b"".join([
        rawdicom.element(0x00080018, "UI", "1.2.826.0.1.3680043.8.498.3003"),
        rawdicom.element(0x00100020, "LO", "bad-input"),
        rawdicom.element(0x00420011, "OB", b"%PDF-1.4", length=0xFFFFFFF0),
    ])
    return rawdicom.dicom_file(body, sop_instance="1.2.826.0.1.3680043.8.498.3003")


def _item_length_past_eof(tmp: pathlib.Path) -> bytes:
    """A defined-length item declaring 5000 bytes, with a few present."""
    inner = rawdicom.element(0x00080100, "SH", "CODE")
    body = b"".join([
        rawdicom.element(0x00080018, "UI", "1.2.826.0.1.3680043.8.498.3004"),
        rawdicom.sequence_start(0x00081115),
        rawdicom.item_start(5000),
        inner,
    ])
    return rawdicom.dicom_file(body, sop_instance="1.2.826.0.1.3680043.8.498.3004")


def _sequence_never_closed(tmp: pathlib.Path) -> bytes:
    """An undefined-length sequence whose closed item is followed by the end of file."""
    body = b"".join([
        rawdicom.element(0x00080018, "UI", "1.2.826.0.1.3680043.8.498.3005"),
        rawdicom.element(0x00080060, "CS", "OT"),
        rawdicom.sequence_start(0x00081115),
        rawdicom.item(rawdicom.element(0x00080100, "SH", "CODE")),
    ])
    return rawdicom.dicom_file(body, sop_instance="1.2.826.0.1.3680043.8.498.3005")


def _meta_only(tmp: pathlib.Path) -> bytes:
    """Preamble, DICM and a whole file meta group: no data element at all."""
    return rawdicom.dicom_file(b"")


def _shipped(name: str) -> Callable[[pathlib.Path], bytes]:
    def build(tmp: pathlib.Path) -> bytes:
        return pathlib.Path(get_testdata_file(name)).read_bytes()

    return build


@dataclass
class Bad:
    """A bad input: `build(tmp)` gives its bytes; `kinds` the README kinds it may get;
    `offset` True where a byte offset applies (an int), None where none does (None),
    and "any" where the README leaves it open (int within the file, or None)."""

    name: str
    build: Callable[[pathlib.Path], bytes]
    kinds: set
    offset: object = True


BAD = [
    Bad("empty-file", lambda t: b"", {EMPTY}, "any"),
    Bad("text-file", lambda t: b"Patient notes\nThis file is plain text, not DICOM.\n" * 20, NOISE),
    Bad("png-image", lambda t: _png(), NOISE),
    *[
        Bad(f"random-{seed}-{size}", (lambda s, n: lambda t: _random_bytes(s, n))(seed, size), NOISE)
        for seed, size in ((1, 1), (2, 7), (3, 64), (4, 1000), (5, 70_000))
    ],
    Bad("preamble-dicm-garbage", lambda t: rawdicom.preamble() + _random_bytes(6, 500), NOISE),
    *[
        Bad(f"all-zero-{size}", (lambda n: lambda t: bytes(n))(size), NOISE | {NO_ELEMENTS}, "any")
        for size in (1, 128, 132, 4096)
    ],
    Bad("meta-only-no-elements", _meta_only, {NO_ELEMENTS}, "any"),
    Bad("header-cut-inside-value", _header_cut_in_value, {TRUNCATED}),
    Bad("length-past-eof", _length_past_eof, {TRUNCATED}),
    Bad("huge-length-past-eof", _huge_length, {TRUNCATED}),
    Bad("item-length-past-eof", _item_length_past_eof, {TRUNCATED}),
    Bad("undefined-sequence-never-closed", _sequence_never_closed, {TRUNCATED}),
    Bad("nested-sequences-never-closed", lambda t: rawdicom.deep_nesting(5, closed=False), {TRUNCATED}),
    Bad("nesting-20000-deep", lambda t: rawdicom.deep_nesting(20_000), {TOO_DEEP}),
    Bad("nesting-129-deep", lambda t: rawdicom.deep_nesting(129), {TOO_DEEP}),
    Bad("pydicom-rtplan_truncated", _shipped("rtplan_truncated.dcm"), {TRUNCATED}),
    # SPEC §3 calls no_meta.dcm a truncated header (pydicom reads one element whose length
    # runs past the end); its bytes are a data set shifted by one byte, so a scanner that
    # sees the first bytes form no element says not-dicom: both name the fault.
    Bad("pydicom-no_meta", _shipped("no_meta.dcm"), {TRUNCATED, NOT_DICOM}),
]
UNREADABLE_CASES = ["missing-path", "no-read-permission"]


def _unix_socket(path: pathlib.Path) -> str:
    """A path that exists but cannot be opened for reading, whoever we are."""
    where = str(path)
    if len(where) > 100:  # AF_UNIX path limit
        where = os.path.join(tempfile.mkdtemp(prefix="dfs"), path.name)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(where)
    sock.close()
    return where


def make_bad(tmp_path: pathlib.Path, name: str) -> tuple[str, set, object]:
    """(path, expected kinds, offset rule) of the bad input `name`, created in tmp_path."""
    if name == "missing-path":
        return str(tmp_path / "does-not-exist.dcm"), {UNREADABLE}, None
    if name == "no-read-permission":
        path = tmp_path / "no-permission.dcm"
        path.write_bytes(pathlib.Path(COOKIES[0]).read_bytes())
        path.chmod(0)
        if os.access(path, os.R_OK):
            # root ignores permission bits: use a path that exists but cannot be read
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
            path.unlink()
            return _unix_socket(path), {UNREADABLE}, None
        return str(path), {UNREADABLE}, None
    case = next(c for c in BAD if c.name == name)
    path = tmp_path / f"{name}.dcm"
    path.write_bytes(case.build(tmp_path))
    return str(path), case.kinds, case.offset


ALL_BAD = [c.name for c in BAD] + UNREADABLE_CASES


def _file_size(path: str) -> int:
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def check_error(err: InvalidDicomError, path: str, kinds: set, offset_rule) -> None:
    """SPEC §3 + README: the error's path, kind, offset and message format."""
    assert isinstance(err, deid_fast.InvalidDicomError)
    assert isinstance(err, pydicom.errors.InvalidDicomError)
    assert path in str(err)
    assert str(err.path) == path
    assert err.kind in kinds, (err.kind, kinds, str(err))
    assert isinstance(err.reason, str) and err.reason.strip()
    if offset_rule is None:
        assert err.offset is None, err.offset
    elif offset_rule is True:
        assert type(err.offset) is int, (err.offset, str(err))
    else:
        assert err.offset is None or type(err.offset) is int
    if err.offset is not None and err.kind != NO_PREAMBLE:
        # (no-preamble may point at byte 128, where DICM belongs, in a shorter file)
        assert 0 <= err.offset <= max(_file_size(path), 0), (err.offset, _file_size(path))
    suffix = "" if err.offset is None else f" (at byte {err.offset})"
    assert str(err) == f"{path}: {err.reason}{suffix}"


@pytest.fixture(scope="module")
def cookies_ids():
    """The cookies alone, for comparison: 7 items under cookie-47."""
    ids = get_identifiers(COOKIES)
    assert list(ids) == ["cookie-47"] and len(ids["cookie-47"]) == 7
    return ids


# -- §3 every bad input, three ways -------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_BAD)
def test_spec3_bad_input_raise_mode(tmp_path, name):
    """SPEC §3 errors="raise": InvalidDicomError with the path, the README kind, the offset
    (int where one applies) and the reason; message "<path>: <reason> (at byte <offset>)"."""
    path, kinds, offset_rule = make_bad(tmp_path, name)
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_identifiers, [COOKIES[0], path, COOKIES[1]], errors="raise")
    check_error(info.value, path, kinds, offset_rule)


@pytest.mark.parametrize("name", ALL_BAD)
def test_spec3_bad_input_warn_mode_skips_file_keeps_others(tmp_path, caplog, name, cookies_ids):
    """SPEC §3 errors="warn" (the default): the bad file is left out with one WARNING on
    logger deid_fast naming the file and the reason; every good file is still returned."""
    path, kinds, offset_rule = make_bad(tmp_path, name)
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_fields, path)
    reason = info.value.reason
    inputs = COOKIES[:3] + [path] + COOKIES[3:]
    caplog.set_level(logging.WARNING, logger="deid_fast")
    ids = guarded(get_identifiers, inputs)
    assert ids == cookies_ids
    assert list(ids["cookie-47"]) == list(cookies_ids["cookie-47"])
    warned = [r for r in caplog.records if r.name.startswith("deid_fast") and r.levelno == logging.WARNING]
    naming = [r.getMessage() for r in warned if path in r.getMessage()]
    assert len(naming) == 1, [r.getMessage() for r in warned]
    assert reason in naming[0]
    assert len(warned) == 1, [r.getMessage() for r in warned]
    # explicit errors="warn" is the same
    caplog.clear()
    assert guarded(get_identifiers, inputs, errors="warn") == cookies_ids


@pytest.mark.parametrize("name", ALL_BAD)
def test_spec3_bad_input_get_fields_always_raises(tmp_path, name):
    """SPEC §1/§3: get_fields on a bad file always raises InvalidDicomError."""
    path, kinds, offset_rule = make_bad(tmp_path, name)
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_fields, path)
    check_error(info.value, path, kinds, offset_rule)


@pytest.mark.parametrize("name", ALL_BAD)
def test_spec3_get_files_check_drops_bad_input(tmp_path, name):
    """SPEC §1/§3 get_files(check=True) yields only what the scanner accepts as DICOM: none
    of the bad inputs (force=True too, which reads files without preamble)."""
    path, _, _ = make_bad(tmp_path, name)
    for force in (False, True):
        got = guarded(lambda: list(get_files([COOKIES[0], path, COOKIES[1]], force=force)))
        assert got == [COOKIES[0], COOKIES[1]], (force, got)


def test_spec3_raise_mode_first_bad_file_raises(tmp_path):
    """SPEC §3: with errors="raise" the first bad file in input order raises."""
    first, _, _ = make_bad(tmp_path, "header-cut-inside-value")
    second, _, _ = make_bad(tmp_path, "missing-path")
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_identifiers, [COOKIES[0], first, second], errors="raise")
    assert info.value.path == first
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_identifiers, [COOKIES[0], second, first], errors="raise")
    assert info.value.path == second


def test_spec3_warn_mode_several_bad_files_each_warned(tmp_path, caplog, cookies_ids):
    """SPEC §3: several bad files in one call: each left out with its own WARNING."""
    bad = [make_bad(tmp_path, n)[0] for n in ("empty-file", "text-file", "nesting-129-deep", "missing-path")]
    caplog.set_level(logging.WARNING, logger="deid_fast")
    ids = guarded(get_identifiers, bad[:2] + COOKIES + bad[2:])
    assert ids == cookies_ids
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for p in bad:
        assert sum(p in m for m in messages) == 1, (p, messages)


def test_spec3_folder_with_bad_file_reported_not_dropped(tmp_path, caplog):
    """README: get_identifiers walks a folder like get_files(check=False): a non-DICOM file
    in it is reported (a WARNING, or InvalidDicomError with errors="raise")."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = folder / "a.dcm"
    good.write_bytes(pathlib.Path(COOKIES[2]).read_bytes())
    bad = folder / "b.txt"
    bad.write_text("not DICOM\n" * 10)
    caplog.set_level(logging.WARNING, logger="deid_fast")
    ids = guarded(get_identifiers, str(folder))
    assert len(ids["cookie-47"]) == 1
    assert any(str(bad) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_identifiers, str(folder), errors="raise")
    assert info.value.path == str(bad)


def test_spec3_folder_given_to_get_fields_is_unreadable(tmp_path):
    """README kind `unreadable` includes "a folder": get_fields takes one file, so a folder
    path raises, offset None."""
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_fields, str(folder))
    check_error(info.value, str(folder), {UNREADABLE}, None)


# -- §3 depth bound -----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 100, 128])
def test_spec3_nesting_within_bound_accepted(tmp_path, depth):
    """SPEC §3 + README: nesting up to the bound (128 sequence levels, the leaf at depth
    128) is accepted, and flattened by R7 (one item per level: no indices)."""
    path = tmp_path / f"deep{depth}.dcm"
    path.write_bytes(rawdicom.deep_nesting(depth))
    fields = guarded(get_fields, str(path))
    assert fields == {
        "SOPInstanceUID": rawdicom.DEEP_SOP_INSTANCE,
        rawdicom.deep_nesting_key(depth): rawdicom.LEAF_VALUE,
        "PatientID": rawdicom.DEEP_PATIENT_ID,
    }
    unexpanded = guarded(get_fields, str(path), expand_sequences=False)
    assert unexpanded[rawdicom.NEST_SEQUENCE_KEYWORD] == rawdicom.deep_nesting_unexpanded(depth)
    ids = guarded(get_identifiers, [str(path)], errors="raise")
    assert ids == {rawdicom.DEEP_PATIENT_ID: {rawdicom.DEEP_SOP_INSTANCE: fields}}


def test_spec3_max_depth_configurable_lower(tmp_path, caplog):
    """SPEC §3 + README: max_depth is configurable in get_identifiers, get_fields, get_files:
    a 100-deep file is too deep for max_depth=50 and fine at max_depth=100."""
    path = tmp_path / "deep100.dcm"
    path.write_bytes(rawdicom.deep_nesting(100))
    p = str(path)
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_fields, p, max_depth=50)
    check_error(info.value, p, {TOO_DEEP}, True)
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_identifiers, [p], errors="raise", max_depth=99)
    check_error(info.value, p, {TOO_DEEP}, True)
    assert guarded(get_fields, p, max_depth=100)[rawdicom.deep_nesting_key(100)] == rawdicom.LEAF_VALUE
    assert guarded(lambda: list(get_files([p], max_depth=50))) == []
    assert guarded(lambda: list(get_files([p], max_depth=100))) == [p]
    caplog.set_level(logging.WARNING, logger="deid_fast")
    assert guarded(get_identifiers, [p], max_depth=50) == {}
    assert any(p in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_spec3_max_depth_configurable_higher(tmp_path):
    """SPEC §3: raising max_depth accepts a file deeper than the default bound."""
    path = tmp_path / "deep150.dcm"
    path.write_bytes(rawdicom.deep_nesting(150))
    p = str(path)
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_fields, p)
    check_error(info.value, p, {TOO_DEEP}, True)
    fields = guarded(get_fields, p, max_depth=150)
    assert fields[rawdicom.deep_nesting_key(150)] == rawdicom.LEAF_VALUE
    assert guarded(lambda: list(get_files([p]))) == []
    assert guarded(lambda: list(get_files([p], max_depth=150))) == [p]


def run_child(code: str, cwd) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter that imports the same deid_fast as this process
    (installed, or built in place), from a folder that holds no other copy."""
    home = os.path.dirname(os.path.dirname(os.path.abspath(deid_fast.__file__)))
    prelude = f"import sys\nsys.path.insert(0, {home!r})\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                          text=True, timeout=300, cwd=str(cwd))


def test_spec3_nesting_20000_deep_in_child_process_no_crash(tmp_path):
    """SPEC §3: a 20,000-deep nesting is a clean too-deep error: no interpreter crash, no
    RecursionError, also with max_depth raised past it (checked in a child process so a
    crash shows as a failure with its exit status)."""
    path = tmp_path / "deep20000.dcm"
    path.write_bytes(rawdicom.deep_nesting(20_000))
    code = textwrap.dedent(
        f"""
        import deid_fast
        p = {str(path)!r}
        for kwargs in ({{}}, {{"expand_sequences": False}}):
            try:
                deid_fast.get_fields(p, **kwargs)
            except deid_fast.InvalidDicomError as e:
                print("KIND", e.kind, type(e.offset).__name__)
            except RecursionError:
                print("RECURSION")
        try:
            r = deid_fast.get_fields(p, max_depth=30000)
            print("BIG", "ok", len(r))
        except deid_fast.InvalidDicomError as e:
            print("BIG", "error", e.kind)
        except RecursionError:
            print("BIG", "RECURSION")
        """
    )
    out = run_child(code, tmp_path)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    lines = out.stdout.splitlines()
    assert lines[:2] == ["KIND too-deep int", "KIND too-deep int"], out.stdout + out.stderr[-2000:]
    # With the bound raised the file is well formed: read it, or refuse it with a named
    # reason, but never a RecursionError or a crash.
    assert lines[2].startswith("BIG ") and "RECURSION" not in lines[2], lines


def test_spec3_no_unbounded_allocation_from_length_fields(tmp_path):
    """SPEC §3: a length field never causes an allocation of that size: under an address
    space limit of the current size + 1 GiB, files declaring ~4 GiB values, items and
    sequences are refused as truncated (not MemoryError); a file meta group length of
    ~4 GiB (a value, not an element length: pydicom reads such files) causes no
    allocation either."""
    sop = "1.2.826.0.1.3680043.8.498.3100"
    head = rawdicom.element(0x00080018, "UI", sop)
    huge = 0xFFFFFFF0
    files = {
        "value-ob": rawdicom.dicom_file(head + rawdicom.element(0x00420011, "OB", b"x", length=huge), sop_instance=sop),
        "value-ut": rawdicom.dicom_file(head + rawdicom.element(0x00400280, "UT", b"x", length=huge), sop_instance=sop),
        "value-lo-implicit": rawdicom.dicom_file(
            rawdicom.element(0x00080018, "UI", sop, explicit=False)
            + rawdicom.element(0x00100020, "LO", b"x", explicit=False, length=huge),
            transfer_syntax=rawdicom.IMPLICIT_VR_LITTLE, sop_instance=sop),
        "sequence": rawdicom.dicom_file(head + rawdicom.sequence_start(0x00081115, huge)
                                        + rawdicom.item(rawdicom.element(0x00080100, "SH", "C")), sop_instance=sop),
        "item": rawdicom.dicom_file(head + rawdicom.sequence_start(0x00081115) + rawdicom.item_start(huge)
                                    + rawdicom.element(0x00080100, "SH", "C"), sop_instance=sop),
        "meta-group": rawdicom.preamble() + rawdicom.file_meta(group_length=huge) + head,
    }
    paths = {}
    for name, data in files.items():
        p = tmp_path / f"{name}.dcm"
        p.write_bytes(data)
        paths[name] = str(p)
    code = textwrap.dedent(
        f"""
        import resource
        import deid_fast
        def vmsize():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        limit = vmsize() + (1 << 30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        for name, p in {paths!r}.items():
            try:
                deid_fast.get_fields(p)
                print(name, "ACCEPTED")
            except deid_fast.InvalidDicomError as e:
                print(name, e.kind)
            except MemoryError:
                print(name, "MemoryError")
        """
    )
    out = run_child(code, tmp_path)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    got = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    expected = {name: TRUNCATED for name in files}
    assert got.pop("meta-group") in {"ACCEPTED", TRUNCATED}, out.stdout
    del expected["meta-group"]
    assert got == expected, out.stdout + out.stderr[-2000:]


# -- §3 never a partial header passed off as complete ------------------------------------------


def _cut_sweep_file():
    """A file built element by element: returns (bytes, [(end offset, keyword)] of the
    top-level data set elements, start of the file meta, start of pixel data)."""
    top = [
        ("SpecificCharacterSet", rawdicom.element(0x00080005, "CS", "ISO_IR 100")),
        ("SOPInstanceUID", rawdicom.element(0x00080018, "UI", "1.2.826.0.1.3680043.8.498.3300")),
        ("StudyDate", rawdicom.element(0x00080020, "DA", "20240102")),
        ("ReferencedSeriesSequence", rawdicom.sequence(0x00081115, [
            rawdicom.element(0x0020000E, "UI", "1.2.826.0.1.3680043.8.498.3301"),
            rawdicom.element(0x0020000E, "UI", "1.2.826.0.1.3680043.8.498.3302"),
        ])),
        ("PatientName", rawdicom.element(0x00100010, "PN", "Sweep^Every^Byte")),
        ("PatientID", rawdicom.element(0x00100020, "LO", "sweep")),
        ("OtherPatientIDsSequence", rawdicom.sequence(0x00101002, [
            rawdicom.element(0x00100020, "LO", "OTHER-ID")], undefined=False, undefined_items=False)),
        ("StudyInstanceUID", rawdicom.element(0x0020000D, "UI", "1.2.826.0.1.3680043.8.498.3303")),
        ("ImageComments", rawdicom.element(0x00204000, "LT", "a comment that spans some bytes")),
    ]
    head = rawdicom.preamble() + rawdicom.file_meta(sop_instance="1.2.826.0.1.3680043.8.498.3300")
    ends, offset = [], len(head)
    for keyword, data in top:
        offset += len(data)
        ends.append((offset, keyword))
    pixels = rawdicom.element(0x7FE00010, "OB", bytes(range(64)))
    data = head + b"".join(d for _, d in top) + pixels
    return data, ends, 132, ends[-1][0]


def test_spec3_every_cut_of_the_header(tmp_path):
    """SPEC §3 "never a partial header passed off as complete": the file cut at every byte
    of its header is rejected, except where the cut falls between two top-level elements
    (then it is a shorter, whole header: exactly the fields of the elements kept), and a cut
    inside the pixel data, which leaves the header whole (R2)."""
    data, ends, meta_start, pixel_start = _cut_sweep_file()
    full = tmp_path / "full.dcm"
    full.write_bytes(data)
    whole = guarded(get_fields, str(full))
    assert whole["PatientName"] == "Sweep^Every^Byte"
    assert whole["ReferencedSeriesSequence_1_SeriesInstanceUID"] == "1.2.826.0.1.3680043.8.498.3302"
    assert whole["OtherPatientIDsSequence_PatientID"] == "OTHER-ID"
    boundary = {end: [kw for e, kw in ends if e <= end] for end, _ in ends}
    first_element = ends[0][0] - len(rawdicom.element(0x00080005, "CS", "ISO_IR 100"))
    positions = list(range(1, pixel_start + 1)) + [pixel_start + 12 + n for n in (1, 32, 63)]
    wrong = []

    def sweep():
        cut = tmp_path / "cut.dcm"
        for p in positions:
            cut.write_bytes(data[:p])
            try:
                got = get_fields(str(cut))
            except InvalidDicomError as e:
                got = e
            if p > pixel_start:
                expected = whole
            elif p in boundary:
                keep = set(boundary[p])
                expected = {k: v for k, v in whole.items() if k.split("_")[0] in keep}
            else:
                expected = None  # must be rejected
            if expected is None:
                if not isinstance(got, InvalidDicomError):
                    wrong.append((p, "accepted", got))
                elif p >= meta_start and got.kind not in ({TRUNCATED, NO_ELEMENTS} if p <= first_element else {TRUNCATED}):
                    wrong.append((p, got.kind, str(got)))
            elif got != expected:
                wrong.append((p, "expected fields", got))

    guarded(sweep)
    assert not wrong, (f"{len(wrong)} wrong cuts at {[(p, k) for p, k, _ in wrong]}; "
                       f"first ones: {wrong[:3]}")


# -- §2 R2: a file whose pixel data is cut short is fine ---------------------------------------


def test_r2_spec3_pixel_data_cut_short_native(tmp_path):
    """R2/§3: native pixel data cut short, header whole: accepted, fields equal to those of
    the uncut file."""
    whole = tmp_path / "whole.dcm"
    data = _pydicom_file(whole, rows=64, cols=64)
    at = data.rindex(b"\xe0\x7f\x10\x00")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: at + 12 + 100])  # element header + 100 of 4096 bytes
    expected = guarded(get_fields, str(whole))
    assert expected["PatientID"] == "bad-input" and "PixelData" not in expected
    assert guarded(get_fields, str(cut)) == expected
    ids = guarded(get_identifiers, [str(cut)], errors="raise")
    assert ids == {"bad-input": {"1.2.826.0.1.3680043.8.498.3001": expected}}
    assert guarded(lambda: list(get_files([str(cut)]))) == [str(cut)]


def test_r2_spec3_pixel_data_cut_short_encapsulated(tmp_path):
    """R2/§3: a dicom-cookie (encapsulated JPEG, undefined length) cut 200 bytes into its
    pixel data: accepted, fields equal to those of the whole file."""
    data = pathlib.Path(COOKIES[2]).read_bytes()
    at = data.rindex(b"\xe0\x7f\x10\x00")
    cut = tmp_path / "cookie-cut.dcm"
    cut.write_bytes(data[: at + 200])
    expected = guarded(get_fields, COOKIES[2])
    assert guarded(get_fields, str(cut)) == expected
    assert guarded(get_identifiers, [str(cut)], errors="raise") == {
        "cookie-47": {expected["SOPInstanceUID"]: expected}
    }


def test_r2_spec3_pixel_data_element_header_only(tmp_path):
    """R2/§3: the file ends right after the pixel data element's header: the header is
    whole, so the file is accepted."""
    whole = tmp_path / "whole.dcm"
    data = _pydicom_file(whole)
    at = data.rindex(b"\xe0\x7f\x10\x00")
    cut = tmp_path / "cut-at-pixels.dcm"
    cut.write_bytes(data[: at + 12])
    assert guarded(get_fields, str(cut)) == guarded(get_fields, str(whole))


# -- §3 force ------------------------------------------------------------------------------------


def _no_preamble(tmp_path) -> tuple[str, str]:
    """The same data set twice: a conformant file and the bare implicit VR LE data set."""
    elements = [
        (0x00080016, "UI", "1.2.840.10008.5.1.4.1.1.7"),
        (0x00080018, "UI", "1.2.826.0.1.3680043.8.498.3200"),
        (0x00080060, "CS", "OT"),
        (0x00100010, "PN", "Bare^Data^Set"),
        (0x00100020, "LO", "nopreamble"),
    ]
    implicit = b"".join(rawdicom.element(t, vr, v, explicit=False) for t, vr, v in elements)
    bare = tmp_path / "bare.dcm"
    bare.write_bytes(implicit)
    full = tmp_path / "full.dcm"
    full.write_bytes(rawdicom.dicom_file(implicit, transfer_syntax=rawdicom.IMPLICIT_VR_LITTLE,
                                         sop_instance="1.2.826.0.1.3680043.8.498.3200"))
    return str(bare), str(full)


def test_spec3_force_false_rejects_no_preamble(tmp_path, caplog):
    """SPEC §3: force=False rejects a file without the 128-byte preamble and DICM
    (kind no-preamble); with errors="warn" it is left out with a WARNING."""
    bare, full = _no_preamble(tmp_path)
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_fields, bare, force=False)
    check_error(info.value, bare, {NO_PREAMBLE}, "any")
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_identifiers, [full, bare], force=False, errors="raise")
    check_error(info.value, bare, {NO_PREAMBLE}, "any")
    caplog.set_level(logging.WARNING, logger="deid_fast")
    ids = guarded(get_identifiers, [bare, full], force=False)
    assert ids == guarded(get_identifiers, [full], force=False)
    assert any(bare in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_spec3_force_true_reads_no_preamble(tmp_path):
    """SPEC §3: force=True (the default) reads a file without preamble, detecting the
    encoding (implicit VR LE here), with the same fields as the conformant file."""
    bare, full = _no_preamble(tmp_path)
    expected = guarded(get_fields, full)
    assert expected["PatientName"] == "Bare^Data^Set" and expected["PatientID"] == "nopreamble"
    assert guarded(get_fields, bare) == expected
    assert guarded(get_fields, bare, force=True) == expected
    assert guarded(get_identifiers, [bare], errors="raise") == {
        "nopreamble": {"1.2.826.0.1.3680043.8.498.3200": expected}
    }


def test_spec3_force_true_explicit_vr_without_preamble(tmp_path):
    """SPEC §3: force=True also detects explicit VR little endian without preamble."""
    elements = [
        (0x00080018, "UI", "1.2.826.0.1.3680043.8.498.3201"),
        (0x00100010, "PN", "Explicit^Bare"),
        (0x00100020, "LO", "explicit-bare"),
    ]
    body = b"".join(rawdicom.element(t, vr, v) for t, vr, v in elements)
    bare = tmp_path / "explicit-bare.dcm"
    bare.write_bytes(body)
    full = tmp_path / "explicit-full.dcm"
    full.write_bytes(rawdicom.dicom_file(body, sop_instance="1.2.826.0.1.3680043.8.498.3201"))
    assert guarded(get_fields, str(bare)) == guarded(get_fields, str(full))
    with pytest.raises(InvalidDicomError) as info:
        guarded(get_fields, str(bare), force=False)
    assert info.value.kind == NO_PREAMBLE


def test_spec3_force_true_big_endian_without_preamble(tmp_path):
    """SPEC §3: force=True detects explicit VR big endian in a file without preamble (as
    pydicom does: a first group that reads >= 1024 little endian): same fields as the file
    whose meta says Explicit VR Big Endian."""
    elements = [
        rawdicom.element(0x00080018, "UI", "1.2.826.0.1.3680043.8.498.3202", little=False),
        rawdicom.element(0x00100010, "PN", "Big^Endian", little=False),
        rawdicom.element(0x00100020, "LO", "big-bare", little=False),
        rawdicom.us(0x00280010, 512, little=False),
        rawdicom.us(0x00280011, 258, little=False),
    ]
    body = b"".join(elements)
    bare = tmp_path / "big-bare.dcm"
    bare.write_bytes(body)
    full = tmp_path / "big-full.dcm"
    full.write_bytes(rawdicom.dicom_file(body, transfer_syntax=rawdicom.EXPLICIT_VR_BIG,
                                         sop_instance="1.2.826.0.1.3680043.8.498.3202"))
    expected = guarded(get_fields, str(full))
    assert expected["Rows"] == 512 and expected["Columns"] == 258
    assert expected["PatientName"] == "Big^Endian"
    assert guarded(get_fields, str(bare)) == expected


def test_spec3_data_set_encoded_otherwise_than_transfer_syntax(tmp_path):
    """SPEC §3 (last point) + R9: meta says explicit VR little endian, the data set is
    implicit VR: read as pydicom reads it (it switches, with a warning that must not
    surface as a Python warning)."""
    import warnings

    sop = "1.2.826.0.1.3680043.8.498.3203"
    body = b"".join([
        rawdicom.element(0x00080018, "UI", sop, explicit=False),
        rawdicom.element(0x00080060, "CS", "OT", explicit=False),
        rawdicom.element(0x00100010, "PN", "Mis^Encoded", explicit=False),
        rawdicom.element(0x00100020, "LO", "misencoded", explicit=False),
        rawdicom.element(0x00280010, "US", struct.pack("<H", 300), explicit=False),
    ])
    path = tmp_path / "mis.dcm"
    path.write_bytes(rawdicom.dicom_file(body, transfer_syntax=rawdicom.EXPLICIT_VR_LITTLE, sop_instance=sop))
    with warnings.catch_warnings(record=True) as pyd:
        warnings.simplefilter("always")
        ref = pydicom.dcmread(str(path))
        expected = {el.keyword: (el.value if type(el.value) is int else str(el.value)) for el in ref}
    assert pyd, "pydicom does not warn about this input"
    assert expected["Rows"] == 300 and expected["PatientName"] == "Mis^Encoded"
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fields = guarded(get_fields, str(path))
    assert fields == expected
    assert [str(w.message) for w in rec] == []
