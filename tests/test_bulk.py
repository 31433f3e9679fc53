"""The bulk issue: iter_identifiers and get_identifiers(workers=N) give exactly the serial result,
stream with bounded look-ahead, survive a worker that dies, and report every bad file."""
from __future__ import annotations

import decimal
import faulthandler
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import sys

import pytest
from pydicom import dcmread

sys.path.insert(0, os.path.dirname(__file__))
from compare import OPTION_SETS, assert_same  # noqa: E402
from corpus import shipped_files  # noqa: E402
from generate import generate_all  # noqa: E402

import deid_fast  # noqa: E402
from deid_fast import bulk, get_fields, get_identifiers, pool  # noqa: E402
from deid_fast.bulk import iter_identifiers  # noqa: E402
from deid_fast.reader import Record  # noqa: E402


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Every shipped file and every generated one, plus files that are not DICOM, in one list
    (bad files between good ones)."""
    generated = generate_all(tmp_path_factory.mktemp("generated"))
    bad = tmp_path_factory.mktemp("bad")
    (bad / "text.dcm").write_text("not a DICOM file")
    (bad / "empty.dcm").write_bytes(b"")
    good = shipped_files()
    truncated = bad / "truncated.dcm"
    truncated.write_bytes(open(good[0], "rb").read()[:400])
    files = list(good) + sorted(generated.values())
    for position, path in zip((3, 50, 120), (bad / "text.dcm", bad / "empty.dcm", truncated)):
        files.insert(position, str(path))
    files.append(str(bad / "missing.dcm"))
    return files


def _plain(records):
    return [list(record) for record in records]


def test_records_are_the_serial_ones_with_two_workers(mixed):
    """Bulk 1: the parallel stream is the serial one, record by record, type-strict."""
    serial = list(iter_identifiers(mixed, workers=1))
    parallel = list(iter_identifiers(mixed, workers=2))
    assert [r.path for r in serial] == mixed
    assert_same(_plain(parallel), _plain(serial), "records")
    assert {r.skipped for r in serial} >= {None, "not-dicom", "empty", "truncated", "unreadable"}


@pytest.mark.parametrize("name", ["no_expand", "everything", "skip"])
def test_records_agree_under_option_sets(mixed, name):
    options = OPTION_SETS[name]
    serial = list(iter_identifiers(mixed, workers=1, **options))
    assert_same(_plain(iter_identifiers(mixed, workers=2, **options)), _plain(serial), name)


def test_record_fields_are_get_fields(mixed):
    """A record's fields are get_fields' of the same file; a skipped file's kind is the
    InvalidDicomError's."""
    for record in iter_identifiers(mixed, workers=2):
        if record.skipped in (None, "no-entity", "no-item"):
            assert_same(record.fields, get_fields(record.path), record.path)
        else:
            with pytest.raises(deid_fast.InvalidDicomError) as caught:
                get_fields(record.path)
            assert caught.value.kind == record.skipped
            assert record.fields is None and record.entity is None


def test_unordered_yields_every_file_once(mixed):
    serial = {r.path: list(r) for r in iter_identifiers(mixed, workers=1)}
    unordered = list(iter_identifiers(mixed, workers=2, ordered=False))
    assert sorted(r.path for r in unordered) == sorted(serial)
    for record in unordered:
        assert_same(list(record), serial[record.path], record.path)


def test_get_identifiers_with_workers_is_the_serial_result(mixed, tmp_path):
    """Bulk 1: get_identifiers(workers=N) returns exactly the serial result; input order decides
    duplicates (a copy of a file later in the input wins, at its position)."""
    copy = tmp_path / "copy.dcm"
    first_good = next(p for p in mixed if p.endswith("CT_small.dcm"))
    shutil.copy(first_good, copy)
    files = mixed + [str(copy)]
    serial = get_identifiers(files)
    for workers in (2, 3):
        assert_same(get_identifiers(files, workers=workers), serial, f"workers={workers}")
    assert_same(get_identifiers(files, workers=None), serial, "workers=None")


def test_folders_and_datasets_as_sources(mixed, tmp_path):
    """R1 in bulk: folders are walked like get_files, Datasets read as they are."""
    folder = tmp_path / "tree"
    for number, path in enumerate(mixed[:150]):
        target = folder / f"{number % 7}" / f"{number:04d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    dataset = dcmread(next(p for p in mixed if p.endswith("CT_small.dcm")))
    sources = [str(folder), dataset]
    serial = list(iter_identifiers(sources, workers=1))
    assert [r.path for r in serial[:-1]] == list(deid_fast.get_files(folder, check=False))
    assert serial[-1].fields == get_fields(dataset)
    assert_same(_plain(iter_identifiers(sources, workers=2)), _plain(serial), "records")


def test_errors_raise_stops_at_the_first_bad_file_in_input_order(mixed):
    with pytest.raises(deid_fast.InvalidDicomError) as caught:
        for _ in iter_identifiers(mixed, workers=2, errors="raise"):
            pass
    assert caught.value.path == mixed[3] and caught.value.kind == "not-dicom"


def test_options_are_checked_before_any_file_is_read():
    with pytest.raises(ValueError, match="NotAKeyword"):
        iter_identifiers(["/nonexistent"], entity_id="NotAKeyword")
    with pytest.raises(ValueError, match="workers"):
        iter_identifiers(["/nonexistent"], workers=0)
    with pytest.raises(ValueError, match="errors"):
        iter_identifiers(["/nonexistent"], errors="ignore")


def test_skips_are_logged_once_per_file_in_parallel(mixed, caplog):
    """A WARNING per file not read, in order; files read without an entity or item are not
    skips: one WARNING counts them at the end (each is logged at INFO)."""
    caplog.set_level(logging.WARNING, logger="deid_fast")
    records = list(iter_identifiers(mixed, workers=2))
    skipped = [r.path for r in records if r.skipped not in (None, "no-entity", "no-item")]
    ungrouped = [r for r in records if r.skipped in ("no-entity", "no-item")]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert ungrouped and len(warned) == len(skipped) + 1
    assert all(path in message for path, message in zip(skipped, warned))
    assert f"{len(ungrouped):,} files without" in warned[-1]


def test_debug_messages_of_workers_reach_the_caller(mixed, caplog):
    """R9 in bulk: pydicom's messages, logged at DEBUG in the workers, reach the parent's
    logger in file order, the same as a serial run."""
    caplog.set_level(logging.DEBUG, logger="deid_fast")
    list(iter_identifiers(mixed, workers=1))
    serial = [r.getMessage() for r in caplog.records]
    caplog.clear()
    list(iter_identifiers(mixed, workers=2))
    parallel = [r.getMessage() for r in caplog.records]
    assert any(message.startswith("pydicom on ") for message in serial)
    assert parallel == serial


def test_sources_are_read_lazily_with_bounded_look_ahead(mixed):
    """Memory independent of the number of files: when the first record arrives, only a
    bounded number of paths has been taken from the source."""
    taken = 0
    good = [p for p in mixed if p.endswith(".dcm")][:20]

    def endless():
        nonlocal taken
        while True:
            for path in good:
                taken += 1
                yield path

    records = iter_identifiers(endless(), workers=2)
    for _ in range(10):
        next(records)
    bound = (2 * pool.PREFETCH * 4 + 2) * bulk.CHUNK_FILES
    assert 0 < taken <= bound
    records.close()
    assert not multiprocessing.active_children()  # the pool is stopped when the caller stops


def test_a_worker_that_dies_on_a_file_costs_only_that_file(mixed, monkeypatch):
    """Bulk 2: a file that kills its worker (as a crash in compiled code would) is reported as
    "worker-died"; the other files of its chunk are read again, and the run goes on."""
    victim = next(p for p in mixed[70:] if p.endswith(".dcm") and "charset" in p)
    real = bulk.read_record

    def crash_on_victim(source, name, job, flush):
        if name == victim:
            faulthandler.disable()   # pytest's would print the worker's stack: expected here
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(source, name, job, flush)

    monkeypatch.setattr(bulk, "read_record", crash_on_victim)  # the forked workers inherit it
    parallel = list(iter_identifiers(mixed, workers=2))
    monkeypatch.setattr(bulk, "read_record", real)
    expected = list(iter_identifiers(mixed, workers=1))
    assert [r.path for r in parallel] == [r.path for r in expected]
    for got, want in zip(parallel, expected):
        if got.path == victim:
            assert got.skipped == "worker-died" and "SIGSEGV" in got.reason
        else:
            assert_same(list(got), list(want), got.path)


def test_a_worker_killed_mid_run_loses_nothing(mixed):
    """Bulk 2: os.kill on a worker mid-run: its files are read again by a new worker."""
    files = mixed * 6
    expected = list(iter_identifiers(files, workers=1))
    records = iter_identifiers(files, workers=2)
    got = [next(records)]
    victims = multiprocessing.active_children()
    assert victims
    os.kill(victims[0].pid, signal.SIGKILL)
    got.extend(records)
    assert not victims[0].is_alive()
    assert [r.path for r in got] == [r.path for r in expected]
    for record, want in zip(got, expected):
        assert_same(list(record), list(want), record.path)


def test_outcomes_cross_processes_whatever_pickling_is_installed(mixed):
    """Importing distributed installs tblib's pickling of exception chains; a bad file's
    chain once held its scanned header, which cannot be pickled, and the worker died."""
    import distributed  # noqa: F401
    from deid_fast.reader import identifiers_job
    outcomes = bulk.read_identifiers(identifiers_job(), mixed)
    back = pickle.loads(pickle.dumps(outcomes))
    errors = [(o.path, o.kind, o.reason, o.offset) for o in outcomes
              if isinstance(o, deid_fast.InvalidDicomError)]
    assert any(kind == "undecodable" for _path, kind, _reason, _offset in errors)
    assert [(o.path, o.kind, o.reason, o.offset) for o in back
            if isinstance(o, deid_fast.InvalidDicomError)] == errors


def test_a_result_that_cannot_be_sent_is_reported_as_a_bug(mixed, monkeypatch):
    """A worker whose results cannot be pickled raises TaskFailed in the caller, naming the
    cause, instead of passing for a dead worker."""
    monkeypatch.setattr(bulk, "read_record", lambda *args: (lambda: None))   # not picklable
    with pytest.raises(pool.TaskFailed, match="pickle"):
        list(iter_identifiers(mixed, workers=2))


def test_outcomes_encode_and_decode_exactly():
    """The transport between processes keeps every type and value (marshal, else pickle)."""
    fields = {"A": float("nan"), "B": -0.0, "C": b"\x00\xff", "D": [1, "x", 2.5],
              "E": [{"K": "v", "L": [b"b"]}], "F": 2 ** 80, "G": "", "H": ["", ""]}
    outcomes = [Record("a", "e", "i", fields), deid_fast.InvalidDicomError("b", "truncated",
                                                                           "cut", 12),
                Record("c", None, None, {"X": 1}, "no-entity", "no PatientID"), None, "text",
                ("line", None, None)]
    back = bulk.decode(bulk.encode(outcomes))
    assert bulk.encode(outcomes)[:1] == b"M"
    assert_same([list(o) if isinstance(o, tuple) else o for o in back[:1] + back[2:3]],
                [list(o) for o in (outcomes[0], outcomes[2])], "records")
    assert type(back[0]) is Record and back[3:] == [None, "text", ("line", None, None)]
    assert (back[1].path, back[1].kind, back[1].reason, back[1].offset) == ("b", "truncated",
                                                                          "cut", 12)
    odd = [Record("d", "e", "i", {"Z": decimal.Decimal("1.5")})]     # not marshal: pickled
    assert bulk.encode(odd)[:1] == b"P" and bulk.decode(bulk.encode(odd)) == odd


def test_iter_identifiers_is_exported():
    assert deid_fast.iter_identifiers is iter_identifiers and "iter_identifiers" in deid_fast.__all__


def test_record_is_a_plain_named_tuple():
    record = Record("a.dcm", "e", "i", {"PatientID": "e"})
    assert record.skipped is None and record.reason is None
    assert record._asdict()["fields"] == {"PatientID": "e"}
