"""How2Compress ROS 2 nodes (thin: parameters, topics, QoS, message conversion)."""
