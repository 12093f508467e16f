"""Switching an edge node's configuration: by the monitor's ``OffloadConfig`` decisions on
``offload_config`` and by hand with ``ros2 param set <node> config_id <id>``. Both go through one
switch function; an unknown id is refused with its reason (a decision is logged and ignored, a
parameter change is rejected) and the active configuration stays. After a decision the
``config_id`` parameter is updated, so ``ros2 param get`` shows the configuration in use."""
from __future__ import annotations

import time
from typing import Callable, Optional

from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter

PARAM = "config_id"


class ConfigSwitch:
    """``active()`` names the configuration in use; ``switch(id)`` changes it or raises
    ``ValueError`` (the pipelines' ``ConfigIdError``) for an id it cannot serve."""

    def __init__(self, node, stream_id: str, active: Callable[[], str], switch: Callable[[str], None]):
        self.node, self.stream_id, self.active, self._switch = node, stream_id, active, switch
        self.refused = 0
        node.add_on_set_parameters_callback(self._on_set_parameters)

    def apply(self, config_id: str, reason: str) -> Optional[str]:
        """Switch to ``config_id``; None when done (or already active), else why not."""
        if config_id == self.active():
            return None
        t = time.perf_counter()
        try:
            self._switch(config_id)
        except ValueError as exc:
            self.refused += 1
            return str(exc)
        ms = 1000 * (time.perf_counter() - t)
        self.node.get_logger().info(f"switched to {config_id} in {ms:.3f} ms ({reason})")
        return None

    def on_decision(self, msg) -> None:
        """``OffloadConfig`` callback: decisions for other streams are not ours."""
        if msg.stream_id != self.stream_id:
            return
        error = self.apply(msg.config_id, msg.reason)
        if error:
            self.node.get_logger().error(f"ignoring monitor decision: {error}")
        elif self.node.get_parameter(PARAM).value != msg.config_id:
            self.node.set_parameters([Parameter(PARAM, Parameter.Type.STRING, msg.config_id)])

    def _on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == PARAM:
                error = self.apply(str(param.value), "set by parameter")
                if error:
                    return SetParametersResult(successful=False, reason=error)
        return SetParametersResult(successful=True)
