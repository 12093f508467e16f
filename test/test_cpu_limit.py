"""The emulated weak edge: a process started with CpuLimit.prefix() runs in the cgroup and gets
about the CPU share it was given (CPU seconds per wall second)."""
import subprocess
import sys

import pytest

from offload_common.cpu_limit import CpuLimit, cpu_limit_available

WHY = cpu_limit_available()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"CPU limits: {WHY}")

BURN = """
import time
t0, c0 = time.time(), time.process_time()
while time.time() - t0 < 1.5:
    pass
print((time.process_time() - c0) / (time.time() - t0))
"""


def test_limited_process_gets_its_share():
    with CpuLimit(0.25) as limit:
        out = subprocess.run(limit.prefix() + [sys.executable, "-c", BURN], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        share = float(out.stdout)
    assert 0.1 < share < 0.35, share
    with pytest.raises(ValueError):
        CpuLimit(0)
