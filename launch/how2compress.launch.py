"""How2Compress on one machine: camera (real footage) -> h2c_edge -> h2c_server -> reporter.
Split across machines with how2compress_edge.launch.py / how2compress_server.launch.py."""
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
             parameters=[os.path.join(config, "camera_footage.yaml")], output="screen"),
        Node(package="edge_offload", executable="h2c_edge", name="h2c_edge",
             parameters=[os.path.join(config, "h2c_edge.yaml")], output="screen"),
        Node(package="edge_offload", executable="h2c_server", name="h2c_server",
             parameters=[os.path.join(config, "h2c_server.yaml")], output="screen"),
        Node(package="edge_offload", executable="result_reporter", name="result_reporter",
             parameters=[os.path.join(config, "result_reporter.yaml")], output="screen"),
        Node(package="edge_offload", executable="offload_recorder", name="offload_recorder",
             parameters=[os.path.join(config, "offload_recorder.yaml"),
                         {"output": LaunchConfiguration("record_output")}],
             condition=IfCondition(LaunchConfiguration("record")), output="screen"),
    ])
