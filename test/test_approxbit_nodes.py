"""ApproxBit over real DDS: camera_source (synthetic action clips) -> approxbit_edge ->
approxbit_server. A probe node in this process sees the camera frames and the payloads,
switches the edge's configuration twice (to another offload point, then to edge_only) with
OffloadConfig decisions, and injects malformed payloads. The published labels, and the answers to
the VQA question both nodes are given, must equal the library's on the same clips, for every
configuration used; the server must reject the bad payloads and keep serving, and accept a
stream that starts over (a restarted edge)."""
import os
import shutil
import time

import numpy as np
import pytest
from approxbit_probe import ApproxBitProbe
from approxbit_probe import wait_while_running as _wait

from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

import rclpy  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONE = os.path.join(ROOT, "models", "approxbit", "cnn3d-actions")
FIRST, SECOND = "cnn3d/o2/enc/k4", "cnn3d/o1/noenc/k8"
QUESTION = "which way does the object move?"

pytestmark = [
    pytest.mark.skipif(shutil.which("approxbit_edge") is None, reason="node entry points not installed"),
    pytest.mark.skipif(not os.path.isfile(os.path.join(BACKBONE, "model.safetensors")),
                       reason="trained ApproxBit backbone not present"),
    pytest.mark.skipif(not os.path.isfile(os.path.join(BACKBONE, "vqa", "model.safetensors")),
                       reason="trained VQA head not present"),
]


class Probe(ApproxBitProbe):
    def __init__(self, ctx):
        self.results, self.receipts = {}, []
        super().__init__(ctx, "approxbit_test_probe", 16)

    def subscribe(self):
        from edge_offload.msg import ActionResult, LinkReceipt
        from offload_common.nodes.qos import RESULT_QOS

        self.node.create_subscription(ActionResult, "action_results", self.on_result, RESULT_QOS)
        self.node.create_subscription(LinkReceipt, "link_receipts", self.receipts.append, RESULT_QOS)

    def on_result(self, msg):
        self.results[(msg.seq, msg.edge_only)] = msg


def _malformed(good):
    """Copies of a good payload that the server must refuse."""
    import copy
    import zlib

    out = []
    for i, change in enumerate(["config", "shape", "length", "crc"]):
        m = copy.deepcopy(good)
        m.meta.stream_id, m.meta.seq = "bogus", i
        if change == "config":
            m.meta.config_id = "cnn3d/o5/enc/k99"
        elif change == "shape":
            m.shape = [m.shape[0], 1, 2, 3]
        elif change == "length":
            m.data = bytes(m.data)[:-3]
            m.crc32 = zlib.crc32(m.data)
        else:
            m.crc32 ^= 0xFFFF
        out.append(m)
    return out


def _restarted(good):
    """A good payload on its own stream, then the same numbered lower with a later capture stamp
    (an edge that restarted): the server must accept both."""
    import copy

    first, second = copy.deepcopy(good), copy.deepcopy(good)
    first.meta.stream_id = second.meta.stream_id = "restarting"
    first.meta.seq, second.meta.seq = 10_000, 9_000
    second.meta.header.stamp.sec += 1
    return [first, second]


@pytest.mark.parametrize("edge_runtime", ["torch", "onnxruntime"])
def test_published_labels_equal_the_library_for_every_configuration(edge_runtime, rclpy_context):
    """With either runtime on both nodes (the server's ``runtime`` follows the edge's) the
    published results and payload bits equal the torch library's."""
    import torch

    probe = Probe(rclpy_context)
    nodes = [
        NodeProcess("camera_source", "camera_source", config_path("camera_actions.yaml"),
                    overrides={"rate_hz": 40.0}),
        NodeProcess("approxbit_edge", "approxbit_edge", config_path("approxbit_edge.yaml"),
                    overrides={"backbone_path": BACKBONE, "config_id": FIRST, "edge_runtime": edge_runtime,
                               "vqa_question": QUESTION}),
        NodeProcess("approxbit_server", "approxbit_server", config_path("approxbit_server.yaml"),
                    overrides={"backbone_path": BACKBONE, "vqa_question": QUESTION, "runtime": edge_runtime}),
    ]
    try:
        with ProcessGraph(nodes, echo=False) as graph:
            by_config = lambda cid: [m for (s, e), m in list(probe.results.items()) if m.config_id == cid]  # noqa
            # results and payloads are two topics whose subscriptions match at their own pace: a
            # fresh machine once had four results before the probe had seen one payload
            assert _wait(lambda: len(by_config(FIRST)) >= 4 and probe.payloads, graph), graph.output("approxbit_edge")
            good = next(iter(probe.payloads.values()))
            for bad in _malformed(good):
                probe.inject.publish(bad)
            for restarted in _restarted(good):
                probe.inject.publish(restarted)
            probe.decide(SECOND, 1)
            assert _wait(lambda: len(by_config(SECOND)) >= 4, graph), graph.output("approxbit_edge")
            probe.decide("edge_only", 2)
            assert _wait(lambda: len(by_config("edge_only")) >= 3, graph), graph.output("approxbit_edge")
            probe.decide("cnn3d/o9/enc/k1", 3)                       # unknown: logged, ignored
            time.sleep(1.5)
            edge_log, server_log = graph.output("approxbit_edge"), graph.output("approxbit_server")
            assert graph.running("approxbit_edge") and graph.running("approxbit_server")
    finally:
        probe.close()

    assert ("edge half on CPUExecutionProvider" in edge_log) == (edge_runtime == "onnxruntime"), edge_log
    assert ("on ONNX Runtime (CPUExecutionProvider)" in server_log) == (edge_runtime == "onnxruntime"), server_log
    assert server_log.count("rejected payload") == 4, server_log
    assert "stream 'restarting' starts over at seq 9000" in server_log
    assert {(r.seq, r.decoded_ok) for r in probe.receipts if r.stream_id == "restarting"} == {(10000, True),
                                                                                                (9000, True)}
    for reason in ("config:", "shape:", "bytes for", "CRC-32 mismatch"):
        assert reason in server_log
    assert "switched to cnn3d/o1/noenc/k8" in edge_log and "ignoring monitor decision" in edge_log
    bogus = [r for r in probe.receipts if r.stream_id == "bogus"]
    assert len(bogus) == 4 and not any(r.decoded_ok for r in bogus)

    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer
    from approxbit_ros.vqa.model import VqaHead, vqa_folder
    from offload_common.nodes.runner import stamp_to_ns

    torch.set_num_threads(1)
    configs = ConfigurationSet.from_pretrained(BACKBONE)
    edge, server = ApproxBitEdge(configs, FIRST), ApproxBitServer(configs)
    head = VqaHead.from_pretrained(vqa_folder(BACKBONE))
    checked = {FIRST: 0, SECOND: 0, "edge_only": 0}
    answered = dict.fromkeys(checked, 0)
    for (seq, edge_only), res in sorted(probe.results.items()):
        if res.stream_id != "var":
            continue
        if edge_only:             # edge-only clips end at the result's stamp
            frames = probe.last_frames(stamp_to_ns(res.header.stamp))
        else:
            pl = probe.payloads.get(seq)
            if pl is None:       # published before the probe's subscription matched (volatile QoS)
                continue
            assert pl.meta.config_id == res.config_id
            assert len(pl.data) == res.latency.payload_bytes
            frames = probe.clip(stamp_to_ns(pl.clip_first_stamp), stamp_to_ns(res.header.stamp))
        if frames is None:       # the probe missed a frame the edge saw (best-effort camera QoS)
            continue
        clip = np.stack([edge_clip_frame(f) for f in frames])
        edge.set_config(res.config_id)
        out = edge.process(clip)
        lib = out if edge_only else server.handle("lib", seq, **out.wire_fields(configs.name))
        pred = lib.prediction
        assert (res.label, res.class_id) == (pred.label, pred.class_id), (seq, res.config_id)
        ans = probe.answers.get((seq, edge_only))
        if ans is not None:         # the same answer the library gives from the same feature map
            want = head.answer(lib.final_map, QUESTION)
            assert (ans.question, ans.answer, ans.config_id) == (QUESTION, want.answer, res.config_id)
            assert list(ans.candidates) == list(want.candidates) and abs(ans.score - want.score) < 1e-3
            assert ans.latency.total_ms >= res.latency.total_ms
            answered[res.config_id] += 1
        assert list(res.topk_ids) == pred.topk_ids
        if not edge_only:       # the very same bits, from either runtime (README: identical bits)
            assert bytes(probe.payloads[seq].data) == out.payload.data, (seq, res.config_id, edge_runtime)
        checked[res.config_id] += 1
    assert all(n >= 2 for n in checked.values()), checked
    assert all(n >= 1 for n in answered.values()), answered
    # the committed configurations have entropy models: their payloads crossed DDS range-coded
    from edge_offload.msg import BinaryFeatures

    from approxbit_ros.codec.wire import ENCODING_RANGE_CODED

    assert BinaryFeatures.ENCODING_RANGE_CODED == ENCODING_RANGE_CODED
    assert any(p.encoding == BinaryFeatures.ENCODING_RANGE_CODED for p in probe.payloads.values())


def edge_clip_frame(rgb):
    from approxbit_ros.pipeline import ClipBuffer

    return ClipBuffer(16, 16, 64).prepare(rgb)
