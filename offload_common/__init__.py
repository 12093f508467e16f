"""What the ApproxBit and How2Compress pipelines share. Library modules (no rclpy):
``image_conversion`` (sensor_msgs/Image <-> numpy without cv_bridge), ``frame_sources`` (video
files, image folders, bags, a synthetic scene), ``torch_device`` (checked device names for the
models), ``payload_checks`` (what every server checks before decoding), ``lookup_table``
(profiled cost and accuracy per configuration), ``monitor`` (link estimation and the SLA
chooser), ``process_graph`` (start node processes like ``ros2 launch``), ``netns_link`` /
``link_relay`` / ``link_trace`` / ``cpu_limit`` (emulated links and a weaker edge),
``experiments`` (the adaptive-offloading harness and its scoring), ``training_state``
(resumable training). ROS 2 nodes (camera source, link monitor, ...) live in ``nodes``.
"""
