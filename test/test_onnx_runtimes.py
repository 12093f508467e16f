"""Every model on ONNX Runtime (CPU provider here; the same graphs take the CUDA / TensorRT
providers on a Jetson) gives what its torch model gives, within the stated tolerances:
ApproxBit's server half for every configuration of both backbones (same top-k labels, scores
within 1e-4), the emphasis model (the same level on ≥ 99.9 % of macroblocks of real footage;
its antialiased downsampling as convolutions equals torch's to 1e-6), the SSDLite detector (the
same boxes after NMS: coordinates within 0.01 px, scores within 1e-4) and the VQA head (the same
answers and candidates). Exported graphs are cached by model hash, shape and opset."""
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import onnxruntime  # noqa: E402,F401

from footage import footage
from offload_common.onnx_runtime import OnnxSettings, cached_export, model_key

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONES = [os.path.join(ROOT, "models", "approxbit", b) for b in ("cnn3d-actions", "videomae-actions")]
EA_MODEL = os.path.join(ROOT, "models", "how2compress", "ea-mobilevitv2-050-d2-vtest-bikes")


def video_frames(name, count, step=1, size=None):
    import cv2

    cap = cv2.VideoCapture(footage(name))
    out = []
    for i in range(count * step):
        ok, bgr = cap.read()
        if not ok:
            break
        if i % step == 0:
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            out.append(cv2.resize(rgb, size) if size else rgb)
    assert len(out) == count
    return out


@pytest.mark.parametrize("backbone", BACKBONES, ids=os.path.basename)
def test_approxbit_server_half_gives_the_torch_predictions_for_every_configuration(backbone):
    from approxbit_ros.configurations import EDGE_ONLY, ConfigurationSet
    from approxbit_ros.data.synthetic_actions import SyntheticActions
    from approxbit_ros.onnx_server import OnnxServerRuntime
    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer

    torch.set_num_threads(2)
    configs = ConfigurationSet.from_pretrained(backbone)
    reference = ApproxBitServer(configs)
    onnx = ApproxBitServer(configs, runtime=OnnxServerRuntime(configs, OnnxSettings(threads=2)))
    clips = [SyntheticActions("test", 4)[i][0] for i in range(4)]
    checked, step = set(), 0
    for cid in configs.ids:
        if cid == EDGE_ONLY:
            continue
        edge = ApproxBitEdge(configs, cid)
        for clip in clips:
            step += 1
            out = edge.process(clip)
            fields = out.wire_fields(configs.name)
            a = reference.handle("clips", step, **fields)
            b = onnx.handle("clips", step, **fields)
            assert a.prediction.topk_labels == b.prediction.topk_labels, cid
            np.testing.assert_allclose(a.prediction.topk_scores, b.prediction.topk_scores, rtol=0, atol=1e-4)
            np.testing.assert_allclose(a.final_map.numpy(), b.final_map.numpy(), rtol=1e-3, atol=1e-3)
            checked.add(configs.get(cid).kind)
    assert checked == {"binary", "deepcod", "float32"}


def test_antialiased_downsampling_as_convolutions_equals_torch():
    from how2compress_ros.emphasis.resize import antialiased_downsample

    x = torch.rand(2, 3, 90, 161)
    for d in (2, 3, 4):
        ref = F.interpolate(x, scale_factor=1 / d, mode="bilinear", align_corners=False, antialias=True)
        got = antialiased_downsample(x, d)
        assert got.shape == ref.shape and (got - ref).abs().max() < 1e-6, d


@pytest.mark.skipif(not os.path.isfile(os.path.join(EA_MODEL, "model.safetensors")), reason="EA model not trained")
def test_emphasis_model_levels_match_on_real_footage(tmp_path):
    from how2compress_ros.emphasis.model import EmphasisModel
    from how2compress_ros.emphasis.onnx_model import OnnxEmphasisModel

    torch.set_num_threads(2)
    model = EmphasisModel.from_pretrained(EA_MODEL)
    onnx = OnnxEmphasisModel(model, OnnxSettings(threads=2, cache_dir=str(tmp_path)))
    same = total = 0
    for rgb in video_frames("vtest.avi", 8, step=25, size=(640, 360)) + video_frames("bikes.mp4", 4, step=40):
        a, b = model.predict_levels(rgb), onnx.predict_levels(rgb)
        assert a.shape == b.shape and b.dtype == np.uint8
        same, total = same + int((a == b).sum()), total + a.size
    assert same / total >= 0.999, same / total
    assert model.exportable is False                       # the torch model is left as it was
    assert len(list(tmp_path.glob("ea-*.onnx"))) == 2       # one graph per frame size


def test_ssdlite_detections_match_after_nms():
    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector

    torch.set_num_threads(2)
    reference, onnx = SSDLitePersonDetector(), SSDLitePersonDetector(onnx=OnnxSettings(threads=2))
    boxes = 0
    for rgb in video_frames("vtest.avi", 10, step=20) + video_frames("carphone_pristine.mp4", 3, step=30):
        a, b = reference.detect(rgb), onnx.detect(rgb)
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert abs(x.score - y.score) < 1e-4
            np.testing.assert_allclose([x.x_min, x.y_min, x.x_max, x.y_max], [y.x_min, y.y_min, y.x_max, y.y_max],
                                       rtol=0, atol=0.01)
        boxes += len(a)
    assert boxes >= 20                                       # people were found, so boxes were compared


def test_vqa_head_answers_match():
    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.data.synthetic_actions import SyntheticActions
    from approxbit_ros.pipeline import ApproxBitEdge
    from approxbit_ros.vqa.model import VqaHead, vqa_folder
    from approxbit_ros.vqa.onnx_head import OnnxVqaHead
    from approxbit_ros.vqa.questions import QUESTION_TYPES

    configs = ConfigurationSet.from_pretrained(BACKBONES[0])
    head = VqaHead.from_pretrained(vqa_folder(BACKBONES[0]))
    onnx = OnnxVqaHead(head)
    edge = ApproxBitEdge(configs, "edge_only")
    maps = [edge.process(SyntheticActions("test", 3)[i][0]).final_map for i in range(3)]
    lengths = set()
    for question in [p for q in QUESTION_TYPES for p in q.phrasings]:
        for m in maps:
            a, b = head.answer(m, question), onnx.answer(m, question)
            assert (a.answer, a.candidates) == (b.answer, b.candidates), question
            np.testing.assert_allclose(a.candidate_scores, b.candidate_scores, rtol=0, atol=1e-5)
        lengths.add(head.encode_questions([question])[0].shape[1])
    assert len(onnx._sessions) == len(lengths) >= 2


def test_exports_are_cached_by_weights_and_shape(tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    x = torch.zeros(1, 3, 16, 16)
    first = cached_export(module, x, "toy", str(tmp_path))
    (path,) = list(tmp_path.glob("toy-*.onnx"))
    os.utime(path, (1, 1))
    assert cached_export(module, x, "toy", str(tmp_path)) == first and path.stat().st_mtime == 1   # read, not redone
    assert model_key(module, torch.zeros(1, 3, 32, 32)) != model_key(module, x)
    with torch.no_grad():
        module[0].weight[0, 0, 0, 0] += 1.0
    cached_export(module, x, "toy", str(tmp_path))
    assert len(list(tmp_path.glob("toy-*.onnx"))) == 2
    assert not list(tmp_path.glob("*.part"))


def test_nodes_refuse_an_unknown_runtime_or_missing_providers_in_one_line(rclpy_context):
    from rclpy.parameter import Parameter

    from approxbit_ros.nodes.server_node import ApproxBitServerNode
    from how2compress_ros.nodes.server_node import How2CompressServerNode

    with pytest.raises(ValueError, match="runtime 'tensorrt': expected one of torch, onnxruntime"):
        How2CompressServerNode(context=rclpy_context, parameter_overrides=[Parameter("runtime", value="tensorrt")])
    with pytest.raises(ValueError, match=r"providers \['TensorrtExecutionProvider'\] not available; this onnxruntime "
                                         "has .*CPUExecutionProvider"):
        ApproxBitServerNode(context=rclpy_context, parameter_overrides=[
            Parameter("runtime", value="onnxruntime"), Parameter("onnx_providers", value=["TensorrtExecutionProvider"])])


def test_onnx_sessions_do_not_spin_unless_asked():
    from offload_common.onnx_runtime import OnnxModule

    module = torch.nn.Linear(4, 2)
    quiet = OnnxModule(module, torch.zeros(1, 4), OnnxSettings())
    assert quiet.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    spinning = OnnxModule(module, torch.zeros(1, 4), OnnxSettings(spin=True))
    with pytest.raises(RuntimeError, match="does not have configuration"):      # ONNX Runtime's default: spin
        spinning.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")


def test_node_settings_cache_exports_in_the_users_cache_folder_by_default():
    from types import SimpleNamespace

    from offload_common.nodes.onnx_params import ONNX_PARAMETERS, onnx_settings

    defaults = SimpleNamespace(**{p.name: p.default for p in ONNX_PARAMETERS})
    settings = onnx_settings(defaults, "onnxruntime", 3)
    assert settings.cache_dir == os.path.expanduser("~/.cache/edge_offload/onnx") and settings.threads == 3
    assert onnx_settings(defaults, "torch", 3) is None
    assert onnx_settings(SimpleNamespace(**{**vars(defaults), "onnx_cache_dir": ""}), "onnxruntime", 1).cache_dir == ""
