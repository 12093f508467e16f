"""How2Compress edge side (robot): camera_source + h2c_edge."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch_ros.actions import Node


def generate_launch_description():
    config = os.path.join(get_package_share_directory("edge_offload"), "config")
    return LaunchDescription([
        Node(package="edge_offload", executable="camera_source", name="camera_source",
             parameters=[os.path.join(config, "camera_source.yaml")], output="screen"),
        Node(package="edge_offload", executable="h2c_edge", name="h2c_edge",
             parameters=[os.path.join(config, "h2c_edge.yaml")], output="screen"),
    ])
