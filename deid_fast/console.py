"""The `deid-fast` console script: starts the command line (`deid_fast.cli`).

`deid-fast show` should answer within 0.3 s of a cold start, and importing pydicom costs about
a third of that in numpy alone, which pydicom loads for pixel data only. A header is read
without numpy, so for `show` numpy is not loaded; `--version` loads nothing."""
import sys


def main():
    import deid_fast
    command = sys.argv[1:2]
    if command == ["--version"] and len(sys.argv) == 2:
        print(f"deid-fast {deid_fast.__version__}")
        return 0
    if command == ["show"] and "numpy" not in sys.modules:
        sys.modules["numpy"] = None        # import numpy raises ImportError: pydicom goes without
    deid_fast.compiled_core()
    from deid_fast.cli import main as cli_main
    return cli_main()
