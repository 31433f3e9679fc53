"""Text in every character set is decoded natively, as pydicom 3 decodes it (SPEC R6; issue 12,
items 5 and 8): single-byte and multi-byte sets, ISO 2022 code extensions with their escape
sequences, person names with component groups; and every element the native decoder still hands
to pydicom's converter is counted under a named reason in `deid_fast.decode.fallbacks`.

The reference is pydicom itself: the pydicom engine, and `pydicom.dcmread` element by element.
"""
from __future__ import annotations

import glob
import os
import struct
import sys
import warnings

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.charset import CODES_TO_ENCODINGS, ENCODINGS_TO_CODES, convert_encodings, handled_encodings
from pydicom.datadict import keyword_for_tag

import deid_fast
from deid_fast import _decode, decode
from deid_fast._values import is_empty, to_builtin

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import OPTION_SETS, assert_same  # noqa: E402
from generate import GENERATORS, _write, el, raw_file  # noqa: E402

CHARSET_FILES = sorted(glob.glob(os.path.join(os.path.dirname(pydicom.__file__), "data",
                                              "charset_files", "*.dcm")))
# the generated files in character sets that decode without replacement
GENERATED_CHARSETS = ["charset_utf8", "charset_latin1", "charset_iso2022_jp", "charset_iso2022_kr",
                      "charset_gb18030", "charset_unknown", "charset_alias"]


def handed_over() -> int:
    return sum(decode.fallbacks.values())


def elements_handed_over() -> int:
    return sum(decode.fallbacks[reason] for reason in _decode.HANDOVER_REASONS)


def check_decoded_natively(path, opts):
    """No element handed to pydicom, and no file either unless it has private elements without
    a VR (in implicit VR files: their VR is pydicom's private dictionary's to give)."""
    before, elements_before = handed_over(), elements_handed_over()
    native = outcome(path, "native", **opts)
    assert elements_handed_over() == elements_before, dict(decode.fallbacks)
    if not opts.get("include_private"):
        assert handed_over() == before, dict(decode.fallbacks)
    assert_same(native, outcome(path, "pydicom", **opts), os.path.basename(path))


def outcome(path, engine, **opts):
    """The fields, or the kind of the rejection."""
    try:
        return deid_fast.get_fields(path, engine=engine, **opts)
    except deid_fast.InvalidDicomError as exc:
        return ("rejected", exc.kind)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("charsets"))
    return {name: GENERATORS[name](folder) for name in GENERATED_CHARSETS}


def test_fallbacks_is_the_decoders_counter():
    assert decode.fallbacks is _decode.handovers


def test_the_shipped_charset_files_are_all_there():
    assert len(CHARSET_FILES) >= 17
    assert all(name in GENERATORS for name in GENERATED_CHARSETS)


@pytest.mark.parametrize("opts", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("path", CHARSET_FILES, ids=[os.path.basename(p) for p in CHARSET_FILES])
def test_shipped_charset_file_is_decoded_natively_as_pydicom_does(path, opts):
    check_decoded_natively(path, opts)


@pytest.mark.parametrize("opts", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("name", GENERATED_CHARSETS)
def test_generated_charset_file_is_decoded_natively_as_pydicom_does(generated, name, opts):
    check_decoded_natively(generated[name], opts)


# --- hand-built values -------------------------------------------------------------------------

SOP = el(0x00080016, "UI", b"1.2.840.10008.5.1.4.1.1.7") + el(0x00080018, "UI", b"1.2.3.4")


def charset_element(charset) -> bytes:
    if isinstance(charset, (list, tuple)):
        charset = "\\".join(charset)
    return el(0x00080005, "CS", charset.encode("latin-1"))


def write(folder, name, charset, elements: bytes) -> str:
    return _write(str(folder), name, raw_file(charset_element(charset) + SOP + elements))


def native_and_reference(path):
    """Both engines' fields, and how many elements the native engine handed over."""
    before = handed_over()
    native = outcome(path, "native")
    return native, outcome(path, "pydicom"), handed_over() - before


GREEK_ESCAPE = b"\x1b-F"


def test_pydicom_resets_code_extensions_where_the_decoder_does():
    """The decoder's text_delimiter is pydicom's TEXT_VR_DELIMS, which convert_text,
    convert_single_string and convert_PN all pass to decode_bytes."""
    from pydicom.values import TEXT_VR_DELIMS
    assert TEXT_VR_DELIMS == {0x0D, 0x0A, 0x09, 0x0C}


@pytest.mark.parametrize("value, expected, handovers", [
    (b"\x1b-F\xe1\t\xe1", "\u03b1\t\xe1", 0),        # TAB: back to the first set
    (b"x\x1b-F\xe1\x1b-A\xe1", "x\u03b1\xe1", 0),     # each escape its own set
    (b"\x1b(Babc", "abc", 0),                         # ASCII is always allowed
    (b"\x1b-F", "", 0),                                # an escape alone
    # pydicom decodes what follows an escape it cannot use with the first set (Latin-1 here)
    (b"ab\x1b$Bcd", "ab\x1b$Bcd", 1),                # ISO 2022 IR 87: not declared
    (b"ab\x1b(Zcd", "ab\x1b(Zcd", 1),                # no such escape
    (b"ab\x1b", "ab\x1b", 1),                        # a cut one
])
def test_escape_sequences(tmp_path, value, expected, handovers):
    path = write(tmp_path, "escapes", ["ISO 2022 IR 100", "ISO 2022 IR 126"],
                 el(0x00104000, "LT", value))
    native, reference, counted = native_and_reference(path)
    assert counted == handovers
    assert_same(native, reference)
    assert native.get("PatientComments", "") == expected   # an empty value is not reported


def test_person_names_use_the_text_delimiters(tmp_path):
    """convert_PN decodes a whole PN value with the text delimiters (CR, LF, TAB, FF): '^' and
    '=' do not end a code extension when reading (PersonName's own PN delimiters would)."""
    value = GREEK_ESCAPE + b"\xe1^\xe1=" + GREEK_ESCAPE + b"\xe1\r\xe1"
    path = write(tmp_path, "pn_delims", ["ISO 2022 IR 100", "ISO 2022 IR 126"],
                 el(0x00100010, "PN", value) + el(0x00104000, "LT", value))
    native, reference, handovers = native_and_reference(path)
    assert handovers == 0
    assert_same(native, reference)
    assert native["PatientName"] == "α^α=α\rá"
    assert native["PatientComments"] == "α^α=α\rá"


@pytest.mark.parametrize("value, expected", [
    (b"Yamada^Tarou==", "Yamada^Tarou"),
    (b"=Tarou", "=Tarou"),
    (b"A==C", "A==C"),
    (b"A=B=\\=\\C", ["A=B", "", "C"]),
    (b"==\\A=", ["", "A"]),
    (b"A= \x00", "A"),
    (b"A=\\", ["A", ""]),
])
def test_person_name_component_groups(tmp_path, value, expected):
    """PersonName drops trailing empty component groups of each value, after the bytes' trailing
    spaces and NULs are stripped and the value is split on backslashes."""
    path = write(tmp_path, "pn_groups", "ISO_IR 192", el(0x00100010, "PN", value))
    native, reference, handovers = native_and_reference(path)
    assert handovers == 0
    assert_same(native, reference)
    assert_same(native["PatientName"], expected)


def test_japanese_person_name_with_escapes_in_each_group(tmp_path):
    value = ("Yamada^Tarou=" + "山田^太郎=やまだ^たろう").encode("iso2022_jp")
    path = write(tmp_path, "jp", ["", "ISO 2022 IR 87"], el(0x00100010, "PN", value))
    native, reference, handovers = native_and_reference(path)
    assert handovers == 0
    assert_same(native, reference)
    assert native["PatientName"] == "Yamada^Tarou=山田^太郎=やまだ^たろう"


@pytest.mark.parametrize("value", [
    b"Yamada^Tarou=" + "山田^太郎".encode("iso2022_jp"),
    b"Yamada^Tarou==",            # trailing empty groups are dropped before pydicom re-encodes
    b"Yamada\\",                  # an empty name has no components
])
def test_names_pydicom_re_encodes_under_ir_87_first_are_native(tmp_path, value):
    path = write(tmp_path, "jp_first", ["ISO 2022 IR 87", "ISO 2022 IR 6"],
                 el(0x00100010, "PN", value))
    native, reference, handovers = native_and_reference(path)
    assert handovers == 0
    assert_same(native, reference)
    assert isinstance(native, dict)


@pytest.mark.parametrize("value", [b"^Tarou", b"Yamada^", b"Yamada^^Tarou", b"=Yamada",
                                   b"Yamada==Tarou", b"A\\B^"])
def test_names_pydicom_fails_to_re_encode_under_ir_87_first_are_rejected(tmp_path, value):
    """pydicom's encoder for ISO 2022 IR 87 fails on an empty component (IndexError)."""
    path = write(tmp_path, "jp_first", ["ISO 2022 IR 87", "ISO 2022 IR 6"],
                 el(0x00100010, "PN", value))
    native, reference, handovers = native_and_reference(path)
    assert handovers == 1
    assert native == reference == ("rejected", "undecodable")


def test_encodings_are_computed_once_per_character_set_value(monkeypatch):
    calls = []

    def counting(value):
        calls.append(value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # pydicom names the misspelling
            return convert_encodings(value)

    monkeypatch.setattr(_decode, "convert_encodings", counting)
    other = _decode.charset_from_value("ISO_IR 126")
    # misspelt values pydicom corrects, which no other test uses (so not cached yet)
    first = _decode.encodings_for(other, ["", "ISO.2022.IR 87"])
    assert first == ["iso8859", "iso2022_jp"]
    assert _decode.encodings_for(other, ["", "ISO.2022.IR 87"]) is first
    assert _decode.encodings_for(other, "ISO.IR 126") == ["iso_ir_126"]
    _decode.encodings_for(other, "ISO.IR 126")
    assert calls == [["", "ISO.2022.IR 87"], "ISO.IR 126"]


def test_encodings_cache_is_bounded(monkeypatch):
    """A stream of ever new (0008,0005) values does not grow the cache: old values are forgotten."""
    calls = []

    def counting(value):
        calls.append(value)
        return ["iso8859"]

    monkeypatch.setattr(_decode, "convert_encodings", counting)
    other = _decode.charset_from_value("ISO_IR 126")
    names = [f"NOT A CHARSET {i}" for i in range(10_000)]
    for name in names:
        _decode.encodings_for(other, name)
    assert len(calls) == len(names)
    _decode.encodings_for(other, names[0])
    assert len(calls) == len(names) + 1


# --- each hand-over, named and counted once ------------------------------------------------------

REASON_CASES = {
    "DS value pydicom must judge (not a plain decimal)":
        ("ISO_IR 100", el(0x00180050, "DS", b"1,5")),
    "IS value pydicom must judge (not a plain integer)":
        ("ISO_IR 100", el(0x00200013, "IS", b"1.0")),
    "text pydicom decodes with replacement characters":
        ("ISO_IR 192", el(0x00080080, "LO", b"J\xe9r\xf4me")),
    "text in a character set Python has no text codec for":
        ("rot13", el(0x00080080, "LO", b"abcd")),
    "unknown or undeclared escape sequence":
        ("ISO_IR 100", el(0x00080080, "LO", b"ab\x1b$Bcd")),
    "value length not a multiple of its VR's size":
        ("ISO_IR 100", el(0x00289001, "UL", b"\x01\x00\x00\x00\x02\x00")),
    "unknown VR":
        ("ISO_IR 100", struct.pack("<HH", 0x0008, 0x1010) + b"ZZ" + struct.pack("<H", 4) + b"abcd"),
    "person name with an empty component pydicom fails to re-encode":
        (["ISO 2022 IR 87", "ISO 2022 IR 6"], el(0x00100010, "PN", b"Yamada^^Tarou")),
}


def test_every_reason_has_a_case():
    assert set(REASON_CASES) == set(_decode.HANDOVER_REASONS) - {None}


@pytest.mark.parametrize("reason", list(REASON_CASES))
def test_each_hand_over_is_counted_once_under_its_reason(tmp_path, reason):
    charset, elements = REASON_CASES[reason]
    path = write(tmp_path, "reason", charset, elements)
    before = decode.fallbacks[reason]
    native, reference, handovers = native_and_reference(path)
    assert handovers == 1
    assert decode.fallbacks[reason] == before + 1
    assert_same(native, reference)


# --- random text in every character set pydicom knows ---------------------------------------------

SINGLE_BYTE = ["ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110", "ISO_IR 126", "ISO_IR 127",
               "ISO_IR 138", "ISO_IR 144", "ISO_IR 148", "ISO_IR 166", "ISO_IR 13"]
STAND_ALONE = ["ISO_IR 192", "GB18030", "GBK"]
ISO_2022 = ["ISO 2022 IR 6", "ISO 2022 IR 13", "ISO 2022 IR 87", "ISO 2022 IR 149",
            "ISO 2022 IR 159", "ISO 2022 IR 58", "ISO 2022 IR 100", "ISO 2022 IR 101",
            "ISO 2022 IR 109", "ISO 2022 IR 110", "ISO 2022 IR 126", "ISO 2022 IR 127",
            "ISO 2022 IR 138", "ISO 2022 IR 144", "ISO 2022 IR 148", "ISO 2022 IR 166"]
ODD = ["", "ISO_IR 6", "ISO IR 100", "ISO_IR 999", "ISO 2022 GBK", "ISO 2022 58"]

charsets = st.one_of(
    st.sampled_from(SINGLE_BYTE + STAND_ALONE + ISO_2022 + ODD),
    st.builds(lambda first, rest: [first] + rest,
              st.sampled_from(["", "ISO 2022 IR 6", "ISO 2022 IR 100", "ISO 2022 IR 13",
                               "ISO 2022 IR 126", "ISO 2022 IR 87", "ISO 2022 IR 159",
                               "ISO_IR 192"]),
              st.lists(st.sampled_from(ISO_2022 + STAND_ALONE), min_size=1, max_size=3)),
)

# characters of the languages of those sets; each set encodes those it can
SAMPLE = "éÄßøłżĥŝąėğşαβΔжЖщאבابกข山田太郎やまだｶﾀ홍길동王小东"
ESCAPES = sorted(CODES_TO_ENCODINGS) + [b"\x1b", b"\x1b$", b"\x1b$)", b"\x1b(Z", b"\x1b$)Z",
                                        b"\x1b-Z", b"\x1b$(Q"]
DELIMITERS = [b"^", b"=", b"\\", b"\r", b"\n", b"\t", b"\f", b" ", b"\x00", b"\r\n"]


def encoded_pieces(codec: str) -> list[bytes]:
    """Runs of SAMPLE's characters as `codec` encodes them, with its escape sequence before those
    Python's codec does not write itself."""
    pieces = []
    for size in (1, 2):
        for i in range(0, len(SAMPLE) - size + 1, size):
            try:
                encoded = SAMPLE[i:i + size].encode(codec)
            except (UnicodeError, LookupError):
                continue
            pieces.append(encoded)
            if codec not in handled_encodings and codec in ENCODINGS_TO_CODES:
                pieces.append(ENCODINGS_TO_CODES[codec] + encoded)
    return pieces


@st.composite
def text_values(draw, charset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codecs = convert_encodings(charset)
    pieces = [piece for codec in codecs for piece in encoded_pieces(codec)]
    token = st.one_of(
        st.text(alphabet="ABCxyz019 .-", min_size=1, max_size=5).map(str.encode),
        st.sampled_from(DELIMITERS),
        st.sampled_from(DELIMITERS),
        st.sampled_from(ESCAPES),
        st.binary(min_size=1, max_size=3),
        *([st.sampled_from(pieces)] * 3 if pieces else []),
    )
    return b"".join(draw(st.lists(token, max_size=10)))


@st.composite
def person_names(draw, charset):
    """Well-formed names: backslash-separated, of '='-separated groups of '^'-separated components
    (empty ones too), each plain ASCII or characters of the character set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codecs = convert_encodings(charset)
    pieces = [piece for codec in codecs for piece in encoded_pieces(codec)]
    component = st.one_of(st.just(b""), st.sampled_from([b"Yamada", b"Tarou", b"A"]),
                          *([st.sampled_from(pieces)] if pieces else []))

    def joined(separator, parts, max_size):
        return st.lists(parts, min_size=1, max_size=max_size).map(separator.join)

    return draw(joined(b"\\", joined(b"=", joined(b"^", component, 5), 4), 3))


# (tag, VR) of each text VR, each charset dependent
TEXT_ELEMENTS = [(0x00080080, "LO"), (0x00080081, "ST"), (0x00080090, "PN"), (0x00080119, "UC"),
                 (0x00081010, "SH"), (0x00100010, "PN"), (0x00104000, "LT"), (0x0040A160, "UT")]
DECODE_WARNINGS = ("Failed to decode byte string", "unknown escape sequence")


@st.composite
def text_files(draw):
    charset = draw(charsets)
    values = {tag: draw(text_values(charset)) for tag, _ in TEXT_ELEMENTS if draw(st.booleans())}
    values[0x00100010] = draw(st.one_of(text_values(charset), person_names(charset)))
    return charset, values


def pydicom_values(path):
    """Per element: pydicom's value as builtins (or the exception it raises), and whether pydicom
    warned that it could not decode the text as it is."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pydicom.dcmread(path)
        ds.SpecificCharacterSet      # its conversion warnings come before any text element's
    result = {}
    for tag, _ in TEXT_ELEMENTS:
        if tag not in ds:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = to_builtin(ds[tag].value)
            except Exception as exc:   # noqa: BLE001 - the native engine must reject it too
                value = exc
        warned = any(w in str(c.message) for c in caught for w in DECODE_WARNINGS)
        result[tag] = (value, warned)
    return result


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("random_text")


# at least 400 examples; more under a longer profile (--hypothesis-profile=thorough)
@settings(max_examples=max(400, settings.default.max_examples), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text_files())
def test_random_text_in_any_charset_equals_pydicom(scratch, case):
    charset, values = case
    elements = b"".join(el(tag, vr, values[tag]) for tag, vr in TEXT_ELEMENTS if tag in values)
    path = write(scratch, "random", charset, elements)
    native, engine, handovers = native_and_reference(path)
    assert_same(native, engine)
    reference = pydicom_values(path)
    if any(isinstance(value, Exception) for value, _ in reference.values()):
        assert native == ("rejected", "undecodable")
        return
    assert isinstance(native, dict), native
    for tag, (value, _) in reference.items():
        keyword = keyword_for_tag(tag)
        if is_empty(value):
            assert keyword not in native
        else:
            assert_same(native[keyword], value, keyword)
    # a hand-over exactly where pydicom could not decode the text as it is
    assert handovers == sum(warned for _, warned in reference.values())
