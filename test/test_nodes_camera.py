"""camera_source and frame_counter as real processes (console-script entry points with
--ros-args and YAML parameter files), talking over DDS."""
import shutil

import pytest

from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

pytestmark = pytest.mark.skipif(shutil.which("camera_source") is None,
                                reason="node entry points not installed (run make setup)")


@pytest.mark.parametrize("encoding", ["rgb8", "yuyv"])
def test_camera_frames_reach_a_subscriber(encoding):
    nodes = [
        NodeProcess("camera_source", "camera_source", config_path("camera_source.yaml"),
                    overrides={"encoding": encoding, "width": 320, "height": 180, "rate_hz": 30.0}),
        NodeProcess("frame_counter", "frame_counter", config_path("frame_counter.yaml"),
                    overrides={"expected_frames": 20, "timeout_s": 40.0, "report_every": 10}),
    ]
    with ProcessGraph(nodes, echo=False) as graph:
        code = graph.wait("frame_counter", timeout=60)
        out = graph.output("frame_counter")
    assert code == 0, out
    assert "received 20 frames (0 rejected)" in out
    assert f"320x180 {encoding}" in out


def test_camera_stops_at_end_of_a_non_looping_source_and_keeps_running():
    nodes = [NodeProcess("camera_source", "camera_source", config_path("camera_source.yaml"),
                         overrides={"loop": False, "max_frames": 5, "rate_hz": 50.0})]
    with ProcessGraph(nodes, echo=False) as graph:
        assert graph.wait("camera_source", timeout=4) is None      # still serving
        out = graph.output("camera_source")
    assert "end of source after 5 frames" in out


@pytest.mark.parametrize("overrides,match", [
    ({"source": "webcam"}, "unknown source kind 'webcam'"),
    ({"source": "video", "uri": "/no/such/file.mp4"}, "video file not found"),
    ({"encoding": "bayer_rggb8"}, "unsupported image encoding"),
])
def test_camera_with_bad_parameters_exits_with_a_clear_error(overrides, match):
    nodes = [NodeProcess("camera_source", "camera_source", config_path("camera_source.yaml"),
                         overrides=overrides)]
    with ProcessGraph(nodes, echo=False) as graph:
        code = graph.wait("camera_source", timeout=30)
        out = graph.output("camera_source")
    assert code == 1, out
    assert match in out


def test_rate_can_change_at_run_time_and_bad_rates_are_refused(rclpy_context):
    from rclpy.parameter import Parameter

    from offload_common.nodes.camera_source import CameraSourceNode

    node = CameraSourceNode(context=rclpy_context)
    try:
        assert abs(node.timer.timer_period_ns - 1e9 / 10.0) < 1e3
        ok = node.set_parameters([Parameter("rate_hz", value=40.0)])[0]
        assert ok.successful and abs(node.timer.timer_period_ns - 1e9 / 40.0) < 1e3
        for value in (-1.0, 0.0, float("nan"), float("inf")):
            bad = node.set_parameters([Parameter("rate_hz", value=value)])[0]
            assert not bad.successful and "rate_hz" in bad.reason and "range" in bad.reason, value
        assert abs(node.timer.timer_period_ns - 1e9 / 40.0) < 1e3
        ro = node.set_parameters([Parameter("width", value=99)])[0]
        assert not ro.successful
    finally:
        node.destroy_node()


def test_malformed_images_are_counted_and_the_node_keeps_serving(rclpy_context):
    import time

    import numpy as np
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from offload_common.image_conversion import numpy_to_image_msg
    from offload_common.nodes.frame_counter import FrameCounterNode
    from offload_common.nodes.qos import SENSOR_QOS

    counter = FrameCounterNode(context=rclpy_context)
    sender = rclpy.create_node("bad_image_sender", context=rclpy_context)
    pub = sender.create_publisher(Image, "image_raw", SENSOR_QOS)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(counter)
    ex.add_node(sender)
    bad = [Image(height=4, width=4, encoding="bayer_rggb8", step=4, data=bytes(16)),
           Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(10)),        # too short
           Image(height=4, width=4, encoding="rgb8", step=5, data=bytes(48))]         # step < row
    good = numpy_to_image_msg(np.zeros((4, 6, 3), np.uint8))
    try:
        deadline = time.monotonic() + 10
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        time.sleep(0.3)
        for msg in bad + [good]:
            pub.publish(msg)
            ex.spin_once(timeout_sec=0.05)
        while counter.received < 1 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        assert counter.images.rejected == 3 and counter.received == 1
    finally:
        ex.shutdown()
        counter.destroy_node()
        sender.destroy_node()


def test_frame_id_and_ground_truth_log(rclpy_context, tmp_path):
    """README: camera_source stamps frame_id on every image, and with ground_truth_log appends
    'stamp_ns frame_index label' for each labelled frame (the synthetic action clips), the stamp
    being the published image's, so an experiment can score results against it."""
    import threading
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from approxbit_ros.data.synthetic_actions import CLASSES
    from offload_common.nodes.camera_source import CameraSourceNode
    from offload_common.nodes.qos import SENSOR_QOS
    from offload_common.nodes.runner import stamp_to_ns

    log = tmp_path / "truth.txt"
    cam = CameraSourceNode(context=rclpy_context, parameter_overrides=[
        Parameter("source", value="actions"), Parameter("frame_id", value="cam_front"),
        Parameter("ground_truth_log", value=str(log)), Parameter("rate_hz", value=40.0),
        Parameter("width", value=64), Parameter("height", value=64)])
    watch = rclpy.create_node("camera_truth_watch", context=rclpy_context)
    got = []
    watch.create_subscription(Image, "image_raw", got.append, SENSOR_QOS)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(cam)
    ex.add_node(watch)
    threading.Thread(target=ex.spin, daemon=True).start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(got) < 40:
            time.sleep(0.05)
    finally:
        ex.shutdown()
        cam.destroy_node()
        watch.destroy_node()
    assert len(got) >= 40 and {m.header.frame_id for m in got} == {"cam_front"}
    rows = [line.split(maxsplit=2) for line in log.read_text().splitlines()]   # labels hold spaces
    by_stamp = {int(r[0]): (int(r[1]), r[2]) for r in rows}
    assert all(r[2] in CLASSES for r in rows), rows[:3]
    matched = [by_stamp[stamp_to_ns(m.header.stamp)] for m in got if stamp_to_ns(m.header.stamp) in by_stamp]
    assert len(matched) >= 35                                  # the log's stamps are the images' stamps
    assert [i for i, _ in matched] == sorted(i for i, _ in matched)
