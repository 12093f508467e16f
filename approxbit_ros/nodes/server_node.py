"""approxbit_server: ApproxBit server node. BinaryFeatures of any preloaded configuration ->
(authentication tag) -> field, exact shape, byte count, sequence, stamp, CRC and finiteness checks
-> codebook + decoder -> rest of the backbone -> ActionResult (top-k, latency breakdown), plus a
LinkReceipt per payload; with ``vqa_question`` set, also the VQA head's answer to it (VqaAnswer).
``backbone_path`` may be a LLaVA-OneVision snapshot: the server then finishes the vision tower,
runs the projector and the language model and publishes only VqaAnswer (free text).
Anything that fails a check is logged and counted by reason before any model runs, and the node
keeps serving. The checks run in the subscription callback; the models run in a worker thread on
the newest payload of each stream (``shed_load``), so a server that falls behind skips payloads
(counted in ``/diagnostics`` and each result's ``latency.server_skipped``) instead of queueing them.

Topics: subscribes ``binary_features``; publishes ``action_results`` (ActionResult),
``vqa_answers`` (VqaAnswer), ``link_receipts`` (LinkReceipt), ``/diagnostics``.
"""
from __future__ import annotations

import time

import rclpy
from rclpy.node import Node

from approxbit_ros.configurations import load_configurations
from approxbit_ros.nodes.results import fill_action_result
from approxbit_ros.nodes.vqa_question import VQA_PARAMETERS, VqaQuestion, vlm_answerer
from approxbit_ros.pipeline import ApproxBitServer
from edge_offload.msg import ActionResult, BinaryFeatures, LinkReceipt
from offload_common.nodes.onnx_params import ONNX_PARAMETERS, RUNTIME_PARAMETER, onnx_settings
from offload_common.nodes.params import Param, declare_parameters, resolve_data_path
from offload_common.nodes.payloads import fill_latency, fill_receipt
from offload_common.nodes.qos import RESULT_QOS, payload_qos
from offload_common.nodes.runner import run_node, stamp_to_ns
from offload_common.nodes.server_common import (SERVER_PARAMETERS, ServerDiagnostics, log_throttled, payload_keys,
                                               refuse_unauthenticated, stream_limits)
from offload_common.nodes.work_queue import NewestPerStreamWorker, Pending
from offload_common.payload_checks import PayloadRejected, counters_dict
from offload_common.torch_device import resolve_device

PARAMETERS = (
    Param("backbone_path", "models/approxbit/cnn3d-actions",
          "backbone folder (config.json, model.safetensors, configs/)", read_only=True),
    Param("topk", 5, "classes per result", read_only=True, range=(1, 1000)),
    Param("device", "cpu", "torch device for the models (cpu, cuda, cuda:0)", read_only=True),
    Param("torch_threads", 2, "CPU threads for the models (and ONNX Runtime's)", read_only=True, range=(1, 256)),
    RUNTIME_PARAMETER,
    Param("clip_frames", 16, "frames per clip the edges send (approxbit_edge's clip_frames): payloads of "
          "any other shape are refused", read_only=True, range=(1, 256)),
    Param("clip_size", 64, "clip frame size the edges send (approxbit_edge's clip_size)", read_only=True,
          range=(8, 1024)),
    Param("max_payload_bytes", 8000000, "larger payloads are rejected", read_only=True, range=(1, 1 << 30)),
    Param("payload_depth", 30, "history depth of the payload subscription", read_only=True, range=(1, 1000)),
) + ONNX_PARAMETERS + SERVER_PARAMETERS + VQA_PARAMETERS


class ApproxBitServerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("approxbit_server", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        import torch

        device = resolve_device(self.p.device)      # a bad or unusable device fails before any loading
        onnx = onnx_settings(self.p, self.p.runtime, self.p.torch_threads)
        if onnx is not None and device.type != "cpu":
            raise ValueError("runtime onnxruntime exports from the CPU: set device cpu (onnx_providers pick the GPU)")
        self.keys = payload_keys(self, self.p.auth_key_file)
        torch.set_num_threads(self.p.torch_threads)
        t = time.perf_counter()
        configs = load_configurations(resolve_data_path(self.p.backbone_path),
                                      resolve_data_path(self.p.vlm_codecs_path)).to(device)
        if not configs.labels and onnx is not None:
            raise ValueError("runtime onnxruntime serves the video backbones; a vision-language model runs on torch")
        configs.clip_frames, configs.clip_size = self.p.clip_frames, self.p.clip_size
        runtime = None
        if onnx is not None:
            from approxbit_ros.onnx_server import OnnxServerRuntime

            runtime = OnnxServerRuntime(configs, onnx)
        self.server = ApproxBitServer(configs, self.p.max_payload_bytes, self.p.topk, stream_limits(self.p),
                                      runtime=runtime)
        self.vqa = VqaQuestion(self, self.p.backbone_path, self.p.vqa_head_path, self.p.vqa_question, device, onnx,
                               answerer=vlm_answerer(configs, self.p.vlm_max_new_tokens))
        self.result_pub = self.create_publisher(ActionResult, "action_results", RESULT_QOS)
        self.receipt_pub = self.create_publisher(LinkReceipt, "link_receipts", RESULT_QOS)
        self.worker = NewestPerStreamWorker(self._serve, self.get_logger(), "payload",
                                             alive=lambda: rclpy.ok(context=self.context)) if self.p.shed_load else None
        self.diagnostics = ServerDiagnostics(self, "approxbit_server", self.p.diagnostics_period_s, self.counters)
        self.create_subscription(BinaryFeatures, "binary_features", self._on_features,
                                 payload_qos(self.p.payload_depth))
        self.get_logger().info(f"ApproxBit server: {len(configs.configurations)} configurations of "
                               f"{configs.name} preloaded in {time.perf_counter() - t:.1f} s"
                               + (f", on ONNX Runtime ({', '.join(runtime.providers)})" if runtime else ""))

    def counters(self) -> dict:
        out = counters_dict(self.server.counters)
        if self.worker is not None:
            out.update(superseded=self.worker.superseded, waiting=self.worker.waiting())
        return out

    def _on_features(self, msg: BinaryFeatures) -> None:
        receive_ns = self.get_clock().now().nanoseconds
        m = msg.meta
        refusal = refuse_unauthenticated(msg, self.keys, self.server.counters)
        if refusal:                                 # no receipt: it would vouch for a link the sender may not use
            self._log_rejection(m, refusal.reason + ": " + refusal.detail)
            return
        data = bytes(msg.data)
        try:
            admitted = self.server.admit(
                m.stream_id, m.seq, crc32=msg.crc32, data=data, bit_order=msg.bit_order,
                format_version=m.format_version, stamp_ns=stamp_to_ns(m.header.stamp), now_ns=receive_ns,
                config_id=m.config_id, backbone=msg.backbone,
                offload_index=msg.offload_index, spatial_encoder=msg.spatial_encoder,
                codebook_size=msg.codebook_size, encoding=msg.encoding, shape=list(msg.shape),
                feature_shape=list(msg.feature_shape))
        except PayloadRejected as exc:
            self._log_rejection(m, str(exc))
            admitted = None
        restart = self.server.sequences.pop_restart_note()
        if restart:
            self.get_logger().warning(restart)
        receipt = LinkReceipt()
        fill_receipt(receipt, m, size=len(data), receive_ns=receive_ns, ok=admitted is not None)
        self.receipt_pub.publish(receipt)
        if admitted is None:
            return
        item = (msg, admitted, receive_ns)
        if self.worker is not None:
            self.worker.put(m.stream_id, item)
        else:
            self._serve(Pending(item, 0, time.perf_counter()))

    def _log_rejection(self, m, why: str) -> None:
        c = self.server.counters
        log_throttled(self.get_logger(), c.rejected, f"rejected payload seq {m.seq} of '{m.stream_id[:64]}' "
                                                     f"({c.rejected} rejected so far): {why}")

    def _serve(self, pending: Pending) -> None:
        msg, admitted, receive_ns = pending.item
        m = msg.meta
        queue_ms = 1000 * (time.perf_counter() - pending.since)
        try:
            res = self.server.serve(admitted)
        except Exception as exc:  # never let one payload stop the server
            self.server.counters.rejected += 1
            self.get_logger().error(f"payload seq {m.seq} failed in decoding: {exc.__class__.__name__}: {exc}")
            return
        out = ActionResult()
        out.header = m.header
        fill_action_result(out, res.prediction, stream_id=m.stream_id, seq=m.seq, config_id=m.config_id,
                           edge_only=False)
        fill_latency(out.latency, m, receive_ns=receive_ns, now_ns=self.get_clock().now().nanoseconds,
                     decode_ms=res.decode_ms, server_ms=res.server_ms, payload_bytes=len(msg.data),
                     server_queue_ms=queue_ms, server_skipped=pending.skipped)
        self.vqa.publish(res.final_map, out)        # first (0.5 ms): a listener has it when the result comes
        if res.prediction is not None:              # None: a vision-language model, which only answers
            self.result_pub.publish(out)
        c = self.server.counters
        if c.accepted % 50 == 0:
            skipped = self.worker.superseded if self.worker is not None else 0
            self.get_logger().info(f"{c.accepted} results ({c.rejected} rejected, {skipped} skipped, {c.lost} lost, "
                                   f"{c.restarts} edge restarts); last via {m.config_id}"
                                   + (f": '{res.prediction.label}'" if res.prediction is not None else ""))

    def destroy_node(self):
        if self.worker is not None:
            self.worker.stop()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(ApproxBitServerNode, args)
