"""Both servers over real DDS against a participant of our own message types that sends a mixed
hostile stream (wrong shapes, NaN, sequence bombs, far-future stamps, oversized SPS, new stream
ids, bad CRCs) between valid payloads: every hostile payload is rejected and counted by reason
(``/diagnostics`` carries the counts), its receipt says not decoded, and every valid payload is
served, each within 3 s of its capture (a stall of the kind issue 26 measured, 5-19 s a payload,
fails). With a key file, a participant without the key cannot get a result published."""
import os
import threading
import time
import zlib

import numpy as np
import pytest

import rclpy  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONE = os.path.join(ROOT, "models", "approxbit", "cnn3d-actions")
ON_TIME_MS = 3000.0


class Harness:
    """The server node under test and a probe node (publisher + listeners), each spun in a thread."""

    def __init__(self, ctx, server, payload_type, payload_topic, result_type, result_topic):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor

        from edge_offload.msg import LinkReceipt
        from offload_common.nodes.qos import RESULT_QOS, payload_qos

        self.server = server
        self.node = rclpy.create_node("attack_probe", context=ctx)
        self.results, self.receipts, self.diagnostics = {}, {}, []
        self.node.create_subscription(result_type, result_topic, self._on_result, RESULT_QOS)
        self.node.create_subscription(LinkReceipt, "link_receipts", self._on_receipt, RESULT_QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.pub = self.node.create_publisher(payload_type, payload_topic, payload_qos(200))
        self.executors = []
        for n in (server, self.node):
            ex = SingleThreadedExecutor(context=ctx)
            ex.add_node(n)
            threading.Thread(target=ex.spin, daemon=True).start()
            self.executors.append(ex)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (self.pub.get_subscription_count() == 0 or
                                               self.node.count_publishers(result_topic) == 0):
            time.sleep(0.05)
        time.sleep(0.5)

    def _on_result(self, msg):
        self.results[(msg.stream_id, msg.seq)] = msg

    def _on_receipt(self, msg):
        self.receipts[(msg.stream_id, msg.seq, msg.config_id)] = msg.decoded_ok

    def stamp(self, offset_s: float = 0.0):
        from builtin_interfaces.msg import Time

        ns = self.node.get_clock().now().nanoseconds + int(offset_s * 1e9)
        return Time(sec=ns // 10**9, nanosec=ns % 10**9)

    def wait(self, done, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done():
            time.sleep(0.05)
        return done()

    def counters(self):
        values = self.diagnostics[-1].status[0].values if self.diagnostics else []
        return {kv.key: int(kv.value) for kv in values}

    def close(self):
        for ex in self.executors:
            ex.shutdown()
        self.node.destroy_node()
        self.server.destroy_node()


def approxbit_messages(configs, cid, n, stamp, stream="var", first_seq=0, keys=None):
    """``n`` valid BinaryFeatures of configuration ``cid`` (library edge on synthetic clips)."""
    from approxbit_ros.data.synthetic_actions import SyntheticActions
    from approxbit_ros.pipeline import ApproxBitEdge
    from edge_offload.msg import BinaryFeatures
    from offload_common.nodes.payload_signing import sign_payload

    edge = ApproxBitEdge(configs, cid)
    ds = SyntheticActions("test", 13)
    out = []
    for i in range(n):
        f = edge.process(ds[i][0]).wire_fields(configs.name)
        m = BinaryFeatures()
        m.meta.format_version = m.meta.FORMAT_VERSION
        m.meta.header.stamp = stamp()
        m.meta.publish_stamp = stamp()
        m.meta.stream_id, m.meta.seq, m.meta.config_id = stream, first_seq + i, cid
        m.encoding, m.bit_order, m.backbone = f["encoding"], f["bit_order"], f["backbone"]
        m.offload_index, m.spatial_encoder, m.codebook_size = f["offload_index"], f["spatial_encoder"], \
            f["codebook_size"]
        m.shape, m.feature_shape, m.crc32, m.data = f["shape"], f["feature_shape"], f["crc32"], f["data"]
        sign_payload(m, keys)
        out.append(m)
    return out


def _copy(msg, **changes):
    from rclpy.serialization import deserialize_message, serialize_message

    m = deserialize_message(serialize_message(msg), type(msg))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        holder = m
        for p in parents:
            holder = getattr(holder, p)
        setattr(holder, leaf, value)
    return m


@pytest.fixture(scope="module")
def configs():
    import torch

    from approxbit_ros.configurations import ConfigurationSet

    torch.set_num_threads(1)
    return ConfigurationSet.from_pretrained(BACKBONE)


def test_approxbit_server_serves_every_valid_payload_through_a_hostile_mix(rclpy_context, configs):
    from approxbit_ros.nodes.server_node import ApproxBitServerNode
    from edge_offload.msg import ActionResult, BinaryFeatures

    server = ApproxBitServerNode(context=rclpy_context, parameter_overrides=[
        Parameter("vqa_question", value=""), Parameter("torch_threads", value=1),
        Parameter("diagnostics_period_s", value=0.2), Parameter("max_streams", value=4)])
    h = Harness(rclpy_context, server, BinaryFeatures, "binary_features", ActionResult, "action_results")
    try:
        valid = approxbit_messages(configs, "cnn3d/o2/enc/k4", 8, h.stamp)
        floats = approxbit_messages(configs, "cnn3d/o2/float32", 1, h.stamp, stream="raw")[0]
        nan = np.frombuffer(bytes(floats.data), "<f4").copy()
        nan[3] = np.nan
        big = [16, 256, 256]
        bits = bytes(4 * int(np.prod(big)) // 8)
        hostile = [
            _copy(valid[0], shape=[4] + big, feature_shape=big, data=bits, crc32=zlib.crc32(bits)),   # wrong shape
            _copy(floats, data=nan.tobytes(), crc32=zlib.crc32(nan.tobytes()), meta__stream_id="var",
                  meta__seq=50),                                                                     # NaN
            _copy(valid[0], meta__seq=2**64 - 1),                                                    # sequence bomb
            _copy(valid[0], meta__seq=5000, meta__header__stamp=h.stamp(365 * 86400)),               # far future
            _copy(valid[0], crc32=valid[0].crc32 ^ 1, meta__seq=60),                                 # bad CRC
        ] + [_copy(valid[0], meta__stream_id=f"intruder{i}") for i in range(40)]                      # new stream ids
        sent = []
        for i, m in enumerate(valid):
            m.meta.header.stamp = m.meta.publish_stamp = h.stamp()
            h.pub.publish(m)
            sent.append(m.meta.seq)
            for bad in hostile[i::len(valid)]:
                h.pub.publish(bad)
            time.sleep(0.25)
        assert h.wait(lambda: all(("var", s) in h.results for s in sent)), (sorted(h.results), h.counters())
        for s in sent:
            assert h.results[("var", s)].latency.total_ms < ON_TIME_MS
        assert h.wait(lambda: h.counters().get("rejected", 0) >= 5 + 40 - 3)
    finally:
        h.close()
    c = h.counters()
    for reason in ("shape", "nonfinite", "sequence_jump", "stamp", "payload", "streams"):
        assert c.get(f"rejected_{reason}", 0) >= 1, (reason, c)
    assert c["accepted"] == len(sent) + 3 and c["lost"] == 0          # 3 intruders fit under max_streams 4
    assert not any(k[0] == "var" and k[1] > 7 for k in h.results)       # nothing of the bomb published
    assert not h.receipts[("var", 2**64 - 1, "cnn3d/o2/enc/k4")]


def test_without_the_key_no_result_is_published(rclpy_context, configs, tmp_path):
    from approxbit_ros.nodes.server_node import ApproxBitServerNode
    from edge_offload.msg import ActionResult
    from offload_common.payload_auth import PayloadKeys

    key_file = tmp_path / "edge.key"
    key_file.write_text("k1 " + "5a" * 32 + "\n")
    os.chmod(key_file, 0o600)
    wrong = tmp_path / "wrong.key"
    wrong.write_text("k1 " + "a5" * 32 + "\n")
    os.chmod(wrong, 0o600)
    keys, wrong_keys = PayloadKeys.from_file(str(key_file)), PayloadKeys.from_file(str(wrong))
    server = ApproxBitServerNode(context=rclpy_context, parameter_overrides=[
        Parameter("vqa_question", value=""), Parameter("torch_threads", value=1),
        Parameter("diagnostics_period_s", value=0.2), Parameter("auth_key_file", value=str(key_file))])
    from edge_offload.msg import BinaryFeatures

    h = Harness(rclpy_context, server, BinaryFeatures, "binary_features", ActionResult, "action_results")
    try:
        unsigned = approxbit_messages(configs, "cnn3d/o2/enc/k4", 3, h.stamp, stream="attacker")
        forged = approxbit_messages(configs, "cnn3d/o2/enc/k4", 3, h.stamp, stream="forger", keys=wrong_keys)
        genuine = approxbit_messages(configs, "cnn3d/o2/enc/k4", 3, h.stamp, stream="edge", keys=keys)
        tampered = _copy(genuine[2], meta__stream_id="edge", crc32=genuine[2].crc32)
        tampered.data = bytes(len(tampered.data))                      # data changed after signing
        for a, b, g in zip(unsigned, forged, genuine):
            h.pub.publish(a)
            h.pub.publish(b)
            if g is not genuine[2]:
                h.pub.publish(g)
            time.sleep(0.2)
        h.pub.publish(tampered)
        assert h.wait(lambda: len(h.results) >= 2 and h.counters().get("rejected_auth", 0) >= 7)
        time.sleep(1.0)
    finally:
        h.close()
    assert set(h.results) == {("edge", 0), ("edge", 1)}
    assert h.counters()["rejected_auth"] == 7
    assert not any(k[0] in ("attacker", "forger") for k in h.receipts)  # no receipts vouch for them


def test_h2c_server_decodes_every_valid_frame_through_a_hostile_mix(rclpy_context):
    from edge_offload.msg import DetectionArray, EncodedFrame
    from how2compress_ros.nodes.server_node import How2CompressServerNode
    from how2compress_ros.pipeline import EdgeSettings, How2CompressEdge
    from test_h2c_hostile_units import crafted_sps, with_sps

    server = How2CompressServerNode(context=rclpy_context, parameter_overrides=[
        Parameter("detector", value="hog"), Parameter("diagnostics_period_s", value=0.2),
        Parameter("max_streams", value=3), Parameter("publish_decoded_image", value=False)])
    h = Harness(rclpy_context, server, EncodedFrame, "encoded_frames", DetectionArray, "detections")
    edge = How2CompressEdge(None, EdgeSettings(gop=10, preset="ultrafast"), "uniform/qp30")
    rng = np.random.default_rng(5)

    def frame_msg(unit, seq, stream="det", width=None, height=None, stamp=None):
        m = EncodedFrame()
        m.meta.format_version = m.meta.FORMAT_VERSION
        m.meta.header.stamp = stamp or h.stamp()
        m.meta.publish_stamp = h.stamp()
        m.meta.stream_id, m.meta.seq, m.meta.config_id = stream, seq, "uniform/qp30"
        m.codec, m.width, m.height = "h264", width or unit.width, height or unit.height
        m.keyframe, m.crc32, m.data = unit.keyframe, zlib.crc32(unit.data), unit.data
        return m

    try:
        units = [u for _ in range(12) for u in edge.process(rng.integers(0, 255, (96, 128, 3), np.uint8))]
        key = units[0]
        huge = with_sps(key.data, crafted_sps(1000, 1000))
        hostile = [
            frame_msg(type(key)(**{**key.__dict__, "data": huge}), 0, stream="det"),        # 16000^2 SPS
            frame_msg(key, 1, width=64, height=64),                                           # size mismatch
            frame_msg(key, 2**64 - 1),                                                        # sequence bomb
            frame_msg(key, 9000, stamp=h.stamp(3600)),                                        # an hour ahead
        ] + [frame_msg(key, 0, stream=f"intruder{i}") for i in range(30)]
        for i, u in enumerate(units):
            h.pub.publish(frame_msg(u, i))
            for bad in hostile[i::len(units)]:
                h.pub.publish(bad)
            time.sleep(0.15)
        assert h.wait(lambda: all(("det", s) in h.results for s in range(len(units)))), \
            (sorted(h.results), h.counters())
        assert all(h.results[("det", s)].latency.total_ms < ON_TIME_MS for s in range(len(units)))
        assert h.wait(lambda: h.counters().get("rejected", 0) >= 4 + 30 - 2)
    finally:
        edge.close()
        h.close()
    c = h.counters()
    for reason in ("sps", "sequence_jump", "stamp", "streams"):
        assert c.get(f"rejected_{reason}", 0) >= 1, (reason, c)
    assert c["decoded"] == len(units) + 2 and c["corrupt"] == 0 and c["lost"] == 0
    assert not h.receipts[("det", 2**64 - 1, "uniform/qp30")]


def test_h2c_server_publishes_the_decoded_picture_and_a_truthful_receipt_per_payload(rclpy_context):
    """README: h2c_server republishes each decoded picture on decoded_image and answers every
    payload with a LinkReceipt. The pictures equal the library decoder's, and decoded_ok is
    false exactly for the corrupt unit and the P-frames dropped while the decoder waits for the
    next keyframe."""
    from sensor_msgs.msg import Image

    from edge_offload.msg import DetectionArray, EncodedFrame
    from how2compress_ros.codec import H264Decoder
    from how2compress_ros.nodes.server_node import How2CompressServerNode
    from how2compress_ros.pipeline import EdgeSettings, How2CompressEdge
    from offload_common.image_conversion import image_msg_to_rgb
    from offload_common.nodes.qos import SENSOR_QOS
    from offload_common.nodes.runner import stamp_to_ns

    server = How2CompressServerNode(context=rclpy_context, parameter_overrides=[
        Parameter("detector", value="hog"), Parameter("shed_load", value=False)])
    images = {}
    h = Harness(rclpy_context, server, EncodedFrame, "encoded_frames", DetectionArray, "detections")
    h.node.create_subscription(Image, "decoded_image", lambda m: images.__setitem__(stamp_to_ns(m.header.stamp),
                                                                                   image_msg_to_rgb(m)), SENSOR_QOS)
    time.sleep(1.0)
    edge = How2CompressEdge(None, EdgeSettings(gop=4, preset="ultrafast"), "uniform/qp30")
    rng = np.random.default_rng(9)
    try:
        units = [u for _ in range(8) for u in edge.process(rng.integers(0, 255, (96, 128, 3), np.uint8))]
        sent = []
        for seq, u in enumerate(units):
            m = EncodedFrame()
            m.meta.format_version = m.meta.FORMAT_VERSION
            m.meta.header.stamp = h.stamp()
            m.meta.publish_stamp = h.stamp()
            m.meta.stream_id, m.meta.seq, m.meta.config_id = "det", seq, "uniform/qp30"
            m.codec, m.width, m.height, m.keyframe, m.data = "h264", 128, 96, u.keyframe, u.data
            m.crc32 = zlib.crc32(u.data) ^ (1 if seq == 1 else 0)         # seq 1: corrupt
            h.pub.publish(m)
            sent.append(m)
            time.sleep(0.1)
        assert h.wait(lambda: len(h.receipts) == len(units) and len(images) >= 5), (h.receipts, len(images))
    finally:
        edge.close()
        h.close()
    assert [u.keyframe for u in units] == [True, False, False, False, True, False, False, False]
    ok = {k[1]: v for k, v in h.receipts.items()}
    assert ok == {0: True, 1: False, 2: False, 3: False, 4: True, 5: True, 6: True, 7: True}
    decoder = H264Decoder()
    for m in sent:
        if ok[m.meta.seq]:
            (frame,) = decoder.decode(bytes(m.data), m.keyframe)
            np.testing.assert_array_equal(images[stamp_to_ns(m.meta.header.stamp)], frame.rgb)
        else:
            decoder.mark_lost()


def test_keyframe_requests_are_rate_limited_and_only_for_streams_served(rclpy_context):
    """README: after a loss the server asks the edge for a keyframe, at most once per
    keyframe_request_interval_s per stream; a flood of corrupt units must not become a flood of
    requests (each costs the edge an IDR picture), and a stream the server does not serve (a
    refused new stream id) gets none."""
    from edge_offload.msg import DetectionArray, EncodedFrame, KeyframeRequest
    from how2compress_ros.nodes.server_node import How2CompressServerNode
    from how2compress_ros.pipeline import EdgeSettings, How2CompressEdge
    from offload_common.nodes.qos import RESULT_QOS

    server = How2CompressServerNode(context=rclpy_context, parameter_overrides=[
        Parameter("detector", value="hog"), Parameter("keyframe_request_interval_s", value=0.5),
        Parameter("max_streams", value=1), Parameter("publish_decoded_image", value=False)])
    h = Harness(rclpy_context, server, EncodedFrame, "encoded_frames", DetectionArray, "detections")
    requests = []
    h.node.create_subscription(KeyframeRequest, "keyframe_request",
                               lambda m: requests.append((time.monotonic(), m)), RESULT_QOS)
    time.sleep(1.0)
    edge = How2CompressEdge(None, EdgeSettings(gop=1000, preset="ultrafast"), "uniform/qp30")
    rng = np.random.default_rng(2)

    def msg(unit, seq, stream="det", corrupt=False):
        m = EncodedFrame()
        m.meta.format_version = m.meta.FORMAT_VERSION
        m.meta.header.stamp = m.meta.publish_stamp = h.stamp()
        m.meta.stream_id, m.meta.seq, m.meta.config_id = stream, seq, "uniform/qp30"
        m.codec, m.width, m.height, m.keyframe, m.data = "h264", 128, 96, unit.keyframe, unit.data
        m.crc32 = zlib.crc32(unit.data) ^ int(corrupt)
        return m

    try:
        units = [u for _ in range(45) for u in edge.process(rng.integers(0, 255, (96, 128, 3), np.uint8))]
        h.pub.publish(msg(units[0], 0))                       # the stream starts and is served
        t0 = time.monotonic()
        for seq in range(1, 41):                              # 2 s of corrupt units at 20 Hz
            h.pub.publish(msg(units[seq], seq, corrupt=True))
            h.pub.publish(msg(units[0], 0, stream=f"other{seq}"))    # refused: max_streams 1
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        h.wait(lambda: h.counters().get("rejected_streams", 0) >= 40, 10)
        time.sleep(0.5)
    finally:
        edge.close()
        h.close()
    assert requests and {m.stream_id for _, m in requests} == {"det"}
    assert 2 <= len(requests) <= int(elapsed / 0.5) + 1, [round(t - t0, 2) for t, _ in requests]
    gaps = [b - a for (a, _), (b, _) in zip(requests, requests[1:])]
    assert all(g >= 0.4 for g in gaps), gaps                  # 0.5 s apart, less DDS jitter
    assert requests[0][1].last_good_seq == 0
