"""approxbit_server: ApproxBit server node. BinaryFeatures of any preloaded configuration ->
field checks + CRC -> codebook + decoder -> rest of the backbone -> ActionResult (top-k, latency
breakdown), plus a LinkReceipt per payload; with ``vqa_question`` set, also the VQA head's answer
to it (VqaAnswer). Malformed payloads (wrong length, unknown id, wrong
shape, bad CRC, repeats) are logged and counted; the node keeps serving.

Topics: subscribes ``binary_features``; publishes ``action_results`` (ActionResult),
``vqa_answers`` (VqaAnswer), ``link_receipts`` (LinkReceipt).
"""
from __future__ import annotations

import time

from rclpy.node import Node

from approxbit_ros.configurations import ConfigurationSet, warm_up
from approxbit_ros.nodes.results import fill_action_result
from approxbit_ros.nodes.vqa_question import VQA_PARAMETERS, VqaQuestion
from approxbit_ros.pipeline import ApproxBitServer
from edge_offload.msg import ActionResult, BinaryFeatures, LinkReceipt
from offload_common.nodes.params import Param, declare_parameters, resolve_data_path
from offload_common.nodes.payloads import fill_latency, fill_receipt
from offload_common.nodes.qos import RESULT_QOS, payload_qos
from offload_common.nodes.runner import run_node, stamp_to_ns
from offload_common.payload_checks import PayloadRejected
from offload_common.torch_device import resolve_device

PARAMETERS = (
    Param("backbone_path", "models/approxbit/cnn3d-actions",
          "backbone folder (config.json, model.safetensors, configs/)", read_only=True),
    Param("topk", 5, "classes per result", read_only=True),
    Param("device", "cpu", "torch device for the models (cpu, cuda, cuda:0)", read_only=True),
    Param("torch_threads", 2, "CPU threads for the models", read_only=True),
    Param("max_payload_bytes", 8000000, "larger payloads are rejected", read_only=True),
    Param("payload_depth", 30, "history depth of the payload subscription", read_only=True),
) + VQA_PARAMETERS


class ApproxBitServerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("approxbit_server", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        import torch

        device = resolve_device(self.p.device)      # a bad or unusable device fails before any loading
        torch.set_num_threads(self.p.torch_threads)
        t = time.perf_counter()
        configs = ConfigurationSet.from_pretrained(resolve_data_path(self.p.backbone_path)).to(device)
        warm_up(configs)
        self.server = ApproxBitServer(configs, self.p.max_payload_bytes, self.p.topk)
        self.vqa = VqaQuestion(self, self.p.backbone_path, self.p.vqa_head_path, self.p.vqa_question, device)
        self.result_pub = self.create_publisher(ActionResult, "action_results", RESULT_QOS)
        self.receipt_pub = self.create_publisher(LinkReceipt, "link_receipts", RESULT_QOS)
        self.create_subscription(BinaryFeatures, "binary_features", self._on_features,
                                 payload_qos(self.p.payload_depth))
        self.get_logger().info(f"ApproxBit server: {len(configs.configurations)} configurations of "
                               f"{configs.name} preloaded in {time.perf_counter() - t:.1f} s")

    def _on_features(self, msg: BinaryFeatures) -> None:
        receive_ns = self.get_clock().now().nanoseconds
        data = bytes(msg.data)
        m = msg.meta
        try:
            res = self.server.handle(
                m.stream_id, m.seq, crc32=msg.crc32, data=data, bit_order=msg.bit_order,
                format_version=m.format_version, stamp_ns=stamp_to_ns(m.header.stamp),
                config_id=m.config_id, backbone=msg.backbone,
                offload_index=msg.offload_index, spatial_encoder=msg.spatial_encoder,
                codebook_size=msg.codebook_size, encoding=msg.encoding, shape=list(msg.shape),
                feature_shape=list(msg.feature_shape))
        except PayloadRejected as exc:
            self.get_logger().error(f"rejected payload seq {m.seq} of '{m.stream_id}' "
                                    f"({self.server.counters.rejected} rejected so far): {exc}")
            res = None
        except Exception as exc:  # never let one payload stop the server
            self.server.counters.rejected += 1
            self.get_logger().error(f"payload seq {m.seq} failed in decoding: {exc.__class__.__name__}: {exc}")
            res = None
        restart = self.server.sequences.pop_restart_note()
        if restart:
            self.get_logger().warning(restart)
        receipt = LinkReceipt()
        fill_receipt(receipt, m, size=len(data), receive_ns=receive_ns, ok=res is not None)
        self.receipt_pub.publish(receipt)
        if res is None:
            return
        out = ActionResult()
        out.header = m.header
        fill_action_result(out, res.prediction, stream_id=m.stream_id, seq=m.seq, config_id=m.config_id,
                           edge_only=False)
        fill_latency(out.latency, m, receive_ns=receive_ns, now_ns=self.get_clock().now().nanoseconds,
                     decode_ms=res.decode_ms, server_ms=res.server_ms, payload_bytes=len(data))
        self.vqa.publish(res.final_map, out)        # first (0.5 ms): a listener has it when the result comes
        self.result_pub.publish(out)
        c = self.server.counters
        if c.accepted % 50 == 0:
            self.get_logger().info(f"{c.accepted} results ({c.rejected} rejected, {c.lost} lost, "
                                   f"{c.restarts} edge restarts); last '{res.prediction.label}' via {m.config_id}")


def main(args=None) -> int:
    return run_node(ApproxBitServerNode, args)
