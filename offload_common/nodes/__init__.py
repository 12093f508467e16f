"""ROS 2 nodes and the small helpers they share. Everything that imports rclpy lives in a
``nodes`` package; the library modules next to it never do."""
