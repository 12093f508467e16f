"""approxbit_edge: ApproxBit edge node. Camera images -> clips (``clip_frames`` frames every
``clip_stride``) -> backbone up to the offload point + binary encoder of the active
configuration -> BinaryFeatures. Every configuration is preloaded; an OffloadConfig for this
stream switches between them (or to edge_only, where the node runs the whole backbone and
publishes the ActionResult itself, and with ``vqa_question`` set the VqaAnswer too). The model
runs in a worker thread behind a drop-oldest queue, so the camera callback never blocks.
``backbone_path`` may be a LLaVA-OneVision snapshot: the vision layers before the split run here,
and edge-only answers come from the whole vision-language model (no ActionResult then).

Topics: subscribes ``image_raw`` (sensor_msgs/Image), ``offload_config`` (OffloadConfig,
latched); publishes ``binary_features`` (BinaryFeatures), ``action_results`` and
``vqa_answers`` (edge-only).
"""
from __future__ import annotations

import time

import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image

from approxbit_ros.configurations import EDGE_ONLY, load_configurations, warm_up
from approxbit_ros.nodes.results import fill_action_result
from approxbit_ros.nodes.vqa_question import VQA_PARAMETERS, VqaQuestion, vlm_answerer
from approxbit_ros.pipeline import ApproxBitEdge, ClipBuffer
from builtin_interfaces.msg import Time
from edge_offload.msg import ActionResult, BinaryFeatures, OffloadConfig
from offload_common.image_conversion import uint8_array
from offload_common.nodes.config_switch import ConfigSwitch
from offload_common.nodes.images import ImageReceiver
from offload_common.nodes.onnx_params import ONNX_PARAMETERS, onnx_settings
from offload_common.nodes.params import Param, declare_parameters, resolve_data_path
from offload_common.nodes.payload_signing import sign_payload
from offload_common.nodes.payloads import fill_header
from offload_common.nodes.qos import DECISION_QOS, RESULT_QOS, payload_qos, sensor_qos
from offload_common.nodes.runner import run_node, stamp_to_ns
from offload_common.nodes.server_common import EDGE_AUTH_PARAMETERS, payload_keys
from offload_common.nodes.work_queue import DropOldestWorker
from offload_common.onnx_runtime import RUNTIMES
from offload_common.torch_device import resolve_device

EDGE_RUNTIMES = RUNTIMES

PARAMETERS = (
    Param("backbone_path", "models/approxbit/cnn3d-actions",
          "backbone folder (config.json, model.safetensors, configs/)", read_only=True),
    Param("config_id", "cnn3d/o2/enc/k4", "configuration id (docs/approxbit.md, 'Configuration ids') or edge_only; set at "
          "run time to switch by hand (the monitor's next decision overrides it)"),
    Param("stream_id", "var", "stream id in payloads and monitor decisions", read_only=True),
    Param("clip_frames", 16, "frames per clip", read_only=True, range=(1, 256)),
    Param("clip_stride", 16, "frames between the starts of consecutive clips", read_only=True, range=(1, 10000)),
    Param("clip_size", 64, "frames are centre-cropped and resized to this square size", read_only=True,
          range=(8, 1024)),
    Param("topk", 5, "classes in edge-only results", read_only=True, range=(1, 1000)),
    Param("device", "cpu", "torch device for the models (cpu, cuda, cuda:0)", read_only=True),
    Param("torch_threads", 2, "CPU threads for the models", read_only=True, range=(1, 256)),
    Param("edge_runtime", "torch", "what runs the edge half: torch, or onnxruntime (exported at start-up; "
          "device must then be cpu, onnx_providers pick the hardware)", read_only=True),
    Param("entropy_coding", True, "range-code the bits of configurations that have an entropy model "
          "(configs/<id>.entropy.safetensors), clip by clip whenever that is smaller than packing", read_only=True),
    Param("image_queue_depth", 32, "camera frames the subscription holds while the node is busy (sensor QoS)",
          read_only=True, range=(1, 1000)),
    Param("queue_size", 2, "clips waiting for the model; older clips are dropped", read_only=True, range=(1, 100)),
    Param("payload_depth", 30, "history depth of the payload publisher", read_only=True, range=(1, 1000)),
) + ONNX_PARAMETERS + EDGE_AUTH_PARAMETERS + VQA_PARAMETERS


class ApproxBitEdgeNode(Node):
    def __init__(self, **kwargs):
        super().__init__("approxbit_edge", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        import torch

        device = resolve_device(self.p.device)      # a bad or unusable device fails before any loading
        self.keys = payload_keys(self, self.p.auth_key_file)
        onnx = onnx_settings(self.p, self.p.edge_runtime, self.p.torch_threads, "edge_runtime")
        if onnx is not None and device.type != "cpu":
            raise ValueError("edge_runtime onnxruntime exports from the CPU: set device cpu (onnx_providers pick the GPU)")
        torch.set_num_threads(self.p.torch_threads)
        t = time.perf_counter()
        self.configs = load_configurations(resolve_data_path(self.p.backbone_path),
                                           resolve_data_path(self.p.vlm_codecs_path)).to(device)
        vlm = not self.configs.labels
        if vlm and onnx is not None:
            raise ValueError("edge_runtime onnxruntime serves the video backbones; a vision-language model runs on torch")
        self.configs.clip_frames, self.configs.clip_size = self.p.clip_frames, self.p.clip_size
        warm_up(self.configs)
        runtime = None
        if self.p.edge_runtime == "onnxruntime":
            from approxbit_ros.onnx_edge import OnnxEdgeRuntime

            runtime = OnnxEdgeRuntime(self.configs, settings=onnx)
        self.edge = ApproxBitEdge(self.configs, self.p.config_id, self.p.topk, runtime=runtime,
                                  entropy_coding=self.p.entropy_coding)
        self.vqa = VqaQuestion(self, self.p.backbone_path, self.p.vqa_head_path, self.p.vqa_question, device, onnx,
                               answerer=vlm_answerer(self.configs, self.p.vlm_max_new_tokens))
        self.clips = ClipBuffer(self.p.clip_frames, self.p.clip_stride, self.p.clip_size)
        self.images = ImageReceiver(self.get_logger())
        self.seq = 0
        self.pub = self.create_publisher(BinaryFeatures, "binary_features", payload_qos(self.p.payload_depth))
        self.result_pub = self.create_publisher(ActionResult, "action_results", RESULT_QOS)
        self.create_subscription(Image, "image_raw", self._on_image, sensor_qos(self.p.image_queue_depth))
        self.switch = ConfigSwitch(self, self.p.stream_id, lambda: self.edge.config_id, self.edge.set_config)
        self.create_subscription(OffloadConfig, "offload_config", self.switch.on_decision, DECISION_QOS)
        self.worker = DropOldestWorker(self._handle_clip, self.get_logger(), "clip", self.p.queue_size,
                                       alive=lambda: rclpy.ok(context=self.context))
        self.get_logger().info(f"ApproxBit edge: {len(self.configs.ids)} configurations preloaded in "
                               f"{time.perf_counter() - t:.1f} s ({', '.join(self.configs.ids)}); "
                               f"active {self.edge.config_id}; range coding for "
                               f"{sum(c.entropy_model is not None for c in self.configs.configurations.values()) if self.p.entropy_coding else 0}; edge half on "
                               f"{', '.join(runtime.providers) if runtime else f'torch ({device})'}")

    def _on_image(self, msg: Image) -> None:
        rgb = self.images.to_rgb(msg)
        if rgb is None:
            return
        try:
            clip = self.clips.push(rgb, stamp_to_ns(msg.header.stamp))
        except ValueError as exc:
            self.get_logger().error(f"frame skipped: {exc}")
            return
        if clip is None:
            return
        self.worker.put(clip, msg.header)

    def _handle_clip(self, clip, header) -> None:
        queue_ms = (self.get_clock().now().nanoseconds - clip.last_stamp_ns) / 1e6
        out = self.edge.process(clip.frames)
        if out.config_id == EDGE_ONLY:
            res = ActionResult()
            res.header = header
            fill_action_result(res, out.prediction, stream_id=self.p.stream_id, seq=self.seq,
                               config_id=EDGE_ONLY, edge_only=True)
            lat = res.latency
            lat.edge_queue_ms, lat.edge_model_ms = queue_ms, out.preprocess_ms + out.model_ms
            lat.total_ms = (self.get_clock().now().nanoseconds - clip.last_stamp_ns) / 1e6
            self.vqa.publish(out.final_map, res)
            if out.prediction is not None:
                self.result_pub.publish(res)
        else:
            self.pub.publish(self._to_msg(out, clip, header, queue_ms))
        self.seq += 1
        if self.seq % 50 == 0:
            self.get_logger().info(f"{self.seq} clips processed ({self.worker.dropped} dropped before the model, "
                                   f"{self.switch.refused} configuration ids refused); active {out.config_id}")

    def _to_msg(self, out, clip, header, queue_ms: float) -> BinaryFeatures:
        msg = BinaryFeatures()
        fill_header(msg.meta, stamp=header.stamp, frame_id=header.frame_id, stream_id=self.p.stream_id,
                    seq=self.seq, config_id=out.config_id, clock=self.get_clock(), queue_ms=queue_ms,
                    preprocess_ms=out.preprocess_ms, model_ms=out.model_ms, encode_ms=out.encode_ms)
        f = out.wire_fields(self.configs.name)
        msg.encoding, msg.bit_order = f["encoding"], f["bit_order"]
        msg.backbone, msg.offload_index = f["backbone"], f["offload_index"]
        msg.spatial_encoder, msg.codebook_size = f["spatial_encoder"], f["codebook_size"]
        msg.shape, msg.feature_shape = f["shape"], f["feature_shape"]
        msg.clip_frames = len(clip.frames)
        msg.clip_first_stamp = Time(sec=clip.first_stamp_ns // 1_000_000_000,
                                    nanosec=clip.first_stamp_ns % 1_000_000_000)
        msg.crc32 = f["crc32"]
        msg.data = uint8_array(f["data"])
        sign_payload(msg, self.keys)
        return msg

    def destroy_node(self):
        self.worker.stop()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(ApproxBitEdgeNode, args)
