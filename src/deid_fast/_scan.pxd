# Declarations of the scanner that the native decoder and flattener read (see _scan.pyx).

cdef enum TokenKind:
    T_ELEMENT = 0
    T_SEQUENCE = 1      # a sequence starts; `end` is the index of its T_SEQUENCE_END
    T_ITEM = 2          # an item starts; `end` is the index of its T_ITEM_END
    T_ITEM_END = 3
    T_SEQUENCE_END = 4

cdef str tag_text(unsigned int tag)      # "(gggg,eeee)", as pydicom prints a tag

ctypedef struct Token:
    unsigned int tag
    unsigned short vr        # the two VR bytes of explicit VR ((b0 << 8) | b1); 0 when implicit
    unsigned char kind
    unsigned char depth_overflow_unused
    Py_ssize_t offset        # where the value starts in the header's data source
    Py_ssize_t length        # value length (elements)
    Py_ssize_t end           # index of the matching end token (sequences and items)
    Py_ssize_t count         # number of items (sequences)


cdef class ByteSource:
    cdef unsigned char* buf
    cdef Py_ssize_t size        # bytes available in buf
    cdef Py_ssize_t capacity
    cdef bint exhausted         # no more bytes will come
    cdef Py_ssize_t limit       # the most bytes it may hold (max_header_bytes)
    cdef object path
    cdef int _reserve(self, Py_ssize_t capacity) except -1
    cdef int _more(self, Py_ssize_t end) except -1
    cdef Py_ssize_t bounded_end(self, Py_ssize_t end, Py_ssize_t available) except -1
    cdef bint have(self, Py_ssize_t end) except -1
    cdef unsigned int u16(self, Py_ssize_t pos, bint little) noexcept
    cdef unsigned int u32(self, Py_ssize_t pos, bint little) noexcept
    cdef unsigned int tag_at(self, Py_ssize_t pos, bint little) noexcept
    cdef bytes slice(self, Py_ssize_t start, Py_ssize_t end)


cdef class Header:
    cdef readonly object path
    cdef readonly bint has_preamble
    cdef readonly bint is_implicit_vr   # the encoding the transfer syntax gives (pydicom's start)
    cdef readonly bint is_little_endian
    cdef readonly bint deflated
    cdef readonly Py_ssize_t dataset_offset  # byte offset of the data set in the file
    cdef readonly Py_ssize_t header_end      # where the header ends in the data source
    cdef readonly unsigned int stopped_at    # the top-level tag at header_end (pixel data, or
                                             # past stop_after); 0 when the data ends there
    cdef readonly Py_ssize_t element_count   # data elements walked, nested ones included
                                             # (not file meta elements, nor group lengths)
    cdef readonly bint ordered          # every data set's tags ascend (pydicom's order)
    cdef readonly bint meta_suspect     # the file meta element pydicom decodes first has an
                                        # unknown VR or a length no multiple of its VR's size
    cdef readonly bint meta_ordered     # group 0002's tags strictly ascend; when not (a file
                                        # with two file meta groups), pydicom keeps the last
                                        # value of a repeated tag
    cdef ByteSource file_source
    cdef ByteSource data_source         # the file, or the inflated data set
    cdef Py_ssize_t meta_start, meta_end, command_end, data_start
    cdef Token* tokens                  # every element, sequence and item of the data set
    cdef Py_ssize_t token_count
    cdef Token* group_tokens            # the file meta group's elements (the first
    cdef Py_ssize_t meta_token_count    # meta_token_count, in file order, offsets in
    cdef Py_ssize_t group_token_count   # file_source), then the command set's

    cdef list group_order(self, Py_ssize_t start, Py_ssize_t stop, bint ordered)
