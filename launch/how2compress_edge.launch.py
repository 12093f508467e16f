"""How2Compress edge side (robot): h2c_edge, and camera_source unless the robot's own camera is used.

    ros2 launch edge_offload how2compress_edge.launch.py camera:=false image_topic:=/camera/color/image_raw
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
    image_topic = LaunchConfiguration("image_topic")
    return LaunchDescription([
        DeclareLaunchArgument("camera", default_value="true",
                              description="start camera_source (false: the robot's camera publishes image_topic)"),
        DeclareLaunchArgument("image_topic", default_value="image_raw", description="sensor_msgs/Image topic to encode"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(config, "h2c_edge.yaml"),
                              description="h2c_edge parameter file"),
        Node(package="edge_offload", executable="camera_source", name="camera_source",
             parameters=[os.path.join(config, "camera_source.yaml")], remappings=[("image_raw", image_topic)],
             condition=IfCondition(LaunchConfiguration("camera")), output="screen"),
        Node(package="edge_offload", executable="h2c_edge", name="h2c_edge",
             parameters=[LaunchConfiguration("params_file")], remappings=[("image_raw", image_topic)],
             output="screen"),
    ])
