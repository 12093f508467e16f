"""The ApproxBit edge half on ONNX Runtime sends what the torch edge sends: the same bits for
every binary configuration, the same float codes to float precision, the same edge-only
prediction; and an execution provider this onnxruntime lacks is refused with what it has."""
import os

import numpy as np
import pytest

import onnxruntime  # noqa: E402,F401
import onnx  # noqa: E402,F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONE = os.path.join(ROOT, "models", "approxbit", "cnn3d-actions")


@pytest.fixture(scope="module")
def configs():
    import torch

    from approxbit_ros.configurations import ConfigurationSet

    torch.set_num_threads(1)
    return ConfigurationSet.from_pretrained(BACKBONE)


def test_every_configuration_sends_what_the_torch_edge_sends(configs):
    from approxbit_ros.configurations import EDGE_ONLY
    from approxbit_ros.data.synthetic_actions import SyntheticActions
    from approxbit_ros.onnx_edge import OnnxEdgeRuntime
    from approxbit_ros.pipeline import ApproxBitEdge

    runtime = OnnxEdgeRuntime(configs)
    clips = [SyntheticActions("test", 3)[i][0] for i in range(3)]
    kinds = set()
    for cid in configs.ids:
        ref, onnx = ApproxBitEdge(configs, cid), ApproxBitEdge(configs, cid, runtime=runtime)
        for clip in clips:
            a, b = ref.process(clip), onnx.process(clip)
            if cid == EDGE_ONLY:
                assert a.prediction.class_id == b.prediction.class_id
                assert abs(a.prediction.score - b.prediction.score) < 1e-4
                continue
            kind = configs.get(cid).kind
            kinds.add(kind)
            assert (a.payload.shape, a.payload.encoding, a.feature_shape) == (
                b.payload.shape, b.payload.encoding, b.feature_shape), cid
            if kind == "binary":
                assert a.payload.data == b.payload.data, cid           # the very same bits
            else:
                np.testing.assert_allclose(a.payload.decode(), b.payload.decode(), rtol=1e-4, atol=1e-4)
    assert kinds == {"binary", "deepcod", "float32"}


def test_missing_providers_are_refused_with_what_there_is():
    from approxbit_ros.onnx_edge import check_providers

    assert check_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="CPUExecutionProvider"):
        check_providers(["NoSuchExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(ValueError):
        check_providers([])


def test_edge_node_refuses_an_unknown_runtime(rclpy_context):
    from rclpy.parameter import Parameter

    from approxbit_ros.nodes.edge_node import ApproxBitEdgeNode

    with pytest.raises(ValueError, match="edge_runtime 'tensorflow'"):
        ApproxBitEdgeNode(context=rclpy_context, parameter_overrides=[Parameter("edge_runtime", value="tensorflow")])
