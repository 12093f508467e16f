"""The ROS package is consistent: package.xml valid (format 3), every msg built, every node in
a launch file a real entry point with a wrapper script, every YAML key a declared parameter,
and the demo runner starting what the demo launch file starts."""
import ast
import glob
import importlib
import importlib.util
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup_table(name: str = "NODES") -> dict:
    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"setup.py has no {name} table")


NODES = setup_table()
# Node modules import rclpy and the generated messages; without a ROS environment (the Python
# packages pip-install without one) the checks that import them cannot run.
needs_ros = pytest.mark.skipif(importlib.util.find_spec("rclpy") is None,
                               reason="node modules need rclpy (run make setup or source a ROS 2 install)")


def node_parameters(executable):
    module = importlib.import_module(NODES[executable].split(":")[0])
    return {p.name for p in module.PARAMETERS}


def launch_arguments(tree):
    """{name: default} of every DeclareLaunchArgument in a parsed launch file."""
    args = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "DeclareLaunchArgument":
            kw = {k.arg: k.value for k in call.keywords}
            args[ast.literal_eval(call.args[0])] = kw.get("default_value")
    return args


def yaml_names(node):
    return [c.value for c in ast.walk(node)
            if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value.endswith(".yaml")]


def launch_nodes(path, conditional=True):
    """(executable, [yaml file names], name) of every launch_ros Node(...) in a launch file (without
    ``conditional``: only those started whatever the arguments); a parameter file given by a launch
    argument counts as that argument's default file."""
    tree = ast.parse(open(path).read())
    args = launch_arguments(tree)
    found = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "Node":
            kw = {k.arg: k.value for k in call.keywords}
            assert ast.literal_eval(kw["package"]) == "edge_offload", path
            if "condition" in kw and not conditional:
                continue
            params = kw.get("parameters", ast.List(elts=[]))
            yamls = yaml_names(params)
            for sub in ast.walk(params):
                if isinstance(sub, ast.Call) and getattr(sub.func, "id", "") == "LaunchConfiguration":
                    yamls += yaml_names(args[ast.literal_eval(sub.args[0])])
            found.append((ast.literal_eval(kw["executable"]), yamls,
                          ast.literal_eval(kw["name"]) if "name" in kw else None))
    return found


LAUNCH_FILES = sorted(glob.glob(os.path.join(ROOT, "launch", "*.launch.py")))
YAML_FILES = sorted(f for f in glob.glob(os.path.join(ROOT, "config", "*.yaml")))


def test_package_xml_is_valid_format_3():
    import catkin_pkg.package as catkin_pkg
    pkg = catkin_pkg.parse_package(os.path.join(ROOT, "package.xml"))
    pkg.validate()
    assert pkg.name == "edge_offload" and pkg.package_format == 3
    assert pkg.get_build_type() == "ament_cmake"
    deps = {d.name for d in pkg.build_depends + pkg.exec_depends + pkg.buildtool_depends}
    assert {"rosidl_default_generators", "ament_cmake_python", "rclpy", "sensor_msgs",
            "std_msgs", "builtin_interfaces", "diagnostic_msgs"} <= deps


def test_cmakelists_builds_every_message():
    cmake = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    listed = set(re.findall(r'"(msg/\w+\.msg)"', cmake))
    present = {os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "msg", "*.msg"))}
    assert listed == present
    for pkg in ("offload_common", "approxbit_ros", "how2compress_ros"):
        assert re.search(rf"ament_python_install_package\({pkg}[ )]", cmake), pkg


@needs_ros
def test_every_entry_point_has_a_ros_wrapper_script_and_a_main():
    scripts = {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "scripts", "*"))}
    assert scripts == set(NODES)
    for exe, target in NODES.items():
        module, func = target.split(":")
        text = open(os.path.join(ROOT, "scripts", exe)).read()
        assert f"from {module} import {func}" in text
        assert os.access(os.path.join(ROOT, "scripts", exe), os.X_OK)
        assert callable(getattr(importlib.import_module(module), func))


def test_launch_files_exist_for_the_demo():
    assert os.path.join(ROOT, "launch", "demo.launch.py") in LAUNCH_FILES


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=os.path.basename)
def test_launch_file_nodes_are_entry_points_with_known_parameters(path):
    nodes = launch_nodes(path)
    assert nodes, f"{path} starts no node"
    for exe, yamls, _name in nodes:
        assert exe in NODES, f"{os.path.basename(path)}: {exe} is not an entry point"
        for y in yamls:
            assert os.path.isfile(os.path.join(ROOT, "config", y)), y


def _calls(path: str, name: str):
    return [c for c in ast.walk(ast.parse(open(path).read()))
            if isinstance(c, ast.Call) and getattr(c.func, "id", "") == name]


# the launch files that include others / remap topics: only these are checked (an instance for a
# file with none would assert nothing), and the lists themselves must not be empty
INCLUDING = [p for p in LAUNCH_FILES if _calls(p, "PythonLaunchDescriptionSource")]
REMAPPING = [p for p in LAUNCH_FILES if any(k.arg == "remappings" for c in _calls(p, "Node") for k in c.keywords)]


def test_some_launch_files_include_others_and_some_remap():
    assert INCLUDING and REMAPPING


@pytest.mark.parametrize("path", INCLUDING, ids=os.path.basename)
def test_included_launch_files_exist(path):
    for call in _calls(path, "PythonLaunchDescriptionSource"):
        included = [c.value for c in ast.walk(call) if isinstance(c, ast.Constant) and str(c.value).endswith(".py")]
        assert included and all(os.path.join(ROOT, "launch", f) in LAUNCH_FILES for f in included), included


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=os.path.basename)
def test_launch_arguments_are_declared_and_used(path):
    tree = ast.parse(open(path).read())
    declared = launch_arguments(tree)
    used = {ast.literal_eval(c.args[0]) for c in ast.walk(tree)
            if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "LaunchConfiguration"}
    assert used == set(declared), os.path.basename(path)
    assert all(default is not None for default in declared.values()), "every argument needs a default"


@needs_ros
@pytest.mark.parametrize("path", REMAPPING, ids=os.path.basename)
def test_launch_remappings_rename_topics_the_nodes_use(path):
    checked = 0
    for call in _calls(path, "Node"):
        kw = {k.arg: k.value for k in call.keywords}
        if "remappings" not in kw:
            continue
        module = importlib.import_module(NODES[ast.literal_eval(kw["executable"])].split(":")[0])
        source = open(module.__file__).read()
        for pair in kw["remappings"].elts:
            topic = ast.literal_eval(pair.elts[0])
            assert f'"{topic}"' in source, f"{os.path.basename(path)}: {module.__name__} has no topic {topic!r}"
            checked += 1
    assert checked


@needs_ros
@pytest.mark.parametrize("path", YAML_FILES, ids=os.path.basename)
def test_every_yaml_key_is_a_declared_parameter(path):
    data = yaml.safe_load(open(path))
    for node_name, section in data.items():
        params = section["ros__parameters"]
        executable = node_name if node_name in NODES else None
        assert executable, f"{os.path.basename(path)}: section {node_name!r} names no node executable"
        unknown = set(params) - node_parameters(executable)
        assert not unknown, f"{os.path.basename(path)}: {sorted(unknown)} not declared by {executable}"


def test_demo_runner_starts_what_the_launch_files_start():
    spec = importlib.util.spec_from_file_location("run_demo", os.path.join(ROOT, "tools", "run_demo.py"))
    run_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo)
    for name, (launch_file, sink, nodes) in run_demo.DEMOS.items():
        started = {(n.executable, os.path.basename(n.params_file)) for n in nodes}
        launched = {(exe, y) for exe, yamls, _ in launch_nodes(os.path.join(ROOT, "launch", launch_file),
                                                                conditional=False) for y in yamls}
        assert started == launched, name
        assert sink in {n.name for n in nodes}


def test_declared_parameters_match_the_spec(rclpy_context):
    """A node declares exactly the parameters its PARAMETERS spec lists (checked on a live node)."""
    from offload_common.nodes.frame_counter import PARAMETERS, FrameCounterNode

    node = FrameCounterNode(context=rclpy_context)
    try:
        builtin = {"use_sim_time", "start_type_description_service"}   # rclpy declares these
        declared = set(node._parameters) - builtin
        assert declared == {p.name for p in PARAMETERS}
        for p in PARAMETERS:
            assert node.describe_parameter(p.name).description == p.description
    finally:
        node.destroy_node()


@needs_ros
def test_parameter_docs_are_current():
    import subprocess
    import sys

    rc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_param_docs.py"), "--check"]).returncode
    assert rc == 0, "docs/parameters.md is stale: run tools/ros_env.sh python tools/gen_param_docs.py"


def requirement_names(path):
    """{name: version pin or None} of a pip requirements file (comments and markers dropped)."""
    found = {}
    for line in open(os.path.join(ROOT, path)):
        line = line.split("#")[0].split(";")[0].strip()
        if line:
            name, _, pin = line.partition("==")
            found[name.strip()] = pin.strip() or None
    return found


def test_jazzy_wheels_list_the_default_wheels_pinned_to_jazzy():
    """requirements-ros-jazzy.txt (the older-distro check) keeps up with requirements-ros.txt:
    the same packages, each ROS wheel pinned, so pip cannot mix in the newer distro's."""
    default = requirement_names("requirements-ros.txt")
    jazzy = requirement_names("requirements-ros-jazzy.txt")
    kilted_only = {"ros-ament-cmake-ros-core"}  # new in Kilted; Jazzy's ament_cmake_ros holds it
    assert set(default) - kilted_only <= set(jazzy)
    unpinned = [name for name, pin in jazzy.items() if name.startswith("ros-") and pin is None]
    assert not unpinned, unpinned


def _imported_top_levels(path: str) -> set:
    """Top-level packages a module imports anywhere (at module level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["offload_common", "approxbit_ros", "how2compress_ros"])
def test_library_code_never_imports_rclpy_and_the_shared_package_no_method(package):
    offenders = []
    for path in sorted(glob.glob(os.path.join(ROOT, package, "**", "*.py"), recursive=True)):
        rel = os.path.relpath(path, ROOT)
        imported = _imported_top_levels(path)
        if "rclpy" in imported and f"{os.sep}nodes{os.sep}" not in rel:
            offenders.append(f"{rel} imports rclpy outside nodes/")
        if package == "offload_common" and imported & {"approxbit_ros", "how2compress_ros"}:
            offenders.append(f"{rel} imports {sorted(imported & {'approxbit_ros', 'how2compress_ros'})}")
    assert not offenders, offenders


def test_method_frame_sources_are_entry_points_in_both_installs():
    """setup.py (pip) and the CMake install's setup.cfg declare the same frame sources, and the
    environment the tests run in finds each through offload_common's entry-point group."""
    import configparser

    from offload_common.frame_sources import ENTRY_POINT_GROUP, _entry_points

    declared = setup_table("FRAME_SOURCES")
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "cmake", "approxbit_ros.setup.cfg"))
    lines = [ln for ln in cfg["options.entry_points"][ENTRY_POINT_GROUP].splitlines() if ln.strip()]
    assert dict(tuple(p.strip() for p in ln.split("=", 1)) for ln in lines) == declared
    assert "cmake/approxbit_ros.setup.cfg" in open(os.path.join(ROOT, "CMakeLists.txt")).read()
    found = _entry_points()
    assert {k: found[k].value for k in declared if k in found} == declared
