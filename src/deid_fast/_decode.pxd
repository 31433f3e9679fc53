cdef enum:
    CHARSET_DEFAULT = 0
    CHARSET_LATIN1 = 1
    CHARSET_UTF8 = 2
    CHARSET_OTHER = 3    # any other: text decoded by its Python codec, as pydicom's decode_bytes does

cpdef unsigned short vr_from_name(str vr)
cpdef bint known_vr(unsigned short vr)
cpdef bint charset_dependent(unsigned short vr)
cpdef int charset_from_value(object value)
cpdef list encodings_for(int charset, object value)
cdef object decode_element(unsigned int tag, const unsigned char* p, Py_ssize_t n,
                           unsigned short vr, bint little, int charset, list encodings,
                           bint lut_descriptor)
