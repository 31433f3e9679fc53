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

from pydicom.sequence import Sequence

cdef extern from "Python.h":
    # returns a borrowed reference: declared as a pointer so that Cython does not release it
    PyObject* PyDict_SetDefault(object d, object key, object default) except NULL
    int PyGC_Disable()
    int PyGC_Enable()

from deid_fast._decode cimport (CHARSET_DEFAULT, charset_dependent, charset_from_value,
                               decode_element, encodings_for, vr_from_name)
from deid_fast._dictionary cimport keyword_of, vr_of
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
    """The native path does not handle this file (the reason says why); the pydicom engine does."""


cdef unsigned short UN = (ord("U") << 8) | ord("N")
cdef unsigned short SQ = (ord("S") << 8) | ord("Q")
cdef unsigned short CS = (ord("C") << 8) | ord("S")


cdef unsigned short resolved_vr(Token* token, bint include_private) except? 0:
    """The VR pydicom would decode the element with (its `raw_element_vr` hook)."""
    cdef unsigned int tag = token.tag
    cdef unsigned short vr = token.vr
    cdef str name
    if vr != 0 and vr != UN:
        return vr
    if (tag >> 16) & 1:   # private: pydicom asks its private dictionary
        raise NativeUnsupported(f"private element {tag_text(tag)} without a VR in the file")
    if vr == UN and token.length >= 0xFFFF:
        return UN
    name = vr_of(tag)
    if name is None:
        return UN   # unknown public tags have no keyword: never reported
    vr = vr_from_name(name)
    if vr == 0 or vr == SQ:
        raise NativeUnsupported(f"element {tag_text(tag)} has VR {name!r} by the dictionary")
    return vr


cdef struct OpenSequence:
    unsigned int tag
    Py_ssize_t count          # its items
    Py_ssize_t next_index     # of the next item
    int charset               # of the data set around it, which each item starts with


cdef class OpenSequences:
    """The sequences the flattener is inside, as a growable C array."""
    cdef OpenSequence* items
    cdef Py_ssize_t size, capacity

    def __dealloc__(self):
        free(self.items)

    cdef int push(self, unsigned int tag, Py_ssize_t count, int charset) except -1:
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
    cdef list saved = []
    cdef Py_ssize_t i = 0, n = header.token_count, count, top
    cdef int depth = 0, charset = CHARSET_DEFAULT
    cdef list encodings = encodings_for(CHARSET_DEFAULT, None)
    cdef unsigned int tag
    cdef unsigned short vr
    cdef bint lookup, reported
    entity = None
    item = None

    if not header.ordered:
        raise NativeUnsupported("tags out of order or repeated")
    if header.command_end > header.meta_end:
        raise NativeUnsupported("a command set")
    if header.meta_suspect:
        raise NativeUnsupported("a file meta element pydicom must judge")

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
            if not (reported or lookup or tag == 0x00080005):
                i += 1
                continue
            vr = resolved_vr(token, include_private)
            if tag < 0x00080005 and charset_dependent(vr):
                # pydicom decodes it with the character set that follows it in the data set
                raise NativeUnsupported(f"text element {tag_text(tag)} before the character set")
            try:
                value = decode_element(tag, buf + token.offset, token.length, vr, little, charset,
                                       encodings)
            except NativeUnsupported:
                raise
            except Exception as exc:
                raise UndecodableElement(open_sequences.path(tag),
                                         token.offset - header.data_start, exc) from exc
            if tag == 0x00080005:    # for this data set and what it holds (pydicom's
                if vr != CS:             # parent_encoding); pydicom fails on a PN, say
                    raise NativeUnsupported(f"Specific Character Set with VR {chr(vr >> 8)}{chr(vr & 0xFF)}")
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
            open_sequences.push(tag, count, charset)
            saved.append(prefix)
            saved.append(target)
            saved.append(encodings)
            saved.append(base)
            depth += 1
        elif token.kind == T_ITEM:
            sequence = open_sequences.innermost()
            index = sequence.next_index
            sequence.next_index += 1
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
