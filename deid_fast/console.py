"""The `deid-fast` console script: starts the command line (`deid_fast.cli`).

`deid-fast show` should answer within 0.3 s of a cold start, and importing pydicom costs about
a third of that in numpy and Pillow, which pydicom loads for pixel data only. A header is read
without them, so for `show` they are not loaded; `--version` loads nothing.

A run that used pyarrow ends without the interpreter's teardown: pyarrow's thread pools can
abort the process there ("terminate called without an active exception", apache/arrow#34314;
seen once here, after a Parquet run had written and renamed its output), which would turn a
finished run's status into -6."""
import logging
import os
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
    status = cli_main()
    if "pyarrow" in sys.modules:
        _exit_now(status)
    return status


def _exit_now(status):
    """End the process with `status` once what it wrote is flushed, skipping the teardown."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):     # a closed pipe (`deid-fast get ... | head`)
            pass
    os._exit(status)
