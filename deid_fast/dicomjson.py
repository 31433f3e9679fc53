"""DICOM JSON (PS3.18 F.2) of the header elements deid_fast reports, as pydicom's `to_json_dict`
writes it: the form DICOMweb and Spark pipelines consume.

The elements kept are those `get_fields(expand_sequences=False)` reports (R2, R4, R5, R8: the
flattener's naming rule decides, so the two outputs cannot drift apart), with the file meta group
first when asked for. Sequences keep their items, each filtered by the same rules.
"""
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from deid_fast._flatten import header_tags, reported_name
from deid_fast._values import is_empty, to_builtin
from deid_fast.jsontext import dumps


def _reported(dataset, options, is_file_meta, top):
    kept = Dataset()
    names = set()
    for tag in (header_tags(dataset) if top and not is_file_meta else sorted(dataset.keys())):
        name = reported_name(tag, options.include_private, is_file_meta)
        if name is None or name in options.skip or name in names:
            continue
        if top and options.select is not None and name not in options.select:
            continue
        element = dataset[tag]
        if element.VR == "SQ" or isinstance(element.value, Sequence):
            items = list(element.value or ())
            if not items:
                continue
            element = DataElement(tag, "SQ", Sequence(
                [_reported(item, options, False, False) for item in items]))
        elif is_empty(to_builtin(element.value)):
            continue
        names.add(name)
        kept.add(element)
    return kept


def reported(dataset, file_meta, options):
    """The data sets of the reported elements: of `file_meta` (None unless
    `options.include_file_meta`) and of `dataset`. pydicom decodes the values here."""
    meta = None
    if options.include_file_meta and file_meta is not None:
        meta = _reported(file_meta, options, True, True)
    return meta, _reported(dataset, options, False, True)


def dicom_json(meta, dataset):
    """The DICOM JSON text (one line, UTF-8 bytes, as `deid_fast.jsontext` writes JSON) of
    `reported()`'s data sets, the file meta first. Binary values are inline base64
    (InlineBinary: no bulk data handler)."""
    document = {} if meta is None else meta.to_json_dict()
    document.update(dataset.to_json_dict())
    return dumps(document)
