"""pydicom's settings and messages around the calls into pydicom: knows pydicom's process-wide
state, not files.

pydicom reads values with its default settings whatever the caller set in `pydicom.config`
(SPEC R6), and its warnings about odd values are logged at DEBUG instead of reaching the user
(R9). Setting that up costs some microseconds, which most files never need: the native engine
reads them without pydicom. So an API call opens a `PydicomSession` (cheap), and the settings
and message capture are armed by `use_pydicom()` only when something actually calls into
pydicom (the native decoder's hand-overs, the file meta, the pydicom engine), then kept until
the session ends.
"""
import contextlib
import logging
import threading
import warnings

from pydicom import config as pydicom_config

logger = logging.getLogger("deid_fast")

# pydicom's defaults for everything that changes how a header is read or what a value becomes.
_MODULE_DEFAULTS = {
    "use_DS_decimal": False,
    "use_DS_numpy": False,
    "use_IS_numpy": False,
    "allow_DS_float": False,
    "convert_wrong_length_to_UN": False,
    "datetime_conversion": False,
    "use_none_as_empty_text_VR_value": False,
    "replace_un_with_known_vr": True,
    "assume_implicit_vr_switch": True,
    "debugging": False,
}
_SETTINGS_DEFAULTS = {"_reading_validation_mode": None, "_infer_sq_for_un_vr": True}


#: pydicom's settings, its logger and Python's warnings filters are process-wide: one thread
#: reads at a time (the decoder holds the GIL anyway).
_READING = threading.RLock()


@contextlib.contextmanager
def pydicom_defaults():
    """Read with pydicom's default settings, restoring the caller's afterwards; one thread at a
    time."""
    with _READING:
        saved_module = {name: getattr(pydicom_config, name) for name in _MODULE_DEFAULTS}
        saved_settings = {name: getattr(pydicom_config.settings, name)
                          for name in _SETTINGS_DEFAULTS}
        try:
            for name, value in _MODULE_DEFAULTS.items():
                setattr(pydicom_config, name, value)
            for name, value in _SETTINGS_DEFAULTS.items():
                setattr(pydicom_config.settings, name, value)
            yield
        finally:
            for name, value in saved_module.items():
                setattr(pydicom_config, name, value)
            for name, value in saved_settings.items():
                setattr(pydicom_config.settings, name, value)


class _Collect(logging.Handler):
    """Keeps the messages of pydicom's logger instead of letting them reach the user's handlers."""

    def __init__(self, messages):
        super().__init__(logging.DEBUG)
        self.messages = messages

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def pydicom_messages_to_debug():
    """pydicom reports odd values both as Python warnings and on its own logger. Inside the
    block both are collected instead; the yielded `flush(name)` logs what was collected since the
    last flush at DEBUG, once per message, naming the file (SPEC R9)."""
    pydicom_logger = logging.getLogger("pydicom")
    saved = pydicom_logger.handlers, pydicom_logger.propagate, pydicom_logger.level
    messages = []
    pydicom_logger.handlers = [_Collect(messages)]
    pydicom_logger.propagate = False
    pydicom_logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")

            def flush(name):
                if caught or messages:
                    if logger.isEnabledFor(logging.DEBUG):
                        found = messages + [str(warning.message) for warning in caught]
                        for message in dict.fromkeys(found):
                            logger.debug("pydicom on %s: %s", name, message)
                    caught.clear()
                    messages.clear()

            yield flush
    finally:
        pydicom_logger.handlers, pydicom_logger.propagate, level = saved
        pydicom_logger.setLevel(level)



class _State(threading.local):
    """Per thread: how many sessions are open, and the armed settings, if any."""

    def __init__(self):
        self.depth = 0
        self.armed = None       # the ExitStack of the armed context managers
        self.flush = None


_state = _State()


class PydicomSession:
    """The reading of one API call (or one chunk of a bulk run): `use_pydicom()` arms
    pydicom's settings and message capture on the first call into pydicom, and they stay armed
    until the outermost session ends. `flush(name)` logs the messages collected for a file."""

    __slots__ = ()

    def __enter__(self):
        _state.depth += 1
        return self

    def __exit__(self, *exc):
        state = _state
        state.depth -= 1
        if state.depth == 0 and state.armed is not None:
            armed, state.armed, state.flush = state.armed, None, None
            armed.close()
        return False

    @staticmethod
    def flush(name):
        flush = _state.flush
        if flush is not None:
            flush(name)


def use_pydicom():
    """Call before calling into pydicom: within a session, arms pydicom's default settings and
    the capture of its messages (once per session)."""
    state = _state
    if state.armed is None and state.depth:
        armed = contextlib.ExitStack()
        armed.enter_context(pydicom_defaults())
        state.flush = armed.enter_context(pydicom_messages_to_debug())
        state.armed = armed
