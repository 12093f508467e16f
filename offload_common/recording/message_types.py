"""The rosbags type store that knows this package's messages (``msg/*.msg``) besides the
standard ROS 2 ones, so a bag records their full definitions and any reader decodes them without
our code."""
from __future__ import annotations

import functools
import glob
import os
from typing import Optional

PACKAGE = "edge_offload"


def msg_folder() -> str:
    """``msg/`` of this source tree, or ``share/edge_offload/msg`` of an installed package."""
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "msg")
    if glob.glob(os.path.join(here, "*.msg")):
        return here
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = os.path.join(prefix, "share", PACKAGE, "msg")
        if prefix and glob.glob(os.path.join(candidate, "*.msg")):
            return candidate
    raise FileNotFoundError(f"no {PACKAGE} message definitions found (msg/ beside the sources or "
                            f"share/{PACKAGE}/msg on AMENT_PREFIX_PATH)")


@functools.lru_cache(maxsize=4)
def typestore(folder: Optional[str] = None):
    """ROS 2's latest standard types plus every ``edge_offload/msg/*`` type."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.LATEST)
    types = {}
    for path in sorted(glob.glob(os.path.join(folder or msg_folder(), "*.msg"))):
        with open(path) as f:
            types.update(get_types_from_msg(f.read(), f"{PACKAGE}/msg/{os.path.basename(path)[:-4]}"))
    store.register(types)
    return store
