"""The question the ApproxBit nodes answer about every clip (``vqa_question``), shared by the
server and the edge node (which answers in edge-only mode). The answer head is loaded at start
from ``vqa_head_path`` (default ``<backbone_path>/vqa``) when that folder exists, so a question
can be set later with ``ros2 param set <node> vqa_question "..."``; a question the head cannot
read (no word it knows) is refused with the reason, words it does not know are logged. With a
vision-language model as the backbone (``backbone_path`` a LLaVA-OneVision snapshot) its language
model answers any question in free text instead (``vlm_max_new_tokens``)."""
from __future__ import annotations

import copy
import os
import time

from rcl_interfaces.msg import SetParametersResult

from approxbit_ros.nodes.results import fill_vqa_answer
from approxbit_ros.vqa.model import QuestionError, VqaHead, vqa_folder
from edge_offload.msg import VqaAnswer
from offload_common.nodes.params import Param, resolve_data_path
from offload_common.nodes.qos import RESULT_QOS

PARAM = "vqa_question"
VQA_PARAMETERS = (
    Param(PARAM, "", "question answered about every clip, published as VqaAnswer on vqa_answers (e.g. 'which way "
          "does the object move?'); empty: no answers. Set at run time to ask another"),
    Param("vqa_head_path", "", "VQA head folder (approxbit_train_vqa; default: <backbone_path>/vqa)", read_only=True),
    Param("vlm_codecs_path", "", "with a vision-language model snapshot as backbone_path: its codec folder "
          "(approxbit_train_vlm_codecs; default <backbone_path>/approxbit)", read_only=True),
    Param("vlm_max_new_tokens", 32, "with a vision-language model: the longest answer, in tokens (greedy)",
          read_only=True, range=(1, 4096)),
)


def vlm_answerer(configs, max_new_tokens: int):
    """The language model's answerer when ``configs`` is a vision-language model's set, else None."""
    if configs.labels:
        return None
    from approxbit_ros.vlm.configurations import VlmAnswerer

    return VlmAnswerer(configs.backbone.split, max_new_tokens)


class VqaQuestion:
    """Holds the head and the current question; ``publish`` answers it about one clip."""

    def __init__(self, node, backbone_path: str, head_path: str, question: str, device, onnx=None, answerer=None):
        """``onnx``: None (torch) or the node's ``OnnxSettings`` (the head on ONNX Runtime).
        ``answerer``: a vision-language model's ``VlmAnswerer``, which replaces the head."""
        self.node, self.question, self.answered, self.failed = node, "", 0, 0
        folder = resolve_data_path(head_path) if head_path else vqa_folder(resolve_data_path(backbone_path))
        if answerer is not None and head_path:
            raise ValueError("vqa_head_path: a vision-language model answers itself; leave it empty")
        if head_path and not os.path.isdir(folder):
            raise FileNotFoundError(f"vqa_head_path: no VQA head in {folder} (train one with approxbit_train_vqa)")
        if answerer is not None:
            self.head = answerer
        else:
            self.head = VqaHead.from_pretrained(folder).to(device) if os.path.isdir(folder) else None
        if self.head is not None and answerer is None and onnx is not None:
            from approxbit_ros.vqa.onnx_head import OnnxVqaHead

            self.head = OnnxVqaHead(self.head, onnx)
        self.folder = folder
        error = self._set(question)
        if error:
            raise ValueError(f"{PARAM}: {error}")
        self.pub = node.create_publisher(VqaAnswer, "vqa_answers", RESULT_QOS)
        node.add_on_set_parameters_callback(self._on_set_parameters)

    def _set(self, question: str):
        """Ask ``question`` from the next clip on; returns why not, or None."""
        question = question.strip()
        if question:
            if self.head is None:
                return f"no VQA head in {self.folder} (train one with approxbit_train_vqa, or set vqa_head_path)"
            try:
                unknown = self.head.check_question(question)
            except QuestionError as exc:
                return str(exc)
            if unknown:
                self.node.get_logger().warning(f"question {question!r}: words the answering model has not seen "
                                               f"(ignored or read as unknown): {', '.join(unknown)}")
            self.node.get_logger().info(f"answering {question!r} about every clip on vqa_answers")
        self.question = question
        return None

    def _on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == PARAM:
                error = self._set(str(param.value))
                if error:
                    return SetParametersResult(successful=False, reason=error)
        return SetParametersResult(successful=True)

    def publish(self, final_map, result) -> None:
        """Answer the current question about the clip whose backbone map is ``final_map``;
        ``result`` is the clip's ActionResult (header, ids and latency are copied, the head's time
        added to the model time of the side that ran it and to the total). A failing head is
        logged and counted (``failed``); it never costs the clip's action result."""
        question = self.question
        if not question or final_map is None:
            return
        t = time.perf_counter()
        try:
            answer = self.head.answer(final_map, question)
        except Exception as exc:
            self.failed += 1
            self.node.get_logger().error(f"no answer for seq {result.seq} ({self.failed} so far): "
                                         f"{exc.__class__.__name__}: {exc}")
            return
        head_ms = 1000 * (time.perf_counter() - t)
        msg = VqaAnswer()
        msg.header = result.header
        fill_vqa_answer(msg, answer, stream_id=result.stream_id, seq=result.seq, config_id=result.config_id,
                        edge_only=result.edge_only)
        msg.latency = copy.deepcopy(result.latency)
        if result.edge_only:
            msg.latency.edge_model_ms += head_ms
        else:
            msg.latency.server_model_ms += head_ms
        msg.latency.total_ms += head_ms
        self.pub.publish(msg)
        self.answered += 1
