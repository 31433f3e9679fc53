"""DICOM bytes built by hand, for inputs pydicom's writer cannot make.

Everything here returns ``bytes``: a single data element, sequences and items of
undefined or defined length, the preamble with ``DICM`` and a minimal file meta group,
and ``deep_nesting(depth)``, a whole file whose sequences nest ``depth`` levels (built
iteratively, so 20,000 levels cost no recursion).  The helpers never check what they are
given: a test may ask for a length that lies, a VR that does not fit, or an item that is
never closed.
"""
from __future__ import annotations

import struct

UNDEFINED = 0xFFFFFFFF

EXPLICIT_VR_LITTLE = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG = "1.2.840.10008.1.2.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

ITEM = 0xFFFEE000
ITEM_DELIMITER = 0xFFFEE00D
SEQUENCE_DELIMITER = 0xFFFEE0DD

# VRs whose explicit-VR header is tag, VR, 2 reserved bytes, 4-byte length (PS3.5 7.1.2)
LONG_HEADER_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
# VRs padded with NUL rather than space to an even length
NUL_PADDED_VRS = frozenset({"UI", "OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"})


def _tag_int(tag) -> int:
    if isinstance(tag, tuple):
        group, elem = tag
        return (group << 16) | elem
    return int(tag)


def tag_bytes(tag, little: bool = True) -> bytes:
    """The 4 bytes of a tag: group then element, each in the given byte order."""
    t = _tag_int(tag)
    return struct.pack("<HH" if little else ">HH", t >> 16, t & 0xFFFF)


def _value_bytes(vr: str, value, pad: bool) -> bytes:
    if isinstance(value, str):
        value = value.encode("latin-1")
    value = bytes(value)
    if pad and len(value) % 2:
        value += b"\x00" if vr in NUL_PADDED_VRS else b" "
    return value


def header(tag, vr: str, length: int, explicit: bool = True, little: bool = True) -> bytes:
    """An element header alone (no value): for lengths that lie about what follows."""
    t = tag_bytes(tag, little)
    u16, u32 = ("<H", "<I") if little else (">H", ">I")
    if not explicit:
        return t + struct.pack(u32, length)
    if vr in LONG_HEADER_VRS:
        return t + vr.encode("ascii") + b"\x00\x00" + struct.pack(u32, length)
    return t + vr.encode("ascii") + struct.pack(u16, length)


def element(
    tag,
    vr: str,
    value=b"",
    explicit: bool = True,
    little: bool = True,
    length: int | None = None,
    pad: bool = True,
) -> bytes:
    """One data element: ``tag`` as ``0xGGGGEEEE`` or ``(group, elem)``, ``value`` as
    bytes or str (latin-1).  The value is padded to an even length unless ``pad=False``;
    ``length`` overrides the declared length (the bytes written stay ``value``)."""
    data = _value_bytes(vr, value, pad)
    declared = len(data) if length is None else length
    return header(tag, vr, declared, explicit, little) + data


def us(tag, *numbers: int, explicit: bool = True, little: bool = True) -> bytes:
    """A US element of one or more unsigned shorts."""
    fmt = ("<" if little else ">") + "H" * len(numbers)
    return element(tag, "US", struct.pack(fmt, *numbers), explicit, little)


def _delimiter(tag: int, little: bool) -> bytes:
    return tag_bytes(tag, little) + b"\x00\x00\x00\x00"


def item_start(length: int = UNDEFINED, little: bool = True) -> bytes:
    return tag_bytes(ITEM, little) + struct.pack("<I" if little else ">I", length)


def item_end(little: bool = True) -> bytes:
    return _delimiter(ITEM_DELIMITER, little)


def sequence_start(tag, length: int = UNDEFINED, explicit: bool = True, little: bool = True) -> bytes:
    return header(tag, "SQ", length, explicit, little)


def sequence_end(little: bool = True) -> bytes:
    return _delimiter(SEQUENCE_DELIMITER, little)


def item(content: bytes = b"", undefined: bool = True, little: bool = True) -> bytes:
    """One item holding ``content`` (encoded elements): undefined length closed by an
    item delimiter, or defined length."""
    if undefined:
        return item_start(UNDEFINED, little) + content + item_end(little)
    return item_start(len(content), little) + content


def sequence(
    tag,
    items,
    undefined: bool = True,
    explicit: bool = True,
    little: bool = True,
    undefined_items: bool = True,
) -> bytes:
    """A sequence of ``items`` (each the encoded elements of one item)."""
    body = b"".join(item(c, undefined_items, little) for c in items)
    if undefined:
        return sequence_start(tag, UNDEFINED, explicit, little) + body + sequence_end(little)
    return sequence_start(tag, len(body), explicit, little) + body


def file_meta(
    transfer_syntax: str = EXPLICIT_VR_LITTLE,
    sop_class: str = SECONDARY_CAPTURE,
    sop_instance: str = "1.2.826.0.1.3680043.8.498.1",
    group_length: int | None = None,
) -> bytes:
    """A minimal file meta group (always explicit VR little endian), group length first."""
    body = b"".join(
        [
            element(0x00020001, "OB", b"\x00\x01"),
            element(0x00020002, "UI", sop_class),
            element(0x00020003, "UI", sop_instance),
            element(0x00020010, "UI", transfer_syntax),
            element(0x00020012, "UI", "1.2.826.0.1.3680043.8.498"),
        ]
    )
    declared = len(body) if group_length is None else group_length
    return element(0x00020000, "UL", struct.pack("<I", declared)) + body


def preamble() -> bytes:
    return b"\x00" * 128 + b"DICM"


def dicom_file(
    dataset: bytes,
    transfer_syntax: str = EXPLICIT_VR_LITTLE,
    sop_instance: str = "1.2.826.0.1.3680043.8.498.1",
    with_preamble: bool = True,
    with_meta: bool = True,
) -> bytes:
    """A whole file: preamble + ``DICM`` + file meta + the encoded ``dataset``."""
    out = b""
    if with_preamble:
        out += preamble()
    if with_meta:
        out += file_meta(transfer_syntax, sop_instance=sop_instance)
    return out + dataset


# --- deep nesting --------------------------------------------------------------------

NEST_SEQUENCE = 0x00081115  # ReferencedSeriesSequence
NEST_SEQUENCE_KEYWORD = "ReferencedSeriesSequence"
LEAF_TAG = 0x00080100  # CodeValue (SH)
LEAF_KEYWORD = "CodeValue"
LEAF_VALUE = "LEAF"
DEEP_SOP_INSTANCE = "1.2.826.0.1.3680043.8.498.777"
DEEP_PATIENT_ID = "deep-patient"


def deep_nesting(
    depth: int,
    closed: bool = True,
    patient_id: str = DEEP_PATIENT_ID,
    sop_instance: str = DEEP_SOP_INSTANCE,
) -> bytes:
    """A valid file (explicit VR little endian) whose sequences nest ``depth`` levels.

    Top level: SOPInstanceUID, a ReferencedSeriesSequence, PatientID.  Each sequence has
    one item of undefined length; the item at level k holds the next sequence, the
    innermost one holds CodeValue "LEAF", which is therefore at depth ``depth`` (top-level
    elements are at depth 0).  Every sequence and item has undefined length and is closed
    by its delimiter, unless ``closed=False``: then the file ends right after the leaf,
    nothing closed.  Built with a loop, not recursion.
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    opening = sequence_start(NEST_SEQUENCE) + item_start()
    closing = item_end() + sequence_end()
    parts = [element(0x00080018, "UI", sop_instance)]
    parts.append(opening * depth)
    parts.append(element(LEAF_TAG, "SH", LEAF_VALUE))
    if not closed:
        return dicom_file(b"".join(parts), sop_instance=sop_instance)
    parts.append(closing * depth)
    parts.append(element(0x00100020, "LO", patient_id))
    return dicom_file(b"".join(parts), sop_instance=sop_instance)


def deep_nesting_key(depth: int, delimiter: str = "_") -> str:
    """The R7 key of the leaf of ``deep_nesting(depth)`` (every sequence has one item)."""
    return delimiter.join([NEST_SEQUENCE_KEYWORD] * depth + [LEAF_KEYWORD])


def deep_nesting_unexpanded(depth: int) -> list:
    """The R7 ``expand_sequences=False`` value of the top-level sequence, built iteratively."""
    inner: dict = {LEAF_KEYWORD: LEAF_VALUE}
    for _ in range(depth - 1):
        inner = {NEST_SEQUENCE_KEYWORD: [inner]}
    return [inner]


# --- a long sequence -------------------------------------------------------------------

LONG_SEQUENCE = 0x00081140  # ReferencedImageSequence
LONG_SEQUENCE_KEYWORD = "ReferencedImageSequence"
LONG_ITEM_TAG = 0x00081155  # ReferencedSOPInstanceUID (UI)
LONG_ITEM_KEYWORD = "ReferencedSOPInstanceUID"


def long_sequence_uid(number: int) -> str:
    return f"1.2.826.0.1.3680043.8.498.9.{number}"


def long_sequence(items: int, patient_id: str = "long-sequence") -> bytes:
    """A valid file whose ReferencedImageSequence holds ``items`` defined-length items, each
    with one ReferencedSOPInstanceUID (``long_sequence_uid(n)``): 2 elements an item, so
    990,000 items stay within the default max_elements of 2,000,000."""
    sop_instance = f"1.2.826.0.1.3680043.8.498.8.{items}"
    heads = {}      # value length -> the item's and the element's headers (built once)

    def one_item(number):
        value = _value_bytes("UI", long_sequence_uid(number), True)
        head = heads.get(len(value))
        if head is None:
            head = heads[len(value)] = (item_start(len(value) + 8)
                                        + header(LONG_ITEM_TAG, "UI", len(value)))
        return head + value
    body = b"".join(map(one_item, range(items)))
    dataset = (element(0x00080018, "UI", sop_instance)
               + sequence_start(LONG_SEQUENCE, len(body)) + body
               + element(0x00100020, "LO", patient_id))
    return dicom_file(dataset, sop_instance=sop_instance)
