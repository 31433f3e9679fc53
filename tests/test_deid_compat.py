"""deid_fast.deid against deid 0.4.13 itself (issue 13): the same lookup on every shipped and
generated file, the same files out of deid's own `replace_identifiers`, and the documented
differences, each checked for what deid_fast does instead."""
import copy
import faulthandler
import json
import logging
import os
import pickle
import sys
import threading
import warnings

import pydicom
import pytest
from deid.dicom import get_files as deid_get_files
from deid.dicom import get_identifiers as deid_get_identifiers
from deid.dicom import replace_identifiers
from deid.dicom.fields import DicomField as DeidField
from deid.logger import bot
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

import deid_fast
import deid_fast.deid as fast
from deid_fast._scan import scan
from deid_fast.decode import fallbacks
from deid_fast.errors import InvalidDicomError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helper modules beside this file
from corpus import shipped_files  # noqa: E402
from generate import generate_all  # noqa: E402

bot.level = 0       # deid prints its warnings itself; the tests read deid_fast's from the log

SHIPPED = shipped_files()
BY_NAME = {os.path.basename(path): path for path in SHIPPED}

# Where deid_fast.deid differs from deid on purpose (README, "From deid"), and what it does instead.
#: deid reports the fields pydicom makes of these; deid_fast gives {} and a WARNING naming them
NOT_READ = {
    "no_meta.dcm": "no DICM prefix and its first bytes are no element: pydicom makes one of them",
    "rtplan_truncated.dcm": "cut short: deid reports what pydicom read before the end",
    "sequence_non_item.dcm": "a sequence holds an element where an item must be",
    "item_past_sequence_end.dcm": "an item runs past the end of its sequence",
}
#: pydicom's whole-file read loses the data set at the truncated pixel data, so deid reports only
#: the file meta; deid_fast reads the header before it: what deid reports of a header-only read
PIXEL_DATA_CUT_SHORT = {"emri_small_jpeg_2k_lossless_too_short.dcm"}
#: deid raises on these (pydicom cannot decode an element); deid_fast reports the fields and
#: raises InvalidDicomError when that element is read
DEID_RAISES = {"wrong_length_fd.dcm": "(0018,9087)"}

USER_SKIP = ["PatientID", "(0008,0018)", "ReferencedImageSequence", "FileMetaInformationVersion",
             "(0009,0010)"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generate_all(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="module")
def user_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "deid.json"
    path.write_text(json.dumps({"get": {"skip": USER_SKIP}}))
    return str(path)


def signature(element):
    """Tag, VR, value type and value of an element and of everything nested in it, without
    recursion (the deepest generated file nests beyond Python's comparison depth)."""
    out = []
    stack = [((), element)]
    while stack:
        path, current = stack.pop()
        value = current.value
        if isinstance(value, Sequence):
            out.append((path, current.tag, current.VR, len(value)))
            for index, item in enumerate(value):
                stack.extend((path + (current.tag, index), sub) for sub in item)
        else:
            out.append((path, current.tag, current.VR, type(value).__name__, repr(value)))
    return out


def top_tag(uid):
    return int(uid[1:5] + uid[6:10], 16)


def deid_lookup(path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return deid_get_identifiers([path], **options)


def assert_same_fields(path, expected, got, compare_elements=True):
    """`got` (deid_fast's fields of one file) equals `expected` (deid's) up to the header's end:
    keys in order, every attribute deid's users read, and each element's tag, VR and value."""
    stopped_at = scan(path, True).stopped_at
    if stopped_at:      # deid read past the pixel data; deid_fast stops there
        expected = {uid: field for uid, field in expected.items()
                    if field.is_filemeta or top_tag(uid) <= stopped_at}
    assert list(got) == list(expected), f"{path}: keys differ"
    for uid, field in expected.items():
        mine = got[uid]
        assert isinstance(mine, fast.DicomField)
        for attribute in ("name", "uid", "tag", "stripped_tag", "is_filemeta"):
            assert getattr(mine, attribute) == getattr(field, attribute), (path, uid, attribute)
            assert type(getattr(mine, attribute)) is type(getattr(field, attribute))
        if compare_elements:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert signature(mine.element) == signature(field.element), (path, uid)


def check_file(path, caplog, **options):
    name = os.path.basename(path)
    key = os.path.abspath(path)
    if name in DEID_RAISES:
        with pytest.raises(Exception):
            deid_lookup(path, **options)
        got = fast.get_identifiers([path], **options)[key]
        tag = DEID_RAISES[name]
        with pytest.raises(InvalidDicomError, match=tag.replace("(", r"\(").replace(")", r"\)")) as info:
            got[tag].element
        assert info.value.path == path and info.value.kind == "undecodable"
        return
    expected = deid_lookup(path, **options)
    assert list(expected) == [key]
    with caplog.at_level(logging.WARNING, logger="deid_fast"):
        caplog.clear()
        got = fast.get_identifiers([path], **options)
    assert list(got) == [key]
    if name in NOT_READ:
        assert expected[key], "deid reports fields of it"
        assert got[key] == {}
        assert any(record.levelno == logging.WARNING and path in record.getMessage()
                   for record in caplog.records), "no WARNING names the file"
        return
    if name in PIXEL_DATA_CUT_SHORT:
        assert not any(not field.is_filemeta for field in expected[key].values())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header_only = pydicom.dcmread(path, force=True, stop_before_pixels=True)
            expected = deid_get_identifiers([header_only], **options)
        expected = {key: expected[key]}
        assert len(expected[key]) > 100
        pixel_data = got[key].pop("(7FE0,0010)", None)
        if pixel_data is not None:     # not skipped: read from the file, where pydicom fails
            with pytest.raises(InvalidDicomError, match="7FE0,0010"):
                pixel_data.element
    assert_same_fields(path, expected[key], got[key])


OPTION_SETS = {
    "default": {},
    "not-expanded": {"expand_sequences": False},
}


@pytest.mark.parametrize("options", list(OPTION_SETS), ids=list(OPTION_SETS))
@pytest.mark.parametrize("path", SHIPPED, ids=list(BY_NAME))
def test_shipped_file_equals_deid(path, options, caplog):
    check_file(path, caplog, **OPTION_SETS[options])


@pytest.mark.parametrize("path", SHIPPED, ids=list(BY_NAME))
def test_shipped_file_equals_deid_with_user_config(path, user_config, caplog):
    """A config that skips keywords, tags and a sequence, and not the pixel data: its field is
    read from the file when asked for, as deid has it."""
    check_file(path, caplog, config=user_config)


@pytest.mark.parametrize("options", list(OPTION_SETS) + ["config"])
def test_generated_files_equal_deid(generated, options, user_config, caplog):
    settings = {"config": user_config} if options == "config" else OPTION_SETS[options]
    for path in generated.values():
        check_file(path, caplog, **settings)


def test_the_corpus_covers_what_the_comparison_is_for(generated):
    """The files compared hold what the comparison must see: nested sequences, private
    elements, file meta, pixel data after the header, and files the native walk hands over."""
    before = sum(fallbacks.values())
    lookup = fast.get_identifiers(SHIPPED + list(generated.values()))
    fields = [field for per_file in lookup.values() for field in per_file.values()]
    assert len(lookup) == len(SHIPPED) + len(generated)
    assert sum("__" in field.uid for field in fields) > 1000
    assert sum(field.is_filemeta for field in fields) > 500
    assert sum(field.name.endswith("__") or field.name == "" for field in fields) > 100  # private
    assert sum(1 for path in SHIPPED if lookup[os.path.abspath(path)]
               and scan(path, True).stopped_at) > 100
    assert sum(fallbacks.values()) > before      # the pydicom path is compared too


@pytest.mark.parametrize("ignored", ["strip_sequences", "remove_private", "disable_skip"])
def test_options_deid_ignores_are_ignored(ignored, caplog):
    """deid 0.4's get_identifiers accepts and ignores these: the result is deid's either way."""
    for name in ("cookie-47.dcm" if "cookie-47.dcm" in BY_NAME else "image1.dcm",
                 "rtdose.dcm", "nested_priv_SQ.dcm", "CT_small.dcm"):
        path = BY_NAME.get(name) or next(p for p in SHIPPED if p.endswith(name))
        expected = deid_lookup(path, **{ignored: True})
        got = fast.get_identifiers(path, **{ignored: True})
        key = os.path.abspath(path)
        assert_same_fields(path, expected[key], got[key])
        assert list(got[key]) == list(fast.get_identifiers(path)[key])


def test_expand_sequences_must_be_exactly_true():
    """deid tests `expand_sequences is True`: a truthy 1 does not expand, in both."""
    path = BY_NAME["rtplan.dcm"]
    expected = deid_lookup(path, expand_sequences=1)
    got = fast.get_identifiers(path, expand_sequences=1)
    key = os.path.abspath(path)
    assert not any("__" in uid for uid in got[key])
    assert_same_fields(path, expected[key], got[key], compare_elements=False)


def test_dataset_inputs_equal_deid():
    """A pydicom Dataset in the list, as deid takes it: keyed by its file's absolute path."""
    path = BY_NAME["rtplan.dcm"]
    dataset = pydicom.dcmread(path)
    expected = deid_get_identifiers([dataset])
    got = fast.get_identifiers([dataset])
    assert list(got) == list(expected) == [os.path.abspath(path)]
    assert_same_fields(path, expected[os.path.abspath(path)], got[os.path.abspath(path)])
    assert list(fast.get_identifiers(pydicom.Dataset())) == [None]


# --- the field type ------------------------------------------------------------------------------


def test_elements_are_made_only_when_read(monkeypatch):
    """get_identifiers decodes nothing; the first element read has pydicom read that file's
    header once, for all its fields."""
    calls = []
    real = fast.read_header
    monkeypatch.setattr(fast, "read_header", lambda header: calls.append(1) or real(header))
    lookup = fast.get_identifiers([BY_NAME["rtplan.dcm"], BY_NAME["CT_small.dcm"]])
    assert calls == []
    rtplan, ct = lookup.values()
    assert rtplan["(0010,0010)"].element.value == pydicom.dcmread(BY_NAME["rtplan.dcm"]).PatientName
    assert calls == [1]
    for field in rtplan.values():
        field.element
    assert calls == [1]
    ct["(0010,0020)"].element
    assert calls == [1, 1]


def test_the_field_behaves_as_deids(tmp_path):
    """str, repr, matching methods, copies, pickles, assignment and extra attributes."""
    path = BY_NAME["nested_priv_SQ.dcm"] if "nested_priv_SQ.dcm" in BY_NAME else BY_NAME["rtplan.dcm"]
    key = os.path.abspath(path)
    theirs = deid_lookup(path)[key]
    mine = fast.get_identifiers(path)[key]
    expressions = ["PatientName", "patient's name", "(0010,0010)", "00100010", "Sequence",
                   "name$", "^Ref", r'0009,"', "creator", "1.2.840"]
    for uid, field in theirs.items():
        other = mine[uid]
        assert str(other) == str(field) and repr(other) == repr(field)
        for expression in expressions:
            assert other.name_contains(expression) == field.name_contains(expression), (uid, expression)
            assert other.value_contains(expression) == field.value_contains(expression), (uid, expression)
        for expression in ("VR:SQ", "vr:lo", "group:0009", "GROUP:0010", "keyword:x"):
            assert other.select_matches(expression) == field.select_matches(expression)
    field = next(iter(mine.values()))
    for clone in (copy.deepcopy(field), pickle.loads(pickle.dumps(field)), copy.copy(field)):
        assert (clone.uid, clone.name, clone.is_filemeta, clone.tag) == \
            (field.uid, field.name, field.is_filemeta, field.tag)
        assert clone.element == field.element
    field.note = "anything"
    assert pickle.loads(pickle.dumps(field)).note == "anything"
    replacement = pydicom.DataElement(0x00100020, "LO", "x")
    field.element = replacement
    assert field.element is replacement and field.tag == "(0010,0020)"
    made = fast.DicomField(replacement, "PatientID", "(0010,0020)", False)
    assert (made.element, made.name, made.uid, made.is_filemeta, made.stripped_tag) == \
        (replacement, "PatientID", "(0010,0020)", False, "00100020")
    assert str(made) == str(DeidField(replacement, "PatientID", "(0010,0020)"))


# --- bad input: what deid_fast does instead ------------------------------------------------------


def test_garbage_gives_an_empty_lookup_and_a_warning(tmp_path, caplog):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 12)
    with caplog.at_level(logging.WARNING, logger="deid_fast"):
        lookup = fast.get_identifiers([str(garbage)])
    assert lookup == {str(garbage): {}}
    assert any(str(garbage) in record.getMessage() and record.levelno == logging.WARNING
               for record in caplog.records)
    with pytest.raises(pydicom.errors.InvalidDicomError, match="garbage.bin"):
        fast.get_identifiers([str(garbage)], force=False)     # deid raises pydicom's error too


def test_what_cannot_be_opened_raises_naming_it(tmp_path):
    """A missing path, a named pipe (deid would block on it forever) and a folder raise
    InvalidDicomError naming them, promptly."""
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    for path, words in ((tmp_path / "missing.dcm", "missing.dcm"), (fifo, "named pipe"),
                        (tmp_path, str(tmp_path))):
        box = {}

        def call():
            try:
                fast.get_identifiers([BY_NAME["CT_small.dcm"], str(path)])
            except BaseException as exc:  # noqa: BLE001 - handed back to the test
                box["error"] = exc

        faulthandler.dump_traceback_later(180, exit=True)
        try:
            worker = threading.Thread(target=call, daemon=True)
            worker.start()
            worker.join(60)
            assert not worker.is_alive(), f"{path}: no answer within 60 s (hang)"
        finally:
            faulthandler.cancel_dump_traceback_later()
        assert isinstance(box.get("error"), InvalidDicomError), box
        assert words in str(box["error"]) and box["error"].kind == "unreadable"


# --- deid's replace_identifiers with either lookup ------------------------------------------------

RECIPE = """FORMAT dicom

%header

REPLACE PatientID var:new_id
REPLACE PatientName func:name_from_lookup
BLANK InstitutionName
REMOVE contains:Physician
REMOVE endswith:Comments
JITTER endswith:Date var:days
REMOVE select:group:0009
REPLACE StudyDescription func:description_from_lookup
"""


def name_from_lookup(item, value, field, dicom):
    return "anon^" + str(item["(0010,0010)"].element.value)[::-1] if "(0010,0010)" in item else "anon"


def description_from_lookup(item, value, field, dicom):
    """Reads a nested field of the lookup: the first referenced SOP class, when there is one."""
    nested = [uid for uid in item if isinstance(uid, str) and uid.endswith("(0008,1150)")]
    return "ref " + str(item[nested[0]].element.value) if nested else "no ref"


def personalise(lookup):
    for path, fields in lookup.items():
        fields["new_id"] = "id-" + (str(fields["(0010,0020)"].element.value)[::-1]
                                    if "(0010,0020)" in fields else "none")
        fields["days"] = -7
        fields["name_from_lookup"] = name_from_lookup
        fields["description_from_lookup"] = description_from_lookup
    return lookup


def run_deid(paths, lookup, recipe, out):
    """deid's replace_identifiers, one file at a time into its own folder: (path, bytes or the
    exception's type) per file."""
    results = []
    for index, path in enumerate(paths):
        folder = out / str(index)
        folder.mkdir(parents=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                written, = replace_identifiers([path], ids=lookup, deid=recipe, save=True,
                                               output_folder=str(folder), overwrite=True)
            with open(written, "rb") as handle:
                results.append(handle.read())
        except Exception as exc:
            results.append(type(exc).__name__)
    return results


def test_replace_identifiers_writes_the_same_files(tmp_path, generated):
    """deid's own replace_identifiers with a recipe of var:, func: (reading `.element.value` of
    the lookup), REPLACE, BLANK, REMOVE, JITTER and the contains:, endswith:, select:group:
    expanders: byte-identical files with deid's lookup and with deid_fast's."""
    recipe = tmp_path / "deid.dicom"
    recipe.write_text(RECIPE)
    paths = [p for p in SHIPPED + list(generated.values())
             if os.path.basename(p) not in NOT_READ and os.path.basename(p) not in DEID_RAISES
             and os.path.basename(p) not in PIXEL_DATA_CUT_SHORT]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = run_deid(paths, personalise(deid_get_identifiers(paths)), str(recipe),
                          tmp_path / "deid")
    mine = run_deid(paths, personalise(fast.get_identifiers(paths)), str(recipe), tmp_path / "fast")
    written = [result for result in theirs if isinstance(result, bytes)]
    assert len(written) > 200
    for path, expected, got in zip(paths, theirs, mine):
        assert got == expected, f"{path}: the output differs"
    # the recipe did act: a changed PatientID in every written file that has one
    changed = [pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), force=True).get("PatientID")
               for data in written]
    assert sum(1 for value in changed if value and str(value).startswith("id-")) > 150


def test_the_seeds_lookup_changes_nothing_in_deid(tmp_path):
    """Why README and docstrings warn: deid_fast.dicom's entity-keyed result matches no path, so
    replace_identifiers leaves the identifiers in place (the issue's reproduction)."""
    recipe = tmp_path / "deid.dicom"
    recipe.write_text("FORMAT dicom\n\n%header\n\nREPLACE PatientID var:new_id\n")
    path = BY_NAME["CT_small.dcm"]
    seeds = deid_fast.get_identifiers([path])
    for items in seeds.values():
        for fields in items.values():
            fields["new_id"] = "changed"
    kept, = run_deid([path], seeds, str(recipe), tmp_path / "seed")
    lookup = fast.get_identifiers([path])
    lookup[os.path.abspath(path)]["new_id"] = "changed"
    replaced, = run_deid([path], lookup, str(recipe), tmp_path / "fast")
    read = lambda data: pydicom.dcmread(pydicom.filebase.DicomBytesIO(data)).PatientID
    assert read(kept) == pydicom.dcmread(path).PatientID
    assert read(replaced) == "changed"


# --- get_files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("check", [False, True])
def test_get_files_equals_deids_on_the_shipped_folders(check):
    """The same files in the same order. With check=True, deid keeps what pydicom opens at all,
    cut-short files included; deid_fast leaves out the files its reader rejects (logged)."""
    folders = sorted({os.path.dirname(path) for path in SHIPPED})
    dropped = []
    for folder in folders:
        if any(name.endswith(".zip") for name in os.listdir(folder)):
            continue     # compared in test_zip_members_are_extracted_privately
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = list(deid_get_files(folder, check=check))
        got = list(fast.get_files(folder, check=check))
        if not check:
            assert got == expected, folder
            continue
        assert got == [path for path in expected if path in set(got)], folder
        for path in set(expected) - set(got):
            with pytest.raises(InvalidDicomError):
                deid_fast.get_fields(path, force=False)
            dropped.append(path)
    assert len(dropped) <= 5, dropped
    assert list(fast.get_files(folders[0], pattern="*.dcm", check=False)) == \
        list(deid_get_files(folders[0], pattern="*.dcm", check=False))


def test_default_skip_is_deids():
    import deid.dicom
    with open(os.path.join(os.path.dirname(deid.dicom.__file__), "config.json")) as handle:
        assert tuple(json.load(handle)["get"]["skip"]) == fast.DEID_SKIP


# --- zip files -----------------------------------------------------------------------------------

ZIPS = sorted(os.path.join(root, name)
              for root, _, names in os.walk(os.path.dirname(os.path.dirname(BY_NAME["image1.dcm"])))
              for name in names if name.endswith(".zip"))


def test_zip_members_are_extracted_privately(tmp_path, monkeypatch):
    """deid-data's zip files: every member extracted into a new private folder (deid: into the
    current folder), yielded as a real file with the member's bytes; their identifiers are
    deid's for the same files."""
    import zipfile
    assert len(ZIPS) >= 2
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    yielded = list(fast.get_files(ZIPS))
    assert os.listdir(work) == []
    expected_members = []
    for archive in ZIPS:
        with zipfile.ZipFile(archive) as opened:
            expected_members += [(info.filename, opened.read(info)) for info in opened.infolist()
                                 if not info.is_dir()]
    assert len(yielded) == len(expected_members)
    for path, (member, data) in zip(yielded, expected_members):
        assert path.endswith(member) and os.path.isfile(path) and not os.path.islink(path)
        with open(path, "rb") as handle:
            assert handle.read() == data
        folder = os.path.dirname(path)
        assert os.path.basename(folder).startswith("deid_fast-zip-")
        assert stat_mode(folder) == 0o700
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = deid_get_identifiers(yielded)
    got = fast.get_identifiers(yielded)
    assert list(got) == list(expected)
    for path in yielded:
        assert_same_fields(path, expected[os.path.abspath(path)], got[os.path.abspath(path)])
    inside = tmp_path / "temp"
    inside.mkdir()
    assert all(path.startswith(str(inside) + os.sep)
               for path in fast.get_files(ZIPS[0], tempdir=str(inside)))


def stat_mode(path):
    return os.stat(path).st_mode & 0o777


def test_zip_members_cannot_escape_or_replace(tmp_path, caplog, monkeypatch):
    """Members named to land outside the folder (zip-slip), absolute names, links, repeated
    names and a damaged archive: left out with a WARNING each, nothing written elsewhere."""
    import zipfile
    good = open(BY_NAME["image1.dcm"], "rb").read()
    archive = tmp_path / "upload" / "study.zip"
    archive.parent.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # zipfile warns about the repeated name
        with zipfile.ZipFile(archive, "w") as made:
            made.writestr("../escaped.dcm", good)
            made.writestr("deep/../../../escaped2.dcm", good)
            made.writestr("/absolute.dcm", good)
            link = zipfile.ZipInfo("link.dcm")
            link.external_attr = (0o120777 << 16)
            made.writestr(link, "/etc/passwd")
            made.writestr("series/one.dcm", good)
            made.writestr("series/one.dcm", b"second copy")
            made.writestr("empty-folder/", b"")
    damaged = tmp_path / "upload" / "damaged.zip"
    damaged.write_bytes(archive.read_bytes()[:200])
    monkeypatch.chdir(tmp_path / "upload")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with caplog.at_level(logging.WARNING, logger="deid_fast"):
        yielded = list(fast.get_files([str(archive), str(damaged)], check=False,
                                      tempdir=str(tmp_path)))
    assert len(yielded) == 1 and yielded[0].endswith(os.path.join("series", "one.dcm"))
    assert open(yielded[0], "rb").read() == good
    folder = os.path.dirname(os.path.dirname(yielded[0]))
    after = sorted(str(p) for p in tmp_path.rglob("*") if not str(p).startswith(folder))
    assert after == before, "something was written outside the extraction folder"
    messages = "\n".join(record.getMessage() for record in caplog.records)
    for words in ("'../escaped.dcm'", "'deep/../../../escaped2.dcm'", "'/absolute.dcm'",
                  "'link.dcm'", "repeats a name", "damaged.zip"):
        assert words in messages, words


def test_a_zip_member_cannot_fill_the_disk(tmp_path, caplog, monkeypatch):
    """A member declaring more than half the free space is left out, with a WARNING."""
    import collections
    import zipfile
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w") as made:
        made.writestr("small.dcm", b"x" * 10)
        made.writestr("large.dcm", b"x" * 300)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(fast.shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 500, 500))
    with caplog.at_level(logging.WARNING, logger="deid_fast"):
        yielded = list(fast.get_files(str(archive), check=False, tempdir=str(tmp_path)))
    assert [os.path.basename(path) for path in yielded] == ["small.dcm"]
    assert not os.path.exists(os.path.join(os.path.dirname(yielded[0]), "large.dcm"))
    assert any("'large.dcm'" in record.getMessage() and "half the free disk space" in
               record.getMessage() for record in caplog.records)


def test_the_callers_pydicom_settings_apply_as_in_deid(generated, monkeypatch, caplog):
    """deid reads with whatever pydicom.config says; so are deid_fast.deid's elements made, and
    settings that change which elements are sequences make it read with pydicom throughout."""
    from pydicom import config
    paths = [generated[name] for name in ("un_sequence_defined_length", "private_dictionary_un",
                                          "numeric_values", "nested_sequences")]
    config.DS_decimal(True)
    try:
        for path in paths:
            check_file(path, caplog)
        decimals = [field.element.value for field in fast.get_identifiers(paths[2])[
            os.path.abspath(paths[2])].values() if field.element.VR == "DS"]
    finally:
        config.DS_decimal(False)
    assert decimals and all(type(value).__name__ == "DSdecimal" for value in
                            (item for value in decimals for item in
                             (value if isinstance(value, MultiValue) else [value])))
    monkeypatch.setattr(config, "replace_un_with_known_vr", False)
    monkeypatch.setattr(config.settings, "infer_sq_for_un_vr", False)
    before = sum(fallbacks.values())
    for path in paths:
        check_file(path, caplog)
    assert sum(fallbacks.values()) == before      # not hand-overs: the pydicom path by choice
    assert fast._structure_as_default() is False


def test_a_tempdir_that_cannot_take_the_folder_raises(tmp_path):
    import zipfile
    archive = tmp_path / "one.zip"
    with zipfile.ZipFile(archive, "w") as made:
        made.writestr("a.dcm", b"x")
    with pytest.raises(FileNotFoundError):
        list(fast.get_files(str(archive), check=False, tempdir=str(tmp_path / "missing")))
