"""ApproxBit edge side (robot): approxbit_edge, camera_source unless the robot's own camera is
used, and with monitor:=true the link monitor that switches configurations (the server side then
runs link_echo, as approxbit_server.launch.py does).

    ros2 launch edge_offload approxbit_edge.launch.py camera:=false image_topic:=/camera/color/image_raw monitor:=true
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
        DeclareLaunchArgument("monitor", default_value="false",
                              description="start link_monitor (config/link_monitor.yaml) to choose configurations"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(config, "approxbit_edge.yaml"),
                              description="approxbit_edge parameter file"),
        DeclareLaunchArgument("monitor_params_file", default_value=os.path.join(config, "link_monitor.yaml"),
                              description="link_monitor parameter file (its lookup_tables: your profiled table)"),
        Node(package="edge_offload", executable="camera_source", name="camera_source",
             parameters=[os.path.join(config, "camera_actions.yaml")], remappings=[("image_raw", image_topic)],
             condition=IfCondition(LaunchConfiguration("camera")), output="screen"),
        Node(package="edge_offload", executable="approxbit_edge", name="approxbit_edge",
             parameters=[LaunchConfiguration("params_file")], remappings=[("image_raw", image_topic)],
             output="screen"),
        Node(package="edge_offload", executable="link_monitor", name="link_monitor",
             parameters=[LaunchConfiguration("monitor_params_file")],
             condition=IfCondition(LaunchConfiguration("monitor")), output="screen"),
    ])
