"""Archives read in place (issue 14, point 3): members of zip, tar, tar.gz and gz files, named
ARCHIVE!/member, in the API, iter_identifiers, the command line and the bounds."""
from __future__ import annotations

import gzip
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import deid_data
import pydicom
import pytest

import deid_fast
from deid_fast import archives, bulk, inputs
from deid_fast.inputs import path_text

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helper modules beside this file
from compare import OPTION_SETS, assert_same  # noqa: E402
from corpus import archived_files  # noqa: E402
from reference import reference_fields  # noqa: E402

SCRIPT = Path(sys.executable).with_name("deid-fast")
COOKIES = Path(deid_data.__file__).parent / "data" / "dicom-cookies"
NAMES = sorted(path.name for path in COOKIES.glob("*.dcm"))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """dicom-cookies as a folder, a zip, a tar, a tar.gz and a gz of one file."""
    root = tmp_path_factory.mktemp("archives")
    shutil.copytree(COOKIES, root / "cookies")
    with zipfile.ZipFile(root / "cookies.zip", "w", zipfile.ZIP_DEFLATED) as made:
        for name in NAMES:
            made.write(COOKIES / name, f"study/{name}")
    for suffix, mode in ((".tar", "w"), (".tar.gz", "w:gz")):
        with tarfile.open(root / f"cookies{suffix}", mode) as made:
            for name in NAMES:
                made.add(COOKIES / name, f"study/{name}")
    with gzip.open(root / "image1.dcm.gz", "wb") as made:
        made.write((COOKIES / "image1.dcm").read_bytes())
    return root


@pytest.mark.parametrize("archive", ["cookies.zip", "cookies.tar", "cookies.tar.gz"])
@pytest.mark.parametrize("workers", [1, 2])
def test_an_archive_gives_the_folders_identifiers(made, archive, workers):
    expected = deid_fast.get_identifiers(str(made / "cookies"))
    assert deid_fast.get_identifiers(str(made / archive), workers=workers) == expected
    paths = [record.path for record in deid_fast.iter_identifiers(str(made / archive),
                                                                  workers=workers)]
    assert paths == [f"{made / archive}!/study/{name}" for name in NAMES]
    assert all(type(path) is archives.MemberName for path in paths)


@pytest.mark.parametrize("archive", ["cookies.zip", "cookies.tar", "cookies.tar.gz"])
def test_a_member_is_named_and_read_alone(made, archive):
    listed = list(deid_fast.get_files(str(made / archive)))
    assert listed == [f"{made / archive}!/study/{name}" for name in NAMES]
    for name in NAMES[::3]:
        member = f"{made / archive}!/study/{name}"
        assert deid_fast.get_fields(member) == deid_fast.get_fields(str(COOKIES / name))
    assert deid_fast.get_identifiers(listed) == deid_fast.get_identifiers(str(made / "cookies"))
    with pytest.raises(deid_fast.InvalidDicomError, match="no such member"):
        deid_fast.get_fields(f"{made / archive}!/study/missing.dcm")


def test_a_gz_file_is_one_member(made):
    name = f"{made / 'image1.dcm.gz'}!/image1.dcm"
    assert list(deid_fast.get_files(str(made / "image1.dcm.gz"))) == [name]
    assert deid_fast.get_fields(name) == deid_fast.get_fields(str(COOKIES / "image1.dcm"))


def test_a_literal_separator_is_escaped_apart_from_the_member_separator(tmp_path):
    folder = tmp_path / "odd!"
    folder.mkdir()
    archive = folder / "a.zip"
    with zipfile.ZipFile(archive, "w") as made:
        made.write(COOKIES / "image1.dcm", "x!/y.dcm")
    (name,) = deid_fast.get_files(str(archive))
    assert name == f"{archive}!/x!/y.dcm"
    assert path_text(name) == f"{tmp_path}/odd%21/a.zip!/x%21/y.dcm"
    assert deid_fast.get_fields(name)["PatientID"] == "cookie-47"


def test_only_the_header_of_a_member_is_read(made, monkeypatch):
    """A 100 MB member of deid-data (RGB_CINE.dcm) is read to its header only."""
    reads = []
    real = archives._Window.read

    def counting(self, count):
        data = real(self, count)
        reads.append(len(data))
        return data
    monkeypatch.setattr(archives._Window, "read", counting)
    sizes = [info.size for info in tarfile.open(made / "cookies.tar").getmembers()]
    deid_fast.get_fields(f"{made / 'cookies.tar'}!/study/image1.dcm")
    assert 0 < sum(reads) < sizes[0] // 10


def test_damaged_archives_and_members_are_records(tmp_path, caplog):
    good = (COOKIES / "image1.dcm").read_bytes()
    broken_zip = tmp_path / "broken.zip"
    broken_zip.write_bytes(b"PK\x03\x04 not really a zip")
    truncated = tmp_path / "cut.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as made:
        for number in range(3):
            info = tarfile.TarInfo(f"f{number}.dcm")
            info.size = len(good)
            made.addfile(info, io.BytesIO(good))
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    records = list(deid_fast.iter_identifiers([str(broken_zip), str(truncated)], workers=1))
    assert records[0].path == str(broken_zip) and records[0].skipped == "undecodable"
    assert "zip archive cannot be read" in records[0].reason
    read = [record for record in records if record.skipped is None]
    damaged = [record for record in records[1:] if record.skipped is not None]
    assert read and damaged, records       # the members before the cut, then the damage named
    assert all(str(truncated) in record.path for record in records[1:])


def test_bounds_a_zip_bomb_and_the_number_of_members(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.zip"
    header = (b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\0"
              + b"\x08\x00\x18\x00UI\x04\x001.2\0" + b"\x09\x00\x10\x10OB\0\0" +
              (200 << 20).to_bytes(4, "little"))
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as made:
        made.writestr("bomb.dcm", header + b"\0" * (200 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(deid_fast.InvalidDicomError) as info:
        deid_fast.get_fields(f"{bomb}!/bomb.dcm", max_header_bytes=4 << 20)
    assert info.value.kind == "too-large"
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as made:
        for number in range(5):
            made.write(COOKIES / "image1.dcm", f"m{number}.dcm")
    monkeypatch.setattr(archives, "MAX_MEMBERS", 3)
    listed = list(inputs.items(str(many)))
    assert len(listed) == 4 and listed[-1].kind == "too-large"
    assert "more than 3 members" in listed[-1].reason


def test_archives_in_archives_links_and_encrypted_members_are_not_opened(tmp_path):
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as made:
        made.write(COOKIES / "image1.dcm", "image1.dcm")
    outer = tmp_path / "outer.tar"
    with tarfile.open(outer, "w") as made:
        made.add(inner, "inner.zip")
        link = tarfile.TarInfo("link.dcm")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        made.addfile(link)
        made.add(COOKIES / "image2.dcm", "image2.dcm")
    listed = list(inputs.items(str(outer)))
    assert "archive inside an archive" in listed[0].reason
    assert "a symbolic link inside the archive" in listed[1].reason
    assert listed[2][0] == f"{outer}!/image2.dcm"


def test_a_compressed_tar_is_read_in_one_pass(made, monkeypatch):
    """The walk's listing of a tar.gz is its only pass: each member's header bytes go with it,
    and reading the members opens the archive no more (it would have to decompress again)."""
    opened = []
    real = archives._open_regular
    monkeypatch.setattr(archives, "_open_regular",
                        lambda path: opened.append(os.path.basename(path)) or real(path))
    items = list(inputs.items(str(made / "cookies.tar.gz")))
    assert opened == ["cookies.tar.gz"]
    assert all(item[1].prefetched for item in items)
    assert max(len(item[1].prefetched) for item in items) < 64 << 10    # headers, not images
    records = list(deid_fast.iter_identifiers(str(made / "cookies.tar.gz"), workers=1))
    assert opened == ["cookies.tar.gz"] * 2 and all(record.skipped is None for record in records)
    assert [record.fields for record in records] == [
        deid_fast.get_fields(str(COOKIES / name)) for name in NAMES]


def test_a_member_whose_header_was_not_prefetched_is_read_again(made, monkeypatch):
    """Past PREFETCH_MAX (here 1 kB) a member is read from the archive again, with the same
    result."""
    monkeypatch.setattr(archives, "PREFETCH_MAX", 1024)
    items = list(inputs.items(str(made / "cookies.tar.gz")))
    assert all(item[1].prefetched is None for item in items)
    assert deid_fast.get_identifiers(str(made / "cookies.tar.gz")) == \
        deid_fast.get_identifiers(str(made / "cookies"))


def run(*args, status=0):
    done = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == status, done.stderr[-2000:]
    return done


def test_the_command_line_reads_archives_and_resumes_by_member(made, tmp_path):
    out = tmp_path / "ids.jsonl"
    run("get", made / "cookies.zip", "-o", out, "-q", "--workers", "2")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["path"] for row in rows] == [f"{made / 'cookies.zip'}!/study/{n}" for n in NAMES]
    folder_rows = [json.loads(line) for line in
                   run("get", made / "cookies", "-o", "-", "-q").stdout.splitlines()]
    assert [row["fields"] for row in rows] == [row["fields"] for row in folder_rows]
    run("get", made / "cookies.zip", made / "cookies.tar.gz", "-o", out, "-q", "--resume")
    paths = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert len(paths) == 2 * len(NAMES) and len(set(paths)) == len(paths)
    checked = run("check", made / "cookies.tar", "--pattern", "image[12].dcm").stdout
    assert checked.splitlines() == [f"dicom\t{made / 'cookies.tar'}!/study/image{n}.dcm"
                                    for n in (1, 2)]
    shown = run("show", f"{made / 'cookies.tar.gz'}!/study/image2.dcm", "PatientName").stdout
    assert shown.splitlines()[1] == "(0010,0010) PN [billowing mode]  # PatientName"


@pytest.mark.parametrize("opts", list(OPTION_SETS))
@pytest.mark.parametrize("name", archived_files(), ids=os.path.basename)
def test_deid_datas_zip_members_match_the_reference(name, opts):
    """§5: deid-data's zip files are read as archives; each member equals pydicom's reading of
    the member's bytes."""
    archive, member = name.split("!/", 1)
    with zipfile.ZipFile(archive) as opened, opened.open(member) as stream:
        dataset = pydicom.dcmread(stream, force=True, stop_before_pixels=True)
    options = OPTION_SETS[opts]
    reference = dict(options, skip_fields=["PixelData", *options.get("skip_fields", [])])
    expected = reference_fields(dataset, **reference)
    assert_same(deid_fast.get_fields(name, **options), expected)


def test_threads_reading_members_of_one_archive(made):
    """Members read from several threads at once (the archives a process keeps open are
    shared): every member's fields are its own."""
    import concurrent.futures
    names = [f"{made / archive}!/study/{name}" for archive in ("cookies.tar.gz", "cookies.zip")
             for name in NAMES] * 3
    expected = {name: deid_fast.get_fields(str(COOKIES / name.rsplit("/", 1)[1])) for name in names}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(deid_fast.get_fields, names))
    assert results == [expected[name] for name in names]


def test_an_archive_changed_after_its_listing_is_not_misread(tmp_path):
    """Members are found again by index and offset: when the archive is rewritten between the
    walk and the read, the member is a record saying so, never another member's fields."""
    archive = tmp_path / "a.zip"

    def write(order):
        with zipfile.ZipFile(archive, "w") as made:
            for name in order:
                made.write(COOKIES / name, name)
    write(NAMES)
    listed = list(inputs.items(str(archive)))
    os.utime(archive, ns=(0, 1))           # another file now, whatever its content
    write(list(reversed(NAMES)))
    records = list(bulk.records(listed, deid_fast.dicom.identifiers_job(), "warn", 1))
    assert all(record.skipped == "undecodable" and "changed since it was listed" in record.reason
               for record in records), records


def test_an_archive_without_read_permission_is_unreadable(tmp_path):
    """Run without the capabilities that let root read anything (CI runs as root)."""
    archive = tmp_path / "secret.zip"
    with zipfile.ZipFile(archive, "w") as made:
        made.write(COOKIES / "image1.dcm", "image1.dcm")
    os.chmod(archive, 0)
    code = ("import deid_fast.inputs as i, sys; (r,) = i.items(sys.argv[1]); "
            "print(r.kind, r.reason)")
    command = f"{sys.executable} -c {shlex.quote(code)} {shlex.quote(str(archive))}"
    if os.geteuid() == 0:
        capsh = shutil.which("capsh")
        assert capsh, "capsh (libcap2-bin) is needed to test permissions as root"
        done = subprocess.run([capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c",
                               command], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    else:
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("unreadable ") and "Permission denied" in done.stdout


@pytest.mark.parametrize("archive", ["cookies.zip", "cookies.tar", "cookies.tar.gz",
                                     "image1.dcm.gz"])
def test_damaged_archives_give_records_never_an_exception(made, tmp_path, archive):
    """Archives cut short or with bytes flipped (fixed seed): every outcome is a Record, read
    or skipped with its reason; no exception escapes, nothing hangs."""
    import random
    data = (made / archive).read_bytes()
    rng = random.Random(archive)
    mutants = []
    for number in range(24):
        mutated = bytearray(data)
        if number % 3 == 0:
            mutated = mutated[: rng.randrange(1, len(data))]
        else:
            for _ in range(rng.choice((1, 8, 64))):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        path = tmp_path / f"m{number:02d}_{archive}"
        path.write_bytes(bytes(mutated))
        mutants.append(str(path))
    records = list(deid_fast.iter_identifiers(mutants, workers=1))
    assert records and all(isinstance(record, deid_fast.bulk.Record) for record in records)
    assert all(record.skipped is None or record.reason for record in records)
    assert {record.path.split("!/")[0] for record in records} == set(mutants)


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz")])
def test_a_hard_link_in_a_tar_reads_its_target(tmp_path, suffix, mode):
    """tar stores a file linked twice as a hard link to the first member (as tar of a folder of
    hard links does): the link is a member with its own name and its target's fields."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(COOKIES / "image1.dcm", folder / "a.dcm")
    os.link(folder / "a.dcm", folder / "b.dcm")
    archive = tmp_path / f"linked{suffix}"
    with tarfile.open(archive, mode) as made:
        made.add(folder / "a.dcm", "a.dcm")
        made.add(folder / "b.dcm", "b.dcm")
    assert tarfile.open(archive).getmember("b.dcm").islnk()
    records = list(deid_fast.iter_identifiers(str(archive), workers=1))
    assert [record.path for record in records] == [f"{archive}!/a.dcm", f"{archive}!/b.dcm"]
    expected = deid_fast.get_fields(str(COOKIES / "image1.dcm"))
    assert [record.fields for record in records] == [expected, expected]
    assert deid_fast.get_fields(f"{archive}!/b.dcm") == expected
    dangling = tmp_path / f"dangling{suffix}"
    with tarfile.open(dangling, mode) as made:
        link = tarfile.TarInfo("c.dcm")
        link.type = tarfile.LNKTYPE
        link.linkname = "missing.dcm"
        made.addfile(link)
    (record,) = inputs.items(str(dangling))
    assert "hard link to 'missing.dcm'" in record.reason


def test_listing_a_plain_tar_reads_no_member_data(tmp_path, monkeypatch):
    """A plain tar is listed by seeking from header to header: a 60 MB archive is listed by
    reading a few kB (its members' data is never read by the walk)."""
    archive = tmp_path / "big.tar"
    with tarfile.open(archive, "w") as made:
        for number in range(3):
            info = tarfile.TarInfo(f"m{number}.dcm")
            info.size = 20 << 20
            made.addfile(info, io.BytesIO(bytes(info.size)))
    read = []
    real = archives._open_regular

    class Counting:
        def __init__(self, raw):
            self.raw = raw

        def read(self, *args):
            data = self.raw.read(*args)
            read.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.raw, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self.raw.close()

    monkeypatch.setattr(archives, "_open_regular", lambda path: Counting(real(path)))
    listed = list(inputs.items(str(archive)))
    assert [item[0] for item in listed] == [f"{archive}!/m{n}.dcm" for n in range(3)]
    assert sum(read) < 1 << 20


@pytest.mark.parametrize("suffix,mode", [(".zip", None), (".tar", "w")])
def test_a_rewritten_archive_is_read_anew_not_from_an_old_open_file(tmp_path, suffix, mode):
    """The archives a process keeps open are checked against the path on every read: a
    notebook that replaces an archive and reads a member by name gets the new content, not the
    old file's (still open, unlinked)."""
    archive = tmp_path / f"a{suffix}"

    def write(source, padding):
        partial = tmp_path / f"partial{suffix}"
        if mode is None:
            with zipfile.ZipFile(partial, "w") as made:
                made.writestr("pad.bin", bytes(padding))
                made.write(source, "x.dcm")
        else:
            with tarfile.open(partial, mode) as made:
                pad = tarfile.TarInfo("pad.bin")
                pad.size = padding
                made.addfile(pad, io.BytesIO(bytes(padding)))
                made.add(source, "x.dcm")
        os.replace(partial, archive)          # a new file at the path, as most tools write
    write(COOKIES / "image1.dcm", 10)
    first = deid_fast.get_fields(f"{archive}!/x.dcm")
    write(COOKIES / "image2.dcm", 5000)
    second = deid_fast.get_fields(f"{archive}!/x.dcm")
    assert first == deid_fast.get_fields(str(COOKIES / "image1.dcm"))
    assert second == deid_fast.get_fields(str(COOKIES / "image2.dcm")) != first
