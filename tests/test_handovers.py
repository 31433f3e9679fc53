"""Zero hand-overs to pydicom (issue 12, item 8): every shipped and generated file, under every
option set, is read by the native engine without calling pydicom, except where the hand-over is
named here with its reason and the files it may happen on.

Two counts are watched: `deid_fast.decode.fallbacks` (the hand-overs the native engine makes, by
reason: whole files, or single elements) and every arming of the pydicom session
(`deid_fast.session.use_pydicom`, which each path into pydicom's reader or converters takes), so
that a hand-over nobody counted fails too. The character-set encodings pydicom derives from a
(0008,0005) value are computed once per distinct value and cached: the files are read once before
counting, so that lookup is not taken for a hand-over.
"""
from __future__ import annotations

import collections
import os
import sys

import pytest

import deid_fast
from deid_fast import _decode, _flatten, decode
from deid_fast.errors import InvalidDicomError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import OPTION_SETS  # noqa: E402
from corpus import shipped_files  # noqa: E402
from generate import generate_all  # noqa: E402

#: Each remaining hand-over: its reason (the counter's key), why pydicom must decide, and the
#: files (by name without extension) it may happen on. All are malformed input, judged by
#: pydicom's own rules (warnings, replacement characters, sorting), which deid_fast does not
#: re-implement.
NAMED = {
    _decode.HANDOVER_REASONS[1]: (   # DS value pydicom must judge (not a plain decimal)
        "pydicom's DS rules for text that is not a plain decimal (commas, nan, empty items, "
        "over-long values), with its warnings",
        {"empty_values", "invalid_ds_is", "text_padding"}),
    _decode.HANDOVER_REASONS[2]: (   # IS value pydicom must judge (not a plain integer)
        "pydicom's IS rules for text that is not a plain integer ('1.0', '12a', blanks)",
        {"invalid_ds_is", "badVR"}),
    _decode.HANDOVER_REASONS[3]: (   # text pydicom decodes with replacement characters
        "bytes the character set cannot decode: pydicom warns and replaces them",
        {"charset_invalid_utf8"}),
    _decode.HANDOVER_REASONS[6]: (   # value length not a multiple of its VR's size
        "pydicom raises on a binary value of the wrong length",
        {"wrong_length_fd"}),
    _flatten.OUT_OF_ORDER: (
        "a data set whose tags are out of order or repeated: pydicom sorts it and keeps the "
        "last of a repeated tag",
        {"out_of_order", "duplicate_tags", "undefined_length_items"}),
}


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return shipped_files() + list(generate_all(tmp_path_factory.mktemp("generated")).values())


@pytest.fixture
def pydicom_calls(monkeypatch):
    """Counts every arming of the pydicom session, wherever the native path could take it."""
    calls = []
    from deid_fast import session

    def counted():
        calls.append(1)
        return real()

    real = session.use_pydicom
    for module in (_decode, decode, session):
        monkeypatch.setattr(module, "use_pydicom", counted)
    return calls


def read(path, options):
    try:
        deid_fast.get_fields(path, **options)
    except InvalidDicomError:
        pass       # rejected files are counted too: a rejection may not go through pydicom


def unnamed_hand_overs(files, options, pydicom_calls):
    """(files that used pydicom without a counted hand-over, {reason: file names} counted)."""
    for path in files:       # fill the encodings cache (see the module docstring)
        read(path, options)
    seen = collections.defaultdict(set)
    unexplained = []
    for path in files:
        before = collections.Counter(decode.fallbacks)
        calls = len(pydicom_calls)
        read(path, options)
        grown = {reason for reason, count in decode.fallbacks.items()
                 if count > before[reason]}
        for reason in grown:
            seen[reason].add(stem(path))
        if len(pydicom_calls) > calls and not grown:
            unexplained.append(stem(path))
    return unexplained, seen


@pytest.mark.parametrize("option_set", sorted(OPTION_SETS))
def test_no_hand_over_but_the_named_ones(files, pydicom_calls, option_set):
    unexplained, seen = unnamed_hand_overs(files, OPTION_SETS[option_set], pydicom_calls)
    assert not unexplained, f"pydicom used without a counted hand-over: {unexplained}"
    for reason, names in seen.items():
        assert reason in NAMED, f"hand-over not named: {reason!r} on {sorted(names)}"
        assert names <= NAMED[reason][1], (reason, sorted(names - NAMED[reason][1]))


def test_the_named_hand_overs_still_happen(files):
    """Each named hand-over is still needed (a name for something that no longer happens is a
    stale exception): every reason occurs on at least one of its files under the defaults."""
    seen = set()
    for path in files:
        before = collections.Counter(decode.fallbacks)
        read(path, {})
        seen |= {reason for reason, count in decode.fallbacks.items() if count > before[reason]}
    assert set(NAMED) <= seen, set(NAMED) - seen


def test_the_counters_catch_a_hidden_hand_over(files, pydicom_calls, monkeypatch):
    """The test above can fail: the hand-over this issue removed (pydicom decoding the file meta
    for include_file_meta, uncounted) is seen when put back."""
    from deid_fast import reader
    real = reader.read_native

    def with_pydicom_file_meta(name, *args):
        result = real(name, *args)
        header = result[0]
        decode.decoded(name, lambda: decode.read_file_meta(header), header)
        return result

    monkeypatch.setattr(reader, "read_native", with_pydicom_file_meta)
    cookies = [p for p in files if os.sep + "dicom-cookies" + os.sep in p]
    unexplained, _ = unnamed_hand_overs(cookies, {"include_file_meta": True}, pydicom_calls)
    assert sorted(unexplained) == sorted(stem(p) for p in cookies)
