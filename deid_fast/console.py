"""The `deid-fast` console script: starts the command line (`deid_fast.cli`).

`deid-fast show` should answer within 0.3 s of a cold start, and importing pydicom costs about
a third of that in numpy and Pillow, which pydicom loads for pixel data only. A header is read
without them, so for `show` they are not loaded; `--version` loads nothing."""
import sys


def main():
    import deid_fast
    command = sys.argv[1:2]
    if command == ["--version"] and len(sys.argv) == 2:
        print(f"deid-fast {deid_fast.__version__}")
        return 0
    if command == ["show"]:
        for module in ("numpy", "PIL"):    # importing them raises ImportError: pydicom goes without
            sys.modules.setdefault(module, None)
    deid_fast.compiled_core()
    from deid_fast.cli import main as cli_main
    return cli_main()
