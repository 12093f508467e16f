"""Skips in CI: with CI=true (as .ci/run is started) a skipped test fails with its reason, unless
the reason names something CI machines cannot have (ALLOWED_SKIPS). A root-only test on a
non-root CI, or a footage test whose clips were not fetched, therefore fails CI instead of passing
silently; without CI=true a newcomer's `make test` still passes, and pytest's -ra summary lists
every skip with its reason. Loaded by conftest.py (and by test_ci_policy.py's child runs)."""
import os

import pytest

#: reason substring -> why CI may skip it
ALLOWED_SKIPS = {
    "CUDA": "CI machines have no GPU (tools/gpu_check.sh runs those paths on a lent GPU)",
    "ultralytics": "ultralytics needs hub weights; its path is tested through a stand-in",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if any(key in reason for key in ALLOWED_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped in CI (CI=true allows skips only for: {', '.join(sorted(ALLOWED_SKIPS))}): "
                       f"{reason}")
