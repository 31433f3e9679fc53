"""`deid-fast show` (issue 14, point 1): one file's header as a person reads it, with the values
get_fields reports."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

import pydicom
import pytest

import deid_fast
from deid_fast import jsontext
from deid_fast.show import header_lines, value_text

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helper modules beside this file
from corpus import shipped_files  # noqa: E402
from generate import generate_all  # noqa: E402

SCRIPT = Path(sys.executable).with_name("deid-fast")
SHIPPED = shipped_files()
BY_NAME = {os.path.basename(path): path for path in SHIPPED}
ANSI = re.compile("\033\\[[0-9;]*m")


def readable(paths):
    for path in paths:
        try:
            deid_fast.get_fields(path)
        except deid_fast.InvalidDicomError:
            continue
        yield path


def line_of(lines, tag):
    prefix = f"({tag >> 16:04X},{tag & 0xFFFF:04X}) "
    found = [line for line in lines if line.startswith(prefix)]
    assert len(found) == 1, (prefix, found)
    return found[0]


@pytest.mark.parametrize("path", list(readable(SHIPPED)), ids=os.path.basename)
def test_every_top_level_value_is_the_one_get_fields_reports(path):
    """Each top-level element of the file meta and data set has its line, whose value is the
    text of get_fields' value for it (the native engine's; show reads through pydicom)."""
    lines = header_lines(path)
    fields = deid_fast.get_fields(path, include_private=True, include_file_meta=True,
                                  expand_sequences=False, skip_fields=[])
    checked = 0
    for name, value in fields.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            continue                                     # a sequence: its own line says items
        tag = pydicom.datadict.tag_for_keyword(name) if not name.startswith("(") else \
            int(name[1:5] + name[6:10], 16)
        if tag is None or (tag >> 16) == 0x0002 and name not in fields:
            continue
        candidates = [line for line in lines if line.startswith(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) ")]
        assert candidates, (name, path)
        assert any(f" {value_text(value)}  # " in line for line in candidates), (name, candidates)
        checked += 1
    assert checked or not fields


def test_show_reads_like_dcmdump():
    lines = header_lines(BY_NAME["rtplan.dcm"])
    assert lines[0].startswith("# ") and "implicit VR little endian" in lines[0]
    assert lines[1] == "# file meta" and "# data set" in lines
    assert line_of(lines, 0x00100010) == "(0010,0010) PN [Last^First^mid^pre]  # PatientName"
    assert line_of(lines, 0x300A0010) == "(300A,0010) SQ 2 items  # DoseReferenceSequence"
    item = lines.index("  (FFFE,E000) item 2 of 2")
    assert lines[item + 1] == "    (300A,0012) IS 2  # DoseReferenceNumber"
    ct = header_lines(BY_NAME["CT_small.dcm"])
    assert line_of(ct, 0x00091001).endswith("# private 'GEMS_IDEN_01' (0009,xx01) [Full fidelity]")
    assert line_of(ct, 0x00090010).endswith("# private creator")
    assert ct[-1].startswith("(7FE0,0010)") and "not read" in ct[-1]


@pytest.mark.parametrize("value,text", [
    ("abc", "[abc]"), (["a", "b"], "[a\\b] (2 values)"), (3, "3"), ([1.5, -2.0], "1.5\\-2.0 (2 values)"),
    (b"\x00\x01", "<2 bytes: 00 01>"), (b"", "<0 bytes>"), ("", "(no value)"), (None, "(no value)"),
    ("x" * 100, "[" + "x" * 64 + "... (100 chars)]"), ("a\nb", "[a\\nb]"),
    (bytes(range(20)), "<20 bytes: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f ...>"),
])
def test_values_on_one_line(value, text):
    assert value_text(value) == text


def test_named_fields_and_paths():
    lines = header_lines(BY_NAME["rtplan.dcm"], ["PatientName", "300a,0010",
                                                "DoseReferenceSequence[1].DoseReferenceNumber",
                                                "DoseReferenceSequence[1]",
                                                "DoseReferenceSequence[5].DoseReferenceNumber",
                                                "TransferSyntaxUID"])
    assert lines[1] == "(0010,0010) PN [Last^First^mid^pre]  # PatientName"
    assert lines[2] == "(300A,0010) SQ 2 items  # DoseReferenceSequence"
    body = lines[3:]
    assert "(300A,0012) IS 2  # DoseReferenceNumber" in body
    assert "# DoseReferenceSequence[1]: an item" in body
    assert "# DoseReferenceSequence[5].DoseReferenceNumber: not in this file" in body
    assert body[-1] == "(0002,0010) UI [1.2.840.10008.1.2]  # TransferSyntaxUID"
    with pytest.raises(ValueError, match="did you mean PatientName"):
        header_lines(BY_NAME["rtplan.dcm"], ["PatientNme"])
    every = header_lines(BY_NAME["rtplan.dcm"], ["DoseReferenceSequence.DoseReferenceNumber"])
    assert every[1:] == ["(300A,0012) IS 1  # DoseReferenceNumber",
                         "(300A,0012) IS 2  # DoseReferenceNumber"]


def test_deep_nesting_is_no_recursion(tmp_path):
    generated = generate_all(tmp_path)
    lines = header_lines(generated["deep_nesting"])
    assert max(len(line) - len(line.lstrip()) for line in lines) > 100


def run(*args, status=0, **kwargs):
    done = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, timeout=120,
                          **kwargs)
    assert done.returncode == status, done.stderr.decode()[-2000:]
    return done


def test_the_command_prints_without_colour_when_piped():
    done = run("show", BY_NAME["rtplan.dcm"])
    text = done.stdout.decode()
    assert not ANSI.search(text)
    assert text.splitlines() == header_lines(BY_NAME["rtplan.dcm"])
    coloured = run("show", BY_NAME["rtplan.dcm"], "--color", "always").stdout.decode()
    assert ANSI.search(coloured) and ANSI.sub("", coloured) == text


@pytest.mark.parametrize("no_color", [False, True])
def test_colour_on_a_terminal_unless_no_color(no_color):
    controller, terminal = pty.openpty()
    chunks = []
    reader = threading.Thread(target=lambda: _drain(controller, chunks), daemon=True)
    reader.start()
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    try:
        done = subprocess.run([str(SCRIPT), "show", BY_NAME["CT_small.dcm"]], stdout=terminal,
                              stderr=subprocess.PIPE, timeout=120, env=env)
    finally:
        os.close(terminal)
    reader.join(10)
    os.close(controller)
    assert done.returncode == 0
    output = b"".join(chunks).decode()
    assert "(0010,0010)" in output
    assert bool(ANSI.search(output)) is not no_color


def _drain(descriptor, chunks):
    while True:
        try:
            data = os.read(descriptor, 65536)
        except OSError:
            return
        if not data:
            return
        chunks.append(data)


def test_json_is_the_fields_dict():
    path = BY_NAME["CT_small.dcm"]
    done = run("show", path, "--json")
    assert json.loads(done.stdout) == json.loads(jsontext.dumps(deid_fast.get_fields(path)))
    picked = json.loads(run("show", BY_NAME["rtplan.dcm"], "--json", "PatientID",
                            "DoseReferenceSequence[1].DoseReferenceNumber", "StudyTime").stdout)
    assert picked == deid_fast.get_fields(BY_NAME["rtplan.dcm"], fields=[
        "PatientID", "DoseReferenceSequence[1].DoseReferenceNumber", "StudyTime"])
    assert picked == {"PatientID": "id00001", "DoseReferenceSequence_1_DoseReferenceNumber": 2,
                      "StudyTime": "153557"}


def test_what_is_not_dicom_is_an_error_naming_it(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM")
    done = run("show", text, status=1)
    assert str(text) in done.stderr.decode() and "[not-dicom]" in done.stderr.decode()
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    done = run("show", fifo, status=1)                      # never opened: no hang
    assert "named pipe" in done.stderr.decode()
    done = run("show", BY_NAME["rtplan.dcm"], "PatientNme", status=2)
    assert "did you mean PatientName?" in done.stderr.decode()


def test_a_value_cannot_drive_the_terminal(tmp_path):
    """Control characters, line separators and bidirectional overrides in a value (or a private
    creator) are shown escaped, never sent to the terminal as they are."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID = "1.2.3.4"
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.PatientName = "evil\x1b[2J\x1b]0;owned\x07^name\u202egnp.exe"
    dataset.PatientID = "a\nb\rc\x00"
    dataset.add_new(0x00090010, "LO", "CREATOR\x1b[31m")
    dataset.add_new(0x00091001, "LO", "x")
    path = tmp_path / "evil.dcm"
    dataset.save_as(path, enforce_file_format=True)
    done = run("show", path, "--color", "always")
    text = done.stdout.decode()
    assert "\x1b[2J" not in text and "\x1b]0" not in text and "\x07" not in text
    assert "\u202e" not in text and "\x00" not in text and "\x1b[31m" not in text
    assert "\\x1b[2J" in text and "\\u202e" in text and "a\\nb\\rc" in text
    assert "CREATOR\\x1b[31m" in text
    assert len(text.splitlines()) == len(header_lines(str(path)))
