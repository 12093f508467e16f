"""ApproxBit on one machine with the link monitor: approxbit.launch.py (camera -> approxbit_edge ->
approxbit_server -> reporter) plus link_monitor choosing the configuration (config/link_monitor.yaml:
latency SLA 300 ms) from probes that link_echo answers. On two machines: approxbit_edge.launch.py
monitor:=true / approxbit_server.launch.py."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("edge_offload")
    config = os.path.join(share, "config")
    return LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(os.path.join(share, "launch", "approxbit.launch.py"))),
        Node(package="edge_offload", executable="link_monitor", name="link_monitor",
             parameters=[os.path.join(config, "link_monitor.yaml")], output="screen"),
        Node(package="edge_offload", executable="link_echo", name="link_echo",
             parameters=[os.path.join(config, "link_echo.yaml")], output="screen"),
    ])
