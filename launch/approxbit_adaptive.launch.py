"""ApproxBit on one machine with the link monitor: camera (synthetic action clips) -> approxbit_edge
-> approxbit_server -> reporter, link_monitor choosing the configuration (config/link_monitor.yaml:
latency SLA 300 ms) from probes that link_echo answers. On two machines: approxbit_edge.launch.py
monitor:=true / approxbit_server.launch.py."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch_ros.actions import Node


def generate_launch_description():
    config = os.path.join(get_package_share_directory("edge_offload"), "config")
    return LaunchDescription([
        Node(package="edge_offload", executable="camera_source", name="camera_source",
             parameters=[os.path.join(config, "camera_actions.yaml")], output="screen"),
        Node(package="edge_offload", executable="approxbit_edge", name="approxbit_edge",
             parameters=[os.path.join(config, "approxbit_edge.yaml")], output="screen"),
        Node(package="edge_offload", executable="approxbit_server", name="approxbit_server",
             parameters=[os.path.join(config, "approxbit_server.yaml")], output="screen"),
        Node(package="edge_offload", executable="result_reporter", name="result_reporter",
             parameters=[os.path.join(config, "result_reporter.yaml")], output="screen"),
        Node(package="edge_offload", executable="link_monitor", name="link_monitor",
             parameters=[os.path.join(config, "link_monitor.yaml")], output="screen"),
        Node(package="edge_offload", executable="link_echo", name="link_echo",
             parameters=[os.path.join(config, "link_echo.yaml")], output="screen"),
    ])
