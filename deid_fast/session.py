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

from deid_fast._session import PydicomSession, set_arming, use_pydicom  # noqa: F401 (API)

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


def _arm():
    """pydicom's default settings and the capture of its messages, entered: (the ExitStack that
    leaves them, the function that logs a file's messages)."""
    armed = contextlib.ExitStack()
    try:
        armed.enter_context(pydicom_defaults())
        flush = armed.enter_context(pydicom_messages_to_debug())
    except BaseException:
        armed.close()
        raise
    return armed, flush


set_arming(_arm)
