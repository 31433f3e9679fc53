"""The grouping and skip settings (SPEC R3): packaged defaults, replaced key by key by a user's config."""
import json
import os
from pathlib import Path

from pydicom.datadict import dictionary_VR, tag_for_keyword

from deid_fast.names import suggestion

DEFAULT_CONFIG = Path(__file__).with_name("config.json")
_ID_KEYS = ("entity", "item")


def _read(config):
    if isinstance(config, dict):
        return config
    if isinstance(config, (str, os.PathLike)):
        with open(config, encoding="utf-8") as handle:
            return json.load(handle)
    raise TypeError(f"config must be a path to a JSON file or a dict, not {type(config).__name__}")


_DEFAULTS = _read(DEFAULT_CONFIG)     # read once: get_fields may be called per file


def load_config(config=None):
    """The settings in force: `{"ids": {"entity": kw, "item": kw}, "skip": [kw, ...]}`."""
    settings = {"ids": dict(_DEFAULTS["ids"]), "skip": list(_DEFAULTS["skip"])}
    if config is None:
        return settings
    user = _read(config)
    unknown = set(user) - {"ids", "skip"}
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}: a config has 'ids' and 'skip'")
    if "ids" in user:
        ids = user["ids"] or {}
        unknown = set(ids) - set(_ID_KEYS)
        if unknown:
            raise ValueError(f"unknown config 'ids' keys {sorted(unknown)}: use 'entity' and 'item'")
        settings["ids"] = {**settings["ids"], **ids}
    if "skip" in user:
        skip = user["skip"]
        if isinstance(skip, str) or not all(isinstance(name, str) for name in skip):
            raise ValueError("config 'skip' must be a list of keywords")
        settings["skip"] = list(skip)
    return settings


def check_id_keyword(keyword, role):
    """An entity or item id must be a keyword of pydicom's dictionary, and not a sequence."""
    if not isinstance(keyword, str) or tag_for_keyword(keyword) is None:
        hint = suggestion(keyword) if isinstance(keyword, str) else ""
        raise ValueError(f"{role} {keyword!r} is not a keyword of pydicom's DICOM dictionary"
                         f"{hint}")
    if dictionary_VR(keyword) == "SQ":
        raise ValueError(f"{role} {keyword!r} is a sequence; it cannot name an entity or item")
    return keyword
