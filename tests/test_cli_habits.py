"""The command line's habits (issue 14, point 4): --version, the help when called alone, close
matches for unknown options, --pattern, binary output refused on a terminal, and a format that
its output's extension cannot hold refused before any file is read."""
from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import deid_data
import pytest

import deid_fast

SCRIPT = Path(sys.executable).with_name("deid-fast")
COOKIES = Path(deid_data.__file__).parent / "data" / "dicom-cookies"


def run(*args, status=0, **kwargs):
    done = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kwargs)
    assert done.returncode == status, (done.returncode, done.stderr[-2000:])
    return done


def test_version():
    assert run("--version").stdout.strip() == f"deid-fast {deid_fast.__version__}"


def test_alone_it_prints_the_help():
    done = run()
    assert "usage: deid-fast" in done.stdout and "COMMAND" in done.stdout
    assert "examples:" in done.stdout and "get" in done.stdout and "check" in done.stdout


@pytest.mark.parametrize("typo,meant", [("--ouput", "--output"), ("--entity_id", "--entity-id"),
                                        ("--patern", "--pattern"), ("--workrs=2", "--workers")])
def test_an_unknown_option_gets_a_close_match(tmp_path, typo, meant):
    done = run("get", COOKIES, typo, tmp_path / "out.json", status=2)
    assert f"unrecognized argument {typo}" in done.stderr
    assert f"did you mean {meant}?" in done.stderr
    assert "required" not in done.stderr
    assert not (tmp_path / "out.json").exists()


def test_a_missing_output_is_still_named():
    done = run("get", COOKIES, status=2)
    assert "-o/--output" in done.stderr and "required" in done.stderr


def test_pattern_reads_only_matching_names(tmp_path):
    out = tmp_path / "out.jsonl"
    run("get", COOKIES, "-o", out, "--pattern", "image[13].dcm", "-q")
    paths = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert [os.path.basename(path) for path in paths] == ["image1.dcm", "image3.dcm"]
    listed = run("check", COOKIES, "--pattern", "*2.dcm").stdout.splitlines()
    assert listed == [f"dicom\t{COOKIES / 'image2.dcm'}"]


@pytest.mark.parametrize("name,fmt", [("x.csv", "parquet"), ("x.json", "csv"),
                                      ("x.jsonl", "parquet"), ("x.parquet", "jsonl"),
                                      ("x.csv", "json")])
def test_a_format_its_extension_cannot_hold_is_a_usage_error(tmp_path, name, fmt):
    done = run("get", COOKIES, "-o", tmp_path / name, "--format", fmt, status=2)
    assert f"{fmt} cannot be written to" in done.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name,fmt", [("x.json", "dicom-json"), ("x.jsonl", "dicom-json"),
                                      ("x.out", "csv"), ("x.jsonl", "jsonl")])
def test_a_format_its_extension_can_hold_is_written(tmp_path, name, fmt):
    run("get", COOKIES, "-o", tmp_path / name, "--format", fmt, "-q")
    assert (tmp_path / name).stat().st_size > 0


def test_binary_output_is_refused_on_a_terminal(tmp_path):
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run([str(SCRIPT), "get", str(COOKIES), "-o", "-", "--format",
                               "parquet"], stdout=terminal, stderr=subprocess.PIPE, timeout=300)
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 2
    assert b"parquet is binary: not written to a terminal" in done.stderr
    # and written when standard output is not a terminal (a pipe)
    piped = subprocess.run([str(SCRIPT), "get", str(COOKIES), "-o", "-", "--format", "parquet"],
                           capture_output=True, timeout=300)
    assert piped.returncode == 0 and piped.stdout[:4] == b"PAR1"


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_an_output_that_is_a_pipe_or_socket_is_refused_and_kept(tmp_path, kind):
    """The output takes its name by a rename, which would replace a device, pipe or socket at
    OUT (`-o /dev/null` run as root replaced /dev/null with a file): a usage error, before any
    file is read, and the special file stays what it was."""
    import socket
    import stat as stat_module
    target = tmp_path / "out.jsonl"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
    for command in (["get", COOKIES, "-o", target], ["check", COOKIES, "-o", target]):
        done = run(*command, status=2)
        assert "not a regular file" in done.stderr and "- for standard output" in done.stderr
    mode = os.lstat(target).st_mode
    assert stat_module.S_ISFIFO(mode) if kind == "fifo" else stat_module.S_ISSOCK(mode)
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]
