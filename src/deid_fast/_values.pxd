cpdef object to_builtin(object value)
cpdef bint is_empty(object value)
