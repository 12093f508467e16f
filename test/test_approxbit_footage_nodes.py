"""A configuration set made entirely by the footage path, served over real DDS: a backbone
snapshot folder, label-free codec training on recorded video (approxbit_train_configs --footage
--set-folder), entropy models fitted on the same footage (approxbit_fit_entropy --footage) and
its lookup table (approxbit_profile --footage); then camera_source plays one of the recordings
into approxbit_edge -> approxbit_server with that set, and every published label equals the
library's prediction on the same clip, the payloads range-coded under the footage-fitted model."""
import json
import os
import shutil
import time

import numpy as np
import pytest
import torch

from offload_common.process_graph import NodeProcess, ProcessGraph, config_path
from test_approxbit_nodes import Probe, edge_clip_frame
from test_footage_training import moving_square, write_video

pytestmark = pytest.mark.skipif(shutil.which("approxbit_edge") is None, reason="node entry points not installed")
CONFIG = "cnn3d/o2/enc/k8"


@pytest.fixture(scope="module")
def footage_set(tmp_path_factory):
    from approxbit_ros.backbones.cnn3d import Cnn3dBackbone, Cnn3dConfig
    from approxbit_ros.profile_cli import main as profile
    from approxbit_ros.training.fit_entropy_cli import main as fit_entropy
    from approxbit_ros.training.train_configs_cli import main as train_configs

    root = tmp_path_factory.mktemp("footage_set")
    videos = root / "recordings"
    videos.mkdir()
    for i, shift in enumerate((2, -3, 1)):
        write_video(videos / f"run{i}.mp4", moving_square(90, shift, size=64, seed=i))
    torch.manual_seed(0)
    Cnn3dBackbone(Cnn3dConfig(num_classes=5)).save_pretrained(str(root / "backbone"))
    folder = root / "set"
    common = ["--backbone", str(root / "backbone")]
    assert train_configs(common + ["--footage", str(videos), "--set-folder", str(folder), "--segment-s", "3",
                                   "--only", "o2/enc/k8", "--epochs", "1", "--clips-per-epoch", "32",
                                   "--checkpoint-dir", str(root / "ckpt"), "--cache-dir", str(root / "cache")]) == 0
    record = json.loads((folder / "footage.json").read_text())
    assert record["footage"] == [str(videos)] and record["segment_s"] == 3.0
    assert fit_entropy(["--backbone", str(folder), "--footage", "--cache-dir", str(root / "cache")]) == 0
    assert profile(["--backbone", str(folder), "--footage", "--out", str(folder / "lut_cpu.json"), "--clips", "20",
                    "--timing-clips", "2", "--cache-dir", str(root / "cache")]) == 0
    return folder, videos / "run0.mp4"


def test_the_set_has_everything_the_nodes_and_the_monitor_read(footage_set):
    folder, _ = footage_set
    names = sorted(os.listdir(folder / "configs"))
    assert names == ["o2_enc_k8.entropy.safetensors", "o2_enc_k8.json", "o2_enc_k8.safetensors"]
    meta = json.loads((folder / "configs" / "o2_enc_k8.json").read_text())
    assert meta["training"]["distill_temperature"] > 0 and meta["training"]["keep_best"]
    assert 0 <= meta["test"]["agree_top1"] <= 1 and "footage" in meta
    lut = json.loads((folder / "lut_cpu.json").read_text())
    assert "agreement with the uncompressed backbone" in lut["task"]
    entries = {e["config_id"]: e for e in lut["entries"]}
    assert entries["edge_only"]["accuracy"] == 1.0 and CONFIG in entries


def test_nodes_serve_a_footage_trained_set_over_dds(footage_set, rclpy_context):
    from edge_offload.msg import BinaryFeatures

    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer
    from offload_common.nodes.runner import stamp_to_ns

    folder, video = footage_set
    probe = Probe(rclpy_context)
    nodes = [
        NodeProcess("camera_source", "camera_source", config_path("camera_footage.yaml"),
                    overrides={"uri": str(video), "rate_hz": 30.0}),
        NodeProcess("approxbit_edge", "approxbit_edge", config_path("approxbit_edge.yaml"),
                    overrides={"backbone_path": str(folder), "config_id": CONFIG, "vqa_question": ""}),
        NodeProcess("approxbit_server", "approxbit_server", config_path("approxbit_server.yaml"),
                    overrides={"backbone_path": str(folder), "vqa_question": ""}),
    ]
    try:
        with ProcessGraph(nodes, echo=False) as graph:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and len(probe.results) < 6:
                assert graph.running("approxbit_edge") and graph.running("approxbit_server")
                time.sleep(0.2)
            server_log = graph.output("approxbit_server")
    finally:
        probe.close()
    assert len(probe.results) >= 6, server_log
    configs = ConfigurationSet.from_pretrained(str(folder))
    edge, server = ApproxBitEdge(configs, CONFIG), ApproxBitServer(configs)
    checked = 0
    for (seq, _), res in sorted(probe.results.items()):
        assert res.config_id == CONFIG and not res.edge_only
        pl = probe.payloads.get(seq)
        if pl is None:
            continue
        frames = probe.clip(stamp_to_ns(pl.clip_first_stamp), stamp_to_ns(res.header.stamp))
        if frames is None:
            continue
        out = edge.process(np.stack([edge_clip_frame(f) for f in frames]))
        assert bytes(pl.data) == out.payload.data and pl.encoding == BinaryFeatures.ENCODING_RANGE_CODED
        pred = server.handle("lib", checked, **out.wire_fields(configs.name)).prediction
        assert (res.class_id, list(res.topk_ids)) == (pred.class_id, pred.topk_ids)
        checked += 1
    assert checked >= 3, (checked, len(probe.results))
    assert "rejected payload" not in server_log
