"""The decoder's single-value fast paths (issue 12, item 6: one str made from the trimmed bytes
where a value holds no backslash) equal pydicom, on values built to sit on their edges: padding
with NUL, space and the other characters `str.strip()` removes (TAB, 0x1C-0x1F, 0x85, 0xA0),
signs and leading zeros in IS, long digit runs, escapes and backslashes that must take the
general path, in the default repertoire, Latin-1 and UTF-8.
"""
from __future__ import annotations

import os
import sys
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deid_fast
from deid_fast.errors import InvalidDicomError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import assert_same  # noqa: E402
from generate import el, raw_file  # noqa: E402

#: (tag, VR) of current elements, one per VR the fast paths serve
ELEMENTS = [(0x00080060, "CS"), (0x00080020, "DA"), (0x00080030, "TM"), (0x0008002A, "DT"),
            (0x00101010, "AS"), (0x00080016, "UI"), (0x00081010, "SH"), (0x00081030, "LO"),
            (0x00080080, "LO"), (0x00321066, "UC"), (0x00081080, "LO"), (0x00204000, "LT"),
            (0x00102000, "LT"), (0x00324000, "ST"), (0x00400280, "ST"), (0x00100010, "PN"),
            (0x00200013, "IS"), (0x00200012, "IS")]
EDGES = [b" ", b"\x00", b"\t", b"\x1c", b"\x1f", b"\x85", b"\xa0", b"+", b"-", b"0", b"7",
         b"1234567890", b"9" * 19, b"A", b"^", b"=", b"\\", b"\x1b(B", b"\xc3\xa9", b"\xe9"]
CHARSETS = [None, b"ISO_IR 100", b"ISO_IR 192"]


@settings(deadline=None, max_examples=400,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(values=st.lists(st.tuples(st.sampled_from(ELEMENTS),
                                 st.lists(st.sampled_from(EDGES), min_size=1, max_size=6)),
                       min_size=1, max_size=8, unique_by=lambda v: v[0][0]),
       charset=st.sampled_from(CHARSETS))
def test_single_values_equal_pydicom(values, charset):
    elements = {tag: el(tag, vr, b"".join(parts)) for (tag, vr), parts in values}
    if charset is not None:
        elements[0x00080005] = el(0x00080005, "CS", charset)
    elements.setdefault(0x00080018, el(0x00080018, "UI", b"1.2.3.4"))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "f.dcm")
        with open(path, "wb") as f:
            f.write(raw_file(b"".join(elements[tag] for tag in sorted(elements))))
        results = []
        for engine in ("native", "pydicom"):
            try:
                results.append(deid_fast.get_fields(path, engine=engine))
            except InvalidDicomError as exc:
                results.append(("rejected", exc.kind))
        assert_same(*results)
