"""Field recordings: rosbag2 (MCAP) bags of a run, written by ``offload_recorder`` and read by
``offload_report`` and ``offload_replay``. Plain Python (rosbags, mcap); no rclpy."""
