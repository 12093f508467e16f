"""How2Compress: per-macroblock emphasis -> QP map -> H.264 (edge), decode -> detect (server).

Library code (no rclpy): ``codec`` (libx264 with a QP map, H.264 decoding). ROS nodes live in
``how2compress_ros.nodes``.
"""
