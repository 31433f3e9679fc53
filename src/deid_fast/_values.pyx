# cython: language_level=3
"""Values: a pydicom element value as plain Python builtins (SPEC R6), and what counts as empty (R5).

pydicom decides the value (its converters, charsets and UN resolution); this module only turns
pydicom's types into builtins: PersonName and UID become str, DSfloat/ISfloat float, IS and AT
int, a multi-value a list. A value pydicom kept as str (an invalid DS or IS) stays that str.
"""
from decimal import Decimal

from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName


cpdef object to_builtin(object value):
    cdef type kind = type(value)
    if kind is str or kind is int or kind is float or kind is bytes or value is None:
        return value
    if isinstance(value, str):          # UID and other str subclasses
        return str(value)
    if isinstance(value, PersonName):
        return str(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):          # IS, BaseTag (AT)
        return int(value)
    if isinstance(value, float):        # DSfloat, ISfloat
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (MultiValue, list, tuple)):
        return [to_builtin(item) for item in value]
    tolist = getattr(value, "tolist", None)  # numpy values, should a caller's config make them
    if tolist is not None:
        return to_builtin(tolist())
    raise TypeError(f"no builtin form for a value of type {kind.__name__}")


cpdef bint is_empty(object value):
    """R5: None, "", b"", a multi-value with no items. (Sequences are checked by the flattener.)"""
    if value is None:
        return True
    cdef type kind = type(value)
    if kind is str or kind is bytes or kind is list:
        return len(value) == 0
    return False
