"""Prints what each engine makes of input files (fields or the rejection), for triage.

    make fuzz-replay FILES="fuzz/regressions/..."   (runs this under the instrumented build)
"""
import sys
import warnings

import deid_fast

warnings.simplefilter("ignore")
OPTION_SETS = ({}, {"expand_sequences": False, "include_private": True, "include_file_meta": True})

for path in sys.argv[1:]:
    print(f"=== {path}")
    for options in OPTION_SETS:
        for engine in ("native", "pydicom"):
            try:
                result = deid_fast.get_fields(path, engine=engine, **options)
            except deid_fast.InvalidDicomError as exc:
                result = f"InvalidDicomError kind={exc.kind} offset={exc.offset}: {exc.reason}"
                if exc.__cause__ is not None:
                    result += f"\n      cause: {type(exc.__cause__).__name__}: {exc.__cause__}"
            except Exception as exc:
                result = f"!!! {type(exc).__name__}: {exc}"
            print(f"  {engine:7} {options}:\n      {result!s:.1500}")
