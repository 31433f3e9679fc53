# cython: language_level=3
"""pydicom's data dictionary as the compiled code needs it: tag -> keyword and tag -> VR.

Built once at import from `pydicom.datadict` (exact tags), and filled lazily for the repeating
groups (curves 50xx, overlays 60xx, ...) through pydicom's own mask matching, so both engines
use one dictionary.
"""
from pydicom.datadict import DicomDictionary, RepeatersDictionary, keyword_for_tag, mask_match

cdef dict _keywords = {tag: entry[4] for tag, entry in DicomDictionary.items()}
cdef dict _vrs = {tag: entry[0] for tag, entry in DicomDictionary.items()}


cdef str keyword_of(unsigned int tag):
    """The keyword of a tag, '' when pydicom's dictionary has none (private, unknown)."""
    try:
        return _keywords[tag]
    except KeyError:
        keyword = keyword_for_tag(tag) if (tag >> 16) % 2 == 0 else ""
        _keywords[tag] = keyword
        return keyword


cdef str vr_of(unsigned int tag):
    """The dictionary VR of a public tag (may be ambiguous, e.g. 'US or SS'); None if unknown.
    As pydicom's `_dictionary_vr_fast`."""
    try:
        return _vrs[tag]
    except KeyError:
        vr = None
        if (tag >> 16) % 2 == 0:
            mask = mask_match(tag)
            if mask:
                vr = RepeatersDictionary[mask][0]
        _vrs[tag] = vr
        return vr
