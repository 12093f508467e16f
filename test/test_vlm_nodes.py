"""A split vision-language model over real DDS: camera_source -> approxbit_edge -> approxbit_server
with a tiny LLaVA-OneVision snapshot (written by the test) and its codecs as the configuration
set. The server answers ``vqa_question`` in free text on vqa_answers; the question is changed at
run time through the parameter service; the probe switches the edge to float16 (DNN-Surgery)
and then edge_only. Every answer must equal the library's answer on the very payload the server
received (edge-only: on the frames the edge saw), the payload bits must equal the library's edge
on those frames, and a hostile payload is refused while the node keeps answering."""
import copy
import os
import shutil
import time

import numpy as np
import pytest
from approxbit_probe import ApproxBitProbe
from approxbit_probe import wait_while_running as _wait

from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

import rclpy  # noqa: E402

FIRST, SECOND = "llava_onevision/o2/enc/k16", "llava_onevision/o2/float16"
QUESTIONS = ("which way does the object move ?", "what colour is the object ?")
CLIP = 4

pytestmark = pytest.mark.skipif(shutil.which("approxbit_edge") is None, reason="node entry points not installed")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    from approxbit_ros.vlm.codec_training import VlmCodec
    from approxbit_ros.vlm.tiny_model import write_tiny_llava

    folder = write_tiny_llava(str(tmp_path_factory.mktemp("tiny-llava-ov")))
    VlmCodec.build(32, 16, True).save(os.path.join(folder, "approxbit"), split_layer=2)
    return folder


class Probe(ApproxBitProbe):
    def __init__(self, ctx):
        self.actions = []
        super().__init__(ctx, "vlm_test_probe", CLIP)

    def subscribe(self):
        from rcl_interfaces.srv import SetParameters

        from edge_offload.msg import ActionResult
        from offload_common.nodes.qos import RESULT_QOS

        self.node.create_subscription(ActionResult, "action_results", self.actions.append, RESULT_QOS)
        self.set_server_params = self.node.create_client(SetParameters, "/approxbit_server/set_parameters")

    def ask(self, question):
        """``ros2 param set /approxbit_server vqa_question ...`` through the service."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        assert self.set_server_params.wait_for_service(timeout_sec=10)
        req = SetParameters.Request(parameters=[Parameter("vqa_question", value=question).to_parameter_msg()])
        future = self.set_server_params.call_async(req)
        deadline = time.monotonic() + 10
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        return future.result().results[0]


def test_the_server_answers_a_question_asked_at_run_time_as_the_library_does(snapshot, rclpy_context):
    import torch

    probe = Probe(rclpy_context)
    common = {"backbone_path": snapshot, "clip_frames": CLIP, "clip_size": 32, "vlm_max_new_tokens": 4}
    nodes = [
        NodeProcess("camera_source", "camera_source", config_path("camera_actions.yaml"),
                    overrides={"rate_hz": 24.0}),
        NodeProcess("approxbit_edge", "approxbit_edge", config_path("approxbit_edge.yaml"),
                    overrides={**common, "config_id": FIRST, "clip_stride": CLIP, "vqa_question": QUESTIONS[0]}),
        NodeProcess("approxbit_server", "approxbit_server", config_path("approxbit_server.yaml"),
                    overrides={**common, "vqa_question": QUESTIONS[0]}),
    ]
    answers_to = lambda cid, q: [m for m in list(probe.answers.values()) if m.config_id == cid and m.question == q]  # noqa
    try:
        with ProcessGraph(nodes, echo=False) as graph:
            assert _wait(lambda: len(answers_to(FIRST, QUESTIONS[0])) >= 3 and probe.payloads, graph), \
                graph.output("approxbit_server")
            hostile = copy.deepcopy(next(iter(probe.payloads.values())))
            hostile.meta.stream_id, hostile.shape = "hostile", [16, 4, 2, 2]
            probe.inject.publish(hostile)
            assert not probe.ask("why " * 600).successful                   # too long: refused, the old question stays
            assert probe.ask(QUESTIONS[1]).successful
            assert _wait(lambda: len(answers_to(FIRST, QUESTIONS[1])) >= 3, graph), graph.output("approxbit_server")
            probe.decide(SECOND, 1)
            assert _wait(lambda: len(answers_to(SECOND, QUESTIONS[1])) >= 3, graph), graph.output("approxbit_edge")
            probe.decide("edge_only", 2)
            assert _wait(lambda: len(answers_to("edge_only", QUESTIONS[0])) >= 2, graph), graph.output("approxbit_edge")
            server_log = graph.output("approxbit_server")
            assert graph.running("approxbit_edge") and graph.running("approxbit_server")
    finally:
        probe.close()

    assert "llava_onevision" in server_log and "rejected payload seq" in server_log and "shape:" in server_log
    assert not probe.actions                                   # a vision-language model publishes no action labels

    from approxbit_ros.configurations import load_configurations
    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer, ClipBuffer
    from approxbit_ros.vlm.configurations import VlmAnswerer
    from offload_common.nodes.runner import stamp_to_ns

    torch.set_num_threads(1)
    configs = load_configurations(snapshot)
    configs.clip_frames, configs.clip_size = CLIP, 32
    server, answerer = ApproxBitServer(configs), VlmAnswerer(configs.backbone.split, 4)
    prepare = ClipBuffer(CLIP, CLIP, 32).prepare
    checked = {FIRST: 0, SECOND: 0, "edge_only": 0}
    for (seq, edge_only), ans in sorted(probe.answers.items()):
        assert ans.stream_id == "var" and 1 <= ans.answer_tokens <= 4 and 0.0 < ans.score <= 1.0
        assert ans.latency.total_ms > 0 and (ans.latency.payload_bytes > 0) != edge_only
        if edge_only:
            frames = probe.last_frames(stamp_to_ns(ans.header.stamp))
            if frames is None:
                continue
            final = ApproxBitEdge(configs, "edge_only").process(np.stack([prepare(f) for f in frames])).final_map
        else:
            pl = probe.payloads.get(seq)
            if pl is None:             # published before the probe's subscription matched
                continue
            fields = dict(config_id=pl.meta.config_id, backbone=pl.backbone, offload_index=pl.offload_index,
                          spatial_encoder=pl.spatial_encoder, codebook_size=pl.codebook_size, encoding=pl.encoding,
                          bit_order=pl.bit_order, shape=list(pl.shape), feature_shape=list(pl.feature_shape),
                          crc32=pl.crc32, data=bytes(pl.data))
            final = server.handle("lib", seq, **fields).final_map
            frames = probe.clip(stamp_to_ns(pl.clip_first_stamp), stamp_to_ns(ans.header.stamp))
            if frames is not None:     # and the edge sent what the library's edge sends for those frames
                out = ApproxBitEdge(configs, pl.meta.config_id).process(np.stack([prepare(f) for f in frames]))
                assert bytes(pl.data) == out.payload.data, (seq, pl.meta.config_id)
        want = answerer.answer(final, ans.question)
        assert (ans.answer, ans.answer_tokens) == (want.answer, want.tokens), (seq, ans.config_id)
        checked[ans.config_id] += 1
    assert all(n >= 2 for n in checked.values()), checked
