"""Filling ActionResult from a library Prediction, and VqaAnswer from a VQA head's Answer (edge
node in edge-only mode, server node)."""
from __future__ import annotations


def fill_action_result(msg, prediction, *, stream_id: str, seq: int, config_id: str, edge_only: bool) -> None:
    """``prediction`` None (a vision-language model, which answers only): the ids alone, the
    message then carries the header and latency to the clip's VqaAnswer and is not published."""
    msg.stream_id, msg.seq, msg.config_id, msg.edge_only = stream_id, int(seq), config_id, bool(edge_only)
    if prediction is None:
        return
    msg.label, msg.class_id, msg.score = prediction.label, int(prediction.class_id), float(prediction.score)
    msg.topk_labels = list(prediction.topk_labels)
    msg.topk_ids = [int(i) for i in prediction.topk_ids]
    msg.topk_scores = [float(s) for s in prediction.topk_scores]


def fill_vqa_answer(msg, answer, *, stream_id: str, seq: int, config_id: str, edge_only: bool) -> None:
    msg.stream_id, msg.seq, msg.config_id, msg.edge_only = stream_id, int(seq), config_id, bool(edge_only)
    msg.question, msg.answer, msg.score = answer.question, answer.answer, float(answer.score)
    msg.answer_tokens = int(answer.tokens)
    msg.candidates = list(answer.candidates)
    msg.candidate_scores = [float(s) for s in answer.candidate_scores]
