# cython: language_level=3
"""The native decoder: knows VRs and charsets. Bytes of one element value to the builtin value
pydicom 3 would give (SPEC R6), without pydicom's per-element Python machinery.

Each VR family has one function here, mirroring `pydicom.values` (the strip and split rules of
`convert_string`, `convert_text`, `convert_single_string`, `convert_AE_string`, `convert_UI`,
`convert_PN`, `convert_DS_string`, `convert_IS_string`, `convert_numbers`, `convert_ATvalue`).
Text is decoded natively in every character set: one codec call per value, straight from the
buffer, as `pydicom.charset.decode_bytes` does; a value holding ISO 2022 escape sequences is
decoded fragment by fragment by the same rules as its `_decode_fragment`. Where a value is not
plainly well-formed (an odd DS or IS, text pydicom would decode with replacement characters, an
unknown escape sequence, a person name pydicom fails on, a length that is no multiple of the value
size) the decoder does not guess: the caller hands that one element to pydicom's
own converter and counts it in `handovers` under a short reason.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeLatin1, PyUnicode_DecodeUTF8
from libc.string cimport memchr, memcpy

cdef extern from "Python.h":
    # cpython.unicode declares these without const
    object PyUnicode_Decode(const char* s, Py_ssize_t size, const char* encoding,
                            const char* errors)
    const char* PyUnicode_AsUTF8(object unicode) except NULL

cdef extern from "<locale.h>" nogil:
    ctypedef struct __locale_struct
    ctypedef __locale_struct* locale_t
    locale_t newlocale(int category_mask, const char* locale, locale_t base)
    int LC_NUMERIC_MASK

cdef extern from "<stdlib.h>" nogil:
    double strtod_l(const char* s, char** end, locale_t loc)

# Decimal strings are parsed by the C library in the "C" locale, whatever the process's locale:
# glibc's strtod is correctly rounded, as Python's float() is, so the values are identical.
cdef locale_t C_NUMERIC = newlocale(LC_NUMERIC_MASK, "C", NULL)

import collections

from pydicom.charset import (CODES_TO_ENCODINGS, convert_encodings, custom_encoders,
                             default_encoding, handled_encodings)
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.tag import BaseTag

from deid_fast._values cimport to_builtin
from deid_fast.session import use_pydicom


cdef inline unsigned short vr_code(str vr):
    return (ord(vr[0]) << 8) | ord(vr[1])

# The VRs, as the two bytes the scanner records
cdef unsigned short VR_AE = vr_code("AE"), VR_AS = vr_code("AS"), VR_AT = vr_code("AT")
cdef unsigned short VR_CS = vr_code("CS"), VR_DA = vr_code("DA"), VR_DS = vr_code("DS")
cdef unsigned short VR_DT = vr_code("DT"), VR_FD = vr_code("FD"), VR_FL = vr_code("FL")
cdef unsigned short VR_IS = vr_code("IS"), VR_LO = vr_code("LO"), VR_LT = vr_code("LT")
cdef unsigned short VR_OB = vr_code("OB"), VR_OD = vr_code("OD"), VR_OF = vr_code("OF")
cdef unsigned short VR_OL = vr_code("OL"), VR_OV = vr_code("OV"), VR_OW = vr_code("OW")
cdef unsigned short VR_PN = vr_code("PN"), VR_SH = vr_code("SH"), VR_SL = vr_code("SL")
cdef unsigned short VR_SQ = vr_code("SQ"), VR_SS = vr_code("SS"), VR_ST = vr_code("ST")
cdef unsigned short VR_SV = vr_code("SV"), VR_TM = vr_code("TM"), VR_UC = vr_code("UC")
cdef unsigned short VR_UI = vr_code("UI"), VR_UL = vr_code("UL"), VR_UN = vr_code("UN")
cdef unsigned short VR_UR = vr_code("UR"), VR_US = vr_code("US"), VR_UT = vr_code("UT")
cdef unsigned short VR_UV = vr_code("UV")

cdef frozenset KNOWN_VRS = frozenset({
    VR_AE, VR_AS, VR_AT, VR_CS, VR_DA, VR_DS, VR_DT, VR_FD, VR_FL, VR_IS, VR_LO, VR_LT, VR_OB,
    VR_OD, VR_OF, VR_OL, VR_OV, VR_OW, VR_PN, VR_SH, VR_SL, VR_SS, VR_ST, VR_SV, VR_TM, VR_UC,
    VR_UI, VR_UL, VR_UN, VR_UR, VR_US, VR_UT, VR_UV})


cpdef bint charset_dependent(unsigned short vr):
    """Whether pydicom decodes a VR's text with the Specific Character Set."""
    return (vr == VR_SH or vr == VR_LO or vr == VR_UC or vr == VR_ST or vr == VR_LT
            or vr == VR_UT or vr == VR_PN)


cpdef bint known_vr(unsigned short vr):
    """Whether pydicom has a converter for a VR (its two bytes)."""
    return vr in KNOWN_VRS


cpdef unsigned short vr_from_name(str vr):
    """The code of a two-letter VR name; 0 for anything else (an ambiguous 'US or SS', say)."""
    if vr is None or len(vr) != 2:
        return 0
    return vr_code(vr)


cpdef int charset_from_value(object value):
    """The code of a (0008,0005) Specific Character Set value."""
    if value is None or value == "" or value == "ISO_IR 6":
        return CHARSET_DEFAULT
    if value == "ISO_IR 100":
        return CHARSET_LATIN1
    if value == "ISO_IR 192":
        return CHARSET_UTF8
    return CHARSET_OTHER


cdef list ENCODINGS = [["iso8859"], ["latin_1"], ["UTF8"]]   # pydicom's names, by code

# pydicom's encodings of each (0008,0005) value seen, computed once per value; cleared when full
# so that files with ever new (misspelt, say) values cannot grow it without bound
cdef dict ENCODINGS_SEEN = {}
cdef Py_ssize_t ENCODINGS_SEEN_MAX = 256


cpdef list encodings_for(int charset, object value):
    """pydicom's Python encodings for a character set (as `read_dataset` derives them). The
    list is shared between calls: nothing may change it."""
    cdef list encodings
    if charset != CHARSET_OTHER:
        return ENCODINGS[charset]
    key = tuple(value) if type(value) is list else value
    encodings = ENCODINGS_SEEN.get(key)
    if encodings is None:
        use_pydicom()
        encodings = convert_encodings(value)
        if len(ENCODINGS_SEEN) >= ENCODINGS_SEEN_MAX:
            ENCODINGS_SEEN.clear()
        ENCODINGS_SEEN[key] = encodings
    return encodings


# --- hand-overs --------------------------------------------------------------------------------

# Why an element goes to pydicom's converter: an index into HANDOVER_REASONS (NATIVE: it did not).
cdef enum:
    NATIVE = 0
    DS_TO_JUDGE
    IS_TO_JUDGE
    TEXT_REPLACED
    NO_CODEC
    UNKNOWN_ESCAPE
    LENGTH_NOT_MULTIPLE
    UNKNOWN_VR
    NAME_NOT_REENCODABLE

HANDOVER_REASONS = (
    None,
    "DS value pydicom must judge (not a plain decimal)",
    "IS value pydicom must judge (not a plain integer)",
    "text pydicom decodes with replacement characters",
    "text in a character set Python has no text codec for",
    "unknown or undeclared escape sequence",
    "value length not a multiple of its VR's size",
    "unknown VR",
    "person name with an empty component pydicom fails to re-encode",
)

#: Elements handed to pydicom's converter, by reason (a fixed set of keys: no tag, no file).
#: `deid_fast.decode.fallbacks` is this Counter, with the files handed over whole.
handovers = collections.Counter()


# --- text --------------------------------------------------------------------------------------


cdef inline str latin1(const unsigned char* p, Py_ssize_t n):
    return PyUnicode_DecodeLatin1(<const char*> p, n, NULL)


cdef inline str decode_with(const unsigned char* p, Py_ssize_t n, str encoding):
    """bytes.decode(encoding) without the bytes (the same codec call)."""
    if encoding == "iso8859" or encoding == "latin_1":
        # Python's Latin-1 codec under pydicom's names, without the codec registry's lookup
        # (which PyUnicode_Decode skips only for names spelt as it expects: "latin-1", ...)
        return latin1(p, n)
    return PyUnicode_Decode(<const char*> p, n, PyUnicode_AsUTF8(encoding), NULL)


cdef inline bint text_delimiter(unsigned char c) noexcept:
    # pydicom's TEXT_VR_DELIMS (CR, LF, TAB, FF): they end a code extension in text and,
    # since convert_PN decodes a whole PN value before splitting it, in person names too
    return c == 0x0D or c == 0x0A or c == 0x09 or c == 0x0C


cdef str escaped_fragment(const unsigned char* p, Py_ssize_t n, list encodings, int* reason):
    """pydicom's _decode_escaped_fragment: `n` bytes from an ESC to the next ESC (or the end)."""
    cdef Py_ssize_t code_length = 3, i
    if n >= 3 and p[1] == b'$' and (p[2] == b'(' or p[2] == b')'):
        code_length = 4
    encoding = CODES_TO_ENCODINGS.get(
        PyBytes_FromStringAndSize(<const char*> p, min(code_length, n)), "")
    if not (encoding in encodings or encoding == default_encoding):
        reason[0] = UNKNOWN_ESCAPE      # pydicom warns and replaces
        return None
    if encoding in handled_encodings:   # Python's codec reads the escape sequence itself
        return decode_with(p, n, encoding)
    code_length = min(code_length, n)   # as pydicom's slice would (a known code is whole)
    p += code_length
    n -= code_length
    for i in range(n):
        if text_delimiter(p[i]):        # back to the first character set from here
            return decode_with(p, i, encoding) + decode_with(p + i, n - i, encodings[0])
    return decode_with(p, n, encoding)


cdef str escaped_text(const unsigned char* p, Py_ssize_t n, list encodings, int* reason):
    """pydicom's decode_bytes of a value holding ESC: the bytes before the first ESC in the
    first encoding, then each run from an ESC to the next by its escape sequence."""
    cdef list parts = []
    cdef const unsigned char* end = p + n
    cdef const unsigned char* esc = <const unsigned char*> memchr(p, 0x1B, n)
    cdef const unsigned char* next_esc
    cdef str part
    if esc != p:
        parts.append(decode_with(p, esc - p, encodings[0]))
    while esc != NULL:
        next_esc = <const unsigned char*> memchr(esc + 1, 0x1B, end - esc - 1)
        part = escaped_fragment(esc, (next_esc if next_esc != NULL else end) - esc, encodings,
                                reason)
        if reason[0]:
            return None
        parts.append(part)
        esc = next_esc
    return "".join(parts)


cdef inline object text(const unsigned char* p, Py_ssize_t n, int charset, list encodings,
                        int* reason):
    """Text in the file's character set, decoded as pydicom's decode_bytes does; sets `reason`
    where pydicom would warn (and decode with replacement characters or another encoding)."""
    try:
        if memchr(p, 0x1B, n) != NULL:
            return escaped_text(p, n, encodings, reason)
        if charset == CHARSET_OTHER:
            return decode_with(p, n, encodings[0])
        if charset != CHARSET_UTF8:
            return latin1(p, n)          # pydicom's default repertoire decodes as iso8859 too
        return PyUnicode_DecodeUTF8(<const char*> p, n, NULL)
    except UnicodeError:
        reason[0] = TEXT_REPLACED
    except LookupError:
        reason[0] = NO_CODEC
    return None


def _fails_on_empty_text(encode):
    try:
        encode("")
    except Exception:
        return True
    return False


# convert_PN re-encodes each name it reads (PersonName.encode), component by component, with the
# first encoding first: pydicom's own encoders for these (ISO 2022 IR 87 and IR 159 as the first
# character set) fail on an empty component (an IndexError), so pydicom rejects such a name
cdef frozenset FIRST_ENCODINGS_FAILING_ON_EMPTY = frozenset(
    name for name, encode in custom_encoders.items() if _fails_on_empty_text(encode))


cdef bint has_empty_component(str name):
    """Whether PersonName's encode meets an empty component of a name (its trailing empty
    groups already dropped): an empty group, or a leading, trailing or doubled '^'."""
    if not name:
        return False      # no groups at all
    for group in name.split("="):
        if "" in group.split("^"):
            return True
    return False


cdef inline Py_ssize_t trimmed(const unsigned char* p, Py_ssize_t n) noexcept:
    """`n` without trailing NULs and spaces: `.rstrip(" \\x00")` on the bytes, which equals it on
    the text where every byte is a character or a UTF-8 code unit (NUL and space are never part
    of a multi-byte one)."""
    while n > 0 and (p[n - 1] == 0 or p[n - 1] == 32):
        n -= 1
    return n


cdef inline bint latin1_whitespace(unsigned char c) noexcept:
    """What `str.strip()` removes, in the Latin-1 range."""
    return c == 32 or 9 <= c <= 13 or 28 <= c <= 31 or c == 0x85 or c == 0xA0


cdef inline bint plain_text(const unsigned char* p, Py_ssize_t n, int charset) noexcept:
    """Whether trimming and splitting the bytes equals doing it on the text: not where a
    multi-byte character may hold a 0x5C or 0x20 byte (GB18030, ISO 2022...), nor where escape
    sequences switch the set."""
    return ((charset == CHARSET_DEFAULT or charset == CHARSET_LATIN1 or charset == CHARSET_UTF8)
            and memchr(p, 0x1B, n) == NULL)


cdef inline object single_or_list(list items):
    return items[0] if len(items) == 1 else items


# --- numbers written as text -----------------------------------------------------------------


cdef inline bint plain_decimal_bytes(const unsigned char* p, Py_ssize_t n) noexcept:
    """[+-]digits[.digits][(e|E)[+-]digits]: what float() reads exactly as pydicom's DS does,
    without its warnings or special cases (nan, inf, commas, '_')."""
    cdef Py_ssize_t i = 0
    cdef bint digits = False
    if i < n and (p[i] == b'+' or p[i] == b'-'):
        i += 1
    while i < n and b'0' <= p[i] <= b'9':
        i += 1
        digits = True
    if i < n and p[i] == b'.':
        i += 1
        while i < n and b'0' <= p[i] <= b'9':
            i += 1
            digits = True
    if not digits:
        return False
    if i < n and (p[i] == b'e' or p[i] == b'E'):
        i += 1
        if i < n and (p[i] == b'+' or p[i] == b'-'):
            i += 1
        if not (i < n and b'0' <= p[i] <= b'9'):
            return False
        while i < n and b'0' <= p[i] <= b'9':
            i += 1
    return i == n


cdef object decode_DS(const unsigned char* p, Py_ssize_t n, int* reason):
    """pydicom: multi_string(value.strip(), DS). Values of plain decimals, spaces, backslashes
    and trailing NULs are read straight from the bytes; any other (tabs, commas, nan, empty
    items...) is pydicom's to decide."""
    cdef char number[64]
    cdef Py_ssize_t start, end, stop, i
    cdef list numbers = []
    while n > 0 and (p[n - 1] == 0 or p[n - 1] == 32):   # .strip() then .rstrip(" \0")
        n -= 1
    start = 0
    while start < n and p[start] == 32:
        start += 1
    if start == n:
        return ""
    for i in range(start, n):
        if not (b'0' <= p[i] <= b'9' or p[i] == b'.' or p[i] == b'+' or p[i] == b'-'
                or p[i] == b'e' or p[i] == b'E' or p[i] == 32 or p[i] == 92):
            reason[0] = DS_TO_JUDGE
            return None
    while True:
        stop = start
        while stop < n and p[stop] != 92:
            stop += 1
        i = start
        end = stop
        while i < end and p[i] == 32:
            i += 1
        while end > i and p[end - 1] == 32:
            end -= 1
        if end - i >= 63 or not plain_decimal_bytes(p + i, end - i):
            reason[0] = DS_TO_JUDGE
            return None
        memcpy(number, p + i, end - i)
        number[end - i] = 0
        numbers.append(strtod_l(number, NULL, C_NUMERIC))
        if stop >= n:
            break
        start = stop + 1
    return single_or_list(numbers)


cdef object integer_item(const unsigned char* p, Py_ssize_t n):
    """The int pydicom's IS gives an item of [+-]digits with surrounding spaces; None for any
    other item, and for an integer a float does not hold exactly (pydicom gives an ISfloat):
    those are pydicom's to judge. Up to 15 digits it is parsed here (a float holds those)."""
    cdef Py_ssize_t i = 0, digits_start
    cdef long long number = 0
    cdef bint negative = False
    while i < n and p[i] == 32:
        i += 1
    while n > i and p[n - 1] == 32:
        n -= 1
    if i < n and (p[i] == b'+' or p[i] == b'-'):
        negative = p[i] == b'-'
        i += 1
    if i == n:
        return None
    digits_start = i
    while i < n:
        if not (b'0' <= p[i] <= b'9'):
            return None
        i += 1
    if n - digits_start > 15:
        text = latin1(p, n)
        value = int(text)
        return value if value == float(text) else None
    for i in range(digits_start, n):
        number = number * 10 + (p[i] - 48)
    return -number if negative else number


cdef object decode_IS(const unsigned char* p, Py_ssize_t n, int* reason):
    # pydicom: multi_string(value, IS), and IS() keeps a blank item (" ", "\t") as that str,
    # which is not an integer item: pydicom's to judge
    cdef Py_ssize_t start = 0, stop
    cdef list numbers = []
    n = trimmed(p, n)
    if n == 0:
        return ""
    while True:
        stop = start
        while stop < n and p[stop] != 92:
            stop += 1
        number = integer_item(p + start, stop - start)
        if number is None:
            reason[0] = IS_TO_JUDGE
            return None
        numbers.append(number)
        if stop >= n:
            break
        start = stop + 1
    return single_or_list(numbers)


# --- binary numbers ----------------------------------------------------------------------------


cdef inline unsigned long long load(const unsigned char* p, int size, bint little) noexcept:
    cdef unsigned long long v = 0
    cdef int i
    if little:
        for i in range(size - 1, -1, -1):
            v = (v << 8) | p[i]
    else:
        for i in range(size):
            v = (v << 8) | p[i]
    return v


cdef object number(const unsigned char* p, unsigned short vr, bint little):
    cdef unsigned long long raw
    cdef unsigned int raw32
    cdef float f32
    cdef double f64
    if vr == VR_US:
        return <unsigned short> load(p, 2, little)
    if vr == VR_SS:
        return <short> load(p, 2, little)
    if vr == VR_UL:
        return <unsigned int> load(p, 4, little)
    if vr == VR_SL:
        return <int> load(p, 4, little)
    if vr == VR_UV:
        return <unsigned long long> load(p, 8, little)
    if vr == VR_SV:
        return <long long> load(p, 8, little)
    if vr == VR_FL:
        raw32 = <unsigned int> load(p, 4, little)
        memcpy(&f32, &raw32, 4)
        return <double> f32
    raw = load(p, 8, little)
    memcpy(&f64, &raw, 8)
    return f64


cdef inline int number_size(unsigned short vr) noexcept:
    if vr == VR_US or vr == VR_SS:
        return 2
    if vr == VR_UL or vr == VR_SL or vr == VR_FL:
        return 4
    if vr == VR_UV or vr == VR_SV or vr == VR_FD:
        return 8
    return 0


cdef object decode_numbers(const unsigned char* p, Py_ssize_t n, unsigned short vr, bint little,
                           int* reason):
    cdef int size = number_size(vr)
    cdef Py_ssize_t i
    if n % size:
        reason[0] = LENGTH_NOT_MULTIPLE      # pydicom raises: the caller reports it
        return None
    if n == size:
        return number(p, vr, little)
    return [number(p + i, vr, little) for i in range(0, n, size)]


cdef object decode_AT(const unsigned char* p, Py_ssize_t n, bint little, int* reason):
    cdef Py_ssize_t i
    if n % 4:
        reason[0] = LENGTH_NOT_MULTIPLE
        return None
    tags = [(<unsigned int> load(p + i, 2, little) << 16) | <unsigned int> load(p + i + 2, 2, little)
            for i in range(0, n, 4)]
    return single_or_list(tags)


# --- the dispatch ------------------------------------------------------------------------------


cdef object decode_value(const unsigned char* p, Py_ssize_t n, unsigned short vr, bint little,
                         int charset, list encodings, int* reason):
    """The builtin value of `n` bytes at `p` of VR `vr`; sets `reason` when unsure."""
    cdef object value
    cdef list items
    cdef Py_ssize_t start
    # One value (no backslash), the usual case: trimmed on the bytes, one str made.
    cdef bint single = memchr(p, 92, n) == NULL
    if vr == VR_CS or vr == VR_DA or vr == VR_TM or vr == VR_DT or vr == VR_AS:
        if single:
            return latin1(p, trimmed(p, n))
        return single_or_list(latin1(p, n).rstrip(" \x00").split("\\"))
    if vr == VR_UI:      # convert_UI, then UID() strips each item's whitespace
        if single:
            n = trimmed(p, n)
            start = 0
            while start < n and latin1_whitespace(p[start]):
                start += 1
            while n > start and latin1_whitespace(p[n - 1]):
                n -= 1
            return latin1(p + start, n - start)
        return single_or_list([item.strip() for item in
                               latin1(p, n).rstrip("\x00 ").split("\\")])
    if vr == VR_SH or vr == VR_LO or vr == VR_UC:
        if single and plain_text(p, n, charset):
            return text(p, trimmed(p, n), charset, encodings, reason)
        value = text(p, n, charset, encodings, reason)
        if reason[0]:
            return None
        items = [item.rstrip("\x00 ") for item in value.split("\\")]
        return single_or_list(items)
    if vr == VR_PN:
        # convert_PN: strip the bytes, decode the whole value, split it on backslashes, and
        # make each a PersonName, which drops trailing empty component groups (its str)
        n = trimmed(p, n)
        value = text(p, n, charset, encodings, reason)
        if reason[0]:
            return None
        items = value.split("\\")
        if "=" in value:
            items = [name.rstrip("=") for name in items]
        if encodings[0] in FIRST_ENCODINGS_FAILING_ON_EMPTY:
            for name in items:
                if has_empty_component(name):
                    reason[0] = NAME_NOT_REENCODABLE
                    return None
        return single_or_list(items)
    if vr == VR_ST or vr == VR_LT or vr == VR_UT:
        if plain_text(p, n, charset):
            return text(p, trimmed(p, n), charset, encodings, reason)
        value = text(p, n, charset, encodings, reason)
        if reason[0]:
            return None
        return value.rstrip("\x00 ")
    if vr == VR_US or vr == VR_SS or vr == VR_UL or vr == VR_SL or vr == VR_FL or vr == VR_FD \
            or vr == VR_UV or vr == VR_SV:
        return decode_numbers(p, n, vr, little, reason)
    if vr == VR_DS:
        return decode_DS(p, n, reason)
    if vr == VR_IS:
        return decode_IS(p, n, reason)
    if vr == VR_OB or vr == VR_OW or vr == VR_UN or vr == VR_OD or vr == VR_OF or vr == VR_OL \
            or vr == VR_OV:
        return PyBytes_FromStringAndSize(<const char*> p, n)
    if vr == VR_AE:
        items = [item.strip() for item in latin1(p, n).split("\\")]
        return single_or_list(items)
    if vr == VR_UR:
        return latin1(p, n).rstrip()
    if vr == VR_AT:
        return decode_AT(p, n, little, reason)
    reason[0] = UNKNOWN_VR
    return None


cdef object decode_element(unsigned int tag, const unsigned char* p, Py_ssize_t n,
                           unsigned short vr, bint little, int charset, list encodings,
                           bint lut_descriptor):
    """The builtin value of one element, natively where it is plain, else by pydicom's own
    converter (which may raise: the caller turns that into an undecodable file).
    `lut_descriptor`: apply pydicom's LUT Descriptor fix (`hooks.raw_element_value` adds 65536
    to a negative first value of a multi-value), as pydicom does for an element whose VR was
    not corrected after conversion."""
    cdef object value
    cdef int reason = NATIVE
    if n == 0 and vr in KNOWN_VRS:
        return None          # empty (R5); an unknown VR goes to pydicom, which refuses it
    value = decode_value(p, n, vr, little, charset, encodings, &reason)
    if reason == NATIVE:
        if lut_descriptor and type(value) is list:
            first = value[0]
            if (type(first) is int or type(first) is float) and first < 0:
                value[0] = first + 65536
        return value
    handovers[HANDOVER_REASONS[reason]] += 1
    use_pydicom()
    raw = RawDataElement(BaseTag(tag), chr(vr >> 8) + chr(vr & 0xFF), n,
                         PyBytes_FromStringAndSize(<const char*> p, n), 0, False, little)
    return to_builtin(convert_raw_data_element(raw, encoding=encodings).value)
