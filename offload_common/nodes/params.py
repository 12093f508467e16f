"""Declared ROS parameters from a small spec, so a node's parameters are listed in one place
(the node module's ``PARAMETERS``), documented, range-checked, and checkable by tests against
config/*.yaml."""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Dict, Iterable, List, Optional, Tuple

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult


@dataclass(frozen=True)
class Param:
    """One parameter: name, default, description; ``range`` = (lo, hi), inclusive, for numbers
    (and for each element of a number list). Floats must be finite whether or not they have a range."""
    name: str
    default: Any
    description: str
    read_only: bool = False
    range: Optional[Tuple[float, float]] = None


def check_value(spec: Param, value: Any) -> Optional[str]:
    """None when ``value`` is acceptable for ``spec``, else why not (one line)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            return f"parameter '{spec.name}' = {v} is not a finite number"
        if spec.range is not None and not spec.range[0] <= v <= spec.range[1]:
            return f"parameter '{spec.name}' = {v} is out of its range [{spec.range[0]:g}, {spec.range[1]:g}]"
    return None


def _descriptor(spec: Param) -> ParameterDescriptor:
    desc = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.range is not None:
        lo, hi = spec.range
        element = spec.default[0] if isinstance(spec.default, (list, tuple)) and spec.default else spec.default
        if isinstance(element, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        elif isinstance(element, int) and not isinstance(element, bool):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return desc


def declare_parameters(node, specs: Iterable[Param]) -> SimpleNamespace:
    """Declare every parameter of ``specs`` on ``node`` and return their current values. A value
    out of its range, or a float that is NaN or infinite, stops the start-up with one line
    (ValueError) and is refused at run time (``ros2 param set``). Values given for parameters
    the node does not have (``-p fsp:=5``, a stale YAML key) are logged as a warning naming the
    closest parameter: ROS ignores them silently."""
    values, by_name = {}, {}
    for spec in specs:
        param = node.declare_parameter(spec.name, spec.default, _descriptor(spec))
        why = check_value(spec, param.value)
        if why:
            raise ValueError(why)
        values[spec.name.replace(".", "_")] = param.value
        by_name[spec.name] = spec
    node.add_on_set_parameters_callback(lambda params: _validate_set(by_name, params))
    for line in unknown_overrides(node):
        node.get_logger().warning(line)
    return SimpleNamespace(**values)


def _validate_set(specs: Dict[str, Param], params) -> SetParametersResult:
    for p in params:
        spec = specs.get(p.name)
        why = spec and check_value(spec, p.value)
        if why:
            return SetParametersResult(successful=False, reason=why)
    return SetParametersResult(successful=True)


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
