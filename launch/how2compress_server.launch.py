"""How2Compress server side: h2c_server (decoder + detector)."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch_ros.actions import Node


def generate_launch_description():
    config = os.path.join(get_package_share_directory("edge_offload"), "config")
    return LaunchDescription([
        Node(package="edge_offload", executable="h2c_server", name="h2c_server",
             parameters=[os.path.join(config, "h2c_server.yaml")], output="screen"),
    ])
