"""Suite-wide rules: a skipped test counts as a failure (a test that skips in CI does not exist)."""
import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped tests are not allowed here: {report.longrepr}"


# Hypothesis: the same examples on every CI run (a failure there is reproducible, not flaky);
# `--hypothesis-profile=thorough` searches much longer.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
settings.register_profile("thorough", max_examples=3000)
if os.environ.get("CI"):
    settings.load_profile("ci")
