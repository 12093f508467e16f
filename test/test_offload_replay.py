"""Field runs recorded and replayed: both methods' nodes run over DDS with offload_recorder
recording them; offload_replay feeds the recorded payloads through the server library again and
finds every recorded result identical (ApproxBit labels and top-k scores, How2Compress boxes);
a result changed in the bag is found; the link trace it extracts loads as the adaptive
experiments' --trace (test_recording.py)."""
import json
import os
import shutil
import subprocess
import time

import pytest

from footage import footage
from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

import rclpy  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONE = os.path.join(ROOT, "models", "approxbit", "cnn3d-actions")

pytestmark = pytest.mark.skipif(shutil.which("offload_recorder") is None, reason="node entry points not installed")


class ResultCounter:
    def __init__(self, ctx, msg_type, topic):
        from rclpy.executors import SingleThreadedExecutor
        import threading

        from offload_common.nodes.qos import RESULT_QOS

        self.node = rclpy.create_node("replay_test_counter", context=ctx)
        self.count = 0
        self.node.create_subscription(msg_type, topic, self._on, RESULT_QOS)
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        threading.Thread(target=self.ex.spin, daemon=True).start()

    def _on(self, msg):
        self.count += 1

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()


def record_run(ctx, bag, nodes, msg_type, topic, results=8, timeout=120):
    counter = ResultCounter(ctx, msg_type, topic)
    recorder = NodeProcess("offload_recorder", "offload_recorder", config_path("offload_recorder.yaml"),
                           overrides={"output": str(bag)})
    graph = ProcessGraph([recorder] + nodes, echo=False)
    try:
        # the recorder first, and recording before any node starts: a recording that begins after
        # How2Compress's first keyframe holds payloads no replay can decode
        graph.start_one("offload_recorder")
        deadline = time.monotonic() + 60
        while "recording" not in graph.output("offload_recorder") and time.monotonic() < deadline:
            assert graph.running("offload_recorder"), graph.output("offload_recorder")
            time.sleep(0.1)
        for n in nodes:
            graph.start_one(n.name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and counter.count < results:
            assert all(graph.running(n.name) for n in nodes), graph.output(nodes[-1].name)
            time.sleep(0.2)
        assert counter.count >= results, graph.output(nodes[-1].name)
        time.sleep(1.0)
        graph.stop_one(nodes[0].name)                 # the camera first: nothing left in flight
        time.sleep(2.0)
    finally:
        graph.stop()
        counter.close()
    assert list(bag.glob("split_*/metadata.yaml")), "the recorder did not close its bag"


def replay(bag, *extra):
    proc = subprocess.run(["offload_replay", str(bag), *extra], capture_output=True, text=True, timeout=300)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else {}), proc.stderr


@pytest.mark.skipif(not os.path.isfile(os.path.join(BACKBONE, "model.safetensors")), reason="backbone not trained")
def test_approxbit_replay_reproduces_every_recorded_result_and_finds_a_changed_one(rclpy_context, tmp_path):
    from edge_offload.msg import ActionResult

    bag = tmp_path / "rec"
    record_run(rclpy_context, bag, [
        NodeProcess("camera_source", "camera_source", config_path("camera_actions.yaml"), overrides={"rate_hz": 40.0}),
        NodeProcess("approxbit_edge", "approxbit_edge", config_path("approxbit_edge.yaml"),
                    overrides={"backbone_path": BACKBONE, "config_id": "cnn3d/o2/enc/k4"}),
        NodeProcess("approxbit_server", "approxbit_server", config_path("approxbit_server.yaml"),
                    overrides={"backbone_path": BACKBONE})], ActionResult, "action_results")
    code, out, err = replay(bag, "--backbone-path", BACKBONE)
    rep = out["edge_offload/msg/BinaryFeatures"]
    assert code == 0 and rep["all_identical"], (out, err)
    assert rep["compared"] >= 5 and rep["identical"] == rep["compared"]
    # another model version gives other results, and the replay says so: a copy of the backbone
    # whose classifier bias favours one class
    import safetensors.torch as st

    other = tmp_path / "other"
    shutil.copytree(BACKBONE, other)
    weights = st.load_file(str(other / "model.safetensors"))
    bias = next(k for k in weights if k.endswith("bias") and weights[k].numel() == 13)
    weights[bias][3] += 50.0
    st.save_file(weights, str(other / "model.safetensors"))
    code, out, _ = replay(bag, "--backbone-path", str(other))
    rep = out["edge_offload/msg/BinaryFeatures"]
    assert code == 1 and not rep["all_identical"] and rep["mismatches"]


def test_h2c_replay_reproduces_every_recorded_detection(rclpy_context, tmp_path):
    from edge_offload.msg import DetectionArray

    bag = tmp_path / "rec"
    record_run(rclpy_context, bag, [
        NodeProcess("camera_source", "camera_source", config_path("camera_source.yaml"),
                    overrides={"source": "video", "uri": footage("carphone_pristine.mp4"), "rate_hz": 6.0,
                               "width": 0, "height": 0}),
        NodeProcess("h2c_edge", "h2c_edge", config_path("h2c_edge.yaml"),
                    overrides={"model_path": "", "config_id": "uniform/qp30"}),
        NodeProcess("h2c_server", "h2c_server", config_path("h2c_server.yaml"))], DetectionArray, "detections")
    code, out, err = replay(bag)
    rep = out["edge_offload/msg/EncodedFrame"]
    assert code == 0 and rep["all_identical"], (out, err)
    assert rep["compared"] >= 5 and rep["payloads"] >= rep["compared"]
    code, _, err = replay(bag, "--link-trace", str(tmp_path / "link.csv"))       # no monitor ran
    assert code == 2 and "has no offload_config decision" in err and "Traceback" not in err
