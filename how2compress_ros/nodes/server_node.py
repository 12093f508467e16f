"""h2c_server: How2Compress server node. EncodedFrame -> CRC check -> H.264 decoder (PyAV) ->
detector -> DetectionArray, plus the decoded image for viewers and a LinkReceipt per payload.
Corrupt, oversized or unknown payloads are logged and counted; after a loss the decoder waits
for the next keyframe and asks the edge for one. A restarted edge (numbering from 0 again, later
capture stamps) starts its stream over with a fresh decoder.

Topics: subscribes ``encoded_frames``; publishes ``detections`` (DetectionArray),
``decoded_image`` (sensor_msgs/Image), ``link_receipts`` (LinkReceipt), ``keyframe_request``.
"""
from __future__ import annotations

from rclpy.node import Node
from sensor_msgs.msg import Image

from edge_offload.msg import DetectionArray, EncodedFrame, KeyframeRequest, LinkReceipt
from how2compress_ros.codec import H264DecodeError
from how2compress_ros.detectors.factory import DETECTOR_NAMES, make_detector
from how2compress_ros.nodes.detections import fill_detection_array
from how2compress_ros.pipeline import How2CompressServer
from offload_common.image_conversion import numpy_to_image_msg
from offload_common.nodes.params import Param, declare_parameters
from offload_common.nodes.payloads import fill_latency, fill_receipt
from offload_common.nodes.qos import RESULT_QOS, SENSOR_QOS, payload_qos
from offload_common.nodes.runner import run_node, stamp_to_ns
from offload_common.payload_checks import PayloadRejected

PARAMETERS = (
    Param("detector", "ssdlite", f"detector: {', '.join(DETECTOR_NAMES)}", read_only=True),
    Param("detector_weights", "", "weights file for the detector (yolo: .pt/.onnx/.engine; ssdlite: "
          "frozen graph, empty = the installed wheel's)", read_only=True),
    Param("detector_device", "", "device for GPU-capable detectors (e.g. cuda:0); empty = default", read_only=True),
    Param("detector_tiles", "", "ROWSxCOLS (e.g. 2x2): also run the detector on overlapping tiles, for small "
          "people in large frames (costs rows*cols+1 detector runs per frame); empty = whole frame only",
          read_only=True),
    Param("score_threshold", 0.5, "minimum detection score", read_only=True),
    Param("torch_threads", 2, "CPU threads for PyTorch detectors", read_only=True),
    Param("publish_decoded_image", True, "republish decoded frames on decoded_image", read_only=True),
    Param("max_payload_bytes", 8000000, "larger payloads are rejected", read_only=True),
    Param("keyframe_request_interval_s", 1.0, "minimum time between keyframe requests", read_only=True),
    Param("payload_depth", 30, "history depth of the payload subscription", read_only=True),
)


class How2CompressServerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("h2c_server", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        import torch

        torch.set_num_threads(self.p.torch_threads)
        detector = make_detector(self.p.detector, self.p.detector_weights, self.p.score_threshold,
                                 self.p.detector_device, self.p.detector_tiles)
        self.server = How2CompressServer(detector, self.p.max_payload_bytes)
        self.det_pub = self.create_publisher(DetectionArray, "detections", RESULT_QOS)
        self.img_pub = self.create_publisher(Image, "decoded_image", SENSOR_QOS)
        self.receipt_pub = self.create_publisher(LinkReceipt, "link_receipts", RESULT_QOS)
        self.kf_pub = self.create_publisher(KeyframeRequest, "keyframe_request", RESULT_QOS)
        self.create_subscription(EncodedFrame, "encoded_frames", self._on_frame, payload_qos(self.p.payload_depth))
        self._last_kf_request = {}
        self.get_logger().info(f"How2Compress server: detector {detector.name}")

    def _request_keyframe(self, msg: EncodedFrame, reason: str) -> None:
        now = self.get_clock().now().nanoseconds
        last = self._last_kf_request.get(msg.meta.stream_id, -1e18)
        if now - last < self.p.keyframe_request_interval_s * 1e9:
            return
        self._last_kf_request[msg.meta.stream_id] = now
        req = KeyframeRequest(stream_id=msg.meta.stream_id, last_good_seq=max(0, msg.meta.seq - 1), reason=reason)
        req.header.stamp = self.get_clock().now().to_msg()
        self.kf_pub.publish(req)

    def _on_frame(self, msg: EncodedFrame) -> None:
        receive_ns = self.get_clock().now().nanoseconds
        data = bytes(msg.data)
        ok = False
        try:
            results, need_keyframe = self.server.handle(
                msg.meta.stream_id, msg.meta.seq, data, msg.keyframe, msg.crc32, codec=msg.codec,
                format_version=msg.meta.format_version, width=msg.width, height=msg.height,
                config_id=msg.meta.config_id, stamp_ns=stamp_to_ns(msg.meta.header.stamp))
            ok = True
        except PayloadRejected as exc:
            self.get_logger().error(f"rejected payload seq {msg.meta.seq} ({self.server.counters.rejected} so far): {exc}")
            results, need_keyframe = [], False
        except H264DecodeError as exc:
            self.get_logger().error(f"seq {msg.meta.seq}: {exc}; waiting for the next keyframe "
                                    f"({self.server.counters.corrupt} corrupt so far)")
            results, need_keyframe = [], True
        except Exception as exc:  # never let one payload stop the server (e.g. the detector failing)
            self.server.counters.failed += 1
            self.get_logger().error(f"seq {msg.meta.seq} failed ({self.server.counters.failed} so far): "
                                    f"{type(exc).__name__}: {exc}")
            results, need_keyframe = [], False
        restart = self.server.sequences.pop_restart_note()
        if restart:
            self.get_logger().warning(f"{restart}; decoding it afresh")
        receipt = LinkReceipt()
        fill_receipt(receipt, msg.meta, size=len(data), receive_ns=receive_ns, ok=ok)
        self.receipt_pub.publish(receipt)
        if need_keyframe:
            self._request_keyframe(msg, "decoder waiting for a keyframe")
        for r in results:
            self._publish(msg, r, receive_ns, len(data))
            c = self.server.counters
            if c.decoded % 50 == 0:
                self.get_logger().info(f"{c.decoded} frames decoded ({c.rejected} rejected, {c.corrupt} corrupt, "
                                       f"{c.lost} lost, {c.failed} failed, {c.restarts} edge restarts); "
                                       f"last {len(data)} B via {msg.meta.config_id}, {len(r.boxes)} detections")

    def _publish(self, msg: EncodedFrame, r, receive_ns: int, size: int) -> None:
        out = DetectionArray()
        fill_detection_array(out, r.boxes, header=msg.meta.header, stream_id=msg.meta.stream_id, seq=msg.meta.seq,
                             config_id=msg.meta.config_id, width=r.rgb.shape[1], height=r.rgb.shape[0],
                             detector=self.server.detector.name)
        fill_latency(out.latency, msg.meta, receive_ns=receive_ns, now_ns=self.get_clock().now().nanoseconds,
                     decode_ms=r.decode_ms, server_ms=r.detect_ms, payload_bytes=size)
        self.det_pub.publish(out)
        if self.p.publish_decoded_image:
            self.img_pub.publish(numpy_to_image_msg(r.rgb, "rgb8", stamp=msg.meta.header.stamp,
                                                    frame_id=msg.meta.header.frame_id))


def main(args=None) -> int:
    return run_node(How2CompressServerNode, args)
