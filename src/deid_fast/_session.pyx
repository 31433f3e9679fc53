# cython: language_level=3
"""The bookkeeping of `deid_fast.session`'s sessions, compiled: every API call opens one, so its
cost is paid on every file. How deep the calling thread is in sessions, and whether pydicom's
settings are armed for it, are C thread-locals; the armed context managers themselves live in
a Python thread-local, touched only once something calls into pydicom."""
import threading

cdef extern from *:
    """
    static __thread long deid_fast_session_depth = 0;
    static __thread int deid_fast_session_armed = 0;
    """
    long deid_fast_session_depth
    int deid_fast_session_armed

cdef object _local = threading.local()    # .armed (an ExitStack) and .flush, once armed
cdef object _arm = None                   # deid_fast.session's: () -> (ExitStack, flush)


def set_arming(arm):
    """The function that arms pydicom's settings and message capture (deid_fast.session)."""
    global _arm
    _arm = arm


cdef class PydicomSession:
    """The reading of one API call (or one chunk of a bulk run): `use_pydicom()` arms pydicom's
    settings and message capture on the first call into pydicom, and they stay armed until the
    outermost session ends. `flush(name)` logs the messages collected for a file."""

    def __enter__(self):
        global deid_fast_session_depth
        deid_fast_session_depth += 1
        return self

    def __exit__(self, exc_type, exc, traceback):
        global deid_fast_session_depth, deid_fast_session_armed
        deid_fast_session_depth -= 1
        if deid_fast_session_depth == 0 and deid_fast_session_armed:
            deid_fast_session_armed = 0
            armed = _local.armed
            _local.armed = _local.flush = None
            armed.close()
        return False

    def flush(self, name):
        if deid_fast_session_armed:
            _local.flush(name)


def use_pydicom():
    """Call before calling into pydicom: within a session, arms pydicom's default settings and
    the capture of its messages (once per session)."""
    global deid_fast_session_armed
    if not deid_fast_session_armed and deid_fast_session_depth:
        _local.armed, _local.flush = _arm()
        deid_fast_session_armed = 1
