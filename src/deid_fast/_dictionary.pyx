# cython: language_level=3
"""pydicom's data dictionary as the compiled code needs it: tag -> keyword and tag -> VR.

A C open-addressing hash table keyed by the 32-bit tag, filled once at import from
`pydicom.datadict` (every exact tag), so a lookup costs no Python object. Tags of the repeating
groups (curves 50xx, overlays 60xx, ...) and tags the dictionary does not know are resolved
through pydicom's own mask matching on first sight and cached, up to a bound, so a file full of
unknown tags cannot grow the table.
"""
from cpython.object cimport PyObject
from libc.stdlib cimport calloc

from pydicom.datadict import (DicomDictionary, RepeatersDictionary, keyword_for_tag, mask_match,
                              private_dictionaries)

cdef struct Entry:
    unsigned int tag
    bint used
    PyObject* keyword    # str, '' when none; owned by _keep
    PyObject* vr         # str or None; owned by _keep

cdef Py_ssize_t SLOTS = 1 << 14      # a power of two, about 3x the dictionary's size
cdef Py_ssize_t MAX_USED = SLOTS * 3 // 4
cdef Entry* _table = <Entry*> calloc(SLOTS, sizeof(Entry))
cdef Py_ssize_t _used = 0
cdef list _keep = []                 # keeps the keyword and VR objects the table points to
if _table == NULL:
    raise MemoryError()


cdef inline Py_ssize_t slot_of(unsigned int tag) noexcept nogil:
    cdef Py_ssize_t slot = (<unsigned long long> tag * 2654435761u) & (SLOTS - 1)
    while _table[slot].used and _table[slot].tag != tag:
        slot = (slot + 1) & (SLOTS - 1)
    return slot


cdef Entry* _add(unsigned int tag, str keyword, object vr):
    """Cache `tag`; NULL when the table is full enough that probing would slow down."""
    cdef Py_ssize_t slot
    global _used
    if _used >= MAX_USED:
        return NULL
    slot = slot_of(tag)
    _keep.append(keyword)
    _keep.append(vr)
    _table[slot].tag = tag
    _table[slot].keyword = <PyObject*> keyword
    _table[slot].vr = <PyObject*> vr
    _table[slot].used = True
    _used += 1
    return &_table[slot]


cdef tuple _resolve(unsigned int tag):
    """A tag the import did not fill: pydicom's mask matching, cached where room is left."""
    keyword = ""
    vr = None
    if (tag >> 16) % 2 == 0:
        keyword = keyword_for_tag(tag)
        mask = mask_match(tag)
        if mask:
            vr = RepeatersDictionary[mask][0]
    _add(tag, keyword, vr)
    return keyword, vr


for _tag, _entry in DicomDictionary.items():
    _add(_tag, _entry[4], _entry[0])


cdef str keyword_of(unsigned int tag):
    """The keyword of a tag, '' when pydicom's dictionary has none (private, unknown)."""
    cdef Py_ssize_t slot = slot_of(tag)
    if _table[slot].used:
        return <str> _table[slot].keyword
    return _resolve(tag)[0]


cdef str vr_of(unsigned int tag):
    """The dictionary VR of a public tag (may be ambiguous, e.g. 'US or SS'); None if unknown.
    As pydicom's `_dictionary_vr_fast`."""
    cdef Py_ssize_t slot = slot_of(tag)
    if _table[slot].used:
        return <object> _table[slot].vr
    return _resolve(tag)[1]


# --- pydicom's private dictionary --------------------------------------------------------------
# A private element without a VR in the file takes the VR pydicom's private dictionary gives for
# its creator and tag (`pydicom.datadict.get_private_entry`): the keys "GGGGEEEE", then
# "GGGGxxEE", then "GGxxxxEE", first match wins. Each creator's entries are compiled into int-keyed
# dicts on first use (not at import: most runs never meet a private element), and recompiled when
# pydicom's entries for that creator change size (`add_private_dict_entries`).

cdef dict _private_tables = {}       # creator -> (entry count, exact, block-agnostic, group-agnostic)


cdef tuple _compile_private(str creator, dict entries):
    cdef dict exact = {}, any_block = {}, any_group = {}
    for key, entry in entries.items():
        # only the key forms pydicom builds can ever match (upper-case hex, as it formats them)
        if len(key) != 8 or not all(c in "0123456789ABCDEFx" for c in key):
            continue
        if "x" not in key:
            exact[int(key, 16)] = entry[0]
        elif key[4:6] == "xx" and "x" not in key[:4] + key[6:]:
            any_block[int(key[:4], 16) << 8 | int(key[6:], 16)] = entry[0]
        elif key[2:6] == "xxxx" and "x" not in key[:2] + key[6:]:
            any_group[int(key[:2], 16) << 8 | int(key[6:], 16)] = entry[0]
    table = (len(entries), exact, any_block, any_group)
    if len(_private_tables) >= 4096:     # creators from files are unbounded: keep the cache small
        _private_tables.clear()
    _private_tables[creator] = table
    return table


cdef str private_vr_of(object creator, unsigned int tag):
    """The VR pydicom's private dictionary gives a private element of `creator` (the value of its
    private creator element), or None where pydicom falls back to UN."""
    if type(creator) is not str:
        return None           # absent, empty or multi-valued creator: pydicom uses UN
    entries = private_dictionaries.get(creator)
    if entries is None:
        return None
    table = _private_tables.get(creator)
    if table is None or (<tuple> table)[0] != len(entries):
        table = _compile_private(creator, entries)
    vr = (<dict> table[1]).get(tag)
    if vr is None:
        vr = (<dict> table[2]).get((tag >> 16) << 8 | (tag & 0xFF))
        if vr is None:
            vr = (<dict> table[3]).get((tag >> 24) << 8 | (tag & 0xFF))
    return vr
