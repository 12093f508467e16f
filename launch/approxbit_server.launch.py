"""ApproxBit server side: approxbit_server (decoder + rest of the backbone) and link_echo, which
answers the edge's link monitor probes (echo:=false leaves it out).

    ros2 launch edge_offload approxbit_server.launch.py params_file:=/path/approxbit_server.yaml
"""
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
        DeclareLaunchArgument("params_file", default_value=os.path.join(config, "approxbit_server.yaml"),
                              description="approxbit_server parameter file"),
        DeclareLaunchArgument("echo", default_value="true", description="start link_echo for the link monitor"),
        Node(package="edge_offload", executable="approxbit_server", name="approxbit_server",
             parameters=[LaunchConfiguration("params_file")], output="screen"),
        Node(package="edge_offload", executable="link_echo", name="link_echo",
             parameters=[os.path.join(config, "link_echo.yaml")],
             condition=IfCondition(LaunchConfiguration("echo")), output="screen"),
        Node(package="edge_offload", executable="offload_recorder", name="offload_recorder",
             parameters=[os.path.join(config, "offload_recorder.yaml"),
                         {"output": LaunchConfiguration("record_output")}],
             condition=IfCondition(LaunchConfiguration("record")), output="screen"),
    ])
