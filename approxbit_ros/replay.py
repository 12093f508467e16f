"""ApproxBit's replayer for ``offload_replay``: recorded BinaryFeatures through ApproxBitServer
(the server node's checks, decoder and backbone half) and the predictions compared with the
recorded ActionResults by (stream, seq): the same label and top-k classes, scores equal to
float32 precision. VQA answers are not replayed."""
from __future__ import annotations

import os
from typing import Iterable, Optional, Tuple

import numpy as np

from offload_common.payload_checks import PayloadRejected
from offload_common.recording.records import stamp_ns
from offload_common.recording.replay import register_replayer

DEFAULT_MODELS = "models/approxbit"


class ApproxBitReplayer:
    payload_type = "edge_offload/msg/BinaryFeatures"
    result_type = "edge_offload/msg/ActionResult"

    def __init__(self, options: dict):
        self.backbone_path = options.get("backbone_path") or ""
        self.clip_frames = int(options.get("clip_frames") or 16)
        self.clip_size = int(options.get("clip_size") or 64)
        self.topk = int(options.get("topk") or 5)
        self.server = None
        self.rejected = 0

    def _server_for(self, backbone: str):
        if self.server is None:
            from approxbit_ros.configurations import ConfigurationSet
            from approxbit_ros.pipeline import ApproxBitServer
            from offload_common.payload_checks import StreamLimits

            path = self.backbone_path or _backbone_folder(backbone)
            configs = ConfigurationSet.from_pretrained(path)
            configs.clip_frames, configs.clip_size = self.clip_frames, self.clip_size
            self.server = ApproxBitServer(configs, topk=self.topk, limits=StreamLimits(max_stamp_age_s=0.0))
        return self.server

    def replay(self, m, recv_ns: int) -> Iterable[Tuple[tuple, tuple]]:
        server = self._server_for(m.backbone)
        meta = m.meta
        try:
            admitted = server.admit(
                meta.stream_id, int(meta.seq), crc32=int(m.crc32), data=bytes(m.data), bit_order=int(m.bit_order),
                format_version=int(meta.format_version), stamp_ns=stamp_ns(meta.header.stamp), now_ns=recv_ns,
                config_id=meta.config_id, backbone=m.backbone, offload_index=int(m.offload_index),
                spatial_encoder=bool(m.spatial_encoder), codebook_size=int(m.codebook_size), encoding=int(m.encoding),
                shape=[int(s) for s in m.shape], feature_shape=[int(s) for s in m.feature_shape])
        except PayloadRejected:
            self.rejected += 1
            return []
        p = server.serve(admitted).prediction
        return [((meta.stream_id, int(meta.seq)), (p.label, tuple(p.topk_labels), _f32(p.topk_scores)))]

    def recorded(self, r) -> Optional[Tuple[tuple, tuple]]:
        if r.edge_only:
            return None
        return (r.stream_id, int(r.seq)), (r.label, tuple(r.topk_labels), _f32(r.topk_scores))

    def same(self, replayed, recorded) -> bool:
        return replayed[:2] == recorded[:2] and np.allclose(replayed[2], recorded[2], rtol=0, atol=1e-5)


def _f32(scores) -> tuple:
    return tuple(float(s) for s in np.asarray(list(scores), np.float32))


def _backbone_folder(backbone: str) -> str:
    """The installed backbone folder (``models/approxbit/*``) whose ``model_type`` is the
    payload's ``backbone``; several: say so, the user picks with --backbone-path."""
    import glob
    import json

    from offload_common.nodes.params import resolve_data_path

    root = resolve_data_path(DEFAULT_MODELS)
    found = []
    for config in sorted(glob.glob(os.path.join(root, "*", "config.json"))):
        with open(config) as f:
            if json.load(f).get("model_type") == backbone:
                found.append(os.path.dirname(config))
    if len(found) != 1:
        raise FileNotFoundError(f"{'no' if not found else 'more than one'} backbone folder of type {backbone!r} in "
                                f"{root} ({', '.join(found) or 'none'}): give --backbone-path")
    return found[0]


register_replayer(ApproxBitReplayer.payload_type, ApproxBitReplayer)
