"""How2Compress over real DDS: camera_source -> h2c_edge -> tap -> h2c_server. The tap (in this
process) forwards every access unit and corrupts one; the test checks that the published
detections equal what the library computes on the same stream (frames skipped under load counted), that the corrupt unit is caught,
that the server asks for a keyframe and the edge sends one, and that results resume."""
import os
import shutil
import threading
import time

import numpy as np
import pytest

from footage import footage
from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

import rclpy  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "how2compress", "ea-mobilevitv2-050-d2-vtest-bikes")
CORRUPT_SEQ = 12

pytestmark = pytest.mark.skipif(shutil.which("h2c_edge") is None, reason="node entry points not installed")


def spin(node, ctx):
    """Spin ``node`` in a background thread; returns the executor (shut it down when done)."""
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    return ex


def carphone_camera(rate_hz: float) -> NodeProcess:
    return NodeProcess("camera_source", "camera_source", config_path("camera_source.yaml"),
                       overrides={"source": "video", "uri": footage("carphone_pristine.mp4"), "rate_hz": rate_hz,
                                  "width": 0, "height": 0})


class Tap:
    def __init__(self, ctx):
        from edge_offload.msg import DetectionArray, EncodedFrame, KeyframeRequest
        from offload_common.nodes.qos import RESULT_QOS, payload_qos

        self.node = rclpy.create_node("h2c_test_tap", context=ctx)
        self.forwarded, self.detections, self.kf_requests = [], {}, []
        self.pub = self.node.create_publisher(EncodedFrame, "encoded_frames", payload_qos(30))
        self.node.create_subscription(EncodedFrame, "encoded_frames_raw", self.on_frame, payload_qos(30))
        self.node.create_subscription(DetectionArray, "detections", self.on_det, RESULT_QOS)
        self.node.create_subscription(KeyframeRequest, "keyframe_request", self.kf_requests.append, RESULT_QOS)
        self.ex = spin(self.node, ctx)

    def on_frame(self, msg):
        if msg.meta.seq == CORRUPT_SEQ:
            data = bytearray(msg.data)
            for i in range(40, len(data), 50):
                data[i] ^= 0x5A                  # CRC field left as sent: the server must notice
            msg.data = bytes(data)
        self.forwarded.append(msg)
        self.pub.publish(msg)

    def on_det(self, msg):
        self.detections[msg.seq] = msg

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_detections_match_library_and_corrupt_unit_is_survived(runtime, rclpy_context):
    """With either runtime on both nodes (the EA model on the edge, the detector on the server)
    the published detections equal the torch library's on the stream the server received."""
    if not os.path.isfile(os.path.join(MODEL, "model.safetensors")):
        pytest.skip("trained EA model not present")
    tap = Tap(rclpy_context)
    nodes = [
        carphone_camera(8.0),
        NodeProcess("h2c_edge", "h2c_edge", config_path("h2c_edge.yaml"),
                    overrides={"model_path": MODEL, "gop": 200, "map_reuse": 2, "runtime": runtime},
                    remaps={"encoded_frames": "encoded_frames_raw"}),
        NodeProcess("h2c_server", "h2c_server", config_path("h2c_server.yaml"), overrides={"runtime": runtime}),
    ]
    try:
        with ProcessGraph(nodes, echo=False) as graph:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if sum(1 for s in tap.detections if s > CORRUPT_SEQ) >= 10:
                    break
                assert all(graph.running(k) for k in ("h2c_edge", "h2c_server")), graph.output("h2c_server")
                time.sleep(0.2)
            time.sleep(1.0)
            server_log = graph.output("h2c_server")
            assert graph.running("h2c_server")
            assert ("detector ssdlite-person-onnx" in server_log) == (runtime == "onnxruntime"), server_log
    finally:
        tap.close()
    frames = sorted(tap.forwarded, key=lambda m: m.meta.seq)
    assert frames and frames[0].meta.seq == 0 and frames[0].keyframe
    assert "CRC-32 mismatch" in server_log
    assert tap.kf_requests, "server never asked for a keyframe"
    later_keys = [m.meta.seq for m in frames if m.keyframe and m.meta.seq > CORRUPT_SEQ]
    assert later_keys and later_keys[0] < CORRUPT_SEQ + 30   # forced keyframe, well before gop 200

    # the library on exactly the forwarded stream
    from how2compress_ros.codec import H264DecodeError
    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
    from how2compress_ros.pipeline import How2CompressServer

    lib = How2CompressServer(SSDLitePersonDetector())
    expected = {}
    for m in frames:
        try:
            results, _ = lib.handle(m.meta.stream_id, m.meta.seq, bytes(m.data), m.keyframe, m.crc32,
                                    width=m.width, height=m.height, config_id=m.meta.config_id)
        except H264DecodeError:
            continue
        for r in results:
            expected[m.meta.seq] = r.boxes
    published = dict(tap.detections)
    last = max(published)                     # results still in flight when the graph stopped
    # results published before the server's detections publisher had discovered this process's
    # subscription are not seen (volatile QoS); from the first one seen, every one must be here
    first = min(published)
    assert first < CORRUPT_SEQ
    expected = {s: b for s, b in expected.items() if first <= s <= last}
    assert CORRUPT_SEQ not in published and CORRUPT_SEQ not in expected
    # a server that falls behind (the detector's first runs) detects on the newest decoded frame
    # and skips the rest: every published seq is one the library decodes, and every decoded frame
    # between two results is counted in the later one's server_skipped
    assert set(published) <= set(expected) and len(published) >= len(expected) // 2
    seqs = sorted(published)
    for prev, nxt in zip(seqs, seqs[1:]):
        assert published[nxt].latency.server_skipped == sum(prev < s < nxt for s in expected), (prev, nxt)
    assert any(s > later_keys[0] for s in published)
    for seq, msg in published.items():
        got = np.array([[d.x_min, d.y_min, d.x_max, d.y_max, d.score] for d in msg.detections]).reshape(-1, 5)
        exp = np.array([[b.x_min, b.y_min, b.x_max, b.y_max, b.score] for b in expected[seq]]).reshape(-1, 5)
        np.testing.assert_allclose(got, exp, rtol=1e-4, atol=1e-3)
    assert sum(len(d.detections) for d in published.values()) > 0


def test_edge_only_detects_on_the_edge(rclpy_context):
    """With the link down the monitor says edge_only: h2c_edge sends nothing and publishes the
    detections of its own edge detector, equal to the library's on the same camera frames."""
    from sensor_msgs.msg import Image

    from edge_offload.msg import DetectionArray, EncodedFrame
    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
    from offload_common.image_conversion import image_msg_to_rgb
    from offload_common.nodes.qos import RESULT_QOS, SENSOR_QOS, payload_qos
    from offload_common.nodes.runner import stamp_to_ns

    node = rclpy.create_node("h2c_edge_only_watch", context=rclpy_context)
    images, dets, sent = {}, [], []
    node.create_subscription(Image, "image_raw", lambda m: images.__setitem__(stamp_to_ns(m.header.stamp),
                                                                             image_msg_to_rgb(m)), SENSOR_QOS)
    node.create_subscription(DetectionArray, "detections", dets.append, RESULT_QOS)
    node.create_subscription(EncodedFrame, "encoded_frames", sent.append, payload_qos(30))
    ex = spin(node, rclpy_context)
    nodes = [
        carphone_camera(5.0),
        NodeProcess("h2c_edge", "h2c_edge", config_path("h2c_edge.yaml"),
                    overrides={"model_path": "", "config_id": "edge_only", "edge_detector": "ssdlite"}),
    ]
    try:
        with ProcessGraph(nodes, echo=False) as graph:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(dets) < 8:
                assert graph.running("h2c_edge"), graph.output("h2c_edge")
                time.sleep(0.2)
    finally:
        ex.shutdown()
        node.destroy_node()
    assert len(dets) >= 8 and not sent
    lib = SSDLitePersonDetector()
    compared = 0
    for d in dets:
        assert d.config_id == "edge_only" and d.stream_id == "det" and d.latency.edge_model_ms > 0
        rgb = images.get(stamp_to_ns(d.header.stamp))
        if rgb is None:
            continue
        got = np.array([[x.x_min, x.y_min, x.x_max, x.y_max, x.score] for x in d.detections]).reshape(-1, 5)
        exp = np.array([[b.x_min, b.y_min, b.x_max, b.y_max, b.score] for b in lib.detect(rgb)
                        if b.score >= 0.5]).reshape(-1, 5)
        np.testing.assert_allclose(got, exp, rtol=1e-4, atol=1e-3)
        compared += 1
    assert compared >= 5 and sum(len(d.detections) for d in dets) > 0


def test_server_decodes_a_restarted_edge_at_once(rclpy_context):
    """The edge node restarts (crash, redeploy) and numbers its frames from 0 again. The server
    must decode the new stream from its first keyframe, not refuse it as repeats until the
    numbers pass the old stream's."""
    from edge_offload.msg import DetectionArray
    from offload_common.nodes.qos import RESULT_QOS

    node = rclpy.create_node("h2c_restart_watch", context=rclpy_context)
    seqs = []
    node.create_subscription(DetectionArray, "detections", lambda m: seqs.append(m.seq), RESULT_QOS)
    ex = spin(node, rclpy_context)
    nodes = [
        carphone_camera(10.0),
        NodeProcess("h2c_edge", "h2c_edge", config_path("h2c_edge.yaml"),
                    overrides={"model_path": "", "config_id": "uniform/qp30"}),
        NodeProcess("h2c_server", "h2c_server", config_path("h2c_server.yaml")),
    ]

    def wait_for(done, what, graph):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not done():
            assert graph.running("h2c_server"), graph.output("h2c_server")
            time.sleep(0.2)
        assert done(), f"{what}; server said: {graph.output('h2c_server')[-2000:]}"

    try:
        with ProcessGraph(nodes, echo=False) as graph:
            wait_for(lambda: seqs and max(seqs) >= 30, "no detections of the first edge run", graph)
            graph.stop_one("h2c_edge")
            old_max, n_before = max(seqs), len(seqs)
            graph.start_one("h2c_edge")
            wait_for(lambda: sum(s < old_max for s in seqs[n_before:]) >= 5,
                     "the restarted edge's frames were not decoded", graph)
            server_log = graph.output("h2c_server")
    finally:
        ex.shutdown()
        node.destroy_node()
    assert "starts over" in server_log
    after = seqs[n_before:]
    assert after == sorted(after)                 # one stream again, in order


def test_server_survives_a_failing_detector(rclpy_context):
    """A payload whose handling raises something unforeseen (here the detector) is logged and
    counted; the server node keeps serving the stream (an exception escaping the callback would
    end the node's spin)."""
    from edge_offload.msg import EncodedFrame
    from how2compress_ros.nodes.server_node import How2CompressServerNode
    from how2compress_ros.pipeline import EdgeSettings, How2CompressEdge
    from offload_common.nodes.payloads import fill_header

    from rclpy.parameter import Parameter

    node = How2CompressServerNode(context=rclpy_context, parameter_overrides=[Parameter("shed_load", value=False)])
    edge = How2CompressEdge(None, EdgeSettings(gop=30), "uniform/qp30")
    rgb = np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8)
    detector = node.server.detector

    class FailingDetector:
        name = "failing"

        def detect(self, rgb):
            raise RuntimeError("CUDA error: out of memory")

    try:
        for seq in range(4):
            (pl,) = edge.process(rgb)
            msg = EncodedFrame()
            fill_header(msg.meta, stamp=node.get_clock().now().to_msg(), frame_id="cam", stream_id="det", seq=seq,
                        config_id=pl.config.config_id, clock=node.get_clock())
            msg.codec, msg.width, msg.height = "h264", pl.width, pl.height
            msg.keyframe, msg.crc32, msg.data = pl.keyframe, pl.crc32, pl.data
            node.server.detector = FailingDetector() if seq == 1 else detector
            node._on_frame(msg)                              # must not raise
        c = node.server.counters
        assert c.failed == 1 and c.decoded == 4 and c.corrupt == 0 and c.rejected == 0
    finally:
        edge.close()
        node.destroy_node()


def test_server_detector_tiles_parameter(rclpy_context):
    """``detector_tiles`` wraps the server's detector in tiles; a malformed value stops the node at
    start-up with a message naming the parameter's form, before any model is loaded."""
    from rclpy.parameter import Parameter

    from how2compress_ros.detectors.tiled import TiledDetector
    from how2compress_ros.nodes.server_node import How2CompressServerNode

    node = How2CompressServerNode(context=rclpy_context, parameter_overrides=[
        Parameter("detector", value="hog"), Parameter("detector_tiles", value="2x3")])
    try:
        det = node.server.detector
        assert isinstance(det, TiledDetector) and det.name == "hog-tiles2x3"
    finally:
        node.destroy_node()
    with pytest.raises(ValueError, match="ROWSxCOLS"):
        How2CompressServerNode(context=rclpy_context, parameter_overrides=[Parameter("detector_tiles", value="2by2")])
