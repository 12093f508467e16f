"""How2Compress's replayer for ``offload_replay``: recorded EncodedFrames through
How2CompressServer (the server node's checks, H.264 decoder and detector; another detector or
weights by option) and the detections compared with the recorded DetectionArrays by (stream,
seq): the same boxes in the same order (class equal; coordinates within 0.01 px and scores within
1e-4, the float32 of the message against a rerun that may use other CPU threads)."""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

import numpy as np

from how2compress_ros.codec import H264DecodeError
from offload_common.payload_checks import PayloadRejected
from offload_common.recording.records import stamp_ns
from offload_common.recording.replay import register_replayer


class How2CompressReplayer:
    payload_type = "edge_offload/msg/EncodedFrame"
    result_type = "edge_offload/msg/DetectionArray"

    def __init__(self, options: dict):
        from how2compress_ros.detectors.factory import make_detector
        from how2compress_ros.pipeline import How2CompressServer
        from offload_common.payload_checks import StreamLimits

        detector = make_detector(options.get("detector") or "ssdlite", options.get("detector_weights") or "",
                                 float(options.get("score_threshold", 0.5)), "", "")
        self.server = How2CompressServer(detector, limits=StreamLimits(max_stamp_age_s=0.0))
        self.unusable = 0

    def replay(self, m, recv_ns: int) -> Iterable[Tuple[tuple, tuple]]:
        meta = m.meta
        try:
            outcome = self.server.admit(meta.stream_id, int(meta.seq), bytes(m.data), bool(m.keyframe), int(m.crc32),
                                        codec=m.codec, format_version=int(meta.format_version), width=int(m.width),
                                        height=int(m.height), config_id=meta.config_id,
                                        stamp_ns=stamp_ns(meta.header.stamp), now_ns=recv_ns)
        except (PayloadRejected, H264DecodeError):
            self.unusable += 1
            return []
        out = []
        for frame in outcome.frames:
            boxes = self.server.detect(frame).boxes
            out.append(((meta.stream_id, int(meta.seq)),
                        _boxes([(b.class_id, b.score, b.x_min, b.y_min, b.x_max, b.y_max) for b in boxes])))
        return out

    def recorded(self, r) -> Optional[Tuple[tuple, tuple]]:
        if r.config_id == "edge_only":
            return None
        return (r.stream_id, int(r.seq)), _boxes([(d.class_id, d.score, d.x_min, d.y_min, d.x_max, d.y_max)
                                                  for d in r.detections])

    def same(self, replayed, recorded) -> bool:
        return len(replayed) == len(recorded) and all(
            a[0] == b[0] and abs(a[1] - b[1]) <= 1e-4 and np.allclose(a[2:], b[2:], rtol=0, atol=0.01)
            for a, b in zip(replayed, recorded))


def _boxes(rows) -> tuple:
    """(class, score, x_min, y_min, x_max, y_max) per box, the floats as the message's float32."""
    return tuple((int(c), *(float(v) for v in np.asarray(vals, np.float32))) for c, *vals in rows)


register_replayer(How2CompressReplayer.payload_type, How2CompressReplayer)
