cdef str keyword_of(unsigned int tag)
cdef str vr_of(unsigned int tag)
cdef str private_vr_of(object creator, unsigned int tag)
