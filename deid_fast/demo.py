"""The seed's walk-through on the dicom-cookies example data: `python -m deid_fast.demo`."""
import logging
import pprint

from deid_fast.data import get_dataset
from deid_fast.dicom import get_files, get_identifiers


def main():
    logging.basicConfig(format="%(levelname)s %(message)s")
    logging.getLogger("deid_fast").setLevel(logging.DEBUG)

    base = get_dataset("dicom-cookies")
    dicom_files = list(get_files(base))
    ids = get_identifiers(dicom_files)

    print(f"\n# We found {len(ids)} entity: {list(ids)}")
    for entity, items in ids.items():
        print(f"\n# {entity}: {len(items)} items")
        for item, fields in items.items():
            print(f"\n## {item}")
            pprint.pprint(fields, sort_dicts=False)


if __name__ == "__main__":
    main()
