"""Shared fixtures. Every test process keeps DDS on this machine and uses its own ROS domain,
so a running demo (or a parallel test run) does not cross-talk with the tests."""
import os
import random
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(30, 99)))
# Messages check every field's type on assignment, as Humble always does (newer distros only with
# this variable): a node that would fail on Humble fails here too.
os.environ.setdefault("ROS_PYTHON_CHECK_FIELDS", "1")
# The localhost Fast DDS profile, under the variable this Fast DDS reads (3.x and 2.x differ).
from offload_common.process_graph import dds_profile_variable  # noqa: E402

os.environ.setdefault(dds_profile_variable(), os.path.join(ROOT, "config", "fastdds_localhost.xml"))

# In CI a skip fails, unless its reason is allowed (ci_policy.ALLOWED_SKIPS).
from ci_policy import pytest_runtest_makereport  # noqa: E402,F401


@pytest.fixture
def rclpy_context():
    """An initialised rclpy context, shut down after the test."""
    import rclpy

    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)
