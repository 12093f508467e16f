"""ApproxBit: split a frozen video backbone at an offload point; the edge sends learned 1-bit
codes of the feature map, the server decodes them and finishes the backbone.

Library code (no rclpy): ``codec`` (binary encoder / decoder networks, loss, bit-packed wire
format). ROS nodes will live in ``approxbit_ros.nodes``.
"""
