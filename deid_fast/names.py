"""Field names as people write them: knows keywords, tags and paths, not files.

A field is named by its keyword (`PatientName`) or its tag, in any of the forms tools print:
`(0010,0010)`, `0010,0010`, `00100010` (upper or lower case). A public tag becomes the keyword
the results use; a private tag the `(GGGG,EEEE)` key it is reported under. A nested field is a
path of names joined with `.`, an item chosen with `[index]`:
`ReferencedSeriesSequence.SeriesInstanceUID`, `ReferencedSeriesSequence[0].(0008,1155)`.

On the command line one option value may hold several names separated by commas; a comma is a
separator except inside `(gggg,eeee)` and between the two four-digit halves of `gggg,eeee`.
"""
import difflib
import re

from pydicom.datadict import keyword_dict, keyword_for_tag, repeater_has_keyword

_TAG = re.compile(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)|([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})")
_STEP = re.compile(r"(?P<name>\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)|[^.\[\]]+)(?:\[(?P<index>\d+)\])?")
_HALF = re.compile(r"[0-9A-Fa-f]{4}")


def tag_of(text):
    """The tag `text` writes in one of the tag forms, else None."""
    match = _TAG.fullmatch(text.strip())
    if match is None:
        return None
    group, element = (match[1], match[2]) if match[1] else (match[3], match[4])
    return int(group + element, 16)


def suggestion(text):
    """' (did you mean X?)' for the keyword closest to `text`, or ''."""
    near = difflib.get_close_matches(text, list(keyword_dict), n=1, cutoff=0.75)
    return f" (did you mean {near[0]}?)" if near else ""


def field_name(text):
    """The name a field is reported under (a keyword, or `(GGGG,EEEE)` for a private tag) of
    a name written as a keyword or a tag; ValueError, with a close match, for anything else."""
    if not isinstance(text, str):
        raise TypeError(f"a field is named by a str, not {type(text).__name__}")
    name = text.strip()
    if name in keyword_dict or repeater_has_keyword(name):     # OverlayData: a repeating group
        return name
    tag = tag_of(name)
    if tag is not None:
        if (tag >> 16) & 1:
            return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        keyword = keyword_for_tag(tag)
        if keyword:
            return keyword
        raise ValueError(f"{text!r}: tag {tag >> 16:04X},{tag & 0xFFFF:04X} has no keyword in "
                         "pydicom's dictionary, so no field is reported under it")
    raise ValueError(f"{text!r} is neither a keyword of pydicom's dictionary nor a tag written "
                     f"(gggg,eeee), gggg,eeee or ggggeeee{suggestion(name)}")


def field_names(names):
    """`field_name` of each of `names` (a str is one name)."""
    if isinstance(names, str):
        names = [names]
    return [field_name(name) for name in names]


def path_steps(text):
    """A path of names: [(name, item index or None), ...] from the top level down, each name
    as `field_name` gives it."""
    steps, position = [], 0
    text = text.strip()
    while True:
        match = _STEP.match(text, position)
        if match is None:
            raise ValueError(f"{text!r} is not a field path (Sequence[0].Keyword)")
        index = match["index"]
        steps.append((field_name(match["name"]), None if index is None else int(index)))
        position = match.end()
        if len(steps) > 128:
            raise ValueError(f"{text[:60]!r}...: a field path of more than 128 steps")
        if position == len(text):
            return steps
        if text[position] != ".":
            raise ValueError(f"{text!r} is not a field path (Sequence[0].Keyword)")
        position += 1


def split_option(values):
    """The names of repeated command-line values, each a comma list (see the module's rule)."""
    names = []
    for value in values:
        pieces, depth, start = [], 0, 0
        for position, char in enumerate(value):
            if char == "(":
                depth += 1
            elif char == ")":
                depth = max(0, depth - 1)
            elif char == "," and depth == 0:
                pieces.append(value[start:position])
                start = position + 1
        pieces.append(value[start:])
        merged = []
        for piece in (piece.strip() for piece in pieces):
            if merged and _HALF.fullmatch(piece) and _HALF.fullmatch(merged[-1]):
                merged[-1] = f"{merged[-1]},{piece}"      # gggg,eeee: one tag
            else:
                merged.append(piece)
        names += [piece for piece in merged if piece]
    return names
