# cython: language_level=3
"""The flattener: knows keys (SPEC R4, R5, R7, R8).

It builds the `{field: value}` dict in one pass, from either source: the scanner's element
table (`flatten_header`, the native engine) or a pydicom data set (`flatten`, the pydicom
engine and Dataset inputs). Both keep nesting in an explicit stack instead of recursion, so
depth is bounded by the scanner's limit, never by Python's stack, and both decode only the
elements they report.
"""
from cpython.object cimport PyObject
from libc.stdlib cimport free, realloc
from libc.string cimport memchr

from pydicom.sequence import Sequence

cdef extern from "Python.h":
    # returns a borrowed reference: declared as a pointer so that Cython does not release it
    PyObject* PyDict_SetDefault(object d, object key, object default) except NULL
    int PyGC_Disable()
    int PyGC_Enable()

from deid_fast._decode cimport (CHARSET_DEFAULT, charset_dependent, charset_from_value,
                               decode_element, encodings_for, known_vr, vr_from_name)
from deid_fast._dictionary cimport keyword_of, private_vr_of, vr_of
from deid_fast._scan cimport Header, Token, T_ELEMENT, T_ITEM, T_ITEM_END, T_SEQUENCE, tag_text
from deid_fast._scan import scan
from deid_fast._values cimport to_builtin, is_empty

cdef frozenset PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})

cdef str field_name(unsigned int tag, bint include_private, bint is_file_meta):
    """The name an element is reported under, or None when R4 leaves it out."""
    if (tag & 0xFFFF) == 0 and not is_file_meta:
        return None     # a group length of the data set, private ones included
    if (tag >> 16) & 1:
        return tag_text(tag) if include_private else None
    keyword = keyword_of(tag)
    return keyword or None


def reported_name(unsigned int tag, bint include_private, bint is_file_meta):
    """`field_name` for Python callers (the DICOM JSON output keeps the same elements)."""
    return field_name(tag, include_private, is_file_meta)


cdef class Options:
    """The field rules' options, checked once per call."""
    cdef readonly bint expand_sequences
    cdef readonly frozenset skip
    cdef readonly bint include_private
    cdef readonly bint include_file_meta
    cdef readonly str delimiter
    cdef readonly frozenset select   # top-level names to report, None for all

    def __init__(self, expand_sequences=True, skip=(), include_private=False,
                 include_file_meta=False, delimiter="_", select=None):
        if not isinstance(delimiter, str):
            raise TypeError(f"delimiter must be a str, not {type(delimiter).__name__}")
        self.select = None if select is None else frozenset(select)
        self.expand_sequences = bool(expand_sequences)
        self.skip = frozenset(skip)
        self.include_private = bool(include_private)
        self.include_file_meta = bool(include_file_meta)
        self.delimiter = delimiter


def options_key(tuple settings):
    """The key a call's options are cached under (its checked Job), or None when they cannot be
    (a type other than bool, int, str, None, or a list or tuple of str). Lists become tuples, so
    a list changed after a call makes a new key; which values are bool is part of the key, as
    `True == 1` would otherwise find the Job checked for 1 (and `max_depth=True` must fail).
    Compiled: it runs on every `get_fields` call."""
    cdef Py_ssize_t i, n = len(settings)
    cdef unsigned long long bools = 0
    cdef list converted = None
    if n > 64:
        return None
    for i in range(n):
        value = settings[i]
        kind = type(value)
        if kind is bool:
            bools |= 1ULL << i
        elif kind is list or kind is tuple:
            for item in value:
                if type(item) is not str:
                    return None
            if kind is list:
                if converted is None:
                    converted = list(settings)
                converted[i] = tuple(value)
        elif not (kind is int or kind is str or value is None):
            return None
    return (bools, settings if converted is None else tuple(converted))


class UndecodableElement(Exception):
    """pydicom could not decode an element: where it is (its top-level element's tag and value
    offset, and the path of sequence items down to it) and why."""

    def __init__(self, path, value_tell, cause):
        self.path = path            # ((tag, item index or None), ...) from the top level down
        self.value_tell = value_tell
        self.cause = cause
        where = " > ".join(f"({tag >> 16:04X},{tag & 0xFFFF:04X})" +
                           ("" if index is None else f" item {index}") for tag, index in path)
        super().__init__(f"element {where}: {type(cause).__name__}: {cause}")


def header_tags(dataset):
    """The top-level tags of `dataset` before its first pixel data element (R2), in the order
    pydicom iterates a data set (ascending)."""
    for tag in sorted(dataset.keys()):
        if tag in PIXEL_DATA_TAGS:
            return
        yield tag


cpdef dict flatten(object dataset, object file_meta, Options options):
    """The fields of `dataset` (and of `file_meta` first, when asked for) by SPEC R4-R8."""
    cdef dict fields = {}
    cdef list stack = []
    cdef list items
    cdef dict target
    cdef str prefix, name, key, delimiter = options.delimiter
    cdef bint expand = options.expand_sequences
    cdef bint include_private = options.include_private
    cdef frozenset skip = options.skip
    cdef frozenset select = options.select
    cdef bint is_file_meta
    cdef tuple path
    cdef Py_ssize_t index, count

    # A frame: [tags, their data set, key prefix, target dict, is file meta, path to the data set]
    stack.append([header_tags(dataset), dataset, "", fields, False, ()])
    if options.include_file_meta and file_meta is not None:
        stack.append([iter(sorted(file_meta.keys())), file_meta, "", fields, True, ()])

    while stack:
        frame = stack[len(stack) - 1]
        tag = next(frame[0], None)
        if tag is None:
            stack.pop()
            continue
        prefix = frame[2]
        target = frame[3]
        is_file_meta = frame[4]
        name = field_name(tag, include_private, is_file_meta)
        if name is None or name in skip:
            continue        # never decoded: what is not reported cannot fail (as natively)
        if select is not None and not frame[5] and name not in select:
            continue        # not a selected top-level element
        try:
            element = frame[1][tag]   # pydicom decodes the value here
        except Exception as exc:
            path = frame[5] + ((tag, None),)
            top = path[0][0]
            raw = (file_meta if frame[4] else dataset).get_item(top)
            raise UndecodableElement(path, getattr(raw, "value_tell", None), exc) from exc
        value = element.value
        if isinstance(value, Sequence) or element.VR == "SQ":
            items = list(value) if value is not None else []
            if not items:
                continue  # R5: a sequence with no items is empty
            path = frame[5]
            if expand:
                count = len(items)
                # pushed in reverse so that item 0 is flattened first
                for index in range(count - 1, -1, -1):
                    key = prefix + name + delimiter
                    if count > 1:
                        key = key + str(index) + delimiter
                    stack.append([iter(sorted(items[index].keys())), items[index], key, target,
                                  False, path + ((tag, index),)])
            else:
                key = prefix + name
                if key in target:
                    continue  # R8: the first element under a key wins
                nested = [{} for _ in items]
                target[key] = nested
                for index in range(len(items) - 1, -1, -1):
                    stack.append([iter(sorted(items[index].keys())), items[index], "",
                                  nested[index], False, path + ((tag, index),)])
            continue
        value = to_builtin(value)
        if is_empty(value):
            continue
        key = prefix + name
        if key not in target:
            target[key] = value
    return fields


# --- the native path: straight from the scanner's element table --------------------------------


class NativeUnsupported(Exception):
    """The native path does not handle this file; the pydicom engine does. `reason` is one of a
    few fixed texts (the hand-over counter's key: no tag, no file name), `tag` the element at
    issue, when there is one."""

    def __init__(self, reason, tag=None):
        self.reason = reason
        super().__init__(reason if tag is None else f"{reason}: element {tag_text(tag)}")


# Why the native path hands a whole file to the pydicom engine: a fixed set of reasons (the
# hand-over counter's keys), each a case where pydicom consults what the element table does not
# settle, or judges malformed input with its own rules.
DEPENDENCY_IS_SEQUENCE = "an element another element's VR depends on is a sequence"
DEPENDENCY_IS_TEXT = "an element another element's VR depends on is text"
SEQUENCE_READ_AS_VALUE = "an element that is a sequence by the dictionary was read as a value"
PRIVATE_SEQUENCE_OR_UNKNOWN_VR = ("a private element whose VR by pydicom's private dictionary is "
                                  "a sequence or unknown")
UN_BY_BITS_ALLOCATED = "an explicit UN whose VR pydicom derives from a BitsAllocated value"
LUT_DATA_WITHOUT_DESCRIPTOR = "LUT Data whose LUT Descriptor pydicom cannot read the first value of"
US_OR_SS_UNRESOLVED = ("a 'US or SS' element beside Pixel Data without a Pixel Representation, "
                       "which pydicom fails to resolve")
PIXEL_REPRESENTATION_IS_SEQUENCE = "a Pixel Representation that is a sequence"
CHARSET_TO_JUDGE = "a Specific Character Set pydicom must judge"
OUT_OF_ORDER = "tags out of order or repeated"
FILE_META_TO_JUDGE = "a file meta element pydicom must judge"
VR_PYDICOM_CANNOT_DECODE = "an element whose dictionary VR pydicom has no converter for"
FILE_HANDOVER_REASONS = (
    DEPENDENCY_IS_SEQUENCE, DEPENDENCY_IS_TEXT, SEQUENCE_READ_AS_VALUE,
    PRIVATE_SEQUENCE_OR_UNKNOWN_VR, UN_BY_BITS_ALLOCATED, LUT_DATA_WITHOUT_DESCRIPTOR,
    US_OR_SS_UNRESOLVED, PIXEL_REPRESENTATION_IS_SEQUENCE, CHARSET_TO_JUDGE, OUT_OF_ORDER,
    FILE_META_TO_JUDGE, VR_PYDICOM_CANNOT_DECODE)


cdef unsigned short UN = vr_from_name("UN"), SQ = vr_from_name("SQ"), CS = vr_from_name("CS")
cdef unsigned short LO = vr_from_name("LO"), OB = vr_from_name("OB"), OW = vr_from_name("OW")
cdef unsigned short US = vr_from_name("US"), SS = vr_from_name("SS")

cdef unsigned int PIXEL_REPRESENTATION = 0x00280103
cdef unsigned int PIXEL_DATA = 0x7FE00010
cdef unsigned int LUT_DESCRIPTOR = 0x00283002
cdef unsigned int LUT_DATA = 0x00283006
# pydicom's `filewriter._AMBIGUOUS_US_SS_TAGS`: US when the Pixel Representation is 0, else SS
cdef frozenset US_OR_SS_BY_PIXEL_REPRESENTATION = frozenset({
    0x00189810, 0x00221452, 0x00280104, 0x00280105, 0x00280106, 0x00280107, 0x00280108,
    0x00280109, 0x00280110, 0x00280111, 0x00280120, 0x00280121, 0x00281101, 0x00281102,
    0x00281103, 0x00283002, 0x00409211, 0x00409216, 0x00603004, 0x00603006})
# pydicom's `_AMBIGUOUS_OB_OW_TAGS` and Pixel Data: in explicit VR their VR hangs on
# (Waveform)BitsAllocated; read implicitly they are OW (bytes either way)
cdef frozenset OB_OR_OW_BY_BITS_ALLOCATED = frozenset({
    0x54000110, 0x54000112, 0x5400100A, 0x54001010, 0x7FE00010})


cdef inline bint is_lut_descriptor(unsigned int tag) noexcept:
    """pydicom adds 65536 to a negative first value of these (pydicom.hooks.raw_element_value)."""
    return tag == 0x00281101 or tag == 0x00281102 or tag == 0x00281103 or tag == 0x00283002

cdef frozenset AMBIGUOUS_NAMES = frozenset(["US or SS", "OB or OW", "US or OW", "US or SS or OW"])
cdef list DEFAULT_ENCODINGS = encodings_for(CHARSET_DEFAULT, None)

cdef object NOT_YET = object()     # an item's inherited Pixel Representation, not looked up yet
cdef object NO_REPRESENTATION = object()


cdef struct OpenSequence:
    unsigned int tag
    Py_ssize_t count          # its items
    Py_ssize_t next_index     # of the next item
    Py_ssize_t item_token     # index of the current item's T_ITEM token
    bint defined_length       # pydicom reads its items only when the element is first used
    int charset               # of the data set around it, which each item starts with


cdef class OpenSequences:
    """The sequences the flattener is inside, as a growable C array."""
    cdef OpenSequence* items
    cdef Py_ssize_t size, capacity

    def __dealloc__(self):
        free(self.items)

    cdef int push(self, unsigned int tag, Py_ssize_t count, int charset,
                  bint defined_length) except -1:
        cdef OpenSequence* grown
        if self.size == self.capacity:
            self.capacity = max(16, 2 * self.capacity)
            grown = <OpenSequence*> realloc(self.items, sizeof(OpenSequence) * self.capacity)
            if grown == NULL:
                raise MemoryError()
            self.items = grown
        self.items[self.size].tag = tag
        self.items[self.size].count = count
        self.items[self.size].next_index = 0
        self.items[self.size].charset = charset
        self.items[self.size].defined_length = defined_length
        self.size += 1
        return 0

    cdef inline OpenSequence* innermost(self) noexcept:
        return &self.items[self.size - 1]

    cdef inline void pop(self) noexcept:
        self.size -= 1

    cdef tuple path(self, unsigned int tag):
        """Where an element is: (sequence tag, item index) from the top, then its own tag."""
        cdef Py_ssize_t k
        return tuple([(self.items[k].tag, self.items[k].next_index - 1)
                      for k in range(self.size)] + [(tag, None)])


cdef class DataSets:
    """The data sets the flattener is inside: the top level (level 0), then the current item of
    each open sequence. An element without a VR in the file (implicit VR, or an explicit UN)
    takes the VR pydicom would give it, and for some pydicom looks at other elements of its
    data set and of the data sets around it (`hooks.raw_element_vr`,
    `filewriter.correct_ambiguous_vr_element`, `Dataset._set_pixel_representation`): this
    class answers those look-ups from the element table, each data set's at most once."""
    cdef Token* tokens
    cdef Py_ssize_t token_count
    cdef const unsigned char* buf
    cdef bint little
    cdef OpenSequences sequences
    cdef list inherited      # per level: the Pixel Representation pydicom hands to the item
    cdef list creators       # per level: {private creator tag: its value}, or None
    cdef list ahead          # per level: (charset, encodings) of its (0008,0005), or None

    def __cinit__(self):
        self.inherited = [NO_REPRESENTATION]     # the top level inherits none
        self.creators = [None]
        self.ahead = [None]

    cdef void enter_item(self, int level):
        while len(self.inherited) <= level:
            self.inherited.append(NOT_YET)
            self.creators.append(None)
            self.ahead.append(None)
        self.inherited[level] = NOT_YET
        self.creators[level] = None
        self.ahead[level] = None

    cdef void note_creator(self, int level, unsigned int tag, object value):
        slot = self.creators[level]
        if slot is None:
            slot = self.creators[level] = {}
        (<dict> slot)[tag] = value

    cdef Py_ssize_t find(self, int level, unsigned int tag) noexcept:
        """The index of the element or sequence `tag` of the data set at `level`, -1 if absent
        (the data sets of the native path are in ascending tag order)."""
        cdef Py_ssize_t i, end, item
        cdef Token* token
        if level == 0:
            i = 0
            end = self.token_count
        else:
            item = self.sequences.items[level - 1].item_token
            i = item + 1
            end = self.tokens[item].end
        while i < end:
            token = &self.tokens[i]
            if token.kind == T_ELEMENT or token.kind == T_SEQUENCE:
                if token.tag == tag:
                    return i
                if token.tag > tag:
                    return -1
                if token.kind == T_SEQUENCE:
                    i = token.end
            i += 1
        return -1

    cdef object value_at(self, Py_ssize_t index, int level):
        """The value of a binary element the VR of another element depends on."""
        cdef Token* token = &self.tokens[index]
        cdef bint corrected = False
        cdef unsigned short vr
        if token.kind != T_ELEMENT:
            raise NativeUnsupported(DEPENDENCY_IS_SEQUENCE, token.tag)
        vr = self.vr(token, level, &corrected)
        if charset_dependent(vr):
            raise NativeUnsupported(DEPENDENCY_IS_TEXT, token.tag)
        return decode_element(token.tag, self.buf + token.offset, token.length, vr, self.little,
                              CHARSET_DEFAULT, DEFAULT_ENCODINGS,
                              not corrected and is_lut_descriptor(token.tag))

    cdef unsigned short vr(self, Token* token, int level, bint* corrected) except? 0:
        """The VR pydicom decodes the element with (its `raw_element_vr` hook, then the
        correction of an ambiguous VR, which sets `corrected`)."""
        cdef unsigned int tag = token.tag
        cdef unsigned short vr = token.vr
        cdef str name
        if vr != 0 and vr != UN:
            return vr
        if (tag >> 16) & 1:      # private: a UN of any length too (replace_un_with_known_vr)
            return self.private_vr(token, level)
        if vr == UN and token.length >= 0xFFFF:
            return UN
        name = vr_of(tag)
        if name is None:
            return UN   # unknown public tags have no keyword: never reported
        vr = vr_from_name(name)
        if vr == SQ:
            raise NativeUnsupported(SEQUENCE_READ_AS_VALUE, tag)
        if vr != 0:
            return vr
        if name not in AMBIGUOUS_NAMES:     # 'NONE' of the item delimiters: pydicom raises
            raise NativeUnsupported(VR_PYDICOM_CANNOT_DECODE, tag)
        corrected[0] = True
        return self.ambiguous_vr(token, name, level)

    cdef unsigned short private_vr(self, Token* token, int level) except? 0:
        """pydicom's `_private_vr_for_tag`: LO for a private creator, the private dictionary's
        VR for an element of a known creator's block, else UN."""
        cdef unsigned int tag = token.tag
        cdef unsigned int element = tag & 0xFFFF
        cdef unsigned short vr
        if 0x10 <= element <= 0xFF:
            return LO
        if element < 0x100:
            return UN
        slot = self.creators[level]
        creator = None if slot is None else (<dict> slot).get((tag & 0xFFFF0000) | (element >> 8))
        name = private_vr_of(creator, tag)
        if name is None:
            return UN
        if name in AMBIGUOUS_NAMES:
            return OB          # no correction applies to a private tag: pydicom keeps the bytes
        vr = vr_from_name(name)
        if vr == SQ or not known_vr(vr):
            raise NativeUnsupported(PRIVATE_SEQUENCE_OR_UNKNOWN_VR, tag)
        return vr

    cdef unsigned short ambiguous_vr(self, Token* token, str name, int level) except? 0:
        """pydicom's `_correct_ambiguous_vr_element`, with the data set `ds` as
        `Dataset.__getitem__` passes it (the element's own data set only)."""
        cdef unsigned int tag = token.tag
        cdef Py_ssize_t i
        if name == "OB or OW":
            if token.vr == UN and tag in OB_OR_OW_BY_BITS_ALLOCATED:
                raise NativeUnsupported(UN_BY_BITS_ALLOCATED, tag)
            return OB      # OB, OW or left ambiguous: the value is the bytes either way
        if name == "US or SS" and tag in US_OR_SS_BY_PIXEL_REPRESENTATION:
            return US if self.unsigned_pixels(level) else SS
        if tag == LUT_DATA:
            i = self.find(level, LUT_DESCRIPTOR)
            descriptor = self.value_at(i, level) if i >= 0 else None
            if type(descriptor) is not list:    # pydicom fails to index it
                raise NativeUnsupported(LUT_DATA_WITHOUT_DESCRIPTOR, tag)
            return US if descriptor[0] == 1 else OW
        return OB          # an ambiguous VR pydicom does not correct: the value stays bytes

    cdef bint unsigned_pixels(self, int level) except -1:
        """Whether a 'US or SS' element of the data set at `level` is US."""
        cdef Py_ssize_t i = self.find(level, PIXEL_REPRESENTATION)
        if i >= 0:
            value = self.value_at(i, level)
            if value is not None:
                return value == 0
        representation = self.inherited_representation(level)
        if representation is not NO_REPRESENTATION:
            return representation == 0
        if i >= 0:
            return False       # present but empty: pydicom compares None with 0
        if self.find(level, PIXEL_DATA) >= 0:
            raise NativeUnsupported(US_OR_SS_UNRESOLVED)
        return True

    cdef object inherited_representation(self, int level):
        """The `_pixel_rep` pydicom gave the item at `level` when it read the sequence holding
        it; worked out from the top down without recursion."""
        cdef int known = level
        cdef int k
        while known > 0 and self.inherited[known] is NOT_YET:
            known -= 1
        for k in range(known + 1, level + 1):
            self.inherited[k] = self.item_representation(k)
        return self.inherited[level]

    cdef object item_representation(self, int level):
        """One step of `Dataset._set_pixel_representation`: the item's own Pixel
        Representation bytes (1 if any byte is 0x01), else its parent's `_pixel_rep`. pydicom
        takes that step only for a sequence of defined length (read as a raw element, converted
        on first use); one of undefined length is parsed while the file is read, and its items
        inherit nothing."""
        cdef Py_ssize_t i
        cdef Token* token
        if not self.sequences.items[level - 1].defined_length:
            return NO_REPRESENTATION
        i = self.find(level, PIXEL_REPRESENTATION)
        if i >= 0:
            token = &self.tokens[i]
            if token.kind != T_ELEMENT:
                raise NativeUnsupported(PIXEL_REPRESENTATION_IS_SEQUENCE)
            if token.length > 0:
                return 1 if memchr(self.buf + token.offset, 1, token.length) != NULL else 0
        i = self.find(level - 1, PIXEL_REPRESENTATION)
        if i >= 0:
            value = self.value_at(i, level - 1)
            if value is not None:
                return (1 if b"\x01" in value else 0) if type(value) is bytes else value
        return self.inherited[level - 1]

    cdef tuple charset_ahead(self, int level, int charset, list encodings):
        """The character set of the data set at `level` for an element that precedes its
        (0008,0005): pydicom decodes it with the set that follows. Looked up once per data set
        (a file may hold any number of such elements)."""
        if self.ahead[level] is None:
            self.ahead[level] = self._charset_ahead(level, charset, encodings)
        return self.ahead[level]

    cdef tuple _charset_ahead(self, int level, int charset, list encodings):
        cdef Py_ssize_t i = self.find(level, 0x00080005)
        cdef Token* token
        cdef bint corrected = False
        if i < 0:
            return charset, encodings
        token = &self.tokens[i]
        if token.kind != T_ELEMENT or self.vr(token, level, &corrected) != CS:
            raise NativeUnsupported(CHARSET_TO_JUDGE)
        value = decode_element(token.tag, self.buf + token.offset, token.length, CS, self.little,
                               CHARSET_DEFAULT, DEFAULT_ENCODINGS, False)
        charset = charset_from_value(value)
        return charset, encodings_for(charset, value)


cdef int add_group_fields(Header header, DataSets data_sets, Options options, dict fields,
                          Py_ssize_t start, Py_ssize_t stop, bint is_file_meta, bint report,
                          int charset, list encodings, unsigned int entity_tag,
                          unsigned int item_tag, list found) except -1:
    """The fields of the file meta group or the command set (flat groups, little endian, read
    from the file's bytes) into `fields` when `report`, and the values of the id tags into
    `found`."""
    cdef Token* token
    cdef unsigned int tag
    cdef unsigned short vr
    cdef bint corrected, reported, lookup
    cdef str name
    cdef Py_ssize_t base = header.meta_start if is_file_meta else header.meta_end
    cdef frozenset skip = options.skip
    cdef frozenset select = options.select
    for i in header.group_order(start, stop, header.meta_ordered or not is_file_meta):
        token = &header.group_tokens[<Py_ssize_t> i]
        tag = token.tag
        lookup = (tag & 0xFFFF) != 0 and (tag == entity_tag or tag == item_tag)
        name = field_name(tag, options.include_private, is_file_meta) if report else None
        reported = name is not None and name not in skip and (select is None or name in select)
        if not (reported or lookup):
            continue
        try:
            corrected = False
            vr = data_sets.vr(token, 0, &corrected)
            value = decode_element(tag, header.file_source.buf + token.offset, token.length, vr,
                                   True, charset, encodings, False)
        except NativeUnsupported:
            raise
        except Exception as exc:
            raise UndecodableElement(((tag, None),), token.offset - base, exc) from exc
        if tag == entity_tag:
            found[0] = value
        if tag == item_tag:
            found[1] = value
        if reported and not is_empty(value):
            PyDict_SetDefault(fields, name, value)
    return 0


cpdef tuple flatten_header(Header header, Options options, dict fields, unsigned int entity_tag,
                           unsigned int item_tag):
    """Add the fields of a scanned header to `fields` natively (SPEC R4-R8); returns
    (fields, entity value, item value), the two values as builtins or None when absent from the
    top level. Raises NativeUnsupported for what the native path leaves to pydicom."""
    # The result holds no reference cycles, so the collector has nothing to find while it is
    # built; left on, it would traverse the growing dict again and again on large headers.
    cdef int collecting = PyGC_Disable()
    try:
        return _flatten_header(header, options, fields, entity_tag, item_tag)
    finally:
        if collecting:
            PyGC_Enable()


cdef tuple _flatten_header(Header header, Options options, dict fields, unsigned int entity_tag,
                           unsigned int item_tag):
    cdef Token* tokens = header.tokens
    cdef Token* token
    cdef const unsigned char* buf = header.data_source.buf
    cdef bint little = header.is_little_endian
    cdef bint expand = options.expand_sequences
    cdef bint include_private = options.include_private
    cdef frozenset skip = options.skip
    cdef frozenset select = options.select
    cdef str delimiter = options.delimiter
    cdef str prefix = ""
    cdef str name, key
    cdef dict target = fields
    # The open sequences, innermost last: their counters and character set in C, and in `saved`
    # four objects each: the prefix, target and encodings outside the sequence, and the key base
    # of its items (or, with expand_sequences=False, the list of its item dicts). Nothing is
    # allocated per frame.
    cdef OpenSequences open_sequences = OpenSequences()
    cdef OpenSequence* sequence
    cdef DataSets data_sets = DataSets()
    cdef list saved = []
    cdef Py_ssize_t i = 0, n = header.token_count, count, top
    cdef int depth = 0, charset = CHARSET_DEFAULT
    cdef list encodings = encodings_for(CHARSET_DEFAULT, None)
    cdef unsigned int tag
    cdef unsigned short vr
    cdef bint lookup, reported, creator, corrected

    if not header.ordered:
        raise NativeUnsupported(OUT_OF_ORDER)
    if header.meta_suspect:
        raise NativeUnsupported(FILE_META_TO_JUDGE)
    data_sets.tokens = tokens
    data_sets.token_count = n
    data_sets.buf = buf
    data_sets.little = little
    data_sets.sequences = open_sequences

    found = [None, None]
    meta_found = None
    if options.include_file_meta and header.meta_token_count:     # R2: the file meta first
        meta_found = [None, None]
        add_group_fields(header, data_sets, options, fields, 0, header.meta_token_count, True,
                         True, CHARSET_DEFAULT, encodings, entity_tag, item_tag, meta_found)
    if header.group_token_count > header.meta_token_count:
        # the command set: top-level elements of the data set for pydicom, decoded with its
        # character set
        ahead = data_sets.charset_ahead(0, charset, encodings)
        add_group_fields(header, data_sets, options, fields, header.meta_token_count,
                         header.group_token_count, False, True, ahead[0], ahead[1], entity_tag,
                         item_tag, found)
    entity, item = found

    while i < n:
        token = &tokens[i]
        if token.kind == T_ELEMENT:
            tag = token.tag
            if (tag & 0xFFFF) == 0:          # group lengths: never reported
                i += 1
                continue
            lookup = depth == 0 and (tag == entity_tag or tag == item_tag)
            if (tag >> 16) & 1:
                if not include_private:
                    i += 1
                    continue
                name = tag_text(tag)
            else:
                name = keyword_of(tag)
                if not name:
                    i += 1
                    continue
            reported = name not in skip and (select is None or depth or name in select)
            creator = include_private and (tag >> 16) & 1 and 0x10 <= (tag & 0xFFFF) <= 0xFF
            if not (reported or lookup or creator or tag == 0x00080005):
                i += 1
                continue
            try:
                corrected = False
                vr = data_sets.vr(token, depth, &corrected)
                if tag < 0x00080005 and charset_dependent(vr):
                    # pydicom decodes it with the character set that follows it in its data set
                    ahead = data_sets.charset_ahead(depth, charset, encodings)
                    value = decode_element(tag, buf + token.offset, token.length, vr, little,
                                           ahead[0], ahead[1], False)
                else:
                    value = decode_element(tag, buf + token.offset, token.length, vr, little,
                                           charset, encodings,
                                           not corrected and is_lut_descriptor(tag))
            except NativeUnsupported:
                raise
            except Exception as exc:
                raise UndecodableElement(open_sequences.path(tag),
                                         token.offset - header.data_start, exc) from exc
            if creator:
                data_sets.note_creator(depth, tag, value)
            if tag == 0x00080005:    # for this data set and what it holds (pydicom's
                if vr != CS:             # parent_encoding); pydicom fails on a PN, say
                    raise NativeUnsupported(CHARSET_TO_JUDGE, tag)
                charset = charset_from_value(value)
                try:
                    encodings = encodings_for(charset, value)
                except Exception as exc:     # a value pydicom cannot make encodings of
                    raise UndecodableElement(open_sequences.path(tag),
                                             token.offset - header.data_start, exc) from exc
            if lookup:
                if tag == entity_tag:
                    entity = value
                if tag == item_tag:
                    item = value
            if reported and not is_empty(value):
                # R8: the first element under a key wins (one dict operation)
                PyDict_SetDefault(target, prefix + name if depth else name, value)
        elif token.kind == T_SEQUENCE:
            tag = token.tag
            count = token.count
            if (tag >> 16) & 1:
                name = tag_text(tag) if include_private else None
            else:
                name = keyword_of(tag) or None
            if tag == entity_tag or tag == item_tag or (tag & 0xFFFF) == 0:
                name = None          # lookups of a sequence, group length: not here
            if (name is None or name in skip or count == 0
                    or (select is not None and not depth and name not in select)):
                i = token.end + 1    # the whole subtree is left out
                continue
            if expand:
                base = prefix + name + delimiter
            else:
                key = prefix + name
                if key in target:
                    i = token.end + 1    # R8: the first element under a key wins
                    continue
                base = []
                target[key] = base
            open_sequences.push(tag, count, charset, token.length != 0xFFFFFFFF)
            saved.append(prefix)
            saved.append(target)
            saved.append(encodings)
            saved.append(base)
            depth += 1
        elif token.kind == T_ITEM:
            sequence = open_sequences.innermost()
            index = sequence.next_index
            sequence.next_index += 1
            sequence.item_token = i
            data_sets.enter_item(depth)
            base = saved[len(saved) - 1]
            if expand:
                prefix = base + str(index) + delimiter if sequence.count > 1 else base
            else:
                target = {}
                base.append(target)
                prefix = ""
        elif token.kind == T_ITEM_END:      # back to the sequence's surroundings
            top = len(saved)
            prefix = saved[top - 4]
            target = saved[top - 3]
            encodings = saved[top - 2]
            charset = open_sequences.innermost().charset
        else:   # T_SEQUENCE_END: its last item's end has restored the surroundings
            del saved[len(saved) - 4:]
            open_sequences.pop()
            depth -= 1
        i += 1
    # R3: an id the top level lacks is looked up in the file meta
    if ((is_empty(entity) and entity_tag >> 16 == 2) or (is_empty(item) and item_tag >> 16 == 2)) \
            and header.meta_token_count:
        if meta_found is None:
            meta_found = [None, None]
            add_group_fields(header, data_sets, options, fields, 0, header.meta_token_count,
                             True, False, CHARSET_DEFAULT, encodings, entity_tag, item_tag,
                             meta_found)
        if is_empty(entity):
            entity = meta_found[0]
        if is_empty(item):
            item = meta_found[1]
    return fields, entity, item


def read_native(path, bint force, int max_depth, unsigned int stop_after,
                Py_ssize_t max_header_bytes, Py_ssize_t max_elements, Options options,
                unsigned int entity_tag, unsigned int item_tag, bint checked=False):
    """Scan and flatten one file natively, in one compiled call: (header, fields, entity value,
    item value). An UndecodableElement carries the header, for its offset. `checked`: see
    `scan`."""
    header = scan(path, force, max_depth, stop_after, max_header_bytes, max_elements, checked)
    try:
        return (header,) + flatten_header(header, options, {}, entity_tag, item_tag)
    except UndecodableElement as exc:
        exc.header = header
        raise
