"""pip-installable Python side of the edge_offload ROS 2 package.

`pip install -e .` (done by `make setup`) installs the library packages and one console
script per node. The ROS build (CMakeLists.txt) installs the same packages and wraps the same
entry points in scripts/ for `ros2 run edge_offload <node>`.
"""
from setuptools import find_packages, setup

# node executable -> entry point. scripts/<name> must exist for each (checked by the tests).
NODES = {
    "camera_source": "offload_common.nodes.camera_source:main",
    "frame_counter": "offload_common.nodes.frame_counter:main",
    "result_reporter": "offload_common.nodes.result_reporter:main",
    "h2c_edge": "how2compress_ros.nodes.edge_node:main",
    "h2c_server": "how2compress_ros.nodes.server_node:main",
    "approxbit_edge": "approxbit_ros.nodes.edge_node:main",
    "approxbit_server": "approxbit_ros.nodes.server_node:main",
    "link_monitor": "offload_common.nodes.link_monitor:main",
    "link_echo": "offload_common.nodes.link_echo:main",
    "sla_scheduler": "offload_common.nodes.sla_scheduler:main",
    "offload_recorder": "offload_common.nodes.offload_recorder:main",
}

# frame-source kind -> factory (offload_common.frame_sources.ENTRY_POINT_GROUP)
FRAME_SOURCES = {
    "actions": "approxbit_ros.data.synthetic_actions:open_action_frames",
}

# command-line tools (not ROS nodes)
COMMANDS = {
    "h2c_train": "how2compress_ros.emphasis.train_cli:main",
    "h2c_train_sensitivity": "how2compress_ros.emphasis.sensitivity_train_cli:main",
    "h2c_evaluate": "how2compress_ros.evaluate_cli:main",
    "h2c_profile": "how2compress_ros.profile_cli:main",
    "approxbit_train_backbone": "approxbit_ros.training.train_backbone_cli:main",
    "approxbit_train_configs": "approxbit_ros.training.train_configs_cli:main",
    "approxbit_profile": "approxbit_ros.profile_cli:main",
    "approxbit_train_vqa": "approxbit_ros.vqa.train_cli:main",
    "approxbit_fit_entropy": "approxbit_ros.training.fit_entropy_cli:main",
    "approxbit_train_vlm_codecs": "approxbit_ros.vlm.train_cli:main",
    "approxbit_profile_vlm": "approxbit_ros.vlm.profile_cli:main",
    "approxbit_adaptive_experiment": "approxbit_ros.experiments.adaptive_cli:main",
    "h2c_adaptive_experiment": "how2compress_ros.experiments.adaptive_cli:main",
    "offload_report": "offload_common.recording.report_cli:main",
    "offload_replay": "offload_common.recording.replay_cli:main",
}

setup(
    name="edge-offload",
    version="0.1.0",
    description="Edge-to-server offloading of video analytics over thin links (ApproxBit, How2Compress)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["offload_common*", "approxbit_ros*", "how2compress_ros*"]),
    entry_points={"console_scripts": [f"{name} = {target}" for name, target in {**NODES, **COMMANDS}.items()],
                  # frame sources the method packages give the camera node (offload_common.frame_sources);
                  # the CMake install declares the same in cmake/approxbit_ros.setup.cfg
                  "edge_offload.frame_sources": [f"{k} = {t}" for k, t in FRAME_SOURCES.items()]},
)
