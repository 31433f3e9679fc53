"""The hardening issue: bulk runs that never hang, leak, overwrite or silently drop a file.

Each test reproduces one failure of the issue as described (a subprocess of the installed
`deid-fast` where the command line is concerned) and checks what happens now. Tests of
permissions drop the capabilities that let root bypass them (`capsh`), since CI runs as root.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import rawdicom  # noqa: E402

import deid_fast  # noqa: E402
from deid_fast import InvalidDicomError, bulk, get_fields, get_files, get_identifiers  # noqa: E402
from deid_fast import iter_identifiers, pool  # noqa: E402
from deid_fast.inputs import path_from_text, path_text  # noqa: E402
from deid_fast.writers import csv_cell  # noqa: E402

SCRIPT = Path(sys.executable).with_name("deid-fast")
CAPSH = shutil.which("capsh")
NO_BYPASS = "cap_dac_override,cap_dac_read_search"


def run(*args, status=0, timeout=300, **kwargs):
    assert SCRIPT.exists(), f"the console script is not installed at {SCRIPT}"
    done = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, timeout=timeout,
                          **kwargs)
    if status is not None:
        assert done.returncode == status, (done.returncode, done.stderr.decode()[-3000:])
    return done


def run_without_bypass(command, **kwargs):
    """`command` (a shell line) as root without the capabilities that bypass permissions."""
    assert CAPSH, "capsh (libcap2-bin) is needed to test permissions as root"
    return subprocess.run([CAPSH, f"--drop={NO_BYPASS}", "--", "-c", command],
                          capture_output=True, timeout=300, **kwargs)


def dicom(patient_id="p1", sop="1.2.3.1", name="Doe^Jane", extra=b""):
    """A small explicit VR little endian file (bytes)."""
    data = (rawdicom.element(0x00080018, "UI", sop) +
            rawdicom.element(0x00100010, "PN", name) +
            rawdicom.element(0x00100020, "LO", patient_id) + extra)
    return rawdicom.dicom_file(data, sop_instance=sop)


def write_files(folder, count, prefix="f"):
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (folder / f"{prefix}{number:05d}.dcm").write_bytes(
            dicom(f"p{number % 7}", f"1.2.3.{number}"))


def lines(path):
    with open(path, "rb") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture
def small(tmp_path):
    folder = tmp_path / "in"
    write_files(folder, 3)
    return folder


# --- inputs ------------------------------------------------------------------------------------


def test_a_named_pipe_is_a_record_and_never_blocks(small, tmp_path):
    fifo = small / "p.dcm"
    os.mkfifo(fifo)
    out = tmp_path / "o.jsonl"
    run("get", small, "-o", out, timeout=60)
    rows = {Path(row["path"]).name: row for row in lines(out)}
    assert rows["p.dcm"]["skipped"] == "unreadable"
    assert "named pipe" in rows["p.dcm"]["reason"]
    assert sum(row["skipped"] is None for row in rows.values()) == 3
    # every interface, the pipe named directly too
    with pytest.raises(InvalidDicomError, match="named pipe"):
        get_fields(str(fifo))
    assert len(list(get_files(str(small)))) == 3
    assert sum(len(items) for items in get_identifiers(str(small)).values()) == 3
    with pytest.raises(InvalidDicomError, match="named pipe"):
        get_identifiers([str(small)], errors="raise")
    records = list(iter_identifiers([str(fifo)], workers=1))
    assert [record.skipped for record in records] == ["unreadable"]
    check = run("check", small, timeout=60).stdout.decode().splitlines()
    assert any(line.startswith("unreadable\t") and "p.dcm" in line for line in check)


def test_a_device_is_never_opened(tmp_path):
    with pytest.raises(InvalidDicomError, match="character device"):
        get_fields("/dev/zero")
    records = list(iter_identifiers(["/dev/null"], workers=1))
    assert records[0].skipped == "unreadable" and "device" in records[0].reason


def test_a_folder_that_cannot_be_listed_is_reported(small, tmp_path):
    locked = small / "locked"
    locked.mkdir()
    (locked / "hidden.dcm").write_bytes(dicom())
    locked.chmod(0)
    out = tmp_path / "o.jsonl"
    try:
        done = run_without_bypass(f"{SCRIPT} get {small} -o {out}")
        assert done.returncode == 0, done.stderr
        rows = {row["path"]: row for row in lines(out)}
        assert rows[str(locked)]["skipped"] == "unreadable"
        assert "Permission denied" in rows[str(locked)]["reason"]
        assert b"locked" in done.stderr          # a WARNING names it
        # given directly: not "0 files, exit 0" in silence
        done = run_without_bypass(f"{SCRIPT} get {locked} -o {out}")
        assert done.returncode == 0 and b"1 files" in done.stderr, done.stderr
        assert lines(out)[0]["skipped"] == "unreadable"
        probe = (f"{sys.executable} -c 'import deid_fast, sys\n"
                 f"try:\n deid_fast.get_identifiers([\"{locked}\"], errors=\"raise\")\n"
                 f"except deid_fast.InvalidDicomError as e: print(e.kind); sys.exit(0)\n"
                 f"sys.exit(1)'")
        done = run_without_bypass(f"cd {tmp_path} && {probe}")   # not the source tree's package
        assert done.returncode == 0 and done.stdout.strip() == b"unreadable", done.stderr
    finally:
        locked.chmod(0o755)


def test_links_to_folders_are_followed_once(small, tmp_path):
    (small / "again").symlink_to(small)            # a loop
    outside = tmp_path / "outside"
    write_files(outside, 2, "o")
    (small / "outside").symlink_to(outside)
    (small / "broken.dcm").symlink_to(tmp_path / "nowhere")
    records = list(iter_identifiers(str(small), workers=1))
    kinds = {Path(record.path).name: record.skipped for record in records}
    assert kinds["again"] == "already-walked"
    assert kinds["broken.dcm"] == "unreadable"
    assert sum(name.startswith("o0") and kind is None for name, kind in kinds.items()) == 2
    assert sum(kind is None for kind in kinds.values()) == 5


def test_a_missing_path_and_globs_on_the_command_line(small, tmp_path):
    out = tmp_path / "o.jsonl"
    done = run("get", tmp_path / "missing", "-o", out, status=2)
    assert b"does not exist" in done.stderr and not out.exists()
    run("get", str(small / "*.dcm"), "-o", out)
    assert len(lines(out)) == 3
    run("get", str(tmp_path / "**" / "*.dcm"), "-o", out, "--overwrite")
    assert len(lines(out)) == 3
    assert run("get", str(tmp_path / "*.nothing"), "-o", out, status=2).stderr.count(
        b"no file matches") == 1


def test_paths_from_standard_input_and_from_a_list(small, tmp_path):
    paths = sorted(str(path) for path in small.glob("*.dcm"))
    out = tmp_path / "o.jsonl"
    run("get", "-", "-o", out, input="\n".join(paths).encode() + b"\n")
    assert [row["path"] for row in lines(out)] == paths
    run("get", "-", "-0", "-o", out, input="\0".join(paths).encode())
    assert [row["path"] for row in lines(out)] == paths
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(paths + [str(tmp_path / "gone.dcm")]) + "\n")
    run("get", f"@{listing}", "-o", out)
    rows = lines(out)
    assert [row["path"] for row in rows[:3]] == paths and rows[3]["skipped"] == "unreadable"
    run("get", f"@{tmp_path / 'nolist'}", "-o", out, status=2)
    # ./- names a file called "-"
    literal = small / "-"
    literal.write_bytes(dicom())
    done = run("get", "./-", "-o", "-", cwd=small)
    assert json.loads(done.stdout)["path"] == "./-"


def test_the_runs_own_files_are_never_inputs(small):
    out = small / "o.jsonl"
    run("get", small, "-o", out)
    run("get", small, "-o", out, "--workers", "2")
    assert len(lines(out)) == 3
    (small / "o.jsonl.partial").write_text("leftover\n")
    run("get", small, "-o", out, "--overwrite")
    assert len(lines(out)) == 3


def test_duplicated_paths_behave_the_same_in_a_run_and_a_resume(small, tmp_path):
    one = str(sorted(small.glob("*.dcm"))[0])
    out = tmp_path / "o.jsonl"
    run("get", one, one, small, "-o", out)
    whole = [row["path"] for row in lines(out)]
    assert whole.count(one) == 3
    # keep the first line only, as a killed run would, then resume
    with open(out, "rb") as handle:
        first = handle.readline()
    out.rename(str(out) + ".partial")
    Path(str(out) + ".partial").write_bytes(first)
    run("get", one, one, small, "-o", out, "--resume")
    assert sorted(row["path"] for row in lines(out)) == sorted(whole)


# --- paths that are not UTF-8 ---------------------------------------------------------------


@pytest.mark.parametrize("fmt,extra", [("jsonl", ()), ("jsonl", ("--flat",)), ("csv", ()),
                                       ("parquet", ()), ("json", ()), ("check", ())])
def test_a_name_that_is_not_utf8_in_every_format(tmp_path, fmt, extra):
    folder = tmp_path / "in"
    folder.mkdir()
    odd = os.path.join(os.fsencode(folder), b"b_\xff.dcm")
    with open(odd, "wb") as handle:
        handle.write(dicom("odd", "1.2.3.99"))
    (folder / "ok.dcm").write_bytes(dicom("ok", "1.2.3.98"))
    out = tmp_path / f"o.{'txt' if fmt == 'check' else fmt}"
    if fmt == "check":
        run("check", folder, "-o", out)
        text = out.read_bytes().decode("utf-8")           # valid UTF-8
        assert f"dicom\t{folder}/b_%FF.dcm\n" in text
        return
    run("get", folder, "-o", out, *extra)
    data = out.read_bytes() if fmt != "parquet" else None
    if fmt == "parquet":
        paths = pq.read_table(out).column("path").to_pylist()
    elif fmt == "csv":
        paths = [row["path"] for row in csv.DictReader(io.StringIO(data.decode("utf-8")))]
    elif fmt == "json":
        data.decode("utf-8")
        assert "odd" in json.loads(data)
        return
    else:
        paths = [json.loads(line)["path"] for line in data.decode("utf-8").splitlines()]
    written = f"{folder}/b_%FF.dcm"
    assert written in paths
    assert os.fsencode(path_from_text(written)) == odd       # reversible
    # standard output too
    done = run("get", folder, "-o", "-", "--format", "jsonl")
    assert written in done.stdout.decode("utf-8")
    if fmt in ("jsonl", "parquet"):     # a resume knows the file is done: no second row
        run("get", folder, "-o", out, "--resume", *extra)
        again = (pq.read_table(out).column("path").to_pylist() if fmt == "parquet" else
                 [json.loads(line)["path"] for line in out.read_bytes().splitlines()])
        assert sorted(again) == sorted(paths)


def test_path_text_is_reversible_and_one_line():
    for path in ["a/b.dcm", "b_\udcff.dcm", "x.txt\ndicom\tFORGED.dcm", "50%.dcm", "a%20b",
                 "a!/b", "M\u00fcller\u2028x\u0085", "%%41", "z%2"]:
        text = path_text(path)
        text.encode("utf-8")
        assert len(text.splitlines()) == 1 and "\t" not in text
        assert path_from_text(text) == path
    assert path_text("plain/name.dcm") == "plain/name.dcm"


def test_a_name_cannot_forge_a_line_of_check_or_of_the_log(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.txt\ndicom\tFORGED.dcm").write_text("not dicom")
    done = run("check", folder)
    out = done.stdout.decode().splitlines()
    assert len(out) == 1 and out[0].startswith("not-dicom\t") and "FORGED" in out[0]
    assert not any(line.startswith("dicom\t") for line in out)
    done = run("get", folder, "-o", tmp_path / "o.jsonl")
    warnings = [line for line in done.stderr.decode().splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "x.txt%0Adicom%09FORGED.dcm" in warnings[0]


# --- the pool ---------------------------------------------------------------------------------


def _slow_first(items, offset, context):
    if context == 0:
        time.sleep(1.5)
    return (items, offset), []


def _make_slow_first():
    return _slow_first


def test_the_pool_never_waits_with_nothing_in_flight():
    """One slow chunk while the other worker finishes every chunk the window allows: the pool
    used to wait for replies with no task in flight, for ever."""
    chunks = [([number], number) for number in range(60)]
    result = []

    def consume():
        for items, context, results, _notes in pool.imap(iter(chunks), 2, _make_slow_first, (),
                                                         lambda item, code: None):
            result.append(context)
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the pool hung"
    assert result == list(range(60))


def _slow_on_marker(items, offset, context):
    if "slow" in items:
        time.sleep(2)
    return list(items), []


def _make_slow_on_marker():
    return _slow_on_marker


def test_a_stopped_worker_delays_but_never_hangs_the_run():
    """A slow input holds one worker; the other is stopped (SIGSTOP), then continued."""
    chunks = [(["slow"] if number == 3 else [f"f{number}"], number) for number in range(200)]
    done = []
    before = {child.pid for child in psutil.Process().children()}

    def consume():
        for items, context, results, _notes in pool.imap(iter(chunks), 2, _make_slow_on_marker,
                                                         (), lambda item, code: None):
            done.append(context)
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.5)
    workers = [child for child in psutil.Process().children() if child.pid not in before]
    assert len(workers) == 2
    for worker in workers:
        worker.suspend()
    time.sleep(1)
    for worker in workers:
        worker.resume()
    thread.join(60)
    assert not thread.is_alive(), "the pool hung"
    assert done == list(range(200))


def test_a_stopped_parent_is_continued(tmp_path):
    """The issue's reproduction: a 2,000-file run, the parent stopped and continued."""
    folder = tmp_path / "in"
    write_files(folder, 2000)
    out = tmp_path / "o.jsonl"
    for _attempt in range(3):
        process = subprocess.Popen([str(SCRIPT), "get", str(folder), "-o", str(out), "-q",
                                    "--fields", "PatientID", "--workers", "2", "--overwrite"],
                                   stderr=subprocess.PIPE)
        time.sleep(0.4)
        process.send_signal(signal.SIGSTOP)
        time.sleep(0.5)
        process.send_signal(signal.SIGCONT)
        assert process.wait(60) == 0, process.stderr.read()
        assert len(lines(out)) == 2000


def default_sigint():
    """In a child: Ctrl-C as a terminal gives it. A test runner's worker (pytest-xdist) may
    ignore SIGINT, and an ignored SIGINT is inherited: Python then never sees Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _tree_of(tmp_path, count=3000):
    folder = tmp_path / "in"
    write_files(folder, count)
    return folder


def _run_children(process):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            children = psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        if len(children) >= 2:
            return children
        time.sleep(0.05)
    raise AssertionError("the workers did not start")


@pytest.mark.parametrize("number,status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                           (signal.SIGKILL, -9), (signal.SIGINT, 130)])
def test_no_process_outlives_the_parent(tmp_path, number, status):
    # enough files that the run is still going when the signal comes (3,000 were read in 0.2 s
    # on a quiet machine, before the signal)
    folder = _tree_of(tmp_path, 15000)
    out = tmp_path / "o.jsonl"
    process = subprocess.Popen([str(SCRIPT), "get", str(folder), "-o", str(out), "-q",
                                "--workers", "2", "--engine", "pydicom"],
                               stderr=subprocess.PIPE, preexec_fn=default_sigint)
    children = _run_children(process)
    time.sleep(0.2)
    process.send_signal(number)
    assert process.wait(10) == status
    gone, alive = psutil.wait_procs(children, timeout=3)
    assert not alive, f"workers left after {number!r}: {alive}"
    assert Path(str(out) + ".partial").exists() and not out.exists()
    leftovers = [name for name in os.listdir(tmp_path) if name.startswith(".")]
    if number != signal.SIGKILL:
        assert b"--resume" in process.stderr.read()
        assert not leftovers, leftovers
    # a killed run cannot clean up: the next run on the output does
    run("get", folder, "-o", out, "--resume", "-q")
    paths = [row["path"] for row in lines(out)]
    assert sorted(paths) == sorted(str(path) for path in folder.glob("*.dcm"))
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_a_memory_error_makes_one_record(tmp_path):
    """A worker that runs out of memory on one file: that file is a record of kind
    too-large, every other file is read."""
    folder = tmp_path / "in"
    write_files(folder, 4)
    big = folder / "f00002-big.dcm"
    head = (rawdicom.element(0x00080018, "UI", "1.2.3.77") +
            rawdicom.element(0x00100020, "LO", "big") +
            rawdicom.header(0x00420011, "OB", 400 << 20))
    data = rawdicom.dicom_file(head, sop_instance="1.2.3.77")
    with open(big, "wb") as handle:
        handle.write(data)
        handle.truncate(len(data) + (400 << 20))          # sparse: 400 MB of zeros
    probe = textwrap.dedent(f"""
        import resource, sys
        import deid_fast
        vm = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (vm + (250 << 20), resource.RLIM_INFINITY))
        for workers in (1, 2):
            records = list(deid_fast.iter_identifiers({str(folder)!r}, workers=workers))
            kinds = [record.skipped for record in records]
            assert kinds.count("too-large") == 1, kinds
            assert kinds.count(None) == 4, kinds
            bad = [record for record in records if record.skipped][0]
            assert bad.path.endswith("big.dcm") and "memory" in bad.reason, bad
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120,
                          cwd=tmp_path)             # not the source tree's package
    assert done.stdout.strip() == b"ok", done.stderr.decode()[-2000:]


def _peak_memory(command, **kwargs):
    """Run `command`; the peak of the summed RSS of it and its children, sampled."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               **kwargs)
    peak = 0
    root = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            procs = [root] + root.children(recursive=True)
            peak = max(peak, sum(proc.memory_info().rss for proc in procs))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.02)
    assert process.returncode == 0, process.stderr.read()
    return peak


def big_value_files(folder, count, size):
    """`count` files with an OB value of `size` bytes each (sparse: zeros cost no disk)."""
    folder.mkdir()
    for number in range(count):
        head = (rawdicom.element(0x00080018, "UI", f"1.2.3.{number}") +
                rawdicom.element(0x00100020, "LO", "big") +
                rawdicom.header(0x00420011, "OB", size))
        data = rawdicom.dicom_file(head, sop_instance=f"1.2.3.{number}")
        with open(folder / f"{number:02d}.dcm", "wb") as handle:
            handle.write(data)
            handle.truncate(len(data) + size)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_large_values_in_flight_are_bounded(tmp_path, fmt):
    """Sixteen files with a large value each (the issue's sixteen 100 MB files reached 3.7 GB;
    `benchmarks/bulk.py --only inflight` runs those): a worker holds one file's value at a
    time, never a chunk's, whether the lines go to a file or to standard output (Parquet to
    standard output is one file made at the end, bounded by a row group: not this test's)."""
    folder = tmp_path / "in"
    big_value_files(folder, 16, 16 << 20)
    for target in (tmp_path / f"o.{fmt}", "-")[:2 if fmt == "jsonl" else 1]:
        peak = _peak_memory([str(SCRIPT), "get", str(folder), "-o", str(target), "-q",
                             "--workers", "2", "--format", fmt])
        # a chunk's 16 values as read, base64 and JSON would be over 700 MB in one worker
        assert peak < 450 * 2**20, f"{fmt} to {target}: {peak / 2**20:.0f} MB"


# --- outputs -----------------------------------------------------------------------------------


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


def _unchanged(victim):
    return victim.read_text() == "precious\n"


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json", "parquet"])
def test_a_planted_output_link_is_replaced_not_followed(small, tmp_path, victim, fmt):
    out = tmp_path / f"o.{fmt}"
    out.symlink_to(victim)
    run("get", small, "-o", out)
    assert _unchanged(victim) and not out.is_symlink()


def test_planted_partial_and_lock_links_are_never_written_through(small, tmp_path, victim):
    out = tmp_path / "o.jsonl"
    partial = Path(str(out) + ".partial")
    partial.symlink_to(victim)
    assert b"--overwrite" in run("get", small, "-o", out, status=2).stderr
    assert b"symbolic link" in run("get", small, "-o", out, "--resume", status=2).stderr
    run("get", small, "-o", out, "--overwrite")
    assert _unchanged(victim) and len(lines(out)) == 3
    lock = Path(str(out) + ".lock")
    lock.symlink_to(victim)
    assert b"symbolic link" in run("get", small, "-o", out, status=2).stderr
    assert _unchanged(victim)
    lock.unlink()
    # a planted parts folder link
    folder = tmp_path / "victim-folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    parts = tmp_path / "o.parquet.partial"
    parts.symlink_to(folder)
    run("get", small, "-o", tmp_path / "o.parquet", status=2)
    run("get", small, "-o", tmp_path / "o.parquet", "--resume", status=2)
    run("get", small, "-o", tmp_path / "o.parquet", "--overwrite")
    assert os.listdir(folder) == ["keep.txt"]
    # check -o through a link
    listing = tmp_path / "check.txt"
    listing.symlink_to(victim)
    run("check", small, "-o", listing)
    assert _unchanged(victim) and "dicom\t" in listing.read_text()


def test_resume_never_touches_what_it_did_not_write(small, tmp_path, victim):
    out = tmp_path / "o.jsonl"
    out.write_text('{"path": "mine"}\n')
    done = run("get", small, "-o", out, "--resume", status=2)
    assert b"sidecar" in done.stderr
    assert out.read_text() == '{"path": "mine"}\n'
    assert not Path(str(out) + ".partial").exists()
    link = tmp_path / "l.jsonl"
    link.symlink_to(victim)
    run("get", small, "-o", link, "--resume", status=2)
    assert _unchanged(victim) and link.is_symlink()


def test_resume_with_other_options_is_refused(small, tmp_path):
    out = tmp_path / "o.jsonl"
    run("get", small, "-o", out)
    before = out.read_bytes()
    done = run("get", small, "-o", out, "--resume", "--include-private", status=2)
    assert b"include_private" in done.stderr and out.read_bytes() == before
    run("get", small, "-o", out, "--resume", "--flat", status=2)
    out_parquet = tmp_path / "o.parquet"
    run("get", small, "-o", out_parquet)
    run("get", small, "-o", out_parquet, "--resume", "--fields", "PatientID", status=2)
    run("get", small, "-o", out_parquet, "--resume")          # the same options: fine
    assert pq.read_table(out_parquet).num_rows == 3


def test_a_damaged_line_is_named_and_nothing_changes(small, tmp_path):
    out = tmp_path / "o.jsonl"
    run("get", small, "-o", out)
    data = out.read_bytes().splitlines(keepends=True)
    partial = Path(str(out) + ".partial")
    damaged = data[0] + b"garbage\n" + data[1]
    partial.write_bytes(damaged)
    out.unlink()
    done = run("get", small, "-o", out, "--resume", status=1)
    assert b"line 2" in done.stderr and str(partial).encode() in done.stderr
    assert partial.read_bytes() == damaged
    # a torn last line (a killed run) is dropped and the run finishes
    partial.write_bytes(data[0] + data[1][:10])
    run("get", small, "-o", out, "--resume")
    assert len(lines(out)) == 3


def test_two_runs_on_one_output(tmp_path):
    folder = _tree_of(tmp_path, 3000)
    out = tmp_path / "o.jsonl"
    first = subprocess.Popen([str(SCRIPT), "get", str(folder), "-o", str(out), "-q",
                              "--engine", "pydicom", "--workers", "1"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not Path(str(out) + ".lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = run("get", folder, "-o", out, status=2)
    assert f"process {first.pid}".encode() in second.stderr
    assert first.wait(300) == 0
    assert len(lines(out)) == 3000
    assert not Path(str(out) + ".lock").exists()


def test_an_output_that_is_a_folder_fails_before_reading(small, tmp_path):
    folder = tmp_path / "o.jsonl"
    folder.mkdir()
    (folder / "mine.txt").write_text("mine")
    done = run("get", small, "-o", folder, status=2)
    assert b"is a folder" in done.stderr and os.listdir(folder) == ["mine.txt"]
    done = run("get", small, "-o", tmp_path / "nowhere" / "o.jsonl", status=2)
    assert b"does not exist" in done.stderr
    user = tmp_path / "o.parquet"
    user.mkdir()
    (user / "data.csv").write_text("mine")
    run("get", small, "-o", user, status=2)
    assert os.listdir(user) == ["data.csv"]


def test_a_read_only_folder_is_a_usage_error(small, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        done = run_without_bypass(f"{SCRIPT} get {small} -o {folder}/o.jsonl")
        assert done.returncode == 2, done.stderr
        assert b"Permission denied" in done.stderr and b"Traceback" not in done.stderr
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("fmt,limit", [("jsonl", 40_000), ("parquet", 4_000), ("csv", 40_000)])
def test_a_full_disk_is_one_line_and_leaves_only_what_resumes(tmp_path, fmt, limit):
    folder = _tree_of(tmp_path, 400)
    out = tmp_path / "out" / f"o.{fmt}"
    out.parent.mkdir()

    def small_files():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    done = subprocess.run([str(SCRIPT), "get", str(folder), "-o", str(out), "-q"],
                          capture_output=True, timeout=120, preexec_fn=small_files)
    assert done.returncode == 1, done.stderr
    message = done.stderr.decode().strip().splitlines()
    assert len(message) == 1 and "File too large" in message[0], message
    assert b"Traceback" not in done.stderr
    left = sorted(os.listdir(out.parent))
    expected = {"jsonl": ["o.jsonl.deid-fast.json", "o.jsonl.partial"],
                "parquet": ["o.parquet.deid-fast.json", "o.parquet.partial"], "csv": []}[fmt]
    assert left == expected
    if fmt != "csv":
        run("get", folder, "-o", out, "--resume", "-q")
        assert not Path(str(out) + ".partial").exists()


def test_outputs_get_the_users_umask(small, tmp_path):
    for fmt in ("jsonl", "parquet", "csv"):
        out = tmp_path / f"o.{fmt}"
        run("get", small, "-o", out, preexec_fn=lambda: os.umask(0o027))
        target = next(out.glob("*.parquet")) if out.is_dir() else out
        assert target.stat().st_mode & 0o777 == 0o640, oct(target.stat().st_mode)


# --- text that is safe to open -------------------------------------------------------------


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    names = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3",
             "'quoted", "plain"]
    for number, name in enumerate(names):
        extra = rawdicom.element(0x00281050, "DS", "-125.0\\-100.0")   # WindowCenter
        (folder / f"{number}.dcm").write_bytes(dicom(f"p{number}", f"1.2.3.{number}", name,
                                                     extra))
    out = tmp_path / "o.csv"
    run("get", folder, "-o", out)
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert [row["PatientName"] for row in rows] == [
        "'" + name if name != "plain" else name for name in names]
    assert all(row["WindowCenter"] == "-125.0\\-100.0" for row in rows)
    run("get", folder, "-o", out, "--csv-raw")
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert [row["PatientName"] for row in rows] == names
    assert csv_cell(-3) == "-3" and csv_cell([-1.5, 2.0]) == "-1.5\\2.0"
    assert csv_cell(["-a", "b"]) == "'-a\\b"


def test_jsonl_records_survive_splitlines(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.dcm").write_bytes(dicom("p\u0085".encode("latin-1").decode("latin-1"),
                                         name="A\u2028B".encode("utf-8").decode("latin-1")))
    out = tmp_path / "o.jsonl"
    run("get", folder, "-o", out)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


# --- counting what happened --------------------------------------------------------------------


def test_files_without_an_entity_are_counted_not_skipped(tmp_path):
    folder = tmp_path / "in"
    write_files(folder, 3)
    for number in range(2):
        data = rawdicom.element(0x00080018, "UI", f"1.2.9.{number}")
        (folder / f"noid{number}.dcm").write_bytes(rawdicom.dicom_file(data))
    (folder / "bad.dcm").write_bytes(b"not dicom at all" * 10)
    done = run("get", folder, "-o", tmp_path / "o.jsonl")
    err = done.stderr.decode()
    assert "6 files, 5 read (2 without an entity value), 1 not DICOM (not-dicom: 1)" in err
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert len(warnings) == 2, warnings          # the bad file, and one line for the two
    assert any("2 files without an entity value" in line for line in warnings)
    # iter_identifiers logs the same way; get_identifiers keeps a WARNING per file (R3)
    import logging
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)
    handler = Keep(logging.INFO)
    logger = logging.getLogger("deid_fast")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        list(iter_identifiers(str(folder), workers=1))
        summary = [r for r in records if "not grouped" in r.getMessage()]
        assert [r.levelname for r in summary] == ["WARNING"]
        assert "2 files without an entity value" in summary[0].getMessage()
        assert sum(r.levelname == "INFO" and "noid" in r.getMessage() for r in records) == 2
        records.clear()
        get_identifiers(str(folder))
        assert sum(r.levelname == "WARNING" and "noid" in r.getMessage() for r in records) == 2
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def test_the_layout_has_no_import_circle():
    """The API, the bulk runner and Dask import the reader; the reader imports none of them."""
    import ast
    package = Path(deid_fast.__file__).parent
    source = (package / "reader.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"deid_fast.dicom", "deid_fast.bulk", "deid_fast.dask",
                           "deid_fast.cli", "deid_fast.writers"}
    for name in ("bulk.py", "writers.py", "parquet.py"):
        tree = ast.parse((package / name).read_text())
        assert "deid_fast.dicom" not in {node.module for node in ast.walk(tree)
                                         if isinstance(node, ast.ImportFrom)}, name
    assert bulk.read_record is deid_fast.reader.read_record
