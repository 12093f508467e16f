"""ApproxBit: split a frozen video backbone at an offload point; the edge sends learned 1-bit
codes of the feature map, the server decodes them and finishes the backbone.

Library code (no rclpy): ``backbones`` (split-able video backbones, FLOP counting), ``codec``
(binary encoder / decoder networks, loss, bit-packed wire format), ``configurations`` (the
preloaded set addressed by configuration id), ``pipeline`` (edge and server logic),
``baselines`` and ``profiling`` (the lookup table the link monitor reads), ``data`` (the
synthetic action dataset), ``training`` (backbone and codec training), ``experiments``
(the adaptive experiment). ROS 2 nodes live in ``approxbit_ros.nodes``.
"""
