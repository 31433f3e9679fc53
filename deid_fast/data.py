"""Example data: the folders of the data sets the `deid-data` package ships."""
import os

INSTALL_HINT = 'pip install "deid-fast[data]"  (or: pip install deid-data)'


def _datasets():
    try:
        import deid_data.data
    except ImportError:
        raise ValueError(f"the example data sets need the deid-data package: {INSTALL_HINT}") from None
    base = os.path.dirname(os.path.abspath(deid_data.data.__file__))
    return {name: os.path.join(base, name) for name in sorted(os.listdir(base))
            if os.path.isdir(os.path.join(base, name)) and not name.startswith(("_", "."))}


def get_dataset(name):
    """The folder of the example data set `name` (for example "dicom-cookies")."""
    datasets = _datasets()
    if name not in datasets:
        raise ValueError(f"unknown example data set {name!r}: deid-data ships "
                         f"{', '.join(datasets)} ({INSTALL_HINT})")
    return datasets[name]


if __name__ == "__main__":          # python -m deid_fast.data dicom-cookies: print its folder
    import sys
    if len(sys.argv) != 2:
        sys.exit("usage: python -m deid_fast.data NAME   (prints the folder of example data set NAME)")
    try:
        print(get_dataset(sys.argv[1]))
    except ValueError as exc:
        sys.exit(f"error: {exc}")
