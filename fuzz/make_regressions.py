"""Writes small hand-made reproducers of the fuzzing findings to fuzz/regressions/ (see README.md).

Each is a minimal explicit-VR little-endian file: 128-byte preamble, DICM, a file meta group,
then a few data set elements. Usage: python fuzz/make_regressions.py
"""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regressions")
EXPLICIT_LE = b"1.2.840.10008.1.2.1\x00"


def element(group, elem, vr, value):
    if len(value) % 2:
        value += b"\x00" if vr == b"UI" else b" "
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def raw_element(group, elem, vr, value):      # no padding: odd lengths kept
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def file_meta(group_length=None):
    body = element(2, 0x0010, b"UI", EXPLICIT_LE)
    if group_length is None:
        group_length = element(2, 0x0000, b"UL", struct.pack("<I", len(body)))
    return b"\x00" * 128 + b"DICM" + group_length + body


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as handle:
        handle.write(data)
    print(f"{name}: {len(data)} bytes")


def main():
    os.makedirs(HERE, exist_ok=True)
    # 1. UI value with leading / trailing whitespace other than a trailing space: pydicom's UID()
    #    str.strip()s it, the native decoder only rstrips "\0 ".
    write("ui-leading-newline.dcm",
          file_meta() + element(0x0008, 0x0018, b"UI", b"1.2.3.4")
          + element(0x0020, 0x000D, b"UI", b"\n1.2.3.4"))
    write("ui-trailing-tab.dcm",
          file_meta() + element(0x0008, 0x0018, b"UI", b"1.2.3.4")
          + element(0x0020, 0x000D, b"UI", b"1.2.3.4\t"))
    #    ... and a UI value of whitespace only is empty for pydicom (no field), not for native.
    write("ui-only-vertical-tab.dcm",
          file_meta() + element(0x0008, 0x0018, b"UI", b"1.2.3.4")
          + element(0x0020, 0x000D, b"UI", b"\x0b\x00"))
    # 2. file meta group length (0002,0000) UL whose length is not a multiple of 4: pydicom
    #    (and the pydicom engine) cannot decode it; the native engine reads the data set anyway
    #    when include_file_meta=False.
    write("meta-group-length-odd.dcm",
          file_meta(raw_element(2, 0x0000, b"UL", b"\x1a\x00\x00"))
          + element(0x0008, 0x0018, b"UI", b"1.2.3.4") + element(0x0010, 0x0010, b"PN", b"Doe^John"))
    write("meta-group-length-unknown-vr.dcm",
          file_meta(raw_element(2, 0x0000, b"QL", b"\x1a\x00\x00\x00"))
          + element(0x0008, 0x0018, b"UI", b"1.2.3.4") + element(0x0010, 0x0010, b"PN", b"Doe^John"))
    #    ... and with VR UN (pydicom replaces UN by the dictionary's UL, then cannot decode 2 bytes).
    write("meta-group-length-un-2-bytes.dcm",
          b"\x00" * 128 + b"DICM" + struct.pack("<HH2sHI", 2, 0, b"UN", 0, 2) + b"\x1c\x00"
          + element(2, 0x0010, b"UI", EXPLICIT_LE)
          + element(0x0008, 0x0018, b"UI", b"1.2.3.4") + element(0x0010, 0x0010, b"PN", b"Doe^John"))
    # 3. ISO 2022 escape sequences in text of the default character set (no (0008,0005)):
    #    pydicom's decoder interprets/removes them, the native decoder keeps them as latin-1.
    write("default-charset-escape-pn.dcm",
          file_meta() + element(0x0008, 0x0018, b"UI", b"1.2.3.4")
          + element(0x0008, 0x1070, b"PN", b"Doe^John\x1b(B"))
    write("default-charset-escape-lo.dcm",
          file_meta() + element(0x0008, 0x0018, b"UI", b"1.2.3.4")
          + element(0x0010, 0x0020, b"LO", b"\x1b(BID123"))
    #    ... the same with (0008,0005) = ISO_IR 192 (UTF-8).
    write("utf8-escape-sh.dcm",
          file_meta() + element(0x0008, 0x0005, b"CS", b"ISO_IR 192")
          + element(0x0008, 0x0018, b"UI", b"1.2.3.4") + element(0x0008, 0x1010, b"SH", b"genie\x1b(B"))

    # 4. (from the fuzzer) the data set starts with a group 0001 element, then a group 0002
    #    text element, then (0008,0005) = ISO_IR 192: pydicom decodes the group 0002 element in
    #    UTF-8 (with replacement characters), the native engine as latin-1. (With a group 0000
    #    element first instead, both engines agree.)
    write("group0001-then-group0002-in-dataset-utf8.dcm",
          file_meta() + element(0x0001, 0x0012, b"UI", b"1.2")
          + element(0x0002, 0x0013, b"SH", b"\xb3\xad\xa0\xa9B15A")
          + element(0x0008, 0x0005, b"CS", b"ISO_IR 192") + element(0x0008, 0x0018, b"UI", b"1.2.3.4"))

    # 5. (from the fuzzer, on the fixed code of 37a228c) (0008,0005) with VR PN: pydicom's
    #    read_dataset calls convert_encodings(PersonName) -> TypeError, so plain pydicom and the
    #    pydicom engine reject the file; the native engine reads it.
    write("charset-with-vr-pn.dcm",
          file_meta() + element(0x0008, 0x0005, b"PN", b"ISO_IR 100")
          + element(0x0008, 0x0018, b"UI", b"1.2.3.4") + element(0x0010, 0x0010, b"PN", b"Doe^John"))

    # 6. (from the fuzzer, on the code of 55730a3) an item delimiter (FFFE,E00D)
    #    whose length field starts with a long VR's letters ("OB\0\0"): pydicom reads it as an
    #    explicit VR element and takes four more bytes with it; the native scanner took 8.
    #    Here the four bytes are junk and a sequence delimiter follows, so pydicom reads the file.
    undefined = 0xFFFFFFFF
    item = struct.pack("<HHI", 0xFFFE, 0xE000, undefined)
    write("item-delimiter-with-long-vr-length.dcm",
          file_meta() + element(0x0008, 0x0018, b"UI", b"1.2.3.4")
          + struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, undefined) + item
          + element(0x0008, 0x1155, b"UI", b"1.2.3.5")
          + struct.pack("<HH", 0xFFFE, 0xE00D) + b"OB\x00\x00" + b"JUNK"
          + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
          + element(0x0010, 0x0010, b"PN", b"Doe^John"))
    #    ... and cut short: the four bytes pydicom wants are not there.
    write("item-delimiter-with-long-vr-length-cut.dcm",
          file_meta() + element(0x0008, 0x0018, b"UI", b"1.2.3.4")
          + struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, undefined) + item
          + element(0x0008, 0x1155, b"UI", b"1.2.3.5")
          + struct.pack("<HH", 0xFFFE, 0xE00D) + b"UN\x00\x00")


if __name__ == "__main__":
    main()
