"""Entry-point helper: init rclpy with the process arguments (so ``--ros-args`` work), spin a
node until Ctrl-C, shutdown, or until the node sets ``finished`` (then exit with its
``exit_code``). A node that cannot start for a reason the user can fix (a bad parameter value or
type, a missing file or package) exits 1 with one ``[FATAL]`` line; anything else also prints
its traceback."""
from __future__ import annotations

import sys
import traceback
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException

# start-up errors whose message says all a user needs: no traceback for these
USER_ERRORS = (ValueError, OSError, ImportError, ParameterException)


def run_node(factory: Callable[[], "rclpy.node.Node"], args: Optional[Sequence[str]] = None) -> int:
    try:
        rclpy.init(args=list(args) if args is not None else sys.argv)
    except Exception as exc:  # a malformed --params-file, bad --ros-args: rcl says why, in one message
        print(f"[FATAL] {exc.__class__.__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1
    node = None
    code = 0
    try:
        node = factory()
        while rclpy.ok() and not getattr(node, "finished", False):
            rclpy.spin_once(node, timeout_sec=0.1)
        code = int(getattr(node, "exit_code", 0))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # say why and exit non-zero; a traceback unless the start-up was misconfigured
        if node is not None or not isinstance(exc, USER_ERRORS):
            traceback.print_exc()
        print(f"[FATAL] {exc.__class__.__name__}: {_one_line(exc)}", file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or repr(exc)


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
