"""The ``vqa_question`` parameter of the ApproxBit nodes: a question can be asked at start or
later with ``ros2 param set``; one the head cannot read is refused with the reason and the old
question stays; without a head a question is a start-up error that says what to do."""
import os

import pytest

import rclpy  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONE = os.path.join(ROOT, "models", "approxbit", "cnn3d-actions")
pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(BACKBONE, "vqa", "model.safetensors")),
                                reason="trained VQA head not present")


def _server(ctx, **params):
    from approxbit_ros.nodes.server_node import ApproxBitServerNode

    params.setdefault("backbone_path", BACKBONE)
    return ApproxBitServerNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def _ask(node, question):
    result, = node.set_parameters([Parameter("vqa_question", value=question)])
    return result


def test_a_question_is_asked_changed_and_a_bad_one_refused(rclpy_context):
    node = _server(rclpy_context)
    try:
        assert node.vqa.question == "" and node.vqa.head is not None       # no question: no answers
        assert _ask(node, "where is the object at the end?").successful
        assert node.vqa.question == "where is the object at the end?"
        result = _ask(node, "quelle heure est-il?")
        assert not result.successful and "no word the answer head knows" in result.reason
        assert node.vqa.question == "where is the object at the end?"
        assert _ask(node, "").successful and node.vqa.question == ""
    finally:
        node.destroy_node()


def test_the_edge_node_takes_the_same_question(rclpy_context, monkeypatch):
    from approxbit_ros.nodes.edge_node import ApproxBitEdgeNode

    monkeypatch.chdir(ROOT)
    node = ApproxBitEdgeNode(context=rclpy_context, parameter_overrides=[
        Parameter("vqa_question", value="does the object rotate?")])
    try:
        assert node.vqa.question == "does the object rotate?"
        assert not _ask(node, "???").successful
    finally:
        node.destroy_node()


def test_a_question_without_a_head_or_with_unreadable_words_stops_the_start(rclpy_context, tmp_path):
    import shutil

    with pytest.raises(FileNotFoundError, match="vqa_head_path: no VQA head in .*approxbit_train_vqa"):
        _server(rclpy_context, vqa_head_path=str(tmp_path / "none"))
    bare = tmp_path / "backbone"                # a backbone folder with no vqa/ beside it
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(BACKBONE, name), bare / name)
    node = _server(rclpy_context, backbone_path=str(bare))      # no question: starts, answers nothing
    try:
        assert node.vqa.head is None
        result = _ask(node, "what is happening?")
        assert not result.successful and "no VQA head in" in result.reason
    finally:
        node.destroy_node()
    with pytest.raises(ValueError, match="vqa_question: no VQA head in"):
        _server(rclpy_context, backbone_path=str(bare), vqa_question="what is happening?")
    with pytest.raises(ValueError, match="vqa_question: question 'xyzzy'"):
        _server(rclpy_context, vqa_question="xyzzy")


def test_a_failing_head_is_counted_and_the_clip_goes_on(rclpy_context):
    import torch

    from edge_offload.msg import ActionResult

    node = _server(rclpy_context, vqa_question="what is happening?")
    try:
        result = ActionResult(stream_id="var", seq=7, config_id="cnn3d/o2/enc/k4")
        node.vqa.publish(torch.zeros(1, 64, 3, 3, 3), result)       # a map of the wrong shape
        assert node.vqa.failed == 1 and node.vqa.answered == 0
        node.vqa.publish(torch.zeros(1, 64, 4, 4, 4), result)
        assert node.vqa.failed == 1 and node.vqa.answered == 1
    finally:
        node.destroy_node()
