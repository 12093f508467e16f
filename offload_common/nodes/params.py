"""Declared ROS parameters from a small spec, so a node's parameters are listed in one place
(the node module's ``PARAMETERS``), documented, and checkable by tests against config/*.yaml."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterable, List

from rcl_interfaces.msg import ParameterDescriptor


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    read_only: bool = False


def declare_parameters(node, specs: Iterable[Param]) -> SimpleNamespace:
    """Declare every parameter of ``specs`` on ``node`` and return their current values. Values
    given for parameters the node does not have (``-p fsp:=5``, a stale YAML key) are logged as a
    warning naming the closest parameter: ROS ignores them silently."""
    values = {}
    for spec in specs:
        desc = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
        param = node.declare_parameter(spec.name, spec.default, desc)
        values[spec.name.replace(".", "_")] = param.value
    for line in unknown_overrides(node):
        node.get_logger().warning(line)
    return SimpleNamespace(**values)


def unknown_overrides(node) -> List[str]:
    """One line per parameter value given to ``node`` (command line, YAML, launch file) that no
    declared parameter takes. rclpy keeps the given values in ``Node._parameter_overrides`` (since
    Humble); where it does not, nothing is reported."""
    given = getattr(node, "_parameter_overrides", None) or {}
    declared = list(node.list_parameters([], 0).names)
    lines = []
    for name in sorted(set(given) - set(declared)):
        if name.startswith("qos_overrides."):
            continue
        close = difflib.get_close_matches(name, declared, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        lines.append(f"parameter '{name}' is not a parameter of {node.get_name()} and is ignored{hint}")
    return lines


def parameter_names(specs: Iterable[Param]) -> set:
    return {s.name for s in specs}


def resolve_data_path(path: str) -> str:
    """A model or data path from a parameter: absolute, relative to the working directory, or
    relative to this package's share folder (where CMake installs models/ and config/)."""
    import os

    if not path or os.path.isabs(path) or os.path.exists(path):
        return path
    try:
        from ament_index_python.packages import get_package_share_directory

        candidate = os.path.join(get_package_share_directory("edge_offload"), path)
        if os.path.exists(candidate):
            return candidate
    except (ImportError, LookupError, ValueError):
        pass
    return path
