"""The demo graph for users with a full ROS 2 install (`ros2 launch edge_offload demo.launch.py`).
`make demo` starts the same executables with the same parameter files (tools/run_demo.py)."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch_ros.actions import Node


def generate_launch_description():
    config = os.path.join(get_package_share_directory("edge_offload"), "config")
    return LaunchDescription([
        Node(package="edge_offload", executable="camera_source", name="camera_source",
             parameters=[os.path.join(config, "camera_source.yaml")], output="screen"),
        Node(package="edge_offload", executable="frame_counter", name="frame_counter",
             parameters=[os.path.join(config, "frame_counter.yaml")], output="screen"),
    ])
