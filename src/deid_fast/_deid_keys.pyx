# cython: language_level=3
"""deid 0.4's keys: the `{uid: DicomField}` lookup of `deid.dicom.get_identifiers`, from the
scanner's element table.

deid 0.4 walks a pydicom data set breadth first (`deid.dicom.fields._get_fields_inner`): the
top-level elements in tag order (sequences are fields too), then the file meta's, then the
items of the sequences met, in the order met. A field's uid is the path of tags and item
indexes (`(300A,0010)__0__(300A,0012)`), its name the path of keywords joined with `__`. None
of that needs a value, so nothing is decoded here: a field's `element` is made by pydicom from
the header's bytes when it is first read (`HeaderSource` in `deid_fast.deid`).
"""
import re

from pydicom._private_dict import private_dictionaries
from pydicom.datadict import DicomDictionary

from deid_fast._dictionary cimport vr_of
from deid_fast._scan cimport Header, Token, T_ELEMENT, T_ITEM, T_SEQUENCE, tag_text

from deid_fast._flatten import (FILE_META_TO_JUDGE, OUT_OF_ORDER, SEQUENCE_READ_AS_VALUE,
                                PRIVATE_SEQUENCE_OR_UNKNOWN_VR, NativeUnsupported)

cdef unsigned short VR_UN = (ord("U") << 8) | ord("N")


cdef dict _KEYWORDS = {}
cdef Py_ssize_t _KEYWORDS_FOR = -1      # the size of pydicom's dictionary the cache was made for


cdef void keywords_current():
    """Forget the cached keywords when pydicom's dictionary changed size (add_dict_entries)."""
    global _KEYWORDS_FOR
    if len(DicomDictionary) != _KEYWORDS_FOR:
        _KEYWORDS.clear()
        _KEYWORDS_FOR = len(DicomDictionary)


cdef str element_keyword(unsigned int tag):
    """`DataElement.keyword` of pydicom: the keyword of the main dictionary only, so '' for
    private tags, unknown tags and repeating groups (an overlay's (6000,3000) has none)."""
    keyword = _KEYWORDS.get(tag)
    if keyword is None:
        entry = DicomDictionary.get(tag)
        keyword = "" if entry is None else entry[4]
        if len(_KEYWORDS) < 1 << 16:       # private tags are unbounded: keep the cache small
            _KEYWORDS[tag] = keyword
    return <str> keyword


cdef dict _TAG_TEXTS = {}

cdef str uid_part(unsigned int tag):
    """`str(tag)` of pydicom, '(gggg,eeee)' in upper-case hex (cached: made per field)."""
    text = _TAG_TEXTS.get(tag)
    if text is None:
        text = tag_text(tag)
        if len(_TAG_TEXTS) < 1 << 16:
            _TAG_TEXTS[tag] = text
    return <str> text


_STRIP = re.compile("([(]|[)]|,| )")

cdef object _UNSET = object()     # an element not made yet


cdef class DicomField:
    """A field of deid 0.4's lookup, as `deid.dicom.fields.DicomField`: `element` (a pydicom
    DataElement, made from the header's bytes when first read), `name`, `uid`, `is_filemeta`,
    the `tag` and `stripped_tag` texts, and deid's matching methods."""
    cdef object _element
    cdef public object name
    cdef public object uid
    cdef public object is_filemeta
    cdef unsigned int _tag
    cdef object _source           # what makes the element: HeaderSource of deid_fast.deid
    cdef dict __dict__            # deid's fields take any attribute; so do these

    def __init__(self, element, name, uid, is_filemeta=False):
        self._element = element
        self.name = name
        self.uid = uid
        self.is_filemeta = is_filemeta

    @property
    def element(self):
        if self._element is _UNSET:
            self._element = self._source.element(self.uid, self.is_filemeta)
            self._source = None
        return self._element

    @element.setter
    def element(self, value):
        self._element = value
        self._source = None

    @property
    def tag(self):
        """The element's tag as text, '(0010,0020)' (deid: `str(element.tag)`)."""
        if self._element is _UNSET:
            return uid_part(self._tag)
        return str(self._element.tag)

    @property
    def stripped_tag(self):
        """The tag's hex digits only, '00100020'."""
        return _STRIP.sub("", self.tag)

    def __str__(self):
        return "%s  [%s]" % (self.element, self.name)

    def __repr__(self):
        return self.__str__()

    def __reduce__(self):
        # copied or pickled with its element made: a copy must not depend on this file's bytes
        state = getattr(self, "__dict__", None) or None
        return (DicomField, (self.element, self.name, self.uid, self.is_filemeta), state)

    def __setstate__(self, state):
        for key, value in state.items():
            setattr(self, key, value)

    # deid 0.4's matching, to the letter (deid.dicom.fields.DicomField)

    def name_contains(self, expression):
        if isinstance(expression, str):
            expression = re.compile(expression, re.IGNORECASE)
        element = self.element
        if (expression.search(self.name.lower())
                or expression.search(f"({element.tag.group:04X},{element.tag.element:04X})".lower())
                or expression.search(self.stripped_tag)
                or expression.search(element.name)
                or expression.search(element.keyword)):
            return True
        if element.is_private and (element.private_creator is not None):
            stripped_private_tag = (f'{element.tag.group:04X},"{element.private_creator}",'
                                    f'{(element.tag.element & 0xFF):02X}')
            private_tag = "(" + stripped_private_tag + ")"
            if re.search(expression, stripped_private_tag) or re.search(expression, private_tag):
                return True
        return False

    def value_contains(self, expression):
        values = self.element.value
        if not isinstance(values, list):
            values = [values]
        values = [str(x) for x in values]
        for value in values:
            if re.search(expression, value, re.IGNORECASE):
                return True
        return False

    def select_matches(self, expression):
        attribute, value = expression.split(":", 1)
        attribute = attribute.upper()
        if attribute == "VR":
            value = value[0:2].upper()
            return self.element.VR == value
        elif attribute == "GROUP":
            value = int(value, 16)
            return self.element.tag.group == value
        return False


cdef inline DicomField new_field(str name, str uid, unsigned int tag, bint is_filemeta,
                                 object source):
    cdef DicomField field = DicomField.__new__(DicomField)
    field._element = _UNSET
    field.name = name
    field.uid = uid
    field.is_filemeta = True if is_filemeta else False
    field._tag = tag
    field._source = source
    return field


# --- which private elements pydicom may read as a sequence --------------------------------------
# A private element without a VR in the file (implicit VR, or UN) is a sequence for pydicom when
# its creator's private dictionary entry says SQ; the scanner cannot know the creator's value, so
# any tag some creator's entry makes a sequence is handed to pydicom. 354 of pydicom's 10,545
# entries are sequences; the sets are rebuilt when the private dictionaries change size.

cdef object _private_sequences_key = None
cdef tuple _private_sequences = None


cdef tuple private_sequence_tags():
    global _private_sequences_key, _private_sequences
    key = (len(private_dictionaries), sum([len(entries) for entries in private_dictionaries.values()]))
    if key != _private_sequences_key:
        exact, any_block, any_group = set(), set(), set()
        for entries in private_dictionaries.values():
            for code, entry in entries.items():
                if entry[0] != "SQ" or len(code) != 8:
                    continue
                try:
                    if "x" not in code:
                        exact.add(int(code, 16))
                    elif code[4:6] == "xx" and "x" not in code[:4] + code[6:]:
                        any_block.add(int(code[:4], 16) << 8 | int(code[6:], 16))
                    elif code[2:6] == "xxxx" and "x" not in code[:2] + code[6:]:
                        any_group.add(int(code[:2], 16) << 8 | int(code[6:], 16))
                except ValueError:
                    continue      # a key pydicom's own look-up can never match
        _private_sequences = (frozenset(exact), frozenset(any_block), frozenset(any_group))
        _private_sequences_key = key
    return _private_sequences


cdef int check_not_sequence(Token* token, list private_sequences) except -1:
    """Raise NativeUnsupported when pydicom could read this element, which the scanner read as a
    value, as a sequence (its VR comes from a dictionary: implicit VR, or UN)."""
    cdef unsigned int tag = token.tag
    if token.vr != 0 and token.vr != VR_UN:
        return 0
    if (tag >> 16) & 1 == 0:
        if token.vr == VR_UN and token.length >= 0xFFFF:
            return 0          # pydicom keeps a long UN as it is
        if vr_of(tag) == "SQ":
            raise NativeUnsupported(SEQUENCE_READ_AS_VALUE, tag)
        return 0
    if (tag & 0xFFFF) < 0x100:
        return 0              # a private creator (LO), or UN
    if not private_sequences:
        private_sequences.append(private_sequence_tags())
    exact, any_block, any_group = private_sequences[0]
    if (tag in <frozenset> exact
            or ((tag >> 16) << 8 | (tag & 0xFF)) in <frozenset> any_block
            or ((tag >> 24) << 8 | (tag & 0xFF)) in <frozenset> any_group):
        raise NativeUnsupported(PRIVATE_SEQUENCE_OR_UNKNOWN_VR, tag)
    return 0


# --- the walk ------------------------------------------------------------------------------------


cdef inline bint skipped(str keyword, str uid_text, frozenset skip):
    return keyword in skip or uid_text in skip


def deid_fields(Header header, frozenset skip, bint expand_sequences, object source):
    """deid 0.4's `{uid: DicomField}` of a scanned header, breadth first as deid walks it.
    `skip` holds the keywords and '(gggg,eeee)' texts to leave out (with what they hold);
    `expand_sequences` is deid's `expand_sequences is True`. A pixel data element the header
    ends at is a field too (its element is read from the file when asked for). Raises
    NativeUnsupported where pydicom's data set may differ from the element table."""
    cdef dict fields = {}
    cdef list queue = []          # items to walk: (T_ITEM index, uid, name)
    cdef list private_sequences = []
    cdef Token* tokens = header.tokens
    cdef Token* token
    cdef Py_ssize_t head = 0, i, j, end, index
    cdef unsigned int tag
    cdef str keyword, part, uid, name, item_uid, item_name
    if not header.ordered:
        raise NativeUnsupported(OUT_OF_ORDER)
    if header.meta_suspect:
        raise NativeUnsupported(FILE_META_TO_JUDGE)
    keywords_current()

    # the top level: the command set (group 0000) comes first in tag order, then the data set
    for i in header.group_order(header.meta_token_count, header.group_token_count, True):
        token = &header.group_tokens[i]
        keyword = element_keyword(token.tag)
        part = uid_part(token.tag)
        if not skipped(keyword, part, skip) and part not in fields:
            fields[part] = new_field(keyword, part, token.tag, False, source)
    i = 0
    end = header.token_count
    item_uid = item_name = None
    while True:
        while i < end:
            token = &tokens[i]
            tag = token.tag
            keyword = element_keyword(tag)
            part = uid_part(tag)
            if token.kind == T_ELEMENT:
                i += 1
                if skipped(keyword, part, skip):
                    continue
                check_not_sequence(token, private_sequences)
            else:           # T_SEQUENCE: its items follow it, up to its end token
                i = token.end + 1
                if skipped(keyword, part, skip):
                    continue
            if item_uid is None:
                uid = part
                name = keyword
            else:
                uid = item_uid + "__" + part
                name = item_name + "__" + keyword
            if uid not in fields:
                fields[uid] = new_field(name, uid, tag, False, source)
            if token.kind == T_SEQUENCE and expand_sequences:
                j = (token - tokens) + 1
                index = 0
                while tokens[j].kind == T_ITEM:
                    queue.append((j, uid + "__" + str(index), name))
                    index += 1
                    j = tokens[j].end + 1
        if item_uid is None:
            # the top level is done: the pixel data it ends at, then the file meta (deid's second
            # data set), then the items in the order met
            top_level_done(header, fields, skip, source)
        if head == len(queue):
            break
        entry = queue[head]
        head += 1
        j = entry[0]
        item_uid = entry[1]
        item_name = entry[2]
        i = j + 1
        end = tokens[j].end
    return fields


def add_pixel_data_field(dict fields, unsigned int tag, frozenset skip, object source):
    """The pixel data element a header ends at (`Header.stopped_at`) as a field, unless skipped:
    deid has it among the top-level elements, the last of those the header holds."""
    cdef str keyword, part
    if tag == 0x7FE00010 or tag == 0x7FE00008 or tag == 0x7FE00009:
        keyword = element_keyword(tag)
        part = uid_part(tag)
        if not skipped(keyword, part, skip) and part not in fields:
            fields[part] = new_field(keyword, part, tag, False, source)


cdef int top_level_done(Header header, dict fields, frozenset skip, object source) except -1:
    cdef Token* token
    cdef str keyword, part
    add_pixel_data_field(fields, header.stopped_at, skip, source)
    for i in header.group_order(0, header.meta_token_count, header.meta_ordered):
        token = &header.group_tokens[<Py_ssize_t> i]
        keyword = element_keyword(token.tag)
        part = uid_part(token.tag)
        if not skipped(keyword, part, skip) and part not in fields:
            fields[part] = new_field(keyword, part, token.tag, True, source)
    return 0
