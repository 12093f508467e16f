"""Camera source alone: `ros2 launch edge_offload camera.launch.py source:=video uri:=/path.mp4`."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    config = os.path.join(get_package_share_directory("edge_offload"), "config")
    return LaunchDescription([
        DeclareLaunchArgument("source", default_value="synthetic",
                              description="synthetic | video | images | bag"),
        DeclareLaunchArgument("uri", default_value="", description="file, folder or bag path"),
        Node(package="edge_offload", executable="camera_source", name="camera_source",
             parameters=[os.path.join(config, "camera_source.yaml"),
                         {"source": LaunchConfiguration("source"),
                          "uri": LaunchConfiguration("uri")}],
             output="screen"),
    ])
