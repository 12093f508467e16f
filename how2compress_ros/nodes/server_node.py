"""h2c_server: How2Compress server node. EncodedFrame -> (authentication tag) -> field, SPS
picture size, sequence and stamp checks -> CRC -> H.264 decoder (PyAV) -> detector ->
DetectionArray, plus the decoded image for viewers and a LinkReceipt per payload. Anything that
fails a check is logged and counted by reason before it reaches the decoder (a unit whose SPS
declares another picture size than the message, or more than ``max_frame_pixels``, is never
decoded); after a loss the decoder waits for the next keyframe and asks the edge for one. A
restarted edge (numbering from 0 again, later capture stamps) starts its stream over with a fresh
decoder. Every unit is decoded in the subscription callback (P-frames need their references);
the detector runs in a worker thread on the newest decoded picture of each stream
(``shed_load``), so a server that falls behind skips pictures (counted in ``/diagnostics`` and
each result's ``latency.server_skipped``) instead of queueing them.

Topics: subscribes ``encoded_frames``; publishes ``detections`` (DetectionArray),
``decoded_image`` (sensor_msgs/Image), ``link_receipts`` (LinkReceipt), ``keyframe_request``,
``/diagnostics``.
"""
from __future__ import annotations

import time

import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image

from edge_offload.msg import DetectionArray, EncodedFrame, KeyframeRequest, LinkReceipt
from how2compress_ros.codec import H264DecodeError
from how2compress_ros.detectors.factory import DETECTOR_NAMES, make_detector
from how2compress_ros.nodes.detections import fill_detection_array
from how2compress_ros.pipeline import How2CompressServer
from offload_common.image_conversion import numpy_to_image_msg
from offload_common.nodes.onnx_params import ONNX_PARAMETERS, RUNTIME_PARAMETER, onnx_settings
from offload_common.nodes.params import Param, declare_parameters
from offload_common.nodes.payloads import fill_latency, fill_receipt
from offload_common.nodes.qos import RESULT_QOS, SENSOR_QOS, payload_qos
from offload_common.nodes.runner import run_node, stamp_to_ns
from offload_common.nodes.server_common import (SERVER_PARAMETERS, ServerDiagnostics, log_throttled, payload_keys,
                                               refuse_unauthenticated, stream_limits)
from offload_common.nodes.work_queue import NewestPerStreamWorker, Pending
from offload_common.payload_checks import PayloadRejected, counters_dict

PARAMETERS = (
    Param("detector", "ssdlite", f"detector: {', '.join(DETECTOR_NAMES)}", read_only=True),
    Param("detector_weights", "", "weights file for the detector (yolo: .pt/.onnx/.engine; ssdlite: "
          "frozen graph, empty = the installed wheel's)", read_only=True),
    Param("detector_device", "", "device for GPU-capable detectors (e.g. cuda:0); empty = default", read_only=True),
    Param("detector_tiles", "", "ROWSxCOLS (e.g. 2x2): also run the detector on overlapping tiles, for small "
          "people in large frames (costs rows*cols+1 detector runs per frame); empty = whole frame only",
          read_only=True),
    Param("score_threshold", 0.5, "minimum detection score", read_only=True, range=(0.0, 1.0)),
    Param("torch_threads", 2, "CPU threads for PyTorch detectors (and ONNX Runtime's)", read_only=True,
          range=(1, 256)),
    RUNTIME_PARAMETER,
    Param("publish_decoded_image", True, "republish decoded frames on decoded_image", read_only=True),
    Param("max_payload_bytes", 8000000, "larger payloads are rejected", read_only=True, range=(1, 1 << 30)),
    Param("max_frame_pixels", 1920 * 1080, "larger pictures (width x height, in the message or the unit's SPS) "
          "are refused before decoding", read_only=True, range=(256, 8192 * 8192)),
    Param("keyframe_request_interval_s", 1.0, "minimum time between keyframe requests", read_only=True,
          range=(0.0, 3600.0)),
    Param("payload_depth", 30, "history depth of the payload subscription", read_only=True, range=(1, 1000)),
) + ONNX_PARAMETERS + SERVER_PARAMETERS


class How2CompressServerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("h2c_server", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        import torch

        self.keys = payload_keys(self, self.p.auth_key_file)
        torch.set_num_threads(self.p.torch_threads)
        onnx = onnx_settings(self.p, self.p.runtime, self.p.torch_threads)
        detector = make_detector(self.p.detector, self.p.detector_weights, self.p.score_threshold,
                                 self.p.detector_device, self.p.detector_tiles, onnx=onnx)
        self.server = How2CompressServer(detector, self.p.max_payload_bytes, stream_limits(self.p),
                                         self.p.max_frame_pixels)
        self.det_pub = self.create_publisher(DetectionArray, "detections", RESULT_QOS)
        self.img_pub = self.create_publisher(Image, "decoded_image", SENSOR_QOS)
        self.receipt_pub = self.create_publisher(LinkReceipt, "link_receipts", RESULT_QOS)
        self.kf_pub = self.create_publisher(KeyframeRequest, "keyframe_request", RESULT_QOS)
        self.worker = NewestPerStreamWorker(self._detect, self.get_logger(), "detection",
                                             alive=lambda: rclpy.ok(context=self.context)) if self.p.shed_load else None
        self.diagnostics = ServerDiagnostics(self, "h2c_server", self.p.diagnostics_period_s, self.counters)
        self.create_subscription(EncodedFrame, "encoded_frames", self._on_frame, payload_qos(self.p.payload_depth))
        self._last_kf_request = {}
        self.get_logger().info(f"How2Compress server: detector {detector.name}")

    def counters(self) -> dict:
        out = counters_dict(self.server.counters)
        if self.worker is not None:
            out.update(superseded=self.worker.superseded, waiting=self.worker.waiting())
        return out

    def _request_keyframe(self, msg: EncodedFrame, reason: str) -> None:
        now = self.get_clock().now().nanoseconds
        stream = msg.meta.stream_id
        if stream not in self.server.streams:       # only streams the server serves (bounded)
            return
        last = self._last_kf_request.get(stream, -1e18)
        if now - last < self.p.keyframe_request_interval_s * 1e9:
            return
        self._last_kf_request = {s: t for s, t in self._last_kf_request.items() if s in self.server.streams}
        self._last_kf_request[stream] = now
        req = KeyframeRequest(stream_id=stream, last_good_seq=max(0, msg.meta.seq - 1), reason=reason)
        req.header.stamp = self.get_clock().now().to_msg()
        self.kf_pub.publish(req)

    def _log(self, count: int, line: str) -> None:
        log_throttled(self.get_logger(), count, line)

    def _on_frame(self, msg: EncodedFrame) -> None:
        receive_ns = self.get_clock().now().nanoseconds
        c = self.server.counters
        refusal = refuse_unauthenticated(msg, self.keys, c)
        if refusal:                                 # no receipt: it would vouch for a link the sender may not use
            self._log(c.rejected, f"rejected payload seq {msg.meta.seq} ({c.rejected} so far): {refusal.reason}: "
                                  f"{refusal.detail}")
            return
        data = bytes(msg.data)
        outcome = None
        need_keyframe = False
        try:
            outcome = self.server.admit(
                msg.meta.stream_id, msg.meta.seq, data, msg.keyframe, msg.crc32, codec=msg.codec,
                format_version=msg.meta.format_version, width=msg.width, height=msg.height,
                config_id=msg.meta.config_id, stamp_ns=stamp_to_ns(msg.meta.header.stamp), now_ns=receive_ns)
            need_keyframe = outcome.needs_keyframe
        except PayloadRejected as exc:
            self._log(c.rejected, f"rejected payload seq {msg.meta.seq} ({c.rejected} so far): {exc}")
        except H264DecodeError as exc:
            self._log(c.corrupt, f"seq {msg.meta.seq}: {exc}; waiting for the next keyframe ({c.corrupt} corrupt so far)")
            need_keyframe = True
        except Exception as exc:  # never let one payload stop the server
            c.failed += 1
            self._log(c.failed, f"seq {msg.meta.seq} failed ({c.failed} so far): {type(exc).__name__}: {exc}")
        restart = self.server.sequences.pop_restart_note()
        if restart:
            self.get_logger().warning(f"{restart}; decoding it afresh")
        receipt = LinkReceipt()
        fill_receipt(receipt, msg.meta, size=len(data), receive_ns=receive_ns, ok=outcome is not None and outcome.decoded)
        self.receipt_pub.publish(receipt)
        if need_keyframe:
            self._request_keyframe(msg, "decoder waiting for a keyframe")
        for frame in outcome.frames if outcome is not None else ():
            item = (msg, frame, outcome.decode_ms, receive_ns)
            if self.worker is not None:
                self.worker.put(msg.meta.stream_id, item)
            else:
                self._detect(Pending(item, 0, time.perf_counter()))

    def _detect(self, pending: Pending) -> None:
        msg, frame, decode_ms, receive_ns = pending.item
        queue_ms = 1000 * (time.perf_counter() - pending.since)
        c = self.server.counters
        try:
            r = self.server.detect(frame, decode_ms)
        except Exception as exc:  # e.g. the detector failing: count, log, keep serving
            c.failed += 1
            self._log(c.failed, f"seq {msg.meta.seq} failed ({c.failed} so far): {type(exc).__name__}: {exc}")
            return
        out = DetectionArray()
        fill_detection_array(out, r.boxes, header=msg.meta.header, stream_id=msg.meta.stream_id, seq=msg.meta.seq,
                             config_id=msg.meta.config_id, width=r.rgb.shape[1], height=r.rgb.shape[0],
                             detector=self.server.detector.name)
        fill_latency(out.latency, msg.meta, receive_ns=receive_ns, now_ns=self.get_clock().now().nanoseconds,
                     decode_ms=r.decode_ms, server_ms=r.detect_ms, payload_bytes=len(msg.data),
                     server_queue_ms=queue_ms, server_skipped=pending.skipped)
        self.det_pub.publish(out)
        if self.p.publish_decoded_image:
            self.img_pub.publish(numpy_to_image_msg(r.rgb, "rgb8", stamp=msg.meta.header.stamp,
                                                    frame_id=msg.meta.header.frame_id))
        served = self.worker.served + 1 if self.worker is not None else c.decoded
        if served % 50 == 0:
            skipped = self.worker.superseded if self.worker is not None else 0
            self.get_logger().info(f"{served} frames detected ({c.decoded} decoded, {skipped} skipped, {c.rejected} "
                                   f"rejected, {c.corrupt} corrupt, {c.lost} lost, {c.failed} failed, {c.restarts} "
                                   f"edge restarts); last {len(msg.data)} B via {msg.meta.config_id}, "
                                   f"{len(r.boxes)} detections")

    def destroy_node(self):
        if self.worker is not None:
            self.worker.stop()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(How2CompressServerNode, args)
