"""Builds the compiled core: the Cython sources in src/deid_fast/ become modules of deid_fast."""
from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "embedsignature": True,
}

extensions = [
    Extension(f"deid_fast.{name}", [f"src/deid_fast/{name}.pyx"])
    for name in ("_session", "_dictionary", "_scan", "_values", "_decode", "_flatten", "_deid_keys")
]

setup(ext_modules=cythonize(extensions, include_path=["src"],
                            compiler_directives=COMPILER_DIRECTIVES))
