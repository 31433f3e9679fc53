# cython: language_level=3
"""The flattener: knows keys (SPEC R4, R5, R7, R8).

It turns a pydicom data set into the `{field: value}` dict in one pass, with an explicit stack
of (elements, key prefix, target) frames instead of recursion, so nesting depth is bounded only
by the scanner's limit, never by Python's stack.
"""
from pydicom.datadict import keyword_for_tag
from pydicom.sequence import Sequence

from deid_fast._values cimport to_builtin, is_empty

cdef frozenset PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})

# tag -> keyword ('' for tags without one): pydicom's dictionary, repeating groups included
cdef dict _keywords = {}


cdef str keyword_of(unsigned int tag):
    try:
        return _keywords[tag]
    except KeyError:
        keyword = keyword_for_tag(tag)
        _keywords[tag] = keyword
        return keyword


cdef str field_name(object element, bint include_private, bint is_file_meta):
    """The name an element is reported under, or None when R4 leaves it out."""
    cdef unsigned int tag = element.tag
    if (tag & 0xFFFF) == 0 and not is_file_meta:
        return None     # a group length of the data set, private ones included
    if (tag >> 16) & 1:
        if include_private:
            return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        return None
    keyword = keyword_of(tag)
    return keyword or None


cdef class Options:
    """The field rules' options, checked once per call."""
    cdef readonly bint expand_sequences
    cdef readonly frozenset skip
    cdef readonly bint include_private
    cdef readonly bint include_file_meta
    cdef readonly str delimiter

    def __init__(self, expand_sequences=True, skip=(), include_private=False,
                 include_file_meta=False, delimiter="_"):
        if not isinstance(delimiter, str):
            raise TypeError(f"delimiter must be a str, not {type(delimiter).__name__}")
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
        source = frame[1]
        try:
            element = source[tag]   # pydicom decodes the value here
        except Exception as exc:
            path = frame[5] + ((tag, None),)
            top = path[0][0]
            raw = (file_meta if frame[4] else dataset).get_item(top)
            raise UndecodableElement(path, getattr(raw, "value_tell", None), exc) from exc
        prefix = frame[2]
        target = frame[3]
        is_file_meta = frame[4]
        name = field_name(element, include_private, is_file_meta)
        if name is None or name in skip:
            continue
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
