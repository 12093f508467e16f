"""Entry-point helper: init rclpy with the process arguments (so ``--ros-args`` work), spin a
node until Ctrl-C, shutdown, or until the node sets ``finished`` (then exit with its
``exit_code``)."""
from __future__ import annotations

import sys
import traceback
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException


def run_node(factory: Callable[[], "rclpy.node.Node"], args: Optional[Sequence[str]] = None) -> int:
    rclpy.init(args=list(args) if args is not None else sys.argv)
    node = None
    code = 0
    try:
        node = factory()
        while rclpy.ok() and not getattr(node, "finished", False):
            rclpy.spin_once(node, timeout_sec=0.1)
        code = int(getattr(node, "exit_code", 0))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # a node that cannot start: say why, exit non-zero
        traceback.print_exc()
        print(f"[FATAL] {exc.__class__.__name__}: {exc}", file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
