"""Real footage for tests (fetched by tools/fetch_footage.sh during make setup)."""
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOOTAGE = os.path.join(ROOT, "data", "footage")


def footage(name: str) -> str:
    path = os.path.join(FOOTAGE, name)
    if not os.path.isfile(path):
        pytest.skip(f"{name} not fetched (tools/fetch_footage.sh could not reach the registry)")
    return path


def frames(name: str, count: int, start: int = 0):
    from offload_common.frame_sources import VideoFileSource

    out = []
    for f in VideoFileSource(footage(name)):
        if f.index >= start + count:
            break
        if f.index >= start:
            out.append(f.rgb)
    return out
