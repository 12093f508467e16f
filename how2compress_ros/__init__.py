"""How2Compress: per-macroblock emphasis -> QP map -> H.264 (edge), decode -> detect (server).

Library code (no rclpy): ``codec`` (libx264 with a QP map, resilient H.264 decoding),
``emphasis`` (the Emphasis-Assignment model and its training by Region-aware Emphasis Routing),
``detectors`` (person detectors behind one interface, F1 / mAP), ``pipeline`` (edge and server
logic), ``evaluation`` (bitrate at equal accuracy against the baselines), ``profiling`` (the
lookup table the link monitor reads), ``experiments`` (the adaptive experiment). ROS 2 nodes
live in ``how2compress_ros.nodes``.
"""
