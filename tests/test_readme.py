"""The README's examples (issue 14, point 5): every code block is marked as run or not run, and
every block marked `<!-- example: run -->` runs, in order, in one folder, as a newcomer would
type it; an `<!-- example: output -->` block must be exactly what the command before it printed.
The examples use deid-data's dicom-cookies, copied by the first of them."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"<!-- example: (?P<mark>[^>]*?) -->\n```(?P<kind>\w+)\n(?P<body>.*?)```\n",
                   re.S)
FENCE = re.compile(r"^```\w*$", re.M)


def blocks():
    return [(match["mark"], match["kind"], match["body"]) for match in BLOCK.finditer(README.read_text())]


def test_every_code_block_is_marked():
    text = README.read_text()
    opening = [match for index, match in enumerate(FENCE.finditer(text)) if index % 2 == 0]
    assert len(opening) == len(blocks()), "a code block without an <!-- example: ... --> mark"
    for mark, _kind, _body in blocks():
        assert mark in ("run", "output") or mark.startswith("not run ("), mark


def test_the_runnable_examples_run(tmp_path):
    environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}"
                                        f"{os.environ['PATH']}")
    environment.pop("NO_COLOR", None)
    last_output = None
    ran = 0
    for mark, kind, body in blocks():
        if mark == "output":
            assert last_output is not None, "an output block follows no command"
            assert last_output == body, f"the README's output differs:\n{last_output}"
            last_output = None
            continue
        if mark != "run":
            continue
        if kind == "console":
            for command in (line[2:] for line in body.splitlines() if line.startswith("$ ")):
                done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=tmp_path,
                                      env=environment, capture_output=True, text=True,
                                      timeout=300)
                assert done.returncode == 0, (command, done.stderr[-2000:])
                last_output = done.stdout
                ran += 1
        elif kind == "python":
            done = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, env=environment,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, (body, done.stderr[-3000:])
            last_output = done.stdout
            ran += 1
        else:
            pytest.fail(f"a runnable block of kind {kind}")
    assert ran >= 10
    assert (tmp_path / "out").is_dir() and len(os.listdir(tmp_path / "out")) == 7
