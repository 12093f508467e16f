"""Incoming camera images for nodes: convert to RGB, or log and count why not."""
from __future__ import annotations

from typing import Optional

import numpy as np

from offload_common.image_conversion import ImageConversionError, image_msg_to_rgb


class ImageReceiver:
    """``to_rgb(msg)`` returns an RGB array, or None after logging the reason and counting it
    in ``rejected``; a bad image never raises into the subscription callback."""

    def __init__(self, logger):
        self.logger = logger
        self.rejected = 0

    def to_rgb(self, msg) -> Optional[np.ndarray]:
        try:
            return image_msg_to_rgb(msg)
        except ImageConversionError as exc:
            self.rejected += 1
            self.logger.error(f"rejected image ({self.rejected} so far): {exc}")
            return None
