"""ApproxBit on one machine: camera (synthetic action clips) -> approxbit_edge -> approxbit_server
-> reporter. Split across machines with approxbit_edge.launch.py / approxbit_server.launch.py."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    config = os.path.join(get_package_share_directory("edge_offload"), "config")
    return LaunchDescription([
        DeclareLaunchArgument("record", default_value="false",
                              description="also run offload_recorder (a rosbag2 MCAP recording for offload_report)"),
        DeclareLaunchArgument("record_output", default_value="",
                              description="recording folder (empty: recordings/<date>-<time>)"),
        Node(package="edge_offload", executable="camera_source", name="camera_source",
             parameters=[os.path.join(config, "camera_actions.yaml")], output="screen"),
        Node(package="edge_offload", executable="approxbit_edge", name="approxbit_edge",
             parameters=[os.path.join(config, "approxbit_edge.yaml")], output="screen"),
        Node(package="edge_offload", executable="approxbit_server", name="approxbit_server",
             parameters=[os.path.join(config, "approxbit_server.yaml")], output="screen"),
        Node(package="edge_offload", executable="result_reporter", name="result_reporter",
             parameters=[os.path.join(config, "result_reporter.yaml")], output="screen"),
        Node(package="edge_offload", executable="offload_recorder", name="offload_recorder",
             parameters=[os.path.join(config, "offload_recorder.yaml"),
                         {"output": LaunchConfiguration("record_output")}],
             condition=IfCondition(LaunchConfiguration("record")), output="screen"),
    ])
