"""Filling ActionResult from a library Prediction (edge node in edge-only mode, server node)."""
from __future__ import annotations


def fill_action_result(msg, prediction, *, stream_id: str, seq: int, config_id: str, edge_only: bool) -> None:
    msg.stream_id, msg.seq, msg.config_id, msg.edge_only = stream_id, int(seq), config_id, bool(edge_only)
    msg.label, msg.class_id, msg.score = prediction.label, int(prediction.class_id), float(prediction.score)
    msg.topk_labels = list(prediction.topk_labels)
    msg.topk_ids = [int(i) for i in prediction.topk_ids]
    msg.topk_scores = [float(s) for s in prediction.topk_scores]
