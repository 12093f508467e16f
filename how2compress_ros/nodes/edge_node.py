"""h2c_edge: How2Compress edge node. Camera images -> Emphasis-Assignment model -> per-macroblock
QP map -> libx264 -> EncodedFrame. Encoding runs in a worker thread behind a small
drop-oldest queue, so the camera callback never blocks.

In ``edge_only`` (the monitor's fallback when the link is down) nothing is sent; with an
``edge_detector`` set, the node runs that detector on the raw frame itself and publishes the
detections (config_id ``edge_only``), so the robot keeps seeing people without the server.

Topics: subscribes ``image_raw`` (sensor_msgs/Image), ``offload_config`` (OffloadConfig,
latched), ``keyframe_request`` (KeyframeRequest); publishes ``encoded_frames`` (EncodedFrame),
``detections`` (DetectionArray, edge-only mode).
"""
from __future__ import annotations

import time

import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image

from edge_offload.msg import DetectionArray, EncodedFrame, KeyframeRequest, OffloadConfig
from how2compress_ros.detectors.factory import DETECTOR_NAMES, make_detector
from how2compress_ros.nodes.detections import fill_detection_array
from how2compress_ros.pipeline import EdgeSettings, How2CompressEdge
from offload_common.image_conversion import uint8_array
from offload_common.lookup_table import EDGE_ONLY
from offload_common.nodes.config_switch import ConfigSwitch
from offload_common.nodes.images import ImageReceiver
from offload_common.nodes.params import Param, declare_parameters, resolve_data_path
from offload_common.nodes.payload_signing import sign_payload
from offload_common.nodes.payloads import fill_header
from offload_common.nodes.qos import DECISION_QOS, RESULT_QOS, SENSOR_QOS, payload_qos
from offload_common.nodes.runner import run_node, stamp_to_ns
from offload_common.nodes.server_common import EDGE_AUTH_PARAMETERS, payload_keys
from offload_common.nodes.work_queue import DropOldestWorker
from offload_common.nodes.onnx_params import ONNX_PARAMETERS, RUNTIME_PARAMETER, onnx_settings
from offload_common.torch_device import resolve_device

PARAMETERS = (
    Param("model_path", "models/how2compress/ea-ssdlite-sensitivity-ft-d2",
          "EA model folder (config.json + model.safetensors): the detector-trunk model trained toward the "
          "detector's sensitivity, or the MobileViTv2 one (models/how2compress/ea-mobilevitv2-050-d2-vtest-bikes); "
          "empty: uniform/qp<QP> and edge_only only",
          read_only=True),
    Param("config_id", "h2c/base45", "configuration: h2c/base<QP>, uniform/qp<QP> or edge_only; set at run "
          "time to switch by hand (the monitor's next decision overrides it)"),
    Param("stream_id", "det", "stream id in payloads and monitor decisions", read_only=True),
    Param("level_qps", [45, 43, 37, 34, 30], "QP of each emphasis level 0..4 for h2c/base45; h2c/base<QP> "
          "shifts the table so level 0 uses <QP>", read_only=True, range=(0, 51)),
    Param("map_reuse", 1, "compute the emphasis map every N frames", read_only=True, range=(1, 10000)),
    Param("gop", 30, "frames between IDR pictures", read_only=True, range=(1, 10000)),
    Param("preset", "veryfast", "x264 preset", read_only=True),
    Param("bframes", 0, "x264 B-frames (0 for lowest latency)", read_only=True, range=(0, 16)),
    Param("threads", 1, "x264 threads", read_only=True, range=(0, 64)),
    Param("fps", 15.0, "nominal frame rate given to the encoder", read_only=True, range=(0.1, 1000.0)),
    Param("device", "cpu", "torch device for the EA model (cpu, cuda, cuda:0)", read_only=True),
    RUNTIME_PARAMETER,
    Param("torch_threads", 2, "CPU threads for the EA model", read_only=True, range=(1, 256)),
    Param("queue_size", 2, "frames waiting for the encoder; older frames are dropped", read_only=True, range=(1, 100)),
    Param("send_emphasis_map", False, "include the emphasis map in every EncodedFrame", read_only=True),
    Param("payload_depth", 30, "history depth of the payload publisher", read_only=True, range=(1, 1000)),
    Param("edge_detector", "", f"detector run on the edge in edge_only ({', '.join(DETECTOR_NAMES)}); "
          "empty: edge_only analyses nothing", read_only=True),
    Param("edge_detector_weights", "", "weights for edge_detector (empty: the detector's default)", read_only=True),
    Param("edge_detector_tiles", "", "ROWSxCOLS: also run edge_detector on overlapping tiles (see h2c_server's "
          "detector_tiles); empty = whole frame only", read_only=True),
    Param("edge_score_threshold", 0.5, "minimum detection score of the edge detector", read_only=True,
          range=(0.0, 1.0)),
) + ONNX_PARAMETERS + EDGE_AUTH_PARAMETERS


class How2CompressEdgeNode(Node):
    def __init__(self, **kwargs):
        super().__init__("h2c_edge", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        device = resolve_device(self.p.device)      # a bad or unusable device fails before any loading
        onnx = onnx_settings(self.p, self.p.runtime, self.p.torch_threads)
        if onnx is not None and device.type != "cpu":
            raise ValueError("runtime onnxruntime exports from the CPU: set device cpu (onnx_providers pick the GPU)")
        self.keys = payload_keys(self, self.p.auth_key_file)
        model = None
        if self.p.model_path:
            import torch

            from how2compress_ros.emphasis.model import EmphasisModel

            torch.set_num_threads(self.p.torch_threads)
            model = EmphasisModel.from_pretrained(resolve_data_path(self.p.model_path)).to(device)
            if onnx is not None:
                from how2compress_ros.emphasis.onnx_model import OnnxEmphasisModel

                model = OnnxEmphasisModel(model, onnx)
        settings = EdgeSettings(gop=self.p.gop, preset=self.p.preset, bframes=self.p.bframes,
                                threads=self.p.threads, fps=self.p.fps, map_reuse=self.p.map_reuse)
        self.edge = How2CompressEdge(model, settings, self.p.config_id, list(self.p.level_qps))
        self.detector = (make_detector(self.p.edge_detector, self.p.edge_detector_weights,
                                       self.p.edge_score_threshold, tiles=self.p.edge_detector_tiles,
                                       onnx=onnx if self.p.edge_detector == "ssdlite" else None)
                         if self.p.edge_detector else None)
        self.unanalysed = 0
        self.seq = 0
        self.images = ImageReceiver(self.get_logger())
        self.pub = self.create_publisher(EncodedFrame, "encoded_frames", payload_qos(self.p.payload_depth))
        self.det_pub = self.create_publisher(DetectionArray, "detections", RESULT_QOS)
        self.create_subscription(Image, "image_raw", self._on_image, SENSOR_QOS)
        self.switch = ConfigSwitch(self, self.p.stream_id, lambda: self.edge.config.config_id, self.edge.set_config)
        self.create_subscription(OffloadConfig, "offload_config", self.switch.on_decision, DECISION_QOS)
        self.create_subscription(KeyframeRequest, "keyframe_request", self._on_keyframe_request, RESULT_QOS)
        self.worker = DropOldestWorker(self._handle_frame, self.get_logger(), "frame", self.p.queue_size,
                                       alive=lambda: rclpy.ok(context=self.context))
        self.get_logger().info(f"How2Compress edge: config {self.edge.config.config_id}, "
                               f"model {f'on {self.p.device}' if model else 'none'}, map reuse {self.p.map_reuse}, "
                               f"edge-only detector {self.detector.name if self.detector else 'none'}")

    def _on_image(self, msg: Image) -> None:
        rgb = self.images.to_rgb(msg)
        if rgb is None:
            return
        self.worker.put(rgb, msg.header)

    def _on_keyframe_request(self, msg: KeyframeRequest) -> None:
        if msg.stream_id == self.p.stream_id:
            self.edge.request_keyframe()
            self.get_logger().info(f"keyframe requested by server: {msg.reason}")

    def _handle_frame(self, rgb, header) -> None:
        queue_ms = (self.get_clock().now().nanoseconds - stamp_to_ns(header.stamp)) / 1e6
        if self.edge.config.config_id == EDGE_ONLY:
            self._detect_on_edge(rgb, header, queue_ms)
            return
        payloads = self.edge.process(rgb)
        for pl in payloads:
            self.pub.publish(self._to_msg(pl, header, queue_ms))
            self.seq += 1
        if self.seq and self.seq % 100 == 0 and payloads:
            self.get_logger().info(f"{self.seq} frames sent ({self.worker.dropped} dropped before encoding, "
                                   f"{self.switch.refused} configuration ids refused)")

    def _detect_on_edge(self, rgb, header, queue_ms: float) -> None:
        if self.detector is None:
            self.unanalysed += 1
            if self.unanalysed in (1, 100) or self.unanalysed % 1000 == 0:
                self.get_logger().warn(f"edge_only without edge_detector: {self.unanalysed} frames not analysed")
            return
        t = time.perf_counter()
        try:
            boxes = self.detector.detect(rgb)
        except Exception as exc:  # keep serving
            self.get_logger().error(f"edge detector failed: {exc}")
            return
        out = DetectionArray()
        fill_detection_array(out, boxes, header=header, stream_id=self.p.stream_id, seq=self.seq, config_id=EDGE_ONLY,
                             width=rgb.shape[1], height=rgb.shape[0], detector=self.detector.name)
        out.latency.edge_queue_ms = queue_ms
        out.latency.edge_model_ms = 1000 * (time.perf_counter() - t)
        out.latency.total_ms = (self.get_clock().now().nanoseconds - stamp_to_ns(header.stamp)) / 1e6
        self.det_pub.publish(out)
        self.seq += 1

    def _to_msg(self, pl, header, queue_ms: float) -> EncodedFrame:
        msg = EncodedFrame()
        fill_header(msg.meta, stamp=header.stamp, frame_id=header.frame_id, stream_id=self.p.stream_id,
                    seq=self.seq, config_id=pl.config.config_id, clock=self.get_clock(), queue_ms=queue_ms,
                    model_ms=pl.model_ms, encode_ms=pl.encode_ms)
        msg.codec = "h264"
        msg.width, msg.height = pl.width, pl.height
        msg.coded_width, msg.coded_height = (pl.width + 15) // 16 * 16, (pl.height + 15) // 16 * 16
        msg.pixel_format = "yuv420p"
        msg.keyframe = pl.keyframe
        msg.frame_index = pl.frame_index
        msg.gop = pl.gop
        msg.level_qps = uint8_array(pl.config.level_qps)
        msg.base_qp = pl.config.level_qps[0]
        msg.mb_cols, msg.mb_rows = msg.coded_width // 16, msg.coded_height // 16
        if self.p.send_emphasis_map and pl.levels is not None:
            msg.emphasis_map = uint8_array(pl.levels.astype("uint8").tobytes())
        msg.map_age = pl.map_age
        msg.crc32 = pl.crc32
        msg.data = uint8_array(pl.data)
        sign_payload(msg, self.keys)
        return msg

    def destroy_node(self):
        self.worker.stop()
        self.edge.close()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(How2CompressEdgeNode, args)
