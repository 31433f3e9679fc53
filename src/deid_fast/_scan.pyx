# cython: language_level=3
"""The scanner: knows bytes, nothing else.

It checks the preamble, reads the file meta group, learns the transfer syntax (explicit or
implicit VR, little or big endian, deflated), and walks the data elements through one
bounds-checked byte source to find where the header ends: the first top-level pixel data
element, or the end of the file. It reads the file in bounded chunks, never past what the walk
needs, so pixel data is not read. Where the encoding is ambiguous it decides exactly as
pydicom's reader does (``pydicom.filereader.read_partial``, ``read_dataset``,
``data_element_generator``), so the bytes it hands on are the bytes pydicom would parse.

Anything that is not a whole, decodable header raises ``InvalidDicomError`` with the byte
offset and the reason (SPEC section 3). Nesting is state in an explicit stack, bounded by
``max_depth``, never recursion.
"""

cimport cython
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcmp, memcpy
from libc.errno cimport errno
from posix.unistd cimport read as c_read, close as c_close
from posix.stat cimport struct_stat, fstat, stat as c_stat, S_ISDIR, S_ISREG

import os
import zlib

from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR as _VR
from pydicom.values import converters as _converters

from deid_fast._dictionary cimport vr_of
from deid_fast.errors import InvalidDicomError
from deid_fast.inputs import not_a_file as _not_a_file

cdef extern from "Python.h":
    bytes PyUnicode_EncodeFSDefault(object unicode)

cdef Py_ssize_t FIRST_READ = 4096      # one read covers the header of most files
cdef Py_ssize_t MIN_READ = 16384
cdef Py_ssize_t INFLATE_CHUNK = 65536  # compressed bytes fed to zlib at a time
DEFAULT_MAX_HEADER_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_ELEMENTS = 2_000_000
cdef unsigned int UNDEFINED = 0xFFFFFFFF

cdef unsigned int ITEM = 0xFFFEE000
cdef unsigned int ITEM_DELIMITER = 0xFFFEE00D
cdef unsigned int SEQUENCE_DELIMITER = 0xFFFEE0DD

# Transfer syntaxes whose data set encoding differs from explicit VR little endian.
cdef str IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
cdef str EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
cdef str DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"

# VR tables, indexed by the two VR bytes as (b0 - 'A') * 26 + (b1 - 'A').
# KNOWN: a VR pydicom's reader recognises; LONG: one with a 4-byte length in explicit VR;
# VALID_FOR_GUESS: pydicom's `converters` keys, used to guess explicit VR without a transfer syntax.
cdef unsigned char VR_KNOWN[676]
cdef unsigned char VR_LONG[676]
cdef unsigned char VR_VALID_FOR_GUESS[676]


cdef inline int vr_index(unsigned char b0, unsigned char b1) noexcept nogil:
    if b'A' <= b0 <= b'Z' and b'A' <= b1 <= b'Z':
        return (b0 - 65) * 26 + (b1 - 65)
    return -1


cdef void _fill_vr_table(unsigned char* table, names):
    cdef bytes raw
    cdef int i
    for name in names:
        if len(name) == 2:
            raw = name.encode("ascii")
            i = vr_index(raw[0], raw[1])
            if i >= 0:
                table[i] = 1


for _i in range(676):
    VR_KNOWN[_i] = 0
    VR_LONG[_i] = 0
    VR_VALID_FOR_GUESS[_i] = 0
_fill_vr_table(VR_KNOWN, [str(v) for v in _VR])
_fill_vr_table(VR_LONG, [str(v) for v in EXPLICIT_VR_LENGTH_32])
_fill_vr_table(VR_VALID_FOR_GUESS, list(_converters))


cdef inline bint is_pixel_data(unsigned int tag) noexcept nogil:
    return tag == 0x7FE00010 or tag == 0x7FE00008 or tag == 0x7FE00009


cdef str tag_text(unsigned int tag):
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


# ---------------------------------------------------------------------------------------------
# Byte sources: every read of the walk goes through `have(end)`, which makes bytes [0, end)
# available or says they do not exist. Nothing is indexed without it.


@cython.no_gc   # holds no reference that could lead back to it
cdef class ByteSource:
    def __dealloc__(self):
        free(self.buf)

    cdef int _reserve(self, Py_ssize_t capacity) except -1:
        cdef unsigned char* grown
        if capacity <= self.capacity:
            return 0
        grown = <unsigned char*> realloc(self.buf, capacity)
        if grown == NULL:
            raise MemoryError()
        self.buf = grown
        self.capacity = capacity
        return 0

    cdef int _more(self, Py_ssize_t end) except -1:
        """Read or produce bytes until `size >= end` or the source is exhausted."""
        self.exhausted = True
        return 0

    cdef Py_ssize_t bounded_end(self, Py_ssize_t end, Py_ssize_t available) except -1:
        """`end` cut to the `available` bytes of the source (no allocation for bytes it does not
        have); past `limit` (max_header_bytes) the header is too large."""
        if end > available:
            end = available
        if end > self.limit:
            raise InvalidDicomError(self.path, "too-large",
                                    f"the header runs past {self.limit} bytes (max_header_bytes)",
                                    self.limit)
        return end

    cdef bint have(self, Py_ssize_t end) except -1:
        if end <= self.size:
            return True
        if not self.exhausted:
            self._more(end)
        return end <= self.size

    cdef unsigned int u16(self, Py_ssize_t pos, bint little) noexcept:
        cdef unsigned char* p = self.buf + pos
        if little:
            return p[0] | (p[1] << 8)
        return (p[0] << 8) | p[1]

    cdef unsigned int u32(self, Py_ssize_t pos, bint little) noexcept:
        cdef unsigned char* p = self.buf + pos
        if little:
            return p[0] | (p[1] << 8) | (p[2] << 16) | (<unsigned int> p[3] << 24)
        return (<unsigned int> p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]

    cdef unsigned int tag_at(self, Py_ssize_t pos, bint little) noexcept:
        return (self.u16(pos, little) << 16) | self.u16(pos + 2, little)

    cdef bytes slice(self, Py_ssize_t start, Py_ssize_t end):
        return (<char*> self.buf)[start:end]


cdef extern from "fcntl.h" nogil:
    int c_open "open"(const char *path, int flags)
    enum: O_RDONLY
    enum: O_NONBLOCK
    enum: O_NOCTTY
    enum: O_CLOEXEC


cdef int _check_regular(path, unsigned int mode) except -1:
    if S_ISDIR(mode):
        raise InvalidDicomError(path, "unreadable", "is a directory, not a file")
    if not S_ISREG(mode):
        raise InvalidDicomError(path, "unreadable", _not_a_file(mode))
    return 0


cdef class FileSource(ByteSource):
    """The bytes of a file, read in chunks on demand, never beyond what was asked plus a chunk."""
    cdef int fd
    cdef Py_ssize_t file_size

    def __cinit__(self):
        self.fd = -1

    def __dealloc__(self):
        if self.fd >= 0:
            c_close(self.fd)

    cdef int open(self, path, bint checked=False) except -1:
        """Look before opening: only a regular file is opened (a named pipe would block, a
        device could act on being opened), without blocking or taking a terminal, and the
        open file is checked again (it may have been replaced in between). `checked`: the
        caller has looked already (`deid_fast.inputs` took the type from the directory entry
        or a stat), so only the open file is checked."""
        cdef bytes encoded = (PyUnicode_EncodeFSDefault(path) if type(path) is str
                              else os.fsencode(path))
        cdef struct_stat st
        self.path = path
        if not checked:
            if c_stat(encoded, &st) != 0:
                err = errno
                raise InvalidDicomError(path, "unreadable", f"cannot open: {os.strerror(err)}")
            _check_regular(path, st.st_mode)
        self.fd = c_open(encoded, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        if self.fd < 0:
            err = errno
            raise InvalidDicomError(path, "unreadable", f"cannot open: {os.strerror(err)}")
        if fstat(self.fd, &st) != 0:
            err = errno
            raise InvalidDicomError(path, "unreadable", f"cannot stat: {os.strerror(err)}")
        _check_regular(path, st.st_mode)
        self.file_size = st.st_size
        return 0

    cdef int _more(self, Py_ssize_t end) except -1:
        cdef Py_ssize_t want, got
        end = self.bounded_end(end, self.file_size)
        want = max(end - self.size, MIN_READ if self.size else FIRST_READ)
        want = min(want, self.limit - self.size, self.file_size - self.size)
        while self.size < end and not self.exhausted:
            self._reserve(self.size + want)
            with nogil:
                got = c_read(self.fd, self.buf + self.size, want)
            if got < 0:
                err = errno
                raise InvalidDicomError(self.path, "unreadable", f"read failed: {os.strerror(err)}",
                                        self.size)
            if got == 0:
                self.exhausted = True
            self.size += got
            want = min(max(end - self.size, MIN_READ), self.limit - self.size,
                       self.file_size - self.size)
            if want <= 0:
                self.exhausted = True
        return 0


cdef class StreamSource(ByteSource):
    """The bytes of a file-like object (an archive member, inflated as it is read), read in
    chunks on demand; `size` of the member when known (a declared length past it fails without
    reading), else bounded by max_header_bytes alone."""
    cdef object stream
    cdef Py_ssize_t member_size

    cdef int _more(self, Py_ssize_t end) except -1:
        cdef bytes data
        cdef Py_ssize_t want, got
        end = self.bounded_end(end, self.member_size)
        while self.size < end and not self.exhausted:
            want = min(max(end - self.size, MIN_READ if self.size else FIRST_READ),
                       self.limit - self.size, self.member_size - self.size)
            if want <= 0:
                self.exhausted = True
                break
            try:
                data = self.stream.read(want)
            except (OSError, EOFError, ValueError, RuntimeError, zlib.error) as exc:
                raise InvalidDicomError(self.path, "undecodable",
                                        f"the archive member cannot be read: "
                                        f"{type(exc).__name__}: {exc}", self.size)
            got = len(data)
            if got > want:
                raise InvalidDicomError(self.path, "undecodable",
                                        "the archive member gave more bytes than asked", self.size)
            if got == 0:
                self.exhausted = True
                break
            self._reserve(self.size + got)
            memcpy(self.buf + self.size, <const char*> data, got)
            self.size += got
        return 0


cdef class InflatedSource(ByteSource):
    """A deflated data set (raw deflate), inflated chunk by chunk as the walk asks for bytes."""
    cdef ByteSource compressed
    cdef Py_ssize_t compressed_pos
    cdef object inflater

    cdef int start(self, ByteSource compressed, Py_ssize_t pos) except -1:
        self.path = compressed.path
        self.limit = compressed.limit
        self.compressed = compressed
        self.compressed_pos = pos
        self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        return 0

    cdef int _more(self, Py_ssize_t end) except -1:
        cdef bytes out
        cdef Py_ssize_t n
        while self.size < end and not self.exhausted:
            if self.compressed.have(self.compressed_pos + 1):
                n = min(INFLATE_CHUNK, self.compressed.size - self.compressed_pos)
                chunk = self.compressed.slice(self.compressed_pos, self.compressed_pos + n)
                self.compressed_pos += n
                try:
                    out = self.inflater.decompress(chunk)
                except zlib.error as exc:
                    raise InvalidDicomError(self.path, "undecodable",
                                            f"deflated data set cannot be inflated: {exc}")
                if self.inflater.eof:
                    self.exhausted = True
            else:
                out = self.inflater.flush()
                self.exhausted = True
            if out:
                n = len(out)
                if self.size + n > self.limit:
                    raise InvalidDicomError(
                        self.path, "too-large",
                        f"the deflated data set inflates past {self.limit} bytes (max_header_bytes)")
                self._reserve(self.size + n)
                memcpy(self.buf + self.size, <const char*> out, n)
                self.size += n
        return 0


# ---------------------------------------------------------------------------------------------
# The walk


cdef enum FrameKind:
    DATASET = 0    # the top-level data set, or one sequence item
    SEQUENCE = 1

cdef struct Frame:
    FrameKind kind
    Py_ssize_t end        # where a defined length ends; -1 for undefined length (or top level)
    bint implicit         # VR-ness of a data set frame
    int depth             # sequence nesting level of the elements of a data set frame
    Py_ssize_t token      # index of the token that opened the frame
    unsigned int last_tag # of a data set frame: the last element's tag, to check the order
    bint has_last


@cython.no_gc   # holds no reference that could lead back to it
cdef class Header:
    """What the scanner found: where the header's bytes are, how they are encoded, and the
    table of its elements, sequences and items (in file order)."""

    def __dealloc__(self):
        free(self.tokens)
        free(self.group_tokens)

    cdef list group_order(self, Py_ssize_t start, Py_ssize_t stop, bint ordered):
        """The indexes of the group tokens [start, stop) in tag order; of a repeated tag (a file
        meta group written twice), the last, as pydicom keeps it."""
        cdef Py_ssize_t i
        cdef dict last
        if ordered:
            return list(range(start, stop))
        last = {}
        for i in range(start, stop):
            last[self.group_tokens[i].tag] = i
        return [last[tag] for tag in sorted(last)]

    @property
    def has_file_meta(self):
        return self.meta_end > self.meta_start

    @property
    def file_meta(self):
        """The group 0002 bytes, b"" when absent."""
        return self.file_source.slice(self.meta_start, self.meta_end)

    @property
    def command_set(self):
        """The group 0000 bytes (implicit VR little endian), b"" when absent."""
        return self.file_source.slice(self.meta_end, self.command_end)

    @property
    def dataset(self):
        """The data set up to the header's end, inflated when the file is deflated."""
        return self.data_source.slice(self.data_start, self.header_end)

    def table(self):
        """The element table as tuples (kind, depth, tag, VR or None, value offset, value
        length); kinds are 'element', 'sequence', 'item', 'item end', 'sequence end'. Offsets
        are in the file, or in the inflated data set when deflated. For tests and debugging."""
        kinds = ("element", "sequence", "item", "item end", "sequence end")
        rows = []
        cdef Py_ssize_t i
        cdef int depth = 0
        cdef Token* token
        for i in range(self.token_count):
            token = &self.tokens[i]
            if token.kind == T_SEQUENCE_END:
                depth -= 1
            vr = chr(token.vr >> 8) + chr(token.vr & 0xFF) if token.vr else None
            rows.append((kinds[token.kind], depth, token.tag, vr, token.offset, token.length))
            if token.kind == T_SEQUENCE:
                depth += 1
        return rows


cdef Token* next_token(Token** table, Py_ssize_t* count, Py_ssize_t* capacity) except NULL:
    """A new slot at the end of a growable token table (its capacity doubles)."""
    cdef Token* grown
    if count[0] == capacity[0]:
        capacity[0] = max(64, 2 * capacity[0])
        grown = <Token*> realloc(table[0], sizeof(Token) * capacity[0])
        if grown == NULL:
            raise MemoryError()
        table[0] = grown
    count[0] += 1
    return &table[0][count[0] - 1]


cdef inline void set_token(Token* token, unsigned char kind, unsigned int tag, unsigned short vr,
                           Py_ssize_t offset, Py_ssize_t length) noexcept:
    token.tag = tag
    token.vr = vr
    token.kind = kind
    token.offset = offset
    token.length = length
    token.end = -1
    token.count = 0


@cython.no_gc   # holds no reference that could lead back to it
cdef class Walker:
    cdef ByteSource src
    cdef unsigned int stopped_at  # the top-level tag the walk stopped at, 0 if none
    cdef object path
    cdef int max_depth
    cdef Frame* stack
    cdef int top
    cdef Py_ssize_t elements
    cdef Py_ssize_t offset_base   # added to offsets in error messages (0 unless deflated)
    cdef bint deflated
    cdef Token* tokens
    cdef Py_ssize_t token_count, token_capacity
    cdef Py_ssize_t max_elements, element_tokens
    cdef bint unordered
    cdef bint group_ascends       # the tags of the last group `walk_group` walked ascended
    cdef Token* group_tokens      # the elements of the file meta group, then the command set's
    cdef Py_ssize_t group_count, group_capacity

    def __dealloc__(self):
        free(self.stack)
        free(self.tokens)
        free(self.group_tokens)

    cdef int count_element(self, Py_ssize_t offset) except -1:
        self.element_tokens += 1
        if self.element_tokens > self.max_elements:
            self.fail("too-large", f"the header holds more than {self.max_elements} elements "
                      "and items (max_elements)", offset)
        return 0

    cdef int emit_group(self, unsigned int tag, unsigned short vr, Py_ssize_t offset,
                        Py_ssize_t length) except -1:
        """Append an element of the file meta group or the command set to their own table."""
        self.count_element(offset)
        set_token(next_token(&self.group_tokens, &self.group_count, &self.group_capacity),
                  T_ELEMENT, tag, vr, offset, length)
        return 0

    cdef Py_ssize_t emit(self, unsigned char kind, unsigned int tag, unsigned short vr,
                         Py_ssize_t offset, Py_ssize_t length) except -1:
        """Append a token to the table; returns its index."""
        if kind == T_ELEMENT or kind == T_SEQUENCE or kind == T_ITEM:
            self.count_element(offset)
        set_token(next_token(&self.tokens, &self.token_count, &self.token_capacity),
                  kind, tag, vr, offset, length)
        return self.token_count - 1

    cdef int pop(self) except -1:
        """Close the innermost sequence or item, with its end token."""
        cdef Frame* frame = &self.stack[self.top]
        cdef Py_ssize_t index
        index = self.emit(T_SEQUENCE_END if frame.kind == SEQUENCE else T_ITEM_END, 0, 0, 0, 0)
        self.tokens[frame.token].end = index
        self.top -= 1
        return 0

    cdef int push(self, FrameKind kind, Py_ssize_t end, bint implicit, int depth,
                  Py_ssize_t token) except -1:
        cdef Frame* frame
        self.top += 1
        frame = &self.stack[self.top]
        frame.kind = kind
        frame.end = end
        frame.implicit = implicit
        frame.depth = depth
        frame.token = token
        frame.has_last = False
        return 0

    cdef int init(self, ByteSource src, path, int max_depth, Py_ssize_t max_elements,
                  Py_ssize_t offset_base, bint deflated) except -1:
        self.src = src
        self.path = path
        self.max_depth = max_depth
        self.max_elements = max_elements
        self.offset_base = offset_base
        self.deflated = deflated
        # a data set frame and a sequence frame per level, plus the top level
        self.stack = <Frame*> malloc(sizeof(Frame) * (2 * max_depth + 4))
        if self.stack == NULL:
            raise MemoryError()
        return 0

    cdef fail(self, str kind, str reason, Py_ssize_t pos):
        where = pos if not self.deflated else None
        if self.deflated:
            reason = f"{reason} (at byte {pos} of the inflated data set)"
        raise InvalidDicomError(self.path, kind, reason, where if where is None else
                                where + self.offset_base)

    cdef bint looks_implicit(self, Py_ssize_t pos, bint assumed) except -1:
        """pydicom's `_is_implicit_vr` peek: are the two bytes where an explicit VR would be
        something other than two upper-case letters? Too few bytes: keep what was assumed."""
        cdef unsigned char b0, b1
        if not self.src.have(pos + 6):
            return assumed
        b0 = self.src.buf[pos + 4]
        b1 = self.src.buf[pos + 5]
        return not (0x40 < b0 < 0x5B and 0x40 < b1 < 0x5B)

    cdef Py_ssize_t walk_group(self, Py_ssize_t pos, unsigned int group, bint implicit,
                               bint counted, bint must_ascend) except -2:
        """Walk the run of top-level elements of `group` (file meta or command set) from `pos`;
        returns where the run ends, and records in `group_ascends` whether its tags ascended.
        These groups hold no sequences. `must_ascend`: a tag that does not ascend makes the
        bytes noise (a run of zero bytes repeats (0000,0000)); without it, it is read as pydicom
        reads it (a rewritten file meta group kept with the old one repeats its tags).
        `counted`: whether these elements count as the file's data elements."""
        cdef unsigned int tag, length, previous_tag = 0
        cdef int vi
        cdef Py_ssize_t header_len
        cdef unsigned char b0, b1
        cdef unsigned short vr_code
        cdef bint have_previous = False
        self.group_ascends = True
        while self.src.have(pos + 8):
            tag = self.src.tag_at(pos, True)
            if (tag >> 16) != group:
                break
            if have_previous and tag <= previous_tag:
                if must_ascend:     # (the file meta group must only without a DICM prefix)
                    self.fail("not-dicom",
                              f"{'no DICM prefix, and ' if group == 0x0002 else ''}tag "
                              f"{tag_text(tag)} is out of order in group {group:04X}", pos)
                self.group_ascends = False
            previous_tag = tag
            have_previous = True
            header_len = 8
            vr_code = 0         # none in the file: read as implicit VR
            if implicit:
                length = self.src.u32(pos + 4, True)
            else:
                b0 = self.src.buf[pos + 4]
                b1 = self.src.buf[pos + 5]
                vi = vr_index(b0, b1)
                if vi >= 0 and VR_KNOWN[vi] and VR_LONG[vi]:
                    if not self.src.have(pos + 12):
                        self.fail("truncated", f"element {tag_text(tag)} is cut short", pos)
                    length = self.src.u32(pos + 8, True)
                    header_len = 12
                    vr_code = (b0 << 8) | b1
                elif not (vi >= 0 and VR_KNOWN[vi]) and not _in_letter_range(b0, b1):
                    length = self.src.u32(pos + 4, True)
                else:
                    length = self.src.u16(pos + 6, True)
                    vr_code = (b0 << 8) | b1
            if length == UNDEFINED:
                self.fail("undecodable",
                          f"element {tag_text(tag)} of group {group:04X} has an undefined length",
                          pos)
            if not self.src.have(pos + header_len + length):
                self.fail("truncated",
                          f"element {tag_text(tag)} declares {length} bytes, past the end of the file",
                          pos)
            if counted and (tag & 0xFFFF) != 0:   # a group length alone is no data
                self.elements += 1
            self.emit_group(tag, vr_code, pos + header_len, length)
            pos += header_len + length
        return pos

    cdef Py_ssize_t walk_dataset(self, Py_ssize_t pos, bint implicit, bint little,
                                 bint check_order, unsigned int stop_after) except -2:
        """Walk the top-level data set from `pos` and everything nested in it; returns the offset
        where the header ends (the first top-level pixel data element, or the end of the data),
        or where the walk stops: at the first top-level tag past `stop_after`."""
        cdef Frame* frame
        cdef unsigned int tag, length, previous_tag = 0
        cdef Py_ssize_t header_len, value_pos, end
        cdef unsigned char b0, b1
        cdef int vi
        cdef bint sequence, unknown_vr, is_un, have_previous = False
        cdef unsigned short vr_code

        self.top = 0
        frame = &self.stack[0]
        frame.kind = DATASET
        frame.end = -1
        frame.implicit = implicit
        frame.depth = 0
        frame.has_last = False

        while True:
            frame = &self.stack[self.top]
            if frame.kind == SEQUENCE:
                if frame.end >= 0 and pos >= frame.end:
                    self.pop()
                    continue
                if not self.src.have(pos + 8):
                    self.fail("truncated", "sequence is cut short before its items end", pos)
                tag = self.src.tag_at(pos, little)
                length = self.src.u32(pos + 4, little)
                if tag == SEQUENCE_DELIMITER:
                    pos += 8
                    if frame.end >= 0:   # pydicom ends a defined-length sequence here too
                        pos = frame.end
                    self.pop()
                    continue
                if tag != ITEM:
                    self.fail("undecodable", f"expected a sequence item, found {tag_text(tag)}", pos)
                pos += 8
                if length != UNDEFINED:
                    end = pos + length
                    if frame.end >= 0 and end > frame.end:
                        self.fail("undecodable", "item runs past the end of its sequence", pos - 8)
                    if not self.src.have(end):
                        self.fail("truncated",
                                  f"item declares {length} bytes, past the end of the file", pos - 8)
                else:
                    end = -1
                # items of an implicit VR sequence stay implicit; in explicit VR an item may
                # switch to implicit (pydicom's `_is_implicit_vr` for sequences)
                implicit = frame.implicit or self.looks_implicit(pos, False)
                self.tokens[frame.token].count += 1
                self.push(DATASET, end, implicit, frame.depth, self.emit(T_ITEM, ITEM, 0, pos, 0))
                continue

            # a data set frame: the top level or an item
            if frame.end >= 0 and pos >= frame.end:
                if pos > frame.end:
                    self.fail("undecodable", "element runs past the end of its item", pos)
                self.pop()
                continue
            if not self.src.have(pos + 8):
                if self.top == 0 and not self.src.have(pos + 1):
                    return pos     # the end of the data: the whole file is header
                if self.top == 0:
                    self.fail("truncated", "element header is cut short", pos)
                self.fail("truncated", "item is never closed before the end of the file", pos)

            tag = self.src.tag_at(pos, little)
            if tag == ITEM_DELIMITER:
                if self.top == 0 or frame.end >= 0:
                    self.fail("undecodable", "item delimiter outside an undefined-length item", pos)
                pos += 8
                if not frame.implicit:
                    # pydicom reads the delimiter as an explicit VR element: when its length
                    # field starts with the letters of a long VR (OB, OW, SQ, UN, UT...), four
                    # more bytes go with it
                    vi = vr_index(self.src.buf[pos - 4], self.src.buf[pos - 3])
                    if vi >= 0 and VR_KNOWN[vi] and VR_LONG[vi]:
                        if not self.src.have(pos + 4):
                            self.fail("truncated", "item delimiter is cut short", pos - 8)
                        pos += 4
                self.pop()
                continue
            if self.top == 0:
                if check_order:
                    if have_previous and tag <= previous_tag:
                        self.fail("not-dicom",
                                  f"no DICM prefix, and tag {tag_text(tag)} is out of order",
                                  pos)
                    previous_tag = tag
                    have_previous = True
                if is_pixel_data(tag) or tag > stop_after:
                    self.elements += 1
                    self.stopped_at = tag
                    return pos
            if frame.has_last and tag <= frame.last_tag:
                self.unordered = True
            frame.last_tag = tag
            frame.has_last = True

            header_len = 8
            sequence = False
            unknown_vr = False     # UN, or no VR at all: resolved below as pydicom does
            is_un = False
            vr_code = 0
            if frame.implicit:
                length = self.src.u32(pos + 4, little)
                unknown_vr = True
            else:
                b0 = self.src.buf[pos + 4]
                b1 = self.src.buf[pos + 5]
                vi = vr_index(b0, b1)
                if vi >= 0 and VR_KNOWN[vi]:
                    if VR_LONG[vi]:
                        if not self.src.have(pos + 12):
                            self.fail("truncated", f"element {tag_text(tag)} is cut short", pos)
                        length = self.src.u32(pos + 8, little)
                        header_len = 12
                    else:
                        length = self.src.u16(pos + 6, little)
                    sequence = b0 == b'S' and b1 == b'Q'
                    is_un = b0 == b'U' and b1 == b'N'
                elif not _in_letter_range(b0, b1):
                    # pydicom: not a VR at all, so this one element is read as implicit VR
                    length = self.src.u32(pos + 4, little)
                    unknown_vr = True
                else:
                    length = self.src.u16(pos + 6, little)
                if not unknown_vr:
                    vr_code = (b0 << 8) | b1
            if (tag & 0xFFFF) != 0:
                self.elements += 1
            value_pos = pos + header_len

            if length == UNDEFINED:
                # which undefined lengths are sequences, as pydicom's data_element_generator decides
                if unknown_vr:
                    dvr = vr_of(tag)
                    if dvr is None:
                        sequence = (self.src.have(value_pos + 4)
                                    and self.src.tag_at(value_pos, little) == ITEM)
                    else:
                        sequence = dvr == "SQ"
                elif is_un:   # UN of undefined length is read as a sequence
                    sequence = True
                if sequence:
                    if frame.depth + 1 > self.max_depth:
                        self.fail("too-deep",
                                  f"sequences nest deeper than {self.max_depth} levels", pos)
                    self.push(SEQUENCE, -1, frame.implicit, frame.depth + 1,
                              self.emit(T_SEQUENCE, tag, vr_code, value_pos, UNDEFINED))
                    pos = value_pos
                else:
                    pos = self.skip_undefined_value(tag, value_pos, little)
                    # the value ends where its delimiter starts
                    self.emit(T_ELEMENT, tag, vr_code, value_pos, pos - 8 - value_pos)
                continue

            if unknown_vr:
                sequence = vr_of(tag) == "SQ"
            elif is_un and length < 0xFFFF and not (tag >> 16) & 1:
                # pydicom reads a short UN of a public sequence tag as that sequence
                # (config.replace_un_with_known_vr)
                sequence = vr_of(tag) == "SQ"
            end = value_pos + length
            if frame.end >= 0 and end > frame.end:
                self.fail("undecodable",
                          f"element {tag_text(tag)} runs past the end of its item", pos)
            if not self.src.have(end):
                self.fail("truncated",
                          f"element {tag_text(tag)} declares {length} bytes, past the end of the file",
                          pos)
            if sequence:
                if frame.depth + 1 > self.max_depth:
                    self.fail("too-deep", f"sequences nest deeper than {self.max_depth} levels", pos)
                self.push(SEQUENCE, end, frame.implicit, frame.depth + 1,
                          self.emit(T_SEQUENCE, tag, vr_code, value_pos, length))
                pos = value_pos
            else:
                self.emit(T_ELEMENT, tag, vr_code, value_pos, length)
                pos = end

    cdef Py_ssize_t skip_undefined_value(self, unsigned int tag, Py_ssize_t start,
                                         bint little) except -2:
        """An undefined-length value that is not a sequence (encapsulated data): as pydicom's
        `read_undefined_length_value`, walk it as items up to the sequence delimiter, else search
        the bytes for the delimiter. Returns the offset after the delimiter and its length."""
        cdef Py_ssize_t pos = start
        cdef unsigned int item_tag, length
        while self.src.have(pos + 4):
            item_tag = self.src.tag_at(pos, little)
            if item_tag == SEQUENCE_DELIMITER:
                if not self.src.have(pos + 8):
                    break
                return pos + 8
            if item_tag != ITEM or not self.src.have(pos + 8):
                break
            length = self.src.u32(pos + 4, little)
            if length == UNDEFINED or not self.src.have(pos + 8 + length):
                break
            pos += 8 + length
        # not a clean run of items: search for the delimiter's bytes
        cdef unsigned char needle[4]
        needle[0] = 0xFE if little else 0xFF
        needle[1] = 0xFF if little else 0xFE
        needle[2] = 0xDD if little else 0xE0
        needle[3] = 0xE0 if little else 0xDD
        pos = start
        cdef Py_ssize_t step = 1 << 16
        while True:
            self.src.have(pos + step)
            while pos + 4 <= self.src.size:
                if memcmp(self.src.buf + pos, needle, 4) == 0:
                    if not self.src.have(pos + 8):
                        self.fail("truncated", f"element {tag_text(tag)} ends at the end of the file",
                                  pos)
                    return pos + 8
                pos += 1
            if self.src.exhausted:
                self.fail("truncated",
                          f"element {tag_text(tag)} has an undefined length never closed", start)
            pos = max(start, self.src.size - 3)
            step *= 2


cdef inline bint _in_letter_range(unsigned char b0, unsigned char b1) noexcept:
    """pydicom's `b"AA" <= vr <= b"ZZ"` (a bytes comparison, so lexicographic)."""
    if b0 < b'A' or b0 > b'Z':
        return False
    if b0 == b'A':
        return b1 >= b'A'
    if b0 == b'Z':
        return b1 <= b'Z'
    return True


cdef Py_ssize_t meta_value_start(ByteSource src, Py_ssize_t pos, Py_ssize_t end, bint implicit,
                                 unsigned int* length) noexcept:
    """Where the value of the file meta element at `pos` starts, its header read as `walk_group`
    reads it, and its length in `length`; -1 when the header does not fit before `end`."""
    cdef int vi
    if pos + 8 > end:
        return -1
    if implicit:
        length[0] = src.u32(pos + 4, True)
        return pos + 8
    vi = vr_index(src.buf[pos + 4], src.buf[pos + 5])
    if vi >= 0 and VR_KNOWN[vi] and VR_LONG[vi]:
        if pos + 12 > end:
            return -1
        length[0] = src.u32(pos + 8, True)
        return pos + 12
    if not (vi >= 0 and VR_KNOWN[vi]) and not _in_letter_range(src.buf[pos + 4], src.buf[pos + 5]):
        length[0] = src.u32(pos + 4, True)      # pydicom reads this one element as implicit VR
    else:
        length[0] = src.u16(pos + 6, True)
    return pos + 8


cdef struct MetaIndex:
    # Offsets of the file meta elements whose values pydicom uses as it reads the file, -1 where
    # there is none. Of a repeated tag (two file meta groups back to back), pydicom keeps the last.
    Py_ssize_t first_decoded     # the last of the smallest tag: pydicom decodes it to test the
                                 # group's encoding (`_read_file_meta_info`)
    Py_ssize_t group_length      # the last (0002,0000)
    Py_ssize_t transfer_syntax   # the last (0002,0010)


cdef MetaIndex index_meta(ByteSource src, Py_ssize_t pos, Py_ssize_t end, bint implicit) noexcept:
    """The `MetaIndex` of the file meta bytes [pos, end)."""
    cdef MetaIndex index
    cdef unsigned int tag, length, smallest = 0xFFFFFFFF
    cdef Py_ssize_t value
    index.first_decoded = -1
    index.group_length = -1
    index.transfer_syntax = -1
    while True:
        value = meta_value_start(src, pos, end, implicit, &length)
        if value < 0 or value + length > end:
            return index
        tag = src.tag_at(pos, True)
        if tag <= smallest:
            smallest = tag
            index.first_decoded = pos
        if tag == 0x00020000:
            index.group_length = pos
        elif tag == 0x00020010:
            index.transfer_syntax = pos
        pos = value + length


cdef int check_meta_length(Walker walker, ByteSource src, Py_ssize_t group_length, Py_ssize_t end,
                           bint implicit) except -1:
    """A file that ends inside the file meta group its group length (the element at
    `group_length`) declares is cut short. Of two file meta groups, the last group length is the
    one that declares where the last group ends. (A group length that is merely wrong, with the
    data set following, is read as pydicom reads it: by the elements.)"""
    cdef Py_ssize_t declared_end
    if implicit or group_length < 0 or end - group_length < 12:
        return 0
    if (src.buf[group_length + 4] != b'U' or src.buf[group_length + 5] != b'L'
            or src.u16(group_length + 6, True) != 4):
        return 0
    declared_end = group_length + 12 + src.u32(group_length + 8, True)
    if end < declared_end and not src.have(end + 1):
        walker.fail("truncated", f"the file meta group declares {declared_end - group_length - 12} "
                    f"bytes but the file ends at byte {end}", end)
    return 0


cdef inline int value_size(unsigned char b0, unsigned char b1) noexcept:
    """The bytes of one value of a fixed-size binary VR, 0 for any other VR."""
    if (b0 == b'U' or b0 == b'S') and b1 == b'S':
        return 2
    if (b0 == b'U' or b0 == b'S') and b1 == b'L' or (b0 == b'F' and b1 == b'L') or (
            b0 == b'A' and b1 == b'T'):
        return 4
    if b0 == b'F' and b1 == b'D':
        return 8
    return 0


cdef bint first_meta_element_suspect(ByteSource src, Py_ssize_t pos, Py_ssize_t end,
                                     bint implicit):
    """pydicom decodes one file meta element as it reads the file meta (the one at `pos`, see
    `MetaIndex`), and fails on an unknown VR or a binary value of the wrong length: such a file
    is left to pydicom."""
    cdef int vi, size
    cdef unsigned char b0, b1
    cdef unsigned int tag
    cdef Py_ssize_t length
    if pos < 0 or end - pos < 8:
        return False
    tag = src.tag_at(pos, True)
    b0 = src.buf[pos + 4]
    b1 = src.buf[pos + 5]
    vi = vr_index(b0, b1)
    if implicit or (not (vi >= 0 and VR_KNOWN[vi]) and not _in_letter_range(b0, b1)):
        # read as implicit VR: pydicom decodes it with the dictionary's VR
        dictionary = vr_of(tag)
        if dictionary is None or len(dictionary) != 2:
            return False
        length = src.u32(pos + 4, True)
        size = value_size(ord(dictionary[0]), ord(dictionary[1]))
        return size > 0 and length % size != 0
    if vi < 0 or not VR_KNOWN[vi]:
        return True
    if tag == 0x00020000 and not (b0 == b'U' and b1 == b'L'):
        return True       # pydicom reads the group length as UL whatever its VR says (SQ, ...)
    length = src.u16(pos + 6, True)
    if b0 == b'U' and b1 == b'N' and end - pos >= 12:
        # pydicom reads a UN of a known tag with the dictionary's VR
        dictionary = vr_of(tag)
        if dictionary is None or len(dictionary) != 2:
            return False
        b0 = ord(dictionary[0])
        b1 = ord(dictionary[1])
        length = src.u32(pos + 8, True)
    elif VR_LONG[vi]:
        return False      # OB, UT...: any length decodes
    size = value_size(b0, b1)
    return size > 0 and length % size != 0


cdef str meta_transfer_syntax(ByteSource src, Py_ssize_t pos, Py_ssize_t end, bint implicit):
    """The value of the (0002,0010) element at `pos` (see `MetaIndex`), or None."""
    cdef unsigned int length
    cdef Py_ssize_t value
    if pos < 0:
        return None
    value = meta_value_start(src, pos, end, implicit, &length)
    if value < 0 or value + length > end:
        return None
    return src.slice(value, value + length).decode("latin-1").strip(" \x00")


def scan(path, bint force=True, int max_depth=128, unsigned int stop_after=0xFFFFFFFF,
         Py_ssize_t max_header_bytes=DEFAULT_MAX_HEADER_BYTES,
         Py_ssize_t max_elements=DEFAULT_MAX_ELEMENTS, bint checked=False):
    """Scan the file at `path`; return a `Header`, or raise `InvalidDicomError`. With
    `stop_after`, the walk (and so the header) ends before the first top-level tag past it.
    The bounds: sequences nest at most `max_depth` levels, the header (inflated, when deflated)
    is at most `max_header_bytes` long and holds at most `max_elements` elements and items.
    `checked`: the caller took the path's type from a directory entry or a stat already (see
    `FileSource.open`)."""
    cdef FileSource src = FileSource()
    src.open(path, checked)
    return _scan(src, path, force, max_depth, stop_after, max_header_bytes, max_elements)


def scan_stream(stream, name, Py_ssize_t size=-1, bint force=True, int max_depth=128,
                unsigned int stop_after=0xFFFFFFFF,
                Py_ssize_t max_header_bytes=DEFAULT_MAX_HEADER_BYTES,
                Py_ssize_t max_elements=DEFAULT_MAX_ELEMENTS):
    """`scan` of the bytes a file-like object `stream` gives (an archive member), named `name`
    in errors; `size` is its length when known (-1: read until it ends). Only what the header
    needs is read from it."""
    cdef StreamSource src = StreamSource()
    src.path = name
    src.stream = stream
    src.member_size = size if size >= 0 else max_header_bytes + 1
    return _scan(src, name, force, max_depth, stop_after, max_header_bytes, max_elements)


cdef Header _scan(ByteSource src, path, bint force, int max_depth, unsigned int stop_after,
                  Py_ssize_t max_header_bytes, Py_ssize_t max_elements):
    cdef Walker walker = Walker()
    cdef Header header = Header()
    cdef Py_ssize_t pos = 0, meta_start, meta_end, command_end, end
    cdef bint meta_implicit, implicit = True, little = True
    cdef ByteSource data
    cdef MetaIndex meta

    header.path = path
    src.limit = max_header_bytes
    walker.init(src, path, max_depth, max_elements, 0, False)
    if not src.have(1):
        raise InvalidDicomError(path, "empty", "the file is empty", 0)

    if src.have(132) and memcmp(src.buf + 128, b"DICM", 4) == 0:
        header.has_preamble = True
        pos = 132
    elif not force:
        raise InvalidDicomError(path, "no-preamble",
                                "no 128-byte preamble and 'DICM' prefix (read with force=True "
                                "to accept such files)", 128)
    else:
        # Without the prefix nothing vouches for the bytes: the first element must be of a
        # group a DICOM stream starts with (command, file meta, directory or identifying).
        if not src.have(8):
            raise InvalidDicomError(path, "not-dicom",
                                    "no DICM prefix, and too short for a data element", 0)
        group_le = src.u16(0, True)
        group_be = src.u16(0, False)
        if group_le > 0x0008 and group_be > 0x0008:
            raise InvalidDicomError(path, "not-dicom",
                                    f"no DICM prefix, and the first bytes are not a DICOM element "
                                    f"({src.slice(0, 8).hex(' ')})", 0)

    # File meta: explicit VR little endian, unless its first element says otherwise. pydicom
    # reads every group 0002 element up to the first of another group, so a file meta group
    # written again after the first (two groups back to back) is read too: for a repeated tag
    # the last value counts, the transfer syntax's included. Without the DICM prefix nothing
    # vouches for the bytes, so there the tags must ascend, as the data set's must.
    meta_start = pos
    meta_implicit = walker.looks_implicit(pos, False) if (src.have(pos + 4) and
                                                          src.tag_at(pos, True) >> 16 == 2) else False
    meta_end = walker.walk_group(pos, 0x0002, meta_implicit, False, not header.has_preamble)
    header.meta_ordered = walker.group_ascends
    header.meta_token_count = walker.group_count
    header.file_source = src
    header.meta_start = meta_start
    header.meta_end = meta_end
    meta = index_meta(src, meta_start, meta_end, meta_implicit)
    check_meta_length(walker, src, meta.group_length, meta_end, meta_implicit)
    header.meta_suspect = first_meta_element_suspect(src, meta.first_decoded, meta_end,
                                                     meta_implicit)
    transfer_syntax = meta_transfer_syntax(src, meta.transfer_syntax, meta_end, meta_implicit)

    # Command set: implicit VR little endian, with the same peek.
    pos = meta_end
    command_implicit = walker.looks_implicit(pos, True) if (src.have(pos + 4) and
                                                            src.tag_at(pos, True) >> 16 == 0) else True
    command_end = walker.walk_group(pos, 0x0000, command_implicit, True, True)
    header.command_end = command_end
    pos = command_end
    header.dataset_offset = pos

    # The transfer syntax, as pydicom's read_partial maps it to an encoding.
    deflated = False
    if not src.have(pos + 1):
        pass
    elif transfer_syntax is None:
        if src.have(pos + 6):
            vi = vr_index(src.buf[pos + 4], src.buf[pos + 5])
            if vi >= 0 and VR_VALID_FOR_GUESS[vi]:
                implicit = False
                if src.u16(pos, True) >= 1024:
                    little = False
    elif transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        pass
    elif transfer_syntax == EXPLICIT_VR_BIG_ENDIAN:
        implicit = False
        little = False
    elif transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        implicit = False
        deflated = True
    else:
        implicit = False
    header.is_implicit_vr = implicit
    header.is_little_endian = little
    header.deflated = deflated

    if deflated:
        inflated = InflatedSource()
        inflated.start(src, pos)
        data = inflated
        data_walker = Walker()
        data_walker.init(data, path, max_depth, max_elements, 0, True)
        data_walker.elements = walker.elements
        start = 0
    else:
        data = src
        data_walker = walker
        start = pos

    # pydicom switches to the VR-ness the first element shows (with a warning)
    walked_implicit = data_walker.looks_implicit(start, implicit)
    end = data_walker.walk_dataset(start, walked_implicit, little, not header.has_preamble,
                                   stop_after)
    header.data_source = data
    header.data_start = start
    header.header_end = end
    header.stopped_at = data_walker.stopped_at
    header.element_count = data_walker.elements
    header.ordered = not data_walker.unordered
    header.tokens = data_walker.tokens          # the header owns the tables from here on
    header.token_count = data_walker.token_count
    data_walker.tokens = NULL
    header.group_tokens = walker.group_tokens
    header.group_token_count = walker.group_count
    walker.group_tokens = NULL
    if header.element_count == 0:
        raise InvalidDicomError(path, "no-elements", "the file holds no data element", pos)
    return header
